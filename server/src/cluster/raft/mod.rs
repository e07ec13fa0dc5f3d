//! All of BleepStore's openraft glue (openraft is pinned to one version, and
//! a bump stays inside this module): the type configuration, the log store,
//! the state machine adapter over `meta::apply`, snapshots, the network, and
//! the server side of the RPCs.

pub mod log_store;
mod log_writer;
pub mod network;
pub mod snapshots;
pub mod state_machine;
pub mod types;

#[cfg(test)]
mod replay_tests;
#[cfg(test)]
mod storage_suite;

use crate::cluster::proposal::{decode, encode};
use bleepstore_config::ClusterConfig;
use futures::StreamExt;
use openraft::errors::{Fatal, RaftError};
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use snapshots::SnapshotFile;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use types::{Raft, Snapshot, SnapshotMeta, TypeConfig, Vote};

pub use log_store::{LogInstruments, LogStore};
pub use network::Network;
pub use snapshots::SnapshotStore;
pub use state_machine::{AfterApply, StateMachine, outcome_of};

/// openraft's settings from ours.
pub fn raft_config(cluster: &ClusterConfig) -> anyhow::Result<Arc<openraft::Config>> {
    let config = openraft::Config {
        cluster_name: "bleepstore".into(),
        heartbeat_interval: cluster.heartbeat_ms,
        election_timeout_min: cluster.election_timeout_ms,
        election_timeout_max: cluster.election_timeout_ms * 2,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(cluster.snapshot_every),
        // Entries kept past a snapshot (so a briefly lagging follower needs
        // no snapshot) and purged at a time: a fraction of the interval, so
        // small intervals compact too.
        max_in_snapshot_log_to_keep: (cluster.snapshot_every / 4).min(1000),
        purge_batch_size: (cluster.snapshot_every / 4).clamp(1, 256),
        enable_pre_vote: Some(true),
        ..Default::default()
    };
    Ok(Arc::new(config.validate().map_err(|e| {
        anyhow::anyhow!(
            "invalid Raft timing (cluster.heartbeat_ms, cluster.election_timeout_ms): {e}"
        )
    })?))
}

pub async fn start(
    node_id: u64,
    config: Arc<openraft::Config>,
    network: Network,
    log: LogStore,
    state_machine: StateMachine,
) -> anyhow::Result<Raft> {
    Raft::new(node_id, config, network, log, state_machine)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the Raft node: {e}"))
}

/// A snapshot header is a vote and a membership: never this large.
const MAX_SNAPSHOT_HEADER: usize = 16 * 1024 * 1024;

/// Why a Raft RPC from a peer could not be handled (a bad body).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RpcError(pub String);

fn bad_body(e: impl std::fmt::Display) -> RpcError {
    RpcError(format!("cannot decode the request: {e}"))
}

fn answer<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, RpcError> {
    encode(value).map_err(|e| RpcError(e.to_string()))
}

pub async fn serve_append(raft: &Raft, body: &[u8]) -> Result<Vec<u8>, RpcError> {
    let request: AppendEntriesRequest<TypeConfig> = decode(body).map_err(bad_body)?;
    answer(&raft.append_entries(request).await)
}

pub async fn serve_vote(raft: &Raft, body: &[u8]) -> Result<Vec<u8>, RpcError> {
    let request: VoteRequest<TypeConfig> = decode(body).map_err(bad_body)?;
    answer(&raft.vote(request).await)
}

pub async fn serve_pre_vote(raft: &Raft, body: &[u8]) -> Result<Vec<u8>, RpcError> {
    let request: VoteRequest<TypeConfig> = decode(body).map_err(bad_body)?;
    answer(&raft.pre_vote(request).await)
}

pub async fn serve_transfer_leader(raft: &Raft, body: &[u8]) -> Result<Vec<u8>, RpcError> {
    let request: TransferLeaderRequest<TypeConfig> = decode(body).map_err(bad_body)?;
    let result: Result<_, RaftError<TypeConfig>> = raft
        .handle_transfer_leader(request)
        .await
        .map_err(RaftError::Fatal);
    answer(&result)
}

/// Receives a snapshot streamed by the leader (header, then the database
/// file) into `incoming` and installs it.
pub async fn serve_snapshot(
    raft: &Raft,
    snapshots: &SnapshotStore,
    mut body: impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Unpin,
) -> Result<Vec<u8>, RpcError> {
    let incoming = snapshots.incoming();
    let mut file = tokio::fs::File::create(&incoming.path)
        .await
        .map_err(|e| RpcError(format!("cannot create {}: {e}", incoming.path.display())))?;
    // The header (a length, then vote and meta) may arrive split over
    // chunks; everything after it is the database file.
    let mut pending: Vec<u8> = Vec::new();
    let mut header: Option<Vec<u8>> = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| RpcError(format!("snapshot body: {e}")))?;
        let rest = if header.is_some() {
            chunk.to_vec()
        } else {
            pending.extend_from_slice(&chunk);
            if pending.len() < 4 {
                continue;
            }
            let len = u32::from_be_bytes([pending[0], pending[1], pending[2], pending[3]]) as usize;
            if len > MAX_SNAPSHOT_HEADER {
                return Err(RpcError(format!("snapshot header of {len} bytes")));
            }
            if pending.len() < 4 + len {
                continue;
            }
            let rest = pending.split_off(4 + len);
            header = Some(pending.split_off(4));
            rest
        };
        if !rest.is_empty() {
            file.write_all(&rest)
                .await
                .map_err(|e| RpcError(format!("writing the snapshot: {e}")))?;
        }
    }
    let Some(header) = header else {
        return Err(RpcError("the snapshot body ended inside its header".into()));
    };
    file.sync_all()
        .await
        .map_err(|e| RpcError(format!("syncing the snapshot: {e}")))?;
    drop(file);
    let (vote, meta): (Vote, SnapshotMeta) = decode(&header).map_err(bad_body)?;
    let snapshot = Snapshot {
        meta,
        snapshot: incoming,
    };
    let result: Result<_, RaftError<TypeConfig>> = raft
        .install_full_snapshot(vote, snapshot)
        .await
        .map_err(RaftError::Fatal);
    answer(&result)
}

/// Whether an error means the Raft node has stopped for good.
pub fn is_fatal<E>(error: &RaftError<TypeConfig, E>) -> Option<&Fatal<TypeConfig>>
where
    E: std::error::Error,
{
    match error {
        RaftError::Fatal(fatal) => Some(fatal),
        RaftError::APIError(_) => None,
    }
}

/// Keeps `SnapshotFile` reachable for the glue's users.
pub type SnapshotData = SnapshotFile;

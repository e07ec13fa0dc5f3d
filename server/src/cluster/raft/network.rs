//! openraft's network over the node-to-node [`Transport`]: each RPC is a
//! POST of its MessagePack body to `/raft/<rpc>` on the peer's operations
//! port; snapshots stream their database file after a small header.

use super::snapshots::SnapshotFile;
use super::types::{Node, NodeId, Snapshot, TypeConfig, Vote};
use crate::cluster::proposal::{decode, encode};
use crate::cluster::transport::{Transport, TransportError, streaming};
use bytes::Bytes;
use futures::{Future, StreamExt};
use http_body_util::BodyExt;
use openraft::errors::{
    NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

pub const APPEND: &str = "/raft/v1/append";
pub const VOTE: &str = "/raft/v1/vote";
pub const PRE_VOTE: &str = "/raft/v1/pre-vote";
pub const SNAPSHOT: &str = "/raft/v1/snapshot";
pub const TRANSFER_LEADER: &str = "/raft/v1/transfer-leader";

/// How long a snapshot transfer may take at most.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct Network {
    transport: Arc<Transport>,
}

impl Network {
    pub fn new(transport: Arc<Transport>) -> Self {
        Network { transport }
    }
}

pub struct Peer {
    target: NodeId,
    transport: Arc<Transport>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Peer {
        self.transport.resolver().learn(target, &node.addr);
        Peer {
            target,
            transport: self.transport.clone(),
        }
    }
}

fn rpc_error(e: TransportError) -> RPCError<TypeConfig> {
    match e {
        TransportError::Broken { .. } => RPCError::Network(NetworkError::new(&e)),
        _ => RPCError::Unreachable(Unreachable::new(&e)),
    }
}

impl Peer {
    async fn rpc<Req, Resp>(
        &self,
        path: &str,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let body = encode(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let sent = self
            .transport
            .call(self.target, path, body, option.soft_ttl())
            .await;
        self.transport.link_state(self.target, sent.as_ref().err());
        let bytes = sent.map_err(rpc_error)?;
        let answer: Result<Resp, RaftError<TypeConfig>> =
            decode(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        // A remote fatal error (the peer's Raft stopped): back off.
        answer.map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
    }
}

/// The header that precedes a snapshot's file in its request body.
pub fn snapshot_header(
    vote: &Vote,
    snapshot: &Snapshot,
) -> Result<Bytes, rmp_serde::encode::Error> {
    let header = encode(&(vote, &snapshot.meta))?;
    let mut framed = Vec::with_capacity(4 + header.len());
    framed.extend_from_slice(&(header.len() as u32).to_be_bytes());
    framed.extend_from_slice(&header);
    Ok(Bytes::from(framed))
}

impl RaftNetworkV2<TypeConfig> for Peer {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.rpc(APPEND, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.rpc(VOTE, &rpc, &option).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.rpc(PRE_VOTE, &rpc, &option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let network = |e: &dyn std::fmt::Display| {
            StreamingError::Network(NetworkError::from_string(e.to_string()))
        };
        let header = snapshot_header(&vote, &snapshot).map_err(|e| network(&e))?;
        let file = tokio::fs::File::open(&snapshot.snapshot.path)
            .await
            .map_err(|e| network(&e))?;
        let body = futures::stream::once(async move { Ok(header) }).chain(
            tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024),
        );
        let send = async {
            let response = self
                .transport
                .send(
                    self.target,
                    hyper::Method::POST,
                    SNAPSHOT,
                    streaming(body),
                    SNAPSHOT_TIMEOUT,
                )
                .await
                .map_err(|e| StreamingError::from(rpc_error(e)))?;
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| network(&e))?
                .to_bytes();
            let answer: Result<SnapshotResponse<TypeConfig>, RaftError<TypeConfig>> =
                decode(&bytes).map_err(|e| network(&e))?;
            answer.map_err(|e| StreamingError::Unreachable(Unreachable::new(&e)))
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = send => result,
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.rpc(TRANSFER_LEADER, &req, &option).await
    }
}

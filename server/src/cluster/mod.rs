//! Every server is a Raft group (DESIGN §3, §7): a standalone server is a
//! group of one that talks to nobody; in cluster mode the nodes of a
//! StatefulSet (or of a static peer list) form one group. Every metadata
//! write is a [`Proposal`] in the Raft log, applied by every node with the
//! same `meta::apply`; reads wait for the leader's read index unless
//! `cluster.read_consistency` is `local`.
//!
//! Handlers see two calls: [`Cluster::write`] and [`Cluster::read_barrier`].

pub mod blobs;
mod bootstrap;
mod connector;
pub mod effects;
pub mod instruments;
pub mod internal_api;
pub mod membership;
mod peer_tls;
pub mod proposal;
pub mod raft;
mod read;
pub mod resolver;
pub mod transport;
mod write;

use crate::meta::Metadata;
use bleepstore_config::{Backend, Config, ReadConsistency};
use proposal::{decode, encode};
use raft::types::Raft;
use raft::{AfterApply, LogInstruments, LogStore, Network, SnapshotStore, StateMachine};
use resolver::Resolver;
use std::sync::Arc;
use std::time::Duration;
use transport::{ClusterId, Transport};

pub use membership::{ClusterView, MemberView};
pub use proposal::Proposal;

/// Paths of the internal API (port 9001, cluster secret).
pub mod paths {
    pub const INFO: &str = "/internal/v1/info";
    pub const PROPOSE: &str = "/internal/v1/propose";
    pub const READ_INDEX: &str = "/internal/v1/read-index";
    pub const JOIN: &str = "/internal/v1/join";
    pub const REMOVE: &str = "/internal/v1/remove";
    pub const VIEW: &str = "/internal/v1/view";
    pub const BLOBS: &str = "/internal/v1/blobs";
}

pub struct Settings {
    pub request_timeout: Duration,
    pub read_consistency: ReadConsistency,
    pub max_voters: u32,
    /// How long a peer may take to answer a small internal call.
    pub peer_timeout: Duration,
}

pub struct Cluster {
    node_id: u64,
    enabled: bool,
    raft: Raft,
    log: LogStore,
    snapshots: Arc<SnapshotStore>,
    transport: Arc<Transport>,
    cluster_id: Arc<ClusterId>,
    settings: Settings,
    instruments: instruments::Instruments,
    /// When the leader's last append or heartbeat arrived.
    leader_contact: std::sync::Mutex<Option<std::time::Instant>>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The last blob repair pass this node ran as leader.
    blobs_report: std::sync::Mutex<Option<blobs::BlobsReport>>,
    /// Consistent reads waiting for the next read-index round.
    read_rounds: read::ReadRounds,
}

/// A node's Raft log and snapshot store, opened before its Raft node starts
/// (a separate step so a fresh node creates them while it creates its
/// metadata database: each is a few fsyncs of files and directories).
pub struct Journal {
    log: LogStore,
    snapshots: Arc<SnapshotStore>,
}

impl Journal {
    pub fn open(config: &Config) -> anyhow::Result<Journal> {
        let (log, snapshots) = match config.storage.backend {
            Backend::Memory => (LogStore::in_memory()?, SnapshotStore::temporary()?),
            // The Raft log lives on local disk whatever holds the blobs.
            Backend::Local | Backend::Sqlite | Backend::Aws | Backend::Azure | Backend::Gcs => {
                let dir = config.raft_dir();
                let log = LogStore::open(&dir.join("log.db")).map_err(|e| {
                    anyhow::anyhow!("cannot open the Raft log under {}: {e}", dir.display())
                })?;
                let snapshots = SnapshotStore::open(dir.join("snapshots")).map_err(|e| {
                    anyhow::anyhow!("cannot open the snapshots under {}: {e}", dir.display())
                })?;
                (log, snapshots)
            }
        };
        Ok(Journal { log, snapshots })
    }
}

impl Cluster {
    /// Starts the Raft node over `meta` and the `journal` opened for it, and
    /// forms or joins a group in the background (a node with data just
    /// starts: its membership is in its log).
    pub async fn start(
        config: &Config,
        meta: Metadata,
        journal: Journal,
        after: Arc<dyn AfterApply>,
    ) -> anyhow::Result<Arc<Cluster>> {
        let node_id = config.cluster.resolved_node_id();
        let Journal { log, snapshots } = journal;
        let cluster_id = Arc::new(ClusterId::default());
        if let Some(id) = log.cluster_id().await? {
            cluster_id.set(id);
        }
        let resolver = Arc::new(Resolver::new(&config.cluster, config.server.ops_listen));
        let secret = match &config.cluster.secret {
            Some(secret) => secret.expose().to_string(),
            // Standalone: nobody is ever called, nobody can call in.
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        let tls = match (&config.server.tls, config.cluster.enabled) {
            (Some(server_tls), true) => Some(
                peer_tls::client_config(server_tls, config.cluster.tls_ca_file.as_deref())
                    .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?,
            ),
            _ => None,
        };
        let transport = Arc::new(Transport::new(
            resolver.clone(),
            secret,
            cluster_id.clone(),
            tls,
        )?);
        let instruments = instruments::Instruments::default();
        log.observe(LogInstruments {
            append_seconds: instruments.log_append.clone(),
            flush_entries: instruments.log_flush_entries.clone(),
        });
        let state_machine = StateMachine::new(meta, snapshots.clone(), after, instruments.clone());
        let raft = raft::start(
            node_id,
            raft::raft_config(&config.cluster)?,
            Network::new(transport.clone()),
            log.clone(),
            state_machine,
        )
        .await?;
        let (read_rounds, read_queue) = tokio::sync::mpsc::unbounded_channel();
        let cluster = Arc::new(Cluster {
            node_id,
            enabled: config.cluster.enabled,
            raft,
            log,
            snapshots,
            transport,
            cluster_id,
            instruments,
            leader_contact: Default::default(),
            settings: Settings {
                request_timeout: Duration::from_millis(config.cluster.request_timeout_ms),
                read_consistency: config.cluster.read_consistency,
                max_voters: config.cluster.max_voters,
                peer_timeout: Duration::from_millis(
                    (config.cluster.election_timeout_ms * 2).max(1000),
                ),
            },
            tasks: Default::default(),
            blobs_report: Default::default(),
            read_rounds,
        });
        cluster.keep_task(tokio::spawn(observe(cluster.clone())));
        cluster.keep_task(tokio::spawn(read::serve_rounds(
            cluster.clone(),
            read_queue,
        )));
        bootstrap::start(&cluster).await?;
        if cluster.enabled {
            cluster.keep_task(tokio::spawn(membership::keep(cluster.clone())));
        }
        Ok(cluster)
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Whether this node talks to other nodes.
    pub fn is_clustered(&self) -> bool {
        self.enabled
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn snapshots(&self) -> &SnapshotStore {
        &self.snapshots
    }

    pub fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    pub fn resolver(&self) -> &Arc<Resolver> {
        self.transport.resolver()
    }

    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id.get()
    }

    /// Adopts the id of the group this node was added to.
    pub async fn adopt_cluster_id(&self, id: &str) -> std::io::Result<()> {
        if self.cluster_id.get().is_none() {
            self.log.set_cluster_id(id).await?;
            self.cluster_id.set(id.to_string());
            tracing::info!(cluster_id = id, "joined a cluster");
        }
        Ok(())
    }

    async fn new_cluster_id(&self) -> std::io::Result<()> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.log.set_cluster_id(&id).await?;
        self.cluster_id.set(id);
        Ok(())
    }

    pub fn instruments(&self) -> &instruments::Instruments {
        &self.instruments
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Background work that stops with the Raft node.
    pub fn keep_task(&self, task: tokio::task::JoinHandle<()>) {
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }

    pub fn set_blobs_report(&self, report: blobs::BlobsReport) {
        *self.blobs_report.lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
    }

    pub fn blobs_report(&self) -> Option<blobs::BlobsReport> {
        self.blobs_report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A snapshot of openraft's view of this node.
    pub fn metrics(&self) -> openraft::RaftMetrics<raft::types::TypeConfig> {
        self.with_metrics(Clone::clone)
    }

    /// Reads openraft's view of this node in place, without the copy
    /// [`Cluster::metrics`] makes: for paths that run on every request.
    pub fn with_metrics<T>(
        &self,
        read: impl FnOnce(&openraft::RaftMetrics<raft::types::TypeConfig>) -> T,
    ) -> T {
        use openraft::async_runtime::WatchReceiver;
        read(&self.raft.metrics().borrow_watched())
    }

    /// Hands leadership to another caught-up voter (so clients do not wait
    /// for an election), then stops the Raft node.
    pub async fn shutdown(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
        if self.enabled {
            membership::hand_over_leadership(self, Duration::from_secs(3)).await;
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "Raft did not stop cleanly");
        }
    }

    /// Calls an internal route on node `target` with a MessagePack body and
    /// decodes its MessagePack answer.
    pub(crate) async fn call<Req, Resp>(
        &self,
        target: u64,
        path: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, transport::TransportError>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
    {
        let body = encode(request).map_err(|e| transport::TransportError::Broken {
            node: target,
            reason: e.to_string(),
        })?;
        let bytes = self.transport.call(target, path, body, timeout).await?;
        decode(&bytes).map_err(|e| transport::TransportError::Broken {
            node: target,
            reason: format!("undecodable answer: {e}"),
        })
    }
}

/// Why another node refused an internal call, as it says so.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, thiserror::Error)]
pub enum Refused {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

/// Keeps the Raft gauges current (and counts leader changes as they happen).
async fn observe(cluster: Arc<Cluster>) {
    use openraft::async_runtime::WatchReceiver;
    let mut metrics = cluster.raft.metrics();
    loop {
        let current = metrics.borrow_watched().clone();
        cluster.instruments.observe(cluster.node_id, &current);
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

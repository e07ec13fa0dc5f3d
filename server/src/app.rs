//! The services a running server holds, built from its configuration.

use crate::auth::{AuthSettings, Credentials};
use crate::cluster::blobs::Replicas;
use crate::cluster::effects::BlobReaper;
use crate::cluster::{Cluster, Journal};
use crate::crypto::Keyring;
use crate::meta::Metadata;
use crate::metrics::Metrics;
use crate::storage::{BackendHealth, Backends, BlobPins, BlobStore};
use anyhow::Context;
use bleepstore_config::{Backend, Config};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub struct App {
    pub config: Config,
    /// Read-only access to the metadata; writes go through `cluster`.
    pub meta: Metadata,
    /// The Raft group every metadata write goes through.
    pub cluster: Arc<Cluster>,
    /// This node's own blob store (writes, deletes, the sweep): every
    /// configured backend behind one store.
    pub blobs: Arc<dyn BlobStore>,
    /// The same backends, for choosing one by storage class.
    pub backends: Arc<Backends>,
    /// The last check of every backend, for `/ready` and the metrics.
    pub backend_health: Arc<BackendHealth>,
    /// Blob copies wherever they are: writes to their targets, reads from
    /// this node's store or a holder, repair and scrub.
    pub replicas: Arc<Replicas>,
    /// Blobs responses are still streaming; freeing them waits for the readers.
    pub pins: Arc<BlobPins>,
    pub credentials: Credentials,
    /// Master keys for SSE-S3 and SSE-KMS.
    pub keyring: Keyring,
    pub metrics: Metrics,
    pub auth_settings: AuthSettings,
    /// When this process started: blobs older than this and unreferenced are
    /// orphans of an earlier run.
    pub started: SystemTime,
}

impl App {
    /// Opens storage and metadata. Every start-up is a recovery: temp files
    /// of interrupted writes are removed here; orphan blobs by the sweep.
    pub async fn open(config: Config) -> anyhow::Result<Arc<App>> {
        let backends = Arc::new(
            Backends::open(&config.storage)
                .await
                .map_err(|e| anyhow::anyhow!("cannot start: {e}"))?,
        );
        // The metadata database and the Raft log are created side by side:
        // on a fresh data dir each costs several fsyncs.
        let (meta, journal) = std::thread::scope(|scope| {
            let journal = scope.spawn(|| Journal::open(&config));
            let meta = open_metadata(&config);
            let journal = journal
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("opening the Raft log panicked")));
            (meta, journal)
        });
        let (meta, journal) = (meta?, journal?);
        let blobs: Arc<dyn BlobStore> = backends.clone();
        blobs
            .recover()
            .await
            .context("cannot clean up interrupted writes")?;
        let pins = BlobPins::new();
        let repair = Arc::new(tokio::sync::Notify::new());
        let cluster = Cluster::start(
            &config,
            meta.clone(),
            journal,
            BlobReaper::new(
                config.cluster.resolved_node_id(),
                blobs.clone(),
                pins.clone(),
                repair.clone(),
                config
                    .cluster
                    .enabled
                    .then(|| std::time::Duration::from_secs(config.storage.shared_free_delay_secs)),
            ),
        )
        .await?;
        let replicas = Replicas::new(
            &config,
            blobs.clone(),
            pins.clone(),
            cluster.clone(),
            meta.clone(),
            repair,
        );
        if replicas.is_replicated() {
            tracing::info!(
                replication_factor = config.cluster.replication_factor,
                "blobs are replicated across the cluster"
            );
        }
        if cluster.is_clustered() {
            for (name, store) in backends.each().filter(|(_, s)| s.is_shared()) {
                tracing::info!(
                    backend = name,
                    kind = store.name(),
                    "every node reads and writes this backend's bucket itself: its blobs are kept once (replication factor 1), the bucket's own redundancy protects them"
                );
            }
        }
        for task in [replicas.spawn_repair(), replicas.spawn_scrub()]
            .into_iter()
            .flatten()
        {
            cluster.keep_task(task);
        }
        let credentials = Credentials::from_config(&config);
        let keyring = Keyring::from_config(&config.encryption)
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        if keyring.is_empty() {
            tracing::info!("no encryption keyring: SSE-S3 and SSE-KMS requests will be refused");
        } else {
            let ids: Vec<&str> = keyring.ids().collect();
            tracing::info!(keys = ?ids, default = ?keyring.default_id(), "encryption keyring loaded");
        }
        let auth_settings = AuthSettings {
            clock_skew: Duration::from_secs(config.limits.clock_skew_secs),
            max_presign_expiry: Duration::from_secs(config.limits.max_presign_expiry_secs),
        };
        let metrics = Metrics::with_cluster(cluster.instruments());
        let backend_health = Arc::new(BackendHealth::default());
        cluster.keep_task(crate::backend_watch::spawn(
            backends.clone(),
            backend_health.clone(),
            metrics.backend_up.clone(),
        ));
        Ok(Arc::new(App {
            config,
            metrics,
            meta,
            replicas,
            cluster,
            blobs,
            backends,
            backend_health,
            pins,
            credentials,
            keyring,
            auth_settings,
            started: SystemTime::now(),
        }))
    }
}

fn open_metadata(config: &Config) -> anyhow::Result<Metadata> {
    if config.storage.backend == Backend::Memory {
        Metadata::in_memory().context("cannot create in-memory metadata")
    } else {
        let path = config.metadata_path();
        Metadata::open(&path)
            .with_context(|| format!("cannot open metadata database {}", path.display()))
    }
}

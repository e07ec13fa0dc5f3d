//! The services a running server holds, built from its configuration.

use crate::auth::{AuthSettings, Credentials};
use crate::cluster::Cluster;
use crate::cluster::blobs::Replicas;
use crate::cluster::effects::BlobReaper;
use crate::crypto::Keyring;
use crate::meta::Metadata;
use crate::metrics::Metrics;
use crate::storage::{BlobPins, BlobStore, LocalBlobStore, MemoryBlobStore};
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
    /// This node's own blob store (writes, deletes, the sweep).
    pub blobs: Arc<dyn BlobStore>,
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
        let (meta, blobs): (Metadata, Arc<dyn BlobStore>) = match config.storage.backend {
            Backend::Local => {
                let data_dir = &config.storage.data_dir;
                let blobs = LocalBlobStore::open(data_dir).with_context(|| {
                    format!("cannot open blob store under {}", data_dir.display())
                })?;
                let path = config.metadata_path();
                let meta = Metadata::open(&path)
                    .with_context(|| format!("cannot open metadata database {}", path.display()))?;
                (meta, Arc::new(blobs))
            }
            Backend::Memory => (
                Metadata::in_memory().context("cannot create in-memory metadata")?,
                Arc::new(MemoryBlobStore::new()),
            ),
        };
        blobs
            .recover()
            .await
            .context("cannot clean up interrupted writes")?;
        let pins = BlobPins::new();
        let repair = Arc::new(tokio::sync::Notify::new());
        let cluster = Cluster::start(
            &config,
            meta.clone(),
            BlobReaper::new(
                config.cluster.resolved_node_id(),
                blobs.clone(),
                pins.clone(),
                repair.clone(),
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
        Ok(Arc::new(App {
            config,
            metrics,
            meta,
            replicas,
            cluster,
            blobs,
            pins,
            credentials,
            keyring,
            auth_settings,
            started: SystemTime::now(),
        }))
    }
}

//! Prometheus metrics, rendered on the operations port's `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

// Operation names are static: counting a request allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub operation: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LifecycleLabels {
    /// `expired`, `noncurrent_removed`, `marker_removed`, `upload_aborted`, `skipped`.
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub backend: String,
    pub kind: String,
}

pub struct Metrics {
    registry: Registry,
    /// 1 while a storage backend passes its check, 0 while it fails.
    pub backend_up: Family<BackendLabels, Gauge>,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<OperationLabels, Histogram>,
    pub bytes_received: Counter,
    pub bytes_sent: Counter,
    pub in_flight: Gauge,
    pub buckets: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub objects: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub stored_bytes: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub orphans_removed: Counter<u64, AtomicU64>,
    pub lifecycle_actions: Family<LifecycleLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Metrics with the Raft node's instruments among them.
    pub fn with_cluster(cluster: &crate::cluster::instruments::Instruments) -> Self {
        let mut metrics = Self::new();
        cluster.register(&mut metrics.registry);
        metrics
    }

    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("bleepstore");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0,
            ])
        });
        let bytes_received = Counter::default();
        let bytes_sent = Counter::default();
        let in_flight = Gauge::default();
        let buckets = Gauge::default();
        let objects = Gauge::default();
        let stored_bytes = Gauge::default();
        let orphans_removed = Counter::default();
        let lifecycle_actions = Family::<LifecycleLabels, Counter>::default();
        registry.register(
            "lifecycle_actions",
            "What the lifecycle worker did, by action",
            lifecycle_actions.clone(),
        );
        let backend_up = Family::<BackendLabels, Gauge>::default();
        registry.register(
            "backend_up",
            "Whether a storage backend passes its periodic check (1) or not (0)",
            backend_up.clone(),
        );
        registry.register(
            "s3_requests",
            "S3 requests by operation and HTTP status",
            requests.clone(),
        );
        registry.register(
            "s3_request_duration_seconds",
            "S3 request latency by operation",
            duration.clone(),
        );
        registry.register(
            "s3_received_bytes",
            "Request body bytes received",
            bytes_received.clone(),
        );
        registry.register(
            "s3_sent_bytes",
            "Response body bytes sent",
            bytes_sent.clone(),
        );
        registry.register(
            "s3_requests_in_flight",
            "S3 requests being served",
            in_flight.clone(),
        );
        registry.register("buckets", "Buckets stored", buckets.clone());
        registry.register("objects", "Objects stored", objects.clone());
        registry.register(
            "stored_bytes",
            "Bytes of object data stored (before sharing between copies)",
            stored_bytes.clone(),
        );
        registry.register(
            "orphan_blobs_removed",
            "Blobs removed by the orphan sweep",
            orphans_removed.clone(),
        );
        Metrics {
            registry,
            backend_up,
            requests,
            duration,
            bytes_received,
            bytes_sent,
            in_flight,
            buckets,
            objects,
            stored_bytes,
            orphans_removed,
            lifecycle_actions,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

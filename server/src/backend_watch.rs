//! Checks every storage backend in the background, so `/ready` and the
//! `bleepstore_backend_up` metric tell an upstream outage (or revoked
//! credentials) without waiting for a client request to fail.

use crate::metrics::BackendLabels;
use crate::storage::{BackendHealth, Backends};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::time::Duration;

/// Time between two checks of every backend.
const INTERVAL: Duration = Duration::from_secs(10);

pub fn spawn(
    backends: Arc<Backends>,
    health: Arc<BackendHealth>,
    up: Family<BackendLabels, Gauge>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let statuses = backends.probe().await;
            for status in &statuses {
                let labels = BackendLabels {
                    backend: status.name.clone(),
                    kind: status.kind.to_string(),
                };
                up.get_or_create(&labels)
                    .set(i64::from(status.problem.is_none()));
                if let Some(problem) = &status.problem {
                    tracing::warn!(backend = %status.name, kind = status.kind, %problem, "storage backend is not usable");
                }
            }
            health.set(statuses);
            tokio::time::sleep(INTERVAL).await;
        }
    })
}

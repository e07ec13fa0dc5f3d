//! Integration tests of the operator library: CRD, builders, rendered config,
//! and reconcile passes against a fake API server.

mod builders;
mod crd;
mod fake;
mod reconcile;
mod render;

use bleepstore_operator::crd::BleepStoreCluster;

/// A stored resource (name, namespace, uid) from a spec in JSON.
pub fn bsc(spec: serde_json::Value) -> BleepStoreCluster {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "bleepstore.io/v1alpha1",
        "kind": "BleepStoreCluster",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "bsc-uid", "generation": 1},
        "spec": spec,
    }))
    .unwrap()
}

/// The repository root.
pub fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

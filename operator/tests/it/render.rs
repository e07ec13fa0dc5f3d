//! The config the operator renders is accepted by the server's own loader.

use std::path::Path;

use bleepstore_config::{Backend, LogFormat, Overrides};
use bleepstore_operator::builders;
use bleepstore_operator::render::{self, Paths};
use serde_json::json;

use crate::bsc;

/// Renders for `spec` with the mounts relocated under `dir`, writes the
/// Secret files the pod would see, and loads the file like the server does,
/// with the environment the pod spec sets.
fn load(spec: serde_json::Value, dir: &Path) -> bleepstore_config::Config {
    let obj = bsc(spec);
    let paths = Paths {
        config_dir: dir.join("etc"),
        secrets_dir: dir.join("run"),
        data_dir: dir.join("data"),
    };
    let config = render::server_config(
        &obj.spec,
        obj.cluster_enabled(),
        &builders::names(&obj),
        &paths,
    )
    .unwrap();
    for (sub, key, value) in [
        ("credentials", render::ACCESS_KEY_KEY, "AKIAEXAMPLE"),
        ("credentials", render::SECRET_KEY_KEY, "secret"),
        ("internal", render::ADMIN_TOKEN_KEY, "admin-token"),
        ("internal", render::CLUSTER_SECRET_KEY, "cluster-secret"),
    ] {
        std::fs::create_dir_all(paths.secrets_dir.join(sub)).unwrap();
        std::fs::write(paths.secrets_dir.join(sub).join(key), format!("{value}\n")).unwrap();
    }
    if let Some(encryption) = &obj.spec.encryption {
        std::fs::create_dir_all(paths.encryption_dir()).unwrap();
        for id in &encryption.keys {
            std::fs::write(
                paths.encryption_dir().join(id),
                "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=\n",
            )
            .unwrap();
        }
    }
    std::fs::create_dir_all(&paths.config_dir).unwrap();
    std::fs::write(paths.config_file(), render::to_yaml(&config)).unwrap();
    // The env the pod spec gives the container (downward API resolved).
    let container = builders::server_container(&obj);
    let env: Vec<(String, String)> = container
        .env
        .unwrap()
        .into_iter()
        .filter(|e| e.name.starts_with("BLEEPSTORE_"))
        .map(|e| {
            let value = e.value.map(|v| {
                v.replace("$(POD_NAME)", "demo-0")
                    .replace("$(POD_NAMESPACE)", "ns")
            });
            // Secret-backed variables: the kubelet would resolve them.
            (e.name, value.unwrap_or_else(|| "from-secret".into()))
        })
        .collect();
    let loaded = bleepstore_config::load(Some(&paths.config_file()), env, &Overrides::default())
        .unwrap_or_else(|e| panic!("the server rejects the rendered config: {e}"));
    assert_eq!(loaded, {
        // What the loader produced equals what we rendered, plus the secrets
        // it read and the per-pod identity from the environment.
        let mut expected = config.clone();
        expected.auth.access_key = loaded.auth.access_key.clone();
        expected.auth.secret_key = loaded.auth.secret_key.clone();
        expected.auth.admin_token = loaded.auth.admin_token.clone();
        expected.cluster.secret = loaded.cluster.secret.clone();
        expected.cluster.pod_name = loaded.cluster.pod_name.clone();
        expected.cluster.namespace = loaded.cluster.namespace.clone();
        for (key, read) in expected
            .encryption
            .keys
            .iter_mut()
            .zip(&loaded.encryption.keys)
        {
            key.value = read.value.clone();
        }
        expected
    });
    loaded
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("bleepstore-operator-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn single_node_config_is_accepted() {
    let dir = temp("single");
    let config = load(json!({"replicas": 1}), &dir);
    assert_eq!(config.storage.backend, Backend::Local);
    assert_eq!(config.storage.data_dir, dir.join("data"));
    assert_eq!(config.auth.access_key.unwrap().expose(), "AKIAEXAMPLE");
    assert_eq!(config.auth.secret_key.unwrap().expose(), "secret");
    assert_eq!(config.auth.admin_token.unwrap().expose(), "admin-token");
    assert!(!config.cluster.enabled);
    assert_eq!(config.server.s3_listen.port(), 9000);
    assert_eq!(config.server.ops_listen.port(), 9001);
    assert_eq!(config.logging.format, LogFormat::Json);
}

#[test]
fn cluster_config_is_accepted() {
    let dir = temp("cluster");
    let config = load(
        json!({
            "replicas": 3, "region": "eu-west-1", "domains": ["s3.example.com"],
            "logging": {"level": "debug", "format": "text"}, "replicationFactor": 2,
            "storage": {"backend": "memory"},
        }),
        &dir,
    );
    assert!(config.cluster.enabled);
    assert_eq!(config.cluster.pod_name.as_deref(), Some("demo-0"));
    assert_eq!(config.cluster.namespace.as_deref(), Some("ns"));
    assert_eq!(config.cluster.statefulset.as_deref(), Some("demo"));
    assert_eq!(config.cluster.headless_service.as_deref(), Some("demo-hl"));
    assert_eq!(config.cluster.replicas, 3);
    assert_eq!(config.cluster.replication_factor, 2);
    assert_eq!(config.cluster.secret.unwrap().expose(), "cluster-secret");
    assert_eq!(config.server.region, "eu-west-1");
    assert_eq!(config.server.domains, vec!["s3.example.com".to_string()]);
    assert_eq!(config.storage.backend, Backend::Memory);
    assert_eq!(config.logging.level, "debug");
    assert_eq!(config.logging.format, LogFormat::Text);
}

#[test]
fn env_delivery_and_tls_are_accepted() {
    let dir = temp("env");
    let config = load(
        json!({"credentials": {"delivery": "Env"}, "tls": {"secretName": "t"}}),
        &dir,
    );
    assert!(config.auth.access_key_file.is_none());
    assert_eq!(config.auth.access_key.unwrap().expose(), "from-secret");
    let tls = config.server.tls.unwrap();
    assert_eq!(tls.cert_file, dir.join("run/tls/tls.crt"));
    assert!(config.cluster.tls_ca_file.is_none());
}

#[test]
fn pods_trust_each_other_through_the_tls_secrets_ca() {
    let dir = temp("tls-ca");
    let spec = json!({"replicas": 3, "tls": {"secretName": "t", "caKey": "ca.crt"}});
    let config = load(spec, &dir);
    assert!(config.server.tls.is_some());
    assert_eq!(config.cluster.tls_ca_file, Some(dir.join("run/tls/ca.crt")));
    // A single server has no peers to trust.
    let single = load(
        json!({"replicas": 1, "tls": {"secretName": "t", "caKey": "ca.crt"}}),
        &temp("tls-ca-1"),
    );
    assert!(single.cluster.tls_ca_file.is_none());
}

#[test]
fn encryption_keys_come_from_the_mounted_secret() {
    let dir = temp("encryption");
    let config = load(
        json!({"encryption": {"secretName": "keys", "keys": ["k-2026", "k-2025"], "defaultKey": "k-2026", "requireTlsForSseC": false}}),
        &dir,
    );
    let keys = &config.encryption.keys;
    assert_eq!(keys.len(), 2);
    assert_eq!(
        keys[0].file.as_deref(),
        Some(dir.join("run/encryption/k-2026").as_path())
    );
    assert!(
        keys.iter().all(|k| k.value.is_some()),
        "the loader read the key files"
    );
    assert_eq!(config.encryption.effective_default_key(), Some("k-2026"));
    assert!(!config.encryption.require_tls_for_sse_c);
    // Without the section the server has no keyring and requires TLS for SSE-C.
    let plain = load(json!({}), &temp("no-encryption"));
    assert!(plain.encryption.keys.is_empty() && plain.encryption.require_tls_for_sse_c);
}

#[test]
fn cloud_backends_render_a_config_the_server_loads() {
    for backend in ["aws", "azure", "gcs"] {
        let mut spec = json!({"storage": {"backend": backend}});
        let key = if backend == "azure" {
            "container"
        } else {
            "bucket"
        };
        spec["storage"][backend] =
            json!({ key: "blobs", "prefix": "p/", "endpoint": "http://store.example:9000" });
        let config = load(spec, &temp(&format!("cloud-{backend}")));
        assert_eq!(config.storage.backend.as_str(), backend);
        let main = config.storage.main_backend().expect("section rendered");
        assert!(main.is_shared(), "{backend}");
        match main {
            bleepstore_config::BackendSpec::Aws(c) => {
                assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("blobs", "p/"));
                assert!(c.force_path_style, "an endpoint implies path-style");
                assert!(
                    c.access_key_id.is_none(),
                    "credentials come from the environment"
                );
            }
            bleepstore_config::BackendSpec::Azure(c) => assert_eq!(c.container, "blobs"),
            bleepstore_config::BackendSpec::Gcs(c) => assert_eq!(c.bucket, "blobs"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_replica_count_does_not_change_the_hash() {
    let three = bsc(json!({"replicas": 3}));
    let five = bsc(json!({"replicas": 5}));
    let hash = |b: &bleepstore_operator::crd::BleepStoreCluster| {
        let rendered = builders::rendered_config(b).unwrap();
        builders::config_hash(&rendered, &builders::pod_template(b, &rendered))
    };
    assert_eq!(hash(&three), hash(&five));
    // Nor the config revision the pods mount.
    let revision = |b| builders::config_map_name(b, &builders::rendered_config(b).unwrap());
    assert_eq!(revision(&three), revision(&five));
    assert_ne!(
        revision(&three),
        revision(&bsc(json!({"replicas": 3, "region": "eu-west-1"})))
    );
    let debug = bsc(json!({"replicas": 3, "logging": {"level": "debug"}}));
    assert_ne!(hash(&three), hash(&debug));
}

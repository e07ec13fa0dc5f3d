//! The generated CRD: drift against the checked-in files, schema shape, and
//! the CEL rules evaluated client-side.

use bleepstore_operator::crd::BleepStoreCluster;
use bleepstore_operator::{CRD_PATHS, crd_yaml};
use kube::CustomResourceExt;
use serde_json::{Value, json};

use crate::{bsc, repo};

#[test]
fn checked_in_crds_match_the_rust_types() {
    let generated = crd_yaml().unwrap();
    for path in CRD_PATHS {
        let on_disk = std::fs::read_to_string(repo().join(path)).unwrap_or_default();
        assert!(
            on_disk == generated,
            "{path} is out of date: run `cargo run -p bleepstore-operator --bin crdgen -- --write .`"
        );
    }
}

#[test]
fn crd_has_names_columns_scale_and_status() {
    let crd = serde_json::to_value(BleepStoreCluster::crd()).unwrap();
    assert_eq!(crd["spec"]["group"], "bleepstore.io");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["bsc"]));
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["Replicas", "Ready", "Status", "Backend", "Endpoint", "Age"]
    );
    let scale = &version["subresources"]["scale"];
    assert_eq!(scale["specReplicasPath"], ".spec.replicas");
    assert_eq!(scale["statusReplicasPath"], ".status.replicas");
    assert_eq!(scale["labelSelectorPath"], ".status.selector");
    assert!(version["subresources"]["status"].is_object());
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["properties"]["replicas"]["default"], 1);
    assert_eq!(spec["properties"]["replicas"]["minimum"], 1.0);
    assert_eq!(
        spec["properties"]["storage"]["properties"]["backend"]["enum"],
        json!(["local", "memory", "aws", "azure", "gcs"])
    );
}

fn check(spec: Value) -> Result<(), String> {
    kube::core::cel::validate_cel(&bsc(spec)).map_err(|e| format!("{e:?}"))
}

fn check_update(old: Value, new: Value) -> Result<(), String> {
    kube::core::cel::validate_cel_update(&bsc(new), &bsc(old)).map_err(|e| format!("{e:?}"))
}

#[test]
fn cel_backend_settings_must_match_the_backend() {
    check(json!({})).unwrap();
    check(json!({"storage": {"backend": "local", "local": {"size": "1Gi"}}})).unwrap();
    check(json!({"storage": {"backend": "aws", "aws": {"bucket": "b"}}})).unwrap();
    check(json!({"storage": {"backend": "azure", "azure": {"container": "c"}}})).unwrap();
    check(json!({"storage": {"backend": "gcs", "gcs": {"bucket": "b"}}})).unwrap();
    let err = check(json!({"storage": {"backend": "aws"}})).unwrap_err();
    assert!(err.contains("storage.aws must be set"), "{err}");
    let err =
        check(json!({"storage": {"backend": "memory", "local": {"size": "1Gi"}}})).unwrap_err();
    assert!(err.contains("not used with backend memory"), "{err}");
    // With a cloud backend the pod volume holds the metadata.
    check(json!({"storage": {"backend": "gcs", "gcs": {"bucket": "b"}, "local": {"size": "5Gi"}}}))
        .unwrap();
    let err = check(json!({"storage": {"backend": "local", "gcs": {"bucket": "b"}}})).unwrap_err();
    assert!(err.contains("storage.gcs must be set"), "{err}");
}

#[test]
fn cel_replicas_at_least_one() {
    let err = check(json!({"replicas": 0})).unwrap_err();
    assert!(err.contains("replicas must be at least 1"), "{err}");
}

#[test]
fn cel_ingress_needs_hosts() {
    let err = check(json!({"ingress": {"enabled": true, "hosts": []}})).unwrap_err();
    assert!(err.contains("ingress.hosts"), "{err}");
    check(json!({"ingress": {"enabled": false, "hosts": []}})).unwrap();
}

#[test]
fn cel_encryption_keys_and_default() {
    check(json!({"encryption": {"secretName": "k", "keys": ["a"]}})).unwrap();
    check(json!({"encryption": {"secretName": "k", "keys": ["a", "b"], "defaultKey": "b"}}))
        .unwrap();
    let err = check(json!({"encryption": {"secretName": "k", "keys": []}})).unwrap_err();
    assert!(err.contains("at least one key"), "{err}");
    let err = check(json!({"encryption": {"secretName": "k", "keys": ["a", "b"]}})).unwrap_err();
    assert!(err.contains("defaultKey is required"), "{err}");
    let err = check(json!({"encryption": {"secretName": "k", "keys": ["a"], "defaultKey": "z"}}))
        .unwrap_err();
    assert!(err.contains("must be one of"), "{err}");
}

#[test]
fn cel_storage_size_class_and_backend_are_immutable_from_creation() {
    let old = json!({"storage": {"local": {"size": "1Gi"}}});
    check_update(old.clone(), old.clone()).unwrap();
    let err =
        check_update(old.clone(), json!({"storage": {"local": {"size": "2Gi"}}})).unwrap_err();
    assert!(err.contains("size is immutable"), "{err}");
    let err = check_update(old.clone(), json!({"storage": {"local": {}}})).unwrap_err();
    assert!(err.contains("size is immutable"), "{err}");
    // Unset is 10Gi: stating the default is no change, anything else is.
    check_update(json!({}), json!({"storage": {"local": {"size": "10Gi"}}})).unwrap();
    let err = check_update(json!({"storage": {"local": {}}}), old.clone()).unwrap_err();
    assert!(err.contains("size is immutable"), "{err}");
    // The StorageClass cannot be added, changed or removed later: the
    // StatefulSet's volume claim templates cannot.
    let class = json!({"storage": {"local": {"storageClassName": "fast"}}});
    check_update(class.clone(), class.clone()).unwrap();
    for (before, after) in [
        (json!({}), class.clone()),
        (json!({"storage": {"local": {}}}), class.clone()),
        (class.clone(), json!({"storage": {"local": {}}})),
        (
            class.clone(),
            json!({"storage": {"local": {"storageClassName": "slow"}}}),
        ),
    ] {
        let err = check_update(before.clone(), after.clone()).unwrap_err();
        assert!(
            err.contains("storageClassName is immutable"),
            "{before} -> {after}: {err}"
        );
    }
    let err = check_update(
        json!({"storage": {"backend": "memory"}}),
        json!({"storage": {"backend": "local"}}),
    )
    .unwrap_err();
    assert!(err.contains("storage.backend is immutable"), "{err}");
    // Scaling is an ordinary update.
    check_update(json!({"replicas": 3}), json!({"replicas": 5})).unwrap();
}

#[test]
fn cel_refuses_what_would_fail_later() {
    for size in ["10Gi", "500Mi", "1.5Ti", "1073741824", "2G"] {
        check(json!({"storage": {"local": {"size": size}}}))
            .unwrap_or_else(|e| panic!("{size}: {e}"));
    }
    for size in ["lots", "10 Gi", "-1Gi", "1GiB"] {
        let err = check(json!({"storage": {"local": {"size": size}}})).unwrap_err();
        assert!(err.contains("must be a quantity"), "{size}: {err}");
    }
    let err = check(json!({"service": {"s3Port": 9001, "opsPort": 9001}})).unwrap_err();
    assert!(err.contains("must differ"), "{err}");
}

fn named(name: &str) -> Result<(), String> {
    let mut obj = bsc(json!({}));
    obj.metadata.name = Some(name.into());
    kube::core::cel::validate_cel(&obj).map_err(|e| format!("{e:?}"))
}

#[test]
fn cel_names_must_make_valid_pod_and_service_names() {
    named("store-1").unwrap();
    named(&"a".repeat(50)).unwrap();
    for bad in ["my.store", "1store", "Store", "store-", "a_b"] {
        let err = named(bad).unwrap_err();
        assert!(err.contains("DNS-1035"), "{bad}: {err}");
    }
    let err = named(&"a".repeat(51)).unwrap_err();
    assert!(err.contains("at most 50"), "{err}");
}

#[test]
fn examples_parse_and_pass_the_cel_rules() {
    let dir = repo().join("manifests/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let obj: BleepStoreCluster =
            serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        kube::core::cel::validate_cel(&obj).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        seen += 1;
    }
    assert!(
        seen >= 3,
        "expected at least three examples in {}",
        dir.display()
    );
}

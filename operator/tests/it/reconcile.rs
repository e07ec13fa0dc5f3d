//! Reconcile passes against the fake API server (tower-test) and fake admin API.

use std::time::Duration;

use bleepstore_operator::controller::{backoff, error_policy};
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use crate::fake::{BSC_PATH, Harness, STS_PATH};

const NS_PATH: &str = "/api/v1/namespaces/ns";

fn partition(sts: &Value) -> i64 {
    sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
        .as_i64()
        .unwrap()
}

fn hash(sts: &Value) -> String {
    sts["spec"]["template"]["metadata"]["annotations"]["bleepstore.io/config-hash"]
        .as_str()
        .unwrap()
        .to_string()
}

fn replicas(sts: &Value) -> i64 {
    sts["spec"]["replicas"].as_i64().unwrap()
}

#[tokio::test]
async fn first_creation_makes_everything() {
    let h = Harness::new(json!({"replicas": 1}), 1);
    let action = h.reconcile().await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(10)));

    for path in [
        format!("{NS_PATH}/secrets/demo-internal"),
        format!("{NS_PATH}/secrets/demo-credentials"),
        format!("{NS_PATH}/configmaps/demo-config"),
        format!("{NS_PATH}/services/demo"),
        format!("{NS_PATH}/services/demo-hl"),
        STS_PATH.to_string(),
    ] {
        let obj = h.api.get(&path).unwrap_or_else(|| panic!("{path} missing"));
        let owner = &obj["metadata"]["ownerReferences"][0];
        assert_eq!(owner["uid"], "bsc-uid", "{path} owned by the resource");
        assert_eq!(owner["controller"], true);
    }
    // No PodDisruptionBudget for a standalone single pod, no Ingress.
    assert!(
        h.api
            .get("/apis/policy/v1/namespaces/ns/poddisruptionbudgets/demo")
            .is_none()
    );
    let sts = h.sts();
    assert_eq!(replicas(&sts), 1);
    assert_eq!(partition(&sts), 0);
    // Generated credentials look like S3 keys.
    let creds = h
        .api
        .get(&format!("{NS_PATH}/secrets/demo-credentials"))
        .unwrap();
    assert_eq!(
        creds["stringData"]["access-key"].as_str().unwrap().len(),
        20
    );
    assert_eq!(
        creds["stringData"]["secret-key"].as_str().unwrap().len(),
        40
    );
    // Events and status.
    let reasons = h.event_reasons();
    assert!(reasons.contains(&"Created".to_string()), "{reasons:?}");
    assert!(
        reasons.contains(&"CredentialsGenerated".to_string()),
        "{reasons:?}"
    );
    assert_eq!(h.condition("Progressing")["reason"], "Creating");
    assert_eq!(h.condition("Ready")["status"], "False");
    let status = &h.api.get(BSC_PATH).unwrap()["status"];
    assert_eq!(status["endpoint"], "http://demo.ns.svc:9000");
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(
        status["selector"],
        "app.kubernetes.io/instance=demo,app.kubernetes.io/name=bleepstore"
    );
}

#[tokio::test]
async fn settled_cluster_is_ready_and_second_pass_is_a_no_op() {
    let h = Harness::new(json!({"replicas": 1}), 1);
    h.reconcile().await.unwrap();
    h.settle(1, 1);
    let action = h.reconcile().await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    assert_eq!(h.condition("Ready")["status"], "True");
    assert_eq!(h.condition("Progressing")["status"], "False");
    let status = &h.api.get(BSC_PATH).unwrap()["status"];
    assert!(
        status["currentImage"]
            .as_str()
            .unwrap()
            .starts_with("ghcr.io/bleepstore/bleepstore:")
    );

    let before = h.api.lock().objects.clone();
    let events_before = h.events().len();
    h.api.clear_log();
    h.reconcile().await.unwrap();
    // Only idempotent applies: nothing created, deleted, no status write, no event.
    let writes = h.api.writes();
    assert!(
        writes
            .iter()
            .all(|w| w.starts_with("PATCH ") && !w.ends_with("/status")),
        "{writes:?}"
    );
    assert_eq!(h.events().len(), events_before);
    let after = h.api.lock().objects.clone();
    for (path, obj) in &before {
        let mut a = obj.clone();
        let mut b = after[path].clone();
        a["metadata"]["resourceVersion"] = Value::Null;
        b["metadata"]["resourceVersion"] = Value::Null;
        assert_eq!(a, b, "{path} changed on a no-op pass");
    }
    // Generated secrets are never overwritten.
    assert!(!writes.iter().any(|w| w.contains("/secrets")));
}

#[tokio::test]
async fn user_secret_is_used_and_missing_one_degrades() {
    let h = Harness::new(json!({"credentials": {"secretName": "mine"}}), 1);
    h.reconcile().await.unwrap();
    assert!(
        h.api
            .get(&format!("{NS_PATH}/secrets/demo-credentials"))
            .is_none()
    );
    assert_eq!(
        h.condition("Degraded")["reason"],
        "CredentialsSecretMissing"
    );
    h.api.put(
        &format!("{NS_PATH}/secrets/mine"),
        json!({"metadata": {"name": "mine"}, "data": {}}),
    );
    h.reconcile().await.unwrap();
    assert_eq!(h.condition("Degraded")["status"], "False");
    let sts = h.sts();
    let volumes = sts["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    assert!(volumes.iter().any(|v| v["secret"]["secretName"] == "mine"));
}

#[tokio::test]
async fn scale_up_adds_members_and_waits_for_them() {
    let h = Harness::new(json!({"replicas": 1, "clusterMode": true}), 1);
    h.reconcile().await.unwrap();
    h.settle(1, 1);
    h.reconcile().await.unwrap();
    assert_eq!(h.condition("Ready")["status"], "True");
    let hash_before = hash(&h.sts());

    h.update_spec(|s| s["replicas"] = json!(3));
    h.api.clear_log();
    h.reconcile().await.unwrap();
    let sts = h.sts();
    assert_eq!(replicas(&sts), 3);
    // Scaling does not roll the existing pods.
    assert_eq!(hash(&sts), hash_before);
    assert_eq!(partition(&sts), 0);
    let log = h.api.log();
    let sts_patch = log
        .iter()
        .position(|l| l == &format!("PATCH {STS_PATH}"))
        .unwrap();
    let add1 = log
        .iter()
        .position(|l| l.starts_with("admin add 1 "))
        .unwrap();
    assert!(
        add1 > sts_patch,
        "members are added after the pods are asked for: {log:?}"
    );
    assert!(log.contains(&"admin add 2 demo-2.demo-hl.ns.svc.cluster.local:9001".to_string()));
    assert_eq!(h.condition("Progressing")["reason"], "ScalingUp");
    assert!(h.event_reasons().contains(&"ScalingUp".to_string()));
    // The PDB now protects a 3-voter quorum: one pod may go.
    let pdb = h
        .api
        .get("/apis/policy/v1/namespaces/ns/poddisruptionbudgets/demo")
        .unwrap();
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);

    // Pods up, members still learners: still progressing.
    h.settle(3, 3);
    h.reconcile().await.unwrap();
    assert_eq!(h.condition("Progressing")["status"], "True");
    assert_eq!(h.condition("Progressing")["reason"], "ScalingUp");
    // Promoted: done.
    h.admin.promote_all();
    h.reconcile().await.unwrap();
    assert_eq!(h.condition("Progressing")["status"], "False");
    assert_eq!(h.condition("Ready")["status"], "True");
    let status = &h.api.get(BSC_PATH).unwrap()["status"];
    assert_eq!(status["raft"]["leader"], 0);
    assert_eq!(status["raft"]["members"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn scale_down_removes_members_before_the_statefulset_shrinks() {
    let h = Harness::new(json!({"replicas": 3}), 3);
    h.reconcile().await.unwrap();
    h.settle(3, 3);
    h.reconcile().await.unwrap();
    assert_eq!(h.condition("Ready")["status"], "True");

    h.update_spec(|s| s["replicas"] = json!(1));
    // Admin failure: nothing shrinks, the error surfaces.
    *h.admin.fail_remove.lock().unwrap() = Some(500);
    h.api.clear_log();
    let err = h.reconcile().await.unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(replicas(&h.sts()), 3);
    assert_eq!(h.condition("Degraded")["reason"], "AdminApiError");

    *h.admin.fail_remove.lock().unwrap() = None;
    h.api.clear_log();
    h.reconcile().await.unwrap();
    let log = h.api.log();
    let r2 = log.iter().position(|l| l == "admin remove 2").unwrap();
    let r1 = log.iter().position(|l| l == "admin remove 1").unwrap();
    let shrink = log
        .iter()
        .position(|l| l == &format!("PATCH {STS_PATH}"))
        .unwrap();
    assert!(
        r2 < r1 && r1 < shrink,
        "highest ordinal first, before the shrink: {log:?}"
    );
    assert_eq!(replicas(&h.sts()), 1);
    assert_eq!(h.admin.member_ids(), vec![0]);
    assert!(h.event_reasons().contains(&"ScalingDown".to_string()));
    // PVCs are retained by default.
    assert_eq!(
        h.sts()["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"],
        "Retain"
    );
}

#[tokio::test]
async fn config_change_rolls_one_pod_at_a_time_when_healthy() {
    let h = Harness::new(json!({"replicas": 3}), 3);
    h.reconcile().await.unwrap();
    h.settle(3, 3);
    h.reconcile().await.unwrap();
    let old_hash = hash(&h.sts());

    h.update_spec(|s| s["logging"] = json!({"level": "debug"}));
    h.reconcile().await.unwrap();
    let sts = h.sts();
    assert_ne!(hash(&sts), old_hash);
    assert_eq!(partition(&sts), 2, "only the highest ordinal first");
    assert_eq!(h.condition("Progressing")["reason"], "RollingUpdate");
    assert!(h.event_reasons().contains(&"RollingUpdate".to_string()));
    let cm = h
        .api
        .get("/api/v1/namespaces/ns/configmaps/demo-config")
        .unwrap();
    assert!(
        cm["data"]["config.yaml"]
            .as_str()
            .unwrap()
            .contains("level: debug")
    );

    // Pod 2 not updated yet: wait.
    h.settle(3, 0);
    h.reconcile().await.unwrap();
    assert_eq!(partition(&h.sts()), 2);
    // Pod 2 updated and everyone ready: next pod.
    h.settle(3, 1);
    h.reconcile().await.unwrap();
    assert_eq!(partition(&h.sts()), 1);
    // Pod 1 updated but the cluster is unhealthy: hold.
    h.settle(3, 2);
    h.admin.set_healthy(false);
    h.reconcile().await.unwrap();
    assert_eq!(partition(&h.sts()), 1);
    assert_eq!(h.condition("Progressing")["reason"], "RolloutWaiting");
    // A pod not ready: hold too.
    h.admin.set_healthy(true);
    h.settle(2, 2);
    h.reconcile().await.unwrap();
    assert_eq!(partition(&h.sts()), 1);
    // Healthy again: last pod.
    h.settle(3, 2);
    h.reconcile().await.unwrap();
    assert_eq!(partition(&h.sts()), 0);
    h.settle(3, 3);
    h.reconcile().await.unwrap();
    assert_eq!(h.condition("Progressing")["status"], "False");
    let status = &h.api.get(BSC_PATH).unwrap()["status"];
    assert_eq!(status["currentConfigHash"], hash(&h.sts()));
}

#[tokio::test]
async fn image_change_on_unhealthy_cluster_waits_before_touching_any_pod() {
    let h = Harness::new(json!({"replicas": 3}), 3);
    h.reconcile().await.unwrap();
    h.settle(3, 3);
    h.reconcile().await.unwrap();
    h.admin.set_healthy(false);
    h.update_spec(|s| s["image"] = json!("example.com/bleepstore:2"));
    h.reconcile().await.unwrap();
    assert_eq!(partition(&h.sts()), 3, "no pod updated while unhealthy");
    assert_eq!(h.condition("Progressing")["reason"], "RolloutWaiting");
}

#[tokio::test]
async fn deletion_writes_nothing() {
    let h = Harness::new(json!({"replicas": 1}), 1);
    h.reconcile().await.unwrap();
    {
        let mut state = h.api.lock();
        let bsc = state.objects.get_mut(BSC_PATH).unwrap();
        bsc["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    h.api.clear_log();
    let action = h.reconcile().await.unwrap();
    assert_eq!(action, Action::await_change());
    assert!(h.api.log().is_empty(), "{:?}", h.api.log());
    // No finalizer was ever added.
    assert!(h.api.get(BSC_PATH).unwrap()["metadata"]["finalizers"].is_null());
}

#[tokio::test]
async fn api_errors_back_off_and_degrade() {
    let h = Harness::new(json!({"replicas": 1}), 1);
    h.api.fail("PATCH /api/v1/namespaces/ns/configmaps", 500);
    let bsc = h.bsc();
    let err = h.reconcile().await.unwrap_err();
    assert_eq!(err.reason(), "KubeApiError");
    assert_eq!(
        error_policy(bsc.clone(), &err, h.ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    let err = h.reconcile().await.unwrap_err();
    assert_eq!(
        error_policy(bsc.clone(), &err, h.ctx.clone()),
        Action::requeue(Duration::from_secs(10))
    );
    assert_eq!(h.condition("Degraded")["status"], "True");
    assert_eq!(h.condition("Degraded")["reason"], "KubeApiError");
    assert_eq!(h.condition("Ready")["status"], "False");
    assert!(h.event_reasons().contains(&"KubeApiError".to_string()));
    assert!(h.api.get(STS_PATH).is_none());
    // Recovery resets the backoff and clears Degraded.
    h.api.lock().failures.clear();
    h.reconcile().await.unwrap();
    assert_eq!(h.condition("Degraded")["status"], "False");
    assert!(h.ctx.failures.lock().unwrap().is_empty());
    assert_eq!(backoff(20), Duration::from_secs(300));
    let metrics = h.ctx.metrics.encode();
    assert!(
        metrics.contains("reconcile_errors_total{reason=\"KubeApiError\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn cloud_backend_is_reported_unsupported() {
    let h = Harness::new(
        json!({"storage": {"backend": "gcs", "gcs": {"bucket": "b"}}}),
        1,
    );
    let action = h.reconcile().await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    assert!(h.api.get(STS_PATH).is_none());
    assert!(
        h.api
            .get("/api/v1/namespaces/ns/configmaps/demo-config")
            .is_none()
    );
    assert_eq!(h.condition("Degraded")["reason"], "BackendUnsupported");
    assert_eq!(h.condition("Ready")["reason"], "BackendUnsupported");
    assert_eq!(h.event_reasons(), vec!["BackendUnsupported".to_string()]);
    // No event storm on the next pass.
    h.reconcile().await.unwrap();
    assert_eq!(h.events().len(), 1);
}

#[tokio::test]
async fn missing_service_monitor_crd_is_a_condition_not_a_failure() {
    let h = Harness::new(json!({"monitoring": {"serviceMonitor": true}}), 1);
    h.api.lock().unknown.push("servicemonitors".into());
    h.reconcile().await.unwrap();
    assert_eq!(h.condition("ServiceMonitor")["reason"], "CRDNotInstalled");
    assert_eq!(h.condition("Degraded")["status"], "False");

    // With the CRD present it is created; turned off, it is removed again.
    h.api.lock().unknown.clear();
    h.reconcile().await.unwrap();
    let path = "/apis/monitoring.coreos.com/v1/namespaces/ns/servicemonitors/demo";
    assert_eq!(
        h.api.get(path).unwrap()["spec"]["endpoints"][0]["port"],
        "ops"
    );
    assert_eq!(h.condition("ServiceMonitor")["status"], "True");
    h.update_spec(|s| s["monitoring"] = json!({"serviceMonitor": false}));
    h.reconcile().await.unwrap();
    assert!(h.api.get(path).is_none());
    assert!(h.condition("ServiceMonitor").is_null());
}

#[tokio::test]
async fn ingress_is_created_and_removed_but_foreign_objects_are_left_alone() {
    let h = Harness::new(json!({"ingress": {"hosts": ["s3.example.com"]}}), 1);
    h.reconcile().await.unwrap();
    let path = "/apis/networking.k8s.io/v1/namespaces/ns/ingresses/demo";
    assert!(h.api.get(path).is_some());
    h.update_spec(|s| s["ingress"]["enabled"] = json!(false));
    h.reconcile().await.unwrap();
    assert!(h.api.get(path).is_none());
    // Someone else's Ingress with the same name is not ours to delete.
    h.api.put(path, json!({"metadata": {"name": "demo"}}));
    h.reconcile().await.unwrap();
    assert!(h.api.get(path).is_some());
}

#[tokio::test]
async fn leader_lease_is_taken_renewed_and_respected() {
    use bleepstore_operator::leader::LeaseLock;
    let api = crate::fake::FakeApi::default();
    let client = api.client();
    let leases = kube::Api::namespaced(client, "ops");
    let a = LeaseLock::new(leases.clone(), "op", "a", Duration::from_secs(15));
    let b = LeaseLock::new(leases, "op", "b", Duration::from_secs(15));
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert!(!b.try_acquire_or_renew().await.unwrap());
    assert!(a.try_acquire_or_renew().await.unwrap());
    let lease = api
        .get("/apis/coordination.k8s.io/v1/namespaces/ops/leases/op")
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "a");
    // An expired lease is taken over.
    {
        let mut state = api.lock();
        let lease = state
            .objects
            .get_mut("/apis/coordination.k8s.io/v1/namespaces/ops/leases/op")
            .unwrap();
        lease["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
    }
    assert!(b.try_acquire_or_renew().await.unwrap());
    let lease = api
        .get("/apis/coordination.k8s.io/v1/namespaces/ops/leases/op")
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
}

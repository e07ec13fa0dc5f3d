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

    let revisions: Vec<String> = h.config_maps().into_keys().collect();
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    for path in [
        format!("{NS_PATH}/secrets/demo-internal"),
        format!("{NS_PATH}/secrets/demo-credentials"),
        format!("{NS_PATH}/configmaps/{}", revisions[0]),
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
    assert_eq!(h.event_count("SecretGenerated"), 2, "{reasons:?}");
    assert_eq!(h.condition("Progressing")["reason"], "Creating");
    assert_eq!(h.condition("Ready")["status"], "False");
    let status = &h.api.get(BSC_PATH).unwrap()["status"];
    assert_eq!(status["endpoint"], "http://demo.ns.svc:9000");
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(
        status["selector"],
        "app.kubernetes.io/instance=demo,app.kubernetes.io/name=bleepstore"
    );
    assert_eq!(status["phase"], "Creating");
    assert_eq!(
        status["generatedSecrets"],
        json!(["demo-internal", "demo-credentials"])
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
    assert_eq!(h.condition("Ready")["reason"], "AllReplicasReady");
    assert_eq!(h.condition("Progressing")["status"], "False");
    assert_eq!(h.condition("Progressing")["reason"], "Stable");
    assert_eq!(h.condition("Degraded")["status"], "False");
    assert_eq!(h.condition("Degraded")["reason"], "AsExpected");
    let status = &h.api.get(BSC_PATH).unwrap()["status"];
    assert!(
        status["currentImage"]
            .as_str()
            .unwrap()
            .starts_with("ghcr.io/bleepstore/bleepstore:")
    );

    assert_eq!(status["phase"], "Ready");

    let before = h.api.lock().objects.clone();
    let events_before = h.events().len();
    h.api.clear_log();
    h.reconcile().await.unwrap();
    // A steady cluster causes no writes at all, although the API server
    // defaulted and dropped fields of what was applied (fake::server_defaults).
    assert_eq!(h.api.writes(), Vec::<String>::new());
    assert_eq!(h.events().len(), events_before);
    assert_eq!(h.api.lock().objects, before);
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
    assert!(
        h.condition("Degraded")["message"]
            .as_str()
            .unwrap()
            .contains("mine")
    );
    // One Warning Event for the problem, not one per pass.
    h.reconcile().await.unwrap();
    assert_eq!(h.event_count("CredentialsSecretMissing"), 1);
    let warning = h
        .events()
        .into_iter()
        .find(|e| e["reason"] == "CredentialsSecretMissing")
        .unwrap();
    assert_eq!(warning["type"], "Warning");
    h.api.put(
        &format!("{NS_PATH}/secrets/mine"),
        json!({"metadata": {"name": "mine"}, "data": {}}),
    );
    h.reconcile().await.unwrap();
    assert_eq!(h.condition("Degraded")["status"], "False");
    assert!(h.event_reasons().contains(&"Recovered".to_string()));
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
    // Admin failure: nothing changes, and the status says why.
    *h.admin.fail_remove.lock().unwrap() = Some(500);
    let before = h.api.lock().objects.clone();
    h.api.clear_log();
    let action = h.reconcile().await.unwrap();
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(5)),
        "retried with backoff"
    );
    assert_eq!(replicas(&h.sts()), 3);
    let progressing = h.condition("Progressing");
    assert_eq!(progressing["status"], "True");
    assert_eq!(progressing["reason"], "ScaleDownWaiting");
    let message = progressing["message"].as_str().unwrap();
    assert!(
        message.contains("from 3 to 1") && message.contains("500"),
        "{message}"
    );
    assert_eq!(h.condition("Degraded")["reason"], "AdminApiError");
    assert_eq!(
        h.api.get(BSC_PATH).unwrap()["status"]["phase"],
        "AdminApiError"
    );
    // Only the status was written: no config, no StatefulSet, no Service.
    let writes = h.api.writes();
    assert!(
        writes
            .iter()
            .all(|w| w.ends_with("/status") || w.contains("/events") || w.starts_with("admin ")),
        "{writes:?}"
    );
    for (path, obj) in &before {
        if path != BSC_PATH && !path.contains("/events/") {
            assert_eq!(
                &h.api.get(path).unwrap(),
                obj,
                "{path} changed by a refused scale-down"
            );
        }
    }

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
    assert_eq!(h.condition("Progressing")["reason"], "ScalingDown");
    assert_eq!(h.condition("Degraded")["status"], "False");
    // PVCs are retained by default (the API server's default policy).
    assert!(h.sts()["spec"]["persistentVolumeClaimRetentionPolicy"].is_null());
}

#[tokio::test]
async fn scale_down_waits_for_the_drain_before_the_statefulset_shrinks() {
    let h = Harness::new(json!({"replicas": 3}), 3);
    h.reconcile().await.unwrap();
    h.settle(3, 3);
    h.reconcile().await.unwrap();
    *h.admin.drains.lock().unwrap() = true;
    h.update_spec(|s| s["replicas"] = json!(2));
    h.api.clear_log();
    h.reconcile().await.unwrap();
    // The member drains: the StatefulSet (and the pod and its volume) stay.
    assert_eq!(replicas(&h.sts()), 3);
    assert!(h.api.log().contains(&"admin remove 2".to_string()));
    let progressing = h.condition("Progressing");
    assert_eq!(progressing["reason"], "ScaleDownWaiting");
    let message = progressing["message"].as_str().unwrap();
    assert!(
        message.contains("draining")
            && message.contains("member 2")
            && message.contains("7 blob copies"),
        "{message}"
    );
    assert_eq!(
        h.condition("Degraded")["status"],
        "False",
        "a drain is not a problem"
    );
    assert!(h.event_reasons().contains(&"Draining".to_string()));
    // Still draining on the next pass: still no shrink, no second Event,
    // and the status lists the member as draining.
    h.reconcile().await.unwrap();
    assert_eq!(replicas(&h.sts()), 3);
    let members = &h.api.get(BSC_PATH).unwrap()["status"]["raft"]["members"];
    assert_eq!(members[2]["draining"], true, "{members}");
    let drain_events = h
        .event_reasons()
        .iter()
        .filter(|r| *r == "Draining")
        .count();
    assert_eq!(drain_events, 1);
    // Drained and gone from the group: now the StatefulSet shrinks.
    h.admin.finish_drains();
    h.reconcile().await.unwrap();
    assert_eq!(replicas(&h.sts()), 2);
    assert_eq!(h.admin.member_ids(), vec![0, 1]);
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
    // A new config revision; the old pods keep theirs until they roll.
    let revisions = h.config_maps();
    assert_eq!(revisions.len(), 2, "{:?}", revisions.keys());
    let new_revision = h.sts()["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        revisions[&new_revision]["data"]["config.yaml"]
            .as_str()
            .unwrap()
            .contains("level: debug")
    );
    for (name, cm) in &revisions {
        if *name != new_revision {
            assert!(
                !cm["data"]["config.yaml"]
                    .as_str()
                    .unwrap()
                    .contains("level: debug")
            );
        }
    }

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
    // Every pod on the new revision: the old one is collected.
    assert_eq!(
        h.config_maps().into_keys().collect::<Vec<_>>(),
        vec![new_revision]
    );
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
    h.api.fail("POST /api/v1/namespaces/ns/configmaps", 500);
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
    assert_eq!(backoff(20), Duration::from_secs(60), "capped at a minute");
    let metrics = h.ctx.metrics.encode();
    assert!(
        metrics.contains("reconcile_errors_total{reason=\"KubeApiError\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn cloud_backend_gets_its_credentials_secret_and_a_metadata_volume() {
    let h = Harness::new(
        json!({"storage": {"backend": "gcs", "gcs": {"bucket": "b", "credentialsSecret": {"name": "gcs-key"}}}}),
        1,
    );
    h.api.put(
        &format!("{NS_PATH}/secrets/gcs-key"),
        json!({"metadata": {"name": "gcs-key"}, "data": {"GOOGLE_SERVICE_ACCOUNT_KEY": "e30="}}),
    );
    h.reconcile().await.unwrap();
    let sts = h.api.get(STS_PATH).expect("a StatefulSet");
    let container = &sts["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["envFrom"][0]["secretRef"]["name"], "gcs-key");
    assert!(
        sts["spec"]["volumeClaimTemplates"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "the metadata lives on a volume: {sts}"
    );
    assert_eq!(h.config_maps().len(), 1);
    assert_eq!(h.condition("Degraded")["status"], "False");
}

#[tokio::test]
async fn a_missing_or_unusable_backend_credentials_secret_degrades() {
    let h = Harness::new(
        json!({"storage": {"backend": "aws", "aws": {"bucket": "b", "credentialsSecret": {"name": "aws-keys"}}}}),
        1,
    );
    h.reconcile().await.unwrap();
    assert_eq!(
        h.condition("Degraded")["reason"],
        "BackendCredentialsMissing"
    );
    assert!(
        h.condition("Degraded")["message"]
            .as_str()
            .unwrap()
            .contains("aws-keys")
    );
    assert_eq!(h.event_count("BackendCredentialsMissing"), 1);
    // A Secret whose keys the AWS client does not read is no better.
    h.api.put(
        &format!("{NS_PATH}/secrets/aws-keys"),
        json!({"metadata": {"name": "aws-keys"}, "data": {"access-key": "eA=="}}),
    );
    h.reconcile().await.unwrap();
    assert_eq!(
        h.condition("Degraded")["reason"],
        "BackendCredentialsInvalid"
    );
    h.api.put(
        &format!("{NS_PATH}/secrets/aws-keys"),
        json!({"metadata": {"name": "aws-keys"}, "data": {"AWS_ACCESS_KEY_ID": "eA==", "AWS_SECRET_ACCESS_KEY": "eQ=="}}),
    );
    h.reconcile().await.unwrap();
    assert_eq!(h.condition("Degraded")["status"], "False");
    assert!(h.event_reasons().contains(&"Recovered".to_string()));
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

#[tokio::test]
async fn api_error_messages_are_short_and_reach_events_and_conditions() {
    let h = Harness::new(json!({"replicas": 1}), 1);
    let long = format!("admission webhook denied the request: {}", "x".repeat(4000));
    h.api
        .fail_with("PATCH /apis/apps/v1/namespaces/ns/statefulsets", 422, &long);
    let err = h.reconcile().await.unwrap_err();
    assert!(err.summary().len() <= 512, "{}", err.summary());
    assert!(
        err.summary().starts_with(
            "applying StatefulSet demo: InternalError (422): admission webhook denied"
        ),
        "{}",
        err.summary()
    );
    let degraded = h.condition("Degraded");
    assert_eq!(degraded["reason"], "KubeApiError");
    assert!(degraded["message"].as_str().unwrap().len() <= 512);
    // The Warning Event was accepted (the fake refuses notes above 1024).
    let events: Vec<Value> = h
        .events()
        .into_iter()
        .filter(|e| e["reason"] == "KubeApiError")
        .collect();
    assert_eq!(events.len(), 1);
    assert!(
        events[0]["note"]
            .as_str()
            .unwrap()
            .contains("admission webhook")
    );
}

#[tokio::test]
async fn unreachable_admin_api_is_a_condition_with_backoff_and_one_event() {
    let h = Harness::new(json!({"replicas": 3}), 3);
    h.reconcile().await.unwrap();
    h.settle(3, 3);
    *h.admin.unreachable.lock().unwrap() = true;
    let mut delays = Vec::new();
    for _ in 0..6 {
        delays.push(h.reconcile().await.unwrap());
    }
    let degraded = h.condition("Degraded");
    assert_eq!(degraded["reason"], "AdminApiUnreachable");
    let message = degraded["message"].as_str().unwrap();
    assert!(
        message.contains("http://fake-admin/admin/v1/cluster")
            && message.contains("connection refused"),
        "{message}"
    );
    assert_eq!(h.condition("Ready")["status"], "False");
    assert_eq!(
        delays,
        [5, 10, 20, 40, 60, 60].map(|s| Action::requeue(Duration::from_secs(s))),
        "backoff capped at a minute"
    );
    let warnings = h
        .event_reasons()
        .into_iter()
        .filter(|r| r == "AdminApiUnreachable")
        .count();
    assert_eq!(warnings, 1, "one Warning per transition");
    // Reachable again: recovered, and the backoff is reset.
    *h.admin.unreachable.lock().unwrap() = false;
    assert_eq!(
        h.reconcile().await.unwrap(),
        Action::requeue(Duration::from_secs(300))
    );
    assert_eq!(h.condition("Degraded")["status"], "False");
    assert!(h.event_reasons().contains(&"Recovered".to_string()));
}

#[tokio::test]
async fn scale_down_waits_while_the_admin_api_is_unreachable() {
    let h = Harness::new(json!({"replicas": 3}), 3);
    h.reconcile().await.unwrap();
    h.settle(3, 3);
    h.reconcile().await.unwrap();
    let revisions = h.config_maps();
    h.update_spec(|s| {
        s["replicas"] = json!(1);
        s["logging"] = json!({"level": "debug"});
    });
    *h.admin.unreachable.lock().unwrap() = true;
    h.reconcile().await.unwrap();
    assert_eq!(replicas(&h.sts()), 3);
    assert_eq!(
        h.config_maps(),
        revisions,
        "a refused change writes no config"
    );
    assert_eq!(h.condition("Progressing")["reason"], "ScaleDownWaiting");
    assert_eq!(h.condition("Degraded")["reason"], "AdminApiUnreachable");
    let status = &h.api.get(BSC_PATH).unwrap()["status"];
    assert_eq!(status["replicas"], 3);
    assert_eq!(status["phase"], "AdminApiUnreachable");
}

#[tokio::test]
async fn a_deleted_generated_secret_is_reported_not_silently_regenerated() {
    let h = Harness::new(json!({"replicas": 1}), 1);
    h.reconcile().await.unwrap();
    let path = format!("{NS_PATH}/secrets/demo-credentials");
    let keys = h.api.get(&path).unwrap()["stringData"].clone();
    h.api.lock().objects.remove(&path);
    h.reconcile().await.unwrap();
    assert!(h.api.get(&path).is_none(), "not recreated with new keys");
    let degraded = h.condition("Degraded");
    assert_eq!(degraded["reason"], "GeneratedSecretDeleted");
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .contains("bleepstore.io/regenerate-secrets")
    );
    assert!(
        h.event_reasons()
            .contains(&"GeneratedSecretDeleted".to_string())
    );
    // Asked for: new keys, once per annotation value.
    {
        let mut state = h.api.lock();
        let bsc = state.objects.get_mut(BSC_PATH).unwrap();
        bsc["metadata"]["annotations"] = json!({"bleepstore.io/regenerate-secrets": "2026-12-01"});
    }
    h.reconcile().await.unwrap();
    let regenerated = h.api.get(&path).unwrap()["stringData"].clone();
    assert_ne!(regenerated, keys);
    assert!(h.event_reasons().contains(&"SecretRegenerated".to_string()));
    assert_eq!(h.condition("Degraded")["status"], "False");
    assert_eq!(
        h.api.get(BSC_PATH).unwrap()["status"]["secretsRegenerated"],
        "2026-12-01"
    );
    h.api.lock().objects.remove(&path);
    h.reconcile().await.unwrap();
    assert!(
        h.api.get(&path).is_none(),
        "the same annotation value does not regenerate twice"
    );
    assert_eq!(h.condition("Degraded")["reason"], "GeneratedSecretDeleted");
}

#[tokio::test]
async fn member_conflicts_are_reported() {
    let h = Harness::new(json!({"replicas": 1, "clusterMode": true}), 1);
    h.reconcile().await.unwrap();
    h.settle(1, 1);
    h.reconcile().await.unwrap();
    // Member 1 is registered under another address (a node that was
    // replaced without being removed).
    h.admin
        .view
        .lock()
        .unwrap()
        .members
        .push(bleepstore_operator::admin::Member {
            id: 1,
            address: "somewhere-else:9001".into(),
            voter: false,
            blobs: None,
        });
    h.update_spec(|s| s["replicas"] = json!(2));
    h.reconcile().await.unwrap();
    let message = h.condition("Degraded")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("somewhere-else:9001") && message.contains("demo-1.demo-hl"),
        "{message}"
    );
    assert_eq!(h.condition("Degraded")["reason"], "MemberConflict");
}

#[tokio::test]
async fn invalid_specs_that_reach_the_operator_are_reported() {
    // The CRD refuses replicas 0; the reconciler still says why it stops.
    let h = Harness::new(json!({"replicas": 0}), 1);
    assert_eq!(
        h.reconcile().await.unwrap(),
        Action::requeue(Duration::from_secs(300))
    );
    assert_eq!(h.condition("Degraded")["reason"], "InvalidSpec");
    assert!(h.api.get(STS_PATH).is_none());
}

#[test]
fn secrets_map_to_the_clusters_using_them() {
    use bleepstore_operator::controller::clusters_using;
    use k8s_openapi::api::core::v1::Secret;
    let user = std::sync::Arc::new(crate::bsc(
        json!({"credentials": {"secretName": "keys"}, "encryption": {"secretName": "kr", "keys": ["a"]}}),
    ));
    let generated = std::sync::Arc::new(crate::bsc(json!({})));
    let clusters = vec![user, generated];
    let secret = |name: &str, ns: &str| -> Secret {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns}})).unwrap()
    };
    assert_eq!(clusters_using(&secret("keys", "ns"), &clusters).len(), 1);
    assert_eq!(clusters_using(&secret("kr", "ns"), &clusters).len(), 1);
    assert_eq!(
        clusters_using(&secret("demo-credentials", "ns"), &clusters).len(),
        1
    );
    assert_eq!(
        clusters_using(&secret("demo-internal", "ns"), &clusters).len(),
        2
    );
    assert!(clusters_using(&secret("keys", "other"), &clusters).is_empty());
    assert!(clusters_using(&secret("unrelated", "ns"), &clusters).is_empty());
}

#[tokio::test]
async fn the_leader_releases_its_lease_on_shutdown() {
    use bleepstore_operator::leader::LeaseLock;
    let api = crate::fake::FakeApi::default();
    let leases = kube::Api::namespaced(api.client(), "ops");
    let a = LeaseLock::new(leases.clone(), "op", "a", Duration::from_secs(15));
    let b = LeaseLock::new(leases, "op", "b", Duration::from_secs(15));
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert!(!b.try_acquire_or_renew().await.unwrap());
    // b cannot release a's lease.
    b.release().await.unwrap();
    assert!(!b.try_acquire_or_renew().await.unwrap());
    a.release().await.unwrap();
    let lease = api
        .get("/apis/coordination.k8s.io/v1/namespaces/ops/leases/op")
        .unwrap();
    assert!(lease["spec"]["holderIdentity"].is_null());
    // The standby takes over at once, not after the lease duration.
    assert!(b.try_acquire_or_renew().await.unwrap());
}

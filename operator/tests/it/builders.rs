//! What the owned objects look like for representative specs.

use bleepstore_operator::builders;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::bsc;

fn sts(spec: Value) -> Value {
    let obj = bsc(spec);
    let rendered = builders::rendered_config(&obj).unwrap();
    serde_json::to_value(builders::statefulset(&obj, &rendered, obj.spec.replicas, 0)).unwrap()
}

fn container(sts: &Value) -> &Value {
    &sts["spec"]["template"]["spec"]["containers"][0]
}

fn env<'a>(c: &'a Value, name: &str) -> Option<&'a Value> {
    c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
}

#[test]
fn statefulset_for_a_local_three_node_cluster() {
    let s = sts(json!({
        "replicas": 3,
        "storage": {"local": {"size": "20Gi", "storageClassName": "fast"}},
        "image": "example.com/bleepstore:1.2.3",
        "imagePullPolicy": "IfNotPresent",
    }));
    assert_eq!(s["apiVersion"], "apps/v1");
    assert_eq!(s["kind"], "StatefulSet");
    let spec = &s["spec"];
    assert_eq!(spec["replicas"], 3);
    assert_eq!(spec["serviceName"], "demo-hl");
    assert_eq!(spec["podManagementPolicy"], "Parallel");
    assert_eq!(spec["updateStrategy"]["type"], "RollingUpdate");
    let claim = &spec["volumeClaimTemplates"][0];
    assert_eq!(claim["metadata"]["name"], "data");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "20Gi");
    assert_eq!(claim["spec"]["storageClassName"], "fast");
    // The default Retain/Retain policy and one-pod-at-a-time are left to
    // the API server: fields it may drop are never sent.
    assert!(spec["persistentVolumeClaimRetentionPolicy"].is_null());
    assert!(spec["updateStrategy"]["rollingUpdate"]["maxUnavailable"].is_null());
    assert_eq!(
        spec["selector"]["matchLabels"],
        json!({"app.kubernetes.io/instance": "demo", "app.kubernetes.io/name": "bleepstore"})
    );

    let c = container(&s);
    assert_eq!(c["image"], "example.com/bleepstore:1.2.3");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        c["args"],
        json!(["serve", "--config", "/etc/bleepstore/config.yaml"])
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "ops");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(c["startupProbe"]["httpGet"]["path"], "/health");
    assert_eq!(
        c["ports"][0],
        json!({"name": "s3", "containerPort": 9000, "protocol": "TCP"})
    );
    assert_eq!(
        c["ports"][1],
        json!({"name": "ops", "containerPort": 9001, "protocol": "TCP"})
    );
    assert_eq!(
        env(c, "POD_NAME").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env(c, "POD_NAMESPACE").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(
        env(c, "BLEEPSTORE_CLUSTER_POD_NAME").unwrap()["value"],
        "$(POD_NAME)"
    );
    // Security.
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    let pod = &s["spec"]["template"]["spec"];
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["automountServiceAccountToken"], false);
    // Mounts: config, data on the PVC, writable /tmp, secrets read-only.
    let mounts: Vec<(&str, &str)> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(mounts.contains(&("config", "/etc/bleepstore")));
    assert!(mounts.contains(&("data", "/var/lib/bleepstore")));
    assert!(mounts.contains(&("credentials", "/var/run/bleepstore/credentials")));
    assert!(mounts.contains(&("internal", "/var/run/bleepstore/internal")));
    // The local backend's data volume comes from the claim template, not a pod volume.
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(!volumes.iter().any(|v| v["name"] == "data"));
    // The hash annotation sits on the template and the StatefulSet.
    let hash = &s["spec"]["template"]["metadata"]["annotations"]["bleepstore.io/config-hash"];
    assert_eq!(hash.as_str().unwrap().len(), 16);
    assert_eq!(
        &s["metadata"]["annotations"]["bleepstore.io/config-hash"],
        hash
    );
    // Default soft anti-affinity across nodes.
    assert_eq!(
        pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
            ["topologyKey"],
        "kubernetes.io/hostname"
    );
}

#[test]
fn memory_backend_uses_an_empty_dir_and_env_credentials() {
    let s = sts(json!({
        "storage": {"backend": "memory"},
        "credentials": {"secretName": "keys", "delivery": "Env", "accessKeyKey": "id", "secretKeyKey": "secret"},
    }));
    assert!(s["spec"]["volumeClaimTemplates"].is_null());
    let volumes = s["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    let data = volumes.iter().find(|v| v["name"] == "data").unwrap();
    assert!(data["emptyDir"].is_object());
    let c = container(&s);
    let key = env(c, "BLEEPSTORE_AUTH_ACCESS_KEY").unwrap();
    assert_eq!(
        key["valueFrom"]["secretKeyRef"],
        json!({"name": "keys", "key": "id", "optional": false})
    );
    assert!(env(c, "BLEEPSTORE_AUTH_SECRET_KEY").is_some());
    assert!(!volumes.iter().any(|v| v["name"] == "credentials"));
}

#[test]
fn scheduling_and_overrides_are_passed_through() {
    let s = sts(json!({
        "scheduling": {
            "nodeSelector": {"disk": "ssd"},
            "tolerations": [{"key": "storage", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]}}},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}],
            "priorityClassName": "high",
        },
        "pod": {"labels": {"team": "s3"}, "annotations": {"a": "b"}},
        "container": {"env": [{"name": "BLEEPSTORE_LIMITS_MAX_OBJECT_SIZE", "value": "1GiB"}]},
        "resources": {"limits": {"memory": "1Gi"}},
        "imagePullSecrets": [{"name": "regcred"}],
    }));
    let pod = &s["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"], json!({"disk": "ssd"}));
    assert_eq!(pod["tolerations"][0]["key"], "storage");
    assert!(pod["affinity"]["nodeAffinity"].is_object());
    assert!(pod["affinity"]["podAntiAffinity"].is_null());
    assert_eq!(pod["topologySpreadConstraints"][0]["topologyKey"], "zone");
    assert_eq!(pod["priorityClassName"], "high");
    assert_eq!(pod["imagePullSecrets"][0]["name"], "regcred");
    let meta = &s["spec"]["template"]["metadata"];
    assert_eq!(meta["labels"]["team"], "s3");
    assert_eq!(meta["labels"]["app.kubernetes.io/name"], "bleepstore");
    assert_eq!(meta["annotations"]["a"], "b");
    let c = container(&s);
    assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
    assert_eq!(
        env(c, "BLEEPSTORE_LIMITS_MAX_OBJECT_SIZE").unwrap()["value"],
        "1GiB"
    );
}

#[test]
fn claims_can_be_deleted_on_request() {
    let s = sts(
        json!({"storage": {"local": {"deleteClaimsOnScaleDown": true, "deleteClaimsOnDelete": true}}}),
    );
    assert_eq!(
        s["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"],
        "Delete"
    );
    assert_eq!(
        s["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
        "Delete"
    );
}

#[test]
fn services() {
    let obj = bsc(
        json!({"service": {"type": "LoadBalancer", "s3Port": 80, "annotations": {"lb": "yes"}}}),
    );
    let headless = serde_json::to_value(builders::headless_service(&obj)).unwrap();
    assert_eq!(headless["metadata"]["name"], "demo-hl");
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], true);
    let client = serde_json::to_value(builders::client_service(&obj)).unwrap();
    assert_eq!(client["metadata"]["name"], "demo");
    assert_eq!(client["spec"]["type"], "LoadBalancer");
    assert_eq!(client["metadata"]["annotations"]["lb"], "yes");
    assert_eq!(
        client["spec"]["ports"][0],
        json!({"name": "s3", "port": 80, "targetPort": "s3", "protocol": "TCP"})
    );
    assert_eq!(client["spec"]["ports"][1]["port"], 9001);
    assert_eq!(builders::endpoint(&obj), "http://demo.ns.svc:80");
}

#[test]
fn config_map_holds_the_rendered_config() {
    let obj = bsc(json!({"region": "eu-central-1"}));
    let rendered = builders::rendered_config(&obj).unwrap();
    let cm = serde_json::to_value(builders::config_map(&obj, &rendered)).unwrap();
    let name = cm["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("demo-config-") && name.len() == "demo-config-".len() + 16,
        "{name}"
    );
    assert_eq!(
        cm["immutable"], true,
        "a revision never changes under running pods"
    );
    assert_eq!(
        cm["metadata"]["labels"]["bleepstore.io/config-revision"],
        name.trim_start_matches("demo-config-")
    );
    // The pods mount exactly that revision.
    let s = sts(json!({"region": "eu-central-1"}));
    let volumes = s["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    assert!(volumes.iter().any(|v| v["configMap"]["name"] == name));
    let yaml = cm["data"]["config.yaml"].as_str().unwrap();
    assert!(yaml.contains("region: eu-central-1"), "{yaml}");
    assert!(yaml.contains("data_dir: /var/lib/bleepstore"), "{yaml}");
    assert!(
        yaml.contains("access_key_file: /var/run/bleepstore/credentials/access-key"),
        "{yaml}"
    );
    assert_eq!(
        cm["metadata"]["ownerReferences"][0]["kind"],
        "BleepStoreCluster"
    );
}

#[test]
fn pdb_keeps_a_quorum() {
    assert_eq!(builders::tolerable_failures(1), 0);
    assert_eq!(builders::tolerable_failures(2), 0);
    assert_eq!(builders::tolerable_failures(3), 1);
    assert_eq!(builders::tolerable_failures(4), 1);
    assert_eq!(builders::tolerable_failures(5), 2);
    assert!(builders::pdb(&bsc(json!({"replicas": 1}))).is_none());
    assert!(builders::pdb(&bsc(json!({"replicas": 1, "clusterMode": true}))).is_none());
    let unavailable = |spec: serde_json::Value| {
        builders::pdb(&bsc(spec))
            .unwrap()
            .spec
            .unwrap()
            .max_unavailable
    };
    // Five voters survive two down, but a blob with three copies needs two
    // of them for a write: one pod at a time.
    assert_eq!(
        unavailable(json!({"replicas": 5})),
        Some(IntOrString::Int(1))
    );
    assert_eq!(
        unavailable(json!({"replicas": 5, "replicationFactor": 5})),
        Some(IntOrString::Int(2))
    );
    assert_eq!(
        unavailable(json!({"replicas": 3})),
        Some(IntOrString::Int(1))
    );
    // Two copies need both for a write quorum; a shared backend keeps its own.
    assert_eq!(
        unavailable(json!({"replicas": 3, "replicationFactor": 2})),
        Some(IntOrString::Int(0))
    );
    let aws = json!({"replicas": 5, "storage": {"backend": "aws", "aws": {"bucket": "b", "region": "r"}}});
    assert_eq!(builders::tolerable_blob_failures(&bsc(aws)), None);
    let pdb = builders::pdb(&bsc(json!({"replicas": 5}))).unwrap();
    let pdb = serde_json::to_value(pdb).unwrap();
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"],
        "demo"
    );
}

#[test]
fn ingress_with_tls() {
    assert!(builders::ingress(&bsc(json!({}))).is_none());
    let obj = bsc(
        json!({"ingress": {"className": "nginx", "hosts": ["s3.example.com", "b.example.com"], "tlsSecretName": "cert", "annotations": {"x": "y"}}}),
    );
    let ing = serde_json::to_value(builders::ingress(&obj).unwrap()).unwrap();
    assert_eq!(ing["spec"]["ingressClassName"], "nginx");
    assert_eq!(ing["spec"]["rules"][1]["host"], "b.example.com");
    let backend = &ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
    assert_eq!(backend["name"], "demo");
    assert_eq!(backend["port"]["name"], "s3");
    assert_eq!(ing["spec"]["tls"][0]["secretName"], "cert");
    assert_eq!(ing["metadata"]["annotations"]["x"], "y");
    assert_eq!(builders::endpoint(&obj), "https://s3.example.com");
}

#[test]
fn service_monitor_targets_the_ops_port() {
    assert!(builders::service_monitor(&bsc(json!({}))).is_none());
    let obj = bsc(
        json!({"monitoring": {"serviceMonitor": true, "interval": "15s", "labels": {"release": "prom"}}}),
    );
    let sm = serde_json::to_value(builders::service_monitor(&obj).unwrap()).unwrap();
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["kind"], "ServiceMonitor");
    assert_eq!(sm["metadata"]["labels"]["release"], "prom");
    assert_eq!(
        sm["spec"]["endpoints"][0],
        json!({"port": "ops", "path": "/metrics", "scheme": "http", "interval": "15s"})
    );
    assert_eq!(
        sm["spec"]["selector"]["matchLabels"]["bleepstore.io/service"],
        "headless"
    );
}

#[test]
fn ingress_routes_virtual_hosted_domains() {
    let obj = bsc(json!({
        "domains": ["s3.example.com"],
        "ingress": {"hosts": ["s3.example.com", "other.example.com"], "tlsSecretName": "cert"},
    }));
    let ing = serde_json::to_value(builders::ingress(&obj).unwrap()).unwrap();
    let hosts: Vec<&str> = ing["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert_eq!(
        hosts,
        ["s3.example.com", "other.example.com", "*.s3.example.com"]
    );
    assert_eq!(
        ing["spec"]["tls"][0]["hosts"],
        json!(["s3.example.com", "other.example.com", "*.s3.example.com"])
    );
}

#[test]
fn tls_mounts_the_certificate() {
    let s = sts(json!({"tls": {"secretName": "s3-cert"}}));
    let volumes = s["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    let tls = volumes.iter().find(|v| v["name"] == "tls").unwrap();
    assert_eq!(tls["secret"]["secretName"], "s3-cert");
    let obj = bsc(json!({"tls": {"secretName": "s3-cert"}}));
    assert!(builders::endpoint(&obj).starts_with("https://"));
}

#[test]
fn encryption_mounts_only_the_listed_keys() {
    let s =
        sts(json!({"encryption": {"secretName": "keys", "keys": ["a", "b"], "defaultKey": "a"}}));
    let pod = &s["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "encryption")
        .unwrap();
    assert_eq!(volume["secret"]["secretName"], "keys");
    assert_eq!(
        volume["secret"]["items"],
        json!([{"key": "a", "path": "a"}, {"key": "b", "path": "b"}])
    );
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "encryption")
        .unwrap();
    assert_eq!(mount["mountPath"], "/var/run/bleepstore/encryption");
    assert_eq!(mount["readOnly"], true);
}

#[test]
fn plan_rolls_from_the_top_and_scales_without_rolling() {
    use bleepstore_operator::controller::{Current, plan};
    use bleepstore_operator::status::Motion;
    let first = plan(None, 3, "h1", false);
    assert_eq!(
        (first.replicas, first.partition, first.motion),
        (3, 0, Motion::Creating)
    );
    let settled = Current {
        replicas: 3,
        ready: 3,
        updated: 3,
        partition: 0,
        hash: Some("h1".into()),
        settled: true,
    };
    assert_eq!(plan(Some(&settled), 3, "h1", true).motion, Motion::Stable);
    let p = plan(Some(&settled), 3, "h2", true);
    assert_eq!((p.partition, p.rollout_started), (2, true));
    assert_eq!(plan(Some(&settled), 3, "h2", false).partition, 3);
    let scaled = plan(Some(&settled), 5, "h1", true);
    assert_eq!((scaled.replicas, scaled.partition), (5, 0));
    assert_eq!(scaled.motion, Motion::ScalingUp { from: 3, to: 5 });
    // A stale StatefulSet status never advances the rollout.
    let stale = Current {
        partition: 2,
        hash: Some("h2".into()),
        updated: 1,
        settled: false,
        ..settled
    };
    assert_eq!(plan(Some(&stale), 3, "h2", true).partition, 2);
}

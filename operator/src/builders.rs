//! Pure functions from a `BleepStoreCluster` to the objects it owns.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort,
    EmptyDirVolumeSource, EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction, KeyToPath,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodAffinityTerm,
    PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, Secret,
    SecretEnvSource, SecretKeySelector, SecretVolumeSource, SecurityContext, Service, ServicePort,
    ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use crate::crd::{BackendKind, BleepStoreCluster, SecretDelivery};
use crate::render::{self, Names, Paths, RenderError};

pub const MANAGER: &str = "bleepstore-operator";
pub const CONFIG_HASH_ANNOTATION: &str = "bleepstore.io/config-hash";
/// Label of the ConfigMaps holding one config revision each.
pub const CONFIG_REVISION_LABEL: &str = "bleepstore.io/config-revision";
pub const DEFAULT_VOLUME_SIZE: &str = "10Gi";
/// Server UID/GID in the images (distroless `nonroot`).
pub const SERVER_UID: i64 = 65532;

/// Object names derived from the resource's name.
pub fn names(bsc: &BleepStoreCluster) -> Names {
    let name = bsc.name_any();
    Names {
        statefulset: name.clone(),
        headless_service: format!("{name}-hl"),
    }
}

pub fn client_service_name(bsc: &BleepStoreCluster) -> String {
    bsc.name_any()
}
/// The ConfigMap of one config revision (see [`config_revision`]).
pub fn config_map_name(bsc: &BleepStoreCluster, rendered: &RenderedConfig) -> String {
    format!("{}-config-{}", bsc.name_any(), config_revision(rendered))
}
pub fn internal_secret_name(bsc: &BleepStoreCluster) -> String {
    format!("{}-internal", bsc.name_any())
}
/// The credentials Secret: the user's, or the generated `<name>-credentials`.
pub fn credentials_secret_name(bsc: &BleepStoreCluster) -> String {
    bsc.spec
        .credentials
        .secret_name
        .clone()
        .unwrap_or_else(|| format!("{}-credentials", bsc.name_any()))
}

/// Labels that select this cluster's pods.
pub fn selector_labels(bsc: &BleepStoreCluster) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "bleepstore".to_string(),
        ),
        ("app.kubernetes.io/instance".to_string(), bsc.name_any()),
    ])
}

/// Labels on every owned object.
pub fn labels(bsc: &BleepStoreCluster) -> BTreeMap<String, String> {
    let mut labels = selector_labels(bsc);
    labels.insert("app.kubernetes.io/managed-by".into(), MANAGER.into());
    labels.insert("app.kubernetes.io/component".into(), "server".into());
    labels
}

/// `key=value,…` form of the selector (status.selector for the scale subresource).
pub fn selector_string(bsc: &BleepStoreCluster) -> String {
    selector_labels(bsc)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn owner(bsc: &BleepStoreCluster) -> OwnerReference {
    bsc.controller_owner_ref(&())
        .expect("a stored BleepStoreCluster has a name and uid")
}

fn meta(bsc: &BleepStoreCluster, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: bsc.namespace(),
        labels: Some(labels(bsc)),
        owner_references: Some(vec![owner(bsc)]),
        ..Default::default()
    }
}

/// The server config the pods load, with its hash.
pub struct RenderedConfig {
    pub config: bleepstore_config::Config,
    pub yaml: String,
}

pub fn rendered_config(bsc: &BleepStoreCluster) -> Result<RenderedConfig, RenderError> {
    let config = render::server_config(
        &bsc.spec,
        bsc.cluster_enabled(),
        &names(bsc),
        &Paths::default(),
    )?;
    let yaml = render::to_yaml(&config);
    Ok(RenderedConfig { config, yaml })
}

/// A config revision: the hash of the config without the replica count
/// (scaling does not make a new revision, and so rolls no pod).
pub fn config_revision(rendered: &RenderedConfig) -> String {
    let view = render::to_yaml(&render::hash_view(&rendered.config));
    hex::encode(&Sha256::digest(view.as_bytes())[..8])
}

/// The ConfigMap of one config revision. It is immutable and named by its
/// revision, so pods keep the config they started with until they are
/// rolled onto a new one; unused revisions are garbage-collected. Its
/// `cluster.replicas` is the count when the revision was made: membership is
/// changed through the admin API, not by rewriting the file.
pub fn config_map(bsc: &BleepStoreCluster, rendered: &RenderedConfig) -> ConfigMap {
    let mut metadata = meta(bsc, config_map_name(bsc, rendered));
    metadata
        .labels
        .get_or_insert_default()
        .insert(CONFIG_REVISION_LABEL.into(), config_revision(rendered));
    ConfigMap {
        metadata,
        data: Some(BTreeMap::from([(
            render::CONFIG_KEY.to_string(),
            rendered.yaml.clone(),
        )])),
        immutable: Some(true),
        ..Default::default()
    }
}

/// A Secret with `data` (string values), created once and never overwritten.
pub fn generated_secret(
    bsc: &BleepStoreCluster,
    name: String,
    data: BTreeMap<String, String>,
) -> Secret {
    Secret {
        metadata: meta(bsc, name),
        type_: Some("Opaque".into()),
        string_data: Some(data),
        ..Default::default()
    }
}

/// A random token of `bytes` bytes, hex-encoded.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS has a random source");
    hex::encode(buf)
}

/// A random access key id: 20 upper-case alphanumerics, like AWS's.
pub fn random_access_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut buf = [0u8; 20];
    getrandom::fill(&mut buf).expect("the OS has a random source");
    buf.iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn ports(bsc: &BleepStoreCluster) -> Vec<ServicePort> {
    vec![
        ServicePort {
            name: Some("s3".into()),
            port: bsc.spec.service.s3_port,
            target_port: Some(IntOrString::String("s3".into())),
            protocol: Some("TCP".into()),
            ..Default::default()
        },
        ServicePort {
            name: Some("ops".into()),
            port: bsc.spec.service.ops_port,
            target_port: Some(IntOrString::String("ops".into())),
            protocol: Some("TCP".into()),
            ..Default::default()
        },
    ]
}

/// Headless Service giving each pod a stable DNS name, published before the
/// pods are ready so peers can find each other while bootstrapping.
pub fn headless_service(bsc: &BleepStoreCluster) -> Service {
    let mut metadata = meta(bsc, names(bsc).headless_service);
    metadata
        .labels
        .get_or_insert_default()
        .insert("bleepstore.io/service".into(), "headless".into());
    Service {
        metadata,
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(bsc)),
            ports: Some(ports(bsc)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Service clients use.
pub fn client_service(bsc: &BleepStoreCluster) -> Service {
    let mut metadata = meta(bsc, client_service_name(bsc));
    let svc = &bsc.spec.service;
    metadata
        .labels
        .get_or_insert_default()
        .extend(svc.labels.clone());
    metadata
        .labels
        .get_or_insert_default()
        .insert("bleepstore.io/service".into(), "client".into());
    if !svc.annotations.is_empty() {
        metadata.annotations = Some(svc.annotations.clone());
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(svc.type_.as_str().into()),
            selector: Some(selector_labels(bsc)),
            ports: Some(ports(bsc)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn env_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn env_value(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn env_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("ops".into()),
            scheme: Some("HTTP".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

fn mount(name: &str, path: &std::path::Path, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.display().to_string(),
        read_only: Some(read_only),
        ..Default::default()
    }
}

fn secret_volume(name: &str, secret: &str, items: Option<Vec<KeyToPath>>) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            items,
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn key_to_path(key: &str, path: &str) -> KeyToPath {
    KeyToPath {
        key: key.into(),
        path: path.into(),
        ..Default::default()
    }
}

/// The Secret of the cloud backend's credentials: its keys become the
/// server's environment (`AWS_ACCESS_KEY_ID`, `AZURE_STORAGE_ACCOUNT_KEY`,
/// `GOOGLE_SERVICE_ACCOUNT_KEY`, …), which the cloud clients read. None:
/// workload identity through the pod's ServiceAccount.
pub fn cloud_credentials(spec: &crate::crd::BleepStoreClusterSpec) -> Option<&str> {
    let s = &spec.storage;
    let secret = match s.backend {
        BackendKind::Aws => s.aws.as_ref().and_then(|a| a.credentials_secret.as_ref()),
        BackendKind::Azure => s.azure.as_ref().and_then(|a| a.credentials_secret.as_ref()),
        BackendKind::Gcs => s.gcs.as_ref().and_then(|a| a.credentials_secret.as_ref()),
        BackendKind::Local | BackendKind::Memory => None,
    };
    secret.map(|r| r.name.as_str())
}

/// What the environment names of the cloud backend's credentials start with
/// (`AWS_ACCESS_KEY_ID`, `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_CLIENT_SECRET`,
/// `GOOGLE_SERVICE_ACCOUNT_KEY`, …): a credentials Secret without one such
/// key gives the cloud client nothing to use.
pub fn cloud_credential_prefix(spec: &crate::crd::BleepStoreClusterSpec) -> Option<&'static str> {
    match spec.storage.backend {
        BackendKind::Aws => Some("AWS_"),
        BackendKind::Azure => Some("AZURE_"),
        BackendKind::Gcs => Some("GOOGLE_"),
        BackendKind::Local | BackendKind::Memory => None,
    }
}

/// The server container, as the operator runs it (also what the podman test
/// reproduces).
pub fn server_container(bsc: &BleepStoreCluster) -> Container {
    let spec = &bsc.spec;
    let paths = Paths::default();
    let mut env = vec![
        env_field("POD_NAME", "metadata.name"),
        env_field("POD_NAMESPACE", "metadata.namespace"),
        env_value("BLEEPSTORE_CLUSTER_POD_NAME", "$(POD_NAME)"),
        env_value("BLEEPSTORE_CLUSTER_NAMESPACE", "$(POD_NAMESPACE)"),
    ];
    let credentials = credentials_secret_name(bsc);
    let access_key = spec
        .credentials
        .access_key_key
        .as_deref()
        .unwrap_or(render::ACCESS_KEY_KEY);
    let secret_key = spec
        .credentials
        .secret_key_key
        .as_deref()
        .unwrap_or(render::SECRET_KEY_KEY);
    let mut mounts = vec![
        mount("config", &paths.config_dir, true),
        mount("data", &paths.data_dir, false),
        mount("tmp", std::path::Path::new("/tmp"), false),
        mount("internal", &paths.internal_dir(), true),
    ];
    match spec.credentials.delivery {
        SecretDelivery::Env => {
            env.push(env_secret(
                "BLEEPSTORE_AUTH_ACCESS_KEY",
                &credentials,
                access_key,
            ));
            env.push(env_secret(
                "BLEEPSTORE_AUTH_SECRET_KEY",
                &credentials,
                secret_key,
            ));
        }
        SecretDelivery::File => mounts.push(mount("credentials", &paths.credentials_dir(), true)),
    }
    if spec.tls.is_some() {
        mounts.push(mount("tls", &paths.tls_dir(), true));
    }
    if spec.encryption.is_some() {
        mounts.push(mount("encryption", &paths.encryption_dir(), true));
    }
    env.extend(spec.container.env.iter().cloned());

    Container {
        name: "bleepstore".into(),
        image: Some(spec.image()),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_string()),
        args: Some(vec![
            "serve".into(),
            "--config".into(),
            paths.config_file().display().to_string(),
        ]),
        env: Some(env),
        env_from: cloud_credentials(spec).map(|name| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: name.to_string(),
                    optional: Some(false),
                }),
                ..Default::default()
            }]
        }),
        ports: Some(vec![
            ContainerPort {
                name: Some("s3".into()),
                container_port: render::S3_PORT.into(),
                protocol: Some("TCP".into()),
                ..Default::default()
            },
            ContainerPort {
                name: Some("ops".into()),
                container_port: render::OPS_PORT.into(),
                protocol: Some("TCP".into()),
                ..Default::default()
            },
        ]),
        startup_probe: Some(http_probe("/health", 2, 90)),
        liveness_probe: Some(http_probe("/health", 10, 3)),
        readiness_probe: Some(http_probe("/ready", 5, 3)),
        resources: spec.resources.clone(),
        volume_mounts: Some(mounts),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(SERVER_UID),
            run_as_group: Some(SERVER_UID),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn default_affinity(bsc: &BleepStoreCluster) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        topology_key: "kubernetes.io/hostname".into(),
                        label_selector: Some(LabelSelector {
                            match_labels: Some(selector_labels(bsc)),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pod template (mounting the config revision of `rendered`) without the
/// config hash annotation.
pub fn pod_template(bsc: &BleepStoreCluster, rendered: &RenderedConfig) -> PodTemplateSpec {
    let spec = &bsc.spec;
    let mut pod_labels = spec.pod.labels.clone();
    pod_labels.extend(labels(bsc));
    let mut volumes = vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map_name(bsc, rendered),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
        secret_volume(
            "internal",
            &internal_secret_name(bsc),
            Some(vec![
                key_to_path(render::ADMIN_TOKEN_KEY, render::ADMIN_TOKEN_KEY),
                key_to_path(render::CLUSTER_SECRET_KEY, render::CLUSTER_SECRET_KEY),
            ]),
        ),
    ];
    if spec.credentials.delivery == SecretDelivery::File {
        let access_key = spec
            .credentials
            .access_key_key
            .as_deref()
            .unwrap_or(render::ACCESS_KEY_KEY);
        let secret_key = spec
            .credentials
            .secret_key_key
            .as_deref()
            .unwrap_or(render::SECRET_KEY_KEY);
        volumes.push(secret_volume(
            "credentials",
            &credentials_secret_name(bsc),
            Some(vec![
                key_to_path(access_key, render::ACCESS_KEY_KEY),
                key_to_path(secret_key, render::SECRET_KEY_KEY),
            ]),
        ));
    }
    if let Some(tls) = &spec.tls {
        volumes.push(secret_volume("tls", &tls.secret_name, None));
    }
    if let Some(encryption) = &spec.encryption {
        // Only the listed keys are mounted, each under its id.
        let items = encryption
            .keys
            .iter()
            .map(|id| key_to_path(id, id))
            .collect();
        volumes.push(secret_volume(
            "encryption",
            &encryption.secret_name,
            Some(items),
        ));
    }
    if spec.storage.backend == BackendKind::Memory {
        // Temp files still need a writable directory.
        volumes.push(Volume {
            name: "data".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        });
    }
    let scheduling = &spec.scheduling;
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            annotations: (!spec.pod.annotations.is_empty()).then(|| spec.pod.annotations.clone()),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![server_container(bsc)],
            volumes: Some(volumes),
            service_account_name: spec.pod.service_account_name.clone(),
            // The workload-identity webhooks project their own token volume;
            // the server never calls the Kubernetes API.
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(45),
            image_pull_secrets: (!spec.image_pull_secrets.is_empty())
                .then(|| spec.image_pull_secrets.clone()),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(SERVER_UID),
                run_as_group: Some(SERVER_UID),
                fs_group: Some(SERVER_UID),
                fs_group_change_policy: Some("OnRootMismatch".into()),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            node_selector: (!scheduling.node_selector.is_empty())
                .then(|| scheduling.node_selector.clone()),
            tolerations: (!scheduling.tolerations.is_empty())
                .then(|| scheduling.tolerations.clone()),
            affinity: Some(
                scheduling
                    .affinity
                    .clone()
                    .unwrap_or_else(|| default_affinity(bsc)),
            ),
            topology_spread_constraints: (!scheduling.topology_spread_constraints.is_empty())
                .then(|| scheduling.topology_spread_constraints.clone()),
            priority_class_name: scheduling.priority_class_name.clone(),
            ..Default::default()
        }),
    }
}

/// Hash of everything whose change must roll the pods: the config (without
/// the replica count) and the pod template.
pub fn config_hash(rendered: &RenderedConfig, template: &PodTemplateSpec) -> String {
    let mut hasher = Sha256::new();
    hasher.update(render::to_yaml(&render::hash_view(&rendered.config)).as_bytes());
    hasher.update(serde_json::to_vec(template).expect("template serializes"));
    hex::encode(&hasher.finalize()[..8])
}

/// The StatefulSet with `replicas` pods, pods with ordinal ≥ `partition`
/// updated to the template.
pub fn statefulset(
    bsc: &BleepStoreCluster,
    rendered: &RenderedConfig,
    replicas: i32,
    partition: i32,
) -> StatefulSet {
    let spec = &bsc.spec;
    let mut template = pod_template(bsc, rendered);
    let hash = config_hash(rendered, &template);
    template
        .metadata
        .get_or_insert_default()
        .annotations
        .get_or_insert_default()
        .insert(CONFIG_HASH_ANNOTATION.into(), hash.clone());
    let mut metadata = meta(bsc, names(bsc).statefulset);
    metadata.annotations = Some(BTreeMap::from([(CONFIG_HASH_ANNOTATION.into(), hash)]));

    let local = spec.storage.local.clone().unwrap_or_default();
    // Every backend but memory keeps the metadata and the Raft log on the
    // pod's volume: with a cloud backend they are the only index of the bucket.
    let claims = (spec.storage.backend != BackendKind::Memory).then(|| {
        vec![PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                labels: Some(selector_labels(bsc)),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                storage_class_name: local.storage_class_name.clone(),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_string(),
                        local
                            .size
                            .clone()
                            .unwrap_or_else(|| Quantity(DEFAULT_VOLUME_SIZE.into())),
                    )])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]
    });
    let retain = |delete: bool| if delete { "Delete" } else { "Retain" }.to_string();
    StatefulSet {
        metadata,
        spec: StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(names(bsc).headless_service),
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector {
                match_labels: Some(selector_labels(bsc)),
                ..Default::default()
            },
            // Only fields every API server keeps: one pod at a time is the
            // default (maxUnavailable is behind a feature gate), and the
            // claim retention policy is sent only when it is not the
            // default Retain/Retain. A field the server drops would make
            // every reconcile look like a change.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateStatefulSetStrategy {
                    partition: Some(partition),
                    ..Default::default()
                }),
            }),
            template,
            volume_claim_templates: claims,
            persistent_volume_claim_retention_policy: (local.delete_claims_on_scale_down
                || local.delete_claims_on_delete)
                .then(|| StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_scaled: Some(retain(local.delete_claims_on_scale_down)),
                    when_deleted: Some(retain(local.delete_claims_on_delete)),
                }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Voters that may be down without losing a Raft quorum.
pub fn tolerable_failures(voters: i32) -> i32 {
    (voters.max(1) - 1) / 2
}

/// Members that may be down while every blob write still reaches a write
/// quorum (a majority) of its copies: with the cluster's own replication
/// (every backend but the shared cloud ones), the copies any one blob has
/// may all sit on the pods that are down.
pub fn tolerable_blob_failures(bsc: &BleepStoreCluster) -> Option<i32> {
    let shared = matches!(
        bsc.spec.storage.backend,
        BackendKind::Aws | BackendKind::Azure | BackendKind::Gcs
    );
    if shared {
        return None;
    }
    let factor = bsc.spec.replication_factor.unwrap_or(3).max(1);
    let copies = factor.min(bsc.spec.replicas.max(1));
    Some(copies - (copies / 2 + 1))
}

/// A PodDisruptionBudget that never lets voluntary disruptions take down a
/// Raft majority or a blob write quorum. Only in cluster mode with more
/// than one pod (a single pod has no quorum to protect, and a budget of 0
/// would block node drains forever).
pub fn pdb(bsc: &BleepStoreCluster) -> Option<PodDisruptionBudget> {
    if !bsc.cluster_enabled() || bsc.spec.replicas < 2 {
        return None;
    }
    Some(PodDisruptionBudget {
        metadata: meta(bsc, bsc.name_any()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(
                tolerable_blob_failures(bsc)
                    .map_or(tolerable_failures(bsc.spec.replicas), |blobs| {
                        blobs.min(tolerable_failures(bsc.spec.replicas))
                    }),
            )),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(bsc)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

pub fn ingress(bsc: &BleepStoreCluster) -> Option<Ingress> {
    let spec = bsc.spec.ingress.as_ref().filter(|i| i.enabled)?;
    let mut metadata = meta(bsc, bsc.name_any());
    let mut annotations = spec.annotations.clone();
    if bsc.spec.tls.is_some() {
        annotations
            .entry("nginx.ingress.kubernetes.io/backend-protocol".into())
            .or_insert_with(|| "HTTPS".into());
    }
    if !annotations.is_empty() {
        metadata.annotations = Some(annotations);
    }
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: client_service_name(bsc),
            port: Some(ServiceBackendPort {
                name: Some("s3".into()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    // Virtual-hosted-style requests (`bucket.<domain>`) need the wildcard
    // host of every configured domain as well.
    let mut hosts = spec.hosts.clone();
    for domain in &bsc.spec.domains {
        for host in [domain.clone(), format!("*.{domain}")] {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
    }
    let rules = hosts
        .iter()
        .map(|host| IngressRule {
            host: Some(host.clone()),
            http: Some(HTTPIngressRuleValue {
                paths: vec![HTTPIngressPath {
                    path: Some("/".into()),
                    path_type: "Prefix".into(),
                    backend: backend.clone(),
                }],
            }),
        })
        .collect();
    Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: spec.class_name.clone(),
            rules: Some(rules),
            tls: spec.tls_secret_name.as_ref().map(|secret| {
                vec![IngressTLS {
                    hosts: Some(hosts.clone()),
                    secret_name: Some(secret.clone()),
                }]
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

pub fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    )
}

/// A prometheus-operator ServiceMonitor scraping every pod through the
/// headless Service.
pub fn service_monitor(bsc: &BleepStoreCluster) -> Option<DynamicObject> {
    let monitoring = &bsc.spec.monitoring;
    if !monitoring.service_monitor {
        return None;
    }
    let mut metadata = meta(bsc, bsc.name_any());
    metadata
        .labels
        .get_or_insert_default()
        .extend(monitoring.labels.clone());
    let mut endpoint = serde_json::json!({"port": "ops", "path": "/metrics", "scheme": "http"});
    if let Some(interval) = &monitoring.interval {
        endpoint["interval"] = interval.clone().into();
    }
    let mut selector = selector_labels(bsc);
    selector.insert("bleepstore.io/service".into(), "headless".into());
    let mut obj = DynamicObject::new(&bsc.name_any(), &service_monitor_resource());
    obj.metadata = metadata;
    obj.data = serde_json::json!({
        "spec": {
            "selector": {"matchLabels": selector},
            "endpoints": [endpoint],
        }
    });
    Some(obj)
}

/// The S3 endpoint clients should use.
pub fn endpoint(bsc: &BleepStoreCluster) -> String {
    let tls = bsc.spec.tls.is_some();
    if let Some(ingress) = bsc.spec.ingress.as_ref().filter(|i| i.enabled)
        && let Some(host) = ingress.hosts.first()
    {
        let scheme = if ingress.tls_secret_name.is_some() {
            "https"
        } else {
            "http"
        };
        return format!("{scheme}://{host}");
    }
    let scheme = if tls { "https" } else { "http" };
    format!(
        "{scheme}://{}.{}.svc:{}",
        client_service_name(bsc),
        bsc.namespace().unwrap_or_else(|| "default".into()),
        bsc.spec.service.s3_port
    )
}

/// Base URL of the admin API (operations port through the client Service).
pub fn admin_base_url(bsc: &BleepStoreCluster) -> String {
    format!(
        "http://{}.{}.svc.{}:{}",
        client_service_name(bsc),
        bsc.namespace().unwrap_or_else(|| "default".into()),
        bsc.spec.cluster_domain,
        bsc.spec.service.ops_port
    )
}

/// Address a member advertises (DESIGN.md §7).
pub fn member_address(bsc: &BleepStoreCluster, ordinal: i32) -> String {
    let names = names(bsc);
    format!(
        "{}-{ordinal}.{}.{}.svc.{}:{}",
        names.statefulset,
        names.headless_service,
        bsc.namespace().unwrap_or_else(|| "default".into()),
        bsc.spec.cluster_domain,
        render::OPS_PORT
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> BleepStoreCluster {
        let path = format!(
            "{}/../manifests/examples/{name}.yaml",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("example");
        let mut bsc: BleepStoreCluster = serde_yaml_ng::from_str(&text).expect("parse");
        bsc.metadata.namespace = Some("ns".into());
        bsc.metadata.uid = Some("uid".into());
        bsc
    }

    #[test]
    fn cloud_backends_render_their_config_credentials_and_a_metadata_volume() {
        for (name, kind, secret) in [
            ("cloud-aws", bleepstore_config::Backend::Aws, "store-aws"),
            (
                "cloud-azure",
                bleepstore_config::Backend::Azure,
                "store-azure",
            ),
            ("cloud-gcs", bleepstore_config::Backend::Gcs, "store-gcs"),
        ] {
            let bsc = example(name);
            let rendered = rendered_config(&bsc).expect("renders");
            let storage = &rendered.config.storage;
            assert_eq!(storage.backend, kind, "{name}");
            let bucket = match kind {
                bleepstore_config::Backend::Aws => storage.aws.as_ref().map(|c| c.bucket.clone()),
                bleepstore_config::Backend::Azure => {
                    storage.azure.as_ref().map(|c| c.container.clone())
                }
                _ => storage.gcs.as_ref().map(|c| c.bucket.clone()),
            };
            assert!(bucket.is_some_and(|b| !b.is_empty()), "{name}");
            let container = server_container(&bsc);
            let from = container.env_from.expect("credentials from the Secret");
            assert_eq!(
                from[0].secret_ref.as_ref().map(|s| s.name.as_str()),
                Some(secret)
            );
            let set = statefulset(&bsc, &rendered, 3, 0);
            let claims = set.spec.volume_claim_templates;
            assert!(claims.is_some(), "{name}: metadata needs a volume");
        }
    }

    #[test]
    fn without_a_credentials_secret_the_pods_use_their_service_account() {
        let mut bsc = example("cloud-gcs");
        if let Some(gcs) = bsc.spec.storage.gcs.as_mut() {
            gcs.credentials_secret = None;
        }
        bsc.spec.pod.service_account_name = Some("bleepstore-gcs".into());
        let rendered = rendered_config(&bsc).expect("renders");
        assert!(server_container(&bsc).env_from.is_none());
        let pod = pod_template(&bsc, &rendered).spec.expect("pod spec");
        assert_eq!(pod.service_account_name.as_deref(), Some("bleepstore-gcs"));
    }
}

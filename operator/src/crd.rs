//! The `BleepStoreCluster` custom resource (`bleepstore.io/v1alpha1`).
//!
//! The CRD YAML in `crds/` is generated from these types by `crdgen`; a test
//! fails when the checked-in file drifts. Backend choice is a plain string enum
//! plus one optional settings struct per backend (an internally tagged enum
//! would make kube's schema generation panic), tied together by CEL rules.

// Several `printcolumn(type_ = …)` share a value, which clippy mistakes for
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, ResourceRequirements, Toleration,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "bleepstore.io";
pub const DEFAULT_IMAGE_REPO: &str = "ghcr.io/bleepstore/bleepstore";

/// Desired state of a BleepStore S3 service.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "bleepstore.io",
    version = "v1alpha1",
    kind = "BleepStoreCluster",
    namespaced,
    shortname = "bsc",
    category = "bleepstore",
    status = "BleepStoreClusterStatus",
    derive = "PartialEq",
    doc = "A BleepStore S3-compatible object store managed by the BleepStore operator.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Backend",
        type_ = "string",
        json_path = ".spec.storage.backend"
    ),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".status.endpoint"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', starting with a letter): it names Services and pods"),
    validation = Rule::new("size(self.metadata.name) <= 50").message("metadata.name must be at most 50 characters: pod names and the labels derived from it must stay within 63")
)]
#[x_kube(validation = Rule::new("self.replicas >= 1").message("replicas must be at least 1"))]
#[serde(rename_all = "camelCase")]
pub struct BleepStoreClusterSpec {
    /// Number of server pods. Above 1 the pods form a Raft cluster.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1))]
    pub replicas: i32,

    /// Run the server in cluster (Raft) mode. Defaults to `replicas > 1`; set
    /// it to `true` on a single-node cluster that should be able to scale out
    /// later without a migration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_mode: Option<bool>,

    /// Server image; defaults to the operator's matching release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    /// Image pull policy of the server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,

    /// Secrets used to pull the server image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// CPU and memory requests and limits of the server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Where object data lives.
    #[serde(default)]
    pub storage: StorageSpec,

    /// Root S3 credentials.
    #[serde(default)]
    pub credentials: CredentialsSpec,

    /// Region reported by GetBucketLocation and expected in SigV4 scopes.
    #[serde(default = "default_region")]
    #[schemars(length(min = 1))]
    pub region: String,

    /// Domains under which `<bucket>.<domain>` is virtual-hosted-style addressing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,

    /// The client Service in front of the S3 port.
    #[serde(default)]
    pub service: ServiceSpec,

    /// Optional Ingress for the S3 endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,

    /// Serve S3 over TLS with the certificate in a `kubernetes.io/tls` Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,

    /// Master keys for server-side encryption with server-managed keys
    /// (SSE-S3, SSE-KMS). Without them such requests are refused; SSE-C
    /// needs no keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionSpec>,

    /// Where the pods may run.
    #[serde(default)]
    pub scheduling: SchedulingSpec,

    /// Extra labels and annotations for the pods.
    #[serde(default)]
    pub pod: PodOverrides,

    /// Extra settings for the server container.
    #[serde(default)]
    pub container: ContainerOverrides,

    /// Prometheus monitoring.
    #[serde(default)]
    pub monitoring: MonitoringSpec,

    /// Server logging.
    #[serde(default)]
    pub logging: LoggingSpec,

    /// Copies kept of each blob with the local backend in cluster mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub replication_factor: Option<i32>,

    /// DNS suffix of the Kubernetes cluster.
    #[serde(default = "default_cluster_domain")]
    pub cluster_domain: String,
}

fn default_replicas() -> i32 {
    1
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_cluster_domain() -> String {
    "cluster.local".into()
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[default]
    Local,
    Memory,
    Aws,
    Azure,
    Gcs,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Memory => "memory",
            BackendKind::Aws => "aws",
            BackendKind::Azure => "azure",
            BackendKind::Gcs => "gcs",
        }
    }
}

/// Storage backend and its settings. Exactly the settings block of the chosen
/// backend may be present (`local` is optional and has defaults).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(
    validation = Rule::new("self.backend != 'memory' || !has(self.local)").message("storage.local (the pod volume) is not used with backend memory"),
    validation = Rule::new("(self.backend == 'aws') == has(self.aws)").message("storage.aws must be set exactly when backend is aws"),
    validation = Rule::new("(self.backend == 'azure') == has(self.azure)").message("storage.azure must be set exactly when backend is azure"),
    validation = Rule::new("(self.backend == 'gcs') == has(self.gcs)").message("storage.gcs must be set exactly when backend is gcs"),
    validation = Rule::new("self.backend == oldSelf.backend").message("storage.backend is immutable"),
    validation = Rule::new("(has(self.local) && has(self.local.size) ? string(self.local.size) : '10Gi') == (has(oldSelf.local) && has(oldSelf.local.size) ? string(oldSelf.local.size) : '10Gi')").message("storage.local.size is immutable: volume claim templates cannot change after creation (an unset size is 10Gi)"),
    validation = Rule::new("(has(self.local) && has(self.local.storageClassName) ? self.local.storageClassName : '') == (has(oldSelf.local) && has(oldSelf.local.storageClassName) ? oldSelf.local.storageClassName : '')").message("storage.local.storageClassName is immutable: volume claim templates cannot change after creation (unset means the cluster default)")
)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// `local` (files on a PersistentVolume per pod), `memory` (lost on
    /// restart), or a cloud object store: `aws`, `azure`, `gcs`.
    #[serde(default)]
    pub backend: BackendKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs: Option<GcsStorage>,
}

/// A PersistentVolumeClaim per pod holds the metadata and the Raft log, and
/// with backend local the blobs too (every backend but memory). Size and
/// StorageClass are fixed at creation (the StatefulSet's volume claim
/// templates are immutable).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(
    validation = Rule::new("!has(self.size) || string(self.size).matches('^[0-9]+([.][0-9]+)?([KMGTPE]i?)?$')").message("storage.local.size must be a quantity such as 10Gi, 500Mi or 1Ti")
)]
#[serde(rename_all = "camelCase")]
pub struct LocalStorage {
    /// Size of each pod's volume (default 10Gi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// StorageClass of the volumes; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Delete the claim of a pod removed by a scale-down (default: keep it).
    #[serde(default)]
    pub delete_claims_on_scale_down: bool,
    /// Delete all claims when the BleepStoreCluster is deleted (default: keep them).
    #[serde(default)]
    pub delete_claims_on_delete: bool,
}

/// Reference to a Secret holding cloud credentials.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// Name of a Secret in the resource's namespace. Every key is exposed to
    /// the server as an environment variable of the same name.
    pub name: String,
}

/// Blobs stored as objects in an AWS S3 (or S3-compatible) bucket.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsStorage {
    #[schemars(length(min = 1))]
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Secret with `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`; workload
    /// identity is used when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<CredentialsSecretRef>,
}

/// Blobs stored in an Azure Blob Storage container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureStorage {
    #[schemars(length(min = 1))]
    pub container: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Secret with `AZURE_STORAGE_ACCOUNT_KEY` or `AZURE_STORAGE_SAS_TOKEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<CredentialsSecretRef>,
}

/// Blobs stored in a Google Cloud Storage bucket.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcsStorage {
    #[schemars(length(min = 1))]
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Secret with `GOOGLE_SERVICE_ACCOUNT_KEY` (a service account JSON key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<CredentialsSecretRef>,
}

/// How the server receives a Secret's values.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum SecretDelivery {
    /// Mounted as files and referenced from the config file (default).
    #[default]
    File,
    /// Passed as `BLEEPSTORE_AUTH_*` environment variables.
    Env,
}

/// Root S3 credentials.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSpec {
    /// Existing Secret with the keys. When unset the operator creates
    /// `<name>-credentials` with random keys once and never overwrites it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Key of the access key id in the Secret (default `access-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_key: Option<String>,
    /// Key of the secret access key in the Secret (default `secret-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_key: Option<String>,
    /// `File` (default) or `Env`.
    #[serde(default)]
    pub delivery: SecretDelivery,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// The client Service.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.s3Port != self.opsPort").message("service.s3Port and service.opsPort must differ"))]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Service port of the S3 API (container port 9000).
    #[serde(default = "default_s3_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub s3_port: i32,
    /// Service port of the operations listener (container port 9001).
    #[serde(default = "default_ops_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub ops_port: i32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn default_s3_port() -> i32 {
    9000
}
fn default_ops_port() -> i32 {
    9001
}

impl Default for ServiceSpec {
    fn default() -> Self {
        ServiceSpec {
            type_: ServiceType::default(),
            s3_port: default_s3_port(),
            ops_port: default_ops_port(),
            annotations: BTreeMap::new(),
            labels: BTreeMap::new(),
        }
    }
}

/// An Ingress routing the hosts to the S3 port.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new("!self.enabled || size(self.hosts) > 0").message("ingress.hosts must not be empty when the ingress is enabled"))]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub hosts: Vec<String>,
    /// Secret with the certificate for the hosts (TLS terminated at the ingress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn default_true() -> bool {
    true
}

/// TLS on the S3 port.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// A `kubernetes.io/tls` Secret (keys `tls.crt` and `tls.key`). The pods
    /// also talk to each other over TLS with it.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// The key of that Secret holding the CA that issued the certificate
    /// (cert-manager: `ca.crt`). Pods then trust each other's certificates
    /// from that CA, so a renewed certificate keeps the cluster together
    /// while the pods restart one by one; without it a pod trusts only the
    /// certificate chain it serves itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_key: Option<String>,
}

/// The encryption keyring: one Secret whose entries are master keys named by
/// their id, each 32 bytes as base64 or 64 hex digits
/// (`openssl rand -base64 32`). Changing `keys` or `defaultKey` rolls the pods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("size(self.keys) > 0").message("encryption.keys must name at least one key"),
    validation = Rule::new("!has(self.defaultKey) || self.defaultKey in self.keys").message("encryption.defaultKey must be one of encryption.keys"),
    validation = Rule::new("has(self.defaultKey) || size(self.keys) == 1").message("encryption.defaultKey is required when encryption.keys names more than one key")
)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionSpec {
    /// The Secret holding the keys.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// Ids of the keys in the keyring, each an entry of the Secret. Keep old
    /// keys listed until no data uses them (see docs/encryption.md).
    #[schemars(length(max = 64))]
    pub keys: Vec<String>,
    /// The key new objects are wrapped with (required with several keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_key: Option<String>,
    /// Refuse SSE-C requests that did not arrive over TLS (default true).
    /// A TLS-terminating Ingress that sets `X-Forwarded-Proto: https` counts
    /// as TLS.
    #[serde(default = "default_true")]
    pub require_tls_for_sse_c: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingSpec {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// When unset, pods prefer to run on different nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodOverrides {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// ServiceAccount of the server pods: the identity a cloud backend uses
    /// without a credentials Secret (IRSA / EKS Pod Identity, GKE or Azure
    /// workload identity). The namespace's `default` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverrides {
    /// Extra environment variables (e.g. `BLEEPSTORE_LIMITS_MAX_OBJECT_SIZE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// Create a prometheus-operator ServiceMonitor scraping `/metrics` on the
    /// operations port. Skipped with a condition when its CRD is absent.
    #[serde(default)]
    pub service_monitor: bool,
    /// Scrape interval, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Extra labels on the ServiceMonitor (to match a Prometheus selector).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggingSpec {
    /// A tracing filter: `info`, `debug`, `bleepstore=debug,info`, …
    #[serde(default = "default_log_level")]
    #[schemars(length(min = 1))]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

fn default_log_level() -> String {
    "info".into()
}

impl Default for LoggingSpec {
    fn default() -> Self {
        LoggingSpec {
            level: default_log_level(),
            format: LogFormat::default(),
        }
    }
}

/// Observed state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BleepStoreClusterStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// One word for `kubectl get`: `Ready`, what is in progress, or the
    /// reason it is degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Secrets the operator generated for this resource. One of them gone
    /// is reported, not silently regenerated with new keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generated_secrets: Vec<String>,
    /// The `bleepstore.io/regenerate-secrets` annotation value last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_regenerated: Option<String>,
    /// `Ready`, `Progressing`, `Degraded` (and `ServiceMonitor` when asked for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    /// Label selector of the pods (for the scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// S3 endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Image the pods are running (once a rollout completes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_image: Option<String>,
    /// Config hash of the pod template the pods have converged to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_config_hash: Option<String>,
    /// The server runs in Raft cluster mode. Once on, it stays on (unless
    /// `spec.clusterMode` says otherwise) so scaling down to one pod keeps
    /// the Raft group.
    #[serde(default)]
    pub cluster_mode: bool,
    /// Raft view reported by the server's admin API (cluster mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft: Option<RaftStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RaftStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<u64>,
    #[serde(default)]
    pub members: Vec<RaftMember>,
    #[serde(default)]
    pub healthy: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RaftMember {
    pub id: u64,
    pub address: String,
    pub voter: bool,
    /// Being drained before it leaves: its blob copies move elsewhere.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
}

impl BleepStoreCluster {
    /// Whether the server runs in Raft cluster mode: `spec.clusterMode` if
    /// set, else on when `replicas > 1` or once it has been on.
    pub fn cluster_enabled(&self) -> bool {
        self.spec.cluster_mode.unwrap_or(
            self.spec.replicas > 1 || self.status.as_ref().is_some_and(|s| s.cluster_mode),
        )
    }
}

impl BleepStoreClusterSpec {
    pub fn image(&self) -> String {
        self.image
            .clone()
            .unwrap_or_else(|| format!("{DEFAULT_IMAGE_REPO}:{}", env!("CARGO_PKG_VERSION")))
    }
}

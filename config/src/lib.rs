//! BleepStore's configuration contract.
//!
//! The server loads it; the operator renders it. Both depend on this crate so
//! the file the operator writes is, by construction, one the server accepts
//! (DESIGN.md §1: the operator never links the storage engine).
//!
//! Layering, lowest to highest: built-in defaults → YAML file → environment
//! variables (`BLEEPSTORE_<SECTION>_<FIELD>`) → command-line flags.

mod backends;
mod load;
mod secret;
mod size;

pub use backends::{
    AwsBackendConfig, AzureBackendConfig, BackendSpec, DEFAULT_BACKEND, GcsBackendConfig,
    LocalBackendConfig, NamedBackends, STORAGE_CLASSES, SecretSource, SqliteBackendConfig,
    is_backend_name,
};
pub use load::{ConfigError, ENV_PREFIX, Overrides, load};
pub use secret::Secret;
pub use size::ByteSize;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The documented fallback credentials for a laptop run with no configuration.
pub const DEFAULT_ACCESS_KEY: &str = "bleepstore";
pub const DEFAULT_SECRET_KEY: &str = "bleepstore-secret";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub metadata: MetadataConfig,
    pub auth: AuthConfig,
    pub logging: LoggingConfig,
    pub limits: LimitsConfig,
    pub multipart: MultipartConfig,
    pub cluster: ClusterConfig,
    pub encryption: EncryptionConfig,
    pub lifecycle: LifecycleConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the S3 API listener (port 9000 serves S3 only).
    pub s3_listen: SocketAddr,
    /// Address of the operations listener: health, readiness, metrics, admin.
    pub ops_listen: SocketAddr,
    /// Region reported by GetBucketLocation and expected in SigV4 scopes.
    pub region: String,
    /// Domains under which `<bucket>.<domain>` is virtual-hosted-style addressing.
    pub domains: Vec<String>,
    /// How long SIGTERM waits for in-flight requests before exiting.
    pub shutdown_timeout_secs: u64,
    /// Serve the S3 port over TLS with this certificate and key (PEM files).
    pub tls: Option<TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            s3_listen: SocketAddr::from(([0, 0, 0, 0], 9000)),
            ops_listen: SocketAddr::from(([0, 0, 0, 0], 9001)),
            region: "us-east-1".into(),
            domains: Vec::new(),
            shutdown_timeout_secs: 30,
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Blobs as files under `storage.data_dir/blobs`.
    Local,
    /// Blobs in process memory; everything is lost on exit.
    Memory,
    /// Blobs as chunk rows in `storage.sqlite.path`.
    Sqlite,
    /// Blobs as objects in the S3 bucket `storage.aws`.
    Aws,
    /// Blobs in the Azure Blob container `storage.azure`.
    Azure,
    /// Blobs in the Google Cloud Storage bucket `storage.gcs`.
    Gcs,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Memory => "memory",
            Backend::Sqlite => "sqlite",
            Backend::Aws => "aws",
            Backend::Azure => "azure",
            Backend::Gcs => "gcs",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub backend: Backend,
    /// Root of everything this node keeps on disk (blobs, metadata, temp files).
    pub data_dir: PathBuf,
    /// Blobs no metadata references are removed once they are this old;
    /// younger ones may belong to a write still in flight.
    pub orphan_grace_secs: u64,
    /// How often the background sweep for orphan blobs runs.
    pub sweep_interval_secs: u64,
    /// In a cluster on a shared (cloud) backend, how long a freed blob is
    /// kept before it is deleted: another node may still be streaming it to
    /// a client, and pins are per node.
    pub shared_free_delay_secs: u64,
    /// Objects (and parts) up to this size are kept in the metadata itself:
    /// a small PUT is one log append and no blob file. 0 turns it off.
    pub inline_max: ByteSize,
    /// Settings of the main backend, by kind (only the one `backend` names is used).
    pub local: LocalBackendConfig,
    pub sqlite: SqliteBackendConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsBackendConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureBackendConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcs: Option<GcsBackendConfig>,
    /// More backends, by name, for storage classes (`{archive: {type: aws, …}}`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub backends: NamedBackends,
    /// Storage class → backend name (`default` is the main backend); classes
    /// not listed are kept on the main backend.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub classes: BTreeMap<String, String>,
}

impl StorageConfig {
    /// The main backend with its settings.
    pub fn main_backend(&self) -> Result<BackendSpec, ConfigError> {
        let section = |name: &str| ConfigError::Invalid {
            field: format!("storage.{name}"),
            message: format!("is required when storage.backend is {name}"),
        };
        Ok(match self.backend {
            Backend::Local => BackendSpec::Local(self.local.clone()),
            Backend::Memory => BackendSpec::Memory,
            Backend::Sqlite => BackendSpec::Sqlite(self.sqlite.clone()),
            Backend::Aws => BackendSpec::Aws(self.aws.clone().ok_or_else(|| section("aws"))?),
            Backend::Azure => {
                BackendSpec::Azure(self.azure.clone().ok_or_else(|| section("azure"))?)
            }
            Backend::Gcs => BackendSpec::Gcs(self.gcs.clone().ok_or_else(|| section("gcs"))?),
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: String, message: String| Err(ConfigError::Invalid { field, message });
        let main = self.main_backend()?;
        if let Err((field, message)) = main.check() {
            return invalid(format!("storage.{}.{field}", main.kind()), message);
        }
        for (name, spec) in &self.backends {
            if !is_backend_name(name) || name == DEFAULT_BACKEND {
                return invalid(
                    format!("storage.backends.{name}"),
                    "a backend name is 1-32 lowercase letters, digits and -, starts with a letter, and is not `default`".into(),
                );
            }
            if let Err((field, message)) = spec.check() {
                return invalid(format!("storage.backends.{name}.{field}"), message);
            }
        }
        for (class, backend) in &self.classes {
            if !STORAGE_CLASSES.contains(&class.as_str()) {
                return invalid(
                    format!("storage.classes.{class}"),
                    format!(
                        "is not an S3 storage class ({})",
                        STORAGE_CLASSES.join(", ")
                    ),
                );
            }
            if backend != DEFAULT_BACKEND && !self.backends.contains_key(backend) {
                return invalid(
                    format!("storage.classes.{class}"),
                    format!(
                        "names no backend in storage.backends (nor `{DEFAULT_BACKEND}`): {backend:?}"
                    ),
                );
            }
        }
        Ok(())
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: Backend::Local,
            data_dir: PathBuf::from("./bleepstore-data"),
            orphan_grace_secs: 3600,
            sweep_interval_secs: 3600,
            shared_free_delay_secs: 900,
            inline_max: ByteSize(16 * 1024),
            local: LocalBackendConfig::default(),
            sqlite: SqliteBackendConfig::default(),
            aws: None,
            azure: None,
            gcs: None,
            backends: BTreeMap::new(),
            classes: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataConfig {
    /// SQLite database file; defaults to `<data_dir>/metadata.db`.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Root access key id; `access_key_file` wins when both are set.
    pub access_key: Option<Secret>,
    pub secret_key: Option<Secret>,
    /// Files holding the root keys (for mounted Kubernetes Secrets).
    pub access_key_file: Option<PathBuf>,
    pub secret_key_file: Option<PathBuf>,
    /// Display name of the root user in ACLs and listings.
    pub display_name: String,
    /// Canonical user id of the root user; derived from the access key when unset.
    pub owner_id: Option<String>,
    /// Further users, each with its own keys and owner identity.
    pub users: Vec<UserConfig>,
    /// Bearer token guarding `/admin/v1/…` on the operations port.
    pub admin_token: Option<Secret>,
    pub admin_token_file: Option<PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            access_key: None,
            secret_key: None,
            access_key_file: None,
            secret_key_file: None,
            display_name: "bleepstore".into(),
            owner_id: None,
            users: Vec::new(),
            admin_token: None,
            admin_token_file: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub access_key: Secret,
    pub secret_key: Secret,
    pub display_name: String,
    /// Canonical user id; derived from the access key when unset.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Email shown for `emailAddress` grants.
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// A tracing filter: `info`, `debug`, `bleepstore=debug,info`, …
    pub level: String,
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest object a single PUT may store (EntityTooLarge above it).
    pub max_object_size: ByteSize,
    /// Longest lifetime a presigned URL may ask for.
    pub max_presign_expiry_secs: u64,
    /// Accepted difference between a request's date and the server clock.
    pub clock_skew_secs: u64,
    /// A request whose headers do not arrive within this many seconds is dropped.
    pub header_timeout_secs: u64,
    /// A body that sends nothing for this many seconds fails with RequestTimeout.
    pub body_idle_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_object_size: ByteSize(5 * 1024 * 1024 * 1024),
            max_presign_expiry_secs: 7 * 24 * 3600,
            clock_skew_secs: 15 * 60,
            header_timeout_secs: 30,
            body_idle_timeout_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MultipartConfig {
    /// Smallest size of every part but the last (EntityTooSmall below it).
    pub min_part_size: ByteSize,
    /// Uploads older than this are aborted by the background sweep.
    pub upload_expiry_secs: u64,
}

impl Default for MultipartConfig {
    fn default() -> Self {
        MultipartConfig {
            min_part_size: ByteSize(5 * 1024 * 1024),
            upload_expiry_secs: 7 * 24 * 3600,
        }
    }
}

/// The lifecycle worker: how often it applies buckets' expiration rules,
/// and (for tests) how long a lifecycle "day" lasts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleConfig {
    /// Seconds between passes over the buckets that have rules.
    pub interval_secs: u64,
    /// A lifecycle day of this many seconds instead of 86400, with no
    /// rounding to midnight; 0 means real days. For tests only.
    pub debug_day_secs: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            interval_secs: 3600,
            debug_day_secs: 0,
        }
    }
}

/// Cluster mode (DESIGN.md §7). In Kubernetes the node id is the ordinal of
/// `pod_name` and peers are `<statefulset>-<id>.<headless_service>.<namespace>.svc.<cluster_domain>`;
/// elsewhere `node_id` and a static `peers` list say the same.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Take part in a Raft group with other nodes. Off, the server is a
    /// group of one that talks to nobody.
    pub enabled: bool,
    /// This node's id; default: the ordinal at the end of `pod_name`, else 0.
    pub node_id: Option<u64>,
    /// The `host:port` other nodes reach this node's operations port at;
    /// default: its peer address, else `ops_listen`.
    pub advertise: Option<String>,
    /// The other nodes, outside Kubernetes: id and `host:port` of their
    /// operations port (this node may be listed too).
    pub peers: Vec<PeerConfig>,
    /// Connect to these addresses instead of a peer's own (`id: host:port`):
    /// for networks with proxies, and for tests that put a proxy on a link.
    #[serde(deserialize_with = "node_id_keys")]
    pub dial: std::collections::BTreeMap<u64, String>,
    /// Host names resolved to these addresses instead of through DNS
    /// (`name: ip` or `name: ip:port`), like `/etc/hosts`.
    pub hosts: std::collections::BTreeMap<String, String>,
    /// This pod's name (`<statefulset>-<ordinal>`); usually from `POD_NAME`.
    pub pod_name: Option<String>,
    pub namespace: Option<String>,
    pub statefulset: Option<String>,
    pub headless_service: Option<String>,
    /// Pods the StatefulSet was created with: the peers node 0 asks before
    /// it may found a new group.
    pub replicas: u32,
    /// Copies kept of each blob with the local backend (capped at the member count).
    pub replication_factor: u32,
    /// Voters kept at most (odd; further members are learners).
    pub max_voters: u32,
    /// Shared secret authenticating the internal routes between nodes.
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
    /// DNS suffix of the cluster (`svc.cluster.local`).
    pub cluster_domain: String,
    /// `linearizable` (default): every read sees every write acknowledged
    /// before it began, through any node. `local`: a node answers from what
    /// it has applied, which may be slightly behind.
    pub read_consistency: ReadConsistency,
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// A follower that hears no leader for this long (to twice as long,
    /// randomised) starts an election.
    pub election_timeout_ms: u64,
    /// How long a write or a consistent read may wait for the group before
    /// it fails with 503.
    pub request_timeout_ms: u64,
    /// Log entries between snapshots of the metadata (the log is compacted
    /// after each).
    pub snapshot_every: u64,
    /// The background work that brings every blob back to its replication
    /// factor and moves copies after membership changes.
    pub repair: RepairConfig,
    /// The background check of this node's blob copies.
    pub scrub: ScrubConfig,
    /// With `server.tls` set, nodes call each other over TLS too, and a
    /// peer must present a certificate that is this node's own, or that
    /// chains to a certificate in `server.tls.cert_file` or in this file
    /// (PEM CAs, e.g. a cert-manager Secret's `ca.crt`) and names the peer's
    /// address or one of the names in this node's certificate.
    pub tls_ca_file: Option<PathBuf>,
}

/// `cluster.repair`: run by the leader over every blob; copies flow from a
/// holder straight to the node that lacks one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RepairConfig {
    /// Seconds between passes over all blobs; a membership change, a drain
    /// or a copy found lost or corrupt starts one at once.
    pub interval_secs: u64,
    /// Copies in flight at once.
    pub concurrency: u32,
    /// Bytes per second a node receives repair copies at, at most (0: no
    /// limit), so client traffic keeps its throughput.
    pub bandwidth: ByteSize,
}

impl Default for RepairConfig {
    fn default() -> Self {
        RepairConfig {
            interval_secs: 60,
            concurrency: 4,
            bandwidth: ByteSize(64 * 1024 * 1024),
        }
    }
}

/// `cluster.scrub`: every node reads the copies it is listed for and checks
/// their length and CRC32C; a missing or corrupt copy is dropped from the
/// metadata, and the repair makes a good one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScrubConfig {
    /// Seconds from the start of one pass to the start of the next (0: no
    /// scrub). The first pass starts shortly after start-up.
    pub interval_secs: u64,
    /// Bytes per second read, at most (0: no limit).
    pub rate: ByteSize,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        ScrubConfig {
            interval_secs: 24 * 3600,
            rate: ByteSize(16 * 1024 * 1024),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub id: u64,
    pub address: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReadConsistency {
    #[default]
    Linearizable,
    Local,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            enabled: false,
            node_id: None,
            advertise: None,
            peers: Vec::new(),
            dial: Default::default(),
            hosts: Default::default(),
            pod_name: None,
            namespace: None,
            statefulset: None,
            headless_service: None,
            replicas: 1,
            replication_factor: 3,
            max_voters: 5,
            secret: None,
            secret_file: None,
            cluster_domain: "cluster.local".into(),
            read_consistency: ReadConsistency::Linearizable,
            heartbeat_ms: 250,
            election_timeout_ms: 1000,
            request_timeout_ms: 10_000,
            snapshot_every: 20_000,
            repair: RepairConfig::default(),
            scrub: ScrubConfig::default(),
            tls_ca_file: None,
        }
    }
}

impl ClusterConfig {
    /// The ordinal at the end of `pod_name` (`store-2` → 2).
    fn pod_ordinal(&self) -> Option<u64> {
        self.pod_name
            .as_deref()
            .and_then(|name| name.rsplit_once('-'))
            .and_then(|(_, ordinal)| ordinal.parse().ok())
    }

    /// Whether peers come from the StatefulSet and its headless Service.
    pub fn is_kubernetes(&self) -> bool {
        self.peers.is_empty() && self.statefulset.is_some() && self.headless_service.is_some()
    }

    /// This node's id.
    pub fn resolved_node_id(&self) -> u64 {
        self.node_id.or_else(|| self.pod_ordinal()).unwrap_or(0)
    }

    /// The address of node `id`'s operations port as configuration knows it
    /// (the static list, or the pod's DNS name); `None` if it does not.
    pub fn peer_address(&self, id: u64, ops_port: u16) -> Option<String> {
        if let Some(peer) = self.peers.iter().find(|p| p.id == id) {
            return Some(peer.address.clone());
        }
        if !self.is_kubernetes() {
            return None;
        }
        let (sts, svc, ns) = (
            self.statefulset.as_deref()?,
            self.headless_service.as_deref()?,
            self.namespace.as_deref()?,
        );
        Some(format!(
            "{sts}-{id}.{svc}.{ns}.svc.{}:{ops_port}",
            self.cluster_domain
        ))
    }

    /// The ids configuration names as members of the group: the static
    /// list, or the StatefulSet's ordinals up to `replicas`.
    pub fn configured_ids(&self) -> Vec<u64> {
        if self.is_kubernetes() {
            (0..u64::from(self.replicas.max(1))).collect()
        } else {
            let mut ids: Vec<u64> = self.peers.iter().map(|p| p.id).collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        }
    }
}

/// Server-side encryption (SSE-S3, SSE-KMS): the keyring of master keys
/// that wrap each object's data key. SSE-C needs no keyring.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Master keys by id. Objects stay readable as long as the key that
    /// wrapped their data keys is listed here.
    pub keys: Vec<MasterKeyConfig>,
    /// The key new SSE-S3 objects (and SSE-KMS objects that name no key) are
    /// wrapped with; may be omitted when there is exactly one key.
    pub default_key: Option<String>,
    /// Refuse SSE-C requests that did not arrive over TLS, as AWS does (the
    /// customer key travels in a header). `X-Forwarded-Proto: https` from a
    /// TLS-terminating proxy counts as TLS.
    pub require_tls_for_sse_c: bool,
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        EncryptionConfig {
            keys: Vec::new(),
            default_key: None,
            require_tls_for_sse_c: true,
        }
    }
}

/// One master key: 32 bytes, written as base64 or 64 hex digits, given
/// inline (`value`), in a file (`file`, e.g. a mounted Secret) or in an
/// environment variable (`env`). Loading resolves `file` and `env` into
/// `value`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MasterKeyConfig {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

/// Length of a master key.
pub const MASTER_KEY_LEN: usize = 32;

/// Largest `storage.inline_max`.
pub const MAX_INLINE: u64 = 1024 * 1024;

/// A map keyed by node id. Layered configuration turns every key into a
/// string (`1:` in YAML arrives as "1"), so keys are parsed here.
fn node_id_keys<'de, D>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<u64, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw = std::collections::BTreeMap::<String, String>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(key, value)| match key.trim().parse::<u64>() {
            Ok(id) => Ok((id, value)),
            Err(_) => Err(serde::de::Error::custom(format!(
                "`{key}` is not a node id (a whole number)"
            ))),
        })
        .collect()
}

/// `host:port` with a port number (the host may be a name or an address).
fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok()
        }
        None => false,
    }
}

/// Decodes a master key written as 64 hex digits or as base64.
pub fn decode_master_key(text: &str) -> Option<[u8; MASTER_KEY_LEN]> {
    use base64::Engine;
    let text = text.trim();
    let raw = if text.len() == 2 * MASTER_KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..MASTER_KEY_LEN)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?
    };
    raw.try_into().ok()
}

impl EncryptionConfig {
    /// The id of the key new objects are wrapped with, if any key exists.
    pub fn effective_default_key(&self) -> Option<&str> {
        match (&self.default_key, self.keys.as_slice()) {
            (Some(id), _) => Some(id),
            (None, [only]) => Some(&only.id),
            _ => None,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: String, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_string(),
            })
        };
        let mut seen = std::collections::HashSet::new();
        for (i, key) in self.keys.iter().enumerate() {
            let field = format!("encryption.keys[{i}]");
            if key.id.trim().is_empty()
                || !key
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./:".contains(&b))
            {
                return invalid(
                    format!("{field}.id"),
                    "must be non-empty letters, digits and - _ . / :",
                );
            }
            if !seen.insert(key.id.as_str()) {
                return invalid(format!("{field}.id"), "is used by another key");
            }
            match &key.value {
                None => return invalid(field, "needs one of value, file or env"),
                Some(value) if decode_master_key(value.expose()).is_none() => {
                    return invalid(
                        format!("{field}.value"),
                        "must be 32 bytes as base64 or 64 hex digits (openssl rand -base64 32)",
                    );
                }
                Some(_) => {}
            }
        }
        match &self.default_key {
            Some(id) if !self.keys.iter().any(|k| &k.id == id) => invalid(
                "encryption.default_key".into(),
                "names no key in encryption.keys",
            ),
            None if self.keys.len() > 1 => invalid(
                "encryption.default_key".into(),
                "is required when encryption.keys lists more than one key",
            ),
            _ => Ok(()),
        }
    }
}

impl Config {
    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| {
            Err(ConfigError::Invalid {
                field: field.to_string(),
                message,
            })
        };
        let c = &self.cluster;
        if c.heartbeat_ms == 0 {
            return invalid("cluster.heartbeat_ms", "must be above zero".into());
        }
        if c.election_timeout_ms <= c.heartbeat_ms * 2 {
            return invalid(
                "cluster.election_timeout_ms",
                format!(
                    "must be more than twice cluster.heartbeat_ms ({} ms)",
                    c.heartbeat_ms
                ),
            );
        }
        if c.request_timeout_ms == 0 {
            return invalid("cluster.request_timeout_ms", "must be above zero".into());
        }
        if c.snapshot_every == 0 {
            return invalid("cluster.snapshot_every", "must be above zero".into());
        }
        if c.max_voters == 0 || c.max_voters.is_multiple_of(2) {
            return invalid(
                "cluster.max_voters",
                "must be an odd number (1, 3, 5, …)".into(),
            );
        }
        if c.replication_factor == 0 {
            return invalid("cluster.replication_factor", "must be at least 1".into());
        }
        if c.repair.concurrency == 0 {
            return invalid("cluster.repair.concurrency", "must be at least 1".into());
        }
        if c.repair.interval_secs == 0 {
            return invalid("cluster.repair.interval_secs", "must be at least 1".into());
        }
        let mut ids = std::collections::HashSet::new();
        for (i, peer) in c.peers.iter().enumerate() {
            if !ids.insert(peer.id) {
                return invalid(
                    &format!("cluster.peers[{i}].id"),
                    format!("node {} is listed twice", peer.id),
                );
            }
            if !is_host_port(&peer.address) {
                return invalid(
                    &format!("cluster.peers[{i}].address"),
                    format!("{:?} is not host:port", peer.address),
                );
            }
        }
        for (id, address) in &c.dial {
            if !is_host_port(address) {
                return invalid(
                    &format!("cluster.dial.{id}"),
                    format!("{address:?} is not host:port"),
                );
            }
        }
        if let Some(advertise) = &c.advertise
            && !is_host_port(advertise)
        {
            return invalid(
                "cluster.advertise",
                format!("{advertise:?} is not host:port"),
            );
        }
        if let Some(pod) = &c.pod_name
            && c.node_id.is_none()
            && c.pod_ordinal().is_none()
        {
            return invalid(
                "cluster.pod_name",
                format!(
                    "{pod:?} does not end in an ordinal (<statefulset>-<n>); set cluster.node_id"
                ),
            );
        }
        if !c.enabled {
            return Ok(());
        }
        if c.replicas == 0 {
            return invalid("cluster.replicas", "must be at least 1".into());
        }
        if c.peers.is_empty() {
            for (field, value) in [
                ("cluster.pod_name", &c.pod_name),
                ("cluster.namespace", &c.namespace),
                ("cluster.statefulset", &c.statefulset),
                ("cluster.headless_service", &c.headless_service),
            ] {
                if value.as_deref().is_none_or(str::is_empty) {
                    return invalid(
                        field,
                        "is required when cluster.enabled is true and no cluster.peers are listed"
                            .into(),
                    );
                }
            }
        } else if c.node_id.is_none() && c.pod_name.is_none() {
            return invalid(
                "cluster.node_id",
                "is required with cluster.peers (which node of the list is this one?)".into(),
            );
        }
        if c.tls_ca_file.is_some() && self.server.tls.is_none() {
            return invalid(
                "cluster.tls_ca_file",
                "needs server.tls: nodes call each other over TLS only when the server has TLS"
                    .into(),
            );
        }
        if c.secret.is_none() && c.secret_file.is_none() {
            return invalid(
                "cluster.secret",
                "is required when cluster.enabled is true (or set cluster.secret_file)".into(),
            );
        }
        Ok(())
    }

    /// Path of the SQLite metadata database.
    pub fn metadata_path(&self) -> PathBuf {
        self.metadata
            .path
            .clone()
            .unwrap_or_else(|| self.storage.data_dir.join("metadata.db"))
    }

    /// Directory of the Raft log and snapshots: next to the metadata.
    pub fn raft_dir(&self) -> PathBuf {
        self.metadata_path()
            .parent()
            .map(|p| p.join("raft"))
            .unwrap_or_else(|| PathBuf::from("raft"))
    }

    /// Checks what the types alone cannot; every message names its field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| {
            Err(ConfigError::Invalid {
                field: field.to_string(),
                message,
            })
        };
        if self.server.region.trim().is_empty() {
            return invalid("server.region", "must not be empty".into());
        }
        if self.server.s3_listen == self.server.ops_listen {
            return invalid(
                "server.ops_listen",
                "must differ from server.s3_listen".into(),
            );
        }
        for domain in &self.server.domains {
            if domain.is_empty() || domain.starts_with('.') || domain.contains('/') {
                return invalid("server.domains", format!("{domain:?} is not a domain name"));
            }
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return invalid("storage.data_dir", "must not be empty".into());
        }
        self.storage.validate()?;
        // Inline bytes travel in Raft log entries and live in the metadata.
        if self.storage.inline_max.0 > MAX_INLINE {
            return invalid(
                "storage.inline_max",
                format!("must be at most {MAX_INLINE} bytes (1MiB)"),
            );
        }
        if self.limits.max_object_size.0 == 0 {
            return invalid("limits.max_object_size", "must be above zero".into());
        }
        if self.limits.clock_skew_secs == 0 {
            return invalid("limits.clock_skew_secs", "must be above zero".into());
        }
        if self.multipart.min_part_size.0 == 0 {
            return invalid("multipart.min_part_size", "must be above zero".into());
        }
        if self.lifecycle.interval_secs == 0 {
            return invalid("lifecycle.interval_secs", "must be above zero".into());
        }
        if self.multipart.upload_expiry_secs == 0 {
            return invalid("multipart.upload_expiry_secs", "must be above zero".into());
        }
        if self.logging.level.trim().is_empty() {
            return invalid("logging.level", "must not be empty".into());
        }
        let mut seen = std::collections::HashSet::new();
        for (i, user) in self.auth.users.iter().enumerate() {
            if user.access_key.expose().is_empty() || user.secret_key.expose().is_empty() {
                return invalid(
                    &format!("auth.users[{i}]"),
                    "access_key and secret_key must not be empty".into(),
                );
            }
            if !seen.insert(user.access_key.expose().to_string()) {
                return invalid(
                    &format!("auth.users[{i}].access_key"),
                    "is used by another user".into(),
                );
            }
        }
        self.encryption.validate()?;
        self.validate_cluster()?;
        Ok(())
    }
}

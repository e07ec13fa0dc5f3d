//! Renders the server's YAML config from a `BleepStoreCluster` using the
//! server's own config types (`bleepstore-config`), so the file is one the
//! server's loader accepts by construction (and a test loads it to prove it).

use std::path::PathBuf;

use bleepstore_config as bc;

use crate::crd::{BackendKind, BleepStoreClusterSpec, LogFormat, SecretDelivery, StorageSpec};

/// Container port of the S3 API.
pub const S3_PORT: u16 = 9000;
/// Container port of health, readiness, metrics and the admin API.
pub const OPS_PORT: u16 = 9001;
/// Name of the config file inside the ConfigMap.
pub const CONFIG_KEY: &str = "config.yaml";

/// Keys of the generated internal Secret.
pub const ADMIN_TOKEN_KEY: &str = "admin-token";
pub const CLUSTER_SECRET_KEY: &str = "cluster-secret";
/// Default keys of the credentials Secret.
pub const ACCESS_KEY_KEY: &str = "access-key";
pub const SECRET_KEY_KEY: &str = "secret-key";

/// Where things are mounted inside the server container.
#[derive(Debug, Clone, PartialEq)]
pub struct Paths {
    /// ConfigMap mount; the config file is `<config_dir>/config.yaml`.
    pub config_dir: PathBuf,
    /// Root of the Secret mounts (`credentials/`, `internal/`, `tls/`).
    pub secrets_dir: PathBuf,
    /// The data volume (`storage.data_dir`).
    pub data_dir: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            config_dir: "/etc/bleepstore".into(),
            secrets_dir: "/var/run/bleepstore".into(),
            data_dir: "/var/lib/bleepstore".into(),
        }
    }
}

impl Paths {
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join(CONFIG_KEY)
    }
    pub fn credentials_dir(&self) -> PathBuf {
        self.secrets_dir.join("credentials")
    }
    pub fn internal_dir(&self) -> PathBuf {
        self.secrets_dir.join("internal")
    }
    pub fn tls_dir(&self) -> PathBuf {
        self.secrets_dir.join("tls")
    }
    pub fn encryption_dir(&self) -> PathBuf {
        self.secrets_dir.join("encryption")
    }
}

/// Why a spec cannot be rendered into a config the server accepts.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RenderError {
    #[error("invalid spec: {0}")]
    Invalid(String),
}

/// The blob backend and its settings. Cloud credentials are not in the
/// config: the pod gets the credentials Secret's keys as environment
/// variables (`AWS_ACCESS_KEY_ID`…, `AZURE_STORAGE_ACCOUNT_KEY` or
/// `AZURE_STORAGE_SAS_TOKEN`, `GOOGLE_SERVICE_ACCOUNT_KEY`), which the
/// server's clients read; without a Secret they use workload identity
/// through the pod's ServiceAccount.
fn render_storage(spec: &StorageSpec, storage: &mut bc::StorageConfig) -> Result<(), RenderError> {
    let missing = |kind: &str| {
        RenderError::Invalid(format!(
            "storage.{kind} is required when storage.backend is {kind}"
        ))
    };
    storage.backend = match spec.backend {
        BackendKind::Local => bc::Backend::Local,
        BackendKind::Memory => bc::Backend::Memory,
        BackendKind::Aws => {
            let aws = spec.aws.as_ref().ok_or_else(|| missing("aws"))?;
            storage.aws = Some(bc::AwsBackendConfig {
                bucket: aws.bucket.clone(),
                region: aws.region.clone(),
                endpoint: aws.endpoint.clone(),
                prefix: aws.prefix.clone().unwrap_or_default(),
                // S3-compatible stores behind an endpoint rarely have
                // virtual-hosted bucket names.
                force_path_style: aws.endpoint.is_some(),
                ..Default::default()
            });
            bc::Backend::Aws
        }
        BackendKind::Azure => {
            let azure = spec.azure.as_ref().ok_or_else(|| missing("azure"))?;
            storage.azure = Some(bc::AzureBackendConfig {
                container: azure.container.clone(),
                account: azure.account.clone(),
                endpoint: azure.endpoint.clone(),
                prefix: azure.prefix.clone().unwrap_or_default(),
                ..Default::default()
            });
            bc::Backend::Azure
        }
        BackendKind::Gcs => {
            let gcs = spec.gcs.as_ref().ok_or_else(|| missing("gcs"))?;
            storage.gcs = Some(bc::GcsBackendConfig {
                bucket: gcs.bucket.clone(),
                endpoint: gcs.endpoint.clone(),
                prefix: gcs.prefix.clone().unwrap_or_default(),
                ..Default::default()
            });
            bc::Backend::Gcs
        }
    };
    Ok(())
}

/// Names the rendered config refers to.
#[derive(Debug, Clone)]
pub struct Names {
    pub statefulset: String,
    pub headless_service: String,
}

/// Builds the server config for `spec`. Per-pod identity (`cluster.pod_name`,
/// `cluster.namespace`) comes from environment variables set by the pod spec.
pub fn server_config(
    spec: &BleepStoreClusterSpec,
    cluster_enabled: bool,
    names: &Names,
    paths: &Paths,
) -> Result<bc::Config, RenderError> {
    let mut config = bc::Config::default();

    config.server.region = spec.region.clone();
    config.server.domains = spec.domains.clone();
    if let Some(tls) = &spec.tls {
        config.server.tls = Some(bc::TlsConfig {
            cert_file: paths.tls_dir().join("tls.crt"),
            key_file: paths.tls_dir().join("tls.key"),
        });
        if cluster_enabled {
            config.cluster.tls_ca_file = tls.ca_key.as_ref().map(|key| paths.tls_dir().join(key));
        }
    }

    render_storage(&spec.storage, &mut config.storage)?;
    config.storage.data_dir = paths.data_dir.clone();

    if spec.credentials.delivery == SecretDelivery::File {
        config.auth.access_key_file = Some(paths.credentials_dir().join(ACCESS_KEY_KEY));
        config.auth.secret_key_file = Some(paths.credentials_dir().join(SECRET_KEY_KEY));
    }
    config.auth.admin_token_file = Some(paths.internal_dir().join(ADMIN_TOKEN_KEY));

    if let Some(encryption) = &spec.encryption {
        config.encryption.keys = encryption
            .keys
            .iter()
            .map(|id| bc::MasterKeyConfig {
                id: id.clone(),
                value: None,
                file: Some(paths.encryption_dir().join(id)),
                env: None,
            })
            .collect();
        config.encryption.default_key = encryption.default_key.clone();
        config.encryption.require_tls_for_sse_c = encryption.require_tls_for_sse_c;
    }

    config.logging.level = spec.logging.level.clone();
    config.logging.format = match spec.logging.format {
        LogFormat::Json => bc::LogFormat::Json,
        LogFormat::Text => bc::LogFormat::Text,
    };

    if spec.replicas < 1 {
        return Err(RenderError::Invalid("replicas must be at least 1".into()));
    }
    if cluster_enabled {
        config.cluster.enabled = true;
        config.cluster.statefulset = Some(names.statefulset.clone());
        config.cluster.headless_service = Some(names.headless_service.clone());
        config.cluster.replicas = spec.replicas as u32;
        if let Some(rf) = spec.replication_factor {
            if rf < 1 {
                return Err(RenderError::Invalid(
                    "replicationFactor must be at least 1".into(),
                ));
            }
            config.cluster.replication_factor = rf as u32;
        }
        config.cluster.secret_file = Some(paths.internal_dir().join(CLUSTER_SECRET_KEY));
        config.cluster.cluster_domain = spec.cluster_domain.clone();
    }
    Ok(config)
}

/// The config as the YAML text stored in the ConfigMap. Only settings that
/// differ from the server's built-in defaults are written, so the server's
/// own defaults keep applying to everything the operator does not decide.
pub fn to_yaml(config: &bc::Config) -> String {
    let mut value = serde_json::to_value(config).expect("config serializes");
    let defaults = serde_json::to_value(bc::Config::default()).expect("config serializes");
    let full = value.clone();
    strip_defaults(&mut value, &defaults);
    // What the pod spec depends on stays explicit even when it is a default.
    for (section, field) in PINNED {
        if let Some(v) = full.get(section).and_then(|s| s.get(field))
            && !v.is_null()
        {
            value[section][field] = v.clone();
        }
    }
    let body = serde_yaml_ng::to_string(&value).expect("config serializes to YAML");
    format!("# Rendered by bleepstore-operator; edits are overwritten.\n{body}")
}

/// Settings always written: the listeners match the container ports, the
/// rest is what the resource decides.
const PINNED: [(&str, &str); 7] = [
    ("server", "s3_listen"),
    ("server", "ops_listen"),
    ("server", "region"),
    ("storage", "backend"),
    ("storage", "data_dir"),
    ("logging", "level"),
    ("logging", "format"),
];

/// Removes map entries equal to the default (and nulls), recursively.
fn strip_defaults(value: &mut serde_json::Value, defaults: &serde_json::Value) {
    if let serde_json::Value::Object(map) = value {
        map.retain(|key, v| {
            let default = defaults.get(key).unwrap_or(&serde_json::Value::Null);
            if v.is_object() {
                strip_defaults(v, default);
                return v.as_object().is_some_and(|m| !m.is_empty());
            }
            !v.is_null() && v != default
        });
    }
}

/// The config with `cluster.replicas` normalised, for hashing: a scale
/// operation must not roll every pod (membership goes through the admin API).
pub fn hash_view(config: &bc::Config) -> bc::Config {
    let mut config = config.clone();
    config.cluster.replicas = 0;
    config
}

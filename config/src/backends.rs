//! Where blobs are kept: the settings of each blob backend, named extra
//! backends, and the map from S3 storage class to backend.

use crate::{ByteSize, Secret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The storage classes S3 defines; `x-amz-storage-class` must be one of them.
pub const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "GLACIER_IR",
    "SNOW",
    "EXPRESS_ONEZONE",
];

/// The name `storage.classes` uses for the main backend (`storage.backend`).
pub const DEFAULT_BACKEND: &str = "default";

/// A secret given inline (`value`), in a file (`file`, e.g. a mounted
/// Kubernetes Secret) or in an environment variable (`env`). Loading
/// resolves `file` and `env` into `value`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

impl SecretSource {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SecretSource {
            file: Some(path.into()),
            ..Default::default()
        }
    }

    /// The resolved value (after loading).
    pub fn expose(&self) -> Option<&str> {
        self.value.as_ref().map(Secret::expose)
    }
}

/// Blobs as files under a directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LocalBackendConfig {
    /// Defaults to `storage.data_dir` (blobs go to `<path>/blobs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// Blobs as chunk rows in a SQLite database of their own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteBackendConfig {
    /// Defaults to `<storage.data_dir>/blobs.db`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Bytes per chunk row: a blob is streamed in and out this much at a time.
    pub chunk_size: ByteSize,
}

impl Default for SqliteBackendConfig {
    fn default() -> Self {
        SqliteBackendConfig {
            path: None,
            chunk_size: ByteSize(256 * 1024),
        }
    }
}

/// Blobs as objects in an S3 bucket (AWS or any S3-compatible store).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AwsBackendConfig {
    pub bucket: String,
    /// Defaults to the region of the AWS configuration chain, else us-east-1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// For S3-compatible upstreams (MinIO, Ceph, another BleepStore).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Prepended to every blob's key in the bucket (e.g. `bleepstore/`).
    pub prefix: String,
    pub force_path_style: bool,
    /// Static keys; without them the standard AWS chain is used
    /// (environment, shared files, web identity / IRSA, instance metadata).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<SecretSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretSource>,
    /// Size of the upstream multipart parts a large blob is sent in.
    pub part_size: ByteSize,
    /// Attempts per idempotent upstream call (throttling, 5xx, timeouts).
    pub max_attempts: u32,
}

impl Default for AwsBackendConfig {
    fn default() -> Self {
        AwsBackendConfig {
            bucket: String::new(),
            region: None,
            endpoint: None,
            prefix: String::new(),
            force_path_style: false,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            part_size: ByteSize(8 * 1024 * 1024),
            max_attempts: 4,
        }
    }
}

/// The secrets given among `fields`, named by their field.
fn given<'a, const N: usize>(
    fields: [(&'static str, &'a mut Option<SecretSource>); N],
) -> Vec<(&'static str, &'a mut SecretSource)> {
    fields
        .into_iter()
        .filter_map(|(name, secret)| secret.as_mut().map(|s| (name, s)))
        .collect()
}

impl AwsBackendConfig {
    pub fn secrets_mut(&mut self) -> Vec<(&'static str, &mut SecretSource)> {
        given([
            ("access_key_id", &mut self.access_key_id),
            ("secret_access_key", &mut self.secret_access_key),
            ("session_token", &mut self.session_token),
        ])
    }
}

impl AzureBackendConfig {
    pub fn secrets_mut(&mut self) -> Vec<(&'static str, &mut SecretSource)> {
        given([
            ("access_key", &mut self.access_key),
            ("sas_token", &mut self.sas_token),
            ("connection_string", &mut self.connection_string),
        ])
    }
}

impl GcsBackendConfig {
    pub fn secrets_mut(&mut self) -> Vec<(&'static str, &mut SecretSource)> {
        given([("service_account", &mut self.service_account)])
    }
}

/// Blobs in an Azure Blob Storage container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AzureBackendConfig {
    pub container: String,
    /// Storage account name (not needed with a connection string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Shared key of the account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key: Option<SecretSource>,
    /// SAS token (`sv=…&sig=…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sas_token: Option<SecretSource>,
    /// `DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…;BlobEndpoint=…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<SecretSource>,
    /// Blob endpoint, e.g. `http://127.0.0.1:10000/devstoreaccount1` for Azurite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub prefix: String,
    pub part_size: ByteSize,
    pub max_attempts: u32,
}

impl Default for AzureBackendConfig {
    fn default() -> Self {
        AzureBackendConfig {
            container: String::new(),
            account: None,
            access_key: None,
            sas_token: None,
            connection_string: None,
            endpoint: None,
            prefix: String::new(),
            part_size: ByteSize(8 * 1024 * 1024),
            max_attempts: 4,
        }
    }
}

/// Blobs in a Google Cloud Storage bucket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GcsBackendConfig {
    pub bucket: String,
    /// Service-account key JSON; without it, application default
    /// credentials (workload identity, metadata server) are used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<SecretSource>,
    /// For fake-gcs-server and other emulators (requests are not signed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub prefix: String,
    pub part_size: ByteSize,
    pub max_attempts: u32,
}

impl Default for GcsBackendConfig {
    fn default() -> Self {
        GcsBackendConfig {
            bucket: String::new(),
            service_account: None,
            endpoint: None,
            prefix: String::new(),
            part_size: ByteSize(8 * 1024 * 1024),
            max_attempts: 4,
        }
    }
}

/// One backend, fully described (a named entry of `storage.backends`, or
/// the main backend assembled from `storage.backend` and its section).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum BackendSpec {
    Local(LocalBackendConfig),
    Memory,
    Sqlite(SqliteBackendConfig),
    Aws(AwsBackendConfig),
    Azure(AzureBackendConfig),
    Gcs(GcsBackendConfig),
}

impl BackendSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            BackendSpec::Local(_) => "local",
            BackendSpec::Memory => "memory",
            BackendSpec::Sqlite(_) => "sqlite",
            BackendSpec::Aws(_) => "aws",
            BackendSpec::Azure(_) => "azure",
            BackendSpec::Gcs(_) => "gcs",
        }
    }

    /// Whether every node of a cluster sees the same blobs here.
    pub fn is_shared(&self) -> bool {
        matches!(
            self,
            BackendSpec::Aws(_) | BackendSpec::Azure(_) | BackendSpec::Gcs(_)
        )
    }

    /// Every secret the spec holds, named by its field, for loading.
    pub fn secrets_mut(&mut self) -> Vec<(&'static str, &mut SecretSource)> {
        match self {
            BackendSpec::Aws(c) => c.secrets_mut(),
            BackendSpec::Azure(c) => c.secrets_mut(),
            BackendSpec::Gcs(c) => c.secrets_mut(),
            BackendSpec::Local(_) | BackendSpec::Memory | BackendSpec::Sqlite(_) => Vec::new(),
        }
    }

    /// What the type cannot say; `field` prefixes every message.
    pub fn check(&self) -> Result<(), (String, String)> {
        let missing = |field: &str, what: &str| Err((field.to_string(), what.to_string()));
        match self {
            BackendSpec::Aws(c) => {
                if c.bucket.is_empty() {
                    return missing("bucket", "is required");
                }
                if c.access_key_id.is_some() != c.secret_access_key.is_some() {
                    return missing(
                        "access_key_id",
                        "and secret_access_key go together (or leave both out for the AWS credential chain)",
                    );
                }
                check_part_size(c.part_size)?;
                check_endpoint(c.endpoint.as_deref())
            }
            BackendSpec::Azure(c) => {
                if c.container.is_empty() {
                    return missing("container", "is required");
                }
                check_part_size(c.part_size)?;
                check_endpoint(c.endpoint.as_deref())
            }
            BackendSpec::Gcs(c) => {
                if c.bucket.is_empty() {
                    return missing("bucket", "is required");
                }
                check_part_size(c.part_size)?;
                check_endpoint(c.endpoint.as_deref())
            }
            BackendSpec::Sqlite(c) if c.chunk_size.0 < 4096 || c.chunk_size.0 > 16 << 20 => {
                missing("chunk_size", "must be between 4KiB and 16MiB")
            }
            _ => Ok(()),
        }
    }
}

fn check_part_size(size: ByteSize) -> Result<(), (String, String)> {
    // S3 refuses parts under 5 MiB (but the last); 5 GiB is its upper bound.
    if size.0 < 5 * 1024 * 1024 || size.0 > 5 * 1024 * 1024 * 1024 {
        return Err(("part_size".into(), "must be between 5MiB and 5GiB".into()));
    }
    Ok(())
}

fn check_endpoint(endpoint: Option<&str>) -> Result<(), (String, String)> {
    match endpoint {
        Some(e) if !(e.starts_with("http://") || e.starts_with("https://")) => Err((
            "endpoint".into(),
            format!("{e:?} must be an http:// or https:// URL"),
        )),
        _ => Ok(()),
    }
}

/// A name of `storage.backends`: it is written into every blob id stored
/// there, so it is short and plain.
pub fn is_backend_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The named backends and the class map, as `storage` holds them.
pub type NamedBackends = BTreeMap<String, BackendSpec>;

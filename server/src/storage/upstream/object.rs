//! Blobs in Azure Blob Storage or Google Cloud Storage, through object_store
//! (one maintained client for both; see ARCHITECTURE.md). Large blobs go up
//! while they stream in: as block-list uploads on Azure, as JSON-API
//! resumable uploads on GCS (`gcs_upload.rs` says why not object_store's).

use super::gcs_upload::{self, GcsUploads};
use super::{
    CONNECT_TIMEOUT, Head, PARTS_IN_FLIGHT, Parts, READ_TIMEOUT, blob_of, read_head, redact,
};
use crate::storage::{BlobId, BlobInfo, BlobStore, BodyStream, StorageError};
use async_trait::async_trait;
use bleepstore_config::{AzureBackendConfig, GcsBackendConfig};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig, WriteMultipart,
};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Where GCS answers when no endpoint is configured.
const GCS_BASE_URL: &str = "https://storage.googleapis.com";

pub struct ObjectStoreBlobStore {
    name: String,
    kind: &'static str,
    store: Arc<dyn ObjectStore>,
    /// Where blobs live in the bucket or container (no trailing slash).
    prefix: Option<Path>,
    part_size: usize,
    /// GCS only: where writes go instead of object_store.
    gcs_uploads: Option<GcsUploads>,
}

/// What building a client can fail on: a setting, named for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(String);

fn client_options(endpoint: Option<&str>) -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        // A request's whole time: parts are at most part_size bytes.
        .with_timeout(READ_TIMEOUT * 5)
        .with_allow_http(endpoint.is_some_and(|e| e.starts_with("http://")))
}

fn retry(max_attempts: u32) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: max_attempts.saturating_sub(1) as usize,
        retry_timeout: Duration::from_secs(60),
    }
}

/// `DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…;BlobEndpoint=…`
struct ConnectionString {
    account: Option<String>,
    key: Option<String>,
    sas: Option<String>,
    endpoint: Option<String>,
}

fn parse_connection_string(text: &str) -> ConnectionString {
    let mut fields = std::collections::HashMap::new();
    for part in text.split(';').filter(|p| !p.trim().is_empty()) {
        if let Some((k, v)) = part.split_once('=') {
            fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let account = fields.get("accountname").cloned();
    let endpoint = fields.get("blobendpoint").cloned().or_else(|| {
        let protocol = fields
            .get("defaultendpointsprotocol")
            .map_or("https", String::as_str);
        let suffix = fields
            .get("endpointsuffix")
            .map_or("core.windows.net", String::as_str);
        account
            .as_ref()
            .map(|a| format!("{protocol}://{a}.blob.{suffix}"))
    });
    ConnectionString {
        account,
        key: fields.get("accountkey").cloned(),
        sas: fields.get("sharedaccesssignature").cloned(),
        endpoint,
    }
}

impl ObjectStoreBlobStore {
    pub fn azure(name: &str, c: &AzureBackendConfig) -> Result<Self, BuildError> {
        // From the environment first: workload identity's AZURE_CLIENT_ID,
        // AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE.
        let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(&c.container);
        let mut account = c.account.clone();
        let mut key = c
            .access_key
            .as_ref()
            .and_then(|s| s.expose())
            .map(str::to_string);
        let mut sas = c
            .sas_token
            .as_ref()
            .and_then(|s| s.expose())
            .map(str::to_string);
        let mut endpoint = c.endpoint.clone();
        if let Some(text) = c.connection_string.as_ref().and_then(|s| s.expose()) {
            let parsed = parse_connection_string(text);
            account = account.or(parsed.account);
            key = key.or(parsed.key);
            sas = sas.or(parsed.sas);
            endpoint = endpoint.or(parsed.endpoint);
        }
        // Without one here, AZURE_STORAGE_ACCOUNT_NAME (read above) names it.
        if let Some(account) = account {
            builder = builder.with_account(account);
        }
        builder = builder
            .with_client_options(client_options(endpoint.as_deref()))
            .with_retry(retry(c.max_attempts));
        if let Some(key) = key {
            builder = builder.with_access_key(key);
        } else if let Some(sas) = sas {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let pairs = sas
                .trim_start_matches('?')
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (decode(k), decode(v)))
                .collect::<Vec<_>>();
            builder = builder.with_sas_authorization(pairs);
        }
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
        }
        let store = builder
            .build()
            .map_err(|e| BuildError(redact(&e.to_string())))?;
        Ok(Self::new(
            name,
            "azure",
            Arc::new(store),
            &c.prefix,
            c.part_size.0,
        ))
    }

    pub fn gcs(name: &str, c: &GcsBackendConfig) -> Result<Self, BuildError> {
        let mut builder = GoogleCloudStorageBuilder::from_env()
            .with_bucket_name(&c.bucket)
            .with_client_options(client_options(c.endpoint.as_deref()))
            .with_retry(retry(c.max_attempts));
        match (
            c.service_account.as_ref().and_then(|s| s.expose()),
            &c.endpoint,
        ) {
            (Some(key), endpoint) => {
                builder = builder.with_service_account_key(key);
                if let Some(endpoint) = endpoint {
                    builder = builder.with_base_url(endpoint.trim_end_matches('/'));
                }
            }
            // An emulator: no OAuth, requests go to its base URL.
            (None, Some(endpoint)) => {
                let key = serde_json::json!({
                    "gcs_base_url": endpoint.trim_end_matches('/'),
                    "disable_oauth": true,
                    "client_email": "",
                    "private_key": "",
                    "private_key_id": "",
                });
                builder = builder.with_service_account_key(key.to_string());
            }
            // Application default credentials: workload identity, the
            // metadata server, GOOGLE_APPLICATION_CREDENTIALS.
            (None, None) => {}
        }
        let store = builder
            .build()
            .map_err(|e| BuildError(redact(&e.to_string())))?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| BuildError(format!("cannot build an HTTP client: {e}")))?;
        let uploads = GcsUploads::new(
            name,
            c.endpoint.as_deref().unwrap_or(GCS_BASE_URL),
            &c.bucket,
            store.credentials().clone(),
            c.max_attempts,
            http,
        );
        let mut backend = Self::new(
            name,
            "gcs",
            Arc::new(store),
            &c.prefix,
            gcs_upload::chunk_size(c.part_size.0),
        );
        backend.gcs_uploads = Some(uploads);
        Ok(backend)
    }

    fn new(
        name: &str,
        kind: &'static str,
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        part_size: u64,
    ) -> Self {
        let prefix = prefix.trim_matches('/');
        ObjectStoreBlobStore {
            name: name.to_string(),
            kind,
            store,
            prefix: (!prefix.is_empty()).then(|| Path::from(prefix)),
            part_size: part_size as usize,
            gcs_uploads: None,
        }
    }

    fn path(&self, id: &BlobId) -> Path {
        match &self.prefix {
            Some(prefix) => prefix.clone().join(id.key()),
            None => Path::from(id.key()),
        }
    }

    fn error(&self, e: object_store::Error) -> StorageError {
        let backend = self.name.clone();
        let reason = redact(&e.to_string());
        match e {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => StorageError::Upstream {
                backend,
                reason: format!("access denied, check the credentials: {reason}"),
            },
            object_store::Error::Generic { .. } => {
                // Anything 4xx but throttling is refused for good; the rest
                // (5xx, 429, timeouts, connection failures) is worth a retry.
                let status = upstream_status(&reason);
                let denied = matches!(status, Some(401 | 403));
                let refused = status.is_some_and(|s| (400..500).contains(&s) && s != 429);
                if denied {
                    StorageError::Upstream {
                        backend,
                        reason: format!("access denied, check the credentials: {reason}"),
                    }
                } else if refused {
                    StorageError::Upstream { backend, reason }
                } else {
                    StorageError::Busy { backend, reason }
                }
            }
            _ => StorageError::Upstream { backend, reason },
        }
    }

    async fn put_multipart(
        &self,
        path: &Path,
        first: bytes::Bytes,
        rest: BodyStream,
    ) -> Result<u64, StorageError> {
        let upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(|e| self.error(e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let mut parts = Parts::new(rest, self.part_size);
        let mut total = first.len() as u64;
        writer.put(first);
        let sent: Result<(), StorageError> = async {
            while let Some(data) = parts.next().await? {
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| self.error(e))?;
                total += data.len() as u64;
                writer.put(data);
            }
            Ok(())
        }
        .await;
        match sent {
            Ok(()) => match writer.finish().await {
                Ok(_) => Ok(total),
                // `finish` aborts the upload itself when it fails.
                Err(e) => Err(self.error(e)),
            },
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(backend = %self.name, error = %self.error(abort), "cannot abort an upstream multipart upload");
                }
                Err(e)
            }
        }
    }
}

#[async_trait]
impl BlobStore for ObjectStoreBlobStore {
    async fn put(&self, id: &BlobId, body: BodyStream) -> Result<u64, StorageError> {
        let path = self.path(id);
        let head = read_head(body, self.part_size).await?;
        if let Some(uploads) = &self.gcs_uploads {
            return match head {
                Head::Whole(data) => {
                    let len = data.len() as u64;
                    uploads.put_whole(path.as_ref(), data).await?;
                    Ok(len)
                }
                Head::Part(first, rest) => {
                    let rest = Parts::new(rest, self.part_size);
                    uploads.put_streamed(path.as_ref(), first, rest).await
                }
            };
        }
        match head {
            Head::Whole(data) => {
                let len = data.len() as u64;
                self.store
                    .put(&path, PutPayload::from_bytes(data))
                    .await
                    .map_err(|e| self.error(e))?;
                Ok(len)
            }
            Head::Part(first, rest) => self.put_multipart(&path, first, rest).await,
        }
    }

    async fn get(&self, id: &BlobId, offset: u64, length: u64) -> Result<BodyStream, StorageError> {
        if length == 0 {
            return Ok(futures::stream::empty().boxed());
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(offset..offset + length)),
            ..Default::default()
        };
        let result = match self.store.get_opts(&self.path(id), options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StorageError::NotFound(id.clone()));
            }
            Err(e) => return Err(self.error(e)),
        };
        let name = self.name.clone();
        Ok(result
            .into_stream()
            .map_err(move |e| {
                std::io::Error::other(format!("backend {name}: {}", redact(&e.to_string())))
            })
            .boxed())
    }

    async fn delete(&self, id: &BlobId) -> Result<(), StorageError> {
        match self.store.delete(&self.path(id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    fn list(&self) -> BoxStream<'_, Result<BlobInfo, StorageError>> {
        let prefix = self
            .prefix
            .as_ref()
            .map(|p| format!("{p}/"))
            .unwrap_or_default();
        // object_store pages through the listing as the stream is read.
        self.store
            .list(self.prefix.as_ref())
            .map_err(|e| self.error(e))
            .try_filter_map(move |meta| {
                let found = blob_of(&prefix, meta.location.as_ref()).map(|id| BlobInfo {
                    id,
                    created: SystemTime::from(meta.last_modified),
                });
                futures::future::ready(Ok(found))
            })
            .boxed()
    }

    async fn check(&self) -> Result<(), StorageError> {
        // One listing request proves the credentials and the container.
        match self.store.list(self.prefix.as_ref()).next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(object_store::Error::NotFound { .. })) => Err(StorageError::Upstream {
                backend: self.name.clone(),
                reason: "the bucket or container does not exist".into(),
            }),
            Some(Err(e)) => Err(self.error(e)),
        }
    }

    async fn recover(&self) -> Result<(), StorageError> {
        // Azure drops uncommitted blocks after a week and GCS multipart
        // uploads can be expired by a bucket lifecycle rule; object_store
        // cannot list pending uploads.
        Ok(())
    }

    fn name(&self) -> &'static str {
        self.kind
    }

    fn is_shared(&self) -> bool {
        true
    }
}

/// The HTTP status object_store's generic error text reports, if any (its
/// errors carry no status field: "… status code: 404 Not Found …").
fn upstream_status(reason: &str) -> Option<u16> {
    let (_, after) = reason.split_once("status code: ")?;
    after.get(..3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_status_is_read_from_its_place_only() {
        // A duration that happens to contain "429" is not throttling.
        let reason = "Error performing GET http://x/c?restype=container in 8.542972ms - Server returned non-2xx status code: 404 Not Found: <Error/>";
        assert_eq!(upstream_status(reason), Some(404));
        assert_eq!(
            upstream_status("status code: 429 Too Many Requests"),
            Some(429)
        );
        assert_eq!(upstream_status("connection refused"), None);
        assert_eq!(upstream_status("status code: 4"), None);
    }

    #[test]
    fn connection_strings_give_account_key_and_endpoint() {
        let c = parse_connection_string(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
        );
        assert_eq!(c.account.as_deref(), Some("devstoreaccount1"));
        assert_eq!(c.key.as_deref(), Some("a2V5"));
        assert_eq!(
            c.endpoint.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        let c = parse_connection_string("AccountName=acct;SharedAccessSignature=sv=1&sig=x");
        assert_eq!(
            c.endpoint.as_deref(),
            Some("https://acct.blob.core.windows.net")
        );
        assert_eq!(c.sas.as_deref(), Some("sv=1&sig=x"));
    }
}

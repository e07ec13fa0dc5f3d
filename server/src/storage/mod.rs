//! Blob storage: immutable byte strings under random ids (DESIGN.md §4).
//!
//! A blob is written once, completely, or not at all; it is never modified.
//! User keys never reach the backend, so no key can name a path.

pub mod conformance;
mod direct_write;
mod file_read;
mod local;
mod memory;
pub mod pins;
mod router;
mod sqlite;
mod upstream;

pub use local::LocalBlobStore;
pub use memory::MemoryBlobStore;
pub use pins::{BlobPins, PinGuard};
pub use router::{BackendHealth, BackendStatus, Backends, OpenError};
pub use sqlite::SqliteBlobStore;
pub use upstream::{AwsBlobStore, ObjectStoreBlobStore};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use std::fmt;
use std::time::SystemTime;

/// A blob's id: 32 lowercase hex characters from a random UUID, prefixed
/// with `<backend>:` when the blob is kept on a named backend of
/// `storage.backends` rather than on the main one. The id is all the
/// metadata needs to find the bytes again.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobId(String);

impl TryFrom<String> for BlobId {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        BlobId::parse(&s).ok_or_else(|| format!("{s:?} is not a blob id"))
    }
}

impl From<BlobId> for String {
    fn from(id: BlobId) -> String {
        id.0
    }
}

fn is_hex_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl BlobId {
    pub fn random() -> Self {
        BlobId(uuid::Uuid::new_v4().simple().to_string())
    }

    /// A new id on `backend` (None: the main backend).
    pub fn random_on(backend: Option<&str>) -> Self {
        let id = BlobId::random();
        match backend {
            None => id,
            Some(name) => id.on(name),
        }
    }

    /// This id's random part on the named backend `name`.
    pub fn on(&self, name: &str) -> Self {
        BlobId(format!("{name}:{}", self.key()))
    }

    /// Accepts only what `random` and `on` produce, so a stored id can never
    /// be a path.
    pub fn parse(s: &str) -> Option<Self> {
        let key = match s.split_once(':') {
            Some((backend, key)) if bleepstore_config::is_backend_name(backend) => key,
            Some(_) => return None,
            None => s,
        };
        is_hex_id(key).then(|| BlobId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The named backend the blob is kept on; None for the main backend.
    pub fn backend(&self) -> Option<&str> {
        self.0.split_once(':').map(|(backend, _)| backend)
    }

    /// The random part: what a backend stores the blob under.
    pub fn key(&self) -> &str {
        self.0.rsplit(':').next().unwrap_or(&self.0)
    }

    /// The id as the backend itself knows it (without the backend name).
    pub fn local(&self) -> BlobId {
        BlobId(self.key().to_string())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a body stream yields: bytes, or the reason the body is unusable.
pub type BodyStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The input stream failed (client went away, bad chunk signature, digest
    /// mismatch, …). Carries the stream's own error untouched.
    #[error("request body failed: {0}")]
    Body(std::io::Error),
    #[error("blob {0} not found")]
    NotFound(BlobId),
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The blob exists, but no copy of it can be read right now (its
    /// holders are unreachable).
    #[error("blob {0} unavailable: {1}")]
    Unavailable(BlobId, String),
    /// An upstream store throttled us, failed (5xx) or could not be reached,
    /// and retrying (where that was safe) did not help. Clients should retry.
    #[error("backend {backend} is busy or unreachable: {reason}")]
    Busy { backend: String, reason: String },
    /// An upstream store refused the request for good (credentials,
    /// permissions, a missing bucket).
    #[error("backend {backend} refused the request: {reason}")]
    Upstream { backend: String, reason: String },
}

/// Runs blocking file or database work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    joined(tokio::task::spawn_blocking(f)).await
}

/// Waits for a spawned task; one that panicked or was cancelled is an I/O
/// error.
async fn joined<T>(
    task: tokio::task::JoinHandle<Result<T, StorageError>>,
) -> Result<T, StorageError> {
    task.await
        .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
}

/// A stored blob as the orphan sweep sees it.
#[derive(Debug, Clone)]
pub struct BlobInfo {
    pub id: BlobId,
    pub created: SystemTime,
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `body` as a new blob. Returns its length once it is durable; on
    /// any error nothing under `id` is visible.
    async fn put(&self, id: &BlobId, body: BodyStream) -> Result<u64, StorageError>;

    /// Streams `length` bytes starting at `offset`.
    async fn get(&self, id: &BlobId, offset: u64, length: u64) -> Result<BodyStream, StorageError>;

    /// Removes a blob; removing a missing blob is not an error.
    async fn delete(&self, id: &BlobId) -> Result<(), StorageError>;

    /// Every blob currently stored, for the orphan sweep: a stream that
    /// pages through the backend, never holding the whole listing.
    fn list(&self) -> BoxStream<'_, Result<BlobInfo, StorageError>>;

    /// Whether the backend can be used right now (for `/ready` and the
    /// start-up check of credentials): Ok, or the reason it cannot.
    async fn check(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Clears what interrupted writes left behind (temp files). Called at
    /// start-up, when no write of this process can be in flight.
    async fn recover(&self) -> Result<(), StorageError>;

    fn name(&self) -> &'static str;

    /// Whether every node of a cluster reads and writes the same blobs here
    /// (a cloud bucket): the cluster then keeps one copy and replicates
    /// nothing itself.
    fn is_shared(&self) -> bool {
        false
    }

    /// Whether `id` is kept where every node sees it (see `is_shared`);
    /// differs from `is_shared` only for a store of several backends.
    fn is_shared_for(&self, _id: &BlobId) -> bool {
        self.is_shared()
    }
}

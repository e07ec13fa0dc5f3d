//! Blob storage: immutable byte strings under random ids (DESIGN.md §4).
//!
//! A blob is written once, completely, or not at all; it is never modified.
//! User keys never reach the backend, so no key can name a path.

pub mod conformance;
mod local;
mod memory;
pub mod pins;

pub use local::LocalBlobStore;
pub use memory::MemoryBlobStore;
pub use pins::{BlobPins, PinGuard};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use std::fmt;
use std::time::SystemTime;

/// A blob's id: 32 lowercase hex characters from a random UUID.
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

impl BlobId {
    pub fn random() -> Self {
        BlobId(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Accepts only what `random` produces, so a stored id can never be a path.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| BlobId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
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

    /// Every blob currently stored, for the orphan sweep.
    async fn list(&self) -> Result<Vec<BlobInfo>, StorageError>;

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
}

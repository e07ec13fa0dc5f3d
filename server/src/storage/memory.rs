//! Blobs in process memory: for tests and throwaway laptop runs.

use super::{BlobId, BlobInfo, BlobStore, BodyStream, StorageError};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::SystemTime;

#[derive(Default)]
pub struct MemoryBlobStore {
    blobs: RwLock<HashMap<BlobId, (Bytes, SystemTime)>>,
}

impl MemoryBlobStore {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Serves a large blob in slices, as a file would be read.
const READ_CHUNK: usize = 256 * 1024;

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, id: &BlobId, mut body: BodyStream) -> Result<u64, StorageError> {
        let mut buffer = BytesMut::new();
        while let Some(chunk) = body.next().await {
            buffer.extend_from_slice(&chunk.map_err(StorageError::Body)?);
        }
        let len = buffer.len() as u64;
        self.blobs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), (buffer.freeze(), SystemTime::now()));
        Ok(len)
    }

    async fn get(&self, id: &BlobId, offset: u64, length: u64) -> Result<BodyStream, StorageError> {
        let blob = self
            .blobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|(b, _)| b.clone())
            .ok_or_else(|| StorageError::NotFound(id.clone()))?;
        let start = (offset as usize).min(blob.len());
        let end = start.saturating_add(length as usize).min(blob.len());
        let slice = blob.slice(start..end);
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..slice.len())
            .step_by(READ_CHUNK)
            .map(|at| Ok(slice.slice(at..(at + READ_CHUNK).min(slice.len()))))
            .collect();
        Ok(futures::stream::iter(chunks).boxed())
    }

    async fn delete(&self, id: &BlobId) -> Result<(), StorageError> {
        self.blobs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Ok(())
    }

    fn list(&self) -> BoxStream<'_, Result<BlobInfo, StorageError>> {
        let found: Vec<BlobInfo> = self
            .blobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, (_, created))| BlobInfo {
                id: id.clone(),
                created: *created,
            })
            .collect();
        futures::stream::iter(found.into_iter().map(Ok)).boxed()
    }

    async fn recover(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn passes_the_conformance_suite() {
        crate::storage::conformance::run(&super::MemoryBlobStore::new()).await;
    }
}

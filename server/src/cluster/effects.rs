//! What every node does after a batch of commands is applied: delete its
//! copies of the blobs nothing references any more. Blobs a response is
//! still streaming are deleted when it finishes; a failed delete leaves an
//! orphan for the sweep.

use super::raft::AfterApply;
use crate::storage::{BlobId, BlobPins, BlobStore};
use futures::future::BoxFuture;
use std::sync::Arc;

pub struct BlobReaper {
    blobs: Arc<dyn BlobStore>,
    pins: Arc<BlobPins>,
}

impl BlobReaper {
    pub fn new(blobs: Arc<dyn BlobStore>, pins: Arc<BlobPins>) -> Arc<Self> {
        Arc::new(BlobReaper { blobs, pins })
    }
}

impl AfterApply for BlobReaper {
    fn freed(&self, blobs: Vec<BlobId>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for blob in self.pins.release(blobs) {
                if let Err(e) = self.blobs.delete(&blob).await {
                    tracing::warn!(%blob, error = %e, "cannot delete freed blob; the sweep will retry");
                }
            }
        })
    }
}

//! What every node does after a batch of commands is applied: delete its
//! copies of the blobs nothing references any more, and the copies the
//! commands took away from it (surplus after a rebalance or drain, or found
//! corrupt). Blobs a response is still streaming are deleted when it
//! finishes; a failed delete leaves an orphan for the sweep.

use super::raft::AfterApply;
use crate::meta::holders::DroppedCopy;
use crate::storage::{BlobId, BlobPins, BlobStore};
use futures::future::BoxFuture;
use std::sync::Arc;

pub struct BlobReaper {
    node_id: u64,
    blobs: Arc<dyn BlobStore>,
    pins: Arc<BlobPins>,
    /// Told when copies were dropped anywhere: the repair replaces them.
    repair: Arc<tokio::sync::Notify>,
}

impl BlobReaper {
    pub fn new(
        node_id: u64,
        blobs: Arc<dyn BlobStore>,
        pins: Arc<BlobPins>,
        repair: Arc<tokio::sync::Notify>,
    ) -> Arc<Self> {
        Arc::new(BlobReaper {
            node_id,
            blobs,
            pins,
            repair,
        })
    }
}

impl AfterApply for BlobReaper {
    fn freed(&self, mut blobs: Vec<BlobId>, dropped: Vec<DroppedCopy>) -> BoxFuture<'_, ()> {
        if !dropped.is_empty() {
            self.repair.notify_one();
        }
        blobs.extend(
            dropped
                .into_iter()
                .filter(|copy| copy.node == self.node_id)
                .map(|copy| copy.blob),
        );
        Box::pin(async move {
            for blob in self.pins.release(blobs) {
                if let Err(e) = self.blobs.delete(&blob).await {
                    tracing::warn!(%blob, error = %e, "cannot delete freed blob; the sweep will retry");
                }
            }
        })
    }
}

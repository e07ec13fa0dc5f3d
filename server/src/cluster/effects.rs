//! What every node does after a batch of commands is applied: delete its
//! copies of the blobs nothing references any more, and the copies the
//! commands took away from it (surplus after a rebalance or drain, or found
//! corrupt). Blobs a response is still streaming are deleted when it
//! finishes; a failed delete leaves an orphan for the sweep. In a cluster, a
//! freed blob on a shared backend is deleted only after a delay: a response
//! on another node may still be streaming it, and pins are per node.

use super::raft::AfterApply;
use crate::meta::holders::DroppedCopy;
use crate::storage::{BlobId, BlobPins, BlobStore};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

pub struct BlobReaper {
    node_id: u64,
    blobs: Arc<dyn BlobStore>,
    pins: Arc<BlobPins>,
    /// How long freed blobs on a shared backend wait (None: not clustered,
    /// this node's pins are all the readers there are).
    shared_delay: Option<Duration>,
    /// Told when copies were dropped anywhere: the repair replaces them.
    repair: Arc<tokio::sync::Notify>,
}

impl BlobReaper {
    pub fn new(
        node_id: u64,
        blobs: Arc<dyn BlobStore>,
        pins: Arc<BlobPins>,
        repair: Arc<tokio::sync::Notify>,
        shared_delay: Option<Duration>,
    ) -> Arc<Self> {
        Arc::new(BlobReaper {
            node_id,
            blobs,
            pins,
            shared_delay,
            repair,
        })
    }
}

/// Deletes those of `blobs` no response is streaming; the others go when
/// their last reader finishes.
async fn delete_unpinned(store: &dyn BlobStore, pins: &BlobPins, blobs: Vec<BlobId>) {
    for blob in pins.release(blobs) {
        if let Err(e) = store.delete(&blob).await {
            tracing::warn!(%blob, error = %e, "cannot delete freed blob; the sweep will retry");
        }
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
        let (later, now): (Vec<BlobId>, Vec<BlobId>) = match self.shared_delay {
            Some(_) => blobs
                .into_iter()
                .partition(|blob| self.blobs.is_shared_for(blob)),
            None => (Vec::new(), blobs),
        };
        if let (Some(delay), false) = (self.shared_delay, later.is_empty()) {
            // Every node deletes them (deletes are idempotent); if this
            // process stops first, the orphan sweep removes them.
            let (store, pins) = (self.blobs.clone(), self.pins.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                delete_unpinned(store.as_ref(), &pins, later).await;
            });
        }
        Box::pin(async move { delete_unpinned(self.blobs.as_ref(), &self.pins, now).await })
    }
}

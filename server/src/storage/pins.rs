//! Keeps blobs that a response is still streaming from being deleted.
//!
//! A GET reads an object's extents, then streams its blobs; an overwrite or
//! delete committed meanwhile frees those blobs. Readers pin the blobs they
//! will read (and then confirm the object is still current); freeing a pinned
//! blob only marks it, and the last reader to let go deletes it.

use super::{BlobId, BlobStore};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    readers: HashMap<BlobId, usize>,
    /// Freed while pinned: deleted when the last pin goes.
    doomed: HashSet<BlobId>,
}

#[derive(Default)]
pub struct BlobPins {
    state: Mutex<State>,
}

impl BlobPins {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pins `blobs` until the returned guard is dropped.
    pub fn pin(self: &Arc<Self>, store: Arc<dyn BlobStore>, blobs: Vec<BlobId>) -> PinGuard {
        let mut state = self.lock();
        for blob in &blobs {
            *state.readers.entry(blob.clone()).or_default() += 1;
        }
        PinGuard {
            pins: self.clone(),
            store,
            blobs,
        }
    }

    /// Of blobs no metadata references any more, those that may be deleted
    /// now; the pinned ones are deleted when their last reader finishes.
    pub fn release(&self, freed: Vec<BlobId>) -> Vec<BlobId> {
        let mut state = self.lock();
        freed
            .into_iter()
            .filter(|blob| {
                if state.readers.contains_key(blob) {
                    state.doomed.insert(blob.clone());
                    false
                } else {
                    true
                }
            })
            .collect()
    }

    pub fn is_pinned(&self, blob: &BlobId) -> bool {
        self.lock().readers.contains_key(blob)
    }
}

pub struct PinGuard {
    pins: Arc<BlobPins>,
    store: Arc<dyn BlobStore>,
    blobs: Vec<BlobId>,
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        let mut deletable = Vec::new();
        {
            let mut state = self.pins.lock();
            for blob in &self.blobs {
                if let Some(count) = state.readers.get_mut(blob) {
                    *count -= 1;
                    if *count == 0 {
                        state.readers.remove(blob);
                        if state.doomed.remove(blob) {
                            deletable.push(blob.clone());
                        }
                    }
                }
            }
        }
        if deletable.is_empty() {
            return;
        }
        let store = self.store.clone();
        // Without a runtime (process exit) the orphan sweep removes them later.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for blob in deletable {
                    if let Err(e) = store.delete(&blob).await {
                        tracing::warn!(%blob, error = %e, "cannot delete freed blob; the sweep will retry");
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryBlobStore;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_pinned_blob_is_deleted_when_its_last_reader_finishes() {
        let store: Arc<dyn BlobStore> = Arc::new(MemoryBlobStore::new());
        let blob = BlobId::random();
        store
            .put(
                &blob,
                futures::stream::iter(vec![Ok(bytes::Bytes::from_static(b"x"))]).boxed(),
            )
            .await
            .unwrap();
        let pins = BlobPins::new();
        let first = pins.pin(store.clone(), vec![blob.clone()]);
        let second = pins.pin(store.clone(), vec![blob.clone()]);
        assert!(
            pins.release(vec![blob.clone()]).is_empty(),
            "pinned blobs wait"
        );
        drop(first);
        assert!(pins.is_pinned(&blob));
        drop(second);
        // The deletion runs on the runtime; give it a turn.
        for _ in 0..100 {
            if store.get(&blob, 0, 1).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(store.get(&blob, 0, 1).await.is_err());
        assert_eq!(pins.release(vec![blob.clone()]), vec![blob]);
    }
}

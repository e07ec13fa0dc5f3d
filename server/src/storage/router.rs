//! The blob store a server writes to: the main backend and the named ones of
//! `storage.backends`, behind one `BlobStore`. A blob id says which backend
//! holds it (`archive:<hex>`; no prefix for the main one), so everything
//! above — writes, reads, frees, the sweep, replication — needs no other
//! record of where bytes live. The storage class of a write picks the
//! backend (`storage.classes`).

use super::upstream::{AwsBlobStore, ObjectStoreBlobStore};
use super::{
    BlobId, BlobInfo, BlobStore, BodyStream, LocalBlobStore, MemoryBlobStore, SqliteBlobStore,
    StorageError,
};
use async_trait::async_trait;
use bleepstore_config::{BackendSpec, DEFAULT_BACKEND, StorageConfig};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// A backend that could not be opened, named for the operator.
#[derive(Debug, thiserror::Error)]
#[error("storage backend {name} ({kind}): {reason}")]
pub struct OpenError {
    pub name: String,
    pub kind: &'static str,
    pub reason: String,
}

pub struct Backends {
    main: Arc<dyn BlobStore>,
    named: BTreeMap<String, Arc<dyn BlobStore>>,
    /// Storage class → named backend; classes not here go to the main one.
    classes: BTreeMap<String, String>,
}

/// Opens one backend. `data_dir` roots the local and sqlite ones; `name`
/// (None for the main backend) keeps named ones apart on disk.
async fn open_one(
    name: Option<&str>,
    spec: &BackendSpec,
    data_dir: &Path,
) -> Result<Arc<dyn BlobStore>, OpenError> {
    let label = name.unwrap_or(DEFAULT_BACKEND);
    let failed = |reason: String| OpenError {
        name: label.to_string(),
        kind: spec.kind(),
        reason,
    };
    let own_dir = match name {
        None => data_dir.to_path_buf(),
        Some(name) => data_dir.join("backends").join(name),
    };
    Ok(match spec {
        BackendSpec::Local(c) => {
            let dir = c.path.clone().unwrap_or(own_dir);
            Arc::new(
                LocalBlobStore::open(&dir)
                    .map_err(|e| failed(format!("cannot open {}: {e}", dir.display())))?,
            )
        }
        BackendSpec::Memory => Arc::new(MemoryBlobStore::new()),
        BackendSpec::Sqlite(c) => {
            let path = c.path.clone().unwrap_or_else(|| match name {
                None => data_dir.join("blobs.db"),
                Some(name) => data_dir.join("backends").join(format!("{name}.db")),
            });
            Arc::new(
                SqliteBlobStore::open(&path, c.chunk_size.0)
                    .map_err(|e| failed(format!("cannot open {}: {e}", path.display())))?,
            )
        }
        BackendSpec::Aws(c) => Arc::new(AwsBlobStore::connect(label, c).await),
        BackendSpec::Azure(c) => {
            Arc::new(ObjectStoreBlobStore::azure(label, c).map_err(|e| failed(e.to_string()))?)
        }
        BackendSpec::Gcs(c) => {
            Arc::new(ObjectStoreBlobStore::gcs(label, c).map_err(|e| failed(e.to_string()))?)
        }
    })
}

impl Backends {
    /// Opens every configured backend and checks that each can be used
    /// (credentials, bucket), so a bad setting stops the start-up with a
    /// message naming the backend; an unreachable one only delays `/ready`.
    pub async fn open(storage: &StorageConfig) -> Result<Self, OpenError> {
        let main_spec = storage.main_backend().map_err(|e| OpenError {
            name: DEFAULT_BACKEND.into(),
            kind: storage.backend.as_str(),
            reason: e.to_string(),
        })?;
        let main = open_one(None, &main_spec, &storage.data_dir).await?;
        let mut named = BTreeMap::new();
        for (name, spec) in &storage.backends {
            named.insert(
                name.clone(),
                open_one(Some(name), spec, &storage.data_dir).await?,
            );
        }
        let classes = storage
            .classes
            .iter()
            .filter(|(_, backend)| backend.as_str() != DEFAULT_BACKEND)
            .map(|(class, backend)| (class.clone(), backend.clone()))
            .collect();
        let backends = Backends {
            main,
            named,
            classes,
        };
        for (name, store) in backends.each() {
            match store.check().await {
                Ok(()) => {}
                // An outage may pass; the server starts not ready instead of
                // crash-looping, and `/ready` says why.
                Err(e @ StorageError::Busy { .. }) => {
                    tracing::warn!(backend = name, kind = store.name(), error = %e, "storage backend unreachable at start-up; not ready until it answers");
                }
                Err(e) => {
                    return Err(OpenError {
                        name: name.to_string(),
                        kind: store.name(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        Ok(backends)
    }

    /// One backend and no classes (tests, and servers built in code).
    pub fn single(main: Arc<dyn BlobStore>) -> Self {
        Backends {
            main,
            named: BTreeMap::new(),
            classes: BTreeMap::new(),
        }
    }

    /// The backend objects of `class` are written to: None for the main one.
    pub fn backend_for_class(&self, class: &str) -> Option<&str> {
        self.classes.get(class).map(String::as_str)
    }

    /// Every backend with its name (`default` for the main one).
    pub fn each(&self) -> impl Iterator<Item = (&str, &Arc<dyn BlobStore>)> {
        std::iter::once((DEFAULT_BACKEND, &self.main))
            .chain(self.named.iter().map(|(n, s)| (n.as_str(), s)))
    }

    /// Whether any backend is a node's own (so a cluster replicates blobs).
    pub fn has_unshared(&self) -> bool {
        self.each().any(|(_, store)| !store.is_shared())
    }

    fn store(&self, id: &BlobId) -> Result<&Arc<dyn BlobStore>, StorageError> {
        match id.backend() {
            None => Ok(&self.main),
            Some(name) => self.named.get(name).ok_or_else(|| StorageError::Upstream {
                backend: name.to_string(),
                reason:
                    "no such backend in storage.backends (was it removed from the configuration?)"
                        .into(),
            }),
        }
    }

    /// Checks every backend now.
    pub async fn probe(&self) -> Vec<BackendStatus> {
        let mut out = Vec::new();
        for (name, store) in self.each() {
            let checked = store.check().await;
            out.push(BackendStatus {
                name: name.to_string(),
                kind: store.name(),
                problem: checked.err().map(|e| e.to_string()),
            });
        }
        out
    }
}

/// Puts the full id back on what a backend reports about its own ids.
fn renamed(e: StorageError, id: &BlobId) -> StorageError {
    match e {
        StorageError::NotFound(_) => StorageError::NotFound(id.clone()),
        StorageError::Unavailable(_, why) => StorageError::Unavailable(id.clone(), why),
        other => other,
    }
}

#[async_trait]
impl BlobStore for Backends {
    async fn put(&self, id: &BlobId, body: BodyStream) -> Result<u64, StorageError> {
        self.store(id)?
            .put(&id.local(), body)
            .await
            .map_err(|e| renamed(e, id))
    }

    async fn get(&self, id: &BlobId, offset: u64, length: u64) -> Result<BodyStream, StorageError> {
        self.store(id)?
            .get(&id.local(), offset, length)
            .await
            .map_err(|e| renamed(e, id))
    }

    async fn delete(&self, id: &BlobId) -> Result<(), StorageError> {
        self.store(id)?.delete(&id.local()).await
    }

    fn list(&self) -> BoxStream<'_, Result<BlobInfo, StorageError>> {
        let main = self.main.list();
        let named = self.named.iter().map(|(name, store)| {
            store
                .list()
                .map_ok(move |info| BlobInfo {
                    id: info.id.on(name),
                    created: info.created,
                })
                .boxed()
        });
        futures::stream::iter(std::iter::once(main).chain(named))
            .flatten()
            .boxed()
    }

    async fn check(&self) -> Result<(), StorageError> {
        for (_, store) in self.each() {
            store.check().await?;
        }
        Ok(())
    }

    async fn recover(&self) -> Result<(), StorageError> {
        for (name, store) in self.each() {
            match store.recover().await {
                Ok(()) => {}
                // Upstream leftovers can wait for the next start.
                Err(e @ StorageError::Busy { .. }) => {
                    tracing::warn!(backend = name, error = %e, "cannot clean up upstream leftovers now");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        self.main.name()
    }

    /// Shared only if every backend is: then a cluster replicates nothing.
    fn is_shared(&self) -> bool {
        !self.has_unshared()
    }

    fn is_shared_for(&self, id: &BlobId) -> bool {
        self.store(id).is_ok_and(|store| store.is_shared())
    }
}

/// One backend's state as `/ready` and the metrics report it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendStatus {
    pub name: String,
    pub kind: &'static str,
    /// Why the backend cannot be used; None when it can.
    pub problem: Option<String>,
}

/// The last probe of every backend, refreshed in the background.
#[derive(Default)]
pub struct BackendHealth {
    /// None until the first check has finished: until then nobody knows.
    last: RwLock<Option<Vec<BackendStatus>>>,
}

impl BackendHealth {
    pub fn set(&self, statuses: Vec<BackendStatus>) {
        *self.last.write().unwrap_or_else(|e| e.into_inner()) = Some(statuses);
    }

    /// The last check's results; None before the first check finished.
    pub fn statuses(&self) -> Option<Vec<BackendStatus>> {
        self.last.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn body(data: &'static [u8]) -> BodyStream {
        futures::stream::iter([Ok(Bytes::from_static(data))]).boxed()
    }

    #[tokio::test]
    async fn blobs_go_to_the_backend_their_id_names() {
        let main = Arc::new(MemoryBlobStore::new());
        let archive = Arc::new(MemoryBlobStore::new());
        let backends = Backends {
            main: main.clone(),
            named: BTreeMap::from([("archive".to_string(), archive.clone() as Arc<dyn BlobStore>)]),
            classes: BTreeMap::from([("GLACIER".to_string(), "archive".to_string())]),
        };
        assert_eq!(backends.backend_for_class("GLACIER"), Some("archive"));
        assert_eq!(backends.backend_for_class("STANDARD"), None);
        let cold = BlobId::random_on(Some("archive"));
        let hot = BlobId::random_on(None);
        backends.put(&cold, body(b"cold")).await.unwrap();
        backends.put(&hot, body(b"hot")).await.unwrap();
        assert!(archive.get(&cold.local(), 0, 4).await.is_ok());
        assert!(main.get(&cold.local(), 0, 4).await.is_err());
        assert!(main.get(&hot, 0, 3).await.is_ok());
        let listed: Vec<BlobId> = backends
            .list()
            .map_ok(|i| i.id)
            .try_collect()
            .await
            .unwrap();
        assert!(listed.contains(&cold) && listed.contains(&hot));
        assert!(matches!(
            backends.get(&BlobId::random_on(Some("archive")), 0, 1).await,
            Err(StorageError::NotFound(id)) if id.backend() == Some("archive")
        ));
        assert!(matches!(
            backends.get(&BlobId::random_on(Some("gone")), 0, 1).await,
            Err(StorageError::Upstream { .. })
        ));
    }

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        crate::storage::conformance::run(&Backends::single(Arc::new(MemoryBlobStore::new()))).await;
    }
}

//! Blobs as files: `blobs/<aa>/<bb>/<id>`, written under `tmp/` first, then
//! fsynced and renamed, so a blob is either whole or absent after a crash.
//! The temp file is written around the page cache (`direct_write`).

use super::{
    BlobId, BlobInfo, BlobStore, BodyStream, StorageError, blocking, direct_write, file_read,
};
use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use std::path::{Path, PathBuf};

const READ_CHUNK: usize = 256 * 1024;

pub struct LocalBlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
}

impl LocalBlobStore {
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        let blobs = data_dir.join("blobs");
        let tmp = data_dir.join("tmp");
        std::fs::create_dir_all(&blobs)?;
        std::fs::create_dir_all(&tmp)?;
        Ok(LocalBlobStore { blobs, tmp })
    }

    fn path_of(&self, id: &BlobId) -> PathBuf {
        let s = id.key();
        self.blobs.join(&s[0..2]).join(&s[2..4]).join(s)
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, id: &BlobId, body: BodyStream) -> Result<u64, StorageError> {
        let temp = self.tmp.join(format!("{}.part", id.key()));
        let written = match direct_write::write_file(&temp, body).await {
            Ok(n) => n,
            Err(e) => {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(e);
            }
        };
        let target = self.path_of(id);
        let parent = target.parent().expect("blob paths have a parent");
        let result = async {
            tokio::fs::create_dir_all(parent).await?;
            tokio::fs::rename(&temp, &target).await?;
            // The rename is only durable once the directory entry is.
            let dir = tokio::fs::File::open(parent).await?;
            dir.sync_all().await
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e.into());
        }
        Ok(written)
    }

    async fn get(&self, id: &BlobId, offset: u64, length: u64) -> Result<BodyStream, StorageError> {
        file_read::open_range(self.path_of(id), offset, length, READ_CHUNK)
            .await?
            .ok_or_else(|| StorageError::NotFound(id.clone()))
    }

    async fn delete(&self, id: &BlobId) -> Result<(), StorageError> {
        match tokio::fs::remove_file(self.path_of(id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn list(&self) -> BoxStream<'_, Result<BlobInfo, StorageError>> {
        // One first-level directory (1/256 of the blobs) in memory at a time.
        let root = self.blobs.clone();
        futures::stream::once(blocking(move || Ok(subdirs(&root)?)))
            .map_ok(|dirs| futures::stream::iter(dirs.into_iter().map(Ok)))
            .try_flatten()
            .and_then(|dir| blocking(move || Ok(blobs_under(&dir)?)))
            .map_ok(|found| futures::stream::iter(found.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    async fn recover(&self) -> Result<(), StorageError> {
        let mut entries = tokio::fs::read_dir(&self.tmp).await?;
        let mut removed = 0usize;
        while let Some(entry) = entries.next_entry().await? {
            tokio::fs::remove_file(entry.path()).await?;
            removed += 1;
        }
        if removed > 0 {
            tracing::info!(removed, "removed temp files of interrupted writes");
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "local"
    }
}

fn subdirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// The blobs of one first-level directory (`blobs/<aa>/*/*`).
fn blobs_under(level1: &Path) -> std::io::Result<Vec<BlobInfo>> {
    let mut found = Vec::new();
    for level2 in subdirs(level1)? {
        for entry in std::fs::read_dir(level2)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(BlobId::parse) else {
                continue;
            };
            let created = entry.metadata()?.modified()?;
            found.push(BlobInfo { id, created });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        crate::storage::conformance::run(&store).await;
    }

    #[tokio::test]
    async fn recover_removes_interrupted_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("tmp/abc.part"), b"half").unwrap();
        store.recover().await.unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }
}

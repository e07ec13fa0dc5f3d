//! Blobs as chunk rows in a SQLite database of their own (not the
//! metadata's: blob traffic must not stall metadata writes).
//!
//! A put writes its chunks as they arrive, each in a short transaction (so a
//! slow client never holds the write lock), and makes the blob visible only
//! with the final transaction that inserts its `blobs` row; that commit is
//! synced, and the WAL is append-only, so the chunks before it are durable
//! too. Chunks without a `blobs` row are leftovers of an interrupted put:
//! `recover` removes them. No whole blob is ever held in memory.

use super::{BlobId, BlobInfo, BlobStore, BodyStream, StorageError, blocking};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Rows per page of the listing.
const LIST_PAGE: usize = 1000;
/// Read connections kept open between reads.
const IDLE_READERS: usize = 8;

pub struct SqliteBlobStore {
    path: PathBuf,
    chunk_size: usize,
    /// SQLite has one writer at a time; a mutex is cheaper than its locks.
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

fn io(e: rusqlite::Error) -> StorageError {
    StorageError::Io(std::io::Error::other(e))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl SqliteBlobStore {
    pub fn open(path: &Path, chunk_size: u64) -> Result<Self, StorageError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let writer = open_connection(path).map_err(io)?;
        writer
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS blobs (
                    id TEXT PRIMARY KEY,
                    size INTEGER NOT NULL,
                    chunk_size INTEGER NOT NULL,
                    created_ms INTEGER NOT NULL
                 ) WITHOUT ROWID;
                 CREATE TABLE IF NOT EXISTS chunks (
                    blob TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    PRIMARY KEY (blob, seq)
                 ) WITHOUT ROWID;",
            )
            .map_err(io)?;
        Ok(SqliteBlobStore {
            path: path.to_path_buf(),
            chunk_size: chunk_size.max(1) as usize,
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
        let writer = self.writer.clone();
        blocking(move || {
            let mut conn = writer.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn).map_err(io)
        })
        .await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
        Reader {
            path: self.path.clone(),
            pool: self.readers.clone(),
        }
        .run(f)
        .await
    }

    async fn put_chunk(&self, id: &BlobId, seq: i64, data: Bytes) -> Result<(), StorageError> {
        let key = id.key().to_string();
        self.write(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO chunks (blob, seq, data) VALUES (?1, ?2, ?3)",
                params![key, seq, data.as_ref()],
            )
            .map(|_| ())
        })
        .await
    }

    async fn remove_chunks(&self, id: &BlobId) -> Result<(), StorageError> {
        let key = id.key().to_string();
        self.write(move |conn| {
            conn.execute("DELETE FROM chunks WHERE blob = ?1", [key])
                .map(|_| ())
        })
        .await
    }

    async fn write_chunks(&self, id: &BlobId, mut body: BodyStream) -> Result<u64, StorageError> {
        let mut buffer = BytesMut::with_capacity(self.chunk_size);
        let mut seq = 0i64;
        let mut total = 0u64;
        while let Some(piece) = body.next().await {
            let mut piece = piece.map_err(StorageError::Body)?;
            total += piece.len() as u64;
            while !piece.is_empty() {
                let room = self.chunk_size - buffer.len();
                let take = room.min(piece.len());
                buffer.extend_from_slice(&piece.split_to(take));
                if buffer.len() == self.chunk_size {
                    self.put_chunk(id, seq, buffer.split().freeze()).await?;
                    seq += 1;
                }
            }
        }
        if !buffer.is_empty() {
            self.put_chunk(id, seq, buffer.freeze()).await?;
        }
        let key = id.key().to_string();
        let chunk_size = self.chunk_size as i64;
        self.write(move |conn| {
            // Synced: this commit is what makes the put durable.
            conn.pragma_update(None, "synchronous", "FULL")?;
            let done = conn.execute(
                "INSERT OR REPLACE INTO blobs (id, size, chunk_size, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![key, total as i64, chunk_size, now_ms()],
            );
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            done.map(|_| ())
        })
        .await?;
        Ok(total)
    }
}

/// A pooled read connection, returned to the pool after use.
#[derive(Clone)]
struct Reader {
    path: PathBuf,
    pool: Arc<Mutex<Vec<Connection>>>,
}

impl Reader {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
        let this = self.clone();
        blocking(move || {
            let pooled = this.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&this.path).map_err(io)?,
            };
            let result = f(&conn).map_err(io);
            let mut pool = this.pool.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < IDLE_READERS {
                pool.push(conn);
            }
            result
        })
        .await
    }
}

#[async_trait]
impl BlobStore for SqliteBlobStore {
    async fn put(&self, id: &BlobId, body: BodyStream) -> Result<u64, StorageError> {
        match self.write_chunks(id, body).await {
            Ok(n) => Ok(n),
            Err(e) => {
                if let Err(cleanup) = self.remove_chunks(id).await {
                    tracing::warn!(blob = %id, error = %cleanup, "cannot remove the chunks of a failed put; recovery will");
                }
                Err(e)
            }
        }
    }

    async fn get(&self, id: &BlobId, offset: u64, length: u64) -> Result<BodyStream, StorageError> {
        let key = id.key().to_string();
        let found = self
            .read(move |conn| {
                conn.query_row(
                    "SELECT size, chunk_size FROM blobs WHERE id = ?1",
                    [key],
                    |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
                )
                .optional()
            })
            .await?;
        let Some((size, chunk_size)) = found else {
            return Err(StorageError::NotFound(id.clone()));
        };
        let end = offset.saturating_add(length).min(size);
        let reader = Reader {
            path: self.path.clone(),
            pool: self.readers.clone(),
        };
        let key = id.key().to_string();
        let blob = id.clone();
        // One chunk row in memory at a time, read when the consumer asks.
        let stream = futures::stream::try_unfold(offset, move |position| {
            let reader = reader.clone();
            let key = key.clone();
            let blob = blob.clone();
            async move {
                if position >= end {
                    return Ok(None);
                }
                let seq = (position / chunk_size) as i64;
                let data: Option<Vec<u8>> = reader
                    .run(move |conn| {
                        conn.query_row(
                            "SELECT data FROM chunks WHERE blob = ?1 AND seq = ?2",
                            params![key, seq],
                            |r| r.get(0),
                        )
                        .optional()
                    })
                    .await
                    .map_err(std::io::Error::other)?;
                let data = data.ok_or_else(|| {
                    std::io::Error::other(format!("blob {blob} lost its chunk {seq}"))
                })?;
                let start = (position - seq as u64 * chunk_size) as usize;
                let stop = ((end - seq as u64 * chunk_size) as usize).min(data.len());
                if start >= stop {
                    return Err(std::io::Error::other(format!(
                        "blob {blob} has a short chunk {seq}"
                    )));
                }
                let piece = Bytes::from(data).slice(start..stop);
                let next = position + piece.len() as u64;
                Ok(Some((piece, next)))
            }
        });
        Ok(stream.boxed())
    }

    async fn delete(&self, id: &BlobId) -> Result<(), StorageError> {
        let key = id.key().to_string();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM blobs WHERE id = ?1", [&key])?;
            tx.execute("DELETE FROM chunks WHERE blob = ?1", [&key])?;
            tx.commit()
        })
        .await
    }

    fn list(&self) -> BoxStream<'_, Result<BlobInfo, StorageError>> {
        let pages = futures::stream::try_unfold(Some(String::new()), move |after| async move {
            let Some(after) = after else {
                return Ok(None);
            };
            let page: Vec<(String, i64)> = self
                .read(move |conn| {
                    let mut stmt = conn.prepare_cached(
                        "SELECT id, created_ms FROM blobs WHERE id > ?1 ORDER BY id LIMIT ?2",
                    )?;
                    let rows = stmt.query_map(params![after, LIST_PAGE as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                    rows.collect()
                })
                .await?;
            let next = (page.len() == LIST_PAGE)
                .then(|| page.last().map(|(id, _)| id.clone()))
                .flatten();
            let infos: Vec<Result<BlobInfo, StorageError>> = page
                .into_iter()
                .filter_map(|(id, created_ms)| {
                    Some(Ok(BlobInfo {
                        id: BlobId::parse(&id)?,
                        created: UNIX_EPOCH + Duration::from_millis(created_ms.max(0) as u64),
                    }))
                })
                .collect();
            Ok::<_, StorageError>(Some((futures::stream::iter(infos), next)))
        });
        pages.try_flatten().boxed()
    }

    async fn check(&self) -> Result<(), StorageError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }

    async fn recover(&self) -> Result<(), StorageError> {
        let removed = self
            .write(|conn| {
                conn.execute(
                    "DELETE FROM chunks WHERE blob NOT IN (SELECT id FROM blobs)",
                    [],
                )
            })
            .await?;
        if removed > 0 {
            tracing::info!(
                chunks = removed,
                "removed the chunks of interrupted blob writes"
            );
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        // A small chunk size so the suite's blobs span many chunks.
        let store = SqliteBlobStore::open(&dir.path().join("blobs.db"), 4096).unwrap();
        crate::storage::conformance::run(&store).await;
    }

    #[tokio::test]
    async fn recover_removes_the_chunks_of_an_interrupted_put() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteBlobStore::open(&dir.path().join("blobs.db"), 4096).unwrap();
        let id = BlobId::random();
        store
            .put_chunk(&id, 0, Bytes::from_static(b"half"))
            .await
            .unwrap();
        store.recover().await.unwrap();
        let left: i64 = store
            .read(|conn| conn.query_row("SELECT count(*) FROM chunks", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(left, 0);
        assert!(matches!(
            store.get(&id, 0, 4).await,
            Err(StorageError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn reads_survive_a_reopen_with_another_chunk_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blobs.db");
        let id = BlobId::random();
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        {
            let store = SqliteBlobStore::open(&path, 4096).unwrap();
            let body = futures::stream::iter(vec![Ok(Bytes::from(data.clone()))]).boxed();
            store.put(&id, body).await.unwrap();
        }
        let store = SqliteBlobStore::open(&path, 65536).unwrap();
        let got: Vec<Bytes> =
            futures::TryStreamExt::try_collect(store.get(&id, 10_000, 30_000).await.unwrap())
                .await
                .unwrap();
        assert_eq!(got.concat(), &data[10_000..40_000]);
    }
}

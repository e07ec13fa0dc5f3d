//! The SQLite database behind [`Metadata`]: one writer connection, a pool of
//! read-only connections, consistent copies for snapshots and replacement
//! of the whole database by such a copy.
//!
//! The database file in use is named by a small pointer file next to the
//! configured path (`<path>.current`), so that installing a snapshot opens
//! a file under a new name instead of renaming over a file that readers of
//! the old generation still have open: SQLite deletes a WAL file by name
//! when its last connection closes, and must never find the new one there.

use super::{MetaError, Outcome, Rejection, command, schema};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Idle read connections kept open; more are opened on demand.
const MAX_IDLE_READERS: usize = 8;

struct Inner {
    writer: Mutex<Connection>,
    readers: Mutex<Readers>,
    /// `None` for in-memory databases.
    location: Option<Location>,
}

/// Where the database lives on disk.
struct Location {
    /// The configured path: the first generation's file, and the stem of
    /// the pointer file and of later generations.
    base: PathBuf,
}

struct Readers {
    /// Bumped when the database is replaced; connections of an older
    /// generation are closed instead of going back to the pool.
    generation: u64,
    /// The file readers open; `None` in memory (reads use the writer).
    path: Option<PathBuf>,
    idle: Vec<Connection>,
}

#[derive(Clone)]
pub struct Metadata {
    inner: Arc<Inner>,
}

pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(128);
    // A plan that never depends on bound values: otherwise SQLite may mark
    // parameters as plan-relevant and recompile a cached statement each time
    // they are bound, which defeats the statement cache.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn open_writer(path: &Path) -> Result<Connection, MetaError> {
    let writer = Connection::open(path)?;
    configure(&writer)?;
    writer.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL: a commit reaches the WAL but is not fsynced. The Raft log is
    // the durable record; after a power loss the commands past the last
    // applied position that survived are applied again from it.
    writer.pragma_update(None, "synchronous", "NORMAL")?;
    crate::wal_checkpoint::hand_off(&writer)?;
    schema::migrate(&writer)?;
    Ok(writer)
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> MetaError {
    MetaError::Corrupt(format!("cannot {what} {}: {e}", path.display()))
}

impl Location {
    fn pointer(&self) -> PathBuf {
        let mut name = self.base.as_os_str().to_owned();
        name.push(".current");
        PathBuf::from(name)
    }

    fn dir(&self) -> &Path {
        self.base.parent().unwrap_or(Path::new("."))
    }

    /// The file of the current generation.
    fn current(&self) -> Result<PathBuf, MetaError> {
        match std::fs::read_to_string(self.pointer()) {
            Ok(name) => Ok(self.dir().join(name.trim())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(self.base.clone()),
            Err(e) => Err(io_error("read", &self.pointer(), e)),
        }
    }

    /// A new, unused file name for the next generation.
    fn next(&self) -> PathBuf {
        let stem = self
            .base
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "meta.db".into());
        self.dir()
            .join(format!("{stem}.{}", uuid::Uuid::new_v4().simple()))
    }

    /// Removes the files of generations other than `current`, left behind by
    /// a crash while a snapshot was installed.
    fn remove_stale(&self, current: &Path) {
        let Some(stem) = self
            .base
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
        else {
            return;
        };
        let prefix = format!("{stem}.");
        let current_name = current
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(entries) = std::fs::read_dir(self.dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(&prefix) else {
                continue;
            };
            let generation = rest.split('-').next().unwrap_or("");
            let is_generation =
                generation.len() == 32 && generation.bytes().all(|b| b.is_ascii_hexdigit());
            let ours = name == current_name || name.starts_with(&format!("{current_name}-"));
            if is_generation && !ours {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        if current != self.base {
            remove_database(&self.base);
        }
    }

    /// Points at `file` from now on (durably: written aside, fsynced, renamed).
    fn point_at(&self, file: &Path) -> Result<(), MetaError> {
        let pointer = self.pointer();
        let tmp = pointer.with_extension("current.tmp");
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, name.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &pointer)?;
            std::fs::File::open(self.dir())?.sync_all()
        };
        write().map_err(|e| io_error("write", &pointer, e))
    }
}

/// Removes a database file with its WAL and shared-memory files.
fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

impl Metadata {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, MetaError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error("create", parent, e))?;
        }
        let location = Location {
            base: path.to_path_buf(),
        };
        let current = location.current()?;
        location.remove_stale(&current);
        crate::sqlite_file::create_if_missing(&current, schema::migrate)
            .map_err(|e| io_error("create", &current, e))?;
        let writer = open_writer(&current)?;
        let inner = Arc::new(Inner {
            writer: Mutex::new(writer),
            readers: Mutex::new(Readers {
                generation: 0,
                path: Some(current),
                idle: Vec::new(),
            }),
            location: Some(location),
        });
        crate::wal_checkpoint::spawn("metadata", Arc::downgrade(&inner), |inner: &Inner| {
            inner
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .path
                .clone()
        })
        .map_err(|e| io_error("start checkpoints of", path, e))?;
        Ok(Metadata { inner })
    }

    /// A database that lives only in this process (the `memory` backend).
    pub fn in_memory() -> Result<Self, MetaError> {
        let writer = Connection::open_in_memory()?;
        configure(&writer)?;
        schema::migrate(&writer)?;
        Ok(Metadata {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers: Mutex::new(Readers {
                    generation: 0,
                    path: None,
                    idle: Vec::new(),
                }),
                location: None,
            }),
        })
    }

    /// Applies `command` in a transaction of its own, outside any log: for
    /// tests, benchmarks and tools. The server applies commands through the
    /// Raft log (`crate::cluster`), with [`Metadata::write`] and
    /// [`apply_entry`].
    pub async fn execute(&self, command: command::Command) -> Result<Outcome, MetaError> {
        self.write(move |tx| apply_entry(tx, &command)?.map_err(MetaError::from))
            .await
    }

    /// Runs `work` in one write transaction, committed if it returns `Ok`.
    pub async fn write<T, F>(&self, work: F) -> Result<T, MetaError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> Result<T, MetaError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = work(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await
        .map_err(|e| MetaError::Task(e.to_string()))?
    }

    /// Runs a read-only query on a pooled connection.
    pub async fn read<T, F>(&self, query: F) -> Result<T, MetaError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, MetaError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.with_reader(query))
            .await
            .map_err(|e| MetaError::Task(e.to_string()))?
    }

    /// Like [`Metadata::read`], for a point lookup on the request path: on
    /// disk it runs right here on a pooled read connection, as the hand-off
    /// to the blocking pool and back costs more than such a query. WAL
    /// readers never wait for the writer; in memory the reader is the
    /// writer, so there it does go through the pool.
    pub async fn lookup<T, F>(&self, query: F) -> Result<T, MetaError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, MetaError> + Send + 'static,
    {
        if self.inner.location.is_some() {
            return self.inner.with_reader(query);
        }
        self.read(query).await
    }

    /// Writes a transactionally consistent copy of the whole database to
    /// `dest` (which must not exist) and makes it durable.
    pub async fn copy_to(&self, dest: PathBuf) -> Result<(), MetaError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let target = dest.to_string_lossy().into_owned();
            let vacuum = |conn: &Connection| -> Result<(), MetaError> {
                conn.execute("VACUUM INTO ?1", [&target])?;
                Ok(())
            };
            if inner.location.is_some() {
                inner.with_reader(vacuum)?;
            } else {
                let conn = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
                vacuum(&conn)?;
            }
            std::fs::File::open(&dest)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_error("sync", &dest, e))
        })
        .await
        .map_err(|e| MetaError::Task(e.to_string()))?
    }

    /// Replaces the whole database by the copy at `src` (a file written by
    /// [`Metadata::copy_to`], here or on another node), which is consumed.
    /// Reads in flight finish on the old data; later ones see the new.
    pub async fn replace_with(&self, src: PathBuf) -> Result<(), MetaError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.replace_with(&src))
            .await
            .map_err(|e| MetaError::Task(e.to_string()))?
    }

    /// Makes every committed transaction durable in the database file (a
    /// WAL checkpoint), e.g. before the log that could replay them is cut.
    pub async fn checkpoint(&self) -> Result<(), MetaError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            if inner.location.is_none() {
                return Ok(());
            }
            let conn = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            conn.query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
        .map_err(|e| MetaError::Task(e.to_string()))?
    }
}

impl Inner {
    fn with_reader<T>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, MetaError>,
    ) -> Result<T, MetaError> {
        let (generation, path, pooled) = {
            let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
            let pooled = readers.idle.pop();
            (readers.generation, readers.path.clone(), pooled)
        };
        let Some(path) = path else {
            let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            return query(&conn);
        };
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&conn)?;
                conn
            }
        };
        let result = query(&conn);
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if readers.generation == generation && readers.idle.len() < MAX_IDLE_READERS {
            readers.idle.push(conn);
        }
        result
    }

    fn replace_with(&self, src: &Path) -> Result<(), MetaError> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Some(location) = &self.location else {
            // In memory: copy the file's pages into the connection.
            let source = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            {
                let backup = rusqlite::backup::Backup::new(&source, &mut writer)?;
                backup.run_to_completion(1024, std::time::Duration::ZERO, None)?;
            }
            drop(source);
            let _ = std::fs::remove_file(src);
            schema::migrate(&writer)?;
            return Ok(());
        };
        let old = location.current()?;
        let new = location.next();
        std::fs::rename(src, &new).map_err(|e| io_error("move snapshot to", &new, e))?;
        let opened = open_writer(&new)?;
        location.point_at(&new)?;
        let previous = std::mem::replace(&mut *writer, opened);
        drop(previous);
        {
            let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
            readers.generation += 1;
            readers.path = Some(new);
            readers.idle.clear();
        }
        remove_database(&old);
        Ok(())
    }
}

/// Applies one command inside `tx` as the Raft state machine does: a
/// command that a precondition or rule refuses changes nothing (its
/// partial work is rolled back to a savepoint) but is still an answer, the
/// same on every node. `Err` means the store itself failed.
pub fn apply_entry(
    tx: &Transaction,
    command: &command::Command,
) -> Result<Result<Outcome, Rejection>, MetaError> {
    // Cached statements: parsing these three every command was a tenth of
    // a small PUT's CPU.
    let run = |sql: &str| tx.prepare_cached(sql).and_then(|mut s| s.execute([]));
    run("SAVEPOINT command")?;
    match command::apply(tx, command) {
        Ok(outcome) => {
            run("RELEASE command")?;
            Ok(Ok(outcome))
        }
        Err(error) => {
            run("ROLLBACK TO command")?;
            run("RELEASE command")?;
            error.into_rejection().map(Err)
        }
    }
}

//! The Raft log: an SQLite database of its own (`raft/log.db`), written with
//! `synchronous = FULL`. This is the durable write path of the whole
//! server: every metadata command is here before it is applied. Appends go
//! to a writer thread that commits whatever queued up during the previous
//! fsync in one transaction (group commit, see `log_writer`); until then
//! the entries are read from memory.

pub use super::log_writer::LogInstruments;
use super::log_writer::{Job, Shared, Unflushed, Writer};
use super::types::{Entry, LogId, TypeConfig, Vote};
use crate::cluster::proposal::{decode, encode};
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS entries(
    idx INTEGER PRIMARY KEY,
    entry BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS log_state(
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"#;

const VOTE: &str = "vote";
pub(super) const COMMITTED: &str = "committed";
const PURGED: &str = "purged";
const CLUSTER_ID: &str = "cluster_id";

struct Inner {
    /// The file; `None` in memory.
    path: Option<std::path::PathBuf>,
    /// Reads; a connection of its own on disk (WAL lets it read while the
    /// writer commits), the writer's own in memory.
    reader: Arc<Mutex<Connection>>,
    writer: Writer,
    unflushed: Arc<Mutex<Unflushed>>,
    committed: Arc<Mutex<Option<Option<LogId>>>>,
    instruments: Arc<OnceLock<LogInstruments>>,
}

#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

pub(super) fn other<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(e.to_string())
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl LogStore {
    /// Where appends and flushes are measured.
    pub fn observe(&self, instruments: LogInstruments) {
        let _ = self.inner.instruments.set(instruments);
    }

    /// Opens (creating if needed) the log at `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        crate::sqlite_file::create_if_missing(path, |c| c.execute_batch(SCHEMA))?;
        let conn = Connection::open(path).map_err(other)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(other)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(other)?;
        crate::wal_checkpoint::hand_off(&conn).map_err(other)?;
        conn.execute_batch(SCHEMA).map_err(other)?;
        let reader = Connection::open(path).map_err(other)?;
        reader
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(other)?;
        let store = Self::with_connections(conn, Some((path, reader)))?;
        crate::wal_checkpoint::spawn("raft-log", Arc::downgrade(&store.inner), |inner: &Inner| {
            inner.path.clone()
        })?;
        Ok(store)
    }

    /// A log that lives only in this process (the `memory` backend).
    pub fn in_memory() -> io::Result<Self> {
        let conn = Connection::open_in_memory().map_err(other)?;
        conn.execute_batch(SCHEMA).map_err(other)?;
        Self::with_connections(conn, None)
    }

    fn with_connections(
        writer: Connection,
        reader: Option<(&Path, Connection)>,
    ) -> io::Result<Self> {
        writer.set_prepared_statement_cache_capacity(32);
        let writer = Arc::new(Mutex::new(writer));
        let path = reader.as_ref().map(|(path, _)| path.to_path_buf());
        let reader = match reader {
            Some((_, reader)) => {
                reader.set_prepared_statement_cache_capacity(32);
                Arc::new(Mutex::new(reader))
            }
            None => writer.clone(),
        };
        let unflushed = Arc::new(Mutex::new(Unflushed::default()));
        let committed = Arc::new(Mutex::new(None));
        let instruments = Arc::new(OnceLock::new());
        let writer = Writer::start(Shared {
            conn: writer,
            unflushed: unflushed.clone(),
            committed: committed.clone(),
            instruments: instruments.clone(),
        })?;
        Ok(LogStore {
            inner: Arc::new(Inner {
                path,
                reader,
                writer,
                unflushed,
                committed,
                instruments,
            }),
        })
    }

    /// Whether anything was ever written: a vote or an entry.
    pub async fn is_pristine(&self) -> io::Result<bool> {
        if lock(&self.inner.unflushed).last().is_some() {
            return Ok(false);
        }
        self.blocking(|conn| {
            let entries: i64 = conn
                .query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))
                .map_err(other)?;
            let state: i64 = conn
                .query_row("SELECT COUNT(*) FROM log_state", [], |r| r.get(0))
                .map_err(other)?;
            Ok(entries == 0 && state == 0)
        })
        .await
    }

    /// The id of the group this log belongs to, once formed or joined.
    pub async fn cluster_id(&self) -> io::Result<Option<String>> {
        self.blocking(|conn| decoded(state(conn, CLUSTER_ID)?))
            .await
    }

    pub async fn set_cluster_id(&self, id: &str) -> io::Result<()> {
        let bytes = encode(&id).map_err(other)?;
        self.write(move |tx| set_state(tx, CLUSTER_ID, &bytes))
            .await
    }

    async fn blocking<T, F>(&self, work: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> io::Result<T> + Send + 'static,
    {
        let reader = self.inner.reader.clone();
        tokio::task::spawn_blocking(move || work(&mut lock(&reader)))
            .await
            .map_err(other)?
    }

    /// Runs `work` in the writer's next transaction and waits until it is
    /// durable.
    async fn write<F>(&self, work: F) -> io::Result<()>
    where
        F: FnOnce(&rusqlite::Transaction) -> io::Result<()> + Send + 'static,
    {
        self.inner.writer.run(Box::new(work)).await
    }
}

fn state(conn: &Connection, name: &str) -> io::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT value FROM log_state WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(other)
}

pub(super) fn set_state(tx: &rusqlite::Transaction, name: &str, value: &[u8]) -> io::Result<()> {
    tx.prepare_cached(
        "INSERT INTO log_state(name, value) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut s| s.execute(params![name, value]))
    .map(|_| ())
    .map_err(other)
}

fn decoded<T: serde::de::DeserializeOwned>(bytes: Option<Vec<u8>>) -> io::Result<Option<T>> {
    bytes.map(|b| decode(&b).map_err(other)).transpose()
}

/// `range` as SQLite bounds: first index, and one past the last.
fn bounds<RB: RangeBounds<u64>>(range: &RB) -> (i64, i64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (
        start.min(i64::MAX as u64) as i64,
        end.min(i64::MAX as u64) as i64,
    )
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) = bounds(&range);
        // Unflushed entries first: one flushed after this look is still in
        // the database below, and they are always the log's tail.
        let unflushed = lock(&self.inner.unflushed).range(start as u64, end as u64);
        if unflushed.first_key_value().map(|(index, _)| *index) == Some(start as u64) {
            return Ok(unflushed.into_values().collect());
        }
        let mut entries = self
            .blocking(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT idx, entry FROM entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
                    )
                    .map_err(other)?;
                let rows = stmt
                    .query_map([start, end], |r| {
                        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
                    })
                    .map_err(other)?;
                let mut entries = BTreeMap::new();
                for row in rows {
                    let (index, bytes) = row.map_err(other)?;
                    entries.insert(index, decode::<Entry>(&bytes).map_err(other)?);
                }
                Ok(entries)
            })
            .await?;
        entries.extend(unflushed);
        Ok(entries.into_values().collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.blocking(|conn| decoded(state(conn, VOTE)?)).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        self.blocking(|conn| {
            let purged: Option<LogId> = decoded(state(conn, PURGED)?)?;
            let last: Option<Vec<u8>> = conn
                .query_row(
                    "SELECT entry FROM entries ORDER BY idx DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(other)?;
            let last = match last {
                Some(bytes) => Some(decode::<Entry>(&bytes).map_err(other)?.log_id),
                None => purged,
            };
            Ok(LogState {
                last_purged_log_id: purged,
                last_log_id: last,
            })
        })
        .await
        .map(|mut state| {
            if let Some(last) = lock(&self.inner.unflushed).last() {
                state.last_log_id = Some(last);
            }
            state
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let bytes = encode(vote).map_err(other)?;
        self.write(move |tx| set_state(tx, VOTE, &bytes)).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        *lock(&self.inner.committed) = Some(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        if let Some(pending) = *lock(&self.inner.committed) {
            return Ok(pending);
        }
        self.blocking(|conn| Ok(decoded::<Option<LogId>>(state(conn, COMMITTED)?)?.flatten()))
            .await
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let started = std::time::Instant::now();
        let mut encoded = Vec::new();
        for entry in entries {
            let bytes = encode(&entry).map_err(other)?;
            encoded.push((entry, bytes));
        }
        // Readable from here on; durable when the writer calls back.
        let rows = {
            let mut unflushed = lock(&self.inner.unflushed);
            encoded
                .into_iter()
                .map(|(entry, bytes)| {
                    let index = entry.log_id.index;
                    (index, unflushed.insert(entry), bytes)
                })
                .collect()
        };
        self.inner.writer.submit(Job::Append {
            rows,
            started,
            callback,
        })
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        lock(&self.inner.unflushed).remove_after(last_log_id.map(|l| l.index));
        let after = last_log_id.map(|l| l.index as i64).unwrap_or(-1);
        self.write(move |tx| {
            tx.execute("DELETE FROM entries WHERE idx > ?1", [after])
                .map(|_| ())
                .map_err(other)
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        lock(&self.inner.unflushed).remove_through(log_id.index);
        let upto = log_id.index as i64;
        let bytes = encode(&log_id).map_err(other)?;
        self.write(move |tx| {
            set_state(tx, PURGED, &bytes)?;
            tx.execute("DELETE FROM entries WHERE idx <= ?1", [upto])
                .map(|_| ())
                .map_err(other)
        })
        .await
    }
}

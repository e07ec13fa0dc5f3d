//! The Raft log: an SQLite database of its own (`raft/log.db`), written with
//! `synchronous = FULL` so that an append is durable when it returns. This
//! is the durable write path of the whole server: every metadata command is
//! here before it is applied, and many concurrent writes that openraft
//! batches into one append share one fsync (group commit).

use super::types::{Entry, LogId, TypeConfig, Vote};
use crate::cluster::proposal::{decode, encode};
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};
use rusqlite::{Connection, OptionalExtension, params};
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex};

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
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";
const CLUSTER_ID: &str = "cluster_id";

struct Inner {
    conn: Mutex<Connection>,
    /// The committed position openraft reported last, written with the next
    /// durable write rather than on its own: losing it only means that a
    /// restart re-applies a little less before the leader tells it again.
    committed: Mutex<Option<Option<LogId>>>,
    append_seconds: std::sync::OnceLock<prometheus_client::metrics::histogram::Histogram>,
}

#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

fn other<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(e.to_string())
}

impl LogStore {
    /// Where the time of each append (with its flush) is recorded.
    pub fn observe_appends(&self, histogram: prometheus_client::metrics::histogram::Histogram) {
        let _ = self.inner.append_seconds.set(histogram);
    }

    /// Opens (creating if needed) the log at `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let conn = Connection::open(path).map_err(other)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(other)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(other)?;
        Self::with_connection(conn)
    }

    /// A log that lives only in this process (the `memory` backend).
    pub fn in_memory() -> io::Result<Self> {
        Self::with_connection(Connection::open_in_memory().map_err(other)?)
    }

    fn with_connection(conn: Connection) -> io::Result<Self> {
        conn.execute_batch(SCHEMA).map_err(other)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(LogStore {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                committed: Mutex::new(None),
                append_seconds: Default::default(),
            }),
        })
    }

    /// Whether anything was ever written: a vote or an entry.
    pub async fn is_pristine(&self) -> io::Result<bool> {
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
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().unwrap_or_else(|e| e.into_inner());
            work(&mut conn)
        })
        .await
        .map_err(other)?
    }

    /// Runs `work` in one durable transaction, together with a pending
    /// committed position.
    async fn write<F>(&self, work: F) -> io::Result<()>
    where
        F: FnOnce(&rusqlite::Transaction) -> io::Result<()> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().unwrap_or_else(|e| e.into_inner());
            let committed = inner
                .committed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            let tx = conn.transaction().map_err(other)?;
            if let Some(committed) = committed {
                set_state(&tx, COMMITTED, &encode(&committed).map_err(other)?)?;
            }
            work(&tx)?;
            tx.commit().map_err(other)
        })
        .await
        .map_err(other)?
    }
}

fn state(conn: &Connection, name: &str) -> io::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT value FROM log_state WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(other)
}

fn set_state(tx: &rusqlite::Transaction, name: &str, value: &[u8]) -> io::Result<()> {
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
        self.blocking(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT entry FROM entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
                )
                .map_err(other)?;
            let rows = stmt
                .query_map([start, end], |r| r.get::<_, Vec<u8>>(0))
                .map_err(other)?;
            let mut entries = Vec::new();
            for row in rows {
                entries.push(decode::<Entry>(&row.map_err(other)?).map_err(other)?);
            }
            Ok(entries)
        })
        .await
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
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let bytes = encode(vote).map_err(other)?;
        self.write(move |tx| set_state(tx, VOTE, &bytes)).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        *self
            .inner
            .committed
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        if let Some(pending) = self
            .inner
            .committed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .copied()
        {
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
        let mut rows = Vec::new();
        for entry in entries {
            rows.push((entry.log_id.index as i64, encode(&entry).map_err(other)?));
        }
        let result = self
            .write(move |tx| {
                let mut stmt = tx
                    .prepare_cached("INSERT OR REPLACE INTO entries(idx, entry) VALUES (?1, ?2)")
                    .map_err(other)?;
                for (idx, bytes) in &rows {
                    stmt.execute(params![idx, bytes]).map_err(other)?;
                }
                Ok(())
            })
            .await;
        if let Some(histogram) = self.inner.append_seconds.get() {
            histogram.observe(started.elapsed().as_secs_f64());
        }
        match result {
            Ok(()) => {
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let after = last_log_id.map(|l| l.index as i64).unwrap_or(-1);
        self.write(move |tx| {
            tx.execute("DELETE FROM entries WHERE idx > ?1", [after])
                .map(|_| ())
                .map_err(other)
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
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

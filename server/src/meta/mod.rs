//! The metadata store: SQLite in WAL mode, one writer applying `Command`s,
//! pooled read-only connections for queries (DESIGN.md §3).

pub mod command;
pub mod lock;
pub mod model;
mod multipart;
pub mod query;
pub mod rewrap;
mod schema;
mod versions;

pub use command::{Command, DeleteResult, Outcome, WriteCondition};
pub use versions::{is_valid_version_id, new_version_id};

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket already exists")]
    BucketExists { owned_by_requester: bool },
    #[error("bucket not empty")]
    BucketNotEmpty,
    #[error("no such key")]
    NoSuchKey,
    #[error("no such version")]
    NoSuchVersion,
    /// The version named is a delete marker, which has no data or settings.
    #[error("the version is a delete marker")]
    DeleteMarker { version_id: String },
    #[error("no such upload")]
    NoSuchUpload,
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("copy source changed while copying")]
    SourceChanged,
    /// A rule the command itself broke (multipart completion rules, object
    /// lock, bucket state, …).
    #[error("{0}")]
    Rejected(Refusal),
    #[error("metadata is corrupt: {0}")]
    Corrupt(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("metadata task failed: {0}")]
    Task(String),
}

/// The rules a command can break, each of which the S3 layer answers with
/// its own error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    InvalidPart,
    InvalidPartOrder,
    EntityTooSmall,
    MalformedXml,
    InvalidRequest,
    BadDigest,
    /// The bucket's state forbids the change (object lock needs versioning).
    InvalidBucketState,
    /// Object lock (retention or legal hold) forbids removing or changing a version.
    Locked,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub rule: Rule,
    /// What to tell the client; empty for the rule's standard message.
    pub message: String,
    /// Extra elements of the error document (`PartNumber`, …).
    pub details: Vec<(&'static str, String)>,
}

impl Refusal {
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Refusal {
            rule,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn detail(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.details.push((name, value.into()));
        self
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.rule, self.message)
    }
}

impl From<Refusal> for MetaError {
    fn from(refusal: Refusal) -> Self {
        MetaError::Rejected(refusal)
    }
}

/// Idle read connections kept open; more are opened on demand.
const MAX_IDLE_READERS: usize = 8;

struct Inner {
    writer: Mutex<Connection>,
    /// `None` for in-memory databases, which cannot share one file between
    /// connections; reads then use the writer connection.
    readers: Option<(PathBuf, Mutex<Vec<Connection>>)>,
}

#[derive(Clone)]
pub struct Metadata {
    inner: Arc<Inner>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(())
}

impl Metadata {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, MetaError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                MetaError::Corrupt(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let writer = Connection::open(path)?;
        configure(&writer)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit acknowledged to a client survives power loss too.
        writer.pragma_update(None, "synchronous", "FULL")?;
        schema::migrate(&writer)?;
        Ok(Metadata {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers: Some((path.to_path_buf(), Mutex::new(Vec::new()))),
            }),
        })
    }

    /// A database that lives only in this process (the `memory` backend).
    pub fn in_memory() -> Result<Self, MetaError> {
        let writer = Connection::open_in_memory()?;
        configure(&writer)?;
        schema::migrate(&writer)?;
        Ok(Metadata {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers: None,
            }),
        })
    }

    /// Applies `command` in one transaction and returns what it did.
    pub async fn execute(&self, command: Command) -> Result<Outcome, MetaError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let outcome = command::apply(&tx, &command)?;
            bump_applied_index(&tx)?;
            tx.commit()?;
            Ok(outcome)
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

    /// The number of commands applied so far (the Raft log index in a cluster).
    pub async fn applied_index(&self) -> Result<i64, MetaError> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT COALESCE((SELECT value FROM state WHERE name = 'applied_index'), 0)",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }
}

impl Inner {
    fn with_reader<T>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, MetaError>,
    ) -> Result<T, MetaError> {
        let Some((path, pool)) = &self.readers else {
            let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            return query(&conn);
        };
        let pooled = pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&conn)?;
                conn
            }
        };
        let result = query(&conn);
        let mut idle = pool.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

/// Records, in the same transaction, that one more command was applied, so a
/// crash never leaves the metadata and the applied index out of step.
fn bump_applied_index(tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO state(name, value) VALUES ('applied_index', 1)
         ON CONFLICT(name) DO UPDATE SET value = value + 1",
    )?
    .execute([])?;
    Ok(())
}

#[cfg(test)]
mod tests;

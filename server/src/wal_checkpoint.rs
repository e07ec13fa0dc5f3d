//! Checkpoints of an SQLite WAL from a thread of their own. Left to SQLite,
//! the commit that fills the WAL past a thousand pages copies them into the
//! database and fsyncs it before it returns, which stalls every write queued
//! behind it (the Raft log's flushes, the state machine's applies). Here a
//! PASSIVE checkpoint runs every few hundred milliseconds on a separate
//! connection, concurrently with the writer; the writer keeps a far larger
//! automatic threshold only as a backstop.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::Duration;

/// How often the background thread checkpoints.
const EVERY: Duration = Duration::from_millis(200);

/// WAL pages past which a committing writer checkpoints itself anyway.
const WRITER_BACKSTOP_PAGES: i64 = 16_384;

/// Makes `writer` leave routine checkpoints to [`spawn`].
pub fn hand_off(writer: &Connection) -> rusqlite::Result<()> {
    writer.pragma_update(None, "wal_autocheckpoint", WRITER_BACKSTOP_PAGES)
}

/// Starts checkpointing the database file `path_of(owner)` names (it may
/// change: the metadata database is replaced by snapshots) until `owner` is
/// dropped. `name` names the thread.
pub fn spawn<T, F>(name: &str, owner: Weak<T>, path_of: F) -> std::io::Result<()>
where
    T: Send + Sync + 'static,
    F: Fn(&T) -> Option<PathBuf> + Send + 'static,
{
    let label = name.to_string();
    std::thread::Builder::new()
        .name(format!("{name}-checkpoint"))
        .spawn(move || {
            let mut open: Option<(PathBuf, Connection)> = None;
            loop {
                std::thread::sleep(EVERY);
                let Some(path) = owner.upgrade().map(|o| path_of(&o)) else {
                    return;
                };
                let Some(path) = path else {
                    open = None;
                    continue;
                };
                if open.as_ref().map(|(p, _)| p) != Some(&path) {
                    open = match connect(&path) {
                        Ok(conn) => Some((path, conn)),
                        Err(e) => {
                            tracing::warn!(database = %label, error = %e, "cannot open a connection for WAL checkpoints");
                            None
                        }
                    };
                }
                if let Some((_, conn)) = &open
                    && let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                {
                    tracing::warn!(database = %label, error = %e, "WAL checkpoint failed");
                }
            }
        })?;
    Ok(())
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(1))?;
    Ok(conn)
}

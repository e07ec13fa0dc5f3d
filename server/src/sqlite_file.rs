//! Creating a SQLite database file cheaply and atomically.
//!
//! SQLite creates a database through a rollback journal and then switches
//! it to WAL, syncing the journal, the file and the directory on the way:
//! six to eight fsyncs before the first answer of a fresh server (the
//! metadata database and the Raft log each). Nothing in a database that is
//! being created needs to survive a crash half-way, so it is built under a
//! temporary name with syncing off, synced once and renamed into place: a
//! crash leaves either no database (created again on the next start) or a
//! whole one.

use rusqlite::Connection;
use std::io;
use std::path::{Path, PathBuf};

/// Creates the database at `path` in WAL mode, set up by `init`, unless it
/// exists already. A leftover of an interrupted creation is replaced.
pub fn create_if_missing(
    path: &Path,
    init: impl FnOnce(&Connection) -> rusqlite::Result<()>,
) -> io::Result<()> {
    if path.try_exists()? {
        return Ok(());
    }
    let building = with_suffix(path, ".creating");
    remove_with_companions(&building)?;
    let built = (|| -> rusqlite::Result<()> {
        let conn = Connection::open(&building)?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        conn.pragma_update(None, "journal_mode", "MEMORY")?;
        init(&conn)?;
        // Persistent in the file's header; nothing is written after it, so
        // closing leaves no WAL behind.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.close().map_err(|(_, e)| e)
    })();
    built.map_err(io::Error::other)?;
    if with_suffix(&building, "-wal").try_exists()? {
        return Err(io::Error::other(format!(
            "{} kept a write-ahead log after it was closed",
            building.display()
        )));
    }
    std::fs::File::open(&building)?.sync_all()?;
    std::fs::rename(&building, path)?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_with_companions(path: &Path) -> io::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        match std::fs::remove_file(with_suffix(path, suffix)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_wal_database_once_and_replaces_a_leftover() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        // A creation interrupted earlier left its file behind.
        std::fs::write(with_suffix(&path, ".creating"), b"torn").unwrap();
        create_if_missing(&path, |c| c.execute_batch("CREATE TABLE t(v INTEGER)")).unwrap();
        assert!(!with_suffix(&path, ".creating").exists());
        assert!(!with_suffix(&path, "-wal").exists());
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute("INSERT INTO t VALUES (7)", []).unwrap();
        drop(conn);
        // An existing database is left alone: init does not run again.
        create_if_missing(&path, |_| panic!("must not run")).unwrap();
        let conn = Connection::open(&path).unwrap();
        let v: i64 = conn.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(v, 7);
    }

    #[test]
    fn a_failed_init_leaves_no_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let err = create_if_missing(&path, |c| c.execute_batch("NOT SQL")).unwrap_err();
        assert!(err.to_string().contains("syntax"), "{err}");
        assert!(!path.exists());
    }
}

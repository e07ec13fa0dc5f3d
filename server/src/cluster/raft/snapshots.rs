//! Snapshots of the state machine: consistent copies of the metadata
//! database (which also holds the applied position and membership), kept in
//! `raft/snapshots/` next to their meta. Only the newest is kept.

use super::types::{LogId, Snapshot, SnapshotMeta, StoredMembership};
use crate::cluster::proposal::{decode, encode};
use crate::meta::{Metadata, raft_state};
use rusqlite::{Connection, OpenFlags};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Names of the values the state machine keeps in `raft_state`.
pub const APPLIED: &str = "applied";
pub const MEMBERSHIP: &str = "membership";

/// A snapshot's data: a database file. A temporary one (received from the
/// leader, or a working copy) is removed when dropped unless it was moved.
#[derive(Debug)]
pub struct SnapshotFile {
    pub path: PathBuf,
    temporary: bool,
}

impl SnapshotFile {
    /// A file that is removed once nobody needs it.
    pub fn temporary(path: PathBuf) -> Self {
        SnapshotFile {
            path,
            temporary: true,
        }
    }

    fn kept(path: PathBuf) -> Self {
        SnapshotFile {
            path,
            temporary: false,
        }
    }
}

impl Drop for SnapshotFile {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn other<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(e.to_string())
}

/// The applied position and membership recorded in a metadata database.
pub fn applied_state(conn: &Connection) -> io::Result<(Option<LogId>, StoredMembership)> {
    let applied = raft_state::value(conn, APPLIED)
        .map_err(other)?
        .map(|b| decode::<Option<LogId>>(&b).map_err(other))
        .transpose()?
        .flatten();
    let membership = raft_state::value(conn, MEMBERSHIP)
        .map_err(other)?
        .map(|b| decode::<StoredMembership>(&b).map_err(other))
        .transpose()?
        .unwrap_or_default();
    Ok((applied, membership))
}

pub fn encoded_applied(applied: &Option<LogId>) -> io::Result<Vec<u8>> {
    encode(applied).map_err(other)
}

pub fn encoded_membership(membership: &StoredMembership) -> io::Result<Vec<u8>> {
    encode(membership).map_err(other)
}

fn read_applied_state(path: &Path) -> io::Result<(Option<LogId>, StoredMembership)> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(other)?;
    applied_state(&conn)
}

struct Current {
    meta: SnapshotMeta,
    path: PathBuf,
}

pub struct SnapshotStore {
    dir: PathBuf,
    /// The directory is ours alone (memory backend): removed on drop.
    owned_dir: bool,
    current: Mutex<Option<Current>>,
}

impl SnapshotStore {
    /// Opens the snapshots kept in `dir`, keeping the newest.
    pub fn open(dir: PathBuf) -> io::Result<Arc<Self>> {
        std::fs::create_dir_all(&dir)?;
        let store = SnapshotStore {
            dir,
            owned_dir: false,
            current: Mutex::new(None),
        };
        store.load()?;
        Ok(Arc::new(store))
    }

    /// A store in a fresh temporary directory, removed with the store.
    pub fn temporary() -> io::Result<Arc<Self>> {
        let dir = std::env::temp_dir().join(format!(
            "bleepstore-snapshots-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Arc::new(SnapshotStore {
            dir,
            owned_dir: true,
            current: Mutex::new(None),
        }))
    }

    fn load(&self) -> io::Result<()> {
        let mut newest: Option<Current> = None;
        for entry in std::fs::read_dir(&self.dir)?.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".meta") {
                let data = self.dir.join(format!("{stem}.db"));
                let meta = std::fs::read(&path)
                    .ok()
                    .and_then(|b| decode::<SnapshotMeta>(&b).ok());
                match meta {
                    Some(meta) if data.exists() => {
                        if newest
                            .as_ref()
                            .is_none_or(|n| n.meta.last_log_id < meta.last_log_id)
                        {
                            newest = Some(Current { meta, path: data });
                        }
                    }
                    _ => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        // Everything but the newest (and its meta) is a leftover.
        for entry in std::fs::read_dir(&self.dir)?.flatten() {
            let path = entry.path();
            let keep = newest
                .as_ref()
                .is_some_and(|n| path == n.path || path == n.path.with_extension("meta"));
            if !keep {
                let _ = std::fs::remove_file(&path);
            }
        }
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = newest;
        Ok(())
    }

    fn scratch(&self, what: &str) -> PathBuf {
        self.dir
            .join(format!("{what}-{}.tmp", uuid::Uuid::new_v4().simple()))
    }

    /// A path for receiving a snapshot from another node.
    pub fn incoming(&self) -> SnapshotFile {
        SnapshotFile::temporary(self.scratch("incoming"))
    }

    /// Makes `file` (whose content `meta` describes) the current snapshot.
    fn keep(&self, meta: SnapshotMeta, file: &Path) -> io::Result<PathBuf> {
        let stem = format!(
            "snapshot-{}-{}",
            meta.last_log_id.as_ref().map(|l| l.index).unwrap_or(0),
            uuid::Uuid::new_v4().simple()
        );
        let data = self.dir.join(format!("{stem}.db"));
        std::fs::rename(file, &data)?;
        let meta_path = self.dir.join(format!("{stem}.meta"));
        let tmp = self.scratch("meta");
        std::fs::write(&tmp, encode(&meta).map_err(other)?)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &meta_path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        let previous = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(Current {
                meta,
                path: data.clone(),
            });
        if let Some(previous) = previous {
            let _ = std::fs::remove_file(previous.path.with_extension("meta"));
            let _ = std::fs::remove_file(&previous.path);
        }
        Ok(data)
    }

    /// Copies the metadata as it is now into a new current snapshot.
    pub async fn build(&self, meta: &Metadata) -> io::Result<Snapshot> {
        let tmp = self.scratch("building");
        let working = SnapshotFile::temporary(tmp.clone());
        meta.copy_to(tmp.clone()).await.map_err(other)?;
        let (last_log_id, last_membership) = read_applied_state(&tmp)?;
        let snapshot_meta = SnapshotMeta {
            last_log_id,
            last_membership,
        };
        let path = self.keep(snapshot_meta.clone(), &tmp)?;
        drop(working);
        Ok(Snapshot {
            meta: snapshot_meta,
            snapshot: SnapshotFile::kept(path),
        })
    }

    pub fn current(&self) -> Option<Snapshot> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.as_ref().map(|c| Snapshot {
            meta: c.meta.clone(),
            snapshot: SnapshotFile::kept(c.path.clone()),
        })
    }

    /// Replaces the metadata by the snapshot `data` (which `meta`
    /// describes) and keeps the snapshot as the current one.
    pub async fn install(
        &self,
        meta: &SnapshotMeta,
        data: SnapshotFile,
        metadata: &Metadata,
    ) -> io::Result<()> {
        let (applied, _) = read_applied_state(&data.path)?;
        if applied != meta.last_log_id {
            return Err(other(format!(
                "snapshot file says it is at {applied:?}, its meta says {:?}",
                meta.last_log_id
            )));
        }
        // The current snapshot itself (restoring after a crash) stays where
        // it is; a received one becomes the current one, and a kept file of
        // another store is copied in first.
        let mut data = data;
        let ours = self.current().is_some_and(|c| c.snapshot.path == data.path);
        let kept = if data.temporary {
            let path = self.keep(meta.clone(), &data.path)?;
            data.temporary = false;
            path
        } else if ours {
            data.path.clone()
        } else {
            let copy = self.scratch("copied");
            std::fs::copy(&data.path, &copy)?;
            std::fs::File::open(&copy)?.sync_all()?;
            self.keep(meta.clone(), &copy)?
        };
        let working = self.scratch("installing");
        std::fs::copy(&kept, &working)?;
        metadata.replace_with(working).await.map_err(other)
    }
}

impl Drop for SnapshotStore {
    fn drop(&mut self) {
        if self.owned_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

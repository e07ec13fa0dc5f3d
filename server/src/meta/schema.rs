//! The SQLite schema. Keys are BLOBs so that comparisons are plain byte
//! comparisons (UTF-8 byte order is S3's listing order) and so that seeks can
//! use byte strings that are not valid UTF-8 (`prefix ‖ 0xFF`).
//!
//! `objects` holds every version of every key. A key's versions are ordered
//! by row id (newest = highest); the newest is its latest version, flagged
//! `is_latest` so that a partial index holds exactly the keys a listing shows.

use rusqlite::Connection;

pub const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS state(
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS buckets(
    name TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    region TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    acl TEXT NOT NULL,
    object_count INTEGER NOT NULL DEFAULT 0,
    byte_count INTEGER NOT NULL DEFAULT 0,
    settings TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS objects(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,
    version_id TEXT NOT NULL,
    is_latest INTEGER NOT NULL,
    delete_marker INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified_ms INTEGER NOT NULL,
    meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS extents(
    object_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    blob TEXT NOT NULL,
    blob_offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    seal TEXT,
    place TEXT,
    PRIMARY KEY(object_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS extents_by_blob ON extents(blob);
CREATE TABLE IF NOT EXISTS uploads(
    id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,
    initiated_ms INTEGER NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads(bucket, key, initiated_ms, id);
CREATE TABLE IF NOT EXISTS parts(
    upload_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified_ms INTEGER NOT NULL,
    checksum TEXT,
    PRIMARY KEY(upload_id, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS part_extents(
    upload_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    blob TEXT NOT NULL,
    blob_offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    seal TEXT,
    place TEXT,
    PRIMARY KEY(upload_id, number, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS part_extents_by_blob ON part_extents(blob);
CREATE TABLE IF NOT EXISTS draining(
    node INTEGER PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS inline_blobs(
    blob TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS raft_state(
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS proposals(
    id TEXT PRIMARY KEY,
    issued_ms INTEGER NOT NULL,
    answer BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS proposals_by_age ON proposals(issued_ms);
"#;

const INDEXES: &str = r#"
CREATE UNIQUE INDEX IF NOT EXISTS objects_by_version ON objects(bucket, key, version_id);
CREATE INDEX IF NOT EXISTS objects_by_age ON objects(bucket, key, id DESC);
CREATE INDEX IF NOT EXISTS objects_visible ON objects(bucket, key)
    WHERE is_latest = 1 AND delete_marker = 0;
"#;

/// Version 1 had one object per key: every row becomes that key's `null`
/// version, and extents gain the column for wrapped data keys.
const FROM_V1: &str = r#"
ALTER TABLE buckets ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
CREATE TABLE objects_v2(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,
    version_id TEXT NOT NULL,
    is_latest INTEGER NOT NULL,
    delete_marker INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified_ms INTEGER NOT NULL,
    meta TEXT NOT NULL
);
INSERT INTO objects_v2(id, bucket, key, version_id, is_latest, delete_marker, size, etag, modified_ms, meta)
    SELECT id, bucket, key, 'null', 1, 0, size, etag, modified_ms, meta FROM objects;
DROP TABLE objects;
ALTER TABLE objects_v2 RENAME TO objects;
ALTER TABLE extents ADD COLUMN seal TEXT;
ALTER TABLE part_extents ADD COLUMN seal TEXT;
"#;

/// Version 2 kept every blob in the blob store of the one node: extents
/// gain where their blob is (`place`: holders, inline, stored length and
/// checksum), and the tables for inline blobs and the replication state
/// are created with the rest of the schema.
const FROM_V2: &str = r#"
ALTER TABLE extents ADD COLUMN place TEXT;
ALTER TABLE part_extents ADD COLUMN place TEXT;
"#;

pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "metadata schema version {version} is newer than this server understands ({SCHEMA_VERSION})"
        )));
    }
    if version == SCHEMA_VERSION {
        // Up to date (every change to the schema bumps the version): no
        // write, so a restart does not wait for one.
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        if version == 1 {
            conn.execute_batch(FROM_V1)?;
        }
        if (1..=2).contains(&version) {
            conn.execute_batch(FROM_V2)?;
        }
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(INDEXES)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_databases_become_null_versions() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE state(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE buckets(name TEXT PRIMARY KEY, owner_id TEXT NOT NULL, owner_name TEXT NOT NULL,
                 region TEXT NOT NULL, created_ms INTEGER NOT NULL, acl TEXT NOT NULL,
                 object_count INTEGER NOT NULL DEFAULT 0, byte_count INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE objects(id INTEGER PRIMARY KEY AUTOINCREMENT, bucket TEXT NOT NULL, key BLOB NOT NULL,
                 size INTEGER NOT NULL, etag TEXT NOT NULL, modified_ms INTEGER NOT NULL, meta TEXT NOT NULL,
                 UNIQUE(bucket, key));
             CREATE TABLE extents(object_id INTEGER NOT NULL, seq INTEGER NOT NULL, blob TEXT NOT NULL,
                 blob_offset INTEGER NOT NULL, length INTEGER NOT NULL, PRIMARY KEY(object_id, seq)) WITHOUT ROWID;
             CREATE TABLE part_extents(upload_id TEXT NOT NULL, number INTEGER NOT NULL, seq INTEGER NOT NULL,
                 blob TEXT NOT NULL, blob_offset INTEGER NOT NULL, length INTEGER NOT NULL,
                 PRIMARY KEY(upload_id, number, seq)) WITHOUT ROWID;
             INSERT INTO buckets VALUES ('b', 'o', 'o', 'us-east-1', 1, '{}', 1, 3);
             INSERT INTO objects(bucket, key, size, etag, modified_ms, meta) VALUES ('b', X'6B', 3, '\"e\"', 2, '{}');
             PRAGMA user_version = 1;",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let (version_id, latest, id): (String, bool, i64) = conn
            .query_row(
                "SELECT version_id, is_latest, id FROM objects WHERE bucket = 'b'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((version_id.as_str(), latest, id), ("null", true, 1));
        let settings: String = conn
            .query_row("SELECT settings FROM buckets", [], |r| r.get(0))
            .unwrap();
        assert_eq!(settings, "{}");
        // New rows keep counting after the old ids.
        conn.execute(
            "INSERT INTO objects(bucket, key, version_id, is_latest, delete_marker, size, etag, modified_ms, meta)
             VALUES ('b', X'6C', 'null', 1, 0, 0, '', 0, '{}')",
            [],
        )
        .unwrap();
        assert_eq!(conn.last_insert_rowid(), 2);
        // Migrating again changes nothing.
        migrate(&conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}

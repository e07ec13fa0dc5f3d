//! The SQLite schema. Keys are BLOBs so that comparisons are plain byte
//! comparisons (UTF-8 byte order is S3's listing order) and so that seeks can
//! use byte strings that are not valid UTF-8 (`prefix ‖ 0xFF`).

use rusqlite::Connection;

pub const SCHEMA_VERSION: i64 = 1;

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
    byte_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS objects(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified_ms INTEGER NOT NULL,
    meta TEXT NOT NULL,
    UNIQUE(bucket, key)
);
CREATE TABLE IF NOT EXISTS extents(
    object_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    blob TEXT NOT NULL,
    blob_offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
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
    PRIMARY KEY(upload_id, number, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS part_extents_by_blob ON part_extents(blob);
"#;

pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "metadata schema version {version} is newer than this server understands ({SCHEMA_VERSION})"
        )));
    }
    conn.execute_batch(SCHEMA)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

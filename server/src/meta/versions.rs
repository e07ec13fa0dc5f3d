//! Object versions inside `apply`: every key has an ordered stack of
//! versions (and delete markers), newest first by row id, of which exactly
//! one is marked latest. Writes push a version, or replace the `null`
//! version; deletes remove a version (promoting the next newest) or push a
//! delete marker.

use super::MetaError;
use super::model::{Extent, NewObject, ObjectMeta};
use super::query::{encode_json, extent_from_row};
use crate::storage::BlobId;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

/// A new, unique version id. Ids are opaque to clients; ours are 32 hex
/// digits whose first half counts down with time, so that, written on one
/// clock, a later version's id sorts before an earlier one's.
pub fn new_version_id() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let random = uuid::Uuid::new_v4();
    format!(
        "{:016x}{}",
        u64::MAX - micros,
        &random.simple().to_string()[..16]
    )
}

/// Whether `id` could be a version id of this server (or `null`), so that
/// malformed ids can be refused before any lookup.
pub fn is_valid_version_id(id: &str) -> bool {
    id == super::model::NULL_VERSION
        || (id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// The facts of a version that `apply` decides with.
#[derive(Debug, Clone)]
pub struct VersionRow {
    pub id: i64,
    pub version_id: String,
    pub etag: String,
    pub size: i64,
    pub is_latest: bool,
    pub delete_marker: bool,
    pub modified_ms: i64,
}

macro_rules! row_columns {
    () => {
        "id, version_id, etag, size, is_latest, delete_marker, modified_ms"
    };
}

// The index is named: left to choose, the planner also weighs the partial
// `objects_visible` index, and proving it applicable marks the bound
// parameters as plan-relevant, so SQLite recompiled these statements on
// every execution (a tenth of a small PUT's CPU).
const LATEST_SQL: &str = concat!(
    "SELECT ",
    row_columns!(),
    " FROM objects INDEXED BY objects_by_age WHERE bucket = ?1 AND key = ?2 ORDER BY id DESC LIMIT 1"
);
const FIND_SQL: &str = concat!(
    "SELECT ",
    row_columns!(),
    " FROM objects INDEXED BY objects_by_version WHERE bucket = ?1 AND key = ?2 AND version_id = ?3"
);

fn row(r: &rusqlite::Row) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        id: r.get(0)?,
        version_id: r.get(1)?,
        etag: r.get(2)?,
        size: r.get(3)?,
        is_latest: r.get(4)?,
        delete_marker: r.get(5)?,
        modified_ms: r.get(6)?,
    })
}

/// The latest version (possibly a delete marker) of `key`: always its
/// newest row, as versions are only ever pushed on top.
pub fn latest(conn: &Connection, bucket: &str, key: &str) -> Result<Option<VersionRow>, MetaError> {
    let mut stmt = conn.prepare_cached(LATEST_SQL)?;
    Ok(stmt
        .query_row(params![bucket, key.as_bytes()], row)
        .optional()?)
}

/// The version `version_id` of `key`.
pub fn find(
    conn: &Connection,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> Result<Option<VersionRow>, MetaError> {
    let mut stmt = conn.prepare_cached(FIND_SQL)?;
    Ok(stmt
        .query_row(params![bucket, key.as_bytes(), version_id], row)
        .optional()?)
}

/// The version a request names: a specific one, or the latest.
pub fn resolve(
    conn: &Connection,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<VersionRow>, MetaError> {
    match version_id {
        Some(v) => find(conn, bucket, key, v),
        None => latest(conn, bucket, key),
    }
}

pub fn load_meta(conn: &Connection, id: i64) -> Result<ObjectMeta, MetaError> {
    let json: String = conn
        .prepare_cached("SELECT meta FROM objects WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?;
    serde_json::from_str(&json).map_err(|e| MetaError::Corrupt(format!("object {id} meta: {e}")))
}

pub fn store_meta(tx: &Transaction, id: i64, meta: &ObjectMeta) -> Result<(), MetaError> {
    tx.prepare_cached("UPDATE objects SET meta = ?2 WHERE id = ?1")?
        .execute(params![id, encode_json(meta)?])?;
    Ok(())
}

/// Pushes a new latest version of `object.key` (a delete marker when
/// `delete_marker`) and returns its row id.
pub fn push(
    tx: &Transaction,
    object: &NewObject,
    version_id: &str,
    delete_marker: bool,
) -> Result<i64, MetaError> {
    if let Some(previous) = latest(tx, &object.bucket, &object.key)? {
        tx.prepare_cached("UPDATE objects SET is_latest = 0 WHERE id = ?1")?
            .execute([previous.id])?;
    }
    tx.prepare_cached("INSERT INTO objects(bucket, key, version_id, is_latest, delete_marker, size, etag, modified_ms, meta)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8)")?.execute(
        params![
            object.bucket,
            object.key.as_bytes(),
            version_id,
            delete_marker,
            object.size as i64,
            object.etag,
            object.modified_ms,
            encode_json(&object.meta)?
    ])?;
    let id = tx.last_insert_rowid();
    insert_extents(
        tx,
        "INSERT INTO extents(object_id, seq, blob, blob_offset, length, seal, place) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &[&id],
        &object.extents,
    )?;
    if !delete_marker {
        tx.prepare_cached(
            "UPDATE buckets SET object_count = object_count + 1, byte_count = byte_count + ?2 WHERE name = ?1",
        )?
        .execute(params![object.bucket, object.size as i64])?;
    }
    Ok(id)
}

/// Removes a version and its extents for good, returning the blobs they
/// referenced. When it was the latest, the next newest version becomes
/// latest (if `promote`).
pub fn remove(
    tx: &Transaction,
    bucket: &str,
    key: &str,
    version: &VersionRow,
    promote: bool,
) -> Result<Vec<BlobId>, MetaError> {
    let blobs = super::command::extent_blobs(
        tx,
        "SELECT blob FROM extents WHERE object_id = ?1",
        &[&version.id],
    )?;
    tx.prepare_cached("DELETE FROM extents WHERE object_id = ?1")?
        .execute([version.id])?;
    tx.prepare_cached("DELETE FROM objects WHERE id = ?1")?
        .execute([version.id])?;
    if !version.delete_marker {
        tx.prepare_cached(
            "UPDATE buckets SET object_count = object_count - 1, byte_count = byte_count - ?2 WHERE name = ?1",
        )?
        .execute(params![bucket, version.size])?;
    }
    if version.is_latest && promote {
        tx.prepare_cached(
            "UPDATE objects SET is_latest = 1 WHERE id = (
                 SELECT id FROM objects WHERE bucket = ?1 AND key = ?2 ORDER BY id DESC LIMIT 1)",
        )?
        .execute(params![bucket, key.as_bytes()])?;
    }
    Ok(blobs)
}

/// Inserts extents rows: `sql` takes the owner's key columns (`owner`)
/// followed by seq, blob, offset, length and seal.
pub fn insert_extents(
    tx: &Transaction,
    sql: &str,
    owner: &[&dyn rusqlite::ToSql],
    extents: &[Extent],
) -> Result<(), MetaError> {
    let mut stmt = tx.prepare_cached(sql)?;
    for (seq, extent) in extents.iter().enumerate() {
        let seq = seq as i64;
        let offset = extent.blob_offset as i64;
        let length = extent.length as i64;
        let seal = extent.seal.as_ref().map(encode_json).transpose()?;
        let place = (!extent.place.is_default())
            .then(|| encode_json(&extent.place))
            .transpose()?;
        let blob = extent.blob.as_str();
        let mut values: Vec<&dyn rusqlite::ToSql> = owner.to_vec();
        values.extend([
            &seq as &dyn rusqlite::ToSql,
            &blob as &dyn rusqlite::ToSql,
            &offset,
            &length,
            &seal,
            &place,
        ]);
        stmt.execute(values.as_slice())?;
    }
    Ok(())
}

/// Reads extents rows selected by `sql` (columns blob, blob_offset, length,
/// seal, place, in order).
pub fn read_extents(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Extent>, MetaError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map(params, extent_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    #[test]
    fn version_lookups_are_compiled_once() {
        let conn = Connection::open_in_memory().unwrap();
        crate::meta::store::configure(&conn).unwrap();
        crate::meta::schema::migrate(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO buckets(name, owner_id, owner_name, region, created_ms, acl, settings)
                 VALUES ('b', 'o', 'o', 'r', 0, '{}', '{}');
             INSERT INTO objects(bucket, key, version_id, is_latest, delete_marker, size, etag, modified_ms, meta)
                 VALUES ('b', X'61', 'null', 1, 0, 1, 'e', 0, '{}'),
                        ('b', X'62', 'null', 1, 0, 1, 'e', 0, '{}');",
        )
        .unwrap();
        for key in ["a", "b", "c", "a"] {
            latest(&conn, "b", key).unwrap();
            find(&conn, "b", key, "null").unwrap();
        }
        assert!(latest(&conn, "b", "a").unwrap().is_some());
        for sql in [LATEST_SQL, FIND_SQL] {
            let stmt = conn.prepare_cached(sql).unwrap();
            assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0, "{sql}");
            assert!(stmt.get_status(StatementStatus::Run) >= 4, "{sql}");
        }
    }
}

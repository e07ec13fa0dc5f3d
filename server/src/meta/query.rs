//! Reads of the metadata store. Listings are index-driven: each page is a few
//! range seeks on `(bucket, key)`, whatever the bucket's size.

use super::MetaError;
use super::model::{
    BucketRecord, BucketSettings, Extent, ListEntry, ListPage, ListQuery, ObjectMeta, ObjectRecord,
    ObjectSummary, PartRecord, StoreStats, UploadEntry, UploadListQuery, UploadPage, UploadRecord,
    VersionEntry, VersionPage, VersionQuery, VersionSummary,
};
use crate::acl::{Acl, Owner};
use crate::checksum::StoredChecksum;
use crate::storage::BlobId;
use rusqlite::{Connection, OptionalExtension, params};

pub fn encode_json<T: serde::Serialize>(value: &T) -> Result<String, MetaError> {
    serde_json::to_string(value).map_err(|e| MetaError::Corrupt(e.to_string()))
}

pub fn decode_acl(json: &str) -> Result<Acl, MetaError> {
    serde_json::from_str(json).map_err(|e| MetaError::Corrupt(format!("acl: {e}")))
}

pub fn decode_meta(json: &str) -> Result<ObjectMeta, MetaError> {
    serde_json::from_str(json).map_err(|e| MetaError::Corrupt(format!("object meta: {e}")))
}

pub fn decode_settings(json: &str) -> Result<BucketSettings, MetaError> {
    serde_json::from_str(json).map_err(|e| MetaError::Corrupt(format!("bucket settings: {e}")))
}

/// An extent from a row of `blob, blob_offset, length, seal, place`.
pub fn extent_from_row(r: &rusqlite::Row) -> rusqlite::Result<Result<Extent, MetaError>> {
    let blob: String = r.get(0)?;
    let offset: i64 = r.get(1)?;
    let length: i64 = r.get(2)?;
    let seal: Option<String> = r.get(3)?;
    let place: Option<String> = r.get(4)?;
    Ok((|| {
        Ok(Extent {
            blob: BlobId::parse(&blob)
                .ok_or_else(|| MetaError::Corrupt(format!("bad blob id {blob:?}")))?,
            blob_offset: offset as u64,
            length: length as u64,
            seal: seal
                .map(|json| {
                    serde_json::from_str(&json)
                        .map_err(|e| MetaError::Corrupt(format!("extent seal: {e}")))
                })
                .transpose()?,
            place: place
                .map(|json| {
                    serde_json::from_str(&json)
                        .map_err(|e| MetaError::Corrupt(format!("extent place: {e}")))
                })
                .transpose()?
                .unwrap_or_default(),
        })
    })())
}

fn key_text(raw: Vec<u8>) -> Result<String, MetaError> {
    String::from_utf8(raw).map_err(|_| MetaError::Corrupt("a stored key is not UTF-8".into()))
}

fn bucket_from_row(row: &rusqlite::Row) -> rusqlite::Result<Result<BucketRecord, MetaError>> {
    let acl: String = row.get(5)?;
    let settings: String = row.get(6)?;
    let owner = Owner {
        id: row.get(1)?,
        display_name: row.get(2)?,
    };
    let (name, region, created_ms) = (row.get(0)?, row.get(3)?, row.get(4)?);
    Ok((|| {
        Ok(BucketRecord {
            name,
            owner,
            region,
            created_ms,
            acl: decode_acl(&acl)?,
            settings: decode_settings(&settings)?,
        })
    })())
}

const BUCKET_COLUMNS: &str = "name, owner_id, owner_name, region, created_ms, acl, settings";

pub fn get_bucket(conn: &Connection, name: &str) -> Result<Option<BucketRecord>, MetaError> {
    conn.prepare_cached(&format!(
        "SELECT {BUCKET_COLUMNS} FROM buckets WHERE name = ?1"
    ))?
    .query_row([name], bucket_from_row)
    .optional()?
    .transpose()
}

/// Buckets owned by `owner_id`, by name.
pub fn list_buckets(conn: &Connection, owner_id: &str) -> Result<Vec<BucketRecord>, MetaError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {BUCKET_COLUMNS} FROM buckets WHERE owner_id = ?1 ORDER BY name"
    ))?;
    let rows = stmt
        .query_map([owner_id], bucket_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().collect()
}

/// A version of an object — the latest when `version_id` is `None` — which
/// may be a delete marker.
pub fn get_object(
    conn: &Connection,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<ObjectRecord>, MetaError> {
    let Some(version) = super::versions::resolve(conn, bucket, key, version_id)? else {
        return Ok(None);
    };
    let (modified_ms, meta): (i64, String) = conn
        .prepare_cached("SELECT modified_ms, meta FROM objects WHERE id = ?1")?
        .query_row([version.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let extents = super::versions::read_extents(
        conn,
        "SELECT blob, blob_offset, length, seal, place FROM extents WHERE object_id = ?1 ORDER BY seq",
        &[&version.id],
    )?;
    Ok(Some(ObjectRecord {
        id: version.id,
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id: version.version_id,
        is_latest: version.is_latest,
        delete_marker: version.delete_marker,
        size: version.size as u64,
        etag: version.etag,
        modified_ms,
        meta: decode_meta(&meta)?,
        extents,
    }))
}

/// Whether the version stored under row `id` still exists (its blobs are
/// still referenced by it).
pub fn version_exists(conn: &Connection, id: i64) -> Result<bool, MetaError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM objects WHERE id = ?1)")?
        .query_row([id], |r| r.get(0))?)
}

/// The smallest byte string greater than every string that starts with
/// `prefix`: valid UTF-8 never contains 0xFF.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    end.push(0xFF);
    end
}

/// The common prefix `key` rolls up into: `prefix`, then everything up to
/// and including the first `delimiter` after it.
fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: Option<&str>) -> Option<&'k str> {
    let d = delimiter?;
    let pos = key.get(prefix.len()..)?.find(d)?;
    Some(&key[..prefix.len() + pos + d.len()])
}

/// Where a listing under `prefix` resumes strictly after `marker`: the
/// lowest key to read and whether it is included. A marker inside a
/// rolled-up prefix skips that whole prefix; one before `prefix` is ignored.
fn resume_after(prefix: &str, delimiter: Option<&str>, marker: Option<&str>) -> (Vec<u8>, bool) {
    match marker {
        Some(after) if after.as_bytes() >= prefix.as_bytes() => {
            match common_prefix(after, prefix, delimiter).filter(|_| after.starts_with(prefix)) {
                Some(common) => (prefix_end(common.as_bytes()), true),
                None => (after.as_bytes().to_vec(), false),
            }
        }
        _ => (prefix.as_bytes().to_vec(), true),
    }
}

/// One page of keys under `query.prefix`, rolled up at `query.delimiter`.
pub fn list_objects(
    conn: &Connection,
    bucket: &str,
    query: &ListQuery,
) -> Result<ListPage, MetaError> {
    let mut page = ListPage::default();
    if query.max_keys == 0 {
        return Ok(page);
    }
    let prefix = query.prefix.as_bytes();
    let delimiter = query.delimiter.as_deref().filter(|d| !d.is_empty());
    let upper: Option<Vec<u8>> = (!prefix.is_empty()).then(|| prefix_end(prefix));

    let (mut lower, mut lower_inclusive) =
        resume_after(&query.prefix, delimiter, query.after.as_deref());

    // Only current, non-deleted versions: the `objects_visible` partial
    // index. Rows are stepped lazily, so a rolled-up prefix costs one row
    // and a new seek past it.
    let mut stmt_incl = conn.prepare_cached(
        "SELECT key, size, etag, modified_ms, meta FROM objects INDEXED BY objects_visible
         WHERE bucket = ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3)
           AND is_latest = 1 AND delete_marker = 0
         ORDER BY key",
    )?;
    let mut stmt_excl = conn.prepare_cached(
        "SELECT key, size, etag, modified_ms, meta FROM objects INDEXED BY objects_visible
         WHERE bucket = ?1 AND key > ?2 AND (?3 IS NULL OR key < ?3)
           AND is_latest = 1 AND delete_marker = 0
         ORDER BY key",
    )?;
    loop {
        let stmt = if lower_inclusive {
            &mut stmt_incl
        } else {
            &mut stmt_excl
        };
        let mut rows = stmt.query(params![bucket, lower, upper])?;
        let mut skip_to = None;
        while let Some(row) = rows.next()? {
            if page.entries.len() == query.max_keys {
                page.truncated = true;
                return Ok(page);
            }
            let key = key_text(row.get(0)?)?;
            if let Some(common) = common_prefix(&key, &query.prefix, delimiter) {
                skip_to = Some(prefix_end(common.as_bytes()));
                page.entries.push(ListEntry::Prefix(common.to_string()));
                break;
            }
            page.entries.push(ListEntry::Object(summary(
                key,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                &row.get::<_, String>(4)?,
            )?));
        }
        drop(rows);
        // Everything else under a rolled-up prefix is skipped by a new seek.
        match skip_to {
            Some(next) => {
                lower = next;
                lower_inclusive = true;
            }
            None => break,
        }
    }
    Ok(page)
}

fn summary(
    key: String,
    size: i64,
    etag: String,
    modified_ms: i64,
    meta: &str,
) -> Result<ObjectSummary, MetaError> {
    let meta = decode_meta(meta)?;
    Ok(ObjectSummary {
        key,
        size: size as u64,
        etag,
        modified_ms,
        storage_class: meta.storage_class,
        owner: meta.owner,
        checksum: meta.checksum,
    })
}

/// Where a version listing resumes: inside `key`, after row `id`, or (no
/// id) after all of `key`.
struct Resume {
    key: Vec<u8>,
    id: Option<i64>,
}

fn version_resume(
    conn: &Connection,
    bucket: &str,
    query: &VersionQuery,
) -> Result<Option<Resume>, MetaError> {
    let Some(marker) = query.key_marker.as_deref().filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    let id = match query.version_id_marker.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        // A marker version deleted since the last page: resume after the key.
        Some(version) => super::versions::find(conn, bucket, marker, version)?.map(|v| v.id),
    };
    Ok(Some(Resume {
        key: marker.as_bytes().to_vec(),
        id,
    }))
}

/// One page of ListObjectVersions: every version and delete marker, keys in
/// byte order and each key's versions newest first, rolled up at the
/// delimiter. Index-driven like `list_objects`: a page costs a few seeks
/// on `objects_by_age`, whatever the number of versions.
pub fn list_versions(
    conn: &Connection,
    bucket: &str,
    query: &VersionQuery,
) -> Result<VersionPage, MetaError> {
    let mut page = VersionPage::default();
    if query.max_keys == 0 {
        return Ok(page);
    }
    let prefix = query.prefix.as_bytes();
    let delimiter = query.delimiter.as_deref().filter(|d| !d.is_empty());
    let upper: Option<Vec<u8>> = (!prefix.is_empty()).then(|| prefix_end(prefix));
    // Cursor: the next key to start at (inclusive or not), and a key whose
    // versions below row `id` are still to come.
    let resume = version_resume(conn, bucket, query)?;
    if let Some(r) = &resume
        && r.key.as_slice() >= prefix
        && !r.key.starts_with(prefix)
    {
        // Past every key under the prefix.
        return Ok(page);
    }
    let (mut lower, mut lower_inclusive) = resume_after(
        &query.prefix,
        delimiter,
        query.key_marker.as_deref().filter(|m| !m.is_empty()),
    );
    let mut within: Option<(Vec<u8>, i64)> = match resume {
        Some(Resume { key, id: Some(id) }) if key.starts_with(prefix) => {
            // Inside the marker's key, whatever a delimiter would roll up.
            lower = key.clone();
            lower_inclusive = false;
            Some((key, id))
        }
        _ => None,
    };
    const COLUMNS: &str =
        "key, version_id, is_latest, delete_marker, size, etag, modified_ms, meta";
    let mut stmt_within = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM objects INDEXED BY objects_by_age
         WHERE bucket = ?1 AND key = ?2 AND id < ?3 ORDER BY id DESC"
    ))?;
    let mut stmt_incl = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM objects INDEXED BY objects_by_age
         WHERE bucket = ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3)
         ORDER BY key, id DESC"
    ))?;
    let mut stmt_excl = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM objects INDEXED BY objects_by_age
         WHERE bucket = ?1 AND key > ?2 AND (?3 IS NULL OR key < ?3)
         ORDER BY key, id DESC"
    ))?;
    loop {
        // Rows are stepped lazily: a page reads only what it returns, plus
        // one row and a seek per rolled-up prefix.
        let mut rows = match &within {
            Some((key, id)) => stmt_within.query(params![bucket, key, id])?,
            None if lower_inclusive => stmt_incl.query(params![bucket, lower, upper])?,
            None => stmt_excl.query(params![bucket, lower, upper])?,
        };
        let mut skip_to = None;
        while let Some(row) = rows.next()? {
            if page.entries.len() == query.max_keys {
                page.truncated = true;
                return Ok(page);
            }
            let key = key_text(row.get(0)?)?;
            if let Some(common) = common_prefix(&key, &query.prefix, delimiter) {
                skip_to = Some(prefix_end(common.as_bytes()));
                page.entries.push(VersionEntry::Prefix(common.to_string()));
                break;
            }
            page.entries.push(VersionEntry::Version(VersionSummary {
                version_id: row.get(1)?,
                is_latest: row.get(2)?,
                delete_marker: row.get(3)?,
                object: summary(
                    key,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    &row.get::<_, String>(7)?,
                )?,
            }));
        }
        drop(rows);
        match (skip_to, within.take()) {
            (Some(next), _) => {
                lower = next;
                lower_inclusive = true;
            }
            // The marker's key is done; go on with the keys after it.
            (None, Some((key, _))) => {
                lower = key;
                lower_inclusive = false;
            }
            (None, None) => break,
        }
    }
    Ok(page)
}

pub fn blob_referenced(conn: &Connection, blob: &BlobId) -> Result<bool, MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM extents WHERE blob = ?1)
             OR EXISTS(SELECT 1 FROM part_extents WHERE blob = ?1)",
    )?;
    Ok(stmt.query_row([blob.as_str()], |r| r.get(0))?)
}

/// The bytes of blobs kept in the metadata, of those among `blobs`.
pub fn inline_data(
    conn: &Connection,
    blobs: &[BlobId],
) -> Result<Vec<(BlobId, Vec<u8>)>, MetaError> {
    let mut stmt = conn.prepare_cached("SELECT data FROM inline_blobs WHERE blob = ?1")?;
    let mut found = Vec::new();
    for blob in blobs {
        let data: Option<Vec<u8>> = stmt.query_row([blob.as_str()], |r| r.get(0)).optional()?;
        if let Some(data) = data {
            found.push((blob.clone(), data));
        }
    }
    Ok(found)
}

pub fn stats(conn: &Connection) -> Result<StoreStats, MetaError> {
    Ok(conn.prepare_cached("SELECT COUNT(*), COALESCE(SUM(object_count), 0), COALESCE(SUM(byte_count), 0) FROM buckets")?.query_row(
        [],
        |r| {
            Ok(StoreStats {
                buckets: r.get::<_, i64>(0)? as u64,
                objects: r.get::<_, i64>(1)? as u64,
                bytes: r.get::<_, i64>(2)? as u64,
            })
        },
    )?)
}

pub fn upload_from_row(row: &rusqlite::Row) -> rusqlite::Result<Result<UploadRecord, MetaError>> {
    let json: String = row.get(0)?;
    Ok(serde_json::from_str(&json).map_err(|e| MetaError::Corrupt(format!("upload: {e}"))))
}

pub fn part_checksum_from_json(json: &str) -> Result<StoredChecksum, MetaError> {
    serde_json::from_str(json).map_err(|e| MetaError::Corrupt(format!("part checksum: {e}")))
}

pub fn get_upload(conn: &Connection, id: &str) -> Result<Option<UploadRecord>, MetaError> {
    conn.prepare_cached("SELECT meta FROM uploads WHERE id = ?1")?
        .query_row([id], upload_from_row)
        .optional()?
        .transpose()
}

/// Parts of an upload after `marker`, at most `max`; and whether more follow.
pub fn list_parts(
    conn: &Connection,
    upload_id: &str,
    marker: u32,
    max: usize,
) -> Result<(Vec<PartRecord>, bool), MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT number, size, etag, modified_ms, checksum FROM parts
         WHERE upload_id = ?1 AND number > ?2 ORDER BY number LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![upload_id, marker, max as i64 + 1], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let truncated = rows.len() > max;
    let parts = rows
        .into_iter()
        .take(max)
        .map(|(number, size, etag, modified_ms, checksum)| {
            Ok(PartRecord {
                number,
                size: size as u64,
                etag,
                modified_ms,
                checksum: checksum
                    .as_deref()
                    .map(part_checksum_from_json)
                    .transpose()?,
            })
        })
        .collect::<Result<Vec<_>, MetaError>>()?;
    Ok((parts, truncated))
}

/// One page of in-progress uploads, ordered by key then initiation, rolled up
/// at the delimiter like object listings.
pub fn list_uploads(
    conn: &Connection,
    bucket: &str,
    query: &UploadListQuery,
) -> Result<UploadPage, MetaError> {
    let mut page = UploadPage::default();
    if query.max_uploads == 0 {
        return Ok(page);
    }
    let prefix = query.prefix.as_bytes();
    let delimiter = query.delimiter.as_deref().filter(|d| !d.is_empty());
    let upper: Option<Vec<u8>> = (!prefix.is_empty()).then(|| prefix_end(prefix));
    // The (key, initiated, id) position to continue strictly after: each
    // batch seeks past the last row seen, so any number of uploads of one
    // key pages through (a seek by key alone would fetch the same rows again).
    let start = |key: Vec<u8>| (key, i64::MIN, String::new());
    let mut cursor = start(prefix.to_vec());
    if let Some(marker) = query.key_marker.as_deref().filter(|m| !m.is_empty()) {
        let after = match query.upload_id_marker.as_deref().filter(|m| !m.is_empty()) {
            Some(id) => {
                let initiated: i64 = conn
                    .prepare_cached("SELECT initiated_ms FROM uploads WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))
                    .optional()?
                    .unwrap_or(i64::MAX);
                (marker.as_bytes().to_vec(), initiated, id.to_string())
            }
            None => start(prefix_end_exclusive(marker.as_bytes())),
        };
        cursor = cursor.max(after);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT key, initiated_ms, id, meta FROM uploads
         WHERE bucket = ?1 AND (key, initiated_ms, id) > (?2, ?3, ?4)
           AND (?5 IS NULL OR key < ?5)
         ORDER BY key, initiated_ms, id LIMIT ?6",
    )?;
    let batch = (query.max_uploads + 1).min(1000) as i64;
    'pages: loop {
        let rows = stmt
            .query_map(
                params![bucket, cursor.0, cursor.1, cursor.2, upper, batch],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        let fetched = rows.len() as i64;
        for (raw_key, initiated, id, meta) in rows {
            if page.entries.len() == query.max_uploads {
                page.truncated = true;
                break 'pages;
            }
            let key = key_text(raw_key.clone())?;
            if let Some(common) = common_prefix(&key, &query.prefix, delimiter) {
                cursor = start(prefix_end(common.as_bytes()));
                page.entries.push(UploadEntry::Prefix(common.to_string()));
                continue 'pages;
            }
            let upload: UploadRecord = serde_json::from_str(&meta)
                .map_err(|e| MetaError::Corrupt(format!("upload: {e}")))?;
            cursor = (raw_key, initiated, id);
            page.entries.push(UploadEntry::Upload(Box::new(upload)));
        }
        if fetched < batch {
            break;
        }
    }
    Ok(page)
}

/// The smallest byte string greater than `key`: a seek to it continues
/// strictly after `key`.
fn prefix_end_exclusive(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

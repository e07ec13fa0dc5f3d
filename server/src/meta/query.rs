//! Reads of the metadata store. Listings are index-driven: each page is a few
//! range seeks on `(bucket, key)`, whatever the bucket's size.

use super::MetaError;
use super::model::{
    BucketRecord, Extent, ListEntry, ListPage, ListQuery, ObjectMeta, ObjectRecord, ObjectSummary,
    PartRecord, StoreStats, UploadEntry, UploadListQuery, UploadPage, UploadRecord,
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

fn decode_meta(json: &str) -> Result<ObjectMeta, MetaError> {
    serde_json::from_str(json).map_err(|e| MetaError::Corrupt(format!("object meta: {e}")))
}

fn key_text(raw: Vec<u8>) -> Result<String, MetaError> {
    String::from_utf8(raw).map_err(|_| MetaError::Corrupt("a stored key is not UTF-8".into()))
}

fn bucket_from_row(row: &rusqlite::Row) -> rusqlite::Result<(BucketRecord, String)> {
    Ok((
        BucketRecord {
            name: row.get(0)?,
            owner: Owner {
                id: row.get(1)?,
                display_name: row.get(2)?,
            },
            region: row.get(3)?,
            created_ms: row.get(4)?,
            acl: Acl::default(),
        },
        row.get(5)?,
    ))
}

const BUCKET_COLUMNS: &str = "name, owner_id, owner_name, region, created_ms, acl";

pub fn get_bucket(conn: &Connection, name: &str) -> Result<Option<BucketRecord>, MetaError> {
    let row = conn
        .query_row(
            &format!("SELECT {BUCKET_COLUMNS} FROM buckets WHERE name = ?1"),
            [name],
            bucket_from_row,
        )
        .optional()?;
    row.map(|(mut bucket, acl)| {
        bucket.acl = decode_acl(&acl)?;
        Ok(bucket)
    })
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
    rows.into_iter()
        .map(|(mut bucket, acl)| {
            bucket.acl = decode_acl(&acl)?;
            Ok(bucket)
        })
        .collect()
}

pub fn get_object(
    conn: &Connection,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectRecord>, MetaError> {
    let row = conn
        .query_row(
            "SELECT id, size, etag, modified_ms, meta FROM objects WHERE bucket = ?1 AND key = ?2",
            params![bucket, key.as_bytes()],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((id, size, etag, modified_ms, meta)) = row else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT blob, blob_offset, length FROM extents WHERE object_id = ?1 ORDER BY seq",
    )?;
    let extents = stmt
        .query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .map(|row| {
            let (blob, offset, length) = row?;
            Ok(Extent {
                blob: BlobId::parse(&blob)
                    .ok_or_else(|| MetaError::Corrupt(format!("bad blob id {blob:?}")))?,
                blob_offset: offset as u64,
                length: length as u64,
            })
        })
        .collect::<Result<Vec<_>, MetaError>>()?;
    Ok(Some(ObjectRecord {
        id,
        bucket: bucket.to_string(),
        key: key.to_string(),
        size: size as u64,
        etag,
        modified_ms,
        meta: decode_meta(&meta)?,
        extents,
    }))
}

/// The id of the current object under `key`, if any.
pub fn current_object_id(
    conn: &Connection,
    bucket: &str,
    key: &str,
) -> Result<Option<i64>, MetaError> {
    Ok(conn
        .query_row(
            "SELECT id FROM objects WHERE bucket = ?1 AND key = ?2",
            params![bucket, key.as_bytes()],
            |r| r.get(0),
        )
        .optional()?)
}

/// The smallest byte string greater than every string that starts with
/// `prefix`: valid UTF-8 never contains 0xFF.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    end.push(0xFF);
    end
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

    // Where to resume: strictly after `after`, but never before `prefix`.
    // A marker inside a rolled-up prefix skips that whole prefix.
    let mut lower: Vec<u8> = prefix.to_vec();
    let mut lower_inclusive = true;
    if let Some(after) = query.after.as_deref() {
        let after_bytes = after.as_bytes();
        if after_bytes >= prefix {
            lower = after_bytes.to_vec();
            lower_inclusive = false;
            if let Some(d) = delimiter
                && let Some(rest) = after.strip_prefix(&query.prefix)
                && let Some(pos) = rest.find(d)
            {
                let common = &after_bytes[..query.prefix.len() + pos + d.len()];
                lower = prefix_end(common);
                lower_inclusive = true;
            }
        }
    }

    let batch = (query.max_keys + 1).min(1000) as i64;
    let mut stmt_incl = conn.prepare_cached(
        "SELECT key, size, etag, modified_ms, meta FROM objects
         WHERE bucket = ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3)
         ORDER BY key LIMIT ?4",
    )?;
    let mut stmt_excl = conn.prepare_cached(
        "SELECT key, size, etag, modified_ms, meta FROM objects
         WHERE bucket = ?1 AND key > ?2 AND (?3 IS NULL OR key < ?3)
         ORDER BY key LIMIT ?4",
    )?;

    'pages: loop {
        let stmt = if lower_inclusive {
            &mut stmt_incl
        } else {
            &mut stmt_excl
        };
        let rows = stmt
            .query_map(params![bucket, lower, upper, batch], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let fetched = rows.len() as i64;
        for (raw_key, size, etag, modified_ms, meta) in rows {
            if page.entries.len() == query.max_keys {
                page.truncated = true;
                break 'pages;
            }
            let key = key_text(raw_key)?;
            if let Some(d) = delimiter
                && let Some(pos) = key[query.prefix.len()..].find(d)
            {
                let common = key[..query.prefix.len() + pos + d.len()].to_string();
                lower = prefix_end(common.as_bytes());
                lower_inclusive = true;
                page.entries.push(ListEntry::Prefix(common));
                // Everything else under this prefix is skipped by a new seek.
                continue 'pages;
            }
            let meta = decode_meta(&meta)?;
            lower = key.as_bytes().to_vec();
            lower_inclusive = false;
            page.entries.push(ListEntry::Object(ObjectSummary {
                key,
                size: size as u64,
                etag,
                modified_ms,
                storage_class: meta.storage_class,
                owner: meta.owner,
                checksum: meta.checksum,
            }));
        }
        if fetched < batch {
            break;
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

pub fn stats(conn: &Connection) -> Result<StoreStats, MetaError> {
    Ok(conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(object_count), 0), COALESCE(SUM(byte_count), 0) FROM buckets",
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
    conn.query_row(
        "SELECT meta FROM uploads WHERE id = ?1",
        [id],
        upload_from_row,
    )
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
    // (key, initiated, id) position to continue after.
    let mut after: Option<(Vec<u8>, i64, String)> = None;
    let mut lower: Vec<u8> = prefix.to_vec();
    if let Some(marker) = query.key_marker.as_deref().filter(|m| !m.is_empty()) {
        match query.upload_id_marker.as_deref().filter(|m| !m.is_empty()) {
            Some(id) => {
                let initiated: i64 = conn
                    .query_row(
                        "SELECT initiated_ms FROM uploads WHERE id = ?1",
                        [id],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or(i64::MAX);
                after = Some((marker.as_bytes().to_vec(), initiated, id.to_string()));
                lower = lower.max(marker.as_bytes().to_vec());
            }
            None => lower = lower.max(prefix_end_exclusive(marker.as_bytes())),
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT key, initiated_ms, id, meta FROM uploads
         WHERE bucket = ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3)
         ORDER BY key, initiated_ms, id LIMIT ?4",
    )?;
    let batch = (query.max_uploads + 1).min(1000) as i64;
    'pages: loop {
        let rows = stmt
            .query_map(params![bucket, lower, upper, batch], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let fetched = rows.len() as i64;
        let mut advanced = false;
        for (raw_key, initiated, id, meta) in rows {
            if let Some((k, i, u)) = &after
                && (raw_key.as_slice(), initiated, id.as_str()) <= (k.as_slice(), *i, u.as_str())
            {
                continue;
            }
            if page.entries.len() == query.max_uploads {
                page.truncated = true;
                break 'pages;
            }
            let key = key_text(raw_key.clone())?;
            if let Some(d) = delimiter
                && let Some(pos) = key[query.prefix.len()..].find(d)
            {
                let common = key[..query.prefix.len() + pos + d.len()].to_string();
                lower = prefix_end(common.as_bytes());
                after = None;
                page.entries.push(UploadEntry::Prefix(common));
                continue 'pages;
            }
            let upload: UploadRecord = serde_json::from_str(&meta)
                .map_err(|e| MetaError::Corrupt(format!("upload: {e}")))?;
            after = Some((raw_key.clone(), initiated, id));
            lower = raw_key;
            advanced = true;
            page.entries.push(UploadEntry::Upload(Box::new(upload)));
        }
        if fetched < batch || !advanced {
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

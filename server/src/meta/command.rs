//! Every metadata mutation is a `Command`, applied by [`apply`] inside one
//! transaction (DESIGN.md §3). Preconditions are checked here, so conditional
//! writes are atomic with the write itself. A cluster replicates the same
//! values through Raft and applies them with the same function.

use super::MetaError;
use super::model::{BucketRecord, CompletedPart, Extent, NewObject, UploadRecord};
use super::query::encode_json;
use crate::acl::Acl;
use crate::storage::BlobId;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    CreateBucket(BucketRecord),
    DeleteBucket {
        name: String,
    },
    SetBucketAcl {
        name: String,
        acl: Acl,
    },
    PutObject {
        object: NewObject,
        condition: WriteCondition,
        /// For copies: the object whose extents are reused must still exist,
        /// or its blobs may already be freed.
        source_id: Option<i64>,
    },
    DeleteObject {
        bucket: String,
        key: String,
        if_match: Option<String>,
    },
    DeleteObjects {
        bucket: String,
        keys: Vec<String>,
    },
    SetObjectAcl {
        bucket: String,
        key: String,
        acl: Acl,
    },
    CreateUpload(UploadRecord),
    PutPart {
        upload_id: String,
        number: u32,
        size: u64,
        etag: String,
        modified_ms: i64,
        checksum: Option<crate::checksum::StoredChecksum>,
        extents: Vec<Extent>,
    },
    CompleteUpload {
        upload_id: String,
        bucket: String,
        key: String,
        parts: Vec<CompletedPart>,
        /// Every part but the last must be at least this large.
        min_part_size: u64,
        condition: WriteCondition,
        modified_ms: i64,
        /// A whole-object checksum the client states (`x-amz-checksum-*`).
        expected_checksum: Option<(crate::checksum::ChecksumAlgorithm, String)>,
    },
    AbortUpload {
        upload_id: String,
        bucket: String,
        key: String,
    },
    /// Housekeeping: abandons uploads initiated before the cutoff.
    AbortExpiredUploads {
        initiated_before_ms: i64,
    },
}

/// Conditions on the current object that a write requires.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteCondition {
    /// `If-Match`: the current ETag must be one of these (or `*`).
    pub if_match: Option<String>,
    /// `If-None-Match`: `*` (there must be no current object) or ETags the
    /// current object must not have.
    pub if_none_match: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Blobs no longer referenced by anything; delete them after commit.
    pub freed: Vec<BlobId>,
    /// The id of an object the command created.
    pub object_id: Option<i64>,
    /// Per-key results of DeleteObjects (key, whether it existed).
    pub deleted: Vec<(String, bool)>,
    /// ETag and checksum of an object CompleteMultipartUpload created.
    pub completed: Option<(String, Option<crate::checksum::StoredChecksum>)>,
    /// How many uploads housekeeping aborted.
    pub aborted: usize,
}

pub fn apply(tx: &Transaction, command: &Command) -> Result<Outcome, MetaError> {
    let mut outcome = Outcome::default();
    match command {
        Command::CreateBucket(bucket) => {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT owner_id FROM buckets WHERE name = ?1",
                    [&bucket.name],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(owner_id) = existing {
                return Err(MetaError::BucketExists {
                    owned_by_requester: owner_id == bucket.owner.id,
                });
            }
            tx.execute(
                "INSERT INTO buckets(name, owner_id, owner_name, region, created_ms, acl) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    bucket.name,
                    bucket.owner.id,
                    bucket.owner.display_name,
                    bucket.region,
                    bucket.created_ms,
                    encode_json(&bucket.acl)?
                ],
            )?;
        }
        Command::DeleteBucket { name } => {
            require_bucket(tx, name)?;
            let has_objects: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM objects WHERE bucket = ?1)",
                [name],
                |r| r.get(0),
            )?;
            let has_uploads: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM uploads WHERE bucket = ?1)",
                [name],
                |r| r.get(0),
            )?;
            if has_objects {
                return Err(MetaError::BucketNotEmpty);
            }
            if has_uploads {
                // S3 lets an owner delete a bucket with pending uploads; they go with it.
                let ids: Vec<String> = {
                    let mut stmt = tx.prepare("SELECT id FROM uploads WHERE bucket = ?1")?;
                    stmt.query_map([name], |r| r.get(0))?
                        .collect::<Result<_, _>>()?
                };
                for id in ids {
                    outcome.freed.extend(remove_upload(tx, &id)?);
                }
            }
            tx.execute("DELETE FROM buckets WHERE name = ?1", [name])?;
        }
        Command::SetBucketAcl { name, acl } => {
            require_bucket(tx, name)?;
            tx.execute(
                "UPDATE buckets SET acl = ?2 WHERE name = ?1",
                params![name, encode_json(acl)?],
            )?;
        }
        Command::PutObject {
            object,
            condition,
            source_id,
        } => {
            require_bucket(tx, &object.bucket)?;
            if let Some(source_id) = source_id {
                let exists: bool = tx.query_row(
                    "SELECT EXISTS(SELECT 1 FROM objects WHERE id = ?1)",
                    [source_id],
                    |r| r.get(0),
                )?;
                if !exists {
                    return Err(MetaError::SourceChanged);
                }
            }
            let current = current_object(tx, &object.bucket, &object.key)?;
            check_write_condition(condition, current.as_ref().map(|c| c.1.as_str()))?;
            if let Some((id, _, _)) = current {
                outcome.freed = remove_object(tx, id)?;
            }
            outcome.object_id = Some(insert_object(tx, object)?);
        }
        Command::DeleteObject {
            bucket,
            key,
            if_match,
        } => {
            require_bucket(tx, bucket)?;
            let current = current_object(tx, bucket, key)?;
            if let Some(expected) = if_match {
                match &current {
                    None => return Err(MetaError::NoSuchKey),
                    Some((_, etag, _)) if !etag_matches(expected, etag) => {
                        return Err(MetaError::PreconditionFailed);
                    }
                    _ => {}
                }
            }
            if let Some((id, _, _)) = current {
                outcome.freed = remove_object(tx, id)?;
            }
        }
        Command::DeleteObjects { bucket, keys } => {
            require_bucket(tx, bucket)?;
            for key in keys {
                let current = current_object(tx, bucket, key)?;
                let existed = current.is_some();
                if let Some((id, _, _)) = current {
                    outcome.freed.extend(remove_object(tx, id)?);
                }
                outcome.deleted.push((key.clone(), existed));
            }
        }
        Command::CreateUpload(upload) => super::multipart::create(tx, upload)?,
        Command::PutPart {
            upload_id,
            number,
            size,
            etag,
            modified_ms,
            checksum,
            extents,
        } => {
            outcome.freed = super::multipart::put_part(
                tx,
                upload_id,
                *number,
                *size,
                etag,
                *modified_ms,
                checksum.as_ref(),
                extents,
            )?;
        }
        Command::CompleteUpload {
            upload_id,
            bucket,
            key,
            parts,
            min_part_size,
            condition,
            modified_ms,
            expected_checksum,
        } => {
            let upload = match super::multipart::load_upload(tx, upload_id, bucket, key) {
                Ok(upload) => upload,
                Err(MetaError::NoSuchUpload) => {
                    // A retried completion (its response was lost) answers
                    // with the object that upload became, while it is current.
                    let done = super::multipart::completed_object(tx, upload_id, bucket, key)?;
                    outcome.completed = Some(done.ok_or(MetaError::NoSuchUpload)?);
                    return Ok(outcome);
                }
                Err(e) => return Err(e),
            };
            let plan = super::multipart::plan_completion(tx, &upload, parts, *min_part_size)?;
            super::multipart::check_expected_checksum(
                plan.checksum.as_ref(),
                expected_checksum.as_ref(),
            )?;
            let current = current_object(tx, bucket, key)?;
            check_write_condition(condition, current.as_ref().map(|c| c.1.as_str()))?;
            if let Some((id, _, _)) = current {
                outcome.freed = remove_object(tx, id)?;
            }
            let mut meta = upload.meta.clone();
            meta.checksum = plan.checksum.clone();
            meta.parts = plan.parts;
            meta.upload_id = Some(upload.id.clone());
            outcome.object_id = Some(insert_object(
                tx,
                &NewObject {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    size: plan.size,
                    etag: plan.etag.clone(),
                    modified_ms: *modified_ms,
                    meta,
                    extents: plan.extents,
                },
            )?);
            outcome.freed.extend(remove_upload(tx, upload_id)?);
            outcome.completed = Some((plan.etag, plan.checksum));
        }
        Command::AbortUpload {
            upload_id,
            bucket,
            key,
        } => {
            super::multipart::load_upload(tx, upload_id, bucket, key)?;
            outcome.freed = remove_upload(tx, upload_id)?;
        }
        Command::AbortExpiredUploads {
            initiated_before_ms,
        } => {
            let ids: Vec<String> = {
                let mut stmt = tx.prepare("SELECT id FROM uploads WHERE initiated_ms < ?1")?;
                stmt.query_map([initiated_before_ms], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            outcome.aborted = ids.len();
            for id in ids {
                outcome.freed.extend(remove_upload(tx, &id)?);
            }
        }
        Command::SetObjectAcl { bucket, key, acl } => {
            require_bucket(tx, bucket)?;
            let Some((id, _, _)) = current_object(tx, bucket, key)? else {
                return Err(MetaError::NoSuchKey);
            };
            let meta_json: String =
                tx.query_row("SELECT meta FROM objects WHERE id = ?1", [id], |r| r.get(0))?;
            let mut meta: super::model::ObjectMeta = serde_json::from_str(&meta_json)
                .map_err(|e| MetaError::Corrupt(format!("object {id} meta: {e}")))?;
            meta.acl = acl.clone();
            tx.execute(
                "UPDATE objects SET meta = ?2 WHERE id = ?1",
                params![id, encode_json(&meta)?],
            )?;
        }
    }
    // Blobs released above are freed only if nothing references them once
    // the whole command is applied: an object replaced by a copy of itself,
    // or a part listed in the completed object, keeps its blobs.
    let mut released = std::mem::take(&mut outcome.freed);
    released.sort();
    released.dedup();
    outcome.freed = unreferenced(tx, released)?;
    Ok(outcome)
}

pub(crate) fn require_bucket(tx: &Transaction, name: &str) -> Result<(), MetaError> {
    let exists: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM buckets WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )?;
    if exists {
        Ok(())
    } else {
        Err(MetaError::NoSuchBucket)
    }
}

/// (id, etag, size) of the current object under `key`.
fn current_object(
    tx: &Transaction,
    bucket: &str,
    key: &str,
) -> Result<Option<(i64, String, i64)>, MetaError> {
    Ok(tx
        .query_row(
            "SELECT id, etag, size FROM objects WHERE bucket = ?1 AND key = ?2",
            params![bucket, key.as_bytes()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?)
}

pub(crate) fn check_write_condition(
    condition: &WriteCondition,
    current_etag: Option<&str>,
) -> Result<(), MetaError> {
    if let (Some(list), Some(etag)) = (&condition.if_none_match, current_etag)
        && etag_matches(list, etag)
    {
        return Err(MetaError::PreconditionFailed);
    }
    if let Some(expected) = &condition.if_match {
        match current_etag {
            None => return Err(MetaError::NoSuchKey),
            Some(etag) if !etag_matches(expected, etag) => {
                return Err(MetaError::PreconditionFailed);
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Does an `If-Match` style list (`"a", "b"`, `*`, weak tags) name `etag`?
pub fn etag_matches(list: &str, etag: &str) -> bool {
    let bare = etag.trim_matches('"');
    list.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.trim_start_matches("W/").trim_matches('"') == bare
    })
}

fn insert_object(tx: &Transaction, object: &NewObject) -> Result<i64, MetaError> {
    tx.execute(
        "INSERT INTO objects(bucket, key, size, etag, modified_ms, meta) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            object.bucket,
            object.key.as_bytes(),
            object.size as i64,
            object.etag,
            object.modified_ms,
            encode_json(&object.meta)?
        ],
    )?;
    let id = tx.last_insert_rowid();
    let mut stmt = tx.prepare_cached(
        "INSERT INTO extents(object_id, seq, blob, blob_offset, length) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (seq, extent) in object.extents.iter().enumerate() {
        stmt.execute(params![
            id,
            seq as i64,
            extent.blob.as_str(),
            extent.blob_offset as i64,
            extent.length as i64
        ])?;
    }
    tx.execute(
        "UPDATE buckets SET object_count = object_count + 1, byte_count = byte_count + ?2 WHERE name = ?1",
        params![object.bucket, object.size as i64],
    )?;
    Ok(id)
}

/// Deletes an object row and its extents; returns the blobs they referenced.
fn remove_object(tx: &Transaction, id: i64) -> Result<Vec<BlobId>, MetaError> {
    let (bucket, size): (String, i64) = tx.query_row(
        "SELECT bucket, size FROM objects WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let blobs = extent_blobs(tx, "SELECT blob FROM extents WHERE object_id = ?1", &[&id])?;
    tx.execute("DELETE FROM extents WHERE object_id = ?1", [id])?;
    tx.execute("DELETE FROM objects WHERE id = ?1", [id])?;
    tx.execute(
        "UPDATE buckets SET object_count = object_count - 1, byte_count = byte_count - ?2 WHERE name = ?1",
        params![bucket, size],
    )?;
    Ok(blobs)
}

/// Deletes an upload, its parts and their extents; returns the blobs they referenced.
pub(crate) fn remove_upload(tx: &Transaction, upload_id: &str) -> Result<Vec<BlobId>, MetaError> {
    let blobs = extent_blobs(
        tx,
        "SELECT blob FROM part_extents WHERE upload_id = ?1",
        &[&upload_id],
    )?;
    tx.execute("DELETE FROM part_extents WHERE upload_id = ?1", [upload_id])?;
    tx.execute("DELETE FROM parts WHERE upload_id = ?1", [upload_id])?;
    tx.execute("DELETE FROM uploads WHERE id = ?1", [upload_id])?;
    Ok(blobs)
}

pub(crate) fn extent_blobs(
    tx: &Transaction,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<BlobId>, MetaError> {
    let mut stmt = tx.prepare_cached(sql)?;
    let ids: Vec<String> = stmt
        .query_map(params, |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut blobs: Vec<BlobId> = ids.iter().filter_map(|s| BlobId::parse(s)).collect();
    blobs.sort();
    blobs.dedup();
    Ok(blobs)
}

/// The subset of `candidates` that no object or part references any more.
pub(crate) fn unreferenced(
    tx: &Transaction,
    candidates: Vec<BlobId>,
) -> Result<Vec<BlobId>, MetaError> {
    let mut freed = Vec::new();
    for blob in candidates {
        if !super::query::blob_referenced(tx, &blob)? {
            freed.push(blob);
        }
    }
    Ok(freed)
}

//! Every metadata mutation is a `Command`, applied by [`apply`] inside one
//! transaction (DESIGN.md §3). Preconditions are checked here, so conditional
//! writes are atomic with the write itself. A cluster replicates the same
//! values through Raft and applies them with the same function, so a command
//! carries every time and id it needs: `apply` never reads a clock or draws
//! a random number.

use super::model::{
    BucketEncryption, BucketRecord, BucketSettings, CompletedPart, Extent, NULL_VERSION, NewObject,
    ObjectLockConfig, ObjectMeta, Retention, Tag, UploadRecord, Versioning,
};
use super::query::encode_json;
use super::versions::{self, VersionRow};
use super::{MetaError, Refusal, Rule, lock};
use crate::acl::{Acl, Owner};
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
    SetBucketVersioning {
        name: String,
        versioning: Versioning,
    },
    /// Enables object lock (if not yet) and sets its default retention.
    SetObjectLockConfig {
        name: String,
        config: ObjectLockConfig,
    },
    SetBucketTags {
        name: String,
        tags: Option<Vec<Tag>>,
    },
    SetBucketEncryption {
        name: String,
        encryption: Option<BucketEncryption>,
    },
    PutObject {
        object: NewObject,
        condition: WriteCondition,
        /// For copies: the version whose extents are reused must still
        /// exist, or its blobs may already be freed.
        source_id: Option<i64>,
        /// The id the new version gets if the bucket is versioning.
        version_id: String,
    },
    DeleteObject {
        bucket: String,
        key: String,
        /// A specific version to remove for good; without one, the current
        /// version is replaced by a delete marker (or, unversioned, removed).
        version_id: Option<String>,
        if_match: Option<String>,
        /// Id, owner and time of a delete marker, should one be created.
        marker_version_id: String,
        marker: NewMarker,
        bypass_governance: bool,
        /// `x-amz-if-match-last-modified-time` (ms, compared to the second)
        /// and `x-amz-if-match-size`: checked with `if_match`, atomically.
        #[serde(default)]
        if_match_modified_ms: Option<i64>,
        #[serde(default)]
        if_match_size: Option<u64>,
    },
    DeleteObjects {
        bucket: String,
        /// Keys with the version to remove (if any) and the id a delete
        /// marker for them would get.
        entries: Vec<DeleteEntry>,
        marker: NewMarker,
        bypass_governance: bool,
    },
    SetObjectAcl {
        bucket: String,
        key: String,
        version_id: Option<String>,
        acl: Acl,
    },
    /// Replaces a version's tag set (an empty set deletes the tags).
    SetObjectTags {
        bucket: String,
        key: String,
        version_id: Option<String>,
        tags: Vec<Tag>,
    },
    SetObjectRetention {
        bucket: String,
        key: String,
        version_id: Option<String>,
        retention: Option<Retention>,
        bypass_governance: bool,
        now_ms: i64,
    },
    SetObjectLegalHold {
        bucket: String,
        key: String,
        version_id: Option<String>,
        on: bool,
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
        version_id: String,
        /// The bucket's default retention, for uploads created without one.
        default_retention: Option<Retention>,
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
    /// Replaces wrapped data keys by the same keys wrapped anew (key
    /// rotation); no data is rewritten.
    Rewrap(super::rewrap::RewrapBatch),
    /// Nodes gaining and losing copies of blobs (repair, rebalancing,
    /// drains, copies found lost or corrupt).
    ChangeHolders {
        changes: Vec<super::holders::HolderChange>,
    },
    /// Starts or ends the drain of a member: no new copies go to it, and
    /// the repair moves its copies elsewhere.
    SetDraining {
        node: u64,
        draining: bool,
    },
    /// `command`, whose new blobs are small enough to travel inside it:
    /// their bytes are stored in the metadata with it, or not at all.
    WithInline {
        blobs: Vec<InlineBlob>,
        command: Box<Command>,
    },
    /// PutBucketCors (rules) and DeleteBucketCors (None).
    SetBucketCors {
        name: String,
        cors: Option<Vec<super::model::CorsRule>>,
    },
    /// PutBucketPolicy (its JSON) and DeleteBucketPolicy (None).
    SetBucketPolicy {
        name: String,
        policy: Option<String>,
    },
    /// Put/DeletePublicAccessBlock.
    SetPublicAccessBlock {
        name: String,
        block: Option<super::model::PublicAccessBlock>,
    },
    /// Put/DeleteBucketOwnershipControls.
    SetBucketOwnership {
        name: String,
        ownership: Option<super::model::ObjectOwnership>,
    },
    /// Put/DeleteBucketLifecycleConfiguration.
    SetBucketLifecycle {
        name: String,
        rules: Option<Vec<super::model::LifecycleRule>>,
    },
}

/// A blob's bytes carried in a command.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct InlineBlob {
    pub blob: BlobId,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl std::fmt::Debug for InlineBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InlineBlob({}, {} bytes)", self.blob, self.data.len())
    }
}

impl Command {
    /// This command, carrying `blobs` when there are any.
    pub fn with_inline(self, blobs: Vec<InlineBlob>) -> Command {
        if blobs.is_empty() {
            self
        } else {
            Command::WithInline {
                blobs,
                command: Box::new(self),
            }
        }
    }
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

/// A delete marker a delete may create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMarker {
    pub owner: Owner,
    pub modified_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteEntry {
    pub key: String,
    pub version_id: Option<String>,
    pub marker_version_id: String,
    /// The entry's ETag, LastModifiedTime and Size conditions.
    #[serde(default)]
    pub condition: DeleteCondition,
}

/// What the object a delete removes must still be, else the delete is
/// refused (PreconditionFailed): conditional deletes, checked in the same
/// transaction as the removal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteCondition {
    pub if_match: Option<String>,
    pub modified_ms: Option<i64>,
    pub size: Option<u64>,
}

impl DeleteCondition {
    fn is_empty(&self) -> bool {
        self.if_match.is_none() && self.modified_ms.is_none() && self.size.is_none()
    }

    fn check(&self, current: Option<&VersionRow>) -> Result<(), MetaError> {
        if self.is_empty() {
            return Ok(());
        }
        let v = match current {
            Some(v) if !v.delete_marker => v,
            _ => return Err(MetaError::NoSuchKey),
        };
        let etag_ok = self
            .if_match
            .as_deref()
            .is_none_or(|expected| etag_matches(expected, &v.etag));
        // The header carries whole seconds; stored times have milliseconds.
        let modified_ok = self
            .modified_ms
            .is_none_or(|ms| ms.div_euclid(1000) == v.modified_ms.div_euclid(1000));
        let size_ok = self.size.is_none_or(|size| size as i64 == v.size);
        if etag_ok && modified_ok && size_ok {
            Ok(())
        } else {
            Err(MetaError::PreconditionFailed)
        }
    }
}

/// What a delete did to one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteResult {
    pub key: String,
    /// The version the request named.
    pub version_id: Option<String>,
    pub outcome: Result<Deleted, Refusal>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deleted {
    /// The version removed was a delete marker, or a delete marker was created.
    pub delete_marker: bool,
    /// Id of the version removed or of the delete marker created (none in
    /// unversioned buckets).
    pub version_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Blobs no longer referenced by anything; delete them after commit.
    pub freed: Vec<BlobId>,
    /// The row id of a version the command created.
    pub object_id: Option<i64>,
    /// The version id a write created, when the bucket is versioned.
    pub version_id: Option<String>,
    /// Per-key results of DeleteObject and DeleteObjects.
    pub deleted: Vec<DeleteResult>,
    /// ETag and checksum of an object CompleteMultipartUpload created.
    pub completed: Option<(String, Option<crate::checksum::StoredChecksum>)>,
    /// How many uploads housekeeping aborted; how many keys a rewrap changed.
    pub count: usize,
    /// Copies the nodes named must delete (holders a command removed).
    pub dropped: Vec<super::holders::DroppedCopy>,
}

pub fn apply(tx: &Transaction, command: &Command) -> Result<Outcome, MetaError> {
    let mut outcome = Outcome::default();
    match command {
        Command::CreateBucket(bucket) => create_bucket(tx, bucket)?,
        Command::DeleteBucket { name } => outcome.freed = delete_bucket(tx, name)?,
        Command::SetBucketAcl { name, acl } => {
            require_bucket(tx, name)?;
            tx.prepare_cached("UPDATE buckets SET acl = ?2 WHERE name = ?1")?
                .execute(params![name, encode_json(acl)?])?;
        }
        Command::SetBucketVersioning { name, versioning } => {
            update_settings(tx, name, |settings| {
                if settings.object_lock.is_some() && *versioning != Versioning::Enabled {
                    return Err(Refusal::new(
                        Rule::InvalidBucketState,
                        "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.",
                    ));
                }
                settings.versioning = *versioning;
                Ok(())
            })?;
        }
        Command::SetObjectLockConfig { name, config } => {
            update_settings(tx, name, |settings| {
                if settings.versioning != Versioning::Enabled {
                    return Err(Refusal::new(
                        Rule::InvalidBucketState,
                        "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
                    ));
                }
                settings.object_lock = Some(config.clone());
                Ok(())
            })?;
        }
        Command::SetBucketTags { name, tags } => {
            update_settings(tx, name, |settings| {
                settings.tags = tags.clone();
                Ok(())
            })?;
        }
        Command::SetBucketEncryption { name, encryption } => {
            update_settings(tx, name, |settings| {
                settings.encryption = encryption.clone();
                Ok(())
            })?;
        }
        Command::SetBucketCors { name, cors } => {
            update_settings(tx, name, |settings| {
                settings.cors = cors.clone();
                Ok(())
            })?;
        }
        Command::SetBucketPolicy { name, policy } => {
            update_settings(tx, name, |settings| {
                settings.policy = policy.clone();
                Ok(())
            })?;
        }
        Command::SetPublicAccessBlock { name, block } => {
            update_settings(tx, name, |settings| {
                settings.public_access_block = *block;
                Ok(())
            })?;
        }
        Command::SetBucketLifecycle { name, rules } => {
            update_settings(tx, name, |settings| {
                settings.lifecycle = rules.clone();
                Ok(())
            })?;
        }
        Command::SetBucketOwnership { name, ownership } => {
            update_settings(tx, name, |settings| {
                settings.ownership = *ownership;
                Ok(())
            })?;
        }
        Command::PutObject {
            object,
            condition,
            source_id,
            version_id,
        } => {
            let versioning = bucket_settings(tx, &object.bucket)?.versioning;
            if let Some(source_id) = source_id
                && !super::query::version_exists(tx, *source_id)?
            {
                return Err(MetaError::SourceChanged);
            }
            check_write_condition(tx, condition, &object.bucket, &object.key)?;
            let (id, created, freed) = write_version(tx, object, versioning, version_id)?;
            outcome.object_id = Some(id);
            outcome.version_id = created;
            outcome.freed = freed;
        }
        Command::DeleteObject {
            bucket,
            key,
            version_id,
            if_match,
            marker_version_id,
            marker,
            bypass_governance,
            if_match_modified_ms,
            if_match_size,
        } => {
            let versioning = bucket_settings(tx, bucket)?.versioning;
            let condition = DeleteCondition {
                if_match: if_match.clone(),
                modified_ms: *if_match_modified_ms,
                size: *if_match_size,
            };
            let result = delete_one(
                tx,
                Deletion {
                    bucket,
                    key,
                    version_id: version_id.as_deref(),
                    condition: &condition,
                    marker,
                    marker_version_id,
                    versioning,
                    bypass_governance: *bypass_governance,
                },
                &mut outcome.freed,
            )?;
            outcome.deleted.push(DeleteResult {
                key: key.clone(),
                version_id: version_id.clone(),
                outcome: Ok(result),
            });
        }
        Command::DeleteObjects {
            bucket,
            entries,
            marker,
            bypass_governance,
        } => {
            let versioning = bucket_settings(tx, bucket)?.versioning;
            for entry in entries {
                let result = delete_one(
                    tx,
                    Deletion {
                        bucket,
                        key: &entry.key,
                        version_id: entry.version_id.as_deref(),
                        condition: &entry.condition,
                        marker,
                        marker_version_id: &entry.marker_version_id,
                        versioning,
                        bypass_governance: *bypass_governance,
                    },
                    &mut outcome.freed,
                );
                let result = match result {
                    Ok(deleted) => Ok(deleted),
                    // Per-key refusals are reported per key; the rest proceed.
                    Err(MetaError::Rejected(refusal)) => Err(refusal),
                    Err(MetaError::PreconditionFailed) => {
                        Err(Refusal::new(Rule::PreconditionFailed, ""))
                    }
                    Err(MetaError::NoSuchKey) => Err(Refusal::new(Rule::NoSuchKey, "")),
                    Err(e) => return Err(e),
                };
                outcome.deleted.push(DeleteResult {
                    key: entry.key.clone(),
                    version_id: entry.version_id.clone(),
                    outcome: result,
                });
            }
        }
        Command::SetObjectAcl {
            bucket,
            key,
            version_id,
            acl,
        } => {
            outcome.version_id =
                update_version_meta(tx, bucket, key, version_id.as_deref(), |meta| {
                    meta.acl = acl.clone();
                    Ok(())
                })?
        }
        Command::SetObjectTags {
            bucket,
            key,
            version_id,
            tags,
        } => {
            outcome.version_id =
                update_version_meta(tx, bucket, key, version_id.as_deref(), |meta| {
                    meta.tags = tags.clone();
                    Ok(())
                })?
        }
        Command::SetObjectRetention {
            bucket,
            key,
            version_id,
            retention,
            bypass_governance,
            now_ms,
        } => {
            require_object_lock(tx, bucket)?;
            outcome.version_id =
                update_version_meta(tx, bucket, key, version_id.as_deref(), |meta| {
                    lock::check_retention_change(
                        meta.retention.as_ref(),
                        retention.as_ref(),
                        *now_ms,
                        *bypass_governance,
                    )?;
                    meta.retention = *retention;
                    Ok(())
                })?
        }
        Command::SetObjectLegalHold {
            bucket,
            key,
            version_id,
            on,
        } => {
            require_object_lock(tx, bucket)?;
            outcome.version_id =
                update_version_meta(tx, bucket, key, version_id.as_deref(), |meta| {
                    meta.legal_hold = Some(*on);
                    Ok(())
                })?
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
                &super::multipart::NewPart {
                    number: *number,
                    size: *size,
                    etag,
                    modified_ms: *modified_ms,
                    checksum: checksum.as_ref(),
                    extents,
                },
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
            version_id,
            default_retention,
        } => {
            let upload = match super::multipart::load_upload(tx, upload_id, bucket, key) {
                Ok(upload) => upload,
                Err(MetaError::NoSuchUpload) => {
                    // A retried completion (its response was lost) answers
                    // with the object that upload became, while it is current.
                    let done = super::multipart::completed_object(tx, upload_id, bucket, key)?
                        .ok_or(MetaError::NoSuchUpload)?;
                    outcome.completed = Some((done.etag, done.checksum));
                    outcome.version_id = done.version_id;
                    return Ok(outcome);
                }
                Err(e) => return Err(e),
            };
            let versioning = bucket_settings(tx, bucket)?.versioning;
            let plan = super::multipart::plan_completion(tx, &upload, parts, *min_part_size)?;
            super::multipart::check_expected_checksum(
                plan.checksum.as_ref(),
                expected_checksum.as_ref(),
            )?;
            check_write_condition(tx, condition, bucket, key)?;
            let mut meta = upload.meta.clone();
            meta.checksum = plan.checksum.clone();
            meta.parts = plan.parts;
            meta.upload_id = Some(upload.id.clone());
            if meta.retention.is_none() {
                meta.retention = *default_retention;
            }
            let object = NewObject {
                bucket: bucket.clone(),
                key: key.clone(),
                size: plan.size,
                etag: plan.etag.clone(),
                modified_ms: *modified_ms,
                meta,
                extents: plan.extents,
            };
            let (id, created, freed) = write_version(tx, &object, versioning, version_id)?;
            outcome.object_id = Some(id);
            outcome.version_id = created;
            outcome.freed = freed;
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
            outcome.count = ids.len();
            for id in ids {
                outcome.freed.extend(remove_upload(tx, &id)?);
            }
        }
        Command::Rewrap(batch) => outcome.count = super::rewrap::apply(tx, batch)?,
        Command::ChangeHolders { changes } => {
            outcome.dropped = super::holders::apply_changes(tx, changes)?;
        }
        Command::SetDraining { node, draining } => {
            super::holders::set_draining(tx, *node, *draining)?;
        }
        Command::WithInline { blobs, command } => {
            for blob in blobs {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO inline_blobs(blob, data) VALUES (?1, ?2)",
                )?
                .execute(params![blob.blob.as_str(), blob.data])?;
            }
            outcome = apply(tx, command)?;
        }
    }
    // Blobs released above are freed only if nothing references them once
    // the whole command is applied: an object replaced by a copy of itself,
    // or a part listed in the completed object, keeps its blobs.
    let mut released = std::mem::take(&mut outcome.freed);
    released.sort();
    released.dedup();
    outcome.freed = unreferenced(tx, released)?;
    // Inline bytes go with the last reference; other nodes' blob stores
    // never held them.
    for blob in &outcome.freed {
        tx.prepare_cached("DELETE FROM inline_blobs WHERE blob = ?1")?
            .execute(params![blob.as_str()])?;
    }
    Ok(outcome)
}

fn create_bucket(tx: &Transaction, bucket: &BucketRecord) -> Result<(), MetaError> {
    let existing: Option<String> = tx
        .prepare_cached("SELECT owner_id FROM buckets WHERE name = ?1")?
        .query_row([&bucket.name], |r| r.get(0))
        .optional()?;
    if let Some(owner_id) = existing {
        return Err(MetaError::BucketExists {
            owned_by_requester: owner_id == bucket.owner.id,
        });
    }
    tx.prepare_cached("INSERT INTO buckets(name, owner_id, owner_name, region, created_ms, acl, settings) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?.execute(
        params![
            bucket.name,
            bucket.owner.id,
            bucket.owner.display_name,
            bucket.region,
            bucket.created_ms,
            encode_json(&bucket.acl)?,
            encode_json(&bucket.settings)?
        ],
    )?;
    Ok(())
}

fn delete_bucket(tx: &Transaction, name: &str) -> Result<Vec<BlobId>, MetaError> {
    require_bucket(tx, name)?;
    // Versions and delete markers count: the bucket must be truly empty.
    let has_objects: bool = tx
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM objects WHERE bucket = ?1)")?
        .query_row([name], |r| r.get(0))?;
    if has_objects {
        return Err(MetaError::BucketNotEmpty);
    }
    // S3 lets an owner delete a bucket with pending uploads; they go with it.
    let ids: Vec<String> = {
        let mut stmt = tx.prepare("SELECT id FROM uploads WHERE bucket = ?1")?;
        stmt.query_map([name], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    let mut freed = Vec::new();
    for id in ids {
        freed.extend(remove_upload(tx, &id)?);
    }
    tx.prepare_cached("DELETE FROM buckets WHERE name = ?1")?
        .execute([name])?;
    Ok(freed)
}

pub(crate) fn require_bucket(tx: &Transaction, name: &str) -> Result<(), MetaError> {
    bucket_settings(tx, name).map(|_| ())
}

pub(crate) fn bucket_settings(tx: &Transaction, name: &str) -> Result<BucketSettings, MetaError> {
    let json: Option<String> = tx
        .prepare_cached("SELECT settings FROM buckets WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    let json = json.ok_or(MetaError::NoSuchBucket)?;
    super::query::decode_settings(&json)
}

fn update_settings(
    tx: &Transaction,
    name: &str,
    change: impl FnOnce(&mut BucketSettings) -> Result<(), Refusal>,
) -> Result<(), MetaError> {
    let mut settings = bucket_settings(tx, name)?;
    change(&mut settings)?;
    tx.prepare_cached("UPDATE buckets SET settings = ?2 WHERE name = ?1")?
        .execute(params![name, encode_json(&settings)?])?;
    Ok(())
}

fn require_object_lock(tx: &Transaction, bucket: &str) -> Result<(), MetaError> {
    if bucket_settings(tx, bucket)?.object_lock.is_none() {
        return Err(Refusal::new(
            Rule::InvalidRequest,
            "Bucket is missing Object Lock Configuration",
        )
        .into());
    }
    Ok(())
}

/// Writes a new version of `object.key` as the bucket's versioning state
/// says: a new version with `version_id` (enabled), or the `null` version,
/// replacing the previous `null` version (unversioned, suspended). Returns
/// the row id, the version id to report (only when versioning is enabled),
/// and the blobs the replaced version held.
fn write_version(
    tx: &Transaction,
    object: &NewObject,
    versioning: Versioning,
    version_id: &str,
) -> Result<(i64, Option<String>, Vec<BlobId>), MetaError> {
    let mut freed = Vec::new();
    let id = match versioning {
        Versioning::Enabled => version_id,
        Versioning::Unversioned | Versioning::Suspended => {
            if let Some(null) = versions::find(tx, &object.bucket, &object.key, NULL_VERSION)? {
                if !null.delete_marker {
                    let meta = versions::load_meta(tx, null.id)?;
                    lock::check_removal(&meta, object.modified_ms, false)?;
                }
                freed = versions::remove(tx, &object.bucket, &object.key, &null, false)?;
            }
            NULL_VERSION
        }
    };
    let row = versions::push(tx, object, id, false)?;
    // Like S3, only a versioning bucket reports the id of what it wrote.
    let reported = (versioning == Versioning::Enabled).then(|| id.to_string());
    Ok((row, reported, freed))
}

struct Deletion<'a> {
    bucket: &'a str,
    key: &'a str,
    version_id: Option<&'a str>,
    condition: &'a DeleteCondition,
    marker: &'a NewMarker,
    marker_version_id: &'a str,
    versioning: Versioning,
    bypass_governance: bool,
}

/// One key's delete: removes the version named (for good), or — without a
/// version — removes the null version and, in a versioned bucket, pushes a
/// delete marker.
fn delete_one(
    tx: &Transaction,
    d: Deletion,
    freed: &mut Vec<BlobId>,
) -> Result<Deleted, MetaError> {
    let now_ms = d.marker.modified_ms;
    if let Some(version_id) = d.version_id {
        let Some(version) = versions::find(tx, d.bucket, d.key, version_id)? else {
            // Deleting a version that is not there succeeds (and does nothing).
            return Ok(Deleted {
                delete_marker: false,
                version_id: Some(version_id.to_string()),
            });
        };
        d.condition.check(Some(&version))?;
        if !version.delete_marker {
            let meta = versions::load_meta(tx, version.id)?;
            lock::check_removal(&meta, now_ms, d.bypass_governance)?;
        }
        freed.extend(versions::remove(tx, d.bucket, d.key, &version, true)?);
        return Ok(Deleted {
            delete_marker: version.delete_marker,
            version_id: Some(version.version_id),
        });
    }
    let current = versions::latest(tx, d.bucket, d.key)?.filter(|v| !v.delete_marker);
    d.condition.check(current.as_ref())?;
    if d.versioning != Versioning::Enabled
        && let Some(null) = versions::find(tx, d.bucket, d.key, NULL_VERSION)?
    {
        if !null.delete_marker {
            let meta = versions::load_meta(tx, null.id)?;
            lock::check_removal(&meta, now_ms, d.bypass_governance)?;
        }
        freed.extend(versions::remove(tx, d.bucket, d.key, &null, true)?);
    }
    if d.versioning.is_unversioned() {
        return Ok(Deleted::default());
    }
    let marker_id = match d.versioning {
        Versioning::Enabled => d.marker_version_id,
        _ => NULL_VERSION,
    };
    let marker = NewObject {
        bucket: d.bucket.to_string(),
        key: d.key.to_string(),
        size: 0,
        etag: String::new(),
        modified_ms: d.marker.modified_ms,
        meta: ObjectMeta {
            owner: d.marker.owner.clone(),
            acl: Acl::private(&d.marker.owner),
            ..Default::default()
        },
        extents: Vec::new(),
    };
    versions::push(tx, &marker, marker_id, true)?;
    Ok(Deleted {
        delete_marker: true,
        version_id: Some(marker_id.to_string()),
    })
}

/// Changes the settings stored with one version (ACL, tags, retention,
/// legal hold); delete markers have none. Returns the version's id.
fn update_version_meta(
    tx: &Transaction,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    change: impl FnOnce(&mut ObjectMeta) -> Result<(), Refusal>,
) -> Result<Option<String>, MetaError> {
    require_bucket(tx, bucket)?;
    let version = versions::resolve(tx, bucket, key, version_id)?.ok_or(match version_id {
        Some(_) => MetaError::NoSuchVersion,
        None => MetaError::NoSuchKey,
    })?;
    if version.delete_marker {
        return Err(match version_id {
            Some(_) => MetaError::DeleteMarker {
                version_id: version.version_id,
            },
            None => MetaError::NoSuchKey,
        });
    }
    let mut meta = versions::load_meta(tx, version.id)?;
    change(&mut meta)?;
    versions::store_meta(tx, version.id, &meta)?;
    Ok(Some(version.version_id))
}

/// If-Match / If-None-Match of a write, against the current version (a
/// delete marker counts as no object).
fn check_write_condition(
    tx: &Transaction,
    condition: &WriteCondition,
    bucket: &str,
    key: &str,
) -> Result<(), MetaError> {
    if condition.if_match.is_none() && condition.if_none_match.is_none() {
        return Ok(());
    }
    let current = versions::latest(tx, bucket, key)?.filter(|v| !v.delete_marker);
    let current_etag = current.as_ref().map(|c| c.etag.as_str());
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

/// Deletes an upload, its parts and their extents; returns the blobs they referenced.
pub(crate) fn remove_upload(tx: &Transaction, upload_id: &str) -> Result<Vec<BlobId>, MetaError> {
    let blobs = extent_blobs(
        tx,
        "SELECT blob FROM part_extents WHERE upload_id = ?1",
        &[&upload_id],
    )?;
    tx.prepare_cached("DELETE FROM part_extents WHERE upload_id = ?1")?
        .execute([upload_id])?;
    tx.prepare_cached("DELETE FROM parts WHERE upload_id = ?1")?
        .execute([upload_id])?;
    tx.prepare_cached("DELETE FROM uploads WHERE id = ?1")?
        .execute([upload_id])?;
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

//! The multipart parts of `apply`: uploads, parts, and the completion rules
//! S3 applies. Completion turns the parts' extents into the object's extents
//! in order, so no byte is copied.

use super::command::{extent_blobs, require_bucket};
use super::model::{CompletedPart, Extent, PartInfo, UploadRecord};
use super::query::{encode_json, part_checksum_from_json, upload_from_row};
use super::versions::{insert_extents, read_extents};
use super::{MetaError, Refusal, Rule};
use crate::checksum::{
    ChecksumAlgorithm, ChecksumType, Hasher, StoredChecksum, base64_decode, base64_encode,
    combine_crc,
};
use crate::storage::BlobId;
use md5::Digest as _;
use rusqlite::{OptionalExtension, Transaction, params};

pub fn create(tx: &Transaction, upload: &UploadRecord) -> Result<(), MetaError> {
    require_bucket(tx, &upload.bucket)?;
    tx.prepare_cached(
        "INSERT INTO uploads(id, bucket, key, initiated_ms, meta) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        upload.id,
        upload.bucket,
        upload.key.as_bytes(),
        upload.initiated_ms,
        encode_json(upload)?
    ])?;
    Ok(())
}

/// The upload `id`, which must belong to `bucket`/`key`.
pub fn load_upload(
    tx: &Transaction,
    id: &str,
    bucket: &str,
    key: &str,
) -> Result<UploadRecord, MetaError> {
    let upload = tx
        .prepare_cached("SELECT meta FROM uploads WHERE id = ?1")?
        .query_row([id], upload_from_row)
        .optional()?
        .transpose()?
        .ok_or(MetaError::NoSuchUpload)?;
    if upload.bucket != bucket || upload.key != key {
        return Err(MetaError::NoSuchUpload);
    }
    Ok(upload)
}

/// A part as UploadPart stores it.
pub struct NewPart<'a> {
    pub number: u32,
    pub size: u64,
    pub etag: &'a str,
    pub modified_ms: i64,
    pub checksum: Option<&'a StoredChecksum>,
    pub extents: &'a [Extent],
}

pub fn put_part(
    tx: &Transaction,
    upload_id: &str,
    part: &NewPart,
) -> Result<Vec<BlobId>, MetaError> {
    let exists: bool = tx
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM uploads WHERE id = ?1)")?
        .query_row([upload_id], |r| r.get(0))?;
    if !exists {
        return Err(MetaError::NoSuchUpload);
    }
    // A part uploaded again under the same number replaces the old one.
    let old = extent_blobs(
        tx,
        "SELECT blob FROM part_extents WHERE upload_id = ?1 AND number = ?2",
        &[&upload_id as &dyn rusqlite::ToSql, &part.number],
    )?;
    tx.prepare_cached("DELETE FROM part_extents WHERE upload_id = ?1 AND number = ?2")?
        .execute(params![upload_id, part.number])?;
    tx.prepare_cached("INSERT OR REPLACE INTO parts(upload_id, number, size, etag, modified_ms, checksum) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?.execute(
        params![
            upload_id,
            part.number,
            part.size as i64,
            part.etag,
            part.modified_ms,
            part.checksum.map(encode_json).transpose()?
        ],
    )?;
    insert_extents(
        tx,
        "INSERT INTO part_extents(upload_id, number, seq, blob, blob_offset, length, seal, place) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[&upload_id, &part.number],
        part.extents,
    )?;
    Ok(old)
}

/// What the object a completion creates looks like.
pub struct Completion {
    pub size: u64,
    pub etag: String,
    pub checksum: Option<StoredChecksum>,
    pub parts: Vec<PartInfo>,
    pub extents: Vec<Extent>,
}

/// Checks `requested` against the stored parts with S3's rules and computes
/// the object's ETag (`md5(md5₁‖…‖md5ₙ)-n`), checksum and extents.
pub fn plan_completion(
    tx: &Transaction,
    upload: &UploadRecord,
    requested: &[CompletedPart],
    min_part_size: u64,
) -> Result<Completion, MetaError> {
    if requested.is_empty() {
        return Err(Refusal::new(Rule::MalformedXml, "").into());
    }
    if requested.windows(2).any(|w| w[0].number > w[1].number) {
        return Err(Refusal::new(Rule::InvalidPartOrder, "").into());
    }
    // A part number listed twice (re-uploaded while the list was built)
    // counts once, as its last entry.
    let requested: Vec<&CompletedPart> = requested
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            requested
                .get(i + 1)
                .is_none_or(|next| next.number != p.number)
        })
        .map(|(_, p)| p)
        .collect();
    let mut parts = Vec::with_capacity(requested.len());
    let mut extents = Vec::new();
    let mut md5s = Vec::with_capacity(requested.len() * 16);
    let mut size = 0u64;
    let mut part_stmt = tx.prepare_cached(
        "SELECT size, etag, checksum FROM parts WHERE upload_id = ?1 AND number = ?2",
    )?;
    for (i, wanted) in requested.iter().enumerate() {
        let invalid_part = || {
            MetaError::Rejected(
                Refusal::new(Rule::InvalidPart, "")
                    .detail("UploadId", &upload.id)
                    .detail("PartNumber", wanted.number.to_string())
                    .detail("ETag", &wanted.etag),
            )
        };
        let row: Option<(i64, String, Option<String>)> = part_stmt
            .query_row(params![upload.id, wanted.number], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((part_size, etag, checksum)) = row else {
            return Err(invalid_part());
        };
        if etag.trim_matches('"') != wanted.etag.trim().trim_matches('"') {
            return Err(invalid_part());
        }
        let checksum = checksum.map(|c| part_checksum_from_json(&c)).transpose()?;
        if let Some(stated) = &wanted.checksum
            && checksum.as_ref().is_none_or(|c| c.value != *stated)
        {
            return Err(invalid_part());
        }
        let part_size = part_size as u64;
        if i + 1 < requested.len() && part_size < min_part_size {
            return Err(MetaError::Rejected(
                Refusal::new(Rule::EntityTooSmall, "")
                    .detail("ProposedSize", part_size.to_string())
                    .detail("MinSizeAllowed", min_part_size.to_string())
                    .detail("PartNumber", wanted.number.to_string())
                    .detail("ETag", &etag),
            ));
        }
        md5s.extend(
            hex::decode(etag.trim_matches('"'))
                .map_err(|_| MetaError::Corrupt(format!("part etag {etag}")))?,
        );
        extents.extend(read_extents(
            tx,
            "SELECT blob, blob_offset, length, seal, place FROM part_extents WHERE upload_id = ?1 AND number = ?2 ORDER BY seq",
            &[&upload.id, &wanted.number],
        )?);
        size += part_size;
        parts.push(PartInfo {
            number: wanted.number,
            size: part_size,
            etag,
            checksum,
        });
    }
    let etag = format!(
        "\"{}-{}\"",
        hex::encode(md5::Md5::digest(&md5s)),
        requested.len()
    );
    let checksum = match upload.checksum_algorithm {
        Some(algorithm) => Some(combined_checksum(
            algorithm,
            upload.checksum_type.unwrap_or(ChecksumType::Composite),
            &parts,
        )?),
        None => None,
    };
    Ok(Completion {
        size,
        etag,
        checksum,
        parts,
        extents,
    })
}

/// The whole-object checksum from the parts' checksums: a checksum of the
/// concatenated part checksums (COMPOSITE), or the CRCs combined into the CRC
/// of the whole object (FULL_OBJECT).
fn combined_checksum(
    algorithm: ChecksumAlgorithm,
    kind: ChecksumType,
    parts: &[PartInfo],
) -> Result<StoredChecksum, MetaError> {
    let mut raws = Vec::with_capacity(parts.len());
    for part in parts {
        let raw = part
            .checksum
            .as_ref()
            .filter(|c| c.algorithm == algorithm)
            .and_then(|c| base64_decode(&c.value))
            .ok_or_else(|| {
                MetaError::Rejected(Refusal::new(
                    Rule::InvalidRequest,
                    format!(
                        "Part {} has no {} checksum, which the upload requires.",
                        part.number,
                        algorithm.as_str()
                    ),
                ))
            })?;
        raws.push((raw, part.size));
    }
    let value = match kind {
        ChecksumType::Composite => {
            let mut hasher = Hasher::new(algorithm);
            for (raw, _) in &raws {
                hasher.update(raw);
            }
            hasher.finish(algorithm)
        }
        ChecksumType::FullObject => {
            let mut iter = raws.into_iter();
            let (mut whole, _) = iter.next().unwrap_or_default();
            for (raw, size) in iter {
                whole = combine_crc(algorithm, &whole, &raw, size)
                    .ok_or_else(|| MetaError::Corrupt("uncombinable part checksum".into()))?;
            }
            base64_encode(&whole)
        }
    };
    Ok(StoredChecksum {
        algorithm,
        value,
        kind,
    })
}

/// What a completed upload became.
pub struct Completed {
    pub etag: String,
    pub checksum: Option<StoredChecksum>,
    /// The version id to report (versioning buckets only).
    pub version_id: Option<String>,
}

/// The current version of `bucket`/`key`, if it was completed from
/// `upload_id`.
pub fn completed_object(
    tx: &Transaction,
    upload_id: &str,
    bucket: &str,
    key: &str,
) -> Result<Option<Completed>, MetaError> {
    let Some(latest) = super::versions::latest(tx, bucket, key)? else {
        return Ok(None);
    };
    if latest.delete_marker {
        return Ok(None);
    }
    let meta = super::versions::load_meta(tx, latest.id)?;
    let versioned = super::command::bucket_settings(tx, bucket)?.versioning
        == super::model::Versioning::Enabled;
    Ok(
        (meta.upload_id.as_deref() == Some(upload_id)).then(|| Completed {
            etag: latest.etag,
            checksum: meta.checksum,
            version_id: versioned.then_some(latest.version_id),
        }),
    )
}

/// A whole-object checksum stated on CompleteMultipartUpload must be the one
/// the parts add up to (a COMPOSITE value may carry its `-<parts>` suffix).
pub fn check_expected_checksum(
    computed: Option<&StoredChecksum>,
    expected: Option<&(ChecksumAlgorithm, String)>,
) -> Result<(), MetaError> {
    let Some((algorithm, value)) = expected else {
        return Ok(());
    };
    let Some(computed) = computed.filter(|c| c.algorithm == *algorithm) else {
        return Err(MetaError::Rejected(Refusal::new(
            Rule::InvalidRequest,
            format!(
                "The upload was not created with the {} checksum algorithm.",
                algorithm.as_str()
            ),
        )));
    };
    let stated = value.trim();
    let stated = match stated.rsplit_once('-') {
        Some((base, count)) if count.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => stated,
    };
    if stated != computed.value {
        return Err(MetaError::Rejected(Refusal::new(
            Rule::BadDigest,
            format!(
                "The {} you specified did not match the calculated checksum.",
                algorithm.as_str()
            ),
        )));
    }
    Ok(())
}

//! What the metadata store keeps about buckets and objects.

use crate::acl::{Acl, Owner};
use crate::checksum::StoredChecksum;
use crate::crypto::{KeyHash, Seal};
use crate::storage::BlobId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    pub owner: Owner,
    /// The LocationConstraint it was created with.
    pub region: String,
    pub created_ms: i64,
    pub acl: Acl,
    #[serde(default)]
    pub settings: BucketSettings,
}

/// A bucket's sub-resources, stored as one JSON column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BucketSettings {
    #[serde(default, skip_serializing_if = "Versioning::is_unversioned")]
    pub versioning: Versioning,
    /// Present once object lock is enabled (it cannot be disabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLockConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    /// Default encryption of objects written without SSE headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<BucketEncryption>,
    /// Cross-origin rules browsers are answered by (PutBucketCors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Vec<CorsRule>>,
    /// The bucket policy's JSON, as PutBucketPolicy gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_access_block: Option<PublicAccessBlock>,
    /// Who owns new objects and whether ACLs count (OwnershipControls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<ObjectOwnership>,
    /// Expiration rules (PutBucketLifecycleConfiguration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Vec<LifecycleRule>>,
}

/// One lifecycle rule, as PutBucketLifecycleConfiguration gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    pub id: String,
    pub enabled: bool,
    #[serde(default)]
    pub filter: LifecycleFilter,
    /// Current versions expire this many days after they were written…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<u32>,
    /// …or from this date (midnight UTC, in milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date_ms: Option<i64>,
    /// Delete markers with no versions left behind them are removed.
    #[serde(default)]
    pub expired_object_delete_marker: bool,
    /// Noncurrent versions are removed this many days after they became so…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_days: Option<u32>,
    /// …except the newest this many of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_noncurrent_versions: Option<u32>,
    /// Multipart uploads are aborted this many days after they began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_upload_days: Option<u32>,
}

/// Which objects a lifecycle rule applies to: all conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleFilter {
    #[serde(default)]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_greater_than: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_less_than: Option<u64>,
    /// Given as `<Filter>` (rendered back so) rather than a bare `<Prefix>`.
    #[serde(default)]
    pub as_filter: bool,
    /// Given inside `<And>`.
    #[serde(default)]
    pub as_and: bool,
}

impl BucketSettings {
    pub fn public_access_block(&self) -> PublicAccessBlock {
        self.public_access_block.unwrap_or_default()
    }

    /// ACLs are ignored (and refused) under `BucketOwnerEnforced`.
    pub fn acls_disabled(&self) -> bool {
        self.ownership == Some(ObjectOwnership::BucketOwnerEnforced)
    }
}

/// A bucket's Block Public Access settings; all off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    #[serde(default)]
    pub block_public_acls: bool,
    #[serde(default)]
    pub ignore_public_acls: bool,
    #[serde(default)]
    pub block_public_policy: bool,
    #[serde(default)]
    pub restrict_public_buckets: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectOwnership {
    BucketOwnerEnforced,
    BucketOwnerPreferred,
    ObjectWriter,
}

impl ObjectOwnership {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectOwnership::BucketOwnerEnforced => "BucketOwnerEnforced",
            ObjectOwnership::BucketOwnerPreferred => "BucketOwnerPreferred",
            ObjectOwnership::ObjectWriter => "ObjectWriter",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "BucketOwnerEnforced" => ObjectOwnership::BucketOwnerEnforced,
            "BucketOwnerPreferred" => ObjectOwnership::BucketOwnerPreferred,
            "ObjectWriter" => ObjectOwnership::ObjectWriter,
            _ => return None,
        })
    }
}

/// One CORS rule of a bucket, as PutBucketCors gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_secs: Option<u32>,
}

/// A bucket's versioning state. Once versioned, a bucket never goes back to
/// unversioned, only to suspended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

impl Versioning {
    pub fn is_unversioned(&self) -> bool {
        *self == Versioning::Unversioned
    }
}

/// The id of the version every unversioned write creates.
pub const NULL_VERSION: &str = "null";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockMode {
    #[serde(rename = "GOVERNANCE")]
    Governance,
    #[serde(rename = "COMPLIANCE")]
    Compliance,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }

    /// Modes are case-sensitive in S3.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "GOVERNANCE" => Some(LockMode::Governance),
            "COMPLIANCE" => Some(LockMode::Compliance),
            _ => None,
        }
    }
}

/// How long new versions are retained when a write names no retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    pub mode: LockMode,
    pub period: RetentionPeriod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionPeriod {
    Days(u32),
    Years(u32),
}

impl DefaultRetention {
    /// The retention a version written at `now_ms` gets.
    pub fn retention_from(&self, now_ms: i64) -> Retention {
        const DAY_MS: i64 = 24 * 3600 * 1000;
        let days = match self.period {
            RetentionPeriod::Days(d) => d as i64,
            RetentionPeriod::Years(y) => y as i64 * 365,
        };
        Retention {
            mode: self.mode,
            until_ms: now_ms.saturating_add(days * DAY_MS),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLockConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_retention: Option<DefaultRetention>,
}

/// A version's retention: it cannot be deleted before `until_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub mode: LockMode,
    pub until_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Server-side encryption a bucket applies to writes that ask for none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketEncryption {
    pub algorithm: SseAlgorithm,
    /// The KMS key for `aws:kms`; none means the keyring's default key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub bucket_key: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SseAlgorithm {
    /// SSE-S3: `AES256`.
    #[serde(rename = "AES256")]
    Aes256,
    /// SSE-KMS: `aws:kms`.
    #[serde(rename = "aws:kms")]
    Kms,
}

impl SseAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            SseAlgorithm::Aes256 => "AES256",
            SseAlgorithm::Kms => "aws:kms",
        }
    }
}

/// How an object's data is encrypted; its extents hold the wrapped keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectEncryption {
    /// SSE-S3: data keys wrapped by the keyring (the current default key
    /// when written).
    S3,
    /// SSE-KMS: data keys wrapped by the keyring key `key_id`.
    Kms {
        key_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<String>,
        #[serde(default)]
        bucket_key: bool,
    },
    /// SSE-C: data keys wrapped by the customer's key, recognised by a
    /// keyed hash; the key itself is never stored.
    Customer { key_md5: String, key_hash: KeyHash },
}

/// A contiguous byte range of one blob. An object is its extents in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    pub blob: BlobId,
    /// Offset and length in the blob's plaintext.
    pub blob_offset: u64,
    pub length: u64,
    /// The wrapped data key of an encrypted blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<Seal>,
    /// Where the blob's bytes are kept.
    #[serde(default, skip_serializing_if = "Placement::is_default")]
    pub place: Placement,
}

/// Where a blob is kept, and what it must look like when read back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Nodes whose blob store holds a copy. Empty: the blob store of the
    /// node reading it (blobs written before cluster mode).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<u64>,
    /// The bytes are in the metadata itself (`inline_blobs`), written by
    /// the same command as the object: no blob store holds them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inline: bool,
    /// Length and CRC32C of the whole stored blob (the ciphertext when it
    /// is sealed), checked when a copy comes from another node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<StoredBlob>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBlob {
    pub len: u64,
    pub crc32c: u32,
}

impl Placement {
    pub fn is_default(&self) -> bool {
        *self == Placement::default()
    }
}

/// Per-part facts of a multipart object, for `partNumber` reads and
/// GetObjectAttributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartInfo {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<StoredChecksum>,
}

/// Everything about an object besides its bytes, stored as one JSON column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website_redirect: Option<String>,
    /// `x-amz-meta-*` values, keyed by the lowercased suffix.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    pub storage_class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<StoredChecksum>,
    pub owner: Owner,
    pub acl: Acl,
    /// Parts of a multipart object, in order; empty for a single PUT.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartInfo>,
    /// The multipart upload this object was completed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// `Some(false)` once a legal hold was set and lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_hold: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<ObjectEncryption>,
}

/// One version of an object (or a delete marker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Row id: increases with every version written, so it orders versions.
    pub id: i64,
    pub bucket: String,
    pub key: String,
    /// `null` for versions written while the bucket was not versioning.
    pub version_id: String,
    pub is_latest: bool,
    pub delete_marker: bool,
    pub size: u64,
    pub etag: String,
    pub modified_ms: i64,
    pub meta: ObjectMeta,
    pub extents: Vec<Extent>,
}

/// A new object version to store (the command decides its version id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewObject {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub modified_ms: i64,
    pub meta: ObjectMeta,
    pub extents: Vec<Extent>,
}

/// One entry of a listing page: an object, or a rolled-up common prefix.
#[derive(Debug, Clone, PartialEq)]
pub enum ListEntry {
    Object(ObjectSummary),
    Prefix(String),
}

impl ListEntry {
    /// The key or prefix, which is also the position to continue after.
    pub fn position(&self) -> &str {
        match self {
            ListEntry::Object(o) => &o.key,
            ListEntry::Prefix(p) => p,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub modified_ms: i64,
    pub storage_class: String,
    pub owner: Owner,
    pub checksum: Option<StoredChecksum>,
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Continue strictly after this key (marker, start-after, token).
    pub after: Option<String>,
    pub max_keys: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    pub truncated: bool,
}

/// One entry of ListObjectVersions: a version or delete marker, or a
/// rolled-up common prefix.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionEntry {
    Version(VersionSummary),
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct VersionSummary {
    pub object: ObjectSummary,
    pub version_id: String,
    pub is_latest: bool,
    pub delete_marker: bool,
}

#[derive(Debug, Clone, Default)]
pub struct VersionQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    pub version_id_marker: Option<String>,
    pub max_keys: usize,
}

#[derive(Debug, Clone, Default)]
pub struct VersionPage {
    pub entries: Vec<VersionEntry>,
    pub truncated: bool,
}

/// Totals for the metrics endpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreStats {
    pub buckets: u64,
    pub objects: u64,
    pub bytes: u64,
}

/// A multipart upload in progress: the object it will become, minus its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub id: String,
    pub bucket: String,
    pub key: String,
    pub initiated_ms: i64,
    /// Content headers, user metadata, storage class, owner and ACL of the
    /// final object.
    pub meta: ObjectMeta,
    /// The checksum every part carries and the final object is given.
    #[serde(default)]
    pub checksum_algorithm: Option<crate::checksum::ChecksumAlgorithm>,
    #[serde(default)]
    pub checksum_type: Option<crate::checksum::ChecksumType>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartRecord {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    pub modified_ms: i64,
    pub checksum: Option<StoredChecksum>,
}

/// A part as CompleteMultipartUpload lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletedPart {
    pub number: u32,
    pub etag: String,
    /// The checksum the client states for the part, if any.
    pub checksum: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct UploadListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    pub upload_id_marker: Option<String>,
    pub max_uploads: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UploadEntry {
    Upload(Box<UploadRecord>),
    Prefix(String),
}

#[derive(Debug, Clone, Default)]
pub struct UploadPage {
    pub entries: Vec<UploadEntry>,
    pub truncated: bool,
}

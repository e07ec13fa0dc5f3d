//! What the metadata store keeps about buckets and objects.

use crate::acl::{Acl, Owner};
use crate::checksum::StoredChecksum;
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
}

/// A contiguous byte range of one blob. An object is its extents in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    pub blob: BlobId,
    pub blob_offset: u64,
    pub length: u64,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub id: i64,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub modified_ms: i64,
    pub meta: ObjectMeta,
    pub extents: Vec<Extent>,
}

/// A new object version to store.
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

//! CopyObject. A copy shares the source's blobs (DESIGN.md §4) whenever it
//! can: plaintext to plaintext, and encrypted to encrypted (the data keys are
//! unwrapped and wrapped anew for the destination, no data is rewritten).
//! Only a copy between plaintext and ciphertext, or between ETag kinds,
//! streams the bytes through.

use super::data::{StoredBody, crypto_error, extents_stream, pin_if_current, store_stream};
use super::object::{
    full_object_checksum, new_object_acl, open_object, read_key, write_condition, write_encryption,
};
use super::{
    S3Response, check_key, discard_written, load_bucket, meta_error, now_ms, request_bucket,
    version_header, xml_response,
};
use crate::app::App;
use crate::checksum::{ChecksumAlgorithm, ChecksumType};
use crate::crypto::{CustomerKey, KeySource};
use crate::meta::model::{BucketRecord, Extent, NewObject, ObjectMeta, ObjectRecord};
use crate::meta::{Command, MetaError, is_valid_version_id, new_version_id, query};
use crate::s3::body::digest_only;
use crate::s3::conditional::{Preconditions, check_copy_source};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::headers::object_meta_from_headers;
use crate::s3::object_lock;
use crate::s3::request::S3Request;
use crate::s3::sse::{self, WriteEncryption};
use crate::s3::xml::{self, XmlWriter};
use http::StatusCode;

/// Reads of a source that keeps being replaced before the copy commits.
const COPY_ATTEMPTS: usize = 10;

/// Largest object CopyObject may copy (larger ones need UploadPartCopy).
const MAX_COPY_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// What `x-amz-copy-source` names.
#[derive(Debug, PartialEq)]
pub struct SourceName {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

/// Parses `x-amz-copy-source`: `[/]bucket/key[?versionId=…]`, URL-encoded.
pub fn parse_copy_source(value: &str) -> S3Result<SourceName> {
    let invalid = || {
        S3Error::invalid_argument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )
        .detail("ArgumentName", "x-amz-copy-source")
        .detail("ArgumentValue", value)
    };
    let (path, version) = match value.split_once("?versionId=") {
        Some((path, version)) => (path, Some(version)),
        None => (value, None),
    };
    if let Some(version) = version
        && !is_valid_version_id(version)
    {
        return Err(S3Error::invalid_argument("Invalid version id specified")
            .detail("ArgumentName", "x-amz-copy-source")
            .detail("ArgumentValue", value));
    }
    let decoded = String::from_utf8(percent_encoding::percent_decode_str(path).collect())
        .map_err(|_| invalid())?;
    let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (bucket, key) = decoded.split_once('/').ok_or_else(invalid)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok(SourceName {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id: version.map(str::to_string),
    })
}

/// A copy source the requester may read, with the key that opens it.
pub struct CopySource {
    pub bucket: BucketRecord,
    pub object: ObjectRecord,
    /// The source's SSE-C key, when it has one.
    pub customer: Option<CustomerKey>,
}

impl CopySource {
    pub fn keys<'a>(&'a self, app: &'a App) -> KeySource<'a> {
        KeySource {
            keyring: &app.keyring,
            customer: self.customer.as_ref(),
        }
    }

    /// `x-amz-copy-source-version-id`, in buckets that have been versioned.
    pub fn version_header(&self, response: &mut S3Response) {
        if self.bucket.settings.versioning.is_unversioned() {
            return;
        }
        if let Ok(v) = http::HeaderValue::from_str(&self.object.version_id) {
            response
                .headers_mut()
                .insert("x-amz-copy-source-version-id", v);
        }
    }
}

/// Loads the copy source the requester may read, checking
/// `x-amz-copy-source-if-*`, the source's expected owner and its SSE-C key.
pub async fn load_copy_source(app: &App, req: &S3Request) -> S3Result<CopySource> {
    let source = req
        .header("x-amz-copy-source")
        .ok_or_else(|| S3Error::invalid_request("x-amz-copy-source is missing"))?;
    let name = parse_copy_source(source)?;
    let bucket = load_bucket(app, &name.bucket).await?;
    if let Some(expected) = req.header("x-amz-source-expected-bucket-owner")
        && expected.trim() != bucket.owner.id
    {
        return Err(S3Error::new(S3ErrorCode::AccessDenied));
    }
    let (lookup_bucket, lookup_key, version) = (
        name.bucket.clone(),
        name.key.clone(),
        name.version_id.clone(),
    );
    let object = app
        .meta
        .read(move |c| query::get_object(c, &lookup_bucket, &lookup_key, version.as_deref()))
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&name.key)))?;
    let versioned = name.version_id.is_some();
    let Some(object) = object.filter(|o| !o.delete_marker || versioned) else {
        req.access
            .check_copy_source(req, &bucket, &name.key, versioned, None)?;
        return Err(match &name.version_id {
            Some(v) => S3Error::new(S3ErrorCode::NoSuchVersion)
                .detail("Key", &name.key)
                .detail("VersionId", v),
            None => S3Error::no_such_key(&name.key),
        });
    };
    if object.delete_marker {
        return Err(S3Error::invalid_request(
            "The source of a copy request may not specifically refer to a delete marker by version id.",
        ));
    }
    req.access
        .check_copy_source(req, &bucket, &name.key, versioned, Some(&object.meta.acl))?;
    let customer = read_key(app, req, sse::COPY_SOURCE_CUSTOMER, &object)?;
    check_copy_source(
        &Preconditions {
            if_match: req.header("x-amz-copy-source-if-match"),
            if_none_match: req.header("x-amz-copy-source-if-none-match"),
            if_modified_since: req.header("x-amz-copy-source-if-modified-since"),
            if_unmodified_since: req.header("x-amz-copy-source-if-unmodified-since"),
        },
        &object.etag,
        object.modified_ms,
    )?;
    Ok(CopySource {
        bucket,
        object,
        customer,
    })
}

/// How the destination gets its bytes.
enum Data {
    /// The source's blobs, as they are (plaintext) or with data keys wrapped
    /// anew for the destination.
    Shared(Vec<Extent>),
    /// Written anew: a new blob, ETag and checksum.
    Written(Box<StoredBody>),
}

/// Whether a copy can share the source's blobs: both plaintext, or both
/// encrypted with ETags of the same kind (MD5 vs. opaque).
fn can_share(source: &ObjectMeta, destination: &WriteEncryption) -> bool {
    match (&source.encryption, &destination.stored) {
        (None, None) => true,
        (Some(s), Some(_)) => sse::opaque_etag(Some(s)) == destination.opaque_etag(),
        _ => false,
    }
}

/// The destination's data: shared blobs, or the source streamed into a new
/// blob (the source pinned while it is read).
async fn copy_data(
    app: &App,
    source: &CopySource,
    destination: &WriteEncryption,
    class: &str,
) -> S3Result<Data> {
    // Blobs stay where they are only if the destination's storage class
    // keeps them on the same backend; otherwise the bytes move.
    let backend = app.backends.backend_for_class(class);
    let same_backend = source
        .object
        .extents
        .iter()
        .all(|e| e.place.inline || e.blob.backend() == backend);
    if same_backend && can_share(&source.object.meta, destination) {
        let Some(wrapping) = destination.wrapping() else {
            return Ok(Data::Shared(source.object.extents.clone()));
        };
        let keys = source.keys(app);
        let extents = source
            .object
            .extents
            .iter()
            .map(|extent| {
                let mut extent = extent.clone();
                if let Some(seal) = &extent.seal {
                    let key = keys.unwrap(seal).map_err(crypto_error)?;
                    extent.seal = Some(
                        wrapping
                            .wrap(&app.keyring, &key, seal.blob_len)
                            .map_err(crypto_error)?,
                    );
                }
                Ok(extent)
            })
            .collect::<S3Result<Vec<_>>>()?;
        return Ok(Data::Shared(extents));
    }
    let Some(pins) = pin_if_current(app, &source.object).await? else {
        // Replaced meanwhile: the caller reads the source again.
        return Err(S3Error::new(S3ErrorCode::ConditionalRequestConflict));
    };
    let opened = open_object(app, &source.object, source.customer.as_ref())?;
    let stream = extents_stream(
        app.replicas.clone(),
        pins.inline(),
        opened,
        0,
        source.object.size,
    );
    let algorithm = source
        .object
        .meta
        .checksum
        .as_ref()
        .filter(|c| c.kind == ChecksumType::FullObject)
        .map(|c| c.algorithm)
        .unwrap_or(ChecksumAlgorithm::Crc64Nvme);
    let (stream, slot) = digest_only(stream, Some(algorithm));
    Ok(Data::Written(Box::new(
        store_stream(app, stream, slot, destination, class).await?,
    )))
}

fn directive(req: &S3Request, header: &'static str) -> S3Result<bool> {
    match req.header(header) {
        None | Some("COPY") => Ok(false),
        Some("REPLACE") => Ok(true),
        Some(other) => Err(
            S3Error::invalid_argument(format!("Unknown directive {other:?}"))
                .detail("ArgumentName", header)
                .detail("ArgumentValue", other),
        ),
    }
}

pub async fn copy_object(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let key = req.key()?.to_string();
    check_key(&key)?;
    let replace_metadata = directive(req, "x-amz-metadata-directive")?;
    let replace_tags = directive(req, "x-amz-tagging-directive")?;
    let (owner, acl) = new_object_acl(app, req, &bucket)?;
    let condition = write_condition(req)?;
    let requested = object_meta_from_headers(req)?;
    let modified_ms = now_ms();
    let lock = object_lock::from_headers(req, modified_ms)?;
    let encryption = write_encryption(app, req, &bucket)?;
    let explicit_encryption = req.header(sse::SSE).is_some()
        || req
            .header("x-amz-server-side-encryption-customer-algorithm")
            .is_some();

    // A source replaced between our read and our commit would have its blobs
    // freed; the command refuses that, and we read the new source again.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let source = load_copy_source(app, req).await?;
        if source.object.size > MAX_COPY_SIZE {
            return Err(S3Error::invalid_request(format!(
                "The specified copy source is larger than the maximum allowable size for a copy source: {MAX_COPY_SIZE}"
            )));
        }
        let same_object = source.bucket.name == bucket.name
            && source.object.key == key
            && source.object.is_latest;
        let storage_class_changes = req.header("x-amz-storage-class").is_some()
            && requested.storage_class != source.object.meta.storage_class;
        let encryption_changes = explicit_encryption
            || sse::opaque_etag(source.object.meta.encryption.as_ref()) != encryption.opaque_etag()
            || source.object.meta.encryption.is_some() != encryption.stored.is_some();
        if same_object && !replace_metadata && !storage_class_changes && !encryption_changes {
            return Err(S3Error::invalid_request(
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
            ));
        }
        let data = match copy_data(app, &source, &encryption, &requested.storage_class).await {
            Err(e)
                if e.code == S3ErrorCode::ConditionalRequestConflict
                    && attempts < COPY_ATTEMPTS =>
            {
                continue;
            }
            other => other?,
        };
        let src = &source.object;
        let mut meta = if replace_metadata {
            requested.clone()
        } else {
            let mut meta = src.meta.clone();
            meta.storage_class = requested.storage_class.clone();
            meta
        };
        meta.tags = if replace_tags {
            requested.tags.clone()
        } else {
            src.meta.tags.clone()
        };
        meta.owner = owner.clone();
        meta.acl = acl.clone();
        meta.encryption = encryption.stored.clone();
        meta.upload_id = None;
        object_lock::apply_to_new_version(&mut meta, lock, &bucket, modified_ms)?;
        let (etag, extents, source_id, written, inline) = match data {
            Data::Shared(extents) => {
                meta.checksum = src.meta.checksum.clone();
                meta.parts = src.meta.parts.clone();
                (
                    src.etag.clone(),
                    extents,
                    Some(src.id),
                    Vec::new(),
                    Vec::new(),
                )
            }
            Data::Written(stored) => {
                meta.checksum = full_object_checksum(&stored.digest);
                meta.parts = Vec::new();
                let inline = stored.inline_blobs();
                (
                    stored.etag.clone(),
                    stored.extents(),
                    None,
                    stored.extents(),
                    inline,
                )
            }
        };
        let command = Command::PutObject {
            object: NewObject {
                bucket: bucket.name.clone(),
                key: key.clone(),
                size: src.size,
                etag: etag.clone(),
                modified_ms,
                meta: meta.clone(),
                extents,
            },
            condition: condition.clone(),
            source_id,
            version_id: new_version_id(),
        }
        .with_inline(inline);
        match app.cluster.write(command).await {
            Ok(outcome) => {
                let mut w = XmlWriter::root("CopyObjectResult");
                w.element("LastModified", &xml::timestamp(modified_ms));
                w.element("ETag", &etag);
                if let Some(checksum) = &meta.checksum {
                    w.element("ChecksumType", checksum.kind.as_str());
                    w.element(checksum.algorithm.xml_name(), &checksum.value);
                }
                w.close("CopyObjectResult");
                let mut response = xml_response(StatusCode::OK, w.finish());
                version_header(&mut response, &bucket, outcome.version_id.as_deref());
                source.version_header(&mut response);
                sse::write_response_headers(response.headers_mut(), meta.encryption.as_ref());
                return Ok(response);
            }
            Err(e @ MetaError::SourceChanged) if attempts < COPY_ATTEMPTS => {
                discard_written(app, written, &e).await;
                // Let the competing writer finish before reading again.
                let jitter = uuid::Uuid::new_v4().as_bytes()[0] as u64 % 4;
                tokio::time::sleep(std::time::Duration::from_millis(1 + jitter)).await;
                continue;
            }
            Err(e) => {
                discard_written(app, written, &e).await;
                return Err(meta_error(e, &bucket.name, Some(&key)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_forms() {
        let name = |bucket: &str, key: &str, version: Option<&str>| SourceName {
            bucket: bucket.into(),
            key: key.into(),
            version_id: version.map(str::to_string),
        };
        assert_eq!(
            parse_copy_source("bucket/a%20b/c").unwrap(),
            name("bucket", "a b/c", None)
        );
        assert_eq!(
            parse_copy_source("/bucket/key?versionId=null").unwrap(),
            name("bucket", "key", Some("null"))
        );
        let id = new_version_id();
        assert_eq!(
            parse_copy_source(&format!("bucket/key?versionId={id}")).unwrap(),
            name("bucket", "key", Some(&id))
        );
        for bad in [
            "bucket",
            "/bucket/",
            "/",
            "",
            "%FF/x",
            "bucket/key?versionId=abc",
        ] {
            assert_eq!(
                parse_copy_source(bad).unwrap_err().code,
                S3ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
    }
}

//! CopyObject. A copy shares the source's blobs (DESIGN.md §4): no bytes are
//! read or written, only a new metadata record is committed.

use super::object::{requester_owner, write_condition};
use super::{
    S3Response, authorized_bucket, check_key, free_blobs, load_bucket, meta_error, now_ms, require,
    xml_response,
};
use crate::acl::{Acl, Permission};
use crate::app::App;
use crate::meta::model::{NewObject, ObjectRecord};
use crate::meta::{Command, MetaError, query};
use crate::s3::conditional::{Preconditions, check_copy_source};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::headers::{acl_from_headers, object_meta_from_headers};
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlWriter};
use http::StatusCode;

/// Reads of a source that keeps being replaced before the copy commits.
const COPY_ATTEMPTS: usize = 10;

/// Largest object CopyObject may copy (larger ones need UploadPartCopy).
const MAX_COPY_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// Parses `x-amz-copy-source`: `[/]bucket/key[?versionId=…]`, URL-encoded.
pub fn parse_copy_source(value: &str) -> S3Result<(String, String)> {
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
        && version != "null"
    {
        return Err(S3Error::new(S3ErrorCode::NoSuchVersion).detail("VersionId", version));
    }
    let decoded = String::from_utf8(percent_encoding::percent_decode_str(path).collect())
        .map_err(|_| invalid())?;
    let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (bucket, key) = decoded.split_once('/').ok_or_else(invalid)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok((bucket.to_string(), key.to_string()))
}

/// Loads the copy source the requester may read, checking
/// `x-amz-copy-source-if-*`.
pub async fn load_copy_source(app: &App, req: &S3Request) -> S3Result<ObjectRecord> {
    let source = req
        .header("x-amz-copy-source")
        .ok_or_else(|| S3Error::invalid_request("x-amz-copy-source is missing"))?;
    let (bucket, key) = parse_copy_source(source)?;
    let source_bucket = load_bucket(app, &bucket).await?;
    let lookup = key.clone();
    let object = app
        .meta
        .read(move |c| query::get_object(c, &bucket, &lookup))
        .await
        .map_err(|e| meta_error(e, &source_bucket.name, Some(&key)))?;
    let Some(object) = object else {
        require(source_bucket.acl.allows(req.requester(), Permission::Read))?;
        return Err(S3Error::no_such_key(&key));
    };
    require(object.meta.acl.allows(req.requester(), Permission::Read))?;
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
    Ok(object)
}

pub async fn copy_object(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = authorized_bucket(app, req, Permission::Write).await?;
    let key = req.key()?.to_string();
    check_key(&key)?;
    let replace = match req.header("x-amz-metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(other) => {
            return Err(
                S3Error::invalid_argument(format!("Unknown metadata directive {other:?}"))
                    .detail("ArgumentName", "x-amz-metadata-directive"),
            );
        }
    };
    let owner = requester_owner(req);
    let acl = acl_from_headers(req, &owner, Some(&bucket.owner), &app.credentials)?
        .unwrap_or_else(|| Acl::private(&owner));
    let condition = write_condition(req)?;
    let requested = object_meta_from_headers(req)?;

    // A source replaced between our read and our commit would have its blobs
    // freed; the command refuses that, and we read the new source again.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let source = load_copy_source(app, req).await?;
        if source.size > MAX_COPY_SIZE {
            return Err(S3Error::invalid_request(format!(
                "The specified copy source is larger than the maximum allowable size for a copy source: {MAX_COPY_SIZE}"
            )));
        }
        let same_object = source.bucket == bucket.name && source.key == key;
        let storage_class_changes = req.header("x-amz-storage-class").is_some()
            && requested.storage_class != source.meta.storage_class;
        if same_object && !replace && !storage_class_changes {
            return Err(S3Error::invalid_request(
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
            ));
        }
        let mut meta = if replace {
            requested.clone()
        } else {
            let mut meta = source.meta.clone();
            meta.storage_class = requested.storage_class.clone();
            meta
        };
        meta.checksum = source.meta.checksum.clone();
        meta.parts = source.meta.parts.clone();
        meta.owner = owner.clone();
        meta.acl = acl.clone();
        let modified_ms = now_ms();
        let command = Command::PutObject {
            object: NewObject {
                bucket: bucket.name.clone(),
                key: key.clone(),
                size: source.size,
                etag: source.etag.clone(),
                modified_ms,
                meta,
                extents: source.extents.clone(),
            },
            condition: condition.clone(),
            source_id: Some(source.id),
        };
        match app.meta.execute(command).await {
            Ok(outcome) => {
                free_blobs(app, outcome.freed).await;
                let mut w = XmlWriter::root("CopyObjectResult");
                w.element("LastModified", &xml::timestamp(modified_ms));
                w.element("ETag", &source.etag);
                if let Some(checksum) = &source.meta.checksum {
                    w.element("ChecksumType", checksum.kind.as_str());
                    w.element(checksum.algorithm.xml_name(), &checksum.value);
                }
                w.close("CopyObjectResult");
                return Ok(xml_response(StatusCode::OK, w.finish()));
            }
            Err(MetaError::SourceChanged) if attempts < COPY_ATTEMPTS => {
                // Let the competing writer finish before reading again.
                let jitter = uuid::Uuid::new_v4().as_bytes()[0] as u64 % 4;
                tokio::time::sleep(std::time::Duration::from_millis(1 + jitter)).await;
                continue;
            }
            Err(e) => return Err(meta_error(e, &bucket.name, Some(&key))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_forms() {
        assert_eq!(
            parse_copy_source("bucket/a%20b/c").unwrap(),
            ("bucket".into(), "a b/c".into())
        );
        assert_eq!(
            parse_copy_source("/bucket/key?versionId=null").unwrap(),
            ("bucket".into(), "key".into())
        );
        assert_eq!(
            parse_copy_source("bucket/key?versionId=abc")
                .unwrap_err()
                .code,
            S3ErrorCode::NoSuchVersion
        );
        for bad in ["bucket", "/bucket/", "/", "", "%FF/x"] {
            assert_eq!(
                parse_copy_source(bad).unwrap_err().code,
                S3ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
    }
}

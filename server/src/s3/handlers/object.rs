//! PutObject, GetObject, HeadObject and GetObjectAttributes.

use super::{
    S3Response, authorized_bucket, check_key, free_blobs, meta_error, now_ms, request_bucket,
    require, single_blob_extents, xml_response,
};
use crate::acl::{Acl, Owner, Permission, Requester};
use crate::app::App;
use crate::checksum::{ChecksumAlgorithm, ChecksumType, StoredChecksum, etag_of_md5};
use crate::meta::model::{Extent, NewObject, ObjectMeta, ObjectRecord};
use crate::meta::{Command, WriteCondition, query};
use crate::s3::body::{BodyDigest, body_error, verified_body};
use crate::s3::conditional::{Preconditions, check_read};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::headers::{
    acl_from_headers, apply_response_overrides, http_date, object_meta_from_headers,
    write_object_headers,
};
use crate::s3::range::{self, RangeRequest};
use crate::s3::request::S3Request;
use crate::s3::xml::XmlWriter;
use crate::storage::{BlobId, BlobStore, BodyStream, PinGuard, StorageError};
use axum::body::Body;
use futures::{StreamExt, TryStreamExt};
use http::header::HeaderValue;
use http::{HeaderMap, Response, StatusCode};
use std::sync::Arc;

/// The owner recorded for objects written without credentials (public-write buckets).
pub fn anonymous_owner() -> Owner {
    Owner {
        id: "65a011a29cdf8ec533ec3d1ccaae921c".into(),
        display_name: "anonymous".into(),
    }
}

pub fn requester_owner(req: &S3Request) -> Owner {
    match req.requester() {
        Requester::User(owner) => owner.clone(),
        Requester::Anonymous => anonymous_owner(),
    }
}

/// `If-None-Match` (`*`, or ETags the current object must not have) and
/// `If-Match` on writes, checked atomically by the metadata command.
pub fn write_condition(req: &S3Request) -> S3Result<WriteCondition> {
    Ok(WriteCondition {
        if_match: req.header("if-match").map(str::to_string),
        if_none_match: req.header("if-none-match").map(str::to_string),
    })
}

/// Streams a request body into a new blob. Returns the blob (none for an
/// empty body) and what the body was.
pub async fn store_body(
    app: &App,
    req: &mut S3Request,
    max_len: u64,
    default_checksum: Option<ChecksumAlgorithm>,
) -> S3Result<(Option<BlobId>, BodyDigest)> {
    let (stream, slot) = verified_body(req, max_len, default_checksum)?;
    store_stream(app, count_received(app, stream), slot).await
}

/// Writes a digesting stream to a new blob; an empty stream stores no blob.
pub async fn store_stream(
    app: &App,
    counted: BodyStream,
    slot: crate::s3::body::DigestSlot,
) -> S3Result<(Option<BlobId>, BodyDigest)> {
    let blob = BlobId::random();
    match app.blobs.put(&blob, counted).await {
        Ok(_) => {}
        Err(StorageError::Body(e)) => return Err(body_error(e)),
        Err(e) => return Err(S3Error::internal(e)),
    }
    let digest = slot
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or_else(|| S3Error::internal("body ended without a digest"))?;
    if digest.len == 0 {
        let _ = app.blobs.delete(&blob).await;
        return Ok((None, digest));
    }
    Ok((Some(blob), digest))
}

pub fn count_received(app: &App, stream: BodyStream) -> BodyStream {
    let counter = app.metrics.bytes_received.clone();
    stream
        .inspect(move |item| {
            if let Ok(bytes) = item {
                counter.inc_by(bytes.len() as u64);
            }
        })
        .boxed()
}

pub fn full_object_checksum(digest: &BodyDigest) -> Option<StoredChecksum> {
    digest
        .checksum
        .as_ref()
        .map(|(algorithm, value)| StoredChecksum {
            algorithm: *algorithm,
            value: value.clone(),
            kind: ChecksumType::FullObject,
        })
}

/// Metadata of an object a request writes into `bucket`: content headers,
/// user metadata and storage class from the request; the requester as owner;
/// the requested ACL or a private one.
pub fn new_object_meta(
    app: &App,
    req: &S3Request,
    bucket: &crate::meta::model::BucketRecord,
) -> S3Result<ObjectMeta> {
    let owner = requester_owner(req);
    let mut meta = object_meta_from_headers(req)?;
    meta.acl = acl_from_headers(req, &owner, Some(&bucket.owner), &app.credentials)?
        .unwrap_or_else(|| Acl::private(&owner));
    meta.owner = owner;
    Ok(meta)
}

pub async fn put(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = authorized_bucket(app, req, Permission::Write).await?;
    let key = req.key()?.to_string();
    check_key(&key)?;
    let mut meta = new_object_meta(app, req, &bucket)?;
    let condition = write_condition(req)?;

    let (blob, digest) = store_body(
        app,
        req,
        app.config.limits.max_object_size.0,
        Some(ChecksumAlgorithm::Crc64Nvme),
    )
    .await?;
    let etag = etag_of_md5(&digest.md5);
    meta.checksum = full_object_checksum(&digest);
    let extents = single_blob_extents(blob.as_ref(), digest.len);
    let command = Command::PutObject {
        object: NewObject {
            bucket: bucket.name.clone(),
            key: key.clone(),
            size: digest.len,
            etag: etag.clone(),
            modified_ms: now_ms(),
            meta,
            extents,
        },
        condition,
        source_id: None,
    };
    let outcome = match app.meta.execute(command).await {
        Ok(outcome) => outcome,
        Err(e) => {
            free_blobs(app, blob.into_iter().collect()).await;
            return Err(meta_error(e, &bucket.name, Some(&key)));
        }
    };
    free_blobs(app, outcome.freed).await;

    let mut response = super::empty_response(StatusCode::OK);
    let headers = response.headers_mut();
    insert(headers, "etag", &etag);
    if digest.checksum_from_client
        && let Some((algorithm, value)) = &digest.checksum
    {
        insert(headers, algorithm.header_name(), value);
        insert(
            headers,
            "x-amz-checksum-type",
            ChecksumType::FullObject.as_str(),
        );
    }
    Ok(response)
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// Loads an object the requester may read; a missing key is 404 only for
/// requesters allowed to list the bucket (otherwise 403, as S3 does).
pub async fn readable_object(app: &App, req: &S3Request) -> S3Result<ObjectRecord> {
    // Without versioning the only version is `null`.
    if let Some(version) = req.param("versionId")
        && version != "null"
    {
        return Err(S3Error::new(S3ErrorCode::NoSuchVersion).detail("VersionId", version));
    }
    let bucket = request_bucket(app, req).await?;
    let key = req.key()?.to_string();
    let (name, lookup) = (bucket.name.clone(), key.clone());
    let object = app
        .meta
        .read(move |c| query::get_object(c, &name, &lookup))
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&key)))?;
    let Some(object) = object else {
        require(bucket.acl.allows(req.requester(), Permission::Read))?;
        return Err(S3Error::no_such_key(&key));
    };
    require(object.meta.acl.allows(req.requester(), Permission::Read))?;
    Ok(object)
}

/// Part `n` of an object as a byte range (`partNumber` reads).
fn part_range(object: &ObjectRecord, n: u32) -> S3Result<(u64, u64)> {
    if object.meta.parts.is_empty() {
        return if n == 1 {
            Ok((0, object.size))
        } else {
            Err(S3Error::new(S3ErrorCode::InvalidPartNumber))
        };
    }
    let mut offset = 0;
    for part in &object.meta.parts {
        if part.number == n {
            return Ok((offset, part.size));
        }
        offset += part.size;
    }
    Err(S3Error::new(S3ErrorCode::InvalidPartNumber))
}

pub fn part_number_param(req: &S3Request) -> S3Result<Option<u32>> {
    match req.int_param("partNumber")? {
        None => Ok(None),
        Some(n) if (1..=10000).contains(&n) => Ok(Some(n as u32)),
        Some(_) => Err(S3Error::invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive",
        )
        .detail("ArgumentName", "partNumber")),
    }
}

pub fn preconditions(req: &S3Request) -> Preconditions<'_> {
    Preconditions {
        if_match: req.header("if-match"),
        if_none_match: req.header("if-none-match"),
        if_modified_since: req.header("if-modified-since"),
        if_unmodified_since: req.header("if-unmodified-since"),
    }
}

/// Pins the blobs of `object` for reading. `None` if the object was
/// replaced or deleted since it was read: its blobs may already be gone.
pub async fn pin_if_current(app: &App, object: &ObjectRecord) -> S3Result<Option<PinGuard>> {
    let blobs = object.extents.iter().map(|e| e.blob.clone()).collect();
    let guard = app.pins.pin(app.blobs.clone(), blobs);
    let (bucket, key, id) = (object.bucket.clone(), object.key.clone(), object.id);
    let current = app
        .meta
        .read(move |c| query::current_object_id(c, &bucket, &key))
        .await
        .map_err(|e| meta_error(e, &object.bucket, Some(&object.key)))?;
    Ok((current == Some(id)).then_some(guard))
}

/// Times a read retries when the object keeps changing under it.
const PIN_ATTEMPTS: usize = 10;

pub async fn get(app: &App, req: &mut S3Request, head: bool) -> S3Result<S3Response> {
    let mut attempts = 0;
    let (object, pins) = loop {
        let object = readable_object(app, req).await?;
        if head || object.extents.is_empty() {
            break (object, None);
        }
        if let Some(pins) = pin_if_current(app, &object).await? {
            break (object, Some(pins));
        }
        attempts += 1;
        if attempts == PIN_ATTEMPTS {
            return Err(S3Error::new(S3ErrorCode::ServiceUnavailable));
        }
    };
    let part_number = part_number_param(req)?;
    if part_number.is_some() && req.header("range").is_some() {
        return Err(S3Error::invalid_request(
            "Cannot specify both Range header and partNumber query parameter",
        ));
    }
    if let Err(e) = check_read(&preconditions(req), &object.etag, object.modified_ms) {
        if e.code == S3ErrorCode::NotModified {
            let mut response = super::empty_response(StatusCode::NOT_MODIFIED);
            insert(response.headers_mut(), "etag", &object.etag);
            insert(
                response.headers_mut(),
                "last-modified",
                &http_date(object.modified_ms),
            );
            return Ok(response);
        }
        return Err(e);
    }

    let (start, length, status, content_range) = match part_number {
        Some(n) => {
            // A part read is a ranged GET of that part, for any object.
            let (start, length) = part_range(&object, n)?;
            if length == 0 {
                (start, length, StatusCode::OK, None)
            } else {
                let range = format!("bytes {}-{}/{}", start, start + length - 1, object.size);
                (start, length, StatusCode::PARTIAL_CONTENT, Some(range))
            }
        }
        None => match range::parse(req.header("range"), object.size)? {
            RangeRequest::Whole => (0, object.size, StatusCode::OK, None),
            RangeRequest::Partial { start, end } => (
                start,
                end - start + 1,
                StatusCode::PARTIAL_CONTENT,
                Some(format!("bytes {start}-{end}/{}", object.size)),
            ),
        },
    };

    let mut headers = HeaderMap::new();
    write_object_headers(&mut headers, &object.meta, &object.etag, object.modified_ms);
    apply_response_overrides(req, &mut headers)?;
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Some(range) = content_range {
        insert(&mut headers, "content-range", &range);
    }
    if !object.meta.parts.is_empty() && part_number.is_some() {
        insert(
            &mut headers,
            "x-amz-mp-parts-count",
            &object.meta.parts.len().to_string(),
        );
    }
    if req
        .header("x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"))
    {
        let checksum = match part_number {
            // A part carries its own checksum, of the object's checksum type.
            Some(n) if !object.meta.parts.is_empty() => object
                .meta
                .parts
                .iter()
                .find(|p| p.number == n)
                .and_then(|p| p.checksum.clone())
                .map(|mut c| {
                    if let Some(whole) = &object.meta.checksum {
                        c.kind = whole.kind;
                    }
                    c
                }),
            _ if status == StatusCode::OK => object.meta.checksum.clone(),
            _ => None,
        };
        if let Some(checksum) = checksum {
            let value = if part_number.is_none() {
                checksum.header_value(object.meta.parts.len())
            } else {
                checksum.value.clone()
            };
            insert(&mut headers, checksum.algorithm.header_name(), &value);
            insert(&mut headers, "x-amz-checksum-type", checksum.kind.as_str());
        }
    }

    let body = if head || length == 0 {
        Body::empty()
    } else {
        let stream = extents_stream(app.blobs.clone(), &object.extents, start, length);
        let counter = app.metrics.bytes_sent.clone();
        // The pins live as long as the body: until it is sent or dropped.
        Body::from_stream(stream.inspect(move |item| {
            let _pins = &pins;
            if let Ok(bytes) = item {
                counter.inc_by(bytes.len() as u64);
            }
        }))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// Streams bytes `start..start+length` of an object made of `extents`,
/// opening each blob only when the previous one is done.
pub fn extents_stream(
    blobs: Arc<dyn BlobStore>,
    extents: &[Extent],
    start: u64,
    length: u64,
) -> BodyStream {
    let end = start + length;
    let mut pieces = Vec::new();
    let mut offset = 0u64;
    for extent in extents {
        let extent_end = offset + extent.length;
        if extent_end > start && offset < end {
            let from = start.max(offset);
            let to = end.min(extent_end);
            pieces.push((
                extent.blob.clone(),
                extent.blob_offset + (from - offset),
                to - from,
            ));
        }
        offset = extent_end;
        if offset >= end {
            break;
        }
    }
    futures::stream::iter(pieces)
        .then(move |(blob, offset, length)| {
            let blobs = blobs.clone();
            async move {
                blobs.get(&blob, offset, length).await.map_err(|e| {
                    tracing::error!(%blob, error = %e, "cannot read blob of a stored object");
                    std::io::Error::other(e)
                })
            }
        })
        .try_flatten()
        .boxed()
}

const OBJECT_ATTRIBUTES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];

pub async fn attributes(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let object = readable_object(app, req).await?;
    let wanted: Vec<String> = req
        .headers
        .get_all("x-amz-object-attributes")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if wanted.is_empty() {
        return Err(S3Error::invalid_argument(
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
        ));
    }
    if let Some(bad) = wanted
        .iter()
        .find(|w| !OBJECT_ATTRIBUTES.contains(&w.as_str()))
    {
        return Err(S3Error::invalid_argument(format!(
            "Invalid attribute name specified: {bad}"
        )));
    }
    check_read(&preconditions(req), &object.etag, object.modified_ms)?;
    let has = |name: &str| wanted.iter().any(|w| w == name);
    let meta: &ObjectMeta = &object.meta;
    let mut w = XmlWriter::root("GetObjectAttributesResponse");
    if has("ETag") {
        w.element("ETag", object.etag.trim_matches('"'));
    }
    if has("Checksum")
        && let Some(checksum) = &meta.checksum
    {
        w.open("Checksum");
        w.element(
            checksum.algorithm.xml_name(),
            &checksum.header_value(meta.parts.len()),
        );
        w.element("ChecksumType", checksum.kind.as_str());
        w.close("Checksum");
    }
    if has("ObjectParts") && !meta.parts.is_empty() {
        let marker = req
            .header("x-amz-part-number-marker")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0);
        let max = req
            .header("x-amz-max-parts")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(1000)
            .min(1000);
        let remaining: Vec<_> = meta.parts.iter().filter(|p| p.number > marker).collect();
        let page = &remaining[..remaining.len().min(max)];
        w.open("ObjectParts");
        w.element("PartsCount", &meta.parts.len().to_string());
        w.element("PartNumberMarker", &marker.to_string());
        if let Some(last) = page.last() {
            w.element("NextPartNumberMarker", &last.number.to_string());
        }
        w.element("MaxParts", &max.to_string());
        w.element(
            "IsTruncated",
            if remaining.len() > page.len() {
                "true"
            } else {
                "false"
            },
        );
        for part in page {
            w.open("Part");
            w.element("PartNumber", &part.number.to_string());
            w.element("Size", &part.size.to_string());
            if let Some(checksum) = &part.checksum {
                w.element(checksum.algorithm.xml_name(), &checksum.value);
            }
            w.close("Part");
        }
        w.close("ObjectParts");
    }
    if has("StorageClass") {
        w.element("StorageClass", &meta.storage_class);
    }
    if has("ObjectSize") {
        w.element("ObjectSize", &object.size.to_string());
    }
    w.close("GetObjectAttributesResponse");
    let mut response = xml_response(StatusCode::OK, w.finish());
    insert(
        response.headers_mut(),
        "last-modified",
        &http_date(object.modified_ms),
    );
    Ok(response)
}

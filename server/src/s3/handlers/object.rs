//! PutObject, GetObject, HeadObject and GetObjectAttributes.

use super::data::{
    InlineRead, OpenExtent, Pinned, StoredBody, extents_stream, inline_blobs, open_extents,
    pin_if_current, start_stream, store_stream,
};
use super::{
    S3Response, check_key, delete_marker_error, discard_written, meta_error, now_ms,
    request_bucket, version_header, version_param, xml_response,
};
use crate::acl::{Acl, Owner, Requester};
use crate::app::App;
use crate::checksum::{ChecksumAlgorithm, ChecksumType, StoredChecksum};
use crate::crypto::{CustomerKey, KeySource};
use crate::meta::model::{BucketRecord, NewObject, ObjectMeta, ObjectRecord};
use crate::meta::{Command, WriteCondition, new_version_id, query};
use crate::s3::access::ownership;
use crate::s3::body::{BodyDigest, verified_body};
use crate::s3::conditional::{Preconditions, check_read};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::headers::{
    acl_from_headers, apply_response_overrides, http_date, object_meta_from_headers,
    write_object_headers,
};
use crate::s3::object_lock;
use crate::s3::range::{self, RangeRequest};
use crate::s3::request::S3Request;
use crate::s3::sse::{self, CustomerHeaders, WriteEncryption};
use crate::s3::xml::XmlWriter;
use crate::storage::BodyStream;
use axum::body::Body;
use futures::StreamExt;
use http::header::HeaderValue;
use http::{HeaderMap, Response, StatusCode};

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

/// An object or part body needs a length, an aws-chunked decoded length or
/// HTTP chunked framing: without any, AWS answers 411 rather than storing
/// an empty object.
pub fn require_length(req: &S3Request) -> S3Result<()> {
    let framed = req.header("content-length").is_some()
        || req.header("x-amz-decoded-content-length").is_some()
        || req.header("transfer-encoding").is_some();
    if framed {
        Ok(())
    } else {
        Err(S3Error::new(S3ErrorCode::MissingContentLength))
    }
}

/// Streams a request body into a new blob, encrypted as `encryption` says
/// (the caller has checked its framing with [`require_length`]).
pub async fn store_body(
    app: &App,
    req: &mut S3Request,
    max_len: u64,
    default_checksum: Option<ChecksumAlgorithm>,
    encryption: &WriteEncryption,
    class: &str,
) -> S3Result<StoredBody> {
    let (stream, slot) = verified_body(req, max_len, default_checksum)?;
    store_stream(app, count_received(app, stream), slot, encryption, class).await
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
    let mut meta = object_meta_from_headers(req)?;
    let (owner, acl) = new_object_acl(app, req, bucket)?;
    meta.acl = acl;
    meta.owner = owner;
    Ok(meta)
}

/// The owner and ACL of an object the request creates in `bucket`, as the
/// bucket's Object Ownership and Block Public Access settings allow.
pub fn new_object_acl(app: &App, req: &S3Request, bucket: &BucketRecord) -> S3Result<(Owner, Acl)> {
    let canned = req.header("x-amz-acl");
    let owner = ownership::new_object_owner(bucket, &requester_owner(req), canned);
    let requested = acl_from_headers(req, &owner, Some(&bucket.owner), &app.credentials)?;
    ownership::admit_acl(bucket, requested.as_ref(), canned)?;
    let acl = match requested {
        Some(acl) if !bucket.settings.acls_disabled() => acl,
        _ => Acl::private(&owner),
    };
    Ok((owner, acl))
}

/// The encryption of a new object in `bucket`, as its request asks (or the
/// bucket's default).
pub fn write_encryption(
    app: &App,
    req: &S3Request,
    bucket: &BucketRecord,
) -> S3Result<WriteEncryption> {
    sse::plan_write(
        &app.keyring,
        req,
        bucket,
        app.config.encryption.require_tls_for_sse_c,
    )
}

/// The response headers of a write that created a version.
pub fn write_response(
    bucket: &BucketRecord,
    version_id: Option<&str>,
    meta: &ObjectMeta,
) -> S3Response {
    let mut response = super::empty_response(StatusCode::OK);
    version_header(&mut response, bucket, version_id);
    sse::write_response_headers(response.headers_mut(), meta.encryption.as_ref());
    response
}

pub async fn put(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    require_length(req)?;
    write_object(app, req).await
}

/// PutObject once its body is known to be framed: from headers, or from a
/// browser form turned into them (POST Object).
pub async fn write_object(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let key = req.key()?.to_string();
    check_key(&key)?;
    let modified_ms = now_ms();
    let mut meta = new_object_meta(app, req, &bucket)?;
    let lock = object_lock::from_headers(req, modified_ms)?;
    object_lock::require_integrity_header(req, &lock)?;
    object_lock::apply_to_new_version(&mut meta, lock, &bucket, modified_ms)?;
    let encryption = write_encryption(app, req, &bucket)?;
    meta.encryption = encryption.stored.clone();
    let condition = write_condition(req)?;

    let stored = store_body(
        app,
        req,
        app.config.limits.max_object_size.0,
        Some(ChecksumAlgorithm::Crc64Nvme),
        &encryption,
        &meta.storage_class,
    )
    .await?;
    meta.checksum = full_object_checksum(&stored.digest);
    let command = Command::PutObject {
        object: NewObject {
            bucket: bucket.name.clone(),
            key: key.clone(),
            size: stored.digest.len,
            etag: stored.etag.clone(),
            modified_ms,
            meta: meta.clone(),
            extents: stored.extents(),
        },
        condition,
        source_id: None,
        version_id: new_version_id(),
    }
    .with_inline(stored.inline_blobs());
    let outcome = match app.cluster.write(command).await {
        Ok(outcome) => outcome,
        Err(e) => {
            discard_written(app, stored.extents(), &e).await;
            return Err(meta_error(e, &bucket.name, Some(&key)));
        }
    };

    let mut response = write_response(&bucket, outcome.version_id.as_deref(), &meta);
    expiration_header(
        &mut response,
        &bucket,
        (&key, stored.digest.len),
        &meta.tags,
        modified_ms,
    );
    let headers = response.headers_mut();
    insert(headers, "etag", &stored.etag);
    if stored.digest.checksum_from_client
        && let Some((algorithm, value)) = &stored.digest.checksum
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

/// Loads the version a request names (the latest by default) for the
/// requester to read. A missing key is 404 only for requesters allowed to
/// list the bucket (otherwise 403, as S3 does); a delete marker is 404 as
/// the latest version and 405 by version id.
pub async fn readable_object(app: &App, req: &S3Request) -> S3Result<(BucketRecord, ObjectRecord)> {
    let (bucket, object, _) = readable_object_with_inline(app, req, false).await?;
    Ok((bucket, object))
}

/// [`readable_object`], with the bytes of the object's inline blobs read in
/// the same transaction when `inline` is set.
async fn readable_object_with_inline(
    app: &App,
    req: &S3Request,
    inline: bool,
) -> S3Result<(BucketRecord, ObjectRecord, InlineRead)> {
    let version = version_param(req)?;
    let bucket = request_bucket(app, req).await?;
    let key = req.key()?.to_string();
    let (name, lookup, wanted) = (bucket.name.clone(), key.clone(), version.clone());
    let found = app
        .meta
        .lookup(move |c| {
            let Some(object) = query::get_object(c, &name, &lookup, wanted.as_deref())? else {
                return Ok(None);
            };
            // Only for an object made of inline blobs alone: any other goes
            // through `pin_if_current`, which reads them itself.
            let all_inline = object.extents.iter().all(|e| e.place.inline);
            let data = if inline && all_inline && !object.extents.is_empty() {
                query::inline_data(c, &inline_blobs(&object))?
            } else {
                Vec::new()
            };
            Ok(Some((object, data)))
        })
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&key)))?;
    let (object, inline_data) = match found {
        Some((object, data)) => (Some(object), data),
        None => (None, Vec::new()),
    };
    let Some(object) = object else {
        req.access.check_missing()?;
        return Err(match version {
            Some(v) => S3Error::new(S3ErrorCode::NoSuchVersion)
                .detail("Key", &key)
                .detail("VersionId", v),
            // Nothing there, not even a delete marker (Ceph RGW says so too).
            None => S3Error::no_such_key(&key).header("x-amz-delete-marker", "false"),
        });
    };
    if object.delete_marker {
        req.access.check_missing()?;
        return Err(delete_marker_error(version.is_some(), &object.version_id));
    }
    req.access.check_object(&object.meta.acl)?;
    Ok((bucket, object, inline_data))
}

/// The customer key a read of `object` needs (and `headers` brought),
/// checked against the object: 400 without it, 403 with another.
pub fn read_key(
    app: &App,
    req: &S3Request,
    headers: CustomerHeaders,
    object: &ObjectRecord,
) -> S3Result<Option<CustomerKey>> {
    sse::read_key(
        req,
        headers,
        &object.meta,
        app.config.encryption.require_tls_for_sse_c,
    )
}

/// Opens an object's extents for reading with the keyring and `customer`.
pub fn open_object(
    app: &App,
    object: &ObjectRecord,
    customer: Option<&CustomerKey>,
) -> S3Result<Vec<OpenExtent>> {
    open_extents(
        &object.extents,
        &KeySource {
            keyring: &app.keyring,
            customer,
        },
    )
}

/// Part `n` of an object as a byte range (`partNumber` reads). A part the
/// object does not have is 400 InvalidPart, as on AWS.
fn part_range(object: &ObjectRecord, n: u32) -> S3Result<(u64, u64)> {
    let no_such_part = || {
        S3Error::with_message(
            S3ErrorCode::InvalidPart,
            "The requested partnumber is not satisfiable",
        )
        .detail("PartNumberRequested", n.to_string())
    };
    if object.meta.parts.is_empty() {
        return if n == 1 {
            Ok((0, object.size))
        } else {
            Err(no_such_part())
        };
    }
    let mut offset = 0;
    for part in &object.meta.parts {
        if part.number == n {
            return Ok((offset, part.size));
        }
        offset += part.size;
    }
    Err(no_such_part())
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

/// Times a read retries when the object keeps changing under it.
const PIN_ATTEMPTS: usize = 10;

pub async fn get(app: &App, req: &mut S3Request, head: bool) -> S3Result<S3Response> {
    sse::refuse_managed_headers(req)?;
    let mut attempts = 0;
    let (bucket, object, pins) = loop {
        let (bucket, object, inline) = readable_object_with_inline(app, req, !head).await?;
        if head || object.extents.is_empty() {
            break (bucket, object, None);
        }
        // Read with the object in one transaction, inline bytes cannot have
        // been freed since: no pin and no second look.
        if let Some(pins) = Pinned::read_with(&object, inline) {
            break (bucket, object, Some(pins));
        }
        if let Some(pins) = pin_if_current(app, &object).await? {
            break (bucket, object, Some(pins));
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
    // A part the object does not have is refused before the customer key
    // is asked for, as on AWS.
    if let Some(n) = part_number {
        part_range(&object, n)?;
    }
    let customer = read_key(app, req, sse::CUSTOMER, &object)?;
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
        let opened = open_object(app, &object, customer.as_ref())?;
        let stream = start_stream(extents_stream(
            app.replicas.clone(),
            inline_of(&pins),
            opened,
            start,
            length,
        ))
        .await?;
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
    version_header(&mut response, &bucket, Some(&object.version_id));
    if object.is_latest {
        expiration_header(
            &mut response,
            &bucket,
            (&object.key, object.size),
            &object.meta.tags,
            object.modified_ms,
        );
    }
    Ok(response)
}

/// `x-amz-expiration` when a lifecycle rule will expire the current
/// version `(key, size)` with `tags`, written at `modified_ms`.
pub fn expiration_header(
    response: &mut S3Response,
    bucket: &BucketRecord,
    (key, size): (&str, u64),
    tags: &[crate::meta::model::Tag],
    modified_ms: i64,
) {
    let Some(rules) = bucket.settings.lifecycle.as_deref() else {
        return;
    };
    // In real days even when a debug day is set: the header states the
    // rule as configured (RGW and s3-tests read it so).
    let day = crate::meta::lifecycle::DAY_MS;
    if let Some(value) =
        crate::s3::lifecycle::expiration_header(rules, key, size, tags, modified_ms, day)
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        response.headers_mut().insert("x-amz-expiration", value);
    }
}

const OBJECT_ATTRIBUTES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];

/// BitTorrent files are not made here; a missing key is still NoSuchKey
/// (and a forbidden one AccessDenied), as on AWS.
pub async fn torrent(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    readable_object(app, req).await?;
    Err(S3Error::with_message(
        S3ErrorCode::NotImplemented,
        "The ?torrent sub-resource is not implemented by this server.",
    ))
}

pub async fn attributes(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let (bucket, object) = readable_object(app, req).await?;
    read_key(app, req, sse::CUSTOMER, &object)?;
    let wanted = crate::s3::headers::comma_list(&req.headers, "x-amz-object-attributes");
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
    version_header(&mut response, &bucket, Some(&object.version_id));
    Ok(response)
}

/// The inline bytes a read holds, if it holds any blobs at all.
fn inline_of(pins: &Option<Pinned>) -> super::data::InlineBytes {
    pins.as_ref().map(Pinned::inline).unwrap_or_default()
}

//! Multipart upload: CreateMultipartUpload, UploadPart, UploadPartCopy,
//! CompleteMultipartUpload, AbortMultipartUpload, ListMultipartUploads,
//! ListParts. Parts are blobs like any object's; completion only commits
//! metadata that lists them in order.

use super::copy::load_copy_source;
use super::data::{StoredBody, extents_stream, pin_if_current, store_stream};
use super::object::{
    count_received, full_object_checksum, new_object_meta, open_object, require_length, store_body,
    write_condition, write_encryption,
};
use super::{
    S3Response, check_key, discard_written, empty_response, meta_error, now_ms, request_bucket,
    version_header, xml_response,
};
use crate::app::App;
use crate::auth::sigv4::uri_encode;
use crate::checksum::{ChecksumAlgorithm, ChecksumType};
use crate::meta::model::{CompletedPart, UploadEntry, UploadListQuery, UploadRecord};
use crate::meta::{Command, new_version_id, query};
use crate::s3::body::{digest_only, read_small, requested_checksum};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::object_lock;
use crate::s3::request::S3Request;
use crate::s3::sse::{self, WriteEncryption};
use crate::s3::xml::{self, XmlWriter};
use http::StatusCode;
use http::header::HeaderValue;
use serde::Deserialize;

const MAX_PART_NUMBER: i64 = 10000;
/// S3's limit on a single part.
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

fn insert(response: &mut S3Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}

fn upload_id(req: &S3Request) -> S3Result<String> {
    req.param("uploadId")
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| S3Error::new(S3ErrorCode::NoSuchUpload))
}

/// The upload named by `uploadId`, which must be for this bucket and key.
async fn load_upload(app: &App, req: &S3Request) -> S3Result<UploadRecord> {
    let id = upload_id(req)?;
    let (bucket, key) = (req.bucket()?.to_string(), req.key()?.to_string());
    let lookup = id.clone();
    let upload = app
        .meta
        .read(move |c| query::get_upload(c, &lookup))
        .await
        .map_err(|e| meta_error(e, &bucket, Some(&key)))?;
    match upload {
        Some(u) if u.bucket == bucket && u.key == key => Ok(u),
        _ => Err(S3Error::new(S3ErrorCode::NoSuchUpload).detail("UploadId", id)),
    }
}

/// The encryption an upload's parts get: the upload's, with the customer
/// key the part request brought.
fn part_encryption(app: &App, req: &S3Request, upload: &UploadRecord) -> S3Result<WriteEncryption> {
    sse::check_upload_headers(req, &app.keyring, &upload.meta)?;
    let customer = sse::upload_key(
        req,
        &upload.meta,
        app.config.encryption.require_tls_for_sse_c,
        true,
    )?;
    WriteEncryption::for_part(&app.keyring, upload.meta.encryption.as_ref(), customer)
}

pub async fn create(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let key = req.key()?.to_string();
    check_key(&key)?;
    let mut meta = new_object_meta(app, req, &bucket)?;
    let initiated_ms = now_ms();
    let lock = object_lock::from_headers(req, initiated_ms)?;
    if !lock.is_empty() && bucket.settings.object_lock.is_none() {
        return Err(S3Error::invalid_request(
            "Bucket is missing ObjectLockConfiguration",
        ));
    }
    // The bucket's default retention applies when the upload completes.
    meta.retention = lock.retention;
    meta.legal_hold = lock.legal_hold;
    meta.encryption = write_encryption(app, req, &bucket)?.stored;
    let algorithm = match req.header("x-amz-checksum-algorithm") {
        None => None,
        Some(name) => Some(ChecksumAlgorithm::parse(name.trim()).ok_or_else(|| {
            S3Error::invalid_request(format!("Checksum algorithm {name:?} is not supported."))
        })?),
    };
    let kind = match req.header("x-amz-checksum-type") {
        None => None,
        Some(name) => Some(ChecksumType::parse(name.trim()).ok_or_else(|| {
            S3Error::invalid_request(format!("Checksum type {name:?} is not supported."))
        })?),
    };
    let (algorithm, kind) = match (algorithm, kind) {
        (None, Some(_)) => {
            return Err(S3Error::invalid_request(
                "x-amz-checksum-type requires x-amz-checksum-algorithm.",
            ));
        }
        (None, None) => (None, None),
        // CRC64NVME exists only as a full-object checksum; the others
        // default to composite, as in S3.
        (Some(ChecksumAlgorithm::Crc64Nvme), None | Some(ChecksumType::FullObject)) => (
            Some(ChecksumAlgorithm::Crc64Nvme),
            Some(ChecksumType::FullObject),
        ),
        (Some(a), None) => (Some(a), Some(ChecksumType::Composite)),
        (Some(a), Some(ChecksumType::FullObject)) if !a.is_crc() => {
            return Err(S3Error::invalid_request(format!(
                "The FULL_OBJECT checksum type cannot be used with the {} checksum algorithm.",
                a.as_str()
            )));
        }
        (Some(ChecksumAlgorithm::Crc64Nvme), Some(ChecksumType::Composite)) => {
            return Err(S3Error::invalid_request(
                "The COMPOSITE checksum type cannot be used with the CRC64NVME checksum algorithm.",
            ));
        }
        (Some(a), Some(k)) => (Some(a), Some(k)),
    };
    let upload = UploadRecord {
        id: uuid::Uuid::new_v4().simple().to_string(),
        bucket: bucket.name.clone(),
        key: key.clone(),
        initiated_ms,
        meta,
        checksum_algorithm: algorithm,
        checksum_type: kind,
    };
    let id = upload.id.clone();
    let encryption = upload.meta.encryption.clone();
    app.cluster
        .write(Command::CreateUpload(upload))
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&key)))?;
    let mut w = XmlWriter::root("InitiateMultipartUploadResult");
    w.element("Bucket", &bucket.name);
    w.element("Key", &key);
    w.element("UploadId", &id);
    w.close("InitiateMultipartUploadResult");
    let mut response = xml_response(StatusCode::OK, w.finish());
    if let (Some(a), Some(k)) = (algorithm, kind) {
        insert(&mut response, "x-amz-checksum-algorithm", a.as_str());
        insert(&mut response, "x-amz-checksum-type", k.as_str());
    }
    sse::write_response_headers(response.headers_mut(), encryption.as_ref());
    Ok(response)
}

fn part_number(req: &S3Request) -> S3Result<u32> {
    match req.int_param("partNumber")? {
        Some(n) if (1..=MAX_PART_NUMBER).contains(&n) => Ok(n as u32),
        _ => Err(S3Error::invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive",
        )
        .detail("ArgumentName", "partNumber")),
    }
}

/// Commits a stored part; if the upload vanished meanwhile (aborted or
/// completed), the part's blob is freed and NoSuchUpload returned.
async fn commit_part(
    app: &App,
    upload: &UploadRecord,
    number: u32,
    stored: &StoredBody,
) -> S3Result<()> {
    let command = Command::PutPart {
        upload_id: upload.id.clone(),
        number,
        size: stored.digest.len,
        etag: stored.etag.clone(),
        modified_ms: now_ms(),
        checksum: full_object_checksum(&stored.digest),
        extents: stored.extents(),
    }
    .with_inline(stored.inline_blobs());
    match app.cluster.write(command).await {
        Ok(_) => Ok(()),
        Err(e) => {
            discard_written(app, stored.extents(), &e).await;
            Err(meta_error(e, &upload.bucket, Some(&upload.key)))
        }
    }
}

pub async fn upload_part(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let number = part_number(req)?;
    request_bucket(app, req).await?;
    let upload = load_upload(app, req).await?;
    if let (Some(expected), Some(sent)) = (upload.checksum_algorithm, requested_checksum(req)?)
        && expected != sent
    {
        return Err(S3Error::invalid_request(format!(
            "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
            expected.as_str().to_ascii_lowercase(),
            sent.as_str().to_ascii_lowercase()
        )));
    }
    let encryption = part_encryption(app, req, &upload)?;
    let max = MAX_PART_SIZE.min(app.config.limits.max_object_size.0);
    require_length(req)?;
    let stored = store_body(
        app,
        req,
        max,
        upload.checksum_algorithm,
        &encryption,
        &upload.meta.storage_class,
    )
    .await?;
    commit_part(app, &upload, number, &stored).await?;
    let mut response = empty_response(StatusCode::OK);
    insert(&mut response, "etag", &stored.etag);
    if let Some((algorithm, value)) = &stored.digest.checksum {
        insert(&mut response, algorithm.header_name(), value);
    }
    sse::write_response_headers(response.headers_mut(), upload.meta.encryption.as_ref());
    Ok(response)
}

/// `bytes=first-last` of `x-amz-copy-source-range`, inside an object of `size`.
fn copy_range(value: Option<&str>, size: u64) -> S3Result<(u64, u64)> {
    let Some(value) = value else {
        return Ok((0, size));
    };
    let invalid = || {
        S3Error::invalid_argument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
        .detail("ArgumentName", "x-amz-copy-source-range")
        .detail("ArgumentValue", value)
    };
    let (first, last) = value
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(invalid)?;
    let first: u64 = first.trim().parse().map_err(|_| invalid())?;
    let last: u64 = last.trim().parse().map_err(|_| invalid())?;
    if first > last {
        return Err(invalid());
    }
    if last >= size {
        return Err(S3Error::new(S3ErrorCode::InvalidRange)
            .detail("RangeRequested", value)
            .detail("ActualObjectSize", size.to_string()));
    }
    Ok((first, last - first + 1))
}

pub async fn upload_part_copy(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let number = part_number(req)?;
    request_bucket(app, req).await?;
    let upload = load_upload(app, req).await?;
    let encryption = part_encryption(app, req, &upload)?;
    let mut attempts = 0;
    let (source, pins) = loop {
        let source = load_copy_source(app, req).await?;
        if let Some(pins) = pin_if_current(app, &source.object).await? {
            break (source, pins);
        }
        attempts += 1;
        if attempts == 10 {
            return Err(S3Error::new(S3ErrorCode::ServiceUnavailable));
        }
    };
    let (start, length) = copy_range(req.header("x-amz-copy-source-range"), source.object.size)?;
    if length > MAX_PART_SIZE {
        return Err(S3Error::new(S3ErrorCode::EntityTooLarge));
    }
    // The part's ETag is the MD5 of the bytes it holds, so they are read
    // (and written as a blob of their own) once.
    let opened = open_object(app, &source.object, source.customer.as_ref())?;
    let stream = extents_stream(app.replicas.clone(), pins.inline(), opened, start, length);
    let (stream, slot) = digest_only(stream, upload.checksum_algorithm);
    let stored = store_stream(
        app,
        count_received(app, stream),
        slot,
        &encryption,
        &upload.meta.storage_class,
    )
    .await?;
    commit_part(app, &upload, number, &stored).await?;
    let mut w = XmlWriter::root("CopyPartResult");
    w.element("LastModified", &xml::timestamp(now_ms()));
    w.element("ETag", &stored.etag);
    if let Some((algorithm, value)) = &stored.digest.checksum {
        w.element(algorithm.xml_name(), value);
    }
    w.close("CopyPartResult");
    let mut response = xml_response(StatusCode::OK, w.finish());
    source.version_header(&mut response);
    sse::write_response_headers(response.headers_mut(), upload.meta.encryption.as_ref());
    Ok(response)
}

#[derive(Deserialize)]
struct CompleteMultipartUpload {
    #[serde(rename = "Part", default)]
    parts: Vec<XmlPart>,
}

#[derive(Deserialize)]
struct XmlPart {
    #[serde(rename = "PartNumber")]
    number: u32,
    #[serde(rename = "ETag")]
    etag: String,
    #[serde(rename = "ChecksumCRC32")]
    crc32: Option<String>,
    #[serde(rename = "ChecksumCRC32C")]
    crc32c: Option<String>,
    #[serde(rename = "ChecksumCRC64NVME")]
    crc64nvme: Option<String>,
    #[serde(rename = "ChecksumSHA1")]
    sha1: Option<String>,
    #[serde(rename = "ChecksumSHA256")]
    sha256: Option<String>,
}

impl XmlPart {
    fn checksum(&self, algorithm: Option<ChecksumAlgorithm>) -> Option<String> {
        match algorithm? {
            ChecksumAlgorithm::Crc32 => self.crc32.clone(),
            ChecksumAlgorithm::Crc32c => self.crc32c.clone(),
            ChecksumAlgorithm::Crc64Nvme => self.crc64nvme.clone(),
            ChecksumAlgorithm::Sha1 => self.sha1.clone(),
            ChecksumAlgorithm::Sha256 => self.sha256.clone(),
        }
        .map(|v| v.trim().to_string())
    }
}

pub async fn complete(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let key = req.key()?.to_string();
    let upload_id = upload_id(req)?;
    // A completed upload is gone, but a retried completion of it must still
    // get its answer: the command decides.
    let upload = match load_upload(app, req).await {
        Ok(upload) => Some(upload),
        Err(e) if e.code == S3ErrorCode::NoSuchUpload => None,
        Err(e) => return Err(e),
    };
    let algorithm = upload.as_ref().and_then(|u| u.checksum_algorithm);
    if let Some(upload) = &upload {
        sse::check_upload_headers(req, &app.keyring, &upload.meta)?;
        // SSE-C keys are optional on completion, but must be the right one.
        sse::upload_key(
            req,
            &upload.meta,
            app.config.encryption.require_tls_for_sse_c,
            false,
        )?;
    }
    let modified_ms = now_ms();
    let default_retention = bucket
        .settings
        .object_lock
        .as_ref()
        .and_then(|c| c.default_retention)
        .map(|d| d.retention_from(modified_ms));
    let condition = write_condition(req)?;
    // On completion `x-amz-checksum-*` states the whole object's checksum,
    // not the request body's: take it out before the body is verified.
    let mut expected_checksum = None;
    for algorithm in crate::checksum::ALL_ALGORITHMS {
        if let Some(value) = req.headers.remove(algorithm.header_name()) {
            let value = value
                .to_str()
                .map_err(|_| S3Error::invalid_request("Invalid checksum header"))?;
            expected_checksum = Some((algorithm, value.trim().to_string()));
        }
    }
    let body = read_small(req, 4 << 20).await?;
    let request: CompleteMultipartUpload = xml::parse(&body, "CompleteMultipartUpload")?;
    if request.parts.is_empty() {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema: no parts.",
        ));
    }
    let parts: Vec<CompletedPart> = request
        .parts
        .iter()
        .map(|p| CompletedPart {
            number: p.number,
            etag: p.etag.clone(),
            checksum: p.checksum(algorithm),
        })
        .collect();
    let outcome = app
        .cluster
        .write(Command::CompleteUpload {
            upload_id: upload_id.clone(),
            bucket: bucket.name.clone(),
            key: key.clone(),
            parts,
            min_part_size: app.config.multipart.min_part_size.0,
            condition,
            modified_ms,
            expected_checksum,
            version_id: new_version_id(),
            default_retention,
        })
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&key)))?;
    let (etag, checksum) = outcome
        .completed
        .ok_or_else(|| S3Error::internal("completion returned no object"))?;
    let mut w = XmlWriter::root("CompleteMultipartUploadResult");
    w.element(
        "Location",
        &format!("/{}/{}", bucket.name, uri_encode(key.as_bytes(), true)),
    );
    w.element("Bucket", &bucket.name);
    w.element("Key", &key);
    w.element("ETag", &etag);
    if let Some(checksum) = &checksum {
        let parts = etag
            .trim_matches('"')
            .rsplit_once('-')
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(request.parts.len());
        w.element(checksum.algorithm.xml_name(), &checksum.header_value(parts));
        w.element("ChecksumType", checksum.kind.as_str());
    }
    w.close("CompleteMultipartUploadResult");
    let mut response = xml_response(StatusCode::OK, w.finish());
    version_header(&mut response, &bucket, outcome.version_id.as_deref());
    if let Some(upload) = &upload {
        sse::write_response_headers(response.headers_mut(), upload.meta.encryption.as_ref());
    }
    Ok(response)
}

pub async fn abort(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let key = req.key()?.to_string();
    let id = upload_id(req)?;
    app.cluster
        .write(Command::AbortUpload {
            upload_id: id.clone(),
            bucket: bucket.name.clone(),
            key: key.clone(),
        })
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&key)))?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn list_uploads(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let max_uploads = req.count_param("max-uploads")?;
    let url = req
        .param("encoding-type")
        .is_some_and(|v| v.eq_ignore_ascii_case("url"));
    let query = UploadListQuery {
        prefix: req.param("prefix").unwrap_or_default().to_string(),
        delimiter: req
            .param("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        key_marker: req.param("key-marker").map(str::to_string),
        upload_id_marker: req.param("upload-id-marker").map(str::to_string),
        max_uploads,
    };
    let name = bucket.name.clone();
    let q = query.clone();
    let page = app
        .meta
        .read(move |c| query::list_uploads(c, &name, &q))
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    let encode = |s: &str| {
        if url {
            uri_encode(s.as_bytes(), true)
        } else {
            s.to_string()
        }
    };
    let mut w = XmlWriter::root("ListMultipartUploadsResult");
    w.element("Bucket", &bucket.name);
    w.element(
        "KeyMarker",
        &encode(query.key_marker.as_deref().unwrap_or("")),
    );
    w.element(
        "UploadIdMarker",
        query.upload_id_marker.as_deref().unwrap_or(""),
    );
    if page.truncated {
        match page.entries.last() {
            Some(UploadEntry::Upload(u)) => {
                w.element("NextKeyMarker", &encode(&u.key));
                w.element("NextUploadIdMarker", &u.id);
            }
            Some(UploadEntry::Prefix(p)) => {
                w.element("NextKeyMarker", &encode(p));
                w.element("NextUploadIdMarker", "");
            }
            None => {}
        }
    }
    w.element("Prefix", &encode(&query.prefix));
    if let Some(d) = &query.delimiter {
        w.element("Delimiter", &encode(d));
    }
    w.element("MaxUploads", &max_uploads.to_string());
    if url {
        w.element("EncodingType", "url");
    }
    w.boolean("IsTruncated", page.truncated);
    for entry in &page.entries {
        if let UploadEntry::Upload(u) = entry {
            w.open("Upload");
            w.element("Key", &encode(&u.key));
            w.element("UploadId", &u.id);
            w.owner("Initiator", &u.meta.owner);
            w.owner("Owner", &u.meta.owner);
            w.element("StorageClass", &u.meta.storage_class);
            w.element("Initiated", &xml::timestamp(u.initiated_ms));
            if let Some(a) = u.checksum_algorithm {
                w.element("ChecksumAlgorithm", a.as_str());
            }
            if let Some(k) = u.checksum_type {
                w.element("ChecksumType", k.as_str());
            }
            w.close("Upload");
        }
    }
    for entry in &page.entries {
        if let UploadEntry::Prefix(p) = entry {
            w.open("CommonPrefixes");
            w.element("Prefix", &encode(p));
            w.close("CommonPrefixes");
        }
    }
    w.close("ListMultipartUploadsResult");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

pub async fn list_parts(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let upload = load_upload(app, req).await?;
    let marker = match req.int_param("part-number-marker")? {
        None => 0,
        Some(n) if (0..=MAX_PART_NUMBER).contains(&n) => n as u32,
        Some(_) => {
            return Err(S3Error::invalid_argument("Invalid part-number-marker")
                .detail("ArgumentName", "part-number-marker"));
        }
    };
    let max_parts = req.count_param("max-parts")?;
    let id = upload.id.clone();
    let (parts, truncated) = app
        .meta
        .read(move |c| query::list_parts(c, &id, marker, max_parts))
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&upload.key)))?;
    let mut w = XmlWriter::root("ListPartsResult");
    w.element("Bucket", &bucket.name);
    w.element("Key", &upload.key);
    w.element("UploadId", &upload.id);
    w.owner("Initiator", &upload.meta.owner);
    w.owner("Owner", &upload.meta.owner);
    w.element("StorageClass", &upload.meta.storage_class);
    w.element("PartNumberMarker", &marker.to_string());
    if let Some(last) = parts.last() {
        w.element("NextPartNumberMarker", &last.number.to_string());
    }
    w.element("MaxParts", &max_parts.to_string());
    w.boolean("IsTruncated", truncated);
    if let Some(a) = upload.checksum_algorithm {
        w.element("ChecksumAlgorithm", a.as_str());
    }
    if let Some(k) = upload.checksum_type {
        w.element("ChecksumType", k.as_str());
    }
    for part in &parts {
        w.open("Part");
        w.element("PartNumber", &part.number.to_string());
        w.element("LastModified", &xml::timestamp(part.modified_ms));
        w.element("ETag", &part.etag);
        w.element("Size", &part.size.to_string());
        if let Some(c) = &part.checksum {
            w.element(c.algorithm.xml_name(), &c.value);
        }
        w.close("Part");
    }
    w.close("ListPartsResult");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

#[cfg(test)]
mod tests {
    use super::copy_range;
    use crate::s3::error::S3ErrorCode;

    #[test]
    fn copy_source_ranges() {
        assert_eq!(copy_range(None, 10).unwrap(), (0, 10));
        assert_eq!(copy_range(Some("bytes=2-5"), 10).unwrap(), (2, 4));
        assert_eq!(copy_range(Some("bytes=0-9"), 10).unwrap(), (0, 10));
        assert_eq!(
            copy_range(Some("bytes=0-10"), 10).unwrap_err().code,
            S3ErrorCode::InvalidRange
        );
        for bad in ["bytes=5-2", "2-5", "bytes=a-b", "bytes=-5"] {
            assert_eq!(
                copy_range(Some(bad), 10).unwrap_err().code,
                S3ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
    }
}

//! POST Object: a browser form upload. The form's fields (before the file)
//! are read, its signature and policy document checked, and the request is
//! then turned into the PutObject it stands for — fields become headers,
//! the file part becomes the body, streamed to the blob store as it arrives
//! — and authorized and written like any PutObject.

use super::S3Response;
use super::object::write_object;
use crate::app::App;
use crate::auth::{Authenticated, PayloadMode, form};
use crate::s3::access;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::post_policy::PostPolicy;
use crate::s3::request::S3Request;
use crate::s3::tags::{self, MAX_OBJECT_TAGS};
use crate::s3::xml::XmlWriter;
use crate::storage::BodyStream;
use axum::body::Body;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use time::OffsetDateTime;

/// The most any field before the file may hold (a policy is the largest).
const MAX_FIELD: usize = 64 * 1024;
/// All fields before the file together.
const MAX_FIELDS: usize = 1024 * 1024;

/// Form fields that become the object's request headers as they are.
const HEADER_FIELDS: &[&str] = &[
    "cache-control",
    "content-type",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

/// `x-amz-*` fields that sign the form rather than describe the object.
const SIGNING_FIELDS: &[&str] = &[
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-signature",
    "x-amz-security-token",
];

fn malformed(detail: impl std::fmt::Display) -> S3Error {
    tracing::debug!(%detail, "malformed form upload");
    S3Error::new(S3ErrorCode::MalformedPOSTRequest)
}

fn boundary(req: &S3Request) -> S3Result<String> {
    let content_type = req.header("content-type").unwrap_or_default();
    multer::parse_boundary(content_type).map_err(|_| {
        S3Error::with_message(
            S3ErrorCode::PreconditionFailed,
            "Bucket POST must be of the enclosure-type multipart/form-data",
        )
        .detail(
            "Condition",
            "Bucket POST must be of the enclosure-type multipart/form-data",
        )
    })
}

/// The form's fields in order, by lower-cased name, and its file part.
struct Form {
    fields: Vec<(String, String)>,
    file: multer::Field<'static>,
    file_name: String,
}

impl Form {
    fn get(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, v)| v.clone())
    }
}

async fn read_form(mut multipart: multer::Multipart<'static>) -> S3Result<Form> {
    let mut fields = Vec::new();
    let mut total = 0usize;
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        if name == "file" {
            let file_name = field.file_name().unwrap_or_default().to_string();
            // Fields after the file are ignored, as on AWS.
            return Ok(Form {
                fields,
                file: field,
                file_name,
            });
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            value.extend_from_slice(&chunk);
            total += chunk.len();
            if value.len() > MAX_FIELD || total > MAX_FIELDS {
                return Err(S3Error::with_message(
                    S3ErrorCode::MalformedPOSTRequest,
                    format!("The form field {name} is too large."),
                ));
            }
        }
        let value = String::from_utf8(value)
            .map_err(|_| malformed(format!("field {name} is not UTF-8")))?;
        fields.push((name, value));
    }
    Err(
        S3Error::invalid_argument("POST requires exactly one file upload per request.")
            .detail("ArgumentName", "file"),
    )
}

/// The file part, held to the policy's `content-length-range`.
fn file_body(file: multer::Field<'static>, range: Option<(u64, u64)>) -> BodyStream {
    let stream = file.map_err(std::io::Error::other);
    let Some((min, max)) = range else {
        return stream.boxed();
    };
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let checked = stream.map(move |chunk| {
        let chunk: Bytes = chunk?;
        let total = counter.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
        if total > max {
            return Err(std::io::Error::other(
                S3Error::with_message(
                    S3ErrorCode::EntityTooLarge,
                    "Your proposed upload exceeds the maximum allowed size",
                )
                .detail("MaxSizeAllowed", max.to_string()),
            ));
        }
        Ok(chunk)
    });
    // A file below the minimum fails when the stream ends.
    let end = futures::stream::once(async move {
        if seen.load(Ordering::Relaxed) < min {
            Err(std::io::Error::other(
                S3Error::with_message(
                    S3ErrorCode::EntityTooSmall,
                    "Your proposed upload is smaller than the minimum allowed size",
                )
                .detail("MinSizeAllowed", min.to_string()),
            ))
        } else {
            Ok(Bytes::new())
        }
    });
    checked.chain(end).boxed()
}

fn insert(headers: &mut HeaderMap, name: &str, value: &str) -> S3Result<()> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| S3Error::invalid_argument(format!("Invalid form field name {name}")))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| S3Error::invalid_argument(format!("Invalid value for form field {name}")))?;
    headers.insert(name, value);
    Ok(())
}

/// The PutObject headers a form stands for.
fn form_headers(form: &Form, original: &HeaderMap) -> S3Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    if let Some(host) = original.get(http::header::HOST) {
        headers.insert(http::header::HOST, host.clone());
    }
    for (name, value) in &form.fields {
        match name.as_str() {
            "acl" => insert(&mut headers, "x-amz-acl", value)?,
            "tagging" => {
                let tags = tags::from_xml(value.as_bytes(), MAX_OBJECT_TAGS)?;
                insert(&mut headers, "x-amz-tagging", &tags::to_header(&tags))?;
            }
            "content-md5" => insert(&mut headers, "content-md5", value)?,
            n if HEADER_FIELDS.contains(&n) => insert(&mut headers, n, value)?,
            n if n.starts_with("x-amz-") && !SIGNING_FIELDS.contains(&n) => {
                insert(&mut headers, n, value)?
            }
            _ => {}
        }
    }
    Ok(headers)
}

/// Characters kept as they are in the redirect's query and the Location.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const PATH: &AsciiSet = &QUERY.remove(b'/');

pub async fn post_object(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = req.bucket()?.to_string();
    let boundary = boundary(req)?;
    let body = req
        .take_body()
        .unwrap_or_else(|| futures::stream::empty().boxed());
    let form = read_form(multer::Multipart::new(body, boundary)).await?;
    let requester = form::authenticate_form(&|name| form.get(name), &app.credentials)?;
    let key = form
        .get("key")
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
            )
            .detail("ArgumentName", "key")
        })?
        .replace("${filename}", &form.file_name);
    if key.is_empty() {
        return Err(S3Error::invalid_argument(
            "User key must have a length greater than 0.",
        ));
    }
    let policy = match form.get("policy") {
        Some(text) => {
            let policy = PostPolicy::parse(&text)?;
            // Conditions see the key as it will be stored.
            // and the bucket as the URL names it, whatever a field says.
            let mut fields: Vec<(String, String)> = form
                .fields
                .iter()
                .filter(|(name, _)| name != "bucket")
                .map(|(name, value)| match name.as_str() {
                    "key" => (name.clone(), key.clone()),
                    _ => (name.clone(), value.clone()),
                })
                .collect();
            fields.push(("bucket".into(), bucket.clone()));
            policy.admit(&fields, OffsetDateTime::now_utc())?;
            Some(policy)
        }
        None => None,
    };
    let redirect = form
        .get("success_action_redirect")
        .or_else(|| form.get("redirect"));
    let status = form.get("success_action_status");
    let scheme = if req.secure { "https" } else { "http" };
    let host = req.header("host").unwrap_or("localhost").to_string();

    req.headers = form_headers(&form, &req.headers)?;
    req.target.key = Some(key.clone());
    req.auth = Authenticated {
        requester,
        payload: PayloadMode::Unsigned,
        chunk_signer: None,
        presigned: false,
    };
    *req.body.lock().unwrap_or_else(|e| e.into_inner()) = Some(file_body(
        form.file,
        policy.as_ref().and_then(PostPolicy::length_range),
    ));
    // Only now is it known who writes which key: authorized as PutObject.
    req.access = access::authorize(app, req).await?;
    let written = write_object(app, req).await.map_err(|e| {
        // A failure inside the file stream arrives as a body error.
        if e.code == S3ErrorCode::IncompleteBody {
            malformed("the file part ended early")
        } else {
            e
        }
    })?;
    let etag = written
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let location = format!(
        "{scheme}://{host}/{}/{}",
        utf8_percent_encode(&bucket, PATH),
        utf8_percent_encode(&key, PATH)
    );
    let mut response = match (redirect, status.as_deref().map(str::trim)) {
        (Some(url), _) if url.starts_with("http://") || url.starts_with("https://") => {
            let separator = if url.contains('?') { '&' } else { '?' };
            let target = format!(
                "{url}{separator}bucket={}&key={}&etag={}",
                utf8_percent_encode(&bucket, QUERY),
                utf8_percent_encode(&key, QUERY),
                utf8_percent_encode(&etag, QUERY)
            );
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(v) = HeaderValue::from_str(&target) {
                r.headers_mut().insert(http::header::LOCATION, v);
            }
            r
        }
        (_, Some("201")) => {
            // Without a namespace, as AWS answers it.
            let mut w = XmlWriter::document();
            w.open("PostResponse");
            w.element("Location", &location);
            w.element("Bucket", &bucket);
            w.element("Key", &key);
            w.element("ETag", &etag);
            w.close("PostResponse");
            super::xml_response(StatusCode::CREATED, w.finish())
        }
        (_, Some("200")) => super::empty_response(StatusCode::OK),
        _ => super::empty_response(StatusCode::NO_CONTENT),
    };
    // The write's own headers (ETag, version id, encryption) go along.
    for (name, value) in written.headers() {
        if !response.headers().contains_key(name) {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    if let Ok(v) = HeaderValue::from_str(&location) {
        response
            .headers_mut()
            .entry(http::header::LOCATION)
            .or_insert(v);
    }
    Ok(response)
}

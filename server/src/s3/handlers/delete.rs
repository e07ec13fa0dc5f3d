//! DeleteObject and DeleteObjects: a version removed for good, or (without a
//! version, in a versioned bucket) a delete marker on top.

use super::object::requester_owner;
use super::{
    S3Response, bypasses_governance, empty_response, meta_error, now_ms, refusal_error,
    request_bucket, version_param, xml_response,
};
use crate::app::App;
use crate::meta::command::{DeleteCondition, DeleteEntry, Deleted, NewMarker};
use crate::meta::{Command, is_valid_version_id, new_version_id};
use crate::s3::body::{declares_integrity_check, read_small};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::object_lock;
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlWriter};
use http::StatusCode;
use http::header::HeaderValue;
use serde::Deserialize;

const MAX_KEYS_PER_DELETE: usize = 1000;

fn marker(req: &S3Request) -> NewMarker {
    NewMarker {
        owner: requester_owner(req),
        modified_ms: now_ms(),
    }
}

/// `x-amz-if-match-last-modified-time`: an HTTP date, in milliseconds.
fn if_match_modified(req: &S3Request) -> S3Result<Option<i64>> {
    let Some(value) = req.header("x-amz-if-match-last-modified-time") else {
        return Ok(None);
    };
    httpdate::parse_http_date(value.trim())
        .ok()
        .map(time_to_ms)
        .or_else(|| object_lock::parse_date(value))
        .map(Some)
        .ok_or_else(|| {
            S3Error::invalid_argument("Invalid x-amz-if-match-last-modified-time")
                .detail("ArgumentName", "x-amz-if-match-last-modified-time")
                .detail("ArgumentValue", value)
        })
}

fn if_match_size(req: &S3Request) -> S3Result<Option<u64>> {
    req.header("x-amz-if-match-size")
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                S3Error::invalid_argument("Invalid x-amz-if-match-size")
                    .detail("ArgumentName", "x-amz-if-match-size")
                    .detail("ArgumentValue", v)
            })
        })
        .transpose()
}

fn time_to_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub async fn delete_object(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let key = req.key()?.to_string();
    let version_id = version_param(req)?;
    let outcome = app
        .cluster
        .write(Command::DeleteObject {
            bucket: bucket.name.clone(),
            key: key.clone(),
            version_id,
            if_match: req.header("if-match").map(str::to_string),
            marker_version_id: new_version_id(),
            marker: marker(req),
            bypass_governance: bypasses_governance(req, &key),
            if_match_modified_ms: if_match_modified(req)?,
            if_match_size: if_match_size(req)?,
        })
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&key)))?;
    let mut response = empty_response(StatusCode::NO_CONTENT);
    if let Some(Ok(deleted)) = outcome.deleted.into_iter().next().map(|r| r.outcome) {
        let headers = response.headers_mut();
        if let Some(v) = deleted
            .version_id
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            headers.insert("x-amz-version-id", v);
        }
        if deleted.delete_marker {
            headers.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
        }
    }
    Ok(response)
}

#[derive(Deserialize)]
struct Delete {
    #[serde(rename = "Object", default)]
    objects: Vec<XmlEntry>,
    #[serde(rename = "Quiet", default)]
    quiet: Option<String>,
}

#[derive(Deserialize)]
struct XmlEntry {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "VersionId")]
    version_id: Option<String>,
    #[serde(rename = "ETag")]
    etag: Option<String>,
    #[serde(rename = "LastModifiedTime")]
    last_modified: Option<String>,
    #[serde(rename = "Size")]
    size: Option<String>,
}

impl XmlEntry {
    /// The entry's conditions; None when one of them cannot be read.
    fn condition(&self) -> Option<DeleteCondition> {
        Some(DeleteCondition {
            if_match: self.etag.clone(),
            modified_ms: match &self.last_modified {
                Some(text) => Some(object_lock::parse_date(text)?),
                None => None,
            },
            size: match &self.size {
                Some(text) => Some(text.trim().parse().ok()?),
                None => None,
            },
        })
    }
}

fn write_deleted(w: &mut XmlWriter, key: &str, requested: Option<&str>, deleted: &Deleted) {
    w.open("Deleted");
    w.element("Key", key);
    w.optional("VersionId", requested);
    if deleted.delete_marker {
        w.element("DeleteMarker", "true");
        w.optional("DeleteMarkerVersionId", deleted.version_id.as_deref());
    }
    w.close("Deleted");
}

fn write_error(w: &mut XmlWriter, key: &str, version: Option<&str>, error: &S3Error) {
    w.open("Error");
    w.element("Key", key);
    w.optional("VersionId", version);
    w.element("Code", error.code.as_str());
    w.element("Message", &error.message);
    w.close("Error");
}

pub async fn delete_objects(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    // AWS requires an integrity check on a multi-object delete.
    if !declares_integrity_check(req)? {
        return Err(S3Error::invalid_request(
            "Missing required header for this request: Content-MD5 OR x-amz-checksum-*",
        ));
    }
    let body = read_small(req, 2 << 20).await?;
    let request: Delete = xml::parse(&body, "Delete")?;
    if request.objects.is_empty() || request.objects.len() > MAX_KEYS_PER_DELETE {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let quiet = request
        .quiet
        .as_deref()
        .is_some_and(|q| q.trim().eq_ignore_ascii_case("true"));

    let mut refused: Vec<(String, Option<String>, S3Error)> = Vec::new();
    let mut entries = Vec::new();
    for entry in request.objects {
        let condition = entry.condition();
        let version_id = entry.version_id.filter(|v| !v.is_empty());
        if entry.key.is_empty() || entry.key.len() > 1024 {
            refused.push((
                entry.key,
                version_id,
                S3Error::invalid_argument("Invalid key"),
            ));
        } else if version_id
            .as_deref()
            .is_some_and(|v| !is_valid_version_id(v))
        {
            refused.push((
                entry.key,
                version_id,
                S3Error::new(S3ErrorCode::NoSuchVersion),
            ));
        } else if !req.access.may_delete_key(&entry.key, version_id.is_some()) {
            refused.push((
                entry.key,
                version_id,
                S3Error::new(S3ErrorCode::AccessDenied),
            ));
        } else if let Some(condition) = condition {
            entries.push(DeleteEntry {
                key: entry.key,
                version_id,
                marker_version_id: new_version_id(),
                condition,
            });
        } else {
            refused.push((
                entry.key,
                version_id,
                S3Error::invalid_argument("Invalid LastModifiedTime or Size"),
            ));
        }
    }
    let results = if entries.is_empty() {
        Vec::new()
    } else {
        let outcome = app
            .cluster
            .write(Command::DeleteObjects {
                bucket: bucket.name.clone(),
                entries,
                marker: marker(req),
                // One flag for the whole command: asked of the bucket's keys.
                bypass_governance: bypasses_governance(req, "*"),
            })
            .await
            .map_err(|e| meta_error(e, &bucket.name, None))?;
        outcome.deleted
    };

    let mut w = XmlWriter::root("DeleteResult");
    for result in results {
        match result.outcome {
            Ok(deleted) if !quiet => {
                write_deleted(&mut w, &result.key, result.version_id.as_deref(), &deleted)
            }
            Ok(_) => {}
            Err(refusal) => refused.push((result.key, result.version_id, refusal_error(refusal))),
        }
    }
    for (key, version, error) in &refused {
        write_error(&mut w, key, version.as_deref(), error);
    }
    w.close("DeleteResult");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

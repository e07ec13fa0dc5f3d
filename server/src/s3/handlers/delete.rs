//! DeleteObject and DeleteObjects.

use super::{S3Response, authorized_bucket, empty_response, free_blobs, meta_error, xml_response};
use crate::acl::Permission;
use crate::app::App;
use crate::meta::Command;
use crate::s3::body::read_small;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlWriter};
use http::StatusCode;
use serde::Deserialize;

const MAX_KEYS_PER_DELETE: usize = 1000;

pub async fn delete_object(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = authorized_bucket(app, req, Permission::Write).await?;
    let key = req.key()?.to_string();
    if let Some(version) = req.param("versionId")
        && version != "null"
    {
        return Err(S3Error::new(S3ErrorCode::NoSuchVersion).detail("VersionId", version));
    }
    let outcome = app
        .meta
        .execute(Command::DeleteObject {
            bucket: bucket.name.clone(),
            key: key.clone(),
            if_match: req.header("if-match").map(str::to_string),
        })
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&key)))?;
    free_blobs(app, outcome.freed).await;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

#[derive(Deserialize)]
struct Delete {
    #[serde(rename = "Object", default)]
    objects: Vec<DeleteEntry>,
    #[serde(rename = "Quiet", default)]
    quiet: Option<String>,
}

#[derive(Deserialize)]
struct DeleteEntry {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "VersionId")]
    version_id: Option<String>,
}

pub async fn delete_objects(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = authorized_bucket(app, req, Permission::Write).await?;
    let body = read_small(req, 2 << 20).await?;
    let request: Delete = xml::parse(&body, "Delete")?;
    if request.objects.is_empty() || request.objects.len() > MAX_KEYS_PER_DELETE {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let quiet = request
        .quiet
        .as_deref()
        .is_some_and(|q| q.trim().eq_ignore_ascii_case("true"));

    let mut errors: Vec<(String, &str, &str)> = Vec::new();
    let mut keys = Vec::new();
    let mut versions = std::collections::HashMap::new();
    for entry in request.objects {
        match entry.version_id.as_deref() {
            Some(v) if v != "null" => errors.push((
                entry.key,
                "NoSuchVersion",
                "The specified version does not exist.",
            )),
            _ if entry.key.is_empty() || entry.key.len() > 1024 => {
                errors.push((entry.key, "InvalidArgument", "Invalid key"))
            }
            version => {
                if let Some(v) = version {
                    versions.insert(entry.key.clone(), v.to_string());
                }
                keys.push(entry.key);
            }
        }
    }
    let deleted = if keys.is_empty() {
        Vec::new()
    } else {
        let outcome = app
            .meta
            .execute(Command::DeleteObjects {
                bucket: bucket.name.clone(),
                keys,
            })
            .await
            .map_err(|e| meta_error(e, &bucket.name, None))?;
        free_blobs(app, outcome.freed).await;
        outcome.deleted
    };

    let mut w = XmlWriter::root("DeleteResult");
    if !quiet {
        for (key, _) in &deleted {
            w.open("Deleted");
            w.element("Key", key);
            w.optional("VersionId", versions.get(key).map(String::as_str));
            w.close("Deleted");
        }
    }
    for (key, code, message) in &errors {
        w.open("Error");
        w.element("Key", key);
        w.element("Code", code);
        w.element("Message", message);
        w.close("Error");
    }
    w.close("DeleteResult");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

//! Object and bucket tagging.

use super::object::readable_object;
use super::{
    S3Response, empty_response, meta_error, request_bucket, set_bucket_setting, version_header,
    version_param, xml_response,
};
use crate::app::App;
use crate::meta::Command;
use crate::meta::model::Tag;
use crate::s3::body::read_small;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::request::S3Request;
use crate::s3::tags::{self, MAX_BUCKET_TAGS, MAX_OBJECT_TAGS};
use http::StatusCode;

const MAX_DOCUMENT: u64 = 64 * 1024;

pub async fn get_object(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let (bucket, object) = readable_object(app, req).await?;
    let mut response = xml_response(StatusCode::OK, tags::to_xml(&object.meta.tags));
    version_header(&mut response, &bucket, Some(&object.version_id));
    Ok(response)
}

async fn set_object_tags(
    app: &App,
    req: &S3Request,
    tags: Vec<Tag>,
    status: StatusCode,
) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let key = req.key()?.to_string();
    let version_id = version_param(req)?;
    let outcome = app
        .cluster
        .write(Command::SetObjectTags {
            bucket: bucket.name.clone(),
            key: key.clone(),
            version_id,
            tags,
        })
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&key)))?;
    let mut response = empty_response(status);
    version_header(&mut response, &bucket, outcome.version_id.as_deref());
    Ok(response)
}

pub async fn put_object(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let body = read_small(req, MAX_DOCUMENT).await?;
    let tags = tags::from_xml(&body, MAX_OBJECT_TAGS)?;
    // Policies on `s3:RequestObjectTag/…` can only be judged now.
    req.access.check_request_tags(&tags)?;
    set_object_tags(app, req, tags, StatusCode::OK).await
}

pub async fn delete_object(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    set_object_tags(app, req, Vec::new(), StatusCode::NO_CONTENT).await
}

pub async fn get_bucket(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let tags = bucket
        .settings
        .tags
        .as_ref()
        .ok_or_else(|| S3Error::new(S3ErrorCode::NoSuchTagSet))?;
    Ok(xml_response(StatusCode::OK, tags::to_xml(tags)))
}

pub async fn put_bucket(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let body = read_small(req, MAX_DOCUMENT).await?;
    let tags = tags::from_xml(&body, MAX_BUCKET_TAGS)?;
    set_bucket_setting(app, req, StatusCode::NO_CONTENT, |name| {
        Command::SetBucketTags {
            name,
            tags: Some(tags),
        }
    })
    .await
}

pub async fn delete_bucket(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    set_bucket_setting(app, req, StatusCode::NO_CONTENT, |name| {
        Command::SetBucketTags { name, tags: None }
    })
    .await
}

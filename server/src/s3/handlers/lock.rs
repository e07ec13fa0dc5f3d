//! Object lock: Get/PutObjectLockConfiguration, Get/PutObjectRetention,
//! Get/PutObjectLegalHold. The rules are applied by the metadata commands.

use super::object::readable_object;
use super::{
    S3Response, bypasses_governance, empty_response, meta_error, now_ms, request_bucket,
    version_header, version_param, xml_response,
};
use crate::app::App;
use crate::meta::Command;
use crate::meta::model::BucketRecord;
use crate::s3::body::read_small;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::object_lock;
use crate::s3::request::S3Request;
use http::StatusCode;

fn require_lock_enabled(bucket: &BucketRecord) -> S3Result<()> {
    if bucket.settings.object_lock.is_none() {
        return Err(S3Error::invalid_request(
            "Bucket is missing Object Lock Configuration",
        ));
    }
    Ok(())
}

/// Lock documents must come with Content-MD5 or a checksum, as in S3.
async fn lock_document(req: &mut S3Request) -> S3Result<bytes::Bytes> {
    if !object_lock::has_integrity_header(req) {
        return Err(S3Error::invalid_request(
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Object Lock requests",
        ));
    }
    read_small(req, 64 * 1024).await
}

pub async fn get_configuration(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let config = bucket
        .settings
        .object_lock
        .as_ref()
        .ok_or_else(|| S3Error::new(S3ErrorCode::ObjectLockConfigurationNotFoundError))?;
    Ok(xml_response(
        StatusCode::OK,
        object_lock::render_configuration(config),
    ))
}

pub async fn put_configuration(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let body = lock_document(req).await?;
    let config = object_lock::parse_configuration(&body)?;
    app.cluster
        .write(Command::SetObjectLockConfig {
            name: bucket.name.clone(),
            config,
        })
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn get_retention(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    require_lock_enabled(&bucket)?;
    let (bucket, object) = readable_object(app, req).await?;
    let retention = object
        .meta
        .retention
        .ok_or_else(|| S3Error::new(S3ErrorCode::NoSuchObjectLockConfiguration))?;
    let mut response = xml_response(StatusCode::OK, object_lock::render_retention(&retention));
    version_header(&mut response, &bucket, Some(&object.version_id));
    Ok(response)
}

pub async fn put_retention(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    require_lock_enabled(&bucket)?;
    let key = req.key()?.to_string();
    let version_id = version_param(req)?;
    let now = now_ms();
    let body = lock_document(req).await?;
    let retention = object_lock::parse_retention(&body, now)?;
    let outcome = app
        .cluster
        .write(Command::SetObjectRetention {
            bucket: bucket.name.clone(),
            key: key.clone(),
            version_id,
            retention,
            bypass_governance: bypasses_governance(req, &key),
            now_ms: now,
        })
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&key)))?;
    let mut response = empty_response(StatusCode::OK);
    version_header(&mut response, &bucket, outcome.version_id.as_deref());
    Ok(response)
}

pub async fn get_legal_hold(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    require_lock_enabled(&bucket)?;
    let (bucket, object) = readable_object(app, req).await?;
    let on = object
        .meta
        .legal_hold
        .ok_or_else(|| S3Error::new(S3ErrorCode::NoSuchObjectLockConfiguration))?;
    let mut response = xml_response(StatusCode::OK, object_lock::render_legal_hold(on));
    version_header(&mut response, &bucket, Some(&object.version_id));
    Ok(response)
}

pub async fn put_legal_hold(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    require_lock_enabled(&bucket)?;
    let key = req.key()?.to_string();
    let version_id = version_param(req)?;
    let body = lock_document(req).await?;
    let on = object_lock::parse_legal_hold(&body)?;
    let outcome = app
        .cluster
        .write(Command::SetObjectLegalHold {
            bucket: bucket.name.clone(),
            key: key.clone(),
            version_id,
            on,
        })
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&key)))?;
    let mut response = empty_response(StatusCode::OK);
    version_header(&mut response, &bucket, outcome.version_id.as_deref());
    Ok(response)
}

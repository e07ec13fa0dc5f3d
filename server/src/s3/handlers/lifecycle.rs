//! Get/Put/DeleteBucketLifecycleConfiguration: the rules are stored here and
//! applied by the lifecycle worker (`crate::lifecycle`).

use super::{S3Response, request_bucket, set_bucket_setting, xml_response};
use crate::app::App;
use crate::meta::Command;
use crate::s3::body::read_small;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::lifecycle;
use crate::s3::request::S3Request;
use http::StatusCode;

pub async fn get(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let rules = bucket.settings.lifecycle.as_deref().ok_or_else(|| {
        S3Error::new(S3ErrorCode::NoSuchLifecycleConfiguration).detail("BucketName", &bucket.name)
    })?;
    Ok(xml_response(StatusCode::OK, lifecycle::to_xml(rules)))
}

pub async fn put(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let body = read_small(req, 1 << 20).await?;
    let rules = lifecycle::parse(&body)?;
    set_bucket_setting(app, req, StatusCode::OK, |name| {
        Command::SetBucketLifecycle {
            name,
            rules: Some(rules),
        }
    })
    .await
}

pub async fn delete(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    set_bucket_setting(app, req, StatusCode::NO_CONTENT, |name| {
        Command::SetBucketLifecycle { name, rules: None }
    })
    .await
}

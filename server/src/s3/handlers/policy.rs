//! Get/Put/DeleteBucketPolicy and GetBucketPolicyStatus. Policies are
//! evaluated by `s3::access`; here they are only checked and stored.

use super::{S3Response, request_bucket, set_bucket_setting, xml_response};
use crate::app::App;
use crate::meta::Command;
use crate::policy::{Policy, PolicyError};
use crate::s3::body::read_small;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::request::S3Request;
use crate::s3::xml::XmlWriter;
use axum::body::Body;
use http::{Response, StatusCode};

fn no_policy(bucket: &str) -> S3Error {
    S3Error::new(S3ErrorCode::NoSuchBucketPolicy).detail("BucketName", bucket)
}

fn malformed(error: PolicyError) -> S3Error {
    S3Error::with_message(S3ErrorCode::MalformedPolicy, error.0)
}

pub async fn get(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let text = bucket
        .settings
        .policy
        .clone()
        .ok_or_else(|| no_policy(&bucket.name))?;
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from(text))
        .map_err(S3Error::internal)
}

pub async fn put(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let body = read_small(req, crate::policy::MAX_POLICY_BYTES as u64 + 1).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| malformed(PolicyError("Policies must be UTF-8 JSON".into())))?;
    let policy = Policy::parse(text, &bucket.name).map_err(malformed)?;
    if bucket.settings.public_access_block().block_public_policy && policy.is_public() {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Public policies are blocked by this bucket's public access block",
        ));
    }
    let text = text.to_string();
    set_bucket_setting(app, req, StatusCode::NO_CONTENT, |name| {
        Command::SetBucketPolicy {
            name,
            policy: Some(text),
        }
    })
    .await
}

pub async fn delete(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    set_bucket_setting(app, req, StatusCode::NO_CONTENT, |name| {
        Command::SetBucketPolicy { name, policy: None }
    })
    .await
}

/// Public when its policy is (AWS's test) or its ACL grants everyone or
/// every signed-in user.
pub async fn status(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let public_policy = bucket
        .settings
        .policy
        .as_deref()
        .and_then(|text| Policy::parse(text, &bucket.name).ok())
        .is_some_and(|p| p.is_public());
    let public = public_policy || (!bucket.settings.acls_disabled() && bucket.acl.is_public());
    let mut w = XmlWriter::root("PolicyStatus");
    w.element("IsPublic", if public { "true" } else { "false" });
    w.close("PolicyStatus");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

//! Get/Put/DeleteBucketCors, CORS preflights (`OPTIONS`), and the CORS
//! headers of actual requests a bucket's rules allow.

use super::{
    S3Response, empty_response, load_bucket, request_bucket, set_bucket_setting, xml_response,
};
use crate::app::App;
use crate::meta::Command;
use crate::meta::query;
use crate::s3::body::read_small;
use crate::s3::cors::{self, CorsAsk};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::request::S3Request;
use http::{HeaderMap, StatusCode};

pub async fn get(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let rules = bucket.settings.cors.as_deref().ok_or_else(|| {
        S3Error::new(S3ErrorCode::NoSuchCORSConfiguration).detail("BucketName", &bucket.name)
    })?;
    Ok(xml_response(StatusCode::OK, cors::to_xml(rules)))
}

pub async fn put(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let body = read_small(req, 64 * 1024).await?;
    let rules = cors::parse(&body)?;
    set_bucket_setting(app, req, StatusCode::OK, |name| Command::SetBucketCors {
        name,
        cors: Some(rules),
    })
    .await
}

pub async fn delete(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    set_bucket_setting(app, req, StatusCode::NO_CONTENT, |name| {
        Command::SetBucketCors { name, cors: None }
    })
    .await
}

fn forbidden(message: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, message)
}

/// A browser's preflight: answered from the bucket's rules alone, without
/// credentials (browsers send none), 400 without an Origin or a method.
pub async fn preflight(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let origin = req
        .header("origin")
        .ok_or_else(|| S3Error::new(S3ErrorCode::BadRequest))?;
    let method = req.header("access-control-request-method").ok_or_else(|| {
        S3Error::with_message(
            S3ErrorCode::BadRequest,
            "Invalid Access-Control-Request-Method: null",
        )
    })?;
    let bucket = load_bucket(app, req.bucket()?).await?;
    let rules = bucket
        .settings
        .cors
        .as_deref()
        .ok_or_else(|| forbidden("CORSResponse: CORS is not enabled for this bucket."))?;
    let ask = CorsAsk {
        origin,
        method,
        headers: cors::requested_headers(&req.headers),
    };
    let rule = cors::find(rules, &ask).ok_or_else(|| {
        forbidden(
            "CORSResponse: This CORS request is not allowed. This is usually because the evaluation of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
        )
    })?;
    let mut response = empty_response(StatusCode::OK);
    cors::grant(response.headers_mut(), rule, &ask, true);
    Ok(response)
}

/// Adds the CORS headers a bucket's rules grant to the answer of an actual
/// (non-preflight) request from `origin`, errors included, so a browser can
/// read them. The method matched is `Access-Control-Request-Method` when the
/// request has one, else its own.
pub async fn decorate(
    app: &App,
    bucket: &str,
    request: &HeaderMap,
    method: &str,
    response: &mut HeaderMap,
) {
    let Some(origin) = request.get("origin").and_then(|v| v.to_str().ok()) else {
        return;
    };
    let name = bucket.to_string();
    let Ok(Some(record)) = app.meta.read(move |c| query::get_bucket(c, &name)).await else {
        return;
    };
    let Some(rules) = record.settings.cors.as_deref() else {
        return;
    };
    let method = request
        .get("access-control-request-method")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(method);
    let ask = CorsAsk {
        origin,
        method,
        headers: Vec::new(),
    };
    if let Some(rule) = cors::find(rules, &ask) {
        cors::grant(response, rule, &ask, false);
    }
}

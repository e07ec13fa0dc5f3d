//! The S3 entry point: one function from an HTTP request to an HTTP response.
//! It assigns the request id, runs addressing → operation → authentication →
//! handler, renders errors, stamps the common headers, and records metrics
//! and the access log line.

use crate::app::App;
use crate::auth::{self, RequestView};
use crate::s3::addressing;
use crate::s3::body::with_idle_timeout;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::handlers::{self, S3Response};
use crate::s3::operation::{Operation, RequestShape, classify};
use crate::s3::request::S3Request;
use crate::storage::BodyStream;
use axum::body::Body;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::header::HeaderValue;
use http::{Method, Request, Response, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tracing::Instrument;

pub const SERVER_NAME: &str = "BleepStore";

pub fn new_request_id() -> String {
    let raw = uuid::Uuid::new_v4();
    hex::encode_upper(&raw.as_bytes()[..8])
}

fn host_id() -> String {
    crate::checksum::base64_encode(uuid::Uuid::new_v4().as_bytes())
}

/// Converts any HTTP body into the byte stream the S3 layer consumes.
pub fn body_stream<B>(body: B) -> BodyStream
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    http_body_util::BodyStream::new(body)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
        .boxed()
}

pub async fn handle<B>(app: Arc<App>, request: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    let id = new_request_id();
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let span = tracing::info_span!("s3", request_id = %id, method = %method, path = %path);
    let _in_flight = InFlight::enter(&app.metrics.in_flight);
    // A browser's request (it has an Origin) gets the CORS headers its
    // bucket's rules grant, on errors too; only then is anything kept.
    let cors = cors_target(&app, &request);
    async {
        let (operation, result) = process(&app, request, &id).await;
        let mut response = match result {
            Ok(response) => response,
            Err(error) => error_response(&error, &path, &id, method == Method::HEAD),
        };
        if let Some((bucket, headers)) = &cors
            && operation != Some(Operation::CorsPreflight)
        {
            handlers::cors::decorate(
                &app,
                bucket,
                headers,
                method.as_str(),
                response.headers_mut(),
            )
            .await;
        }
        stamp_common_headers(&mut response, &id);
        let status = response.status().as_u16();
        let op_name = operation.map(Operation::name).unwrap_or("Unknown");
        let elapsed = started.elapsed();
        app.metrics
            .requests
            .get_or_create(&crate::metrics::RequestLabels {
                operation: op_name,
                status,
            })
            .inc();
        app.metrics
            .duration
            .get_or_create(&crate::metrics::OperationLabels { operation: op_name })
            .observe(elapsed.as_secs_f64());
        tracing::info!(
            operation = op_name,
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
        response
    }
    .instrument(span)
    .await
}

/// The bucket and headers of a request that carries an `Origin`.
fn cors_target<B>(app: &App, request: &Request<B>) -> Option<(String, http::HeaderMap)> {
    if !request.headers().contains_key("origin") {
        return None;
    }
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let target =
        addressing::resolve(host, request.uri().path(), &app.config.server.domains).ok()?;
    Some((target.bucket?, request.headers().clone()))
}

/// Counts a request as in flight until it is answered or abandoned.
struct InFlight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// AWS refuses requests whose header section exceeds 8 KiB.
const MAX_HEADER_SECTION: usize = 8 * 1024;

/// The header section's size as sent: `name: value\r\n` per header.
fn header_section_size(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

async fn process<B>(
    app: &App,
    request: Request<B>,
    id: &str,
) -> (Option<Operation>, Result<S3Response, S3Error>)
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    let (parts, body) = request.into_parts();
    if header_section_size(&parts.headers) > MAX_HEADER_SECTION {
        return (
            None,
            Err(S3Error::new(S3ErrorCode::RequestHeaderSectionTooLarge)
                .detail("MaxSizeAllowed", MAX_HEADER_SECTION.to_string())),
        );
    }
    let secure = parts.extensions.get::<crate::http::server::Tls>().is_some();
    let peer = parts
        .extensions
        .get::<crate::http::server::Peer>()
        .map(|p| p.0.ip());
    let raw_path = parts.uri.path();
    let raw_query = parts.uri.query().unwrap_or("");
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let target = match addressing::resolve(host, raw_path, &app.config.server.domains) {
        Ok(t) => t,
        Err(e) => return (None, Err(e)),
    };
    let query = auth::sigv4::parse_query(raw_query);
    let operation = match classify(&RequestShape {
        method: &parts.method,
        has_bucket: target.bucket.is_some(),
        has_key: target.key.is_some(),
        query: &query,
        has_copy_source: parts.headers.contains_key("x-amz-copy-source"),
    }) {
        Ok(op) => op,
        Err(e) => return (None, Err(e)),
    };
    // Browsers send preflights without credentials, and a presigned URL's
    // signature does not cover OPTIONS: the bucket's CORS rules decide.
    let checked = if operation == Operation::CorsPreflight {
        Ok(auth::Authenticated::anonymous())
    } else {
        auth::authenticate(
            &RequestView {
                method: parts.method.as_str(),
                raw_path,
                raw_query,
                headers: &parts.headers,
                virtual_host_bucket: target
                    .virtual_host
                    .then_some(target.bucket.as_deref())
                    .flatten(),
            },
            &app.credentials,
            &app.auth_settings,
            SystemTime::now(),
        )
    };
    let authenticated = match checked {
        Ok(a) => a,
        Err(e) => return (Some(operation), Err(e)),
    };
    let idle = Duration::from_secs(app.config.limits.body_idle_timeout_secs);
    let mut request = S3Request {
        id: id.to_string(),
        method: parts.method,
        headers: parts.headers,
        query,
        target,
        operation,
        access: crate::s3::access::Access::none(authenticated.requester.clone()),
        auth: authenticated,
        secure,
        peer,
        body: std::sync::Mutex::new(Some(with_idle_timeout(body_stream(body), idle))),
    };
    // Once per request, before anything reads metadata (DESIGN §7).
    if let Err(e) = app.cluster.read_barrier().await {
        return (Some(operation), Err(handlers::meta_error(e, "", None)));
    }
    // A form upload says who sends it inside its body: its handler
    // authorizes once the form is read.
    if operation != Operation::PostObject {
        request.access = match crate::s3::access::authorize(app, &request).await {
            Ok(access) => access,
            Err(e) => return (Some(operation), Err(e)),
        };
    }
    tracing::debug!(operation = operation.name(), "dispatching");
    let result = handlers::dispatch(app, &mut request).await;
    (Some(operation), result)
}

pub fn error_response(
    error: &S3Error,
    resource: &str,
    request_id: &str,
    head: bool,
) -> Response<Body> {
    let status = error.status();
    let body = if head || status == StatusCode::NOT_MODIFIED {
        Body::empty()
    } else {
        Body::from(error.to_xml(resource, request_id, &host_id()))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if status != StatusCode::NOT_MODIFIED {
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/xml"));
    }
    for (name, value) in &error.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
    if error.code == S3ErrorCode::InternalError || status.is_server_error() {
        tracing::warn!(code = error.code.as_str(), message = %error.message, "request failed");
    } else {
        tracing::debug!(code = error.code.as_str(), message = %error.message, "request refused");
    }
    response
}

fn stamp_common_headers(response: &mut Response<Body>, request_id: &str) {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amz-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&host_id()) {
        headers.insert("x-amz-id-2", v);
    }
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now())) {
        headers.insert(http::header::DATE, v);
    }
    headers.insert(http::header::SERVER, HeaderValue::from_static(SERVER_NAME));
}

//! Who sent a request: SigV4 header auth, presigned URLs, or nobody.
//! Streaming (`aws-chunked`) bodies keep a [`ChunkSigner`] to verify each
//! chunk as it arrives.

pub mod chunked;
mod credentials;
pub mod form;
pub mod sigv2;
pub mod sigv4;

pub use credentials::{Credentials, User};

use crate::acl::Requester;
use crate::s3::error::{S3Error, S3ErrorCode};
use http::HeaderMap;
use std::time::{Duration, SystemTime};
use subtle::ConstantTimeEq;

/// How the request body is protected, from `x-amz-content-sha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadMode {
    /// `UNSIGNED-PAYLOAD`, presigned URLs and anonymous requests.
    Unsigned,
    /// A hex SHA-256 the body must match.
    Sha256(String),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`: signed chunks.
    StreamingSigned { trailer: bool },
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: plain chunks, checksum trailer.
    StreamingUnsigned,
}

impl PayloadMode {
    pub fn is_chunked(&self) -> bool {
        matches!(
            self,
            PayloadMode::StreamingSigned { .. } | PayloadMode::StreamingUnsigned
        )
    }
}

/// What a chunk-signed body needs to check its chunks.
#[derive(Debug, Clone)]
pub struct ChunkSigner {
    pub key: [u8; 32],
    pub amz_date: String,
    pub scope: String,
    pub seed_signature: String,
}

#[derive(Debug, Clone)]
pub struct Authenticated {
    pub requester: Requester,
    pub payload: PayloadMode,
    pub chunk_signer: Option<ChunkSigner>,
    /// Presigned and anonymous requests cannot use some parameters.
    pub presigned: bool,
}

/// The parts of a request authentication looks at.
pub struct RequestView<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    /// The bucket, when it was addressed by host name (SigV2 signs it).
    pub virtual_host_bucket: Option<&'a str>,
}

pub struct AuthSettings {
    pub clock_skew: Duration,
    pub max_presign_expiry: Duration,
}

pub fn authenticate(
    request: &RequestView,
    credentials: &Credentials,
    settings: &AuthSettings,
    now: SystemTime,
) -> Result<Authenticated, S3Error> {
    if let Some(header) = request.headers.get(http::header::AUTHORIZATION) {
        let header = header
            .to_str()
            .map_err(|_| S3Error::new(S3ErrorCode::AuthorizationHeaderMalformed))?;
        if let Some(rest) = header.strip_prefix(sigv4::ALGORITHM) {
            return header_auth(request, rest, credentials, settings, now);
        }
        if let Some(rest) = header.strip_prefix("AWS ") {
            return v2_header_auth(request, rest, credentials, settings, now);
        }
        return Err(S3Error::invalid_argument("Unsupported Authorization Type")
            .detail("ArgumentName", "Authorization")
            .detail("ArgumentValue", header.chars().take(64).collect::<String>()));
    }
    let query = sigv4::parse_query(request.raw_query);
    if query.iter().any(|(k, _)| k == "X-Amz-Algorithm") {
        return presigned_auth(request, &query, credentials, settings, now);
    }
    if query.iter().any(|(k, _)| k == "AWSAccessKeyId") {
        return v2_presigned_auth(request, &query, credentials, settings, now);
    }
    Ok(Authenticated::anonymous())
}

impl Authenticated {
    /// A request that carries no credentials (or, like a CORS preflight,
    /// is answered without looking at them).
    pub fn anonymous() -> Self {
        Authenticated {
            requester: Requester::Anonymous,
            payload: PayloadMode::Unsigned,
            chunk_signer: None,
            presigned: false,
        }
    }
}

fn v2_verify(
    request: &RequestView,
    query: &[(String, String)],
    user: &User,
    date: &str,
    provided: &str,
) -> Result<(), S3Error> {
    let resource = sigv2::canonical_resource(
        request.raw_path,
        request.virtual_host_bucket,
        query,
        request.raw_query,
    );
    let string_to_sign = sigv2::string_to_sign(request.method, request.headers, date, &resource);
    let matches = |string_to_sign: &str| {
        let expected = sigv2::sign(user.secret_key.expose(), string_to_sign);
        bool::from(expected.as_bytes().ct_eq(provided.as_bytes()))
    };
    if matches(&string_to_sign) {
        return Ok(());
    }
    // A bucket-level request is signed as `/bucket` by some clients and as
    // `/bucket/` by others (botocore), whichever path they sent.
    if let Some(other) = sigv2::bucket_resource_variant(&resource)
        && matches(&sigv2::string_to_sign(
            request.method,
            request.headers,
            date,
            &other,
        ))
    {
        return Ok(());
    }
    Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch)
        .detail("AWSAccessKeyId", &user.access_key)
        .detail("StringToSign", string_to_sign)
        .detail("SignatureProvided", provided))
}

fn v2_header_auth(
    request: &RequestView,
    rest: &str,
    credentials: &Credentials,
    settings: &AuthSettings,
    now: SystemTime,
) -> Result<Authenticated, S3Error> {
    let (access_key, signature) = rest.trim().rsplit_once(':').ok_or_else(|| {
        S3Error::invalid_argument(
            "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
        )
    })?;
    let user = credentials.get(access_key).ok_or_else(|| {
        S3Error::new(S3ErrorCode::InvalidAccessKeyId).detail("AWSAccessKeyId", access_key)
    })?;
    // With x-amz-date present, it is signed among the amz headers and the
    // Date line is empty.
    let (date_line, request_time) = match header_str(request.headers, "x-amz-date") {
        Some(amz) => (
            String::new(),
            parse_http_date(&amz).or_else(|| parse_amz_date(&amz)),
        ),
        None => {
            let date = header_str(request.headers, "date").unwrap_or_default();
            let parsed = parse_http_date(&date);
            (date, parsed)
        }
    };
    let request_time = request_time.ok_or_else(|| {
        S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        )
    })?;
    check_skew(request_time, now, settings.clock_skew)?;
    let query = sigv4::parse_query(request.raw_query);
    v2_verify(request, &query, user, &date_line, signature)?;
    Ok(Authenticated {
        requester: Requester::User(user.owner.clone()),
        payload: PayloadMode::Unsigned,
        chunk_signer: None,
        presigned: false,
    })
}

fn v2_presigned_auth(
    request: &RequestView,
    query: &[(String, String)],
    credentials: &Credentials,
    settings: &AuthSettings,
    now: SystemTime,
) -> Result<Authenticated, S3Error> {
    let param = |name: &str| query_param(query, name);
    let (Some(access_key), Some(signature), Some(expires)) = (
        param("AWSAccessKeyId"),
        param("Signature"),
        param("Expires"),
    ) else {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        ));
    };
    let user = credentials.get(access_key).ok_or_else(|| {
        S3Error::new(S3ErrorCode::InvalidAccessKeyId).detail("AWSAccessKeyId", access_key)
    })?;
    let expires_at: u64 = expires.parse().map_err(|_| {
        S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Invalid date (should be seconds since epoch)",
        )
    })?;
    let now_secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if now_secs > expires_at {
        return Err(
            S3Error::with_message(S3ErrorCode::AccessDenied, "Request has expired")
                .detail("Expires", expires),
        );
    }
    if expires_at > now_secs + settings.max_presign_expiry.as_secs() + settings.clock_skew.as_secs()
    {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Request expiry is too far in the future",
        ));
    }
    v2_verify(request, query, user, expires, signature)?;
    Ok(Authenticated {
        requester: Requester::User(user.owner.clone()),
        payload: PayloadMode::Unsigned,
        chunk_signer: None,
        presigned: true,
    })
}

struct Scope {
    access_key: String,
    date: String,
    region: String,
    service: String,
}

impl Scope {
    fn parse(credential: &str) -> Option<Scope> {
        let mut parts = credential.rsplitn(5, '/');
        let terminator = parts.next()?;
        let service = parts.next()?;
        let region = parts.next()?;
        let date = parts.next()?;
        let access_key = parts.next()?;
        if terminator != "aws4_request" || date.len() != 8 || access_key.is_empty() {
            return None;
        }
        Some(Scope {
            access_key: access_key.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
        })
    }

    fn string(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

fn malformed_header(message: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::AuthorizationHeaderMalformed,
        format!("The authorization header is malformed; {message}"),
    )
}

fn header_auth(
    request: &RequestView,
    rest: &str,
    credentials: &Credentials,
    settings: &AuthSettings,
    now: SystemTime,
) -> Result<Authenticated, S3Error> {
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for component in rest.split(',') {
        let component = component.trim();
        if let Some(v) = component.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = component.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = component.strip_prefix("Signature=") {
            signature = Some(v);
        } else if !component.is_empty() {
            return Err(malformed_header(&format!(
                "unknown component {component:?}"
            )));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(malformed_header(
            "it must have Credential, SignedHeaders and Signature.",
        ));
    };
    let scope = Scope::parse(credential).ok_or_else(|| {
        malformed_header(
            "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
        )
    })?;
    if scope.service != "s3" {
        return Err(malformed_header(&format!(
            "incorrect service \"{}\". This endpoint belongs to \"s3\".",
            scope.service
        )));
    }
    let user = credentials.get(&scope.access_key).ok_or_else(|| {
        S3Error::new(S3ErrorCode::InvalidAccessKeyId).detail("AWSAccessKeyId", &scope.access_key)
    })?;

    let amz_date = request_date(request.headers)?;
    let request_time = parse_amz_date(&amz_date).ok_or_else(|| {
        S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        )
    })?;
    check_skew(request_time, now, settings.clock_skew)?;
    if !amz_date.starts_with(&scope.date) {
        return Err(malformed_header(&format!(
            "the credential date \"{}\" does not match the request date \"{}\".",
            scope.date,
            &amz_date[..8]
        )));
    }

    // S3 requires x-amz-content-sha256; generic SigV4 signers (curl) omit
    // it and sign the body's hash, which is known without reading only when
    // there is no body.
    let payload_hash = match header_str(request.headers, "x-amz-content-sha256") {
        Some(hash) => hash,
        None if !has_body(request.headers) => sigv4::EMPTY_SHA256.to_string(),
        None => {
            return Err(S3Error::invalid_request(
                "Missing required header for this request: x-amz-content-sha256",
            ));
        }
    };
    let payload = payload_mode(&payload_hash)?;

    let key = credentials.signing_key(user, &scope.date, &scope.region, &scope.service);
    let scope_string = scope.string();
    verify_signature(
        request,
        signed_headers,
        &payload_hash,
        None,
        &amz_date,
        &scope_string,
        &key,
        signature,
        &scope.access_key,
    )?;
    let chunk_signer =
        matches!(payload, PayloadMode::StreamingSigned { .. }).then(|| ChunkSigner {
            key,
            amz_date: amz_date.clone(),
            scope: scope_string,
            seed_signature: signature.to_string(),
        });
    Ok(Authenticated {
        requester: Requester::User(user.owner.clone()),
        payload,
        chunk_signer,
        presigned: false,
    })
}

fn payload_mode(value: &str) -> Result<PayloadMode, S3Error> {
    Ok(match value {
        "UNSIGNED-PAYLOAD" => PayloadMode::Unsigned,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => PayloadMode::StreamingSigned { trailer: false },
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
            PayloadMode::StreamingSigned { trailer: true }
        }
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => PayloadMode::StreamingUnsigned,
        hash if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            PayloadMode::Sha256(hash.to_ascii_lowercase())
        }
        _ => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
            )
            .detail("ArgumentName", "x-amz-content-sha256")
            .detail("ArgumentValue", value));
        }
    })
}

fn presigned_auth(
    request: &RequestView,
    query: &[(String, String)],
    credentials: &Credentials,
    settings: &AuthSettings,
    now: SystemTime,
) -> Result<Authenticated, S3Error> {
    let param = |name: &str| query_param(query, name);
    let query_error = |message: &str| {
        S3Error::with_message(S3ErrorCode::AuthorizationQueryParametersError, message)
    };
    if param("X-Amz-Algorithm") != Some(sigv4::ALGORITHM) {
        return Err(query_error(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let (Some(credential), Some(amz_date), Some(expires), Some(signed_headers), Some(signature)) = (
        param("X-Amz-Credential"),
        param("X-Amz-Date"),
        param("X-Amz-Expires"),
        param("X-Amz-SignedHeaders"),
        param("X-Amz-Signature"),
    ) else {
        return Err(query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
        ));
    };
    let scope = Scope::parse(credential).ok_or_else(|| {
        query_error("Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
    })?;
    let user = credentials.get(&scope.access_key).ok_or_else(|| {
        S3Error::new(S3ErrorCode::InvalidAccessKeyId).detail("AWSAccessKeyId", &scope.access_key)
    })?;
    let expires: i64 = expires
        .parse()
        .map_err(|_| query_error("X-Amz-Expires should be a number"))?;
    if expires <= 0 {
        return Err(
            S3Error::with_message(S3ErrorCode::AccessDenied, "Request has expired")
                .detail("X-Amz-Expires", expires.to_string()),
        );
    }
    let expires = expires as u64;
    if expires > settings.max_presign_expiry.as_secs() {
        // AWS refuses an over-long expiry as forbidden, not as malformed.
        return Err(query_error(&format!(
            "X-Amz-Expires must be less than a week (in seconds) that is; {}",
            settings.max_presign_expiry.as_secs()
        ))
        .with_status(http::StatusCode::FORBIDDEN));
    }
    let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
        query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    if signed_at > now + settings.clock_skew {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Request is not valid yet",
        ));
    }
    if now > signed_at + Duration::from_secs(expires) {
        return Err(
            S3Error::with_message(S3ErrorCode::AccessDenied, "Request has expired")
                .detail("X-Amz-Expires", expires.to_string()),
        );
    }
    if !amz_date.starts_with(&scope.date) {
        return Err(query_error("the credential date does not match X-Amz-Date"));
    }
    let payload_hash = param("X-Amz-Content-Sha256")
        .map(str::to_string)
        .unwrap_or_else(|| "UNSIGNED-PAYLOAD".to_string());
    let key = credentials.signing_key(user, &scope.date, &scope.region, &scope.service);
    verify_signature(
        request,
        signed_headers,
        &payload_hash,
        Some("X-Amz-Signature"),
        amz_date,
        &scope.string(),
        &key,
        signature,
        &scope.access_key,
    )?;
    Ok(Authenticated {
        requester: Requester::User(user.owner.clone()),
        payload: payload_mode(&payload_hash).unwrap_or(PayloadMode::Unsigned),
        chunk_signer: None,
        presigned: true,
    })
}

#[allow(clippy::too_many_arguments)]
fn verify_signature(
    request: &RequestView,
    signed_headers: &str,
    payload_hash: &str,
    exclude_param: Option<&str>,
    amz_date: &str,
    scope: &str,
    key: &[u8; 32],
    provided: &str,
    access_key: &str,
) -> Result<(), S3Error> {
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"host") {
        return Err(malformed_header("the host header must be signed."));
    }
    let headers: Vec<(String, String)> = names
        .iter()
        .map(|name| {
            let values: Vec<&[u8]> = request
                .headers
                .get_all(*name)
                .iter()
                .map(|v| v.as_bytes())
                .collect();
            (name.to_string(), sigv4::canonical_header_value(&values))
        })
        .collect();
    let query = sigv4::canonical_query(request.raw_query, exclude_param);
    // Clients encode paths slightly differently; S3 accepts the canonical
    // re-encoding and the path exactly as sent.
    let canonical_path = sigv4::canonical_uri(request.raw_path);
    let mut candidates = vec![canonical_path.clone()];
    if request.raw_path != canonical_path {
        candidates.push(request.raw_path.to_string());
    }
    let mut first_attempt = None;
    for uri in &candidates {
        let canonical = sigv4::CanonicalRequest {
            method: request.method,
            uri,
            query: &query,
            headers: &headers,
            signed_headers,
            payload_hash,
        }
        .render();
        let string_to_sign = sigv4::string_to_sign(amz_date, scope, &canonical);
        let expected = sigv4::sign(key, &string_to_sign);
        if bool::from(expected.as_bytes().ct_eq(provided.as_bytes())) {
            return Ok(());
        }
        first_attempt.get_or_insert((canonical, string_to_sign));
    }
    let (canonical, string_to_sign) = first_attempt.unwrap_or_default();
    tracing::debug!(%canonical, "signature mismatch");
    Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch)
        .detail("AWSAccessKeyId", access_key)
        .detail("StringToSign", string_to_sign)
        .detail("SignatureProvided", provided)
        .detail("CanonicalRequest", canonical))
}

fn query_param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || header_str(headers, "content-length").is_some_and(|l| l != "0")
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// `x-amz-date`, or failing that `Date`, as `YYYYMMDDTHHMMSSZ`.
fn request_date(headers: &HeaderMap) -> Result<String, S3Error> {
    if let Some(date) = header_str(headers, "x-amz-date") {
        return Ok(date);
    }
    let missing = || {
        S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        )
    };
    let date = header_str(headers, "date").ok_or_else(missing)?;
    let parsed = parse_http_date(&date).ok_or_else(missing)?;
    Ok(format_amz_date(parsed))
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT` and the other RFC 9110
/// forms), or an RFC 2822 date with a numeric zone (`… 08:49:37 -0000`), as
/// botocore writes the `Date` header.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s).ok().or_else(|| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc2822)
            .ok()
            .map(SystemTime::from)
    })
}

pub fn format_amz_date(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(s, &format).ok()?;
    Some(t.assume_utc().into())
}

fn check_skew(request_time: SystemTime, now: SystemTime, skew: Duration) -> Result<(), S3Error> {
    let difference = match now.duration_since(request_time) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    if difference > skew {
        return Err(S3Error::new(S3ErrorCode::RequestTimeTooSkewed)
            .detail("RequestTime", format_amz_date(request_time))
            .detail("ServerTime", format_amz_date(now))
            .detail("MaxAllowedSkewMilliseconds", skew.as_millis().to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

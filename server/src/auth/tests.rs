use super::*;
use bleepstore_config::Config;
use http::HeaderValue;

fn credentials() -> Credentials {
    let mut config = Config::default();
    config.auth.access_key = Some(bleepstore_config::Secret::new("AKID"));
    config.auth.secret_key = Some(bleepstore_config::Secret::new("SECRET"));
    Credentials::from_config(&config)
}

fn settings() -> AuthSettings {
    AuthSettings {
        clock_skew: Duration::from_secs(900),
        max_presign_expiry: Duration::from_secs(604800),
    }
}

/// Signs a GET the way a client would, returning its headers.
fn signed_headers(amz_date: &str, access_key: &str, secret: &str, path: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:9000"));
    headers.insert("x-amz-date", HeaderValue::from_str(amz_date).unwrap());
    headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static(sigv4::EMPTY_SHA256),
    );
    let canonical_headers = vec![
        ("host".to_string(), "127.0.0.1:9000".to_string()),
        (
            "x-amz-content-sha256".to_string(),
            sigv4::EMPTY_SHA256.to_string(),
        ),
        ("x-amz-date".to_string(), amz_date.to_string()),
    ];
    let canonical = sigv4::CanonicalRequest {
        method: "GET",
        uri: &sigv4::canonical_uri(path),
        query: "",
        headers: &canonical_headers,
        signed_headers: "host;x-amz-content-sha256;x-amz-date",
        payload_hash: sigv4::EMPTY_SHA256,
    }
    .render();
    let scope = format!("{}/us-east-1/s3/aws4_request", &amz_date[..8]);
    let sts = sigv4::string_to_sign(amz_date, &scope, &canonical);
    let key = sigv4::signing_key(secret, &amz_date[..8], "us-east-1", "s3");
    let signature = sigv4::sign(&key, &sts);
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!(
            "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}"
        ))
        .unwrap(),
    );
    headers
}

fn run(
    headers: &HeaderMap,
    path: &str,
    query: &str,
    now: SystemTime,
) -> Result<Authenticated, S3Error> {
    authenticate(
        &RequestView {
            method: "GET",
            raw_path: path,
            raw_query: query,
            headers,
            virtual_host_bucket: None,
        },
        &credentials(),
        &settings(),
        now,
    )
}

#[test]
fn accepts_a_correct_signature_and_rejects_tampering() {
    let now = SystemTime::now();
    let date = format_amz_date(now);
    let headers = signed_headers(&date, "AKID", "SECRET", "/bucket/a%20key");
    let ok = run(&headers, "/bucket/a%20key", "", now).unwrap();
    assert!(matches!(ok.requester, Requester::User(_)));
    assert_eq!(ok.payload, PayloadMode::Sha256(sigv4::EMPTY_SHA256.into()));

    let err = run(&headers, "/bucket/other", "", now).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);

    let wrong_secret = signed_headers(&date, "AKID", "WRONG", "/bucket/a%20key");
    let err = run(&wrong_secret, "/bucket/a%20key", "", now).unwrap_err();
    assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);

    let unknown = signed_headers(&date, "NOBODY", "SECRET", "/");
    assert_eq!(
        run(&unknown, "/", "", now).unwrap_err().code,
        S3ErrorCode::InvalidAccessKeyId
    );
}

#[test]
fn rejects_skewed_clocks() {
    let now = SystemTime::now();
    let old = format_amz_date(now - Duration::from_secs(16 * 60));
    let headers = signed_headers(&old, "AKID", "SECRET", "/");
    assert_eq!(
        run(&headers, "/", "", now).unwrap_err().code,
        S3ErrorCode::RequestTimeTooSkewed
    );
    let recent = format_amz_date(now - Duration::from_secs(14 * 60));
    let headers = signed_headers(&recent, "AKID", "SECRET", "/");
    assert!(run(&headers, "/", "", now).is_ok());
}

#[test]
fn malformed_headers_get_specific_errors() {
    let now = SystemTime::now();
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("h"));
    headers.insert(
        "authorization",
        HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKID/2024/us-east-1/s3/aws4_request"),
    );
    assert_eq!(
        run(&headers, "/", "", now).unwrap_err().code,
        S3ErrorCode::AuthorizationHeaderMalformed
    );
    headers.insert("authorization", HeaderValue::from_static("AWS AKID:sig"));
    headers.insert(
        "date",
        HeaderValue::from_str(&httpdate::fmt_http_date(now)).unwrap(),
    );
    assert_eq!(
        run(&headers, "/", "", now).unwrap_err().code,
        S3ErrorCode::SignatureDoesNotMatch
    );
    headers.insert("authorization", HeaderValue::from_static("Bearer x"));
    assert_eq!(
        run(&headers, "/", "", now).unwrap_err().code,
        S3ErrorCode::InvalidArgument
    );
}

#[test]
fn no_credentials_is_anonymous() {
    let headers = HeaderMap::new();
    let auth = run(&headers, "/", "", SystemTime::now()).unwrap();
    assert_eq!(auth.requester, Requester::Anonymous);
}

#[test]
fn presigned_urls_expire_and_have_limits() {
    let signed_at = SystemTime::now() - Duration::from_secs(120);
    let date = format_amz_date(signed_at);
    let scope = format!("{}/us-east-1/s3/aws4_request", &date[..8]);
    let presign = |expires: u64| {
        let query_unsigned = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host",
            sigv4::uri_encode(format!("AKID/{scope}").as_bytes(), false)
        );
        let canonical_headers = vec![("host".to_string(), "h".to_string())];
        let canonical = sigv4::CanonicalRequest {
            method: "GET",
            uri: "/b/k",
            query: &sigv4::canonical_query(&query_unsigned, None),
            headers: &canonical_headers,
            signed_headers: "host",
            payload_hash: "UNSIGNED-PAYLOAD",
        }
        .render();
        let sts = sigv4::string_to_sign(&date, &scope, &canonical);
        let key = sigv4::signing_key("SECRET", &date[..8], "us-east-1", "s3");
        format!(
            "{query_unsigned}&X-Amz-Signature={}",
            sigv4::sign(&key, &sts)
        )
    };
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("h"));
    let now = SystemTime::now();
    let ok = run(&headers, "/b/k", &presign(3600), now).unwrap();
    assert!(ok.presigned);
    assert_eq!(
        run(&headers, "/b/k", &presign(60), now).unwrap_err().code,
        S3ErrorCode::AccessDenied,
        "expired"
    );
    assert_eq!(
        run(&headers, "/b/k", &presign(604801), now)
            .unwrap_err()
            .code,
        S3ErrorCode::AuthorizationQueryParametersError
    );
    let tampered = presign(3600).replace("X-Amz-Expires=3600", "X-Amz-Expires=3601");
    assert_eq!(
        run(&headers, "/b/k", &tampered, now).unwrap_err().code,
        S3ErrorCode::SignatureDoesNotMatch
    );
}

#[test]
fn sigv2_header_and_presigned() {
    let now = SystemTime::now();
    let date = httpdate::fmt_http_date(now);
    let mut headers = HeaderMap::new();
    headers.insert("date", HeaderValue::from_str(&date).unwrap());
    let sts = format!("GET\n\n\n{date}\n/b/k");
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("AWS AKID:{}", sigv2::sign("SECRET", &sts))).unwrap(),
    );
    assert!(matches!(
        run(&headers, "/b/k", "", now).unwrap().requester,
        Requester::User(_)
    ));

    let expires = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 60;
    let sts = format!("GET\n\n\n{expires}\n/b/k");
    let signature = sigv4::uri_encode(sigv2::sign("SECRET", &sts).as_bytes(), false);
    let query = format!("AWSAccessKeyId=AKID&Expires={expires}&Signature={signature}");
    let empty = HeaderMap::new();
    assert!(run(&empty, "/b/k", &query, now).unwrap().presigned);
    let later = now + Duration::from_secs(120);
    assert_eq!(
        run(&empty, "/b/k", &query, later).unwrap_err().code,
        S3ErrorCode::AccessDenied
    );
    assert_eq!(
        run(&empty, "/b/other", &query, now).unwrap_err().code,
        S3ErrorCode::SignatureDoesNotMatch
    );
}

#[test]
fn dates_with_a_numeric_zone_are_http_dates() {
    let gmt = parse_http_date("Wed, 02 Dec 2026 02:40:00 GMT").unwrap();
    assert_eq!(
        parse_http_date("Wed, 02 Dec 2026 02:40:00 -0000"),
        Some(gmt)
    );
    assert_eq!(
        parse_http_date("Wed, 02 Dec 2026 02:40:00 +0000"),
        Some(gmt)
    );
    assert_eq!(parse_http_date("yesterday"), None);
}

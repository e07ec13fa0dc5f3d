//! Object metadata carried in headers: reading it from PUT/COPY/CreateMultipartUpload
//! requests, writing it on GET/HEAD responses.

use crate::acl::{Acl, CannedAcl, Grant, Grantee, Owner, Permission};
use crate::auth::Credentials;
use crate::meta::model::ObjectMeta;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::request::S3Request;
use bleepstore_config::STORAGE_CLASSES;
use http::HeaderMap;
use http::header::HeaderValue;
use std::collections::BTreeMap;

/// S3's limit on the total size of user metadata.
const MAX_USER_METADATA: usize = 2048;

/// Content headers, user metadata and storage class from a write request.
/// The owner, ACL and checksum are filled in by the caller.
pub fn object_meta_from_headers(req: &S3Request) -> S3Result<ObjectMeta> {
    let text = |name: &str| req.header(name).map(str::to_string);
    let storage_class = match req.header("x-amz-storage-class") {
        None => "STANDARD".to_string(),
        Some(class) if STORAGE_CLASSES.contains(&class) => class.to_string(),
        Some(_) => return Err(S3Error::new(S3ErrorCode::InvalidStorageClass)),
    };
    Ok(ObjectMeta {
        content_type: text("content-type"),
        content_encoding: req
            .header("content-encoding")
            .map(|v| {
                // aws-chunked is a transfer detail, not part of the object.
                v.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty() && *e != "aws-chunked")
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|v| !v.is_empty()),
        content_disposition: text("content-disposition"),
        content_language: text("content-language"),
        cache_control: text("cache-control"),
        expires: text("expires"),
        website_redirect: website_redirect(req)?,
        user: user_metadata(&req.headers)?,
        storage_class,
        tags: match req.header("x-amz-tagging") {
            Some(value) => crate::s3::tags::from_header(value)?,
            None => Vec::new(),
        },
        ..Default::default()
    })
}

/// `x-amz-website-redirect-location` is stored and returned as S3 does;
/// S3 accepts only a path or an http(s) URL of at most 2 KiB.
fn website_redirect(req: &S3Request) -> S3Result<Option<String>> {
    let Some(value) = req.header("x-amz-website-redirect-location") else {
        return Ok(None);
    };
    let valid = value.len() <= 2048
        && (value.starts_with('/')
            || value.starts_with("http://")
            || value.starts_with("https://"));
    if !valid {
        return Err(S3Error::invalid_argument(
            "The website redirect location must have a prefix of 'http://' or 'https://' or '/'.",
        )
        .detail("ArgumentName", "x-amz-website-redirect-location")
        .detail("ArgumentValue", value));
    }
    Ok(Some(value.to_string()))
}

/// A header value's bytes as text: UTF-8 when they are (what most clients
/// send), else ISO-8859-1, one char per byte.
pub fn header_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// How a stored header text goes out: ASCII as it is, text within
/// ISO-8859-1 as those bytes (what HTTP clients decode header bytes as, so
/// `é` reads back as `é`), anything else MIME-encoded as RFC 2047 UTF-8
/// (`=?UTF-8?B?…?=`), as AWS returns such metadata.
pub fn header_bytes(text: &str) -> Vec<u8> {
    if let Ok(latin1) = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)))
        .collect::<Result<Vec<u8>, _>>()
    {
        return latin1;
    }
    format!(
        "=?UTF-8?B?{}?=",
        crate::checksum::base64_encode(text.as_bytes())
    )
    .into_bytes()
}

/// The items of a comma-separated list header (every occurrence of it),
/// trimmed, empty items dropped.
pub fn comma_list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub fn user_metadata(headers: &HeaderMap) -> S3Result<BTreeMap<String, String>> {
    let mut user = BTreeMap::new();
    let mut total = 0;
    for (name, value) in headers {
        if let Some(suffix) = name.as_str().strip_prefix("x-amz-meta-") {
            total += suffix.len() + value.as_bytes().len();
            let value = header_text(value.as_bytes());
            user.entry(suffix.to_string())
                .and_modify(|existing: &mut String| {
                    existing.push(',');
                    existing.push_str(&value)
                })
                .or_insert(value);
        }
    }
    if total > MAX_USER_METADATA {
        return Err(S3Error::new(S3ErrorCode::MetadataTooLarge)
            .detail("MaxMessageLengthBytes", MAX_USER_METADATA.to_string()));
    }
    Ok(user)
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// Headers describing a stored object on GET and HEAD responses.
pub fn write_object_headers(
    headers: &mut HeaderMap,
    meta: &ObjectMeta,
    etag: &str,
    modified_ms: i64,
) {
    insert(headers, "etag", etag);
    insert(headers, "last-modified", &http_date(modified_ms));
    insert(
        headers,
        "content-type",
        meta.content_type
            .as_deref()
            .unwrap_or("binary/octet-stream"),
    );
    let optional = [
        ("content-encoding", &meta.content_encoding),
        ("content-disposition", &meta.content_disposition),
        ("content-language", &meta.content_language),
        ("cache-control", &meta.cache_control),
        ("expires", &meta.expires),
        ("x-amz-website-redirect-location", &meta.website_redirect),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            insert(headers, name, value);
        }
    }
    for (key, value) in &meta.user {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(format!("x-amz-meta-{key}").as_bytes()),
            HeaderValue::from_bytes(&header_bytes(value)),
        ) {
            headers.insert(name, value);
        }
    }
    if meta.storage_class != "STANDARD" {
        insert(headers, "x-amz-storage-class", &meta.storage_class);
    }
    if !meta.tags.is_empty() {
        insert(headers, "x-amz-tagging-count", &meta.tags.len().to_string());
    }
    crate::s3::sse::write_response_headers(headers, meta.encryption.as_ref());
    crate::s3::object_lock::write_response_headers(headers, meta);
    insert(headers, "accept-ranges", "bytes");
}

/// `response-content-type` and friends override the stored headers on GET.
pub fn apply_response_overrides(req: &S3Request, headers: &mut HeaderMap) -> S3Result<()> {
    const OVERRIDES: [(&str, &str); 6] = [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ];
    for (param, header) in OVERRIDES {
        if let Some(value) = req.param(param) {
            if matches!(req.requester(), crate::acl::Requester::Anonymous) {
                return Err(S3Error::invalid_request(
                    "Request specific response headers cannot be used for anonymous GET requests.",
                ));
            }
            let value = HeaderValue::from_str(value)
                .map_err(|_| S3Error::invalid_argument(format!("Invalid value for {param}")))?;
            headers.insert(header, value);
        }
    }
    Ok(())
}

pub fn http_date(ms: i64) -> String {
    httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64),
    )
}

/// The ACL a write request asks for: a canned `x-amz-acl`, `x-amz-grant-*`
/// headers, or (neither) the default private ACL.
pub fn acl_from_headers(
    req: &S3Request,
    owner: &Owner,
    bucket_owner: Option<&Owner>,
    credentials: &Credentials,
) -> S3Result<Option<Acl>> {
    let canned = req.header("x-amz-acl");
    let grant_headers: Vec<(&str, Permission)> = [
        ("x-amz-grant-read", Permission::Read),
        ("x-amz-grant-write", Permission::Write),
        ("x-amz-grant-read-acp", Permission::ReadAcp),
        ("x-amz-grant-write-acp", Permission::WriteAcp),
        ("x-amz-grant-full-control", Permission::FullControl),
    ]
    .into_iter()
    .filter_map(|(name, p)| req.header(name).map(|v| (v, p)))
    .collect();
    if canned.is_some() && !grant_headers.is_empty() {
        return Err(S3Error::invalid_request(
            "Specifying both Canned ACLs and Header Grants is not allowed",
        ));
    }
    if let Some(canned) = canned {
        let canned = CannedAcl::parse(canned.trim()).ok_or_else(|| {
            S3Error::invalid_argument(format!("Invalid canned ACL {canned:?}"))
                .detail("ArgumentName", "x-amz-acl")
        })?;
        return Ok(Some(canned.to_acl(owner, bucket_owner)));
    }
    if grant_headers.is_empty() {
        return Ok(None);
    }
    let mut grants = Vec::new();
    for (value, permission) in grant_headers {
        for grantee in value.split(',') {
            let grantee = grantee.trim();
            if grantee.is_empty() {
                continue;
            }
            let (kind, raw) = grantee
                .split_once('=')
                .ok_or_else(|| S3Error::invalid_argument(format!("Invalid grantee {grantee:?}")))?;
            let raw = raw.trim().trim_matches('"');
            let grantee = match kind.trim().to_ascii_lowercase().as_str() {
                "id" => resolve_user_id(raw, credentials)?,
                "uri" => resolve_group(raw)?,
                "emailaddress" => resolve_email(raw, credentials)?,
                other => {
                    return Err(S3Error::invalid_argument(format!(
                        "Invalid grantee type {other:?}"
                    )));
                }
            };
            grants.push(Grant {
                grantee,
                permission,
            });
        }
    }
    Ok(Some(Acl {
        owner: owner.clone(),
        grants,
    }))
}

pub fn resolve_user_id(id: &str, credentials: &Credentials) -> S3Result<Grantee> {
    let user = credentials.by_owner_id(id).ok_or_else(|| {
        S3Error::invalid_argument("Invalid id")
            .detail("ArgumentName", "CanonicalUser/ID")
            .detail("ArgumentValue", id)
    })?;
    Ok(Grantee::User {
        id: user.owner.id.clone(),
        display_name: user.owner.display_name.clone(),
    })
}

pub fn resolve_email(email: &str, credentials: &Credentials) -> S3Result<Grantee> {
    let user = credentials.by_email(email).ok_or_else(|| {
        S3Error::new(S3ErrorCode::UnresolvableGrantByEmailAddress).detail("EmailAddress", email)
    })?;
    Ok(Grantee::User {
        id: user.owner.id.clone(),
        display_name: user.owner.display_name.clone(),
    })
}

pub fn resolve_group(uri: &str) -> S3Result<Grantee> {
    match uri {
        crate::acl::ALL_USERS | crate::acl::AUTHENTICATED_USERS | crate::acl::LOG_DELIVERY => {
            Ok(Grantee::Group {
                uri: uri.to_string(),
            })
        }
        _ => Err(S3Error::invalid_argument("Invalid group uri").detail("ArgumentValue", uri)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_go_out_as_clients_read_them() {
        assert_eq!(header_bytes(&header_text(b"plain")), b"plain");
        // Latin-1 or UTF-8 in, Latin-1 out: HTTP clients decode it as é.
        assert_eq!(
            header_bytes(&header_text(b"Hello World\xe9")),
            b"Hello World\xe9"
        );
        assert_eq!(
            header_bytes(&header_text("Hello World\u{e9}".as_bytes())),
            b"Hello World\xe9"
        );
        // Beyond Latin-1: RFC 2047.
        assert_eq!(header_bytes("\u{2713}"), b"=?UTF-8?B?4pyT?=");
    }
}

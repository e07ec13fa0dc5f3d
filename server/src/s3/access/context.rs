//! The condition keys a request offers bucket policies (lower-cased, as
//! policy conditions name them).

use crate::acl::Requester;
use crate::meta::model::Tag;
use crate::s3::request::S3Request;
use std::collections::HashMap;
use std::time::SystemTime;
use time::OffsetDateTime;

pub type Keys = HashMap<String, Vec<String>>;

/// Headers offered as `s3:<header>` keys when present.
const HEADER_KEYS: &[&str] = &[
    "x-amz-acl",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-storage-class",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-content-sha256",
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
];

/// Query parameters of listings offered as `s3:<name>` keys.
const LIST_KEYS: &[&str] = &["prefix", "delimiter", "max-keys"];

pub fn request_keys(req: &S3Request, now: SystemTime) -> Keys {
    let mut keys = Keys::new();
    let mut put = |key: &str, value: String| {
        keys.entry(key.to_string()).or_default().push(value);
    };
    let now = OffsetDateTime::from(now);
    if let Ok(current) = now.format(&time::format_description::well_known::Rfc3339) {
        put("aws:currenttime", current);
    }
    put("aws:epochtime", now.unix_timestamp().to_string());
    put("aws:securetransport", req.secure.to_string());
    if let Some(ip) = req.peer {
        put("aws:sourceip", ip.to_string());
    }
    for (header, key) in [("user-agent", "aws:useragent"), ("referer", "aws:referer")] {
        if let Some(value) = req.header(header) {
            put(key, value.to_string());
        }
    }
    match req.requester() {
        Requester::User(owner) => {
            put("aws:username", owner.display_name.clone());
            put("aws:userid", owner.id.clone());
            put("aws:principalaccount", owner.id.clone());
            put("aws:principaltype", "User".into());
            put(
                "aws:principalarn",
                format!("arn:aws:iam::{}:user/{}", owner.id, owner.display_name),
            );
        }
        Requester::Anonymous => put("aws:principaltype", "Anonymous".into()),
    }
    for header in HEADER_KEYS {
        if let Some(value) = req.header(header) {
            put(&format!("s3:{header}"), value.trim().to_string());
        }
    }
    if req.target.key.is_none() {
        for name in LIST_KEYS {
            if let Some(value) = req.param(name) {
                put(&format!("s3:{name}"), value.to_string());
            }
        }
    }
    if let Some(version) = req.param("versionId") {
        put("s3:versionid", version.to_string());
    }
    put(
        "s3:authtype",
        if req.auth.presigned {
            "REST-QUERY-STRING"
        } else {
            "REST-HEADER"
        }
        .into(),
    );
    if let Some(tagging) = req.header("x-amz-tagging") {
        add_request_tags(&mut keys, &parse_tagging_header(tagging));
    }
    keys
}

/// `s3:RequestObjectTag/<key>` and `s3:RequestObjectTagKeys` for tags a
/// request sets.
pub fn add_request_tags(keys: &mut Keys, tags: &[Tag]) {
    for tag in tags {
        keys.entry(format!(
            "s3:requestobjecttag/{}",
            tag.key.to_ascii_lowercase()
        ))
        .or_default()
        .push(tag.value.clone());
        keys.entry("s3:requestobjecttagkeys".into())
            .or_default()
            .push(tag.key.clone());
    }
}

/// `s3:ExistingObjectTag/<key>` for the tags of the object a request is about.
pub fn add_existing_tags(keys: &mut Keys, tags: &[Tag]) {
    for tag in tags {
        keys.entry(format!(
            "s3:existingobjecttag/{}",
            tag.key.to_ascii_lowercase()
        ))
        .or_default()
        .push(tag.value.clone());
    }
}

/// `x-amz-tagging`, decoded as the write itself decodes it; a malformed
/// header offers no tags here (the handler refuses it).
fn parse_tagging_header(value: &str) -> Vec<Tag> {
    crate::s3::tags::from_header(value).unwrap_or_default()
}

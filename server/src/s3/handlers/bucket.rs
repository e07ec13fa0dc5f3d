//! Bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket,
//! GetBucketLocation.

use super::{
    S3Response, empty_response, load_bucket, meta_error, now_ms, request_bucket,
    require_authenticated, xml_response,
};
use crate::acl::Acl;
use crate::app::App;
use crate::meta::model::{
    BucketRecord, BucketSettings, ObjectLockConfig, ObjectOwnership, Versioning,
};
use crate::meta::{Command, MetaError, query};
use crate::s3::access::ownership;
use crate::s3::body::read_small;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::headers::acl_from_headers;
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlWriter};
use http::StatusCode;
use serde::Deserialize;

/// S3's bucket naming rules (general purpose buckets).
pub fn validate_bucket_name(name: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&name.len()) {
        return Err("Bucket names must be between 3 and 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(
            "Bucket names can consist only of lowercase letters, numbers, dots and hyphens",
        );
    }
    let first = name.as_bytes()[0];
    let last = name.as_bytes()[name.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err("Bucket names must begin and end with a letter or number");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Err(
            "Bucket names must not contain two adjacent periods or a period next to a hyphen",
        );
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("Bucket names must not be formatted as an IP address");
    }
    if name.starts_with("xn--") || name.starts_with("sthree-") || name.starts_with("amzn-s3-demo-")
    {
        return Err("Bucket names must not start with a reserved prefix");
    }
    if name.ends_with("-s3alias")
        || name.ends_with("--ol-s3")
        || name.ends_with(".mrap")
        || name.ends_with("--x-s3")
    {
        return Err("Bucket names must not end with a reserved suffix");
    }
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateBucketConfiguration {
    #[serde(default)]
    location_constraint: Option<String>,
}

pub async fn list_buckets(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let owner = require_authenticated(req)?.clone();
    let owner_id = owner.id.clone();
    let buckets = app
        .meta
        .read(move |c| query::list_buckets(c, &owner_id))
        .await
        .map_err(|e| meta_error(e, "", None))?;
    let prefix = req.param("prefix").unwrap_or_default().to_string();
    let max: usize = match req.int_param("max-buckets")? {
        Some(n) if (1..=10000).contains(&n) => n as usize,
        Some(_) => {
            return Err(
                S3Error::invalid_argument("max-buckets must be between 1 and 10000")
                    .detail("ArgumentName", "max-buckets"),
            );
        }
        None => usize::MAX,
    };
    let after = req.param("continuation-token").map(str::to_string);
    let mut selected = buckets
        .iter()
        .filter(|b| b.name.starts_with(&prefix))
        .filter(|b| after.as_deref().is_none_or(|a| b.name.as_str() > a));
    let page: Vec<&BucketRecord> = selected.by_ref().take(max).collect();
    let more = selected.next().is_some();

    let mut w = XmlWriter::root("ListAllMyBucketsResult");
    w.owner("Owner", &owner);
    w.open("Buckets");
    for bucket in &page {
        w.open("Bucket");
        w.element("Name", &bucket.name);
        w.element("CreationDate", &xml::timestamp(bucket.created_ms));
        w.element("BucketRegion", &bucket.region);
        w.close("Bucket");
    }
    w.close("Buckets");
    if more && let Some(last) = page.last() {
        w.element("ContinuationToken", &last.name);
    }
    if !prefix.is_empty() {
        w.element("Prefix", &prefix);
    }
    w.close("ListAllMyBucketsResult");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

pub async fn create(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let owner = require_authenticated(req)?.clone();
    let name = req.bucket()?.to_string();
    validate_bucket_name(&name).map_err(|why| {
        S3Error::with_message(S3ErrorCode::InvalidBucketName, why).detail("BucketName", &name)
    })?;
    let body = read_small(req, 64 * 1024).await?;
    let region = if body.iter().all(u8::is_ascii_whitespace) {
        app.config.server.region.clone()
    } else {
        let config: CreateBucketConfiguration = xml::parse(&body, "CreateBucketConfiguration")?;
        match config.location_constraint.map(|l| l.trim().to_string()) {
            None => app.config.server.region.clone(),
            Some(l) if l.is_empty() => app.config.server.region.clone(),
            Some(l)
                if l.len() <= 64 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                l
            }
            Some(l) => {
                return Err(S3Error::new(S3ErrorCode::InvalidLocationConstraint)
                    .detail("LocationConstraint", l));
            }
        }
    };
    let acl = acl_from_headers(req, &owner, None, &app.credentials)?
        .unwrap_or_else(|| Acl::private(&owner));
    // Object lock can be enabled at creation; it turns versioning on.
    let settings = match req
        .header("x-amz-bucket-object-lock-enabled")
        .map(str::trim)
    {
        None => BucketSettings::default(),
        Some(v) if v.eq_ignore_ascii_case("false") => BucketSettings::default(),
        Some(v) if v.eq_ignore_ascii_case("true") => BucketSettings {
            versioning: Versioning::Enabled,
            object_lock: Some(ObjectLockConfig::default()),
            ..Default::default()
        },
        Some(v) => {
            return Err(S3Error::invalid_argument(format!(
                "Invalid value for x-amz-bucket-object-lock-enabled: {v}"
            )));
        }
    };
    let mut settings = settings;
    if let Some(value) = req.header("x-amz-object-ownership") {
        let ownership = super::public_access::parse_ownership(value)?;
        if ownership == ObjectOwnership::BucketOwnerEnforced && ownership::grants_others(&acl) {
            return Err(S3Error::new(
                S3ErrorCode::InvalidBucketAclWithObjectOwnership,
            ));
        }
        settings.ownership = Some(ownership);
    }
    let record = BucketRecord {
        name: name.clone(),
        owner,
        region,
        created_ms: now_ms(),
        acl: acl.clone(),
        settings,
    };
    match app.cluster.write(Command::CreateBucket(record)).await {
        Ok(_) => {}
        // As in S3's us-east-1: re-creating a bucket you own with the same
        // ACL succeeds and changes nothing; asking for another ACL is a
        // conflict. Elsewhere it is BucketAlreadyOwnedByYou.
        Err(MetaError::BucketExists {
            owned_by_requester: true,
        }) if app.config.server.region == "us-east-1" => {
            let existing = load_bucket(app, &name).await?;
            if existing.acl != acl {
                return Err(
                    S3Error::new(S3ErrorCode::BucketAlreadyExists).detail("BucketName", &name)
                );
            }
        }
        Err(e) => return Err(meta_error(e, &name, None)),
    }
    let mut response = empty_response(StatusCode::OK);
    if let Ok(location) = http::HeaderValue::from_str(&format!("/{name}")) {
        response.headers_mut().insert("location", location);
    }
    Ok(response)
}

pub async fn delete(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let name = req.bucket()?.to_string();
    app.cluster
        .write(Command::DeleteBucket { name: name.clone() })
        .await
        .map_err(|e| meta_error(e, &name, None))?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn head(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let mut response = empty_response(StatusCode::OK);
    if let Ok(region) = http::HeaderValue::from_str(&bucket.region) {
        response.headers_mut().insert("x-amz-bucket-region", region);
    }
    Ok(response)
}

pub async fn location(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let mut w = XmlWriter::document();
    w.open_with("LocationConstraint", &[("xmlns", xml::S3_NAMESPACE)]);
    // S3 reports the default region us-east-1 as an empty constraint.
    if bucket.region != "us-east-1" {
        w.text(&bucket.region);
    }
    w.close("LocationConstraint");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

#[cfg(test)]
mod tests {
    use super::validate_bucket_name;

    #[test]
    fn bucket_name_rules() {
        for good in [
            "abc",
            "my-bucket",
            "my.bucket.1",
            "a1b",
            &"a".repeat(63),
            "192.168.1.1a",
        ] {
            assert!(validate_bucket_name(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "my_bucket",
            "-abc",
            "abc-",
            ".abc",
            "a..b",
            "a.-b",
            "a-.b",
            "192.168.1.1",
            "xn--abc",
            "abc-s3alias",
            "abc--ol-s3",
            "sthree-x",
            "ab c",
            "日本語",
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }
}

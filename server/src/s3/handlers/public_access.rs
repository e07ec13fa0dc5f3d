//! Put/Get/DeletePublicAccessBlock and Put/Get/DeleteBucketOwnershipControls:
//! stored settings that `s3::access` applies to policies and ACLs.

use super::{S3Response, request_bucket, set_bucket_setting, xml_response};
use crate::app::App;
use crate::meta::Command;
use crate::meta::model::{ObjectOwnership, PublicAccessBlock};
use crate::s3::access::ownership;
use crate::s3::body::read_small;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlWriter};
use http::StatusCode;
use serde::Deserialize;

const MAX_DOCUMENT: u64 = 16 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublicAccessBlockConfiguration {
    block_public_acls: Option<String>,
    ignore_public_acls: Option<String>,
    block_public_policy: Option<String>,
    restrict_public_buckets: Option<String>,
}

fn flag(value: Option<String>) -> S3Result<bool> {
    match value.as_deref().map(str::trim) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(S3Error::new(S3ErrorCode::MalformedXML)),
    }
}

pub async fn get_block(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let block = bucket.settings.public_access_block.ok_or_else(|| {
        S3Error::new(S3ErrorCode::NoSuchPublicAccessBlockConfiguration)
            .detail("BucketName", &bucket.name)
    })?;
    let mut w = XmlWriter::root("PublicAccessBlockConfiguration");
    for (name, on) in [
        ("BlockPublicAcls", block.block_public_acls),
        ("IgnorePublicAcls", block.ignore_public_acls),
        ("BlockPublicPolicy", block.block_public_policy),
        ("RestrictPublicBuckets", block.restrict_public_buckets),
    ] {
        w.element(name, if on { "true" } else { "false" });
    }
    w.close("PublicAccessBlockConfiguration");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

pub async fn put_block(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let body = read_small(req, MAX_DOCUMENT).await?;
    let config: PublicAccessBlockConfiguration =
        xml::parse(&body, "PublicAccessBlockConfiguration")?;
    let block = PublicAccessBlock {
        block_public_acls: flag(config.block_public_acls)?,
        ignore_public_acls: flag(config.ignore_public_acls)?,
        block_public_policy: flag(config.block_public_policy)?,
        restrict_public_buckets: flag(config.restrict_public_buckets)?,
    };
    set_bucket_setting(app, req, StatusCode::OK, |name| {
        Command::SetPublicAccessBlock {
            name,
            block: Some(block),
        }
    })
    .await
}

pub async fn delete_block(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    set_bucket_setting(app, req, StatusCode::NO_CONTENT, |name| {
        Command::SetPublicAccessBlock { name, block: None }
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OwnershipControls {
    #[serde(default, rename = "Rule")]
    rules: Vec<OwnershipRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OwnershipRule {
    object_ownership: Option<String>,
}

/// `x-amz-object-ownership` on CreateBucket, or an OwnershipControls rule.
pub fn parse_ownership(value: &str) -> S3Result<ObjectOwnership> {
    ObjectOwnership::parse(value.trim()).ok_or_else(|| {
        S3Error::invalid_argument(format!("Invalid ObjectOwnership {value:?}"))
            .detail("ArgumentName", "ObjectOwnership")
    })
}

pub async fn get_ownership(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let ownership = bucket.settings.ownership.ok_or_else(|| {
        S3Error::new(S3ErrorCode::OwnershipControlsNotFoundError).detail("BucketName", &bucket.name)
    })?;
    let mut w = XmlWriter::root("OwnershipControls");
    w.open("Rule");
    w.element("ObjectOwnership", ownership.as_str());
    w.close("Rule");
    w.close("OwnershipControls");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

pub async fn put_ownership(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let body = read_small(req, MAX_DOCUMENT).await?;
    let controls: OwnershipControls = xml::parse(&body, "OwnershipControls")?;
    let [rule] = controls.rules.as_slice() else {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    };
    let ownership = rule
        .object_ownership
        .as_deref()
        .and_then(|v| ObjectOwnership::parse(v.trim()))
        .ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))?;
    if ownership == ObjectOwnership::BucketOwnerEnforced && ownership::grants_others(&bucket.acl) {
        return Err(S3Error::new(
            S3ErrorCode::InvalidBucketAclWithObjectOwnership,
        ));
    }
    set_bucket_setting(app, req, StatusCode::OK, |name| {
        Command::SetBucketOwnership {
            name,
            ownership: Some(ownership),
        }
    })
    .await
}

pub async fn delete_ownership(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    set_bucket_setting(app, req, StatusCode::NO_CONTENT, |name| {
        Command::SetBucketOwnership {
            name,
            ownership: None,
        }
    })
    .await
}

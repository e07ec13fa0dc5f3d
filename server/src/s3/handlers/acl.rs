//! GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl.

use super::{
    S3Response, delete_marker_error, empty_response, meta_error, request_bucket, version_header,
    version_param, xml_response,
};
use crate::acl::{Acl, Grant, Grantee, Owner, Permission};
use crate::app::App;
use crate::meta::model::{BucketRecord, ObjectRecord};
use crate::meta::{Command, query};
use crate::s3::access::ownership;
use crate::s3::body::read_small;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::headers::{acl_from_headers, resolve_email, resolve_group, resolve_user_id};
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XSI_NAMESPACE, XmlWriter};
use http::StatusCode;
use serde::Deserialize;

pub fn render_acl(acl: &Acl) -> String {
    let mut w = XmlWriter::root("AccessControlPolicy");
    w.owner("Owner", &acl.owner);
    w.open("AccessControlList");
    // Group grants first, then users, each in the order they were given (the
    // order Ceph RGW lists them in, which the s3-tests suite relies on).
    let (groups, users): (Vec<&Grant>, Vec<&Grant>) = acl
        .grants
        .iter()
        .partition(|g| matches!(g.grantee, Grantee::Group { .. }));
    for grant in groups.into_iter().chain(users) {
        w.open("Grant");
        match &grant.grantee {
            Grantee::User { id, display_name } => {
                w.open_with(
                    "Grantee",
                    &[("xmlns:xsi", XSI_NAMESPACE), ("xsi:type", "CanonicalUser")],
                );
                w.element("ID", id);
                w.element("DisplayName", display_name);
            }
            Grantee::Group { uri } => {
                w.open_with(
                    "Grantee",
                    &[("xmlns:xsi", XSI_NAMESPACE), ("xsi:type", "Group")],
                );
                w.element("URI", uri);
            }
        }
        w.close("Grantee");
        w.element("Permission", grant.permission.as_str());
        w.close("Grant");
    }
    w.close("AccessControlList");
    w.close("AccessControlPolicy");
    w.finish()
}

#[derive(Deserialize)]
struct AccessControlPolicy {
    #[serde(rename = "Owner")]
    owner: Option<XmlOwner>,
    #[serde(rename = "AccessControlList")]
    list: Option<XmlGrantList>,
}

#[derive(Deserialize)]
struct XmlOwner {
    #[serde(rename = "ID")]
    id: Option<String>,
}

#[derive(Deserialize)]
struct XmlGrantList {
    #[serde(rename = "Grant", default)]
    grants: Vec<XmlGrant>,
}

#[derive(Deserialize)]
struct XmlGrant {
    #[serde(rename = "Grantee")]
    grantee: XmlGrantee,
    #[serde(rename = "Permission")]
    permission: String,
}

#[derive(Deserialize)]
struct XmlGrantee {
    #[serde(rename = "@xsi:type", alias = "@type")]
    kind: Option<String>,
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "URI")]
    uri: Option<String>,
    #[serde(rename = "EmailAddress")]
    email: Option<String>,
}

/// The ACL a PutBucketAcl/PutObjectAcl asks for, from headers or body.
async fn requested_acl(
    app: &App,
    req: &mut S3Request,
    owner: &Owner,
    bucket_owner: Option<&Owner>,
) -> S3Result<Acl> {
    let from_headers = acl_from_headers(req, owner, bucket_owner, &app.credentials)?;
    let body = read_small(req, 1 << 20).await?;
    let has_body = !body.iter().all(u8::is_ascii_whitespace);
    match (from_headers, has_body) {
        (Some(_), true) => Err(S3Error::with_message(
            S3ErrorCode::UnexpectedContent,
            "This request does not support content",
        )),
        (Some(acl), false) => Ok(acl),
        (None, false) => Err(S3Error::new(S3ErrorCode::MalformedACLError)),
        (None, true) => parse_policy(app, &body, owner),
    }
}

fn parse_policy(app: &App, body: &[u8], owner: &Owner) -> S3Result<Acl> {
    let policy: AccessControlPolicy =
        xml::parse_as(body, "AccessControlPolicy", S3ErrorCode::MalformedACLError)?;
    if let Some(id) = policy.owner.and_then(|o| o.id)
        && id != owner.id
    {
        return Err(S3Error::new(S3ErrorCode::AccessDenied));
    }
    let mut grants = Vec::new();
    for grant in policy.list.map(|l| l.grants).unwrap_or_default() {
        let permission = Permission::parse(grant.permission.trim())
            .ok_or_else(|| S3Error::new(S3ErrorCode::MalformedACLError))?;
        let g = grant.grantee;
        let kind = g.kind.as_deref().map(|k| k.rsplit(':').next().unwrap_or(k));
        let grantee = match (kind, g.id, g.uri, g.email) {
            (Some("CanonicalUser") | None, Some(id), _, _) => {
                resolve_user_id(id.trim(), &app.credentials)?
            }
            (Some("Group") | None, _, Some(uri), _) => resolve_group(uri.trim())?,
            (Some("AmazonCustomerByEmail") | None, _, _, Some(email)) => {
                resolve_email(email.trim(), &app.credentials)?
            }
            _ => return Err(S3Error::new(S3ErrorCode::MalformedACLError)),
        };
        grants.push(Grant {
            grantee,
            permission,
        });
    }
    Ok(Acl {
        owner: owner.clone(),
        grants,
    })
}

pub async fn get_bucket_acl(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    Ok(xml_response(StatusCode::OK, render_acl(&bucket.acl)))
}

pub async fn put_bucket_acl(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let acl = requested_acl(app, req, &bucket.owner, None).await?;
    ownership::admit_acl(&bucket, Some(&acl), req.header("x-amz-acl"))?;
    app.cluster
        .write(Command::SetBucketAcl {
            name: bucket.name.clone(),
            acl,
        })
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    Ok(empty_response(StatusCode::OK))
}

/// The version a request names (the latest by default), for its ACL.
async fn load_object(app: &App, req: &S3Request) -> S3Result<(BucketRecord, ObjectRecord)> {
    let version = version_param(req)?;
    let bucket = request_bucket(app, req).await?;
    let (name, key) = (bucket.name.clone(), req.key()?.to_string());
    let (lookup_key, wanted) = (key.clone(), version.clone());
    let object = app
        .meta
        .read(move |c| query::get_object(c, &name, &lookup_key, wanted.as_deref()))
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&key)))?
        .ok_or_else(|| match &version {
            Some(_) => S3Error::new(S3ErrorCode::NoSuchVersion).detail("Key", &key),
            None => S3Error::no_such_key(&key),
        })?;
    if object.delete_marker {
        return Err(delete_marker_error(version.is_some(), &object.version_id));
    }
    Ok((bucket, object))
}

pub async fn get_object_acl(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let (bucket, object) = load_object(app, req).await?;
    req.access.check_object(&object.meta.acl)?;
    let mut response = xml_response(StatusCode::OK, render_acl(&object.meta.acl));
    version_header(&mut response, &bucket, Some(&object.version_id));
    Ok(response)
}

pub async fn put_object_acl(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let (bucket, object) = load_object(app, req).await?;
    req.access.check_object(&object.meta.acl)?;
    let acl = requested_acl(app, req, &object.meta.owner, Some(&bucket.owner)).await?;
    ownership::admit_acl(&bucket, Some(&acl), req.header("x-amz-acl"))?;
    let key = object.key.clone();
    app.cluster
        .write(Command::SetObjectAcl {
            bucket: bucket.name.clone(),
            key: key.clone(),
            version_id: Some(object.version_id.clone()),
            acl,
        })
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&key)))?;
    let mut response = empty_response(StatusCode::OK);
    version_header(&mut response, &bucket, Some(&object.version_id));
    Ok(response)
}

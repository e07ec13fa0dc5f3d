//! One handler per S3 operation. Handlers talk to the metadata store and the
//! blob store only, and return a response or a typed `S3Error`.

mod acl;
mod bucket;
mod copy;
pub mod cors;
mod data;
mod delete;
mod encryption;
mod lifecycle;
mod list;
mod lock;
mod multipart;
mod object;
mod policy;
mod post;
mod public_access;
mod tagging;
mod versions;

use crate::acl::Requester;
use crate::app::App;
use crate::meta::model::{BucketRecord, Extent};
use crate::meta::query;
use crate::meta::{Command, MetaError, Refusal, Rule};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::operation::Operation;
use crate::s3::request::S3Request;
use crate::storage::BlobId;
use axum::body::Body;
use http::{Response, StatusCode};

pub type S3Response = Response<Body>;

pub async fn dispatch(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    use Operation::*;
    match req.operation {
        ListBuckets => bucket::list_buckets(app, req).await,
        CreateBucket => bucket::create(app, req).await,
        DeleteBucket => bucket::delete(app, req).await,
        HeadBucket => bucket::head(app, req).await,
        GetBucketLocation => bucket::location(app, req).await,
        GetBucketVersioning => versions::get_versioning(app, req).await,
        PutBucketVersioning => versions::put_versioning(app, req).await,
        GetObjectLockConfiguration => lock::get_configuration(app, req).await,
        PutObjectLockConfiguration => lock::put_configuration(app, req).await,
        GetObjectRetention => lock::get_retention(app, req).await,
        PutObjectRetention => lock::put_retention(app, req).await,
        GetObjectLegalHold => lock::get_legal_hold(app, req).await,
        PutObjectLegalHold => lock::put_legal_hold(app, req).await,
        GetBucketTagging => tagging::get_bucket(app, req).await,
        PutBucketTagging => tagging::put_bucket(app, req).await,
        DeleteBucketTagging => tagging::delete_bucket(app, req).await,
        GetObjectTagging => tagging::get_object(app, req).await,
        PutObjectTagging => tagging::put_object(app, req).await,
        DeleteObjectTagging => tagging::delete_object(app, req).await,
        GetBucketEncryption => encryption::get(app, req).await,
        PutBucketEncryption => encryption::put(app, req).await,
        DeleteBucketEncryption => encryption::delete(app, req).await,
        GetBucketCors => cors::get(app, req).await,
        PutBucketCors => cors::put(app, req).await,
        DeleteBucketCors => cors::delete(app, req).await,
        CorsPreflight => cors::preflight(app, req).await,
        GetBucketLifecycle => lifecycle::get(app, req).await,
        PutBucketLifecycle => lifecycle::put(app, req).await,
        DeleteBucketLifecycle => lifecycle::delete(app, req).await,
        GetBucketPolicy => policy::get(app, req).await,
        PutBucketPolicy => policy::put(app, req).await,
        DeleteBucketPolicy => policy::delete(app, req).await,
        GetBucketPolicyStatus => policy::status(app, req).await,
        GetPublicAccessBlock => public_access::get_block(app, req).await,
        PutPublicAccessBlock => public_access::put_block(app, req).await,
        DeletePublicAccessBlock => public_access::delete_block(app, req).await,
        GetBucketOwnershipControls => public_access::get_ownership(app, req).await,
        PutBucketOwnershipControls => public_access::put_ownership(app, req).await,
        DeleteBucketOwnershipControls => public_access::delete_ownership(app, req).await,
        GetBucketAcl => acl::get_bucket_acl(app, req).await,
        PutBucketAcl => acl::put_bucket_acl(app, req).await,
        ListObjects => list::list_objects_v1(app, req).await,
        ListObjectsV2 => list::list_objects_v2(app, req).await,
        ListObjectVersions => list::list_object_versions(app, req).await,
        DeleteObjects => delete::delete_objects(app, req).await,
        PutObject => object::put(app, req).await,
        PostObject => post::post_object(app, req).await,
        GetObject => object::get(app, req, false).await,
        HeadObject => object::get(app, req, true).await,
        DeleteObject => delete::delete_object(app, req).await,
        CopyObject => copy::copy_object(app, req).await,
        GetObjectAcl => acl::get_object_acl(app, req).await,
        PutObjectAcl => acl::put_object_acl(app, req).await,
        GetObjectAttributes => object::attributes(app, req).await,
        GetObjectTorrent => object::torrent(app, req).await,
        ListMultipartUploads => multipart::list_uploads(app, req).await,
        CreateMultipartUpload => multipart::create(app, req).await,
        UploadPart => multipart::upload_part(app, req).await,
        UploadPartCopy => multipart::upload_part_copy(app, req).await,
        CompleteMultipartUpload => multipart::complete(app, req).await,
        AbortMultipartUpload => multipart::abort(app, req).await,
        ListParts => multipart::list_parts(app, req).await,
    }
}

/// Maps a metadata failure to the S3 error a client expects.
pub fn meta_error(e: MetaError, bucket: &str, key: Option<&str>) -> S3Error {
    match e {
        MetaError::NoSuchBucket => S3Error::no_such_bucket(bucket),
        MetaError::BucketExists {
            owned_by_requester: true,
        } => S3Error::new(S3ErrorCode::BucketAlreadyOwnedByYou).detail("BucketName", bucket),
        MetaError::BucketExists { .. } => {
            S3Error::new(S3ErrorCode::BucketAlreadyExists).detail("BucketName", bucket)
        }
        MetaError::BucketNotEmpty => {
            S3Error::new(S3ErrorCode::BucketNotEmpty).detail("BucketName", bucket)
        }
        MetaError::NoSuchKey => S3Error::no_such_key(key.unwrap_or_default()),
        MetaError::NoSuchVersion => {
            S3Error::new(S3ErrorCode::NoSuchVersion).detail("Key", key.unwrap_or_default())
        }
        MetaError::DeleteMarker { version_id } => delete_marker_error(true, &version_id),
        MetaError::NoSuchUpload => S3Error::new(S3ErrorCode::NoSuchUpload),
        MetaError::PreconditionFailed => {
            S3Error::new(S3ErrorCode::PreconditionFailed).detail("Condition", "If-Match")
        }
        MetaError::SourceChanged => S3Error::new(S3ErrorCode::ConditionalRequestConflict),
        MetaError::Rejected(refusal) => refusal_error(refusal),
        MetaError::Unavailable(reason) => {
            tracing::warn!(%reason, "metadata unavailable");
            S3Error::with_message(
                S3ErrorCode::ServiceUnavailable,
                format!("The cluster cannot serve this request right now ({reason}); retry later."),
            )
        }
        other => S3Error::internal(other),
    }
}

/// The S3 error for a rule a command broke.
pub fn refusal_error(refusal: Refusal) -> S3Error {
    let code = match refusal.rule {
        Rule::InvalidPart => S3ErrorCode::InvalidPart,
        Rule::InvalidPartOrder => S3ErrorCode::InvalidPartOrder,
        Rule::EntityTooSmall => S3ErrorCode::EntityTooSmall,
        Rule::MalformedXml => S3ErrorCode::MalformedXML,
        Rule::InvalidRequest => S3ErrorCode::InvalidRequest,
        Rule::BadDigest => S3ErrorCode::BadDigest,
        Rule::InvalidBucketState => S3ErrorCode::InvalidBucketState,
        Rule::Locked => S3ErrorCode::AccessDenied,
        Rule::PreconditionFailed => S3ErrorCode::PreconditionFailed,
        Rule::NoSuchKey => S3ErrorCode::NoSuchKey,
    };
    let mut error = if refusal.message.is_empty() {
        S3Error::new(code)
    } else {
        S3Error::with_message(code, refusal.message)
    };
    error.details = refusal
        .details
        .into_iter()
        .map(|(name, value)| (name.into(), value))
        .collect();
    error
}

/// A delete marker asked for by version id is 405; as the latest version
/// of a key, 404 NoSuchKey. Both say so in `x-amz-delete-marker`.
pub fn delete_marker_error(by_version: bool, version_id: &str) -> S3Error {
    let error = if by_version {
        S3Error::new(S3ErrorCode::MethodNotAllowed)
            .detail("Method", "GET")
            .detail("ResourceType", "DeleteMarker")
            .header("allow", "DELETE")
    } else {
        S3Error::new(S3ErrorCode::NoSuchKey)
    };
    error
        .header("x-amz-delete-marker", "true")
        .header("x-amz-version-id", version_id)
}

pub async fn load_bucket(app: &App, name: &str) -> S3Result<BucketRecord> {
    let lookup = name.to_string();
    app.meta
        .lookup(move |c| query::get_bucket(c, &lookup))
        .await
        .map_err(|e| meta_error(e, name, None))?
        .ok_or_else(|| S3Error::no_such_bucket(name))
}

/// The request's bucket, as authorization loaded (and checked) it.
pub async fn request_bucket(app: &App, req: &S3Request) -> S3Result<BucketRecord> {
    match req.access.bucket() {
        Some(bucket) => Ok(bucket.clone()),
        None => load_bucket(app, req.bucket()?).await,
    }
}

/// Replaces one of a bucket's settings (tags, default encryption, CORS
/// rules, policy…): `command` names the change for the bucket, and
/// `status` is what S3 answers that call with.
pub async fn set_bucket_setting(
    app: &App,
    req: &S3Request,
    status: StatusCode,
    command: impl FnOnce(String) -> Command,
) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    app.cluster
        .write(command(bucket.name.clone()))
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    Ok(empty_response(status))
}

/// The `versionId` a request names, if any: `null` or an id of this
/// server's; anything else is refused before any lookup.
pub fn version_param(req: &S3Request) -> S3Result<Option<String>> {
    match req.param("versionId") {
        None => Ok(None),
        Some(v) if crate::meta::is_valid_version_id(v) => Ok(Some(v.to_string())),
        Some(v) => Err(S3Error::invalid_argument("Invalid version id specified")
            .detail("ArgumentName", "versionId")
            .detail("ArgumentValue", v)),
    }
}

/// `x-amz-version-id` on responses about a version, in buckets that have
/// ever been versioned.
pub fn version_header(response: &mut S3Response, bucket: &BucketRecord, version_id: Option<&str>) {
    if bucket.settings.versioning.is_unversioned() {
        return;
    }
    if let Some(v) = version_id.and_then(|v| http::HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert("x-amz-version-id", v);
    }
}

/// Whether the requester may bypass GOVERNANCE retention: it must ask
/// (`x-amz-bypass-governance-retention: true`) and be allowed — the bucket's
/// owner, or whom its policy grants `s3:BypassGovernanceRetention`.
pub fn bypasses_governance(req: &S3Request, key: &str) -> bool {
    req.header("x-amz-bypass-governance-retention")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        && req
            .access
            .allows("s3:BypassGovernanceRetention", Some(key), None)
}

pub fn require_authenticated(req: &S3Request) -> S3Result<&crate::acl::Owner> {
    match req.requester() {
        Requester::User(owner) => Ok(owner),
        Requester::Anonymous => Err(S3Error::new(S3ErrorCode::AccessDenied)),
    }
}

/// Deletes the blobs a request wrote for a command the metadata refused.
/// When the group could not say whether the command committed (it timed
/// out, no leader), they are kept: the object needs them if it did, and the
/// orphan sweep removes them if it did not. Blobs freed by a committed
/// command are deleted by every node after apply (`cluster::effects`).
pub async fn discard_written(app: &App, written: Vec<Extent>, error: &MetaError) {
    if !error.is_refusal() {
        return;
    }
    let stored: Vec<Extent> = written.into_iter().filter(|e| !e.place.inline).collect();
    let blobs: Vec<BlobId> = stored.iter().map(|e| e.blob.clone()).collect();
    let unpinned = app.pins.release(blobs);
    for extent in stored.iter().filter(|e| unpinned.contains(&e.blob)) {
        app.replicas
            .abandon(&extent.blob, &extent.place.nodes)
            .await;
    }
}

pub fn xml_response(status: StatusCode, xml: String) -> S3Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Body::from(xml))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

pub fn empty_response(status: StatusCode) -> S3Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// S3 keys are at most 1024 bytes of UTF-8.
pub fn check_key(key: &str) -> S3Result<()> {
    if key.len() > 1024 {
        return Err(S3Error::new(S3ErrorCode::KeyTooLongError)
            .detail("MaxSizeAllowed", "1024")
            .detail("Size", key.len().to_string()));
    }
    Ok(())
}

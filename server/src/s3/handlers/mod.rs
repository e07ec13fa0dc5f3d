//! One handler per S3 operation. Handlers talk to the metadata store and the
//! blob store only, and return a response or a typed `S3Error`.

mod acl;
mod bucket;
mod copy;
mod delete;
mod list;
mod multipart;
mod object;

use crate::acl::{Permission, Requester};
use crate::app::App;
use crate::meta::MetaError;
use crate::meta::model::BucketRecord;
use crate::meta::query;
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
        GetBucketVersioning => bucket::versioning(app, req).await,
        GetBucketAcl => acl::get_bucket_acl(app, req).await,
        PutBucketAcl => acl::put_bucket_acl(app, req).await,
        ListObjects => list::list_objects_v1(app, req).await,
        ListObjectsV2 => list::list_objects_v2(app, req).await,
        ListObjectVersions => list::list_object_versions(app, req).await,
        DeleteObjects => delete::delete_objects(app, req).await,
        PutObject => object::put(app, req).await,
        GetObject => object::get(app, req, false).await,
        HeadObject => object::get(app, req, true).await,
        DeleteObject => delete::delete_object(app, req).await,
        CopyObject => copy::copy_object(app, req).await,
        GetObjectAcl => acl::get_object_acl(app, req).await,
        PutObjectAcl => acl::put_object_acl(app, req).await,
        GetObjectAttributes => object::attributes(app, req).await,
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
        MetaError::NoSuchUpload => S3Error::new(S3ErrorCode::NoSuchUpload),
        MetaError::PreconditionFailed => {
            S3Error::new(S3ErrorCode::PreconditionFailed).detail("Condition", "If-Match")
        }
        MetaError::SourceChanged => S3Error::new(S3ErrorCode::ConditionalRequestConflict),
        MetaError::Rejected(e) => e,
        other => S3Error::internal(other),
    }
}

pub async fn load_bucket(app: &App, name: &str) -> S3Result<BucketRecord> {
    let lookup = name.to_string();
    app.meta
        .read(move |c| query::get_bucket(c, &lookup))
        .await
        .map_err(|e| meta_error(e, name, None))?
        .ok_or_else(|| S3Error::no_such_bucket(name))
}

pub fn require(allowed: bool) -> S3Result<()> {
    if allowed {
        Ok(())
    } else {
        Err(S3Error::new(S3ErrorCode::AccessDenied))
    }
}

/// Loads the request's bucket, refusing it when `x-amz-expected-bucket-owner`
/// names someone else.
pub async fn request_bucket(app: &App, req: &S3Request) -> S3Result<BucketRecord> {
    let bucket = load_bucket(app, req.bucket()?).await?;
    if let Some(expected) = req.header("x-amz-expected-bucket-owner")
        && expected.trim() != bucket.owner.id
    {
        return Err(S3Error::new(S3ErrorCode::AccessDenied));
    }
    Ok(bucket)
}

/// Loads a bucket and checks the requester holds `permission` on it.
pub async fn authorized_bucket(
    app: &App,
    req: &S3Request,
    permission: Permission,
) -> S3Result<BucketRecord> {
    let bucket = request_bucket(app, req).await?;
    require(bucket.acl.allows(req.requester(), permission))?;
    Ok(bucket)
}

/// Some bucket operations belong to its owner alone, whatever the ACL grants.
pub fn require_bucket_owner(req: &S3Request, bucket: &BucketRecord) -> S3Result<()> {
    require(
        req.requester()
            .owner()
            .is_some_and(|o| o.id == bucket.owner.id),
    )
}

/// The extents of an object (or part) stored as one blob, if it has bytes.
pub fn single_blob_extents(blob: Option<&BlobId>, length: u64) -> Vec<crate::meta::model::Extent> {
    blob.into_iter()
        .map(|blob| crate::meta::model::Extent {
            blob: blob.clone(),
            blob_offset: 0,
            length,
        })
        .collect()
}

pub fn require_authenticated(req: &S3Request) -> S3Result<&crate::acl::Owner> {
    match req.requester() {
        Requester::User(owner) => Ok(owner),
        Requester::Anonymous => Err(S3Error::new(S3ErrorCode::AccessDenied)),
    }
}

/// Deletes blobs a committed command freed. Failures only leave orphans,
/// which the sweep removes later, so they are logged, not returned.
pub async fn free_blobs(app: &App, blobs: Vec<BlobId>) {
    // Blobs a response is still streaming are deleted when it finishes.
    for blob in app.pins.release(blobs) {
        if let Err(e) = app.blobs.delete(&blob).await {
            tracing::warn!(%blob, error = %e, "cannot delete freed blob; the sweep will retry");
        }
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

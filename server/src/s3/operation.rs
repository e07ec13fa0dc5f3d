//! Classifies a request into exactly one S3 operation from its method, the
//! presence of bucket and key, sub-resource query parameters and headers.
//! Anything this server does not offer is refused up front, never routed to a
//! wrong handler.

use crate::s3::error::{S3Error, S3ErrorCode};
use http::Method;

macro_rules! operations {
    ($($name:ident),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Operation { $($name,)* }

        impl Operation {
            /// The S3 API name, for metrics and logs.
            pub fn name(self) -> &'static str {
                match self { $(Operation::$name => stringify!($name),)* }
            }
        }
    };
}

operations! {
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    GetBucketLocation,
    GetBucketAcl,
    PutBucketAcl,
    GetBucketVersioning,
    PutBucketVersioning,
    GetObjectLockConfiguration,
    PutObjectLockConfiguration,
    GetBucketTagging,
    PutBucketTagging,
    DeleteBucketTagging,
    GetBucketEncryption,
    PutBucketEncryption,
    DeleteBucketEncryption,
    GetBucketCors,
    PutBucketCors,
    DeleteBucketCors,
    CorsPreflight,
    GetBucketLifecycle,
    PutBucketLifecycle,
    DeleteBucketLifecycle,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    GetBucketPolicyStatus,
    GetPublicAccessBlock,
    PutPublicAccessBlock,
    DeletePublicAccessBlock,
    GetBucketOwnershipControls,
    PutBucketOwnershipControls,
    DeleteBucketOwnershipControls,
    ListObjects,
    ListObjectsV2,
    ListObjectVersions,
    ListMultipartUploads,
    DeleteObjects,
    PutObject,
    PostObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    GetObjectAcl,
    PutObjectAcl,
    GetObjectAttributes,
    GetObjectTorrent,
    GetObjectTagging,
    PutObjectTagging,
    DeleteObjectTagging,
    GetObjectRetention,
    PutObjectRetention,
    GetObjectLegalHold,
    PutObjectLegalHold,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
}

/// Sub-resources S3 defines that this server does not implement.
const UNSUPPORTED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "analytics",
    "intelligent-tiering",
    "inventory",
    "logging",
    "metadataTable",
    "metrics",
    "notification",
    "replication",
    "requestPayment",
    "website",
    "restore",
    "select",
    "renameObject",
];

pub struct RequestShape<'a> {
    pub method: &'a Method,
    pub has_bucket: bool,
    pub has_key: bool,
    pub query: &'a [(String, String)],
    pub has_copy_source: bool,
}

impl RequestShape<'_> {
    fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn not_implemented(what: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NotImplemented,
        format!("{what} is not implemented by this server."),
    )
}

fn method_not_allowed(method: &Method) -> S3Error {
    S3Error::new(S3ErrorCode::MethodNotAllowed)
        .detail("Method", method.as_str())
        .detail("ResourceType", "OBJECT")
}

pub fn classify(shape: &RequestShape) -> Result<Operation, S3Error> {
    use Operation::*;
    // IAM, STS and other query-protocol APIs posted to the S3 port.
    if let Some(action) = shape.value("Action") {
        return Err(not_implemented(&format!("The {action} action")));
    }
    if let Some((name, _)) = shape
        .query
        .iter()
        .find(|(k, _)| UNSUPPORTED_SUBRESOURCES.contains(&k.as_str()))
    {
        return Err(not_implemented(&format!("The ?{name} sub-resource")));
    }
    let method = shape.method;
    if !shape.has_bucket {
        return match *method {
            Method::GET => Ok(ListBuckets),
            Method::POST => Err(not_implemented("POST on the service endpoint")),
            _ => Err(method_not_allowed(method)),
        };
    }
    if !shape.has_key {
        if shape.has("retention") || shape.has("legal-hold") {
            return Err(method_not_allowed(method));
        }
        if shape.has("torrent") {
            return Err(not_implemented("The ?torrent sub-resource"));
        }
        return match *method {
            Method::GET if shape.has("location") => Ok(GetBucketLocation),
            Method::GET if shape.has("object-lock") => Ok(GetObjectLockConfiguration),
            Method::PUT if shape.has("object-lock") => Ok(PutObjectLockConfiguration),
            Method::GET if shape.has("tagging") => Ok(GetBucketTagging),
            Method::PUT if shape.has("tagging") => Ok(PutBucketTagging),
            Method::DELETE if shape.has("tagging") => Ok(DeleteBucketTagging),
            Method::GET if shape.has("encryption") => Ok(GetBucketEncryption),
            Method::PUT if shape.has("encryption") => Ok(PutBucketEncryption),
            Method::DELETE if shape.has("encryption") => Ok(DeleteBucketEncryption),
            Method::GET if shape.has("cors") => Ok(GetBucketCors),
            Method::PUT if shape.has("cors") => Ok(PutBucketCors),
            Method::DELETE if shape.has("cors") => Ok(DeleteBucketCors),
            Method::OPTIONS => Ok(CorsPreflight),
            Method::GET if shape.has("lifecycle") => Ok(GetBucketLifecycle),
            Method::PUT if shape.has("lifecycle") => Ok(PutBucketLifecycle),
            Method::DELETE if shape.has("lifecycle") => Ok(DeleteBucketLifecycle),
            Method::GET if shape.has("policyStatus") => Ok(GetBucketPolicyStatus),
            Method::GET if shape.has("policy") => Ok(GetBucketPolicy),
            Method::PUT if shape.has("policy") => Ok(PutBucketPolicy),
            Method::DELETE if shape.has("policy") => Ok(DeleteBucketPolicy),
            Method::GET if shape.has("publicAccessBlock") => Ok(GetPublicAccessBlock),
            Method::PUT if shape.has("publicAccessBlock") => Ok(PutPublicAccessBlock),
            Method::DELETE if shape.has("publicAccessBlock") => Ok(DeletePublicAccessBlock),
            Method::GET if shape.has("ownershipControls") => Ok(GetBucketOwnershipControls),
            Method::PUT if shape.has("ownershipControls") => Ok(PutBucketOwnershipControls),
            Method::DELETE if shape.has("ownershipControls") => Ok(DeleteBucketOwnershipControls),
            Method::GET if shape.has("acl") => Ok(GetBucketAcl),
            Method::GET if shape.has("versioning") => Ok(GetBucketVersioning),
            Method::GET if shape.has("versions") => Ok(ListObjectVersions),
            Method::GET if shape.has("uploads") => Ok(ListMultipartUploads),
            Method::GET if shape.value("list-type") == Some("2") => Ok(ListObjectsV2),
            Method::GET => Ok(ListObjects),
            Method::PUT if shape.has("acl") => Ok(PutBucketAcl),
            Method::PUT if shape.has("versioning") => Ok(PutBucketVersioning),
            Method::PUT => Ok(CreateBucket),
            Method::HEAD => Ok(HeadBucket),
            Method::DELETE => Ok(DeleteBucket),
            Method::POST if shape.has("delete") => Ok(DeleteObjects),
            Method::POST => Ok(PostObject),
            _ => Err(method_not_allowed(method)),
        };
    }
    // Bucket sub-resources named on a key.
    if [
        "object-lock",
        "encryption",
        "versioning",
        "lifecycle",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "ownershipControls",
    ]
    .iter()
    .any(|name| shape.has(name))
    {
        return Err(method_not_allowed(method));
    }
    match *method {
        Method::OPTIONS => Ok(CorsPreflight),
        Method::GET if shape.has("tagging") => Ok(GetObjectTagging),
        Method::PUT if shape.has("tagging") => Ok(PutObjectTagging),
        Method::DELETE if shape.has("tagging") => Ok(DeleteObjectTagging),
        Method::GET if shape.has("retention") => Ok(GetObjectRetention),
        Method::PUT if shape.has("retention") => Ok(PutObjectRetention),
        Method::GET if shape.has("legal-hold") => Ok(GetObjectLegalHold),
        Method::PUT if shape.has("legal-hold") => Ok(PutObjectLegalHold),
        Method::GET if shape.has("acl") => Ok(GetObjectAcl),
        Method::GET if shape.has("attributes") => Ok(GetObjectAttributes),
        Method::GET if shape.has("torrent") => Ok(GetObjectTorrent),
        Method::GET if shape.has("uploadId") => Ok(ListParts),
        Method::GET => Ok(GetObject),
        Method::HEAD => Ok(HeadObject),
        Method::PUT if shape.has("acl") => Ok(PutObjectAcl),
        Method::PUT if shape.has("uploadId") && shape.has("partNumber") => {
            Ok(if shape.has_copy_source {
                UploadPartCopy
            } else {
                UploadPart
            })
        }
        Method::PUT if shape.has_copy_source => Ok(CopyObject),
        Method::PUT => Ok(PutObject),
        Method::DELETE if shape.has("uploadId") => Ok(AbortMultipartUpload),
        Method::DELETE => Ok(DeleteObject),
        Method::POST if shape.has("uploads") => Ok(CreateMultipartUpload),
        Method::POST if shape.has("uploadId") => Ok(CompleteMultipartUpload),
        _ => Err(method_not_allowed(method)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(
        method: Method,
        bucket: bool,
        key: bool,
        query: &[&str],
        copy: bool,
    ) -> Result<Operation, S3ErrorCode> {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|q| {
                let (k, v) = q.split_once('=').unwrap_or((q, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        classify(&RequestShape {
            method: &method,
            has_bucket: bucket,
            has_key: key,
            query: &query,
            has_copy_source: copy,
        })
        .map_err(|e| e.code)
    }

    #[test]
    fn classifies_every_supported_operation() {
        use Operation::*;
        assert_eq!(op(Method::GET, false, false, &[], false), Ok(ListBuckets));
        assert_eq!(op(Method::PUT, true, false, &[], false), Ok(CreateBucket));
        assert_eq!(
            op(Method::GET, true, false, &["list-type=2"], false),
            Ok(ListObjectsV2)
        );
        assert_eq!(
            op(Method::GET, true, false, &["versions"], false),
            Ok(ListObjectVersions)
        );
        assert_eq!(
            op(Method::POST, true, false, &["delete"], false),
            Ok(DeleteObjects)
        );
        assert_eq!(op(Method::PUT, true, true, &[], true), Ok(CopyObject));
        assert_eq!(
            op(
                Method::PUT,
                true,
                true,
                &["partNumber=1", "uploadId=x"],
                true
            ),
            Ok(UploadPartCopy)
        );
        assert_eq!(
            op(Method::POST, true, true, &["uploads"], false),
            Ok(CreateMultipartUpload)
        );
        assert_eq!(
            op(Method::DELETE, true, true, &["uploadId=x"], false),
            Ok(AbortMultipartUpload)
        );
        assert_eq!(
            op(Method::GET, true, true, &["attributes"], false),
            Ok(GetObjectAttributes)
        );
        assert_eq!(
            op(Method::GET, true, true, &["torrent"], false),
            Ok(GetObjectTorrent)
        );
        assert_eq!(
            op(Method::PUT, true, false, &["versioning"], false),
            Ok(PutBucketVersioning)
        );
        assert_eq!(
            op(
                Method::DELETE,
                true,
                true,
                &["tagging", "versionId=x"],
                false
            ),
            Ok(DeleteObjectTagging)
        );
        assert_eq!(
            op(Method::DELETE, true, false, &["tagging"], false),
            Ok(DeleteBucketTagging)
        );
        assert_eq!(
            op(Method::PUT, true, true, &["retention"], false),
            Ok(PutObjectRetention)
        );
        assert_eq!(
            op(Method::GET, true, false, &["object-lock"], false),
            Ok(GetObjectLockConfiguration)
        );
        assert_eq!(
            op(Method::PUT, true, false, &["encryption"], false),
            Ok(PutBucketEncryption)
        );
        assert_eq!(
            op(Method::GET, true, false, &["policyStatus"], false),
            Ok(GetBucketPolicyStatus)
        );
        assert_eq!(
            op(Method::DELETE, true, false, &["publicAccessBlock"], false),
            Ok(DeletePublicAccessBlock)
        );
        assert_eq!(
            op(Method::PUT, true, false, &["ownershipControls"], false),
            Ok(PutBucketOwnershipControls)
        );
        assert_eq!(
            op(Method::GET, true, false, &["legal-hold"], false),
            Err(S3ErrorCode::MethodNotAllowed)
        );
    }

    #[test]
    fn refuses_what_it_does_not_offer() {
        assert_eq!(
            op(Method::POST, false, false, &["Action=AssumeRole"], false),
            Err(S3ErrorCode::NotImplemented)
        );
        assert_eq!(
            op(Method::GET, true, false, &["website"], false),
            Err(S3ErrorCode::NotImplemented)
        );
        assert_eq!(
            op(Method::GET, true, true, &["policy"], false),
            Err(S3ErrorCode::MethodNotAllowed)
        );
        assert_eq!(
            op(Method::PATCH, true, true, &[], false),
            Err(S3ErrorCode::MethodNotAllowed)
        );
        assert_eq!(
            op(Method::DELETE, false, false, &[], false),
            Err(S3ErrorCode::MethodNotAllowed)
        );
    }
}

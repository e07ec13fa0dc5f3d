//! Classifies a request into exactly one S3 operation from its method, the
//! presence of bucket and key, sub-resource query parameters and headers.
//! Anything this server does not offer is refused up front, never routed to a
//! wrong handler.

use crate::s3::error::{S3Error, S3ErrorCode};
use http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    GetBucketLocation,
    GetBucketAcl,
    PutBucketAcl,
    GetBucketVersioning,
    ListObjects,
    ListObjectsV2,
    ListObjectVersions,
    ListMultipartUploads,
    DeleteObjects,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    GetObjectAcl,
    PutObjectAcl,
    GetObjectAttributes,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::ListBuckets => "ListBuckets",
            Operation::CreateBucket => "CreateBucket",
            Operation::DeleteBucket => "DeleteBucket",
            Operation::HeadBucket => "HeadBucket",
            Operation::GetBucketLocation => "GetBucketLocation",
            Operation::GetBucketAcl => "GetBucketAcl",
            Operation::PutBucketAcl => "PutBucketAcl",
            Operation::GetBucketVersioning => "GetBucketVersioning",
            Operation::ListObjects => "ListObjects",
            Operation::ListObjectsV2 => "ListObjectsV2",
            Operation::ListObjectVersions => "ListObjectVersions",
            Operation::ListMultipartUploads => "ListMultipartUploads",
            Operation::DeleteObjects => "DeleteObjects",
            Operation::PutObject => "PutObject",
            Operation::CopyObject => "CopyObject",
            Operation::GetObject => "GetObject",
            Operation::HeadObject => "HeadObject",
            Operation::DeleteObject => "DeleteObject",
            Operation::GetObjectAcl => "GetObjectAcl",
            Operation::PutObjectAcl => "PutObjectAcl",
            Operation::GetObjectAttributes => "GetObjectAttributes",
            Operation::CreateMultipartUpload => "CreateMultipartUpload",
            Operation::UploadPart => "UploadPart",
            Operation::UploadPartCopy => "UploadPartCopy",
            Operation::CompleteMultipartUpload => "CompleteMultipartUpload",
            Operation::AbortMultipartUpload => "AbortMultipartUpload",
            Operation::ListParts => "ListParts",
        }
    }
}

/// Sub-resources S3 defines that this server does not implement.
const UNSUPPORTED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "analytics",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "lifecycle",
    "logging",
    "metadataTable",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "tagging",
    "website",
    "legal-hold",
    "retention",
    "torrent",
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
        return match *method {
            Method::GET if shape.has("location") => Ok(GetBucketLocation),
            Method::GET if shape.has("acl") => Ok(GetBucketAcl),
            Method::GET if shape.has("versioning") => Ok(GetBucketVersioning),
            Method::GET if shape.has("versions") => Ok(ListObjectVersions),
            Method::GET if shape.has("uploads") => Ok(ListMultipartUploads),
            Method::GET if shape.value("list-type") == Some("2") => Ok(ListObjectsV2),
            Method::GET => Ok(ListObjects),
            Method::PUT if shape.has("acl") => Ok(PutBucketAcl),
            Method::PUT if shape.has("versioning") => Err(not_implemented("Bucket versioning")),
            Method::PUT => Ok(CreateBucket),
            Method::HEAD => Ok(HeadBucket),
            Method::DELETE => Ok(DeleteBucket),
            Method::POST if shape.has("delete") => Ok(DeleteObjects),
            Method::POST => Err(not_implemented("POST object (browser form upload)")),
            _ => Err(method_not_allowed(method)),
        };
    }
    match *method {
        Method::GET if shape.has("acl") => Ok(GetObjectAcl),
        Method::GET if shape.has("attributes") => Ok(GetObjectAttributes),
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
    }

    #[test]
    fn refuses_what_it_does_not_offer() {
        assert_eq!(
            op(Method::POST, false, false, &["Action=AssumeRole"], false),
            Err(S3ErrorCode::NotImplemented)
        );
        assert_eq!(
            op(Method::GET, true, false, &["policy"], false),
            Err(S3ErrorCode::NotImplemented)
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

//! What each S3 operation needs: the policy action it is (named here and
//! nowhere else) and the ACL permission that grants it when no policy
//! statement decides.

use crate::acl::Permission;
use crate::s3::operation::Operation;

/// The ACL check an operation falls back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclCheck {
    /// Anyone may ask; the handler answers from the bucket's own rules
    /// (a CORS preflight).
    Open,
    /// Any signed-in user (the operation has no bucket yet).
    Authenticated,
    /// The bucket's owner alone.
    BucketOwner,
    /// What the bucket's ACL grants.
    Bucket(Permission),
    /// What the object's ACL grants, checked once the handler has it.
    Object(Permission),
    /// Checked per key the request names (DeleteObjects), against the
    /// bucket's ACL.
    PerKey(Permission),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The IAM action, `s3:GetObject`; empty for [`AclCheck::Open`].
    pub action: &'static str,
    pub acl: AclCheck,
}

/// The requirement of `operation`; `versioned` when the request names a
/// version, which AWS authorizes as the `…Version…` action.
pub fn requirement(operation: Operation, versioned: bool) -> Requirement {
    use AclCheck::*;
    use Operation::*;
    use Permission::*;
    let pick = |plain, version| if versioned { version } else { plain };
    let (action, acl) = match operation {
        ListBuckets => ("s3:ListAllMyBuckets", Authenticated),
        CreateBucket => ("s3:CreateBucket", Authenticated),
        DeleteBucket => ("s3:DeleteBucket", BucketOwner),
        HeadBucket => ("s3:ListBucket", Bucket(Read)),
        GetBucketLocation => ("s3:GetBucketLocation", BucketOwner),
        GetBucketAcl => ("s3:GetBucketAcl", Bucket(ReadAcp)),
        PutBucketAcl => ("s3:PutBucketAcl", Bucket(WriteAcp)),
        GetBucketVersioning => ("s3:GetBucketVersioning", BucketOwner),
        PutBucketVersioning => ("s3:PutBucketVersioning", BucketOwner),
        GetObjectLockConfiguration => ("s3:GetBucketObjectLockConfiguration", BucketOwner),
        PutObjectLockConfiguration => ("s3:PutBucketObjectLockConfiguration", BucketOwner),
        GetBucketTagging => ("s3:GetBucketTagging", BucketOwner),
        PutBucketTagging | DeleteBucketTagging => ("s3:PutBucketTagging", BucketOwner),
        GetBucketEncryption => ("s3:GetEncryptionConfiguration", BucketOwner),
        PutBucketEncryption | DeleteBucketEncryption => {
            ("s3:PutEncryptionConfiguration", BucketOwner)
        }
        GetBucketCors => ("s3:GetBucketCORS", BucketOwner),
        PutBucketCors | DeleteBucketCors => ("s3:PutBucketCORS", BucketOwner),
        CorsPreflight => ("", Open),
        GetBucketLifecycle => ("s3:GetLifecycleConfiguration", BucketOwner),
        PutBucketLifecycle | DeleteBucketLifecycle => ("s3:PutLifecycleConfiguration", BucketOwner),
        GetBucketPolicy => ("s3:GetBucketPolicy", BucketOwner),
        PutBucketPolicy => ("s3:PutBucketPolicy", BucketOwner),
        DeleteBucketPolicy => ("s3:DeleteBucketPolicy", BucketOwner),
        GetBucketPolicyStatus => ("s3:GetBucketPolicyStatus", BucketOwner),
        GetPublicAccessBlock => ("s3:GetBucketPublicAccessBlock", BucketOwner),
        PutPublicAccessBlock | DeletePublicAccessBlock => {
            ("s3:PutBucketPublicAccessBlock", BucketOwner)
        }
        GetBucketOwnershipControls => ("s3:GetBucketOwnershipControls", BucketOwner),
        PutBucketOwnershipControls | DeleteBucketOwnershipControls => {
            ("s3:PutBucketOwnershipControls", BucketOwner)
        }
        ListObjects | ListObjectsV2 => ("s3:ListBucket", Bucket(Read)),
        ListObjectVersions => ("s3:ListBucketVersions", Bucket(Read)),
        ListMultipartUploads => ("s3:ListBucketMultipartUploads", Bucket(Read)),
        DeleteObjects => ("s3:DeleteObject", PerKey(Write)),
        PutObject | CopyObject | PostObject => ("s3:PutObject", Bucket(Write)),
        CreateMultipartUpload | UploadPart | UploadPartCopy | CompleteMultipartUpload => {
            ("s3:PutObject", Bucket(Write))
        }
        AbortMultipartUpload => ("s3:AbortMultipartUpload", Bucket(Write)),
        ListParts => ("s3:ListMultipartUploadParts", Bucket(Read)),
        GetObject | HeadObject => (pick("s3:GetObject", "s3:GetObjectVersion"), Object(Read)),
        DeleteObject => (
            pick("s3:DeleteObject", "s3:DeleteObjectVersion"),
            Bucket(Write),
        ),
        GetObjectAcl => (
            pick("s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
            Object(ReadAcp),
        ),
        PutObjectAcl => (
            pick("s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
            Object(WriteAcp),
        ),
        GetObjectAttributes => (
            pick("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
            Object(Read),
        ),
        GetObjectTorrent => (
            pick("s3:GetObjectTorrent", "s3:GetObjectVersionTorrent"),
            Object(Read),
        ),
        GetObjectTagging => (
            pick("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
            Object(Read),
        ),
        PutObjectTagging => (
            pick("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
            Bucket(Write),
        ),
        DeleteObjectTagging => (
            pick("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
            Bucket(Write),
        ),
        GetObjectRetention => ("s3:GetObjectRetention", Object(Read)),
        PutObjectRetention => ("s3:PutObjectRetention", Bucket(Write)),
        GetObjectLegalHold => ("s3:GetObjectLegalHold", Object(Read)),
        PutObjectLegalHold => ("s3:PutObjectLegalHold", Bucket(Write)),
    };
    Requirement { action, acl }
}

/// Policy operations stay the owner's even when the policy denies them, so
/// a bad policy can always be repaired (as AWS's account root can).
pub fn owner_may_always(operation: Operation) -> bool {
    matches!(
        operation,
        Operation::GetBucketPolicy | Operation::PutBucketPolicy | Operation::DeleteBucketPolicy
    )
}

//! What a bucket's Object Ownership and Block Public Access settings make
//! of the ACLs requests set, and who owns a new object.

use crate::acl::{Acl, Grantee, Owner};
use crate::meta::model::{BucketRecord, ObjectOwnership};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};

pub const BUCKET_OWNER_FULL_CONTROL: &str = "bucket-owner-full-control";

/// Refuses an ACL a request sets where the bucket does not take it: under
/// `BucketOwnerEnforced` only `bucket-owner-full-control` (or no ACL at
/// all) is accepted; under BlockPublicAcls no public grant is.
pub fn admit_acl(bucket: &BucketRecord, acl: Option<&Acl>, canned: Option<&str>) -> S3Result<()> {
    let Some(acl) = acl else {
        return Ok(());
    };
    if bucket.settings.acls_disabled() && canned.map(str::trim) != Some(BUCKET_OWNER_FULL_CONTROL) {
        return Err(S3Error::new(S3ErrorCode::AccessControlListNotSupported));
    }
    if bucket.settings.public_access_block().block_public_acls && acl.is_public() {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Public ACLs are blocked by this bucket's public access block",
        ));
    }
    Ok(())
}

/// Who owns an object `writer` creates in `bucket` with canned ACL `canned`.
pub fn new_object_owner(bucket: &BucketRecord, writer: &Owner, canned: Option<&str>) -> Owner {
    match bucket.settings.ownership {
        Some(ObjectOwnership::BucketOwnerEnforced) => bucket.owner.clone(),
        Some(ObjectOwnership::BucketOwnerPreferred)
            if canned.map(str::trim) == Some(BUCKET_OWNER_FULL_CONTROL) =>
        {
            bucket.owner.clone()
        }
        _ => writer.clone(),
    }
}

/// An ACL that grants more than its owner's full control, which a bucket
/// must not have to become `BucketOwnerEnforced`.
pub fn grants_others(acl: &Acl) -> bool {
    acl.grants
        .iter()
        .any(|g| !matches!(&g.grantee, Grantee::User { id, .. } if *id == acl.owner.id))
}

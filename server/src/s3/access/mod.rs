//! Authorization: the one place that decides whether a request may go on.
//! It runs after authentication and before the handler, in AWS's order: an
//! explicit Deny in the bucket policy refuses; an Allow grants; otherwise
//! the bucket's (or object's) ACL decides — as Block Public Access and
//! Object Ownership adjust both. Each operation's action and ACL fallback
//! are named once, in [`rules`].
//!
//! What needs the object itself (its ACL, its existence) is finished by the
//! handler that loads it, through the narrow checks of [`Access`].

pub mod context;
pub mod ownership;
mod rules;

use crate::acl::{Acl, Permission, Requester};
use crate::app::App;
use crate::meta::model::{BucketRecord, Tag};
use crate::meta::query;
use crate::policy::{Decision, Policy, Principal, RequestContext};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::handlers::{load_bucket, meta_error};
use crate::s3::operation::Operation;
use crate::s3::request::S3Request;
use context::Keys;
pub use rules::{AclCheck, Requirement, requirement};
use std::sync::Arc;
use std::time::SystemTime;

/// What authorization found, for the handler to finish with.
pub struct Access {
    requirement: Requirement,
    requester: Requester,
    bucket: Option<BucketRecord>,
    /// The key the request is about, if any.
    key: Option<String>,
    policy: Option<Arc<Policy>>,
    keys: Keys,
    /// The policy allowed the request itself: no ACL needs consulting.
    policy_allowed: bool,
}

fn denied() -> S3Error {
    S3Error::new(S3ErrorCode::AccessDenied)
}

pub fn bucket_arn(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => format!("arn:aws:s3:::{bucket}/{key}"),
        None => format!("arn:aws:s3:::{bucket}"),
    }
}

fn is_owner(requester: &Requester, bucket: &BucketRecord) -> bool {
    requester.owner().is_some_and(|o| o.id == bucket.owner.id)
}

/// A stored policy in its checked form. It was validated when it was put;
/// one that no longer parses (it never should) grants nothing.
fn parsed_policy(bucket: &BucketRecord) -> Option<Arc<Policy>> {
    let text = bucket.settings.policy.as_deref()?;
    match Policy::parse(text, &bucket.name) {
        Ok(policy) => Some(Arc::new(policy)),
        Err(e) => {
            tracing::warn!(bucket = %bucket.name, error = %e, "stored bucket policy does not parse");
            None
        }
    }
}

pub async fn authorize(app: &App, req: &S3Request) -> S3Result<Access> {
    let requirement = requirement(req.operation, req.has_param("versionId"));
    let mut access = Access {
        requirement,
        key: req.target.key.clone(),
        ..Access::none(req.requester().clone())
    };
    match requirement.acl {
        AclCheck::Open => return Ok(access),
        AclCheck::Authenticated => {
            return match access.requester {
                Requester::User(_) => Ok(access),
                Requester::Anonymous => Err(denied()),
            };
        }
        _ => {}
    }
    let bucket = load_request_bucket(app, req).await?;
    access.policy = parsed_policy(&bucket);
    // Condition keys cost a little per request: only for policies.
    if access.policy.is_some() {
        access.keys = context::request_keys(req, SystemTime::now());
    }
    if let Some(policy) = &access.policy
        && policy.reads_key("s3:existingobjecttag/")
        && let Some(key) = req.target.key.as_deref()
    {
        let tags = existing_tags(app, &bucket.name, key, req.param("versionId")).await?;
        context::add_existing_tags(&mut access.keys, &tags);
    }
    let owner = is_owner(&access.requester, &bucket);
    // Tags in a PutObjectTagging body are only known once the handler has
    // read it: the whole decision waits for `check_request_tags`.
    if req.operation == Operation::PutObjectTagging
        && access
            .policy
            .as_ref()
            .is_some_and(|p| p.reads_key("s3:requestobjecttag"))
    {
        access.bucket = Some(bucket);
        return Ok(access);
    }
    let verdict = access.verdict(
        &bucket,
        requirement.action,
        access.key.as_deref(),
        &access.keys,
    );
    let granted = match verdict {
        Decision::Deny => owner && rules::owner_may_always(req.operation),
        Decision::Allow => {
            access.policy_allowed = true;
            true
        }
        Decision::Unmatched => access.acl_fallback(&bucket),
    };
    access.bucket = Some(bucket);
    if granted { Ok(access) } else { Err(denied()) }
}

/// The request's bucket, refused when `x-amz-expected-bucket-owner` names
/// someone else.
async fn load_request_bucket(app: &App, req: &S3Request) -> S3Result<BucketRecord> {
    let bucket = load_bucket(app, req.bucket()?).await?;
    if let Some(expected) = req.header("x-amz-expected-bucket-owner")
        && expected.trim() != bucket.owner.id
    {
        return Err(denied());
    }
    Ok(bucket)
}

async fn existing_tags(
    app: &App,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> S3Result<Vec<Tag>> {
    let (b, k, v) = (
        bucket.to_string(),
        key.to_string(),
        version.map(str::to_string),
    );
    let object = app
        .meta
        .lookup(move |c| query::get_object(c, &b, &k, v.as_deref()))
        .await
        .map_err(|e| meta_error(e, bucket, Some(key)))?;
    Ok(object.map(|o| o.meta.tags).unwrap_or_default())
}

impl Access {
    /// No checks at all: for requests answered before authorization.
    pub fn none(requester: Requester) -> Self {
        Access {
            requirement: Requirement {
                action: "",
                acl: AclCheck::Open,
            },
            requester,
            bucket: None,
            key: None,
            policy: None,
            keys: Keys::new(),
            policy_allowed: false,
        }
    }

    /// The requirement's ACL check, where no policy statement decided.
    /// Object and per-key checks pass here and finish in the handler.
    fn acl_fallback(&self, bucket: &BucketRecord) -> bool {
        match self.requirement.acl {
            AclCheck::BucketOwner => is_owner(&self.requester, bucket),
            AclCheck::Bucket(permission) => self.acl_grants(bucket, &bucket.acl, permission),
            AclCheck::Object(_) | AclCheck::PerKey(_) => true,
            AclCheck::Open | AclCheck::Authenticated => true,
        }
    }

    /// The request's bucket, as authorization loaded it.
    pub fn bucket(&self) -> Option<&BucketRecord> {
        self.bucket.as_ref()
    }

    /// The policy's verdict on `action` over `key` (the bucket itself when
    /// None) in `bucket`, with Block Public Access applied.
    fn verdict(
        &self,
        bucket: &BucketRecord,
        action: &str,
        key: Option<&str>,
        keys: &Keys,
    ) -> Decision {
        let Some(policy) = self.policy_of(bucket) else {
            return Decision::Unmatched;
        };
        let resource = bucket_arn(&bucket.name, key);
        let principal = match &self.requester {
            Requester::Anonymous => Principal::Anonymous,
            Requester::User(owner) => Principal::User {
                id: &owner.id,
                name: &owner.display_name,
            },
        };
        let decision = policy.evaluate(&RequestContext {
            principal,
            action,
            resource: &resource,
            keys,
        });
        // RestrictPublicBuckets: a public policy serves the owner alone.
        if decision == Decision::Allow
            && bucket
                .settings
                .public_access_block()
                .restrict_public_buckets
            && !is_owner(&self.requester, bucket)
            && policy.is_public()
        {
            return Decision::Unmatched;
        }
        decision
    }

    /// The request's own bucket policy, or another bucket's (a copy source).
    fn policy_of(&self, bucket: &BucketRecord) -> Option<Arc<Policy>> {
        match &self.bucket {
            Some(own) if own.name == bucket.name => self.policy.clone(),
            _ => parsed_policy(bucket),
        }
    }

    /// An ACL's answer, as the bucket's ownership and public access
    /// settings let it count.
    fn acl_grants(&self, bucket: &BucketRecord, acl: &Acl, permission: Permission) -> bool {
        if bucket.settings.acls_disabled() {
            return is_owner(&self.requester, bucket);
        }
        acl.allows_with(
            &self.requester,
            permission,
            bucket.settings.public_access_block().ignore_public_acls,
        )
    }

    /// Finishes an object operation's check with the object's ACL.
    pub fn check_object(&self, acl: &Acl) -> S3Result<()> {
        let (AclCheck::Object(permission), Some(bucket)) = (self.requirement.acl, &self.bucket)
        else {
            return Ok(());
        };
        if self.policy_allowed || self.acl_grants(bucket, acl, permission) {
            Ok(())
        } else {
            Err(denied())
        }
    }

    /// May the requester list the bucket? A missing key is 404 for those
    /// who may, 403 for the rest (they must not learn what is absent).
    pub fn may_list(&self) -> bool {
        let Some(bucket) = &self.bucket else {
            return false;
        };
        // As a listing of the missing key's own name would be asked.
        let mut keys = self.keys.clone();
        if let Some(key) = &self.key {
            keys.insert("s3:prefix".into(), vec![key.clone()]);
        }
        match self.verdict(bucket, "s3:ListBucket", None, &keys) {
            Decision::Deny => false,
            Decision::Allow => true,
            Decision::Unmatched => self.acl_grants(bucket, &bucket.acl, Permission::Read),
        }
    }

    /// [`Access::check_object`] for a missing object: refused unless the
    /// requester may list the bucket.
    pub fn check_missing(&self) -> S3Result<()> {
        if self.may_list() {
            Ok(())
        } else {
            Err(denied())
        }
    }

    /// May the requester do `action` on `key` in the request's bucket,
    /// falling back to the bucket ACL's `permission`? For the keys of a
    /// multi-object delete, and for extra rights such as bypassing
    /// governance retention.
    pub fn allows(&self, action: &str, key: Option<&str>, fallback: Option<Permission>) -> bool {
        let Some(bucket) = &self.bucket else {
            return false;
        };
        match self.verdict(bucket, action, key, &self.keys) {
            Decision::Deny => false,
            Decision::Allow => true,
            Decision::Unmatched => match fallback {
                Some(permission) => self.acl_grants(bucket, &bucket.acl, permission),
                None => is_owner(&self.requester, bucket),
            },
        }
    }

    /// A key of a multi-object delete, with or without a version id.
    pub fn may_delete_key(&self, key: &str, versioned: bool) -> bool {
        let AclCheck::PerKey(permission) = self.requirement.acl else {
            return true;
        };
        let action = if versioned {
            "s3:DeleteObjectVersion"
        } else {
            self.requirement.action
        };
        self.allows(action, Some(key), Some(permission))
    }

    /// Decides a PutObjectTagging once the tags it sets are known from its
    /// body, when the policy reads `s3:RequestObjectTag/…`.
    pub fn check_request_tags(&self, tags: &[Tag]) -> S3Result<()> {
        let Some(bucket) = &self.bucket else {
            return Ok(());
        };
        if !self
            .policy
            .as_ref()
            .is_some_and(|p| p.reads_key("s3:requestobjecttag"))
        {
            return Ok(());
        }
        let mut keys = self.keys.clone();
        context::add_request_tags(&mut keys, tags);
        let granted =
            match self.verdict(bucket, self.requirement.action, self.key.as_deref(), &keys) {
                Decision::Deny => false,
                Decision::Allow => true,
                Decision::Unmatched => self.acl_fallback(bucket),
            };
        if granted { Ok(()) } else { Err(denied()) }
    }

    /// May the requester read the copy source `key` of `bucket` (any
    /// bucket), whose ACL is `object_acl` (None: no such object)?
    pub fn check_copy_source(
        &self,
        req: &S3Request,
        bucket: &BucketRecord,
        key: &str,
        versioned: bool,
        object_acl: Option<&Acl>,
    ) -> S3Result<()> {
        let action = if versioned {
            "s3:GetObjectVersion"
        } else {
            "s3:GetObject"
        };
        let built;
        let keys = if self.policy.is_none() && bucket.settings.policy.is_some() {
            built = context::request_keys(req, SystemTime::now());
            &built
        } else {
            &self.keys
        };
        let granted = match self.verdict(bucket, action, Some(key), keys) {
            Decision::Deny => false,
            Decision::Allow => true,
            Decision::Unmatched => match object_acl {
                Some(acl) => self.acl_grants(bucket, acl, Permission::Read),
                None => self.acl_grants(bucket, &bucket.acl, Permission::Read),
            },
        };
        if granted { Ok(()) } else { Err(denied()) }
    }
}

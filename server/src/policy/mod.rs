//! Bucket policies: IAM policy documents as S3 stores them, and the one
//! evaluation every request's authorization goes through (`s3::access`).
//!
//! This layer knows policy JSON and IAM's evaluation rules only — nothing of
//! S3 requests, errors or handlers: the caller describes a request as a
//! principal, an action, a resource and condition keys.

mod condition;
mod document;
mod evaluate;
mod pattern;
#[cfg(test)]
mod tests;

pub use document::{MAX_POLICY_BYTES, Policy, PolicyError};
pub use evaluate::{Decision, Principal, RequestContext};

//! Signatures of browser form uploads (POST Object): the form carries its
//! credentials, and what is signed is the base64 policy document itself —
//! with SigV4 (`x-amz-algorithm`, `x-amz-credential`, `x-amz-date`,
//! `x-amz-signature`) or SigV2 (`AWSAccessKeyId`, `signature`).

use super::credentials::Credentials;
use super::{sigv2, sigv4};
use crate::acl::Requester;
use crate::s3::error::{S3Error, S3ErrorCode};
use subtle::ConstantTimeEq;

fn missing(name: &str) -> S3Error {
    S3Error::invalid_argument(format!(
        "Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
    ))
    .detail("ArgumentName", name)
}

fn same(expected: &str, provided: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(provided.trim().as_bytes()))
}

/// Who signed the form: anonymous when it carries no credentials at all;
/// otherwise the user whose key signs `policy` (which must be present).
pub fn authenticate_form(
    field: &dyn Fn(&str) -> Option<String>,
    credentials: &Credentials,
) -> Result<Requester, S3Error> {
    let v4 = field("x-amz-credential").is_some() || field("x-amz-algorithm").is_some();
    let v2 = field("awsaccesskeyid").is_some();
    if !v4 && !v2 {
        return Ok(Requester::Anonymous);
    }
    let policy = field("policy").ok_or_else(|| missing("policy"))?;
    if v4 {
        let algorithm = field("x-amz-algorithm").ok_or_else(|| missing("x-amz-algorithm"))?;
        if algorithm.trim() != "AWS4-HMAC-SHA256" {
            return Err(S3Error::invalid_argument(
                "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
            )
            .detail("ArgumentName", "x-amz-algorithm"));
        }
        let credential = field("x-amz-credential").ok_or_else(|| missing("x-amz-credential"))?;
        let date = field("x-amz-date").ok_or_else(|| missing("x-amz-date"))?;
        let signature = field("x-amz-signature").ok_or_else(|| missing("x-amz-signature"))?;
        let parts: Vec<&str> = credential.trim().split('/').collect();
        let [access_key, day, region, service, "aws4_request"] = parts.as_slice() else {
            return Err(S3Error::invalid_argument("Invalid credential in the form")
                .detail("ArgumentName", "x-amz-credential")
                .detail("ArgumentValue", credential.as_str()));
        };
        if !date.trim().starts_with(day) || super::parse_amz_date(date.trim()).is_none() {
            return Err(S3Error::invalid_argument(
                "x-amz-date does not match the date of x-amz-credential",
            )
            .detail("ArgumentName", "x-amz-date"));
        }
        let user = credentials.get(access_key).ok_or_else(|| {
            S3Error::new(S3ErrorCode::InvalidAccessKeyId).detail("AWSAccessKeyId", *access_key)
        })?;
        let key = credentials.signing_key(user, day, region, service);
        let expected = hex::encode(sigv4::hmac_sha256(&key, policy.as_bytes()));
        if !same(&expected, &signature) {
            return Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch));
        }
        return Ok(Requester::User(user.owner.clone()));
    }
    let access_key = field("awsaccesskeyid").unwrap_or_default();
    let signature = field("signature").ok_or_else(|| missing("signature"))?;
    let user = credentials.get(access_key.trim()).ok_or_else(|| {
        S3Error::new(S3ErrorCode::InvalidAccessKeyId).detail("AWSAccessKeyId", access_key.trim())
    })?;
    let expected = sigv2::sign(user.secret_key.expose(), &policy);
    if !same(&expected, &signature) {
        return Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch));
    }
    Ok(Requester::User(user.owner.clone()))
}

//! GetBucketVersioning and PutBucketVersioning.

use super::{S3Response, empty_response, meta_error, request_bucket, xml_response};
use crate::app::App;
use crate::meta::Command;
use crate::meta::model::Versioning;
use crate::s3::body::read_small;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlWriter};
use http::StatusCode;
use serde::Deserialize;

pub async fn get_versioning(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let mut w = XmlWriter::root("VersioningConfiguration");
    // A bucket that was never versioned has no Status element.
    match bucket.settings.versioning {
        Versioning::Unversioned => {}
        Versioning::Enabled => w.element("Status", "Enabled"),
        Versioning::Suspended => w.element("Status", "Suspended"),
    }
    w.close("VersioningConfiguration");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

#[derive(Deserialize)]
struct VersioningConfiguration {
    #[serde(rename = "Status")]
    status: Option<String>,
    #[serde(rename = "MfaDelete")]
    mfa_delete: Option<String>,
}

pub async fn put_versioning(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let body = read_small(req, 64 * 1024).await?;
    let config: VersioningConfiguration = xml::parse(&body, "VersioningConfiguration")?;
    match config.mfa_delete.as_deref().map(str::trim) {
        None | Some("Disabled") => {}
        // MFA delete needs an MFA device to authenticate deletes with, which
        // this server does not have: refused as S3 refuses it without one.
        Some("Enabled") if req.header("x-amz-mfa").is_none() => {
            return Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "Mfa Authentication must be used for this request",
            ));
        }
        Some("Enabled") => {
            return Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                "MFA delete is not implemented by this server.",
            ));
        }
        Some(_) => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    }
    let versioning = match config.status.as_deref().map(str::trim) {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        // No status leaves it as it is (only MfaDelete was being set).
        None if config.mfa_delete.is_some() => return Ok(empty_response(StatusCode::OK)),
        _ => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    };
    app.cluster
        .write(Command::SetBucketVersioning {
            name: bucket.name.clone(),
            versioning,
        })
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    Ok(empty_response(StatusCode::OK))
}

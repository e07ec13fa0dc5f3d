//! Get/Put/DeleteBucketEncryption: the default encryption of objects written
//! without SSE headers.

use super::{S3Response, request_bucket, set_bucket_setting, xml_response};
use crate::app::App;
use crate::meta::Command;
use crate::meta::model::{BucketEncryption, SseAlgorithm};
use crate::s3::body::read_small;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::request::S3Request;
use crate::s3::sse::resolve_kms_key;
use crate::s3::xml::{self, XmlWriter};
use http::StatusCode;
use serde::Deserialize;

#[derive(Deserialize)]
struct Configuration {
    #[serde(rename = "Rule", default)]
    rules: Vec<XmlRule>,
}

#[derive(Deserialize)]
struct XmlRule {
    #[serde(rename = "ApplyServerSideEncryptionByDefault")]
    default: Option<XmlDefault>,
    #[serde(rename = "BucketKeyEnabled")]
    bucket_key: Option<String>,
    #[serde(rename = "BlockedEncryptionTypes")]
    blocked: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct XmlDefault {
    #[serde(rename = "SSEAlgorithm")]
    algorithm: String,
    #[serde(rename = "KMSMasterKeyID")]
    kms_key_id: Option<String>,
}

fn parse(app: &App, body: &[u8]) -> S3Result<BucketEncryption> {
    let config: Configuration = xml::parse(body, "ServerSideEncryptionConfiguration")?;
    let [rule] = config.rules.as_slice() else {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    };
    if rule.blocked.is_some() {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Blocking encryption types (BlockedEncryptionTypes) is not implemented by this server.",
        ));
    }
    let default = rule
        .default
        .as_ref()
        .ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))?;
    let bucket_key = match rule.bucket_key.as_deref().map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    };
    let key_id = default
        .kms_key_id
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty());
    match default.algorithm.trim() {
        "AES256" => {
            if key_id.is_some() {
                return Err(S3Error::invalid_argument(
                    "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms",
                ));
            }
            resolve_kms_key(&app.keyring, None)?;
            Ok(BucketEncryption {
                algorithm: SseAlgorithm::Aes256,
                kms_key_id: None,
                bucket_key,
            })
        }
        "aws:kms" => {
            let resolved = resolve_kms_key(&app.keyring, key_id)?;
            // Without a key id the keyring's default applies, as it changes.
            Ok(BucketEncryption {
                algorithm: SseAlgorithm::Kms,
                kms_key_id: key_id.map(|_| resolved),
                bucket_key,
            })
        }
        "aws:kms:dsse" => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Dual-layer server-side encryption (aws:kms:dsse) is not implemented by this server.",
        )),
        _ => Err(S3Error::new(S3ErrorCode::MalformedXML)),
    }
}

pub async fn get(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let config = bucket.settings.encryption.as_ref().ok_or_else(|| {
        S3Error::new(S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError)
            .detail("BucketName", &bucket.name)
    })?;
    let mut w = XmlWriter::root("ServerSideEncryptionConfiguration");
    w.open("Rule");
    w.open("ApplyServerSideEncryptionByDefault");
    w.element("SSEAlgorithm", config.algorithm.as_str());
    w.optional("KMSMasterKeyID", config.kms_key_id.as_deref());
    w.close("ApplyServerSideEncryptionByDefault");
    w.boolean("BucketKeyEnabled", config.bucket_key);
    w.close("Rule");
    w.close("ServerSideEncryptionConfiguration");
    Ok(xml_response(StatusCode::OK, w.finish()))
}

pub async fn put(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let body = read_small(req, 64 * 1024).await?;
    let encryption = parse(app, &body)?;
    set_bucket_setting(app, req, StatusCode::OK, |name| {
        Command::SetBucketEncryption {
            name,
            encryption: Some(encryption),
        }
    })
    .await
}

pub async fn delete(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    set_bucket_setting(app, req, StatusCode::NO_CONTENT, |name| {
        Command::SetBucketEncryption {
            name,
            encryption: None,
        }
    })
    .await
}

//! Object lock as S3 spells it: the `x-amz-object-lock-*` headers of writes
//! and the `ObjectLockConfiguration`, `Retention` and `LegalHold` documents.
//! The rules themselves live in `meta::lock`.

use crate::meta::model::{
    BucketRecord, DefaultRetention, LockMode, ObjectLockConfig, ObjectMeta, Retention,
    RetentionPeriod,
};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlWriter};
use serde::Deserialize;

const MODE: &str = "x-amz-object-lock-mode";
const UNTIL: &str = "x-amz-object-lock-retain-until-date";
const LEGAL_HOLD: &str = "x-amz-object-lock-legal-hold";

/// ISO 8601 / RFC 3339 timestamps, with or without fractional seconds.
pub fn parse_date(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn future_date(text: &str, now_ms: i64, name: &'static str) -> S3Result<i64> {
    let until = parse_date(text).ok_or_else(|| {
        S3Error::invalid_argument("The retain until date must be provided in ISO 8601 format")
            .detail("ArgumentName", name)
    })?;
    if until <= now_ms {
        return Err(
            S3Error::invalid_argument("The retain until date must be in the future!")
                .detail("ArgumentName", name),
        );
    }
    Ok(until)
}

fn legal_hold_status(text: &str) -> Option<bool> {
    match text.trim() {
        "ON" => Some(true),
        "OFF" => Some(false),
        _ => None,
    }
}

/// Lock settings a write names in its headers.
#[derive(Debug, Default, Clone, Copy)]
pub struct LockHeaders {
    pub retention: Option<Retention>,
    pub legal_hold: Option<bool>,
}

impl LockHeaders {
    pub fn is_empty(&self) -> bool {
        self.retention.is_none() && self.legal_hold.is_none()
    }
}

pub fn from_headers(req: &S3Request, now_ms: i64) -> S3Result<LockHeaders> {
    let retention = match (req.header(MODE), req.header(UNTIL)) {
        (None, None) => None,
        (Some(mode), Some(until)) => Some(Retention {
            mode: LockMode::parse(mode.trim()).ok_or_else(|| {
                S3Error::invalid_argument("Unknown wormMode directive.")
                    .detail("ArgumentName", MODE)
                    .detail("ArgumentValue", mode)
            })?,
            until_ms: future_date(until, now_ms, UNTIL)?,
        }),
        _ => {
            return Err(S3Error::invalid_argument(
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
            ));
        }
    };
    let legal_hold = match req.header(LEGAL_HOLD) {
        None => None,
        Some(v) => Some(legal_hold_status(v).ok_or_else(|| {
            S3Error::invalid_argument("Legal Hold must be either of 'ON' or 'OFF'")
                .detail("ArgumentName", LEGAL_HOLD)
                .detail("ArgumentValue", v)
        })?),
    };
    Ok(LockHeaders {
        retention,
        legal_hold,
    })
}

/// Gives a new version the lock settings its write names, or the bucket's
/// default retention. Writes that name lock settings need a lock-enabled
/// bucket.
pub fn apply_to_new_version(
    meta: &mut ObjectMeta,
    lock: LockHeaders,
    bucket: &BucketRecord,
    now_ms: i64,
) -> S3Result<()> {
    let Some(config) = &bucket.settings.object_lock else {
        if lock.is_empty() {
            return Ok(());
        }
        return Err(S3Error::invalid_request(
            "Bucket is missing ObjectLockConfiguration",
        ));
    };
    meta.retention = lock
        .retention
        .or_else(|| config.default_retention.map(|d| d.retention_from(now_ms)));
    meta.legal_hold = lock.legal_hold;
    Ok(())
}

/// Whether a request proves its body's integrity (Content-MD5 or a
/// flexible checksum, in a header or a trailer).
pub fn has_integrity_header(req: &S3Request) -> bool {
    req.header("content-md5").is_some()
        || req.header("x-amz-sdk-checksum-algorithm").is_some()
        || req.header("x-amz-trailer").is_some()
        || req.headers.keys().any(|h| {
            h.as_str().starts_with("x-amz-checksum-") && h.as_str() != "x-amz-checksum-type"
        })
}

/// AWS wants proof of integrity on writes that set lock parameters.
pub fn require_integrity_header(req: &S3Request, lock: &LockHeaders) -> S3Result<()> {
    if lock.is_empty() || has_integrity_header(req) {
        Ok(())
    } else {
        Err(S3Error::invalid_request(
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters",
        ))
    }
}

fn malformed() -> S3Error {
    S3Error::new(S3ErrorCode::MalformedXML)
}

#[derive(Deserialize)]
struct XmlLockConfiguration {
    #[serde(rename = "ObjectLockEnabled")]
    enabled: Option<String>,
    #[serde(rename = "Rule")]
    rule: Option<XmlRule>,
}

#[derive(Deserialize)]
struct XmlRule {
    #[serde(rename = "DefaultRetention")]
    default_retention: Option<XmlDefaultRetention>,
}

#[derive(Deserialize)]
struct XmlDefaultRetention {
    #[serde(rename = "Mode")]
    mode: Option<String>,
    #[serde(rename = "Days")]
    days: Option<String>,
    #[serde(rename = "Years")]
    years: Option<String>,
}

fn period(value: &str) -> S3Result<u32> {
    let n: i64 = value.trim().parse().map_err(|_| malformed())?;
    // S3 caps default retention at 100 years.
    if n <= 0 || n > 36_500 {
        return Err(S3Error::new(S3ErrorCode::InvalidRetentionPeriod));
    }
    Ok(n as u32)
}

pub fn parse_configuration(body: &[u8]) -> S3Result<ObjectLockConfig> {
    let doc: XmlLockConfiguration = xml::parse(body, "ObjectLockConfiguration")?;
    if doc.enabled.as_deref().map(str::trim) != Some("Enabled") {
        return Err(malformed());
    }
    let default_retention = match doc.rule {
        None => None,
        Some(XmlRule {
            default_retention: None,
        }) => return Err(malformed()),
        Some(XmlRule {
            default_retention: Some(d),
        }) => {
            let mode = d
                .mode
                .as_deref()
                .and_then(|m| LockMode::parse(m.trim()))
                .ok_or_else(malformed)?;
            let period = match (d.days.as_deref(), d.years.as_deref()) {
                (Some(days), None) => RetentionPeriod::Days(period(days)?),
                (None, Some(years)) => {
                    let years = period(years)?;
                    if years > 100 {
                        return Err(S3Error::new(S3ErrorCode::InvalidRetentionPeriod));
                    }
                    RetentionPeriod::Years(years)
                }
                _ => return Err(malformed()),
            };
            Some(DefaultRetention { mode, period })
        }
    };
    Ok(ObjectLockConfig { default_retention })
}

pub fn render_configuration(config: &ObjectLockConfig) -> String {
    let mut w = XmlWriter::root("ObjectLockConfiguration");
    w.element("ObjectLockEnabled", "Enabled");
    if let Some(d) = &config.default_retention {
        w.open("Rule");
        w.open("DefaultRetention");
        w.element("Mode", d.mode.as_str());
        match d.period {
            RetentionPeriod::Days(n) => w.element("Days", &n.to_string()),
            RetentionPeriod::Years(n) => w.element("Years", &n.to_string()),
        }
        w.close("DefaultRetention");
        w.close("Rule");
    }
    w.close("ObjectLockConfiguration");
    w.finish()
}

#[derive(Deserialize)]
struct XmlRetention {
    #[serde(rename = "Mode")]
    mode: Option<String>,
    #[serde(rename = "RetainUntilDate")]
    until: Option<String>,
}

/// A `Retention` document: a mode and a future date, or neither (which
/// removes the retention).
pub fn parse_retention(body: &[u8], now_ms: i64) -> S3Result<Option<Retention>> {
    let doc: XmlRetention = xml::parse(body, "Retention")?;
    match (doc.mode, doc.until) {
        (None, None) => Ok(None),
        (Some(mode), Some(until)) => Ok(Some(Retention {
            mode: LockMode::parse(mode.trim()).ok_or_else(malformed)?,
            until_ms: future_date(&until, now_ms, "RetainUntilDate")?,
        })),
        _ => Err(malformed()),
    }
}

pub fn render_retention(retention: &Retention) -> String {
    let mut w = XmlWriter::root("Retention");
    w.element("Mode", retention.mode.as_str());
    w.element("RetainUntilDate", &xml::timestamp(retention.until_ms));
    w.close("Retention");
    w.finish()
}

#[derive(Deserialize)]
struct XmlLegalHold {
    #[serde(rename = "Status")]
    status: Option<String>,
}

pub fn parse_legal_hold(body: &[u8]) -> S3Result<bool> {
    let doc: XmlLegalHold = xml::parse(body, "LegalHold")?;
    doc.status
        .as_deref()
        .and_then(legal_hold_status)
        .ok_or_else(malformed)
}

pub fn render_legal_hold(on: bool) -> String {
    let mut w = XmlWriter::root("LegalHold");
    w.element("Status", if on { "ON" } else { "OFF" });
    w.close("LegalHold");
    w.finish()
}

/// The lock headers GET and HEAD return for a version.
pub fn write_response_headers(headers: &mut http::HeaderMap, meta: &ObjectMeta) {
    let mut insert = |name: &'static str, value: &str| {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    if let Some(r) = &meta.retention {
        insert(MODE, r.mode.as_str());
        insert(UNTIL, &xml::timestamp(r.until_ms));
    }
    if let Some(on) = meta.legal_hold {
        insert(LEGAL_HOLD, if on { "ON" } else { "OFF" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_parse_as_s3_does() {
        let ok = b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>";
        let config = parse_configuration(ok).unwrap();
        assert_eq!(
            config.default_retention,
            Some(DefaultRetention {
                mode: LockMode::Governance,
                period: RetentionPeriod::Days(1)
            })
        );
        assert_eq!(
            parse_configuration(render_configuration(&config).as_bytes()).unwrap(),
            config
        );
        let bare = b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>";
        assert_eq!(parse_configuration(bare).unwrap().default_retention, None);
        let cases: [(&[u8], S3ErrorCode); 6] = [
            (b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days><Years>1</Years></DefaultRetention></Rule></ObjectLockConfiguration>", S3ErrorCode::MalformedXML),
            (b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>0</Days></DefaultRetention></Rule></ObjectLockConfiguration>", S3ErrorCode::InvalidRetentionPeriod),
            (b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Years>-1</Years></DefaultRetention></Rule></ObjectLockConfiguration>", S3ErrorCode::InvalidRetentionPeriod),
            (b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>governance</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>", S3ErrorCode::MalformedXML),
            (b"<ObjectLockConfiguration><ObjectLockEnabled>Disabled</ObjectLockEnabled></ObjectLockConfiguration>", S3ErrorCode::MalformedXML),
            (b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule></Rule></ObjectLockConfiguration>", S3ErrorCode::MalformedXML),
        ];
        for (body, code) in cases {
            assert_eq!(
                parse_configuration(body).unwrap_err().code,
                code,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn retention_documents_need_both_fields_and_a_future_date() {
        let now = parse_date("2026-01-01T00:00:00Z").unwrap();
        let r = parse_retention(
            b"<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>2030-01-01T00:00:00.000Z</RetainUntilDate></Retention>",
            now,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.mode, LockMode::Compliance);
        assert_eq!(
            parse_retention(render_retention(&r).as_bytes(), now).unwrap(),
            Some(r)
        );
        assert_eq!(
            parse_retention(b"<Retention></Retention>", now).unwrap(),
            None
        );
        assert_eq!(
            parse_retention(b"<Retention><Mode>GOVERNANCE</Mode></Retention>", now)
                .unwrap_err()
                .code,
            S3ErrorCode::MalformedXML
        );
        assert_eq!(
            parse_retention(b"<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2020-01-01T00:00:00Z</RetainUntilDate></Retention>", now)
                .unwrap_err()
                .code,
            S3ErrorCode::InvalidArgument
        );
        assert!(parse_legal_hold(b"<LegalHold><Status>ON</Status></LegalHold>").unwrap());
        assert!(!parse_legal_hold(render_legal_hold(false).as_bytes()).unwrap());
        assert_eq!(
            parse_legal_hold(b"<LegalHold><Status>on</Status></LegalHold>")
                .unwrap_err()
                .code,
            S3ErrorCode::MalformedXML
        );
    }
}

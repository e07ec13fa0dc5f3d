//! Bucket lifecycle configuration in S3's spelling: the
//! PutBucketLifecycleConfiguration document with S3's validation, its
//! rendering for Get, and the `x-amz-expiration` header of objects a rule
//! will expire. Transitions between storage classes are refused: nothing
//! here moves data between backends.

use crate::meta::lifecycle::current_expiry;
use crate::meta::model::{LifecycleFilter, LifecycleRule, Tag};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::xml::{self, XmlWriter};
use serde::Deserialize;
use time::OffsetDateTime;

const MAX_RULES: usize = 1000;
const MAX_ID: usize = 255;

#[derive(Deserialize)]
struct Configuration {
    #[serde(rename = "Rule", default)]
    rules: Vec<XmlRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlRule {
    #[serde(rename = "ID")]
    id: Option<String>,
    status: Option<String>,
    prefix: Option<String>,
    filter: Option<XmlFilter>,
    expiration: Option<XmlExpiration>,
    noncurrent_version_expiration: Option<XmlNoncurrent>,
    abort_incomplete_multipart_upload: Option<XmlAbort>,
    #[serde(default)]
    transition: Vec<XmlTransition>,
    #[serde(default)]
    noncurrent_version_transition: Vec<XmlTransition>,
}

/// Read only to refuse well-formed transitions as unimplemented and bad
/// ones as invalid.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlTransition {
    days: Option<String>,
    noncurrent_days: Option<String>,
    date: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct XmlFilter {
    prefix: Option<String>,
    tag: Option<XmlTag>,
    object_size_greater_than: Option<String>,
    object_size_less_than: Option<String>,
    and: Option<XmlAnd>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct XmlAnd {
    prefix: Option<String>,
    #[serde(rename = "Tag", default)]
    tags: Vec<XmlTag>,
    object_size_greater_than: Option<String>,
    object_size_less_than: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlTag {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlExpiration {
    days: Option<String>,
    date: Option<String>,
    expired_object_delete_marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlNoncurrent {
    noncurrent_days: Option<String>,
    newer_noncurrent_versions: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlAbort {
    days_after_initiation: Option<String>,
}

fn malformed() -> S3Error {
    S3Error::new(S3ErrorCode::MalformedXML)
}

/// A positive day count named `what`.
fn days(value: Option<&str>, what: &str) -> S3Result<Option<u32>> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.trim().parse::<i64>() {
        Ok(n) if n > 0 && n <= i64::from(u32::MAX) => Ok(Some(n as u32)),
        _ => Err(S3Error::invalid_argument(format!(
            "'{what}' for {} action must be a positive integer",
            if what == "Days" { "Expiration" } else { what }
        ))),
    }
}

fn size(value: Option<&str>) -> S3Result<Option<u64>> {
    value
        .map(|v| v.trim().parse::<u64>().map_err(|_| malformed()))
        .transpose()
}

fn flag(value: Option<&str>) -> S3Result<bool> {
    match value.map(str::trim) {
        None => Ok(false),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(malformed()),
    }
}

/// `Date`: ISO 8601 at midnight UTC.
fn date(value: &str) -> S3Result<i64> {
    let value = value.trim();
    let parsed = OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .or_else(|_| {
            // `2030-01-01` or `2030-01-01T00:00:00` without a zone.
            let (day, rest) = match (value.get(..10), value.get(10..)) {
                (Some(day), Some(rest)) => (day, rest),
                _ => (value, ""),
            };
            if !matches!(rest, "" | "T00:00:00" | "T00:00:00.000") {
                return Err(time::error::Parse::ParseFromDescription(
                    time::error::ParseFromDescription::InvalidComponent("date"),
                ));
            }
            time::Date::parse(
                day,
                &time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map(|d| d.midnight().assume_utc())
        })
        .map_err(|_| S3Error::invalid_argument("Invalid date in lifecycle rule"))?;
    let ms = (parsed.unix_timestamp_nanos() / 1_000_000) as i64;
    if ms.rem_euclid(crate::meta::lifecycle::DAY_MS) != 0 {
        return Err(S3Error::invalid_argument("'Date' must be at midnight GMT"));
    }
    Ok(ms)
}

fn tag(x: XmlTag) -> Tag {
    Tag {
        key: x.key,
        value: x.value,
    }
}

fn filter(rule_prefix: Option<String>, filter: Option<XmlFilter>) -> S3Result<LifecycleFilter> {
    match (rule_prefix, filter) {
        (Some(_), Some(_)) => Err(malformed()),
        (Some(prefix), None) => Ok(LifecycleFilter {
            prefix,
            ..Default::default()
        }),
        (None, None) => Ok(LifecycleFilter {
            as_filter: true,
            ..Default::default()
        }),
        (None, Some(f)) => {
            let given = usize::from(f.prefix.is_some())
                + usize::from(f.tag.is_some())
                + usize::from(f.object_size_greater_than.is_some())
                + usize::from(f.object_size_less_than.is_some())
                + usize::from(f.and.is_some());
            if given > 1 {
                return Err(malformed());
            }
            if let Some(and) = f.and {
                return Ok(LifecycleFilter {
                    prefix: and.prefix.unwrap_or_default(),
                    tags: and.tags.into_iter().map(tag).collect(),
                    size_greater_than: size(and.object_size_greater_than.as_deref())?,
                    size_less_than: size(and.object_size_less_than.as_deref())?,
                    as_filter: true,
                    as_and: true,
                });
            }
            Ok(LifecycleFilter {
                prefix: f.prefix.unwrap_or_default(),
                tags: f.tag.into_iter().map(tag).collect(),
                size_greater_than: size(f.object_size_greater_than.as_deref())?,
                size_less_than: size(f.object_size_less_than.as_deref())?,
                as_filter: true,
                as_and: false,
            })
        }
    }
}

fn rule(x: XmlRule) -> S3Result<LifecycleRule> {
    for t in x.transition.iter().chain(&x.noncurrent_version_transition) {
        days(t.days.as_deref(), "Days")?;
        days(t.noncurrent_days.as_deref(), "NoncurrentDays")?;
        t.date.as_deref().map(date).transpose()?;
    }
    if !x.transition.is_empty() || !x.noncurrent_version_transition.is_empty() {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Lifecycle transitions between storage classes are not implemented by this server.",
        ));
    }
    let enabled = match x.status.as_deref().map(str::trim) {
        Some("Enabled") => true,
        Some("Disabled") => false,
        _ => return Err(malformed()),
    };
    let id =
        x.id.map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    if id.len() > MAX_ID {
        return Err(S3Error::invalid_argument(
            "ID length should not exceed allowed limit of 255",
        ));
    }
    let mut out = LifecycleRule {
        id,
        enabled,
        filter: filter(x.prefix, x.filter)?,
        ..Default::default()
    };
    if let Some(e) = x.expiration {
        out.expiration_days = days(e.days.as_deref(), "Days")?;
        out.expiration_date_ms = e.date.as_deref().map(date).transpose()?;
        out.expired_object_delete_marker = flag(e.expired_object_delete_marker.as_deref())?;
        let given = usize::from(out.expiration_days.is_some())
            + usize::from(out.expiration_date_ms.is_some())
            + usize::from(e.expired_object_delete_marker.is_some());
        if given != 1 {
            return Err(malformed());
        }
        if out.expired_object_delete_marker && !out.filter.tags.is_empty() {
            return Err(S3Error::invalid_argument(
                "ExpiredObjectDeleteMarker cannot be specified with object tags",
            ));
        }
    }
    if let Some(n) = x.noncurrent_version_expiration {
        out.noncurrent_days = days(n.noncurrent_days.as_deref(), "NoncurrentDays")?;
        if out.noncurrent_days.is_none() {
            return Err(malformed());
        }
        out.newer_noncurrent_versions = match n.newer_noncurrent_versions.as_deref() {
            None => None,
            Some(v) => Some(
                v.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| {
                        S3Error::invalid_argument(
                            "NewerNoncurrentVersions must be between 1 and 100",
                        )
                    })?,
            ),
        };
    }
    if let Some(a) = x.abort_incomplete_multipart_upload {
        out.abort_upload_days = days(a.days_after_initiation.as_deref(), "DaysAfterInitiation")?;
        if out.abort_upload_days.is_none() {
            return Err(malformed());
        }
        if !out.filter.tags.is_empty() {
            return Err(S3Error::invalid_argument(
                "AbortIncompleteMultipartUpload cannot be specified with tags",
            ));
        }
    }
    let acts = out.expiration_days.is_some()
        || out.expiration_date_ms.is_some()
        || out.expired_object_delete_marker
        || out.noncurrent_days.is_some()
        || out.abort_upload_days.is_some();
    if !acts {
        return Err(S3Error::invalid_request(
            "At least one action needs to be specified in a rule",
        ));
    }
    Ok(out)
}

/// Parses and checks a PutBucketLifecycleConfiguration body.
pub fn parse(body: &[u8]) -> S3Result<Vec<LifecycleRule>> {
    let config: Configuration = xml::parse(body, "LifecycleConfiguration")?;
    if config.rules.is_empty() || config.rules.len() > MAX_RULES {
        return Err(malformed());
    }
    let rules = config
        .rules
        .into_iter()
        .map(rule)
        .collect::<S3Result<Vec<_>>>()?;
    let mut ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(S3Error::invalid_argument(
            "Rule ID must be unique. Found same ID for more than one rule",
        ));
    }
    Ok(rules)
}

fn write_tag(w: &mut XmlWriter, t: &Tag) {
    w.open("Tag");
    w.element("Key", &t.key);
    w.element("Value", &t.value);
    w.close("Tag");
}

fn write_filter(w: &mut XmlWriter, f: &LifecycleFilter) {
    if !f.as_filter {
        w.element("Prefix", &f.prefix);
        return;
    }
    w.open("Filter");
    let many = f.as_and;
    if many {
        w.open("And");
    }
    if many
        || !f.prefix.is_empty()
        || (f.tags.is_empty() && f.size_greater_than.is_none() && f.size_less_than.is_none())
    {
        w.element("Prefix", &f.prefix);
    }
    for t in &f.tags {
        write_tag(w, t);
    }
    if let Some(n) = f.size_greater_than {
        w.element("ObjectSizeGreaterThan", &n.to_string());
    }
    if let Some(n) = f.size_less_than {
        w.element("ObjectSizeLessThan", &n.to_string());
    }
    if many {
        w.close("And");
    }
    w.close("Filter");
}

pub fn to_xml(rules: &[LifecycleRule]) -> String {
    let mut w = XmlWriter::root("LifecycleConfiguration");
    for r in rules {
        w.open("Rule");
        w.element("ID", &r.id);
        write_filter(&mut w, &r.filter);
        w.element("Status", if r.enabled { "Enabled" } else { "Disabled" });
        if r.expiration_days.is_some()
            || r.expiration_date_ms.is_some()
            || r.expired_object_delete_marker
        {
            w.open("Expiration");
            if let Some(d) = r.expiration_days {
                w.element("Days", &d.to_string());
            }
            if let Some(ms) = r.expiration_date_ms {
                w.element("Date", &xml::timestamp(ms));
            }
            if r.expired_object_delete_marker {
                w.element("ExpiredObjectDeleteMarker", "true");
            }
            w.close("Expiration");
        }
        if let Some(d) = r.noncurrent_days {
            w.open("NoncurrentVersionExpiration");
            w.element("NoncurrentDays", &d.to_string());
            if let Some(n) = r.newer_noncurrent_versions {
                w.element("NewerNoncurrentVersions", &n.to_string());
            }
            w.close("NoncurrentVersionExpiration");
        }
        if let Some(d) = r.abort_upload_days {
            w.open("AbortIncompleteMultipartUpload");
            w.element("DaysAfterInitiation", &d.to_string());
            w.close("AbortIncompleteMultipartUpload");
        }
        w.close("Rule");
    }
    w.close("LifecycleConfiguration");
    w.finish()
}

/// `x-amz-expiration: expiry-date="…", rule-id="…"` for a current version
/// a rule will expire.
pub fn expiration_header(
    rules: &[LifecycleRule],
    key: &str,
    size: u64,
    tags: &[Tag],
    modified_ms: i64,
    day_ms: i64,
) -> Option<String> {
    let (due, id) = current_expiry(rules, key, size, tags, modified_ms, day_ms)?;
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(due.max(0) as u64);
    Some(format!(
        "expiry-date=\"{}\", rule-id=\"{}\"",
        httpdate::fmt_http_date(when),
        id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(rules: &str) -> String {
        format!("<LifecycleConfiguration>{rules}</LifecycleConfiguration>")
    }

    fn code(body: &str) -> S3ErrorCode {
        parse(body.as_bytes()).unwrap_err().code
    }

    #[test]
    fn rules_round_trip() {
        let body = doc(
            "<Rule><ID>logs</ID><Filter><And><Prefix>logs/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>\
             <ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status>\
             <Expiration><Days>30</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays>\
             <NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>\
             <Rule><ID>old</ID><Prefix>tmp/</Prefix><Status>Disabled</Status>\
             <Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration></Rule>\
             <Rule><ID>mpu</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status>\
             <AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>",
        );
        let rules = parse(body.as_bytes()).unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].filter.prefix, "logs/");
        assert_eq!(rules[0].filter.size_greater_than, Some(10));
        assert_eq!(rules[0].newer_noncurrent_versions, Some(2));
        assert!(!rules[1].enabled && !rules[1].filter.as_filter);
        assert_eq!(rules[2].abort_upload_days, Some(2));
        let again = parse(to_xml(&rules).as_bytes()).unwrap();
        assert_eq!(again, rules);
    }

    #[test]
    fn bad_rules_get_s3_errors() {
        let with = |inner: &str| doc(&format!("<Rule><ID>r</ID><Prefix></Prefix>{inner}</Rule>"));
        assert_eq!(code(&doc("")), S3ErrorCode::MalformedXML);
        assert_eq!(
            code(&with("<Expiration><Days>1</Days></Expiration>")),
            S3ErrorCode::MalformedXML,
            "no Status"
        );
        assert_eq!(
            code(&with(
                "<Status>On</Status><Expiration><Days>1</Days></Expiration>"
            )),
            S3ErrorCode::MalformedXML
        );
        assert_eq!(
            code(&with(
                "<Status>Enabled</Status><Expiration><Days>0</Days></Expiration>"
            )),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code(&with(
                "<Status>Enabled</Status><Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration>"
            )),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code(&with(
                "<Status>Enabled</Status><Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date></Expiration>"
            )),
            S3ErrorCode::MalformedXML
        );
        assert_eq!(
            code(&with("<Status>Enabled</Status>")),
            S3ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(&with(
                "<Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>"
            )),
            S3ErrorCode::NotImplemented
        );
        let twice = doc(
            "<Rule><ID>a</ID><Prefix></Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>\
             <Rule><ID>a</ID><Prefix></Prefix><Status>Enabled</Status><Expiration><Days>2</Days></Expiration></Rule>",
        );
        assert_eq!(code(&twice), S3ErrorCode::InvalidArgument);
        let long = doc(&format!(
            "<Rule><ID>{}</ID><Prefix></Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>",
            "x".repeat(256)
        ));
        assert_eq!(code(&long), S3ErrorCode::InvalidArgument);
    }

    #[test]
    fn the_expiration_header_names_the_rule_and_day() {
        let rules = parse(
            doc("<Rule><ID>r1</ID><Filter><Prefix>a/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>")
                .as_bytes(),
        )
        .unwrap();
        let header = expiration_header(&rules, "a/x", 1, &[], 0, crate::meta::lifecycle::DAY_MS);
        assert_eq!(
            header.as_deref(),
            Some("expiry-date=\"Fri, 02 Jan 1970 00:00:00 GMT\", rule-id=\"r1\"")
        );
        assert_eq!(expiration_header(&rules, "b/x", 1, &[], 0, 1000), None);
    }
}

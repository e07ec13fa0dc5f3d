//! The policy document of a browser form upload (POST Object): when it
//! expires, and the conditions every form field must meet. Parsing errors
//! are 400 InvalidPolicyDocument; a form the policy does not admit is 403.

use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use serde_json::Value;
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// `{"field": "value"}` or `["eq", "$field", "value"]`.
    Equals { field: String, value: String },
    /// `["starts-with", "$field", "prefix"]`.
    StartsWith { field: String, prefix: String },
    /// `["content-length-range", min, max]`.
    LengthRange { min: u64, max: u64 },
}

#[derive(Debug, Clone)]
pub struct PostPolicy {
    expiration: OffsetDateTime,
    conditions: Vec<Condition>,
}

/// Form fields no condition needs to name.
fn exempt(field: &str) -> bool {
    matches!(
        field,
        "awsaccesskeyid" | "signature" | "x-amz-signature" | "policy" | "file"
    ) || field.starts_with("x-ignore-")
        // Checksums only protect the file; AWS lets them through unnamed.
        || field.starts_with("x-amz-checksum-")
}

fn invalid(message: impl Into<String>) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidPolicyDocument,
        format!("Invalid Policy: {}", message.into()),
    )
}

fn refused(message: impl Into<String>) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::AccessDenied,
        format!("Invalid according to Policy: {}", message.into()),
    )
}

fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `$name` in a condition names a form field, case-insensitively.
fn field_name(value: &Value) -> Option<String> {
    value
        .as_str()
        .and_then(|s| s.strip_prefix('$'))
        .map(str::to_ascii_lowercase)
}

fn parse_condition(value: &Value) -> S3Result<Condition> {
    match value {
        Value::Object(map) if map.len() == 1 => {
            let (field, value) = map
                .iter()
                .next()
                .ok_or_else(|| invalid("Empty condition"))?;
            let value = value
                .as_str()
                .ok_or_else(|| invalid(format!("Condition on {field} must be a string")))?;
            Ok(Condition::Equals {
                field: field.to_ascii_lowercase(),
                value: value.to_string(),
            })
        }
        Value::Array(items) => {
            let op = items
                .first()
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            match (op.as_deref(), items.as_slice()) {
                (Some("content-length-range"), [_, min, max]) => match (number(min), number(max)) {
                    (Some(min), Some(max)) if min <= max => Ok(Condition::LengthRange { min, max }),
                    _ => Err(invalid(
                        "content-length-range needs two lengths, min <= max",
                    )),
                },
                (Some("content-length-range"), _) => {
                    Err(invalid("content-length-range needs two lengths"))
                }
                (Some(op @ ("eq" | "starts-with")), [_, field, value]) => {
                    let field = field_name(field)
                        .ok_or_else(|| invalid(format!("{op} names a field as \"$name\"")))?;
                    let value = value
                        .as_str()
                        .ok_or_else(|| invalid(format!("{op} compares with a string")))?
                        .to_string();
                    Ok(if op == "eq" {
                        Condition::Equals { field, value }
                    } else {
                        Condition::StartsWith {
                            field,
                            prefix: value,
                        }
                    })
                }
                _ => Err(invalid(format!("Unknown condition {value}"))),
            }
        }
        other => Err(invalid(format!("Unknown condition {other}"))),
    }
}

fn condition_text(condition: &Condition) -> String {
    match condition {
        Condition::Equals { field, value } => format!("[\"eq\", \"${field}\", \"{value}\"]"),
        Condition::StartsWith { field, prefix } => {
            format!("[\"starts-with\", \"${field}\", \"{prefix}\"]")
        }
        Condition::LengthRange { min, max } => format!("[\"content-length-range\", {min}, {max}]"),
    }
}

impl PostPolicy {
    /// Decodes the form's base64 `policy` field.
    pub fn parse(encoded: &str) -> S3Result<PostPolicy> {
        let raw = crate::checksum::base64_decode(encoded.trim())
            .ok_or_else(|| invalid("the policy is not base64"))?;
        let value: Value = serde_json::from_slice(&raw)
            .map_err(|e| invalid(format!("the policy is not JSON ({e})")))?;
        let expiration = value
            .get("expiration")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("Policy missing expiration"))?;
        // ISO 8601 with its `T`: RFC 3339's space-separated form is refused.
        let expiration = Some(expiration)
            .filter(|e| e.as_bytes().get(10) == Some(&b'T'))
            .and_then(|e| {
                OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339).ok()
            })
            .ok_or_else(|| invalid(format!("Invalid expiration date {expiration}")))?;
        let conditions = match value.get("conditions") {
            Some(Value::Array(list)) if !list.is_empty() => list
                .iter()
                .map(parse_condition)
                .collect::<S3Result<Vec<_>>>()?,
            Some(Value::Array(_)) => return Err(invalid("Policy has no conditions")),
            _ => return Err(invalid("Policy missing conditions")),
        };
        Ok(PostPolicy {
            expiration,
            conditions,
        })
    }

    /// The size the file must have, if the policy says.
    pub fn length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().find_map(|c| match c {
            Condition::LengthRange { min, max } => Some((*min, *max)),
            _ => None,
        })
    }

    /// Checks the form (fields by lower-cased name, `bucket` included) at
    /// `now`: not expired, every condition met, every field named by one.
    pub fn admit(&self, fields: &[(String, String)], now: OffsetDateTime) -> S3Result<()> {
        if now > self.expiration {
            return Err(refused("Policy expired."));
        }
        let value_of = |name: &str| {
            fields
                .iter()
                .find(|(field, _)| field == name)
                .map(|(_, v)| v.as_str())
        };
        for condition in &self.conditions {
            let holds = match condition {
                Condition::Equals { field, value } => value_of(field) == Some(value.as_str()),
                Condition::StartsWith { field, prefix } => match value_of(field) {
                    // A list of content types: each must start so.
                    Some(v) if field == "content-type" => {
                        v.split(',').all(|t| t.trim().starts_with(prefix.as_str()))
                    }
                    Some(v) => v.starts_with(prefix.as_str()),
                    // `starts-with ""` admits any value, or none.
                    None => prefix.is_empty(),
                },
                Condition::LengthRange { .. } => true,
            };
            if !holds {
                return Err(refused(format!(
                    "Policy Condition failed: {}",
                    condition_text(condition)
                )));
            }
        }
        let named = |field: &str| {
            self.conditions.iter().any(|c| match c {
                Condition::Equals { field: f, .. } | Condition::StartsWith { field: f, .. } => {
                    f == field
                }
                Condition::LengthRange { .. } => false,
            })
        };
        let extra: Vec<&str> = fields
            .iter()
            .map(|(field, _)| field.as_str())
            .filter(|f| *f != "bucket" && !exempt(f) && !named(f))
            .collect();
        if !extra.is_empty() {
            return Err(refused(format!("Extra input fields: {}", extra.join(", "))));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(json: &str) -> String {
        crate::checksum::base64_encode(json.as_bytes())
    }

    fn policy(conditions: &str) -> PostPolicy {
        PostPolicy::parse(&encode(&format!(
            r#"{{"expiration":"2030-01-01T00:00:00.000Z","conditions":[{conditions}]}}"#
        )))
        .unwrap()
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn code(result: S3Result<()>) -> Option<S3ErrorCode> {
        result.err().map(|e| e.code)
    }

    #[test]
    fn exact_prefix_and_length_conditions() {
        let p = policy(
            r#"{"bucket":"b"},["starts-with","$key","user/"],{"acl":"private"},
               ["starts-with","$Content-Type","image/"],["content-length-range",1,1024]"#,
        );
        let ok = fields(&[
            ("bucket", "b"),
            ("key", "user/a.png"),
            ("acl", "private"),
            ("content-type", "image/png"),
            ("policy", "x"),
            ("x-ignore-me", "y"),
        ]);
        assert_eq!(code(p.admit(&ok, now())), None);
        assert_eq!(p.length_range(), Some((1, 1024)));
        let mut bad_key = ok.clone();
        bad_key[1].1 = "other/a.png".into();
        let e = p.admit(&bad_key, now()).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::AccessDenied);
        assert!(e.message.contains(r#"["starts-with", "$key", "user/"]"#));
        let mut types = ok.clone();
        types[3].1 = "image/png, text/html".into();
        assert_eq!(
            code(p.admit(&types, now())),
            Some(S3ErrorCode::AccessDenied)
        );
        let mut missing = ok.clone();
        missing.remove(2);
        assert_eq!(
            code(p.admit(&missing, now())),
            Some(S3ErrorCode::AccessDenied)
        );
    }

    #[test]
    fn every_field_must_be_named_and_values_are_case_sensitive() {
        let p = policy(r#"["eq","$KEY","a"]"#);
        assert_eq!(code(p.admit(&fields(&[("key", "a")]), now())), None);
        assert_eq!(
            code(p.admit(&fields(&[("key", "A")]), now())),
            Some(S3ErrorCode::AccessDenied)
        );
        let e = p
            .admit(&fields(&[("key", "a"), ("x-amz-meta-x", "1")]), now())
            .unwrap_err();
        assert!(e.message.contains("Extra input fields: x-amz-meta-x"));
    }

    #[test]
    fn expiry_and_malformed_documents() {
        let expired = PostPolicy::parse(&encode(
            r#"{"expiration":"2020-01-01T00:00:00Z","conditions":[{"key":"a"}]}"#,
        ))
        .unwrap();
        let e = expired.admit(&fields(&[("key", "a")]), now()).unwrap_err();
        assert!(e.message.contains("expired"));
        for doc in [
            r#"{"conditions":[{"key":"a"}]}"#,
            r#"{"EXPIRATION":"2030-01-01T00:00:00Z","conditions":[{"key":"a"}]}"#,
            r#"{"expiration":"2030-01-01 00:00:00+00:00","conditions":[{"key":"a"}]}"#,
            r#"{"expiration":"2030-01-01T00:00:00Z"}"#,
            r#"{"expiration":"2030-01-01T00:00:00Z","CONDITIONS":[{"key":"a"}]}"#,
            r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[]}"#,
            r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range"]]}"#,
            r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range",10,"x"]]}"#,
            r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["matches","$key","a"]]}"#,
        ] {
            let e = PostPolicy::parse(&encode(doc)).unwrap_err();
            assert_eq!(e.code, S3ErrorCode::InvalidPolicyDocument, "{doc}");
        }
        assert!(PostPolicy::parse("%%%").is_err());
    }
}

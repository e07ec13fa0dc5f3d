//! Parsing and validating a bucket policy document. The text is kept as
//! given (GetBucketPolicy returns it unchanged); this is its checked form.

use super::condition::Condition;
use super::pattern::wildcard_match;
use serde_json::{Map, Value};

/// Why a policy document was refused; the message names the statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One entry of a `Principal` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalId {
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous included.
    Anyone,
    /// An `AWS` principal: an account id or an IAM ARN.
    Aws(String),
    /// A `CanonicalUser` id.
    Canonical(String),
    /// `Service` and `Federated` principals, which no user of this server is.
    Other,
}

/// A list that either names what a statement covers or, negated
/// (`NotAction`, `NotResource`, `NotPrincipal`), what it excludes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope<T> {
    pub negated: bool,
    pub items: Vec<T>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principals: Scope<PrincipalId>,
    /// Action patterns, `s3:*`-style, compared case-insensitively.
    pub actions: Scope<String>,
    /// Resource ARN patterns.
    pub resources: Scope<String>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

/// The largest policy AWS stores for a bucket.
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

const VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];

impl Policy {
    /// Parses `text` as the policy of `bucket`: every resource must lie in
    /// that bucket.
    pub fn parse(text: &str, bucket: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(malformed("Policies cannot exceed 20 KiB"));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| {
            malformed(format!(
                "Policies must be valid JSON and the first byte must be '{{' ({e})"
            ))
        })?;
        let Value::Object(top) = value else {
            return Err(malformed(
                "Policies must be valid JSON and the first byte must be '{'",
            ));
        };
        for field in top.keys() {
            if !matches!(field.as_str(), "Version" | "Id" | "Statement") {
                return Err(malformed(format!("Unknown field {field}")));
            }
        }
        match top.get("Version") {
            None => {}
            Some(Value::String(v)) if VERSIONS.contains(&v.as_str()) => {}
            Some(_) => {
                return Err(malformed(
                    "The policy must contain a valid version string (2012-10-17 or 2008-10-17)",
                ));
            }
        }
        if top.get("Id").is_some_and(|id| !id.is_string()) {
            return Err(malformed("Id must be a string"));
        }
        let statements = match top.get("Statement") {
            Some(Value::Array(list)) if !list.is_empty() => list.iter().collect::<Vec<_>>(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return Err(malformed("Missing required field Statement")),
        };
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| parse_statement(s, i + 1, bucket))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sids: Vec<&str> = statements.iter().filter_map(|s| s.sid.as_deref()).collect();
        sids.sort_unstable();
        if let Some(pair) = sids.windows(2).find(|w| w[0] == w[1]) {
            return Err(malformed(format!(
                "Statement ids (Sid) must be unique: \"{}\" is used twice",
                pair[0]
            )));
        }
        Ok(Policy { statements })
    }
}

pub(super) fn malformed(message: impl Into<String>) -> PolicyError {
    PolicyError(message.into())
}

/// Names a statement in messages: by its Sid, else by its position.
fn label(sid: Option<&str>, index: usize) -> String {
    match sid {
        Some(sid) => format!("statement \"{sid}\""),
        None => format!("statement {index}"),
    }
}

fn parse_statement(value: &Value, index: usize, bucket: &str) -> Result<Statement, PolicyError> {
    let Value::Object(fields) = value else {
        return Err(malformed(format!("Statement {index} must be an object")));
    };
    let sid = match fields.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(malformed(format!(
                "Sid of statement {index} must be a string"
            )));
        }
    };
    let at = label(sid.as_deref(), index);
    let fail = |message: &str| malformed(format!("{message} in {at}"));
    for field in fields.keys() {
        if !matches!(
            field.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(fail(&format!("Unknown field {field}")));
        }
    }
    let effect = match fields.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(_) => return Err(fail("Invalid effect (Allow or Deny)")),
        None => return Err(fail("Missing required field Effect")),
    };
    let principals = pick(fields, "Principal", "NotPrincipal", &fail)?;
    // Allow with NotPrincipal grants the whole world but a few: AWS
    // refuses it in bucket policies.
    if principals.0 && effect == Effect::Allow {
        return Err(fail("NotPrincipal cannot be used with Effect Allow"));
    }
    let principals = Scope {
        negated: principals.0,
        items: parse_principals(principals.1).ok_or_else(|| fail("Invalid principal"))?,
    };
    let (negated, actions) = pick(fields, "Action", "NotAction", &fail)?;
    let actions = strings(actions).ok_or_else(|| fail("Action must be a string or a list"))?;
    for action in &actions {
        let valid = action == "*"
            || action.split_once(':').is_some_and(|(service, name)| {
                service.eq_ignore_ascii_case("s3") && !name.is_empty()
            });
        if !valid {
            return Err(fail(&format!("Policy has invalid action {action}")));
        }
    }
    let actions = Scope {
        negated,
        items: actions,
    };
    let (negated, resources) = pick(fields, "Resource", "NotResource", &fail)?;
    let resources =
        strings(resources).ok_or_else(|| fail("Resource must be a string or a list"))?;
    for resource in &resources {
        if !resource_in_bucket(resource, bucket) {
            return Err(fail(&format!("Policy has invalid resource {resource}")));
        }
    }
    let resources = Scope {
        negated,
        items: resources,
    };
    let conditions = match fields.get("Condition") {
        None => Vec::new(),
        Some(Value::Object(block)) => {
            super::condition::parse_block(block).map_err(|e| fail(&e.0))?
        }
        Some(_) => return Err(fail("Condition must be an object")),
    };
    Ok(Statement {
        sid,
        effect,
        principals,
        actions,
        resources,
        conditions,
    })
}

/// Exactly one of `name` and `not_name`: whether it was the negated one,
/// and its value.
fn pick<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
    not_name: &str,
    fail: &dyn Fn(&str) -> PolicyError,
) -> Result<(bool, &'a Value), PolicyError> {
    match (fields.get(name), fields.get(not_name)) {
        (Some(v), None) => Ok((false, v)),
        (None, Some(v)) => Ok((true, v)),
        (Some(_), Some(_)) => Err(fail(&format!("{name} and {not_name} cannot both be given"))),
        (None, None) => Err(fail(&format!("Missing required field {name}"))),
    }
}

/// A string or a non-empty list of strings.
fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(list) if !list.is_empty() => list
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

fn parse_principals(value: &Value) -> Option<Vec<PrincipalId>> {
    match value {
        Value::String(s) if s == "*" => Some(vec![PrincipalId::Anyone]),
        Value::Object(kinds) if !kinds.is_empty() => {
            let mut out = Vec::new();
            for (kind, ids) in kinds {
                for id in strings(ids)? {
                    out.push(match kind.as_str() {
                        "AWS" if id == "*" => PrincipalId::Anyone,
                        "AWS" if valid_aws_principal(&id) => PrincipalId::Aws(id),
                        "CanonicalUser" if !id.is_empty() => PrincipalId::Canonical(id),
                        "Service" | "Federated" => PrincipalId::Other,
                        _ => return None,
                    });
                }
            }
            Some(out)
        }
        _ => None,
    }
}

/// An account id, or an `arn:aws:iam::<account>:<what>` ARN.
fn valid_aws_principal(id: &str) -> bool {
    match id.strip_prefix("arn:aws:iam::") {
        Some(rest) => rest
            .split_once(':')
            .is_some_and(|(account, what)| !account.is_empty() && !what.is_empty()),
        None => !id.is_empty() && !id.contains(':') && !id.contains('*'),
    }
}

/// `arn:aws:s3:::<bucket>[/<key>]`, where the bucket part (a pattern) can
/// name `bucket`; or `*`.
fn resource_in_bucket(resource: &str, bucket: &str) -> bool {
    if resource == "*" {
        return true;
    }
    let Some(path) = resource.strip_prefix("arn:aws:s3:::") else {
        return false;
    };
    let bucket_part = path.split('/').next().unwrap_or_default();
    !bucket_part.is_empty() && wildcard_match(bucket_part, bucket, false)
}

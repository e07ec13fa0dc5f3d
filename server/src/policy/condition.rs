//! Policy conditions: `{"<Operator>": {"<key>": <value or values>}}`, with
//! IAM's operators, their `…IfExists` forms and the `ForAnyValue:` /
//! `ForAllValues:` set qualifiers.

use super::document::{PolicyError, malformed};
use super::pattern::wildcard_match;
use serde_json::{Map, Value};
use std::net::IpAddr;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Equals,
    NotEquals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    String {
        negated: bool,
        fold: bool,
        like: bool,
    },
    Numeric(Compare),
    Date(Compare),
    Bool,
    Binary,
    Ip {
        negated: bool,
    },
    Arn {
        negated: bool,
    },
    Null,
}

impl Test {
    /// Negated tests hold when the key is absent, and hold for a value
    /// only when no listed value matches it.
    fn negated(self) -> bool {
        match self {
            Test::String { negated, .. } | Test::Ip { negated } | Test::Arn { negated } => negated,
            Test::Numeric(c) | Test::Date(c) => c == Compare::NotEquals,
            Test::Bool | Test::Binary | Test::Null => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    Single,
    AnyValue,
    AllValues,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    test: Test,
    if_exists: bool,
    set: Set,
    /// Condition keys are case-insensitive: kept lower-cased.
    pub key: String,
    values: Vec<String>,
}

fn parse_operator(name: &str) -> Option<(Test, bool, Set)> {
    let (set, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
        (Set::AnyValue, rest)
    } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
        (Set::AllValues, rest)
    } else {
        (Set::Single, name)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (rest, false),
    };
    let compare = |suffix: &str| {
        Some(match suffix {
            "Equals" => Compare::Equals,
            "NotEquals" => Compare::NotEquals,
            "LessThan" => Compare::LessThan,
            "LessThanEquals" => Compare::LessThanEquals,
            "GreaterThan" => Compare::GreaterThan,
            "GreaterThanEquals" => Compare::GreaterThanEquals,
            _ => return None,
        })
    };
    let string = |negated, fold, like| Test::String {
        negated,
        fold,
        like,
    };
    let test = match base {
        "StringEquals" => string(false, false, false),
        "StringNotEquals" => string(true, false, false),
        "StringEqualsIgnoreCase" => string(false, true, false),
        "StringNotEqualsIgnoreCase" => string(true, true, false),
        "StringLike" => string(false, false, true),
        "StringNotLike" => string(true, false, true),
        "Bool" => Test::Bool,
        "BinaryEquals" => Test::Binary,
        "IpAddress" => Test::Ip { negated: false },
        "NotIpAddress" => Test::Ip { negated: true },
        "ArnEquals" | "ArnLike" => Test::Arn { negated: false },
        "ArnNotEquals" | "ArnNotLike" => Test::Arn { negated: true },
        "Null" if !if_exists => Test::Null,
        other => {
            if let Some(suffix) = other.strip_prefix("Numeric") {
                Test::Numeric(compare(suffix)?)
            } else if let Some(suffix) = other.strip_prefix("Date") {
                Test::Date(compare(suffix)?)
            } else {
                return None;
            }
        }
    };
    Some((test, if_exists, set))
}

pub fn parse_block(block: &Map<String, Value>) -> Result<Vec<Condition>, PolicyError> {
    let mut out = Vec::new();
    for (operator, keys) in block {
        let (test, if_exists, set) = parse_operator(operator)
            .ok_or_else(|| malformed(format!("Invalid Condition type : {operator}")))?;
        let Value::Object(keys) = keys else {
            return Err(malformed(format!(
                "Condition {operator} must map keys to values"
            )));
        };
        for (key, values) in keys {
            let lower = key.to_ascii_lowercase();
            if !(lower.starts_with("aws:") || lower.starts_with("s3:")) {
                return Err(malformed(format!(
                    "Policy has an invalid condition key {key}"
                )));
            }
            let values = condition_values(values)
                .ok_or_else(|| malformed(format!("Invalid value for condition key {key}")))?;
            for value in &values {
                if !valid_value(test, value) {
                    return Err(malformed(format!(
                        "Invalid value {value} for {operator} on {key}"
                    )));
                }
            }
            out.push(Condition {
                test,
                if_exists,
                set,
                key: lower,
                values,
            });
        }
    }
    Ok(out)
}

fn condition_values(value: &Value) -> Option<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Value::Array(list) if !list.is_empty() => list.iter().map(one).collect(),
        Value::Array(_) => None,
        other => one(other).map(|v| vec![v]),
    }
}

fn valid_value(test: Test, value: &str) -> bool {
    match test {
        Test::Numeric(_) => value.trim().parse::<f64>().is_ok(),
        Test::Date(_) => parse_date(value).is_some(),
        Test::Ip { .. } => parse_network(value).is_some(),
        Test::Bool | Test::Null => {
            value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
        }
        _ => true,
    }
}

/// ISO 8601 (as `aws:CurrentTime` is) or epoch seconds.
fn parse_date(value: &str) -> Option<i128> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<i64>() {
        return Some(i128::from(seconds) * 1_000_000_000);
    }
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp_nanos)
}

fn parse_network(value: &str) -> Option<ipnet::IpNet> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| value.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}

impl Condition {
    /// Does the condition hold, given the request's values for its key
    /// (`None`: the request has no such key)?
    pub fn holds(&self, request: Option<&[String]>) -> bool {
        if self.test == Test::Null {
            let wants_absent = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return request.is_none_or(<[String]>::is_empty) == wants_absent;
        }
        let Some(request) = request.filter(|r| !r.is_empty()) else {
            return match self.set {
                // Vacuously true over no values.
                Set::AllValues => true,
                _ => self.if_exists || self.test.negated(),
            };
        };
        match self.set {
            Set::Single | Set::AnyValue => request.iter().any(|r| self.value_holds(r)),
            Set::AllValues => request.iter().all(|r| self.value_holds(r)),
        }
    }

    /// Does the condition admit only some callers? Negated, optional and
    /// match-everything conditions do not.
    pub fn restricts(&self) -> bool {
        !self.test.negated()
            && !self.if_exists
            && self.set != Set::AllValues
            && self.test != Test::Null
            && !self
                .values
                .iter()
                .any(|v| v == "*" || v == "0.0.0.0/0" || v == "::/0")
    }

    fn value_holds(&self, request: &str) -> bool {
        if self.test.negated() {
            !self.values.iter().any(|v| self.positive_match(v, request))
        } else {
            self.values.iter().any(|v| self.positive_match(v, request))
        }
    }

    /// The un-negated comparison of one policy value with one request value.
    fn positive_match(&self, policy: &str, request: &str) -> bool {
        match self.test {
            Test::String { fold, like, .. } => {
                if like {
                    wildcard_match(policy, request, fold)
                } else if fold {
                    policy.eq_ignore_ascii_case(request)
                } else {
                    policy == request
                }
            }
            Test::Arn { .. } => wildcard_match(policy, request, false),
            Test::Binary => policy == request,
            Test::Bool => policy.eq_ignore_ascii_case(request.trim()),
            Test::Numeric(compare) => {
                match (policy.trim().parse::<f64>(), request.trim().parse::<f64>()) {
                    (Ok(p), Ok(r)) => compared(compare, r.partial_cmp(&p)),
                    _ => false,
                }
            }
            Test::Date(compare) => match (parse_date(policy), parse_date(request)) {
                (Some(p), Some(r)) => compared(compare, Some(r.cmp(&p))),
                _ => false,
            },
            Test::Ip { .. } => match (parse_network(policy), request.trim().parse::<IpAddr>()) {
                (Some(net), Ok(ip)) => net.contains(&ip),
                _ => false,
            },
            Test::Null => false,
        }
    }
}

/// `request <compare> policy`. `NotEquals` is `Equals` here: negation is
/// applied over all values by the caller.
fn compared(compare: Compare, ordering: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::*;
    let Some(ordering) = ordering else {
        return false;
    };
    match compare {
        Compare::Equals | Compare::NotEquals => ordering == Equal,
        Compare::LessThan => ordering == Less,
        Compare::LessThanEquals => ordering != Greater,
        Compare::GreaterThan => ordering == Greater,
        Compare::GreaterThanEquals => ordering != Less,
    }
}

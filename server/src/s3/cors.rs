//! Bucket CORS rules: the PutBucketCors document, which rule answers a
//! browser's origin, method and headers, and the `Access-Control-*` headers
//! a matching rule puts on preflight and actual responses.

use crate::meta::model::CorsRule;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::xml::{self, XmlWriter};
use http::HeaderMap;
use http::header::HeaderValue;
use serde::Deserialize;

/// AWS's limit on rules in one configuration.
const MAX_RULES: usize = 100;
const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];

#[derive(Deserialize)]
struct Configuration {
    #[serde(rename = "CORSRule", default)]
    rules: Vec<XmlRule>,
}

#[derive(Deserialize)]
struct XmlRule {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "AllowedOrigin", default)]
    origins: Vec<String>,
    #[serde(rename = "AllowedMethod", default)]
    methods: Vec<String>,
    #[serde(rename = "AllowedHeader", default)]
    headers: Vec<String>,
    #[serde(rename = "ExposeHeader", default)]
    expose: Vec<String>,
    #[serde(rename = "MaxAgeSeconds")]
    max_age: Option<String>,
}

/// Parses and checks a PutBucketCors body.
pub fn parse(body: &[u8]) -> S3Result<Vec<CorsRule>> {
    let config: Configuration = xml::parse(body, "CORSConfiguration")?;
    if config.rules.is_empty() || config.rules.len() > MAX_RULES {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    config.rules.into_iter().map(rule).collect()
}

fn rule(x: XmlRule) -> S3Result<CorsRule> {
    let trim = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let (origins, methods) = (trim(x.origins), trim(x.methods));
    if origins.is_empty() || methods.is_empty() {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    if let Some(bad) = methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
        return Err(S3Error::invalid_request(format!(
            "Found unsupported HTTP method in CORS config. Unsupported method is {bad}"
        )));
    }
    if let Some(bad) = origins.iter().find(|o| o.matches('*').count() > 1) {
        return Err(S3Error::invalid_request(format!(
            "AllowedOrigin \"{bad}\" can not have more than one wildcard."
        )));
    }
    let headers = trim(x.headers);
    if let Some(bad) = headers.iter().find(|h| h.matches('*').count() > 1) {
        return Err(S3Error::invalid_request(format!(
            "AllowedHeader \"{bad}\" can not have more than one wildcard."
        )));
    }
    let max_age_secs = match x.max_age.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(
            v.parse::<u32>()
                .map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?,
        ),
    };
    Ok(CorsRule {
        id: x.id.filter(|i| !i.trim().is_empty()),
        allowed_origins: origins,
        allowed_methods: methods,
        allowed_headers: headers,
        expose_headers: trim(x.expose),
        max_age_secs,
    })
}

/// The GetBucketCors document.
pub fn to_xml(rules: &[CorsRule]) -> String {
    let mut w = XmlWriter::root("CORSConfiguration");
    for r in rules {
        w.open("CORSRule");
        w.optional("ID", r.id.as_deref());
        for h in &r.allowed_headers {
            w.element("AllowedHeader", h);
        }
        for m in &r.allowed_methods {
            w.element("AllowedMethod", m);
        }
        for o in &r.allowed_origins {
            w.element("AllowedOrigin", o);
        }
        for e in &r.expose_headers {
            w.element("ExposeHeader", e);
        }
        if let Some(age) = r.max_age_secs {
            w.element("MaxAgeSeconds", &age.to_string());
        }
        w.close("CORSRule");
    }
    w.close("CORSConfiguration");
    w.finish()
}

/// `pattern` with at most one `*` standing for any run of characters.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, suffix)) => {
            text.len() >= prefix.len() + suffix.len()
                && text.starts_with(prefix)
                && text.ends_with(suffix)
        }
    }
}

/// What a browser asks for: its origin, the method it will use, and (on a
/// preflight) the headers it will send.
pub struct CorsAsk<'a> {
    pub origin: &'a str,
    pub method: &'a str,
    pub headers: Vec<String>,
}

/// The first rule that allows `ask`, as S3 evaluates them (in order).
pub fn find<'r>(rules: &'r [CorsRule], ask: &CorsAsk) -> Option<&'r CorsRule> {
    rules.iter().find(|r| {
        r.allowed_origins
            .iter()
            .any(|o| wildcard_match(o, ask.origin))
            && r.allowed_methods.iter().any(|m| m == ask.method)
            && ask.headers.iter().all(|h| {
                r.allowed_headers
                    .iter()
                    .any(|allowed| wildcard_match(&allowed.to_ascii_lowercase(), h))
            })
    })
}

/// The `Access-Control-Request-Headers` of a preflight, lowercased.
pub fn requested_headers(headers: &HeaderMap) -> Vec<String> {
    crate::s3::headers::comma_list(headers, "access-control-request-headers")
        .into_iter()
        .map(|h| h.to_ascii_lowercase())
        .collect()
}

/// Puts the headers `rule` grants `ask` on a response.
pub fn grant(response: &mut HeaderMap, rule: &CorsRule, ask: &CorsAsk, preflight: bool) {
    let any_origin = rule.allowed_origins.iter().any(|o| o == "*");
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            response.insert(name, v);
        }
    };
    set(
        "access-control-allow-origin",
        if any_origin { "*" } else { ask.origin },
    );
    set(
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if !any_origin {
        set("access-control-allow-credentials", "true");
    }
    if !rule.expose_headers.is_empty() {
        set(
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_secs {
        set("access-control-max-age", &age.to_string());
    }
    if preflight && !ask.headers.is_empty() {
        set("access-control-allow-headers", &ask.headers.join(", "));
    }
    set(
        "vary",
        "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        CorsRule {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_methods: methods.iter().map(|s| s.to_string()).collect(),
            allowed_headers: headers.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn ask<'a>(origin: &'a str, method: &'a str, headers: &[&str]) -> CorsAsk<'a> {
        CorsAsk {
            origin,
            method,
            headers: headers.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn origins_match_with_one_wildcard() {
        let rules = [
            rule(&["*suffix"], &["GET"], &[]),
            rule(&["start*end"], &["GET"], &[]),
            rule(&["prefix*"], &["GET"], &[]),
            rule(&["*.put"], &["PUT"], &[]),
        ];
        let allowed =
            |origin: &str, method: &str| find(&rules, &ask(origin, method, &[])).is_some();
        assert!(allowed("foo.suffix", "GET"));
        assert!(!allowed("foo.suffix.get", "GET"));
        assert!(allowed("startend", "GET") && allowed("start12end", "GET"));
        assert!(!allowed("0start12end", "GET"));
        assert!(allowed("prefix.suffix", "GET") && !allowed("bla.prefix", "GET"));
        assert!(allowed("foo.put", "PUT") && !allowed("foo.put", "GET"));
    }

    #[test]
    fn requested_headers_must_all_be_allowed() {
        let rules = [rule(&["*"], &["GET"], &["x-amz-meta-*", "Content-Type"])];
        assert!(find(&rules, &ask("o", "GET", &["x-amz-meta-a", "content-type"])).is_some());
        assert!(find(&rules, &ask("o", "GET", &["x-amz-date"])).is_none());
        let none = [rule(&["*"], &["GET"], &[])];
        assert!(find(&none, &ask("o", "GET", &["x-amz-meta-header2"])).is_none());
    }

    #[test]
    fn configurations_round_trip_and_bad_ones_are_refused() {
        let body = br#"<CORSConfiguration><CORSRule><ID>r</ID><AllowedOrigin>https://*.example.com</AllowedOrigin>
            <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader>
            <ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>300</MaxAgeSeconds></CORSRule></CORSConfiguration>"#;
        let rules = parse(body).unwrap();
        assert_eq!(rules[0].max_age_secs, Some(300));
        assert_eq!(parse(to_xml(&rules).as_bytes()).unwrap(), rules);
        let bad_method = br#"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>"#;
        assert_eq!(
            parse(bad_method).unwrap_err().code,
            S3ErrorCode::InvalidRequest
        );
        let two_stars = br#"<CORSConfiguration><CORSRule><AllowedOrigin>*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"#;
        assert_eq!(
            parse(two_stars).unwrap_err().code,
            S3ErrorCode::InvalidRequest
        );
        assert_eq!(
            parse(b"<CORSConfiguration></CORSConfiguration>")
                .unwrap_err()
                .code,
            S3ErrorCode::MalformedXML
        );
    }
}

//! AWS Signature Version 2 (HMAC-SHA1): still what boto3's
//! `generate_presigned_url` and older tools produce by default, so both the
//! `Authorization: AWS key:signature` header and presigned query forms are
//! accepted.

use hmac::{Hmac, Mac};
use http::HeaderMap;

/// Query parameters that are part of the signed resource.
const SIGNED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "delete",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "select",
    "select-type",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

pub fn sign(secret: &str, string_to_sign: &str) -> String {
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(string_to_sign.as_bytes());
    crate::checksum::base64_encode(&mac.finalize().into_bytes())
}

/// `/bucket/key` as signed: the path as sent, prefixed with the bucket for
/// virtual-hosted requests, then the signed sub-resources.
pub fn canonical_resource(
    raw_path: &str,
    virtual_host_bucket: Option<&str>,
    query: &[(String, String)],
    raw_query: &str,
) -> String {
    let mut resource = String::new();
    if let Some(bucket) = virtual_host_bucket {
        resource.push('/');
        resource.push_str(bucket);
    }
    resource.push_str(if raw_path.is_empty() { "/" } else { raw_path });
    let mut subresources: Vec<(&str, Option<&str>)> = query
        .iter()
        .zip(raw_query.split('&').filter(|p| !p.is_empty()))
        .filter(|((k, _), _)| SIGNED_SUBRESOURCES.contains(&k.as_str()))
        .map(|((k, v), raw)| (k.as_str(), raw.contains('=').then_some(v.as_str())))
        .collect();
    subresources.sort_by(|a, b| a.0.cmp(b.0));
    if !subresources.is_empty() {
        resource.push('?');
        let parts: Vec<String> = subresources
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.to_string(),
            })
            .collect();
        resource.push_str(&parts.join("&"));
    }
    resource
}

/// For a bucket-level resource (`/bucket` or `/bucket/`, with any
/// sub-resources), the other spelling; None for service and object requests.
pub fn bucket_resource_variant(resource: &str) -> Option<String> {
    let (path, query) = match resource.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (resource, None),
    };
    let bucket = path.strip_prefix('/')?;
    let other = match bucket.strip_suffix('/') {
        Some(name) if !name.is_empty() && !name.contains('/') => format!("/{name}"),
        None if !bucket.is_empty() && !bucket.contains('/') => format!("/{bucket}/"),
        _ => return None,
    };
    Some(match query {
        Some(query) => format!("{other}?{query}"),
        None => other,
    })
}

/// The `x-amz-*` headers, lowercased and sorted, one `name:value\n` each.
pub fn canonical_amz_headers(headers: &HeaderMap) -> String {
    let mut names: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-amz-"))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .iter()
        .map(|name| {
            let values: Vec<&[u8]> = headers
                .get_all(*name)
                .iter()
                .map(|v| v.as_bytes())
                .collect();
            format!("{name}:{}\n", super::sigv4::canonical_header_value(&values))
        })
        .collect()
}

pub fn string_to_sign(
    method: &str,
    headers: &HeaderMap,
    date: &str,
    canonical_resource: &str,
) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    format!(
        "{method}\n{}\n{}\n{date}\n{}{canonical_resource}",
        header("content-md5"),
        header("content-type"),
        canonical_amz_headers(headers)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// The GET example from AWS's "Signing and authenticating REST requests" (SigV2).
    #[test]
    fn aws_documented_example() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "host",
            HeaderValue::from_static("awsexamplebucket1.us-west-1.s3.amazonaws.com"),
        );
        headers.insert(
            "date",
            HeaderValue::from_static("Tue, 27 Mar 2007 19:36:42 +0000"),
        );
        let resource = canonical_resource("/photos/puppy.jpg", Some("awsexamplebucket1"), &[], "");
        let sts = string_to_sign(
            "GET",
            &headers,
            "Tue, 27 Mar 2007 19:36:42 +0000",
            &resource,
        );
        assert_eq!(
            sts,
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg"
        );
        assert_eq!(
            sign("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &sts),
            "qgk2+6Sv9/oM7G3qLEjTH1a1l1g="
        );
    }

    #[test]
    fn bucket_resources_have_two_spellings() {
        assert_eq!(bucket_resource_variant("/b").as_deref(), Some("/b/"));
        assert_eq!(
            bucket_resource_variant("/b/?acl").as_deref(),
            Some("/b?acl")
        );
        assert_eq!(bucket_resource_variant("/b/key"), None);
        assert_eq!(bucket_resource_variant("/"), None);
    }

    #[test]
    fn subresources_are_sorted_and_amz_headers_included() {
        let query = vec![
            ("uploadId".to_string(), "x y".to_string()),
            ("partNumber".to_string(), "2".to_string()),
            ("prefix".to_string(), "a".to_string()),
            ("acl".to_string(), String::new()),
        ];
        assert_eq!(
            canonical_resource(
                "/b/k",
                None,
                &query,
                "uploadId=x%20y&partNumber=2&prefix=a&acl"
            ),
            "/b/k?acl&partNumber=2&uploadId=x y"
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-meta-b", HeaderValue::from_static(" two "));
        headers.insert("x-amz-date", HeaderValue::from_static("now"));
        assert_eq!(
            canonical_amz_headers(&headers),
            "x-amz-date:now\nx-amz-meta-b:two\n"
        );
    }
}

//! AWS Signature Version 4: canonical requests, string to sign, signing keys.
//! Pure functions, tested against AWS's published examples.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

type HmacSha256 = Hmac<Sha256>;

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

pub fn sign(key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(key, string_to_sign.as_bytes()))
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters stay, every
/// other byte becomes `%XX` (uppercase); `/` stays only in paths.
pub fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len() * 3);
    for &b in input {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+`).
pub fn percent_decode(input: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(input).collect()
}

/// The canonical form of the path as received: decoded, then re-encoded.
pub fn canonical_uri(raw_path: &str) -> String {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    uri_encode(&percent_decode(path), true)
}

/// Query parameters decoded into (name, value) pairs, in order of appearance.
pub fn parse_query(raw_query: &str) -> Vec<(String, String)> {
    raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                String::from_utf8_lossy(&percent_decode(k)).into_owned(),
                String::from_utf8_lossy(&percent_decode(v)).into_owned(),
            )
        })
        .collect()
}

/// Canonical query string: every pair encoded, sorted by name then value.
pub fn canonical_query(raw_query: &str, exclude: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .filter(|(k, _)| Some(k.as_str()) != exclude)
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Header values as SigV4 canonicalises them: trimmed, inner runs of spaces
/// collapsed, repeated headers joined with commas.
pub fn canonical_header_value(values: &[&[u8]]) -> String {
    values
        .iter()
        .map(|v| {
            let text = String::from_utf8_lossy(v);
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub struct CanonicalRequest<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub query: &'a str,
    /// (lowercase name, canonical value), in signed-headers order.
    pub headers: &'a [(String, String)],
    pub signed_headers: &'a str,
    pub payload_hash: &'a str,
}

impl CanonicalRequest<'_> {
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(self.method);
        out.push('\n');
        out.push_str(self.uri);
        out.push('\n');
        out.push_str(self.query);
        out.push('\n');
        for (name, value) in self.headers {
            out.push_str(name);
            out.push(':');
            out.push_str(value);
            out.push('\n');
        }
        out.push('\n');
        out.push_str(self.signed_headers);
        out.push('\n');
        out.push_str(self.payload_hash);
        out
    }
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// String to sign of one `aws-chunked` chunk.
pub fn chunk_string_to_sign(
    amz_date: &str,
    scope: &str,
    previous_signature: &str,
    chunk_sha256: &str,
) -> String {
    format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous_signature}\n{EMPTY_SHA256}\n{chunk_sha256}"
    )
}

/// String to sign of the trailing headers of an `aws-chunked` body.
pub fn trailer_string_to_sign(
    amz_date: &str,
    scope: &str,
    previous_signature: &str,
    trailer_sha256: &str,
) -> String {
    format!("AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{previous_signature}\n{trailer_sha256}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The GET-object example from AWS's "Signature Calculations for the
    // Authorization Header" documentation (examplebucket, test.txt, range).
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn aws_example_get_object() {
        let headers = vec![
            (
                "host".to_string(),
                "examplebucket.s3.amazonaws.com".to_string(),
            ),
            ("range".to_string(), "bytes=0-9".to_string()),
            ("x-amz-content-sha256".to_string(), EMPTY_SHA256.to_string()),
            ("x-amz-date".to_string(), "20130524T000000Z".to_string()),
        ];
        let canonical = CanonicalRequest {
            method: "GET",
            uri: &canonical_uri("/test.txt"),
            query: &canonical_query("", None),
            headers: &headers,
            signed_headers: "host;range;x-amz-content-sha256;x-amz-date",
            payload_hash: EMPTY_SHA256,
        }
        .render();
        let sts = string_to_sign(
            "20130524T000000Z",
            "20130524/us-east-1/s3/aws4_request",
            &canonical,
        );
        assert_eq!(
            sts.lines().last().unwrap(),
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
        let key = signing_key(SECRET, "20130524", "us-east-1", "s3");
        assert_eq!(
            sign(&key, &sts),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn aws_example_list_objects_query() {
        let headers = vec![
            (
                "host".to_string(),
                "examplebucket.s3.amazonaws.com".to_string(),
            ),
            ("x-amz-content-sha256".to_string(), EMPTY_SHA256.to_string()),
            ("x-amz-date".to_string(), "20130524T000000Z".to_string()),
        ];
        let canonical = CanonicalRequest {
            method: "GET",
            uri: &canonical_uri("/"),
            query: &canonical_query("prefix=J&max-keys=2", None),
            headers: &headers,
            signed_headers: "host;x-amz-content-sha256;x-amz-date",
            payload_hash: EMPTY_SHA256,
        }
        .render();
        assert!(canonical.contains("\nmax-keys=2&prefix=J\n"));
        let sts = string_to_sign(
            "20130524T000000Z",
            "20130524/us-east-1/s3/aws4_request",
            &canonical,
        );
        let key = signing_key(SECRET, "20130524", "us-east-1", "s3");
        assert_eq!(
            sign(&key, &sts),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    #[test]
    fn aws_example_presigned_url() {
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
        let headers = vec![(
            "host".to_string(),
            "examplebucket.s3.amazonaws.com".to_string(),
        )];
        let canonical = CanonicalRequest {
            method: "GET",
            uri: &canonical_uri("/test.txt"),
            query: &canonical_query(query, Some("X-Amz-Signature")),
            headers: &headers,
            signed_headers: "host",
            payload_hash: "UNSIGNED-PAYLOAD",
        }
        .render();
        let sts = string_to_sign(
            "20130524T000000Z",
            "20130524/us-east-1/s3/aws4_request",
            &canonical,
        );
        let key = signing_key(SECRET, "20130524", "us-east-1", "s3");
        assert_eq!(
            sign(&key, &sts),
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    #[test]
    fn aws_example_streaming_chunk_signatures() {
        // "Signature Calculations for the Authorization Header: Transferring
        // Payload in Multiple Chunks": seed and first chunk of 65536 'a's.
        let key = signing_key(SECRET, "20130524", "us-east-1", "s3");
        let scope = "20130524/us-east-1/s3/aws4_request";
        let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
        let chunk = vec![b'a'; 65536];
        let sts = chunk_string_to_sign("20130524T000000Z", scope, seed, &sha256_hex(&chunk));
        assert_eq!(
            sign(&key, &sts),
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        );
        let sts = chunk_string_to_sign(
            "20130524T000000Z",
            scope,
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            &sha256_hex(&[b'a'; 1024]),
        );
        assert_eq!(
            sign(&key, &sts),
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
        );
    }

    #[test]
    fn encoding_rules() {
        assert_eq!(uri_encode(b"a b/c~d+e", true), "a%20b/c~d%2Be");
        assert_eq!(uri_encode(b"a/b", false), "a%2Fb");
        assert_eq!(canonical_uri("/bucket/a%20b"), "/bucket/a%20b");
        assert_eq!(canonical_uri("/bucket/a b!"), "/bucket/a%20b%21");
        assert_eq!(canonical_uri("/bucket/%E6%97%A5"), "/bucket/%E6%97%A5");
        assert_eq!(canonical_query("b=2&a=1&acl", None), "a=1&acl=&b=2");
        assert_eq!(canonical_header_value(&[b"  a   b  ", b"c"]), "a b,c");
        assert_eq!(
            parse_query("prefix=a%2Fb&list-type=2&x"),
            vec![
                ("prefix".to_string(), "a/b".to_string()),
                ("list-type".to_string(), "2".to_string()),
                ("x".to_string(), String::new())
            ]
        );
    }
}

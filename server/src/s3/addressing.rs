//! Path-style (`/bucket/key`) and virtual-hosted-style (`bucket.domain/key`)
//! addressing, resolved to a bucket and key.

use crate::s3::error::{S3Error, S3ErrorCode};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The bucket came from the host name, not the path.
    pub virtual_host: bool,
}

fn decode(raw: &str) -> Result<String, S3Error> {
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    String::from_utf8(bytes).map_err(|_| S3Error::new(S3ErrorCode::InvalidURI))
}

/// Resolves a request's host and raw (still percent-encoded) path.
pub fn resolve(host: Option<&str>, raw_path: &str, domains: &[String]) -> Result<Target, S3Error> {
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    if let Some(bucket) = host.and_then(|h| virtual_host_bucket(h, domains)) {
        let key = decode(path)?;
        return Ok(Target {
            bucket: Some(bucket),
            key: (!key.is_empty()).then_some(key),
            virtual_host: true,
        });
    }
    if path.is_empty() {
        return Ok(Target::default());
    }
    let (bucket, key) = match path.split_once('/') {
        Some((bucket, key)) => (bucket, Some(key)),
        None => (path, None),
    };
    let bucket = decode(bucket)?;
    let key = key.map(decode).transpose()?.filter(|k| !k.is_empty());
    Ok(Target {
        bucket: Some(bucket),
        key,
        virtual_host: false,
    })
}

/// `photos.s3.example.com` with domain `s3.example.com` is bucket `photos`.
fn virtual_host_bucket(host: &str, domains: &[String]) -> Option<String> {
    let host = host.trim().to_ascii_lowercase();
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_string(),
        _ => host,
    };
    domains.iter().find_map(|domain| {
        let domain = domain.to_ascii_lowercase();
        host.strip_suffix(&domain)
            .and_then(|rest| rest.strip_suffix('.'))
            .filter(|bucket| !bucket.is_empty())
            .map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(bucket: Option<&str>, key: Option<&str>) -> Target {
        Target {
            bucket: bucket.map(Into::into),
            key: key.map(Into::into),
            virtual_host: false,
        }
    }

    #[test]
    fn path_style() {
        let domains = vec!["s3.local".to_string()];
        assert_eq!(
            resolve(Some("127.0.0.1:9000"), "/", &domains).unwrap(),
            target(None, None)
        );
        assert_eq!(
            resolve(None, "/b", &domains).unwrap(),
            target(Some("b"), None)
        );
        assert_eq!(
            resolve(None, "/b/", &domains).unwrap(),
            target(Some("b"), None)
        );
        assert_eq!(
            resolve(None, "/b/a%20b/c%2Fd", &domains).unwrap(),
            target(Some("b"), Some("a b/c/d"))
        );
        assert_eq!(
            resolve(None, "/b//double", &domains).unwrap(),
            target(Some("b"), Some("/double"))
        );
        assert_eq!(
            resolve(Some("s3.local:9000"), "/b/k", &domains).unwrap(),
            target(Some("b"), Some("k"))
        );
        assert_eq!(
            resolve(None, "/b/%FF", &domains).unwrap_err().code,
            S3ErrorCode::InvalidURI
        );
    }

    #[test]
    fn virtual_hosted_style() {
        let domains = vec!["s3.local".to_string()];
        let vhost = |bucket, key: Option<&str>| Target {
            virtual_host: true,
            ..target(Some(bucket), key)
        };
        assert_eq!(
            resolve(Some("photos.s3.local:9000"), "/2024/a.jpg", &domains).unwrap(),
            vhost("photos", Some("2024/a.jpg"))
        );
        assert_eq!(
            resolve(Some("my.dotted.bucket.S3.LOCAL"), "/", &domains).unwrap(),
            vhost("my.dotted.bucket", None)
        );
        assert_eq!(
            resolve(Some("other.example"), "/b/k", &domains).unwrap(),
            target(Some("b"), Some("k"))
        );
    }
}

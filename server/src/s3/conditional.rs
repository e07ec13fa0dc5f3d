//! Conditional reads (RFC 7232 precedence, as S3 applies it):
//! If-Match, else If-Unmodified-Since → 412; then If-None-Match, else
//! If-Modified-Since → 304.

use crate::meta::command::etag_matches;
use crate::s3::error::{S3Error, S3ErrorCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Default, Clone)]
pub struct Preconditions<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
}

fn parse_date(s: Option<&str>) -> Option<SystemTime> {
    s.and_then(|s| httpdate::parse_http_date(s.trim()).ok())
}

/// HTTP dates have second precision; compare at that precision.
fn modified_time(modified_ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs((modified_ms.max(0) / 1000) as u64)
}

pub enum Failure {
    PreconditionFailed,
    NotModified,
}

/// Evaluates the conditions against an object's ETag and modification time.
pub fn evaluate(p: &Preconditions, etag: &str, modified_ms: i64) -> Result<(), Failure> {
    let modified = modified_time(modified_ms);
    if let Some(list) = p.if_match {
        if !etag_matches(list, etag) {
            return Err(Failure::PreconditionFailed);
        }
    } else if let Some(since) = parse_date(p.if_unmodified_since)
        && modified > since
    {
        return Err(Failure::PreconditionFailed);
    }
    if let Some(list) = p.if_none_match {
        if etag_matches(list, etag) {
            return Err(Failure::NotModified);
        }
    } else if let Some(since) = parse_date(p.if_modified_since)
        && modified <= since
    {
        return Err(Failure::NotModified);
    }
    Ok(())
}

/// For GET and HEAD: 412 PreconditionFailed or 304 Not Modified.
pub fn check_read(p: &Preconditions, etag: &str, modified_ms: i64) -> Result<(), S3Error> {
    evaluate(p, etag, modified_ms).map_err(|failure| match failure {
        Failure::PreconditionFailed => {
            S3Error::new(S3ErrorCode::PreconditionFailed).detail("Condition", "If-Match")
        }
        Failure::NotModified => S3Error::new(S3ErrorCode::NotModified),
    })
}

/// For `x-amz-copy-source-if-*`: any failed condition is 412.
pub fn check_copy_source(p: &Preconditions, etag: &str, modified_ms: i64) -> Result<(), S3Error> {
    evaluate(p, etag, modified_ms).map_err(|_| {
        S3Error::new(S3ErrorCode::PreconditionFailed).detail("Condition", "x-amz-copy-source-If")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETAG: &str = "\"abc\"";
    // Modified 2024-01-01T00:00:00Z.
    const MODIFIED: i64 = 1_704_067_200_000;
    const BEFORE: &str = "Sun, 31 Dec 2023 00:00:00 GMT";
    const AFTER: &str = "Tue, 02 Jan 2024 00:00:00 GMT";
    const EXACT: &str = "Mon, 01 Jan 2024 00:00:00 GMT";

    fn code(p: Preconditions) -> Option<S3ErrorCode> {
        check_read(&p, ETAG, MODIFIED).err().map(|e| e.code)
    }

    #[test]
    fn rfc7232_precedence() {
        use S3ErrorCode::*;
        assert_eq!(code(Preconditions::default()), None);
        assert_eq!(
            code(Preconditions {
                if_match: Some("\"abc\""),
                ..Default::default()
            }),
            None
        );
        assert_eq!(
            code(Preconditions {
                if_match: Some("\"x\", \"abc\""),
                ..Default::default()
            }),
            None
        );
        assert_eq!(
            code(Preconditions {
                if_match: Some("*"),
                ..Default::default()
            }),
            None
        );
        assert_eq!(
            code(Preconditions {
                if_match: Some("\"x\""),
                ..Default::default()
            }),
            Some(PreconditionFailed)
        );
        assert_eq!(
            code(Preconditions {
                if_none_match: Some("\"abc\""),
                ..Default::default()
            }),
            Some(NotModified)
        );
        assert_eq!(
            code(Preconditions {
                if_none_match: Some("\"x\""),
                ..Default::default()
            }),
            None
        );
        assert_eq!(
            code(Preconditions {
                if_modified_since: Some(AFTER),
                ..Default::default()
            }),
            Some(NotModified)
        );
        assert_eq!(
            code(Preconditions {
                if_modified_since: Some(EXACT),
                ..Default::default()
            }),
            Some(NotModified)
        );
        assert_eq!(
            code(Preconditions {
                if_modified_since: Some(BEFORE),
                ..Default::default()
            }),
            None
        );
        assert_eq!(
            code(Preconditions {
                if_unmodified_since: Some(BEFORE),
                ..Default::default()
            }),
            Some(PreconditionFailed)
        );
        assert_eq!(
            code(Preconditions {
                if_unmodified_since: Some(AFTER),
                ..Default::default()
            }),
            None
        );
        // If-Match true wins over a failing If-Unmodified-Since.
        assert_eq!(
            code(Preconditions {
                if_match: Some(ETAG),
                if_unmodified_since: Some(BEFORE),
                ..Default::default()
            }),
            None
        );
        // If-None-Match false wins over If-Modified-Since.
        assert_eq!(
            code(Preconditions {
                if_none_match: Some("\"x\""),
                if_modified_since: Some(AFTER),
                ..Default::default()
            }),
            None
        );
        // Unparseable dates are ignored.
        assert_eq!(
            code(Preconditions {
                if_modified_since: Some("yesterday"),
                ..Default::default()
            }),
            None
        );
    }
}

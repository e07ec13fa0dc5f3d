//! Single byte ranges (`Range: bytes=a-b`, `a-`, `-n`) as S3 serves them.

use crate::s3::error::{S3Error, S3ErrorCode};

/// What a `Range` header asks of an object of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range, or one S3 ignores (syntax it does not serve): the whole object.
    Whole,
    /// Bytes `start..=end`, both inside the object.
    Partial { start: u64, end: u64 },
}

/// Parses `header` against an object of `size` bytes. Syntax S3 does not
/// understand is ignored (the whole object is served); a well-formed range
/// that cannot be satisfied is `InvalidRange` (416).
pub fn parse(header: Option<&str>, size: u64) -> Result<RangeRequest, S3Error> {
    let Some(header) = header else {
        return Ok(RangeRequest::Whole);
    };
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(RangeRequest::Whole);
    };
    if spec.contains(',') {
        // Multiple ranges: S3 serves the whole object.
        return Ok(RangeRequest::Whole);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(RangeRequest::Whole);
    };
    let parse_num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (first, last) = (first.trim(), last.trim());
    let unsatisfiable = || {
        S3Error::new(S3ErrorCode::InvalidRange)
            .detail("RangeRequested", header.to_string())
            .detail("ActualObjectSize", size.to_string())
            .header("content-range", format!("bytes */{size}"))
    };
    match (parse_num(first), parse_num(last)) {
        (Some(start), Some(end)) if start <= end => {
            if start >= size {
                return Err(unsatisfiable());
            }
            Ok(RangeRequest::Partial {
                start,
                end: end.min(size - 1),
            })
        }
        (Some(_), Some(_)) => Ok(RangeRequest::Whole),
        (Some(start), None) if last.is_empty() => {
            if start >= size {
                return Err(unsatisfiable());
            }
            Ok(RangeRequest::Partial {
                start,
                end: size - 1,
            })
        }
        (None, Some(suffix)) if first.is_empty() => {
            if suffix == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            Ok(RangeRequest::Partial {
                start: size.saturating_sub(suffix),
                end: size - 1,
            })
        }
        _ => Ok(RangeRequest::Whole),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(start: u64, end: u64) -> Result<RangeRequest, S3ErrorCode> {
        Ok(RangeRequest::Partial { start, end })
    }

    fn p(h: &str, size: u64) -> Result<RangeRequest, S3ErrorCode> {
        parse(Some(h), size).map_err(|e| e.code)
    }

    #[test]
    fn ranges() {
        assert_eq!(p("bytes=0-9", 100), partial(0, 9));
        assert_eq!(p("bytes=90-200", 100), partial(90, 99));
        assert_eq!(p("bytes=10-", 100), partial(10, 99));
        assert_eq!(p("bytes=-10", 100), partial(90, 99));
        assert_eq!(p("bytes=-200", 100), partial(0, 99));
        assert_eq!(p("bytes=100-", 100), Err(S3ErrorCode::InvalidRange));
        assert_eq!(p("bytes=100-200", 100), Err(S3ErrorCode::InvalidRange));
        assert_eq!(p("bytes=0-0", 0), Err(S3ErrorCode::InvalidRange));
        assert_eq!(p("bytes=-0", 100), Err(S3ErrorCode::InvalidRange));
        assert_eq!(p("bytes=-5", 0), Err(S3ErrorCode::InvalidRange));
    }

    #[test]
    fn ignored_syntax_serves_the_whole_object() {
        for h in [
            "bytes=5-1",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=abc",
            "bytes=-",
            "bytes=1-2-3",
            "bytes=99999999999999999999999-",
            "bytes=+1-2",
        ] {
            assert_eq!(p(h, 100), Ok(RangeRequest::Whole), "{h}");
        }
        assert_eq!(parse(None, 10).unwrap(), RangeRequest::Whole);
    }

    #[test]
    fn huge_values_do_not_overflow() {
        assert_eq!(p("bytes=0-18446744073709551615", 10), partial(0, 9));
        assert_eq!(p("bytes=-18446744073709551615", 10), partial(0, 9));
    }
}

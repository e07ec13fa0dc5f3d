//! Tag sets: the `x-amz-tagging` header, the `<Tagging>` document, and S3's
//! limits on both.

use crate::meta::model::Tag;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::xml::{self, XmlWriter};
use serde::Deserialize;

pub const MAX_OBJECT_TAGS: usize = 10;
pub const MAX_BUCKET_TAGS: usize = 50;
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;

fn invalid(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidTag, message)
}

/// Letters, digits, spaces and `_ . : / = + - @`, as AWS tagging allows.
fn allowed_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

/// Checks a tag set against S3's rules (`max` tags, lengths, characters,
/// unique keys, no `aws:` prefix).
fn validate(tags: &[Tag], max: usize) -> S3Result<()> {
    if tags.len() > max {
        return Err(invalid(if max == MAX_OBJECT_TAGS {
            format!("Object tags cannot be greater than {max}")
        } else {
            format!("Bucket tag count cannot be greater than {max}")
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for tag in tags {
        let key_chars = tag.key.chars().count();
        if key_chars == 0 || key_chars > MAX_KEY_CHARS {
            return Err(invalid(format!(
                "The TagKey you have provided is invalid or too long (1 to {MAX_KEY_CHARS} characters)"
            ))
            .detail("TagKey", &tag.key));
        }
        if tag.value.chars().count() > MAX_VALUE_CHARS {
            return Err(invalid(format!(
                "The TagValue you have provided is too long, max {MAX_VALUE_CHARS}"
            ))
            .detail("TagKey", &tag.key));
        }
        if !tag.key.chars().all(allowed_char) || !tag.value.chars().all(allowed_char) {
            return Err(invalid(
                "The TagKey or TagValue you have provided contains invalid characters",
            )
            .detail("TagKey", &tag.key));
        }
        if tag.key.starts_with("aws:") {
            return Err(
                invalid("Your TagKey cannot be prefixed with aws:").detail("TagKey", &tag.key)
            );
        }
        if !seen.insert(tag.key.as_str()) {
            return Err(invalid("Cannot provide multiple Tags with the same key")
                .detail("TagKey", &tag.key));
        }
    }
    Ok(())
}

/// Decodes one `application/x-www-form-urlencoded` component.
fn form_decode(s: &str) -> S3Result<String> {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| S3Error::invalid_argument("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates."))
}

/// Tags as an `x-amz-tagging` header value (a URL query string).
pub fn to_header(tags: &[Tag]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    tags.iter()
        .map(|t| {
            format!(
                "{}={}",
                utf8_percent_encode(&t.key, NON_ALPHANUMERIC),
                utf8_percent_encode(&t.value, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The tags an `x-amz-tagging: k1=v1&k2=v2` header asks for, validated.
pub fn from_header(value: &str) -> S3Result<Vec<Tag>> {
    let mut tags = Vec::new();
    for pair in value.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        tags.push(Tag {
            key: form_decode(key)?,
            value: form_decode(value)?,
        });
    }
    checked(tags, MAX_OBJECT_TAGS)
}

/// A valid tag set, in key order (as S3 returns tags).
fn checked(mut tags: Vec<Tag>, max: usize) -> S3Result<Vec<Tag>> {
    validate(&tags, max)?;
    tags.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(tags)
}

#[derive(Deserialize)]
struct Tagging {
    #[serde(rename = "TagSet")]
    tag_set: TagSet,
}

#[derive(Deserialize)]
struct TagSet {
    #[serde(rename = "Tag", default)]
    tags: Vec<XmlTag>,
}

#[derive(Deserialize)]
struct XmlTag {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value", default)]
    value: String,
}

/// Parses and validates a `<Tagging>` document of at most `max` tags.
pub fn from_xml(body: &[u8], max: usize) -> S3Result<Vec<Tag>> {
    let doc: Tagging = xml::parse(body, "Tagging")?;
    let tags: Vec<Tag> = doc
        .tag_set
        .tags
        .into_iter()
        .map(|t| Tag {
            key: t.key,
            value: t.value,
        })
        .collect();
    checked(tags, max)
}

pub fn to_xml(tags: &[Tag]) -> String {
    let mut w = XmlWriter::root("Tagging");
    w.open("TagSet");
    for tag in tags {
        w.open("Tag");
        w.element("Key", &tag.key);
        w.element("Value", &tag.value);
        w.close("Tag");
    }
    w.close("TagSet");
    w.close("Tagging");
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn header_tags_decode_and_validate() {
        assert_eq!(
            from_header("d=&a=1&b=x%20y&c=p+q").unwrap(),
            vec![
                tag("a", "1"),
                tag("b", "x y"),
                tag("c", "p q"),
                tag("d", "")
            ],
            "decoded, and in key order"
        );
        assert!(from_header("").unwrap().is_empty());
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert_eq!(
            from_header(&eleven.join("&")).unwrap_err().code,
            S3ErrorCode::InvalidTag
        );
        assert_eq!(
            from_header("a=1&a=2").unwrap_err().code,
            S3ErrorCode::InvalidTag
        );
    }

    #[test]
    fn limits_are_s3s() {
        let ok = vec![
            tag(&"k".repeat(128), &"v".repeat(256)),
            tag("café ü", "a:b/c=d+e-f@g_h.i"),
        ];
        assert!(validate(&ok, MAX_OBJECT_TAGS).is_ok());
        for bad in [
            vec![tag(&"k".repeat(129), "v")],
            vec![tag("k", &"v".repeat(257))],
            vec![tag("", "v")],
            vec![tag("aws:cloudformation", "v")],
            vec![tag("k", "v"), tag("k", "w")],
            vec![tag("k<", "v")],
            vec![tag("k", "v\u{0}")],
        ] {
            assert_eq!(
                validate(&bad, MAX_OBJECT_TAGS).unwrap_err().code,
                S3ErrorCode::InvalidTag,
                "{bad:?}"
            );
        }
        let fifty: Vec<Tag> = (0..50).map(|i| tag(&i.to_string(), "")).collect();
        assert!(validate(&fifty, MAX_BUCKET_TAGS).is_ok());
        assert!(validate(&fifty, MAX_OBJECT_TAGS).is_err());
    }

    #[test]
    fn documents_round_trip() {
        let tags = vec![tag("a", "1"), tag("b c", "x/y=z+w@v")];
        assert_eq!(
            from_xml(to_xml(&tags).as_bytes(), MAX_OBJECT_TAGS).unwrap(),
            tags
        );
        assert_eq!(
            from_xml(b"<Tagging><TagSet>", MAX_OBJECT_TAGS)
                .unwrap_err()
                .code,
            S3ErrorCode::MalformedXML
        );
    }
}

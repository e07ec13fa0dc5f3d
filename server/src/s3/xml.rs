//! Writing S3 XML documents and parsing the few that clients send.
//!
//! Responses are written with a small streaming writer so element order is
//! exactly what the S3 schema says; requests are parsed with quick-xml's serde
//! support into typed structs.

use crate::s3::error::{S3Error, S3ErrorCode};
use serde::de::DeserializeOwned;

pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
pub const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Builds an XML document in memory; values are escaped as they are written.
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub fn document() -> Self {
        XmlWriter {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        }
    }

    /// Opens the root element of a success document, in the S3 namespace.
    pub fn root(name: &str) -> Self {
        let mut w = XmlWriter::document();
        w.open_with(name, &[("xmlns", S3_NAMESPACE)]);
        w
    }

    pub fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn open_with(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attributes {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            escape_into(&mut self.out, value);
            self.out.push('"');
        }
        self.out.push('>');
    }

    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// Escaped character data inside the element last opened.
    pub fn text(&mut self, value: &str) {
        escape_into(&mut self.out, value);
    }

    pub fn element(&mut self, name: &str, value: &str) {
        self.open(name);
        escape_into(&mut self.out, value);
        self.close(name);
    }

    /// `<name><ID>…</ID><DisplayName>…</DisplayName></name>`.
    pub fn owner(&mut self, name: &str, owner: &crate::acl::Owner) {
        self.open(name);
        self.element("ID", &owner.id);
        self.element("DisplayName", &owner.display_name);
        self.close(name);
    }

    pub fn boolean(&mut self, name: &str, value: bool) {
        self.element(name, if value { "true" } else { "false" });
    }

    pub fn optional(&mut self, name: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.element(name, value);
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Escapes markup characters, and control characters (which S3 keys may hold)
/// as character references so they survive a round trip through a parser.
pub fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("&#x{:X};", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// Parses a request body whose root element must be `root` into `T`;
/// anything malformed, or a document of another type, is `MalformedXML`.
pub fn parse<T: DeserializeOwned>(body: &[u8], root: &str) -> Result<T, S3Error> {
    parse_as(body, root, S3ErrorCode::MalformedXML)
}

pub fn parse_as<T: DeserializeOwned>(
    body: &[u8],
    root: &str,
    code: S3ErrorCode,
) -> Result<T, S3Error> {
    let text = std::str::from_utf8(body).map_err(|_| S3Error::new(code))?;
    if text.trim().is_empty() {
        return Err(S3Error::new(code));
    }
    // serde ignores the root element's name; S3 does not.
    if root_name(text).as_deref() != Some(root) {
        tracing::debug!(expected = root, "request XML has another root element");
        return Err(S3Error::new(code));
    }
    quick_xml::de::from_str(text).map_err(|e| {
        tracing::debug!(error = %e, "malformed request XML");
        S3Error::new(code)
    })
}

/// The local name of a document's root element.
fn root_name(text: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.local_name();
                let name: &str = name.as_ref();
                return Some(name.to_string());
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// S3 timestamps in XML: ISO 8601 with milliseconds, always UTC.
pub fn timestamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&format)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        let mut w = XmlWriter::root("Test");
        w.element("Key", "a<b>&\"c'\r\u{1}");
        w.close("Test");
        let xml = w.finish();
        assert!(xml.contains("xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""));
        assert!(xml.contains("<Key>a&lt;b&gt;&amp;&quot;c&apos;&#xD;&#x1;</Key>"));
    }

    #[test]
    fn timestamps_have_milliseconds() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[derive(serde::Deserialize, Debug)]
    struct Probe {
        #[serde(rename = "Name")]
        name: String,
    }

    #[test]
    fn malformed_xml_is_an_s3_error() {
        assert_eq!(
            parse::<Probe>(b"<Probe><Name>x</Name></Probe>", "Probe")
                .unwrap()
                .name,
            "x"
        );
        assert_eq!(
            parse::<Probe>(
                b"<?xml version=\"1.0\"?><s3:Probe xmlns:s3=\"urn:x\"><Name>x</Name></s3:Probe>",
                "Probe"
            )
            .unwrap()
            .name,
            "x"
        );
        for bad in [
            &b""[..],
            b"<Probe><Name>x</Probe>",
            b"\xff\xfe",
            b"not xml",
            b"<Other><Name>x</Name></Other>",
        ] {
            assert_eq!(
                parse::<Probe>(bad, "Probe").unwrap_err().code,
                S3ErrorCode::MalformedXML
            );
        }
    }
}

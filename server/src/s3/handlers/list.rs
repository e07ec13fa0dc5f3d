//! ListObjects (v1), ListObjectsV2 and ListObjectVersions, all served by the
//! same index-driven page query.

use super::{S3Response, meta_error, request_bucket, xml_response};
use crate::app::App;
use crate::auth::sigv4::uri_encode;
use crate::checksum::{base64_decode, base64_encode};
use crate::meta::model::{
    ListEntry, ListPage, ListQuery, ObjectSummary, VersionEntry, VersionQuery,
};
use crate::meta::query;
use crate::s3::error::{S3Error, S3Result};
use crate::s3::request::S3Request;
use crate::s3::xml::{self, XmlWriter};
use http::StatusCode;

/// Common listing parameters.
struct Params {
    prefix: String,
    delimiter: Option<String>,
    max_keys: usize,
    url_encoding: bool,
}

impl Params {
    /// The page query continuing strictly after `after` (if not empty).
    fn query(&self, after: Option<&str>) -> ListQuery {
        ListQuery {
            prefix: self.prefix.clone(),
            delimiter: self.delimiter.clone(),
            after: after.filter(|a| !a.is_empty()).map(str::to_string),
            max_keys: self.max_keys,
        }
    }
}

fn params(req: &S3Request) -> S3Result<Params> {
    let max_keys = req.count_param("max-keys")?;
    let url_encoding = match req.param("encoding-type") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("url") => true,
        Some(v) => {
            return Err(
                S3Error::invalid_argument("Invalid Encoding Method specified in Request")
                    .detail("ArgumentName", "encoding-type")
                    .detail("ArgumentValue", v),
            );
        }
    };
    Ok(Params {
        prefix: req.param("prefix").unwrap_or_default().to_string(),
        delimiter: req
            .param("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        max_keys,
        url_encoding,
    })
}

async fn fetch(app: &App, bucket: &str, query: ListQuery) -> S3Result<ListPage> {
    let name = bucket.to_string();
    app.meta
        .read(move |c| query::list_objects(c, &name, &query))
        .await
        .map_err(|e| meta_error(e, bucket, None))
}

struct Writer {
    w: XmlWriter,
    url: bool,
}

impl Writer {
    /// Writes a key-like value, URL-encoded when `encoding-type=url`.
    fn key(&mut self, name: &str, value: &str) {
        if self.url {
            self.w.element(name, &uri_encode(value.as_bytes(), true));
        } else {
            self.w.element(name, value);
        }
    }

    fn object_fields(&mut self, o: &ObjectSummary, owner: bool) {
        self.w
            .element("LastModified", &xml::timestamp(o.modified_ms));
        self.w.element("ETag", &o.etag);
        if let Some(checksum) = &o.checksum {
            self.w
                .element("ChecksumAlgorithm", checksum.algorithm.as_str());
            self.w.element("ChecksumType", checksum.kind.as_str());
        }
        self.w.element("Size", &o.size.to_string());
        if owner {
            self.w.owner("Owner", &o.owner);
        }
        self.w.element("StorageClass", &o.storage_class);
    }

    fn contents(&mut self, page: &ListPage, owner: bool) {
        for entry in &page.entries {
            if let ListEntry::Object(o) = entry {
                self.w.open("Contents");
                self.key("Key", &o.key);
                self.object_fields(o, owner);
                self.w.close("Contents");
            }
        }
    }

    fn common_prefixes(&mut self, page: &ListPage) {
        for entry in &page.entries {
            if let ListEntry::Prefix(p) = entry {
                self.w.open("CommonPrefixes");
                self.key("Prefix", p);
                self.w.close("CommonPrefixes");
            }
        }
    }

    fn header(&mut self, bucket: &str, p: &Params) {
        self.w.element("Name", bucket);
        self.key("Prefix", &p.prefix);
    }
}

fn writer(root: &str, url: bool) -> Writer {
    Writer {
        w: XmlWriter::root(root),
        url,
    }
}

pub async fn list_objects_v1(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let p = params(req)?;
    let marker = req.param("marker").unwrap_or_default().to_string();
    let page = fetch(app, &bucket.name, p.query(Some(&marker))).await?;
    let mut w = writer("ListBucketResult", p.url_encoding);
    // ListObjects v1 leaves <Prefix> unencoded even with encoding-type=url
    // (clients decode only keys, markers, delimiter and common prefixes).
    w.w.element("Name", &bucket.name);
    w.w.element("Prefix", &p.prefix);
    w.key("Marker", &marker);
    if page.truncated
        && p.delimiter.is_some()
        && let Some(last) = page.entries.last()
    {
        w.key("NextMarker", last.position());
    }
    w.w.element("MaxKeys", &p.max_keys.to_string());
    if let Some(d) = &p.delimiter {
        w.key("Delimiter", d);
    }
    w.w.boolean("IsTruncated", page.truncated);
    if p.url_encoding {
        w.w.element("EncodingType", "url");
    }
    w.contents(&page, true);
    w.common_prefixes(&page);
    w.w.close("ListBucketResult");
    Ok(xml_response(StatusCode::OK, w.w.finish()))
}

/// Continuation tokens are opaque to clients: the position, base64-encoded.
fn encode_token(position: &str) -> String {
    base64_encode(position.as_bytes())
}

fn decode_token(token: &str) -> S3Result<String> {
    base64_decode(token)
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(|| {
            S3Error::invalid_argument("The continuation token provided is incorrect")
                .detail("ArgumentName", "continuation-token")
        })
}

pub async fn list_objects_v2(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let p = params(req)?;
    let token = req.param("continuation-token").map(str::to_string);
    let start_after = req.param("start-after").map(str::to_string);
    let fetch_owner = req
        .param("fetch-owner")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let after = match &token {
        Some(t) => Some(decode_token(t)?),
        None => start_after.clone().filter(|s| !s.is_empty()),
    };
    let page = fetch(app, &bucket.name, p.query(after.as_deref())).await?;
    let mut w = writer("ListBucketResult", p.url_encoding);
    w.header(&bucket.name, &p);
    if let Some(d) = &p.delimiter {
        w.key("Delimiter", d);
    }
    w.w.element("MaxKeys", &p.max_keys.to_string());
    if p.url_encoding {
        w.w.element("EncodingType", "url");
    }
    w.w.element("KeyCount", &page.entries.len().to_string());
    w.w.boolean("IsTruncated", page.truncated);
    if let Some(t) = &token {
        w.w.element("ContinuationToken", t);
    }
    if page.truncated
        && let Some(last) = page.entries.last()
    {
        w.w.element("NextContinuationToken", &encode_token(last.position()));
    }
    if let Some(s) = &start_after {
        w.key("StartAfter", s);
    }
    w.contents(&page, fetch_owner);
    w.common_prefixes(&page);
    w.w.close("ListBucketResult");
    Ok(xml_response(StatusCode::OK, w.w.finish()))
}

/// Every version and delete marker, keys in order and each key's versions
/// newest first.
pub async fn list_object_versions(app: &App, req: &mut S3Request) -> S3Result<S3Response> {
    let bucket = request_bucket(app, req).await?;
    let p = params(req)?;
    let key_marker = req.param("key-marker").unwrap_or_default().to_string();
    let version_marker = req
        .param("version-id-marker")
        .unwrap_or_default()
        .to_string();
    if !version_marker.is_empty() && key_marker.is_empty() {
        return Err(S3Error::invalid_argument(
            "A version-id marker cannot be specified without a key marker.",
        )
        .detail("ArgumentName", "version-id-marker"));
    }
    if !version_marker.is_empty() && !crate::meta::is_valid_version_id(&version_marker) {
        return Err(S3Error::invalid_argument("Invalid version id specified")
            .detail("ArgumentName", "version-id-marker")
            .detail("ArgumentValue", &version_marker));
    }
    let query = VersionQuery {
        prefix: p.prefix.clone(),
        delimiter: p.delimiter.clone(),
        key_marker: Some(key_marker.clone()).filter(|m| !m.is_empty()),
        version_id_marker: Some(version_marker.clone()).filter(|m| !m.is_empty()),
        max_keys: p.max_keys,
    };
    let name = bucket.name.clone();
    let page = app
        .meta
        .read(move |c| query::list_versions(c, &name, &query))
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    let mut w = writer("ListVersionsResult", p.url_encoding);
    w.header(&bucket.name, &p);
    w.key("KeyMarker", &key_marker);
    w.w.element("VersionIdMarker", &version_marker);
    if page.truncated {
        match page.entries.last() {
            Some(VersionEntry::Version(v)) => {
                w.key("NextKeyMarker", &v.object.key);
                w.w.element("NextVersionIdMarker", &v.version_id);
            }
            Some(VersionEntry::Prefix(prefix)) => w.key("NextKeyMarker", prefix),
            None => {}
        }
    }
    w.w.element("MaxKeys", &p.max_keys.to_string());
    if let Some(d) = &p.delimiter {
        w.key("Delimiter", d);
    }
    if p.url_encoding {
        w.w.element("EncodingType", "url");
    }
    w.w.boolean("IsTruncated", page.truncated);
    for entry in &page.entries {
        let VersionEntry::Version(v) = entry else {
            continue;
        };
        let o = &v.object;
        let element = if v.delete_marker {
            "DeleteMarker"
        } else {
            "Version"
        };
        w.w.open(element);
        w.key("Key", &o.key);
        w.w.element("VersionId", &v.version_id);
        w.w.boolean("IsLatest", v.is_latest);
        if v.delete_marker {
            w.w.element("LastModified", &xml::timestamp(o.modified_ms));
            w.w.owner("Owner", &o.owner);
        } else {
            w.object_fields(o, true);
        }
        w.w.close(element);
    }
    for entry in &page.entries {
        if let VersionEntry::Prefix(prefix) = entry {
            w.w.open("CommonPrefixes");
            w.key("Prefix", prefix);
            w.w.close("CommonPrefixes");
        }
    }
    w.w.close("ListVersionsResult");
    Ok(xml_response(StatusCode::OK, w.w.finish()))
}

//! Blob stores in front of a cloud bucket: AWS S3 (and S3-compatible
//! stores) through aws-sdk-s3; Azure Blob and Google Cloud Storage through
//! object_store (GCS writes through its JSON API, `gcs_upload.rs`). All of them are shared by every node of a cluster.
//!
//! Each client retries idempotent calls itself (bounded attempts with
//! backoff); what still fails becomes `StorageError::Busy` (throttled, 5xx,
//! unreachable: the S3 client is told to slow down) or
//! `StorageError::Upstream` (refused for good: credentials, a missing bucket).

mod aws;
mod gcs_upload;
mod object;

pub use aws::AwsBlobStore;
pub use object::ObjectStoreBlobStore;

use super::{BlobId, BodyStream, StorageError};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::time::Duration;

/// How long a connection attempt to an upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an upstream may go silent within one request.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Upstream parts of one blob in flight at once (each `part_size` bytes).
const PARTS_IN_FLIGHT: usize = 2;

/// The upstream object name of a blob: the configured prefix and the id's
/// random part (never a user key).
fn object_key(prefix: &str, id: &BlobId) -> String {
    format!("{prefix}{}", id.key())
}

/// The blob an upstream object name stands for, if it is one of ours.
fn blob_of(prefix: &str, key: &str) -> Option<BlobId> {
    key.strip_prefix(prefix).and_then(BlobId::parse)
}

/// Removes query strings (SAS tokens, presigned parameters) from an error
/// message before it is logged or returned.
fn redact(message: &str) -> String {
    message
        .split(' ')
        .map(|word| match word.split_once('?') {
            Some((before, _)) if before.contains("://") => format!("{before}?…"),
            _ => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first `limit` bytes of a body, or all of it if it is shorter: a blob
/// that fits in one part goes up as one simple upload.
enum Head {
    /// The whole body.
    Whole(Bytes),
    /// A full first part; the rest is still in the stream.
    Part(Bytes, BodyStream),
}

async fn read_head(mut body: BodyStream, limit: usize) -> Result<Head, StorageError> {
    let mut buffer = BytesMut::new();
    while let Some(piece) = body.next().await {
        buffer.extend_from_slice(&piece.map_err(StorageError::Body)?);
        if buffer.len() >= limit {
            let rest = buffer.split_off(limit).freeze();
            let body = futures::stream::iter([Ok(rest)]).chain(body).boxed();
            return Ok(Head::Part(buffer.freeze(), body));
        }
    }
    Ok(Head::Whole(buffer.freeze()))
}

/// Cuts a body into parts of exactly `size` bytes (the last may be shorter),
/// holding at most one part in memory.
struct Parts {
    body: BodyStream,
    size: usize,
    buffer: BytesMut,
    ended: bool,
}

impl Parts {
    fn new(body: BodyStream, size: usize) -> Self {
        Parts {
            body,
            size,
            buffer: BytesMut::new(),
            ended: false,
        }
    }

    async fn next(&mut self) -> Result<Option<Bytes>, StorageError> {
        while !self.ended && self.buffer.len() < self.size {
            match self.body.next().await {
                Some(piece) => self
                    .buffer
                    .extend_from_slice(&piece.map_err(StorageError::Body)?),
                None => self.ended = true,
            }
        }
        if self.buffer.is_empty() {
            return Ok(None);
        }
        let take = self.size.min(self.buffer.len());
        Ok(Some(self.buffer.split_to(take).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_drops_query_strings_of_urls() {
        assert_eq!(
            redact("Error performing GET http://h/c/b?sv=1&sig=secret in 1s"),
            "Error performing GET http://h/c/b?… in 1s"
        );
        assert_eq!(redact("plain message?"), "plain message?");
    }

    #[test]
    fn keys_round_trip_through_the_prefix() {
        let id = BlobId::random();
        let key = object_key("bleep/", &id.on("archive"));
        assert_eq!(blob_of("bleep/", &key), Some(id));
        assert_eq!(blob_of("bleep/", "other/x"), None);
    }

    #[tokio::test]
    async fn parts_are_cut_at_the_part_size() {
        let body = futures::stream::iter(
            [&b"abc"[..], b"defgh", b"ij"].map(|c| Ok(Bytes::from_static(c))),
        )
        .boxed();
        let mut parts = Parts::new(body, 4);
        let mut got = Vec::new();
        while let Some(p) = parts.next().await.unwrap() {
            got.push(p);
        }
        assert_eq!(got, vec![&b"abcd"[..], b"efgh", b"ij"]);
    }
}

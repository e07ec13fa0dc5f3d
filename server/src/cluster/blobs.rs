//! Blob bytes wherever they are kept. A node reads its own copy when it has
//! one, and otherwise streams the bytes from a node that holds the blob,
//! checking that exactly the asked-for length arrives and, for a whole blob,
//! that its CRC32C is the one recorded when it was written: a copy that
//! fails the check ends the stream with an error instead of being served.
//!
//! The serving side pins the blob while it streams, so an overwrite
//! committed meanwhile does not delete it under the reader.

use super::Cluster;
use super::paths::BLOBS;
use super::transport::{TransportError, full};
use crate::meta::model::Placement;
use crate::storage::{BlobId, BlobPins, BlobStore, BodyStream, StorageError};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use std::sync::Arc;

/// This node's blob store, as other nodes read it.
#[derive(Clone)]
pub struct LocalBlobs {
    pub store: Arc<dyn BlobStore>,
    pub pins: Arc<BlobPins>,
}

#[derive(serde::Deserialize)]
pub struct Span {
    offset: u64,
    length: u64,
}

/// `GET /internal/v1/blobs/{id}?offset=&length=`: bytes of a local copy.
pub async fn serve(
    State(local): State<LocalBlobs>,
    Path(id): Path<String>,
    Query(span): Query<Span>,
) -> Response {
    let Some(id) = BlobId::parse(&id) else {
        return (StatusCode::BAD_REQUEST, "not a blob id").into_response();
    };
    let pin = local.pins.pin(local.store.clone(), vec![id.clone()]);
    match local.store.get(&id, span.offset, span.length).await {
        Ok(stream) => {
            // The pin lives as long as the response body.
            let stream = stream.map(move |chunk| {
                let _held = &pin;
                chunk
            });
            (
                [(axum::http::header::CONTENT_LENGTH, span.length.to_string())],
                Body::from_stream(stream),
            )
                .into_response()
        }
        Err(StorageError::NotFound(_)) => {
            (StatusCode::NOT_FOUND, "no such blob here").into_response()
        }
        Err(e) => {
            tracing::error!(blob = %id, error = %e, "cannot read a blob another node asked for");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}

/// Reads blobs for this node's responses: the local copy first, then the
/// nodes its placement names (or, for blobs written before placements were
/// recorded, every other member).
pub struct BlobReader {
    local: Arc<dyn BlobStore>,
    cluster: Arc<Cluster>,
}

impl BlobReader {
    pub fn new(local: Arc<dyn BlobStore>, cluster: Arc<Cluster>) -> Arc<Self> {
        Arc::new(BlobReader { local, cluster })
    }

    /// Streams `length` stored bytes of `blob` from `offset`.
    pub async fn get(
        &self,
        blob: &BlobId,
        place: &Placement,
        offset: u64,
        length: u64,
    ) -> Result<BodyStream, StorageError> {
        let me = self.cluster.node_id();
        let listed_here = place.nodes.is_empty() || place.nodes.contains(&me);
        if listed_here || !self.cluster.is_clustered() {
            match self.local.get(blob, offset, length).await {
                Err(StorageError::NotFound(_)) if self.cluster.is_clustered() => {}
                other => return other,
            }
        }
        let holders: Vec<u64> = if place.nodes.is_empty() {
            let membership = self.cluster.metrics().membership_config;
            membership.nodes().map(|(id, _)| *id).collect()
        } else {
            place.nodes.clone()
        };
        let mut last = StorageError::NotFound(blob.clone());
        for node in holders.into_iter().filter(|node| *node != me) {
            match self.fetch(node, blob, offset, length).await {
                Ok(stream) => return Ok(checked(stream, blob, place, offset, length)),
                Err(TransportError::Status { status: 404, .. }) => {}
                Err(e) => {
                    tracing::warn!(%blob, node, error = %e, "cannot read a blob from its holder");
                    last = StorageError::Unavailable(blob.clone(), e.to_string());
                }
            }
        }
        Err(last)
    }

    async fn fetch(
        &self,
        node: u64,
        blob: &BlobId,
        offset: u64,
        length: u64,
    ) -> Result<BodyStream, TransportError> {
        let path = format!("{BLOBS}/{blob}?offset={offset}&length={length}");
        let timeout = self.cluster.settings().peer_timeout;
        let response = self
            .cluster
            .transport()
            .send(node, hyper::Method::GET, &path, full(Bytes::new()), timeout)
            .await?;
        Ok(response
            .into_body()
            .into_data_stream()
            .map_err(std::io::Error::other)
            .boxed())
    }
}

/// `stream` ending in an error unless it carries exactly `length` bytes and,
/// when it is the whole blob, the recorded CRC32C. The last chunk is held
/// back until the check passes, so a bad copy never reaches a client whole.
fn checked(
    stream: BodyStream,
    blob: &BlobId,
    place: &Placement,
    offset: u64,
    length: u64,
) -> BodyStream {
    let expected_crc = place
        .stored
        .filter(|stored| offset == 0 && stored.len == length)
        .map(|stored| stored.crc32c);
    let state = Check {
        stream,
        blob: blob.clone(),
        length,
        expected_crc,
        seen: 0,
        crc: crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi),
        held: None,
        done: false,
    };
    futures::stream::unfold(state, |mut check| async move {
        let item = check.next().await?;
        Some((item, check))
    })
    .boxed()
}

struct Check {
    stream: BodyStream,
    blob: BlobId,
    length: u64,
    expected_crc: Option<u32>,
    seen: u64,
    crc: crc_fast::Digest,
    held: Option<Bytes>,
    done: bool,
}

impl Check {
    fn fail(&mut self, message: String) -> Option<std::io::Result<Bytes>> {
        self.done = true;
        tracing::error!(blob = %self.blob, "{message}");
        Some(Err(std::io::Error::other(message)))
    }

    async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        if self.done {
            return None;
        }
        loop {
            match self.stream.next().await {
                Some(Ok(chunk)) => {
                    self.seen += chunk.len() as u64;
                    if self.seen > self.length {
                        let message =
                            format!("a copy of blob {} is longer than recorded", self.blob);
                        return self.fail(message);
                    }
                    if self.expected_crc.is_some() {
                        self.crc.update(&chunk);
                    }
                    if let Some(previous) = self.held.replace(chunk) {
                        return Some(Ok(previous));
                    }
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    if self.seen != self.length {
                        let message = format!(
                            "a copy of blob {} ended after {} of {} bytes",
                            self.blob, self.seen, self.length
                        );
                        return self.fail(message);
                    }
                    if let Some(want) = self.expected_crc
                        && self.crc.finalize() as u32 != want
                    {
                        let message =
                            format!("a copy of blob {} fails its CRC32C check", self.blob);
                        return self.fail(message);
                    }
                    self.done = true;
                    return self.held.take().map(Ok);
                }
            }
        }
    }
}

/// CRC32C of the bytes flowing through a stream, read once it has ended.
#[derive(Clone, Default)]
pub struct CrcTap(Arc<std::sync::Mutex<Option<crc_fast::Digest>>>);

impl CrcTap {
    /// `stream`, with every chunk also fed to this tap.
    pub fn tap(&self, stream: BodyStream) -> BodyStream {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi));
        let tap = self.0.clone();
        stream
            .inspect_ok(move |chunk| {
                if let Some(digest) = tap.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    digest.update(chunk);
                }
            })
            .boxed()
    }

    pub fn crc32c(&self) -> Option<u32> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|digest| digest.finalize() as u32)
    }
}

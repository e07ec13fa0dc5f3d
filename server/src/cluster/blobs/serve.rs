//! The routes other nodes use for this node's copies (`/internal/v1/blobs`,
//! cluster secret): read a range, receive a new copy as a write streams it,
//! delete a copy a failed write left, pull a copy from a holder (repair),
//! and check a copy another node found bad.

use super::Replicas;
use super::read::checked;
use crate::cluster::internal_api::{decoded, encoded};
use crate::meta::model::StoredBlob;
use crate::storage::{BlobId, StorageError};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A copy made durable: what its receiver wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    pub len: u64,
    pub crc32c: u32,
}

/// Asks a node to make a copy of a blob from one of `from` (all members
/// when empty: blobs written before holders were recorded).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyRequest {
    pub from: Vec<u64>,
    pub stored: Option<StoredBlob>,
}

pub type LocalBlobs = Arc<Replicas>;

#[derive(Deserialize)]
pub struct Span {
    offset: u64,
    length: Option<u64>,
}

fn blob_id(id: &str) -> Result<BlobId, Box<Response>> {
    BlobId::parse(id)
        .ok_or_else(|| Box::new((StatusCode::BAD_REQUEST, "not a blob id").into_response()))
}

fn storage_failure(blob: &BlobId, what: &str, e: StorageError) -> Response {
    match e {
        StorageError::NotFound(_) => (StatusCode::NOT_FOUND, "no such blob here").into_response(),
        StorageError::Body(e) => (StatusCode::BAD_REQUEST, format!("{what}: {e}")).into_response(),
        e => {
            tracing::error!(%blob, error = %e, "{what}");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{what}: {e}")).into_response()
        }
    }
}

/// `GET /internal/v1/blobs/{id}?offset=&length=`: bytes of a local copy,
/// pinned while they stream so a delete committed meanwhile waits.
pub async fn serve(
    State(replicas): State<LocalBlobs>,
    Path(id): Path<String>,
    Query(span): Query<Span>,
) -> Response {
    let id = match blob_id(&id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let pin = replicas.pins.pin(replicas.local.clone(), vec![id.clone()]);
    let length = span.length.unwrap_or(u64::MAX);
    match replicas.local.get(&id, span.offset, length).await {
        Ok(stream) => {
            let stream = stream.map(move |chunk| {
                let _held = &pin;
                chunk
            });
            let mut response = Body::from_stream(stream).into_response();
            if let Some(length) = span.length
                && let Ok(value) = length.to_string().parse()
            {
                response
                    .headers_mut()
                    .insert(axum::http::header::CONTENT_LENGTH, value);
            }
            response
        }
        Err(e) => storage_failure(&id, "cannot read a blob another node asked for", e),
    }
}

/// `PUT /internal/v1/blobs/{id}`: a new copy, streamed by the node a client
/// is writing through. Durable when this answers; a cut stream leaves
/// nothing.
pub async fn receive(
    State(replicas): State<LocalBlobs>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let id = match blob_id(&id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let crc = super::CrcTap::default();
    let stream = crc.tap(
        body.into_data_stream()
            .map_err(std::io::Error::other)
            .boxed(),
    );
    match replicas.local.put(&id, stream).await {
        Ok(len) => encoded(&Received {
            len,
            crc32c: crc.crc32c().unwrap_or(0),
        }),
        Err(e) => storage_failure(&id, "cannot store a copy another node sent", e),
    }
}

/// `DELETE /internal/v1/blobs/{id}`: removes a copy a write gave up on.
/// A copy the metadata lists here is kept.
pub async fn discard(State(replicas): State<LocalBlobs>, Path(id): Path<String>) -> Response {
    let id = match blob_id(&id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let me = replicas.node_id();
    let blob = id.clone();
    match replicas
        .meta
        .lookup(move |c| crate::meta::holders::kept_on(c, &blob, me))
        .await
    {
        Ok(false) => match replicas.local.delete(&id).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => storage_failure(&id, "cannot delete an abandoned copy", e),
        },
        Ok(true) => (StatusCode::CONFLICT, "the metadata lists this copy").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// `POST /internal/v1/blobs/{id}/copy`: makes a local copy from a holder,
/// checked against the recorded length and CRC32C while it is written (a
/// copy that fails is not kept). An existing good copy is kept as it is.
pub async fn copy(
    State(replicas): State<LocalBlobs>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let id = match blob_id(&id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let request: CopyRequest = match decoded(&body) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    match replicas.copy_here(&id, &request).await {
        Ok(received) => encoded(&received),
        Err(e) => storage_failure(&id, "cannot copy a blob from its holders", e),
    }
}

/// `POST /internal/v1/blobs/{id}/verify`: reads the local copy through and
/// checks it; a missing or bad copy is dropped from the metadata. Answers
/// whether the copy is good.
pub async fn verify(
    State(replicas): State<LocalBlobs>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let id = match blob_id(&id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let stored: Option<StoredBlob> = match decoded(&body) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    encoded(&replicas.check_local(&id, stored).await)
}

impl Replicas {
    /// Makes this node's copy of `blob` from one of the holders named.
    pub(super) async fn copy_here(
        &self,
        blob: &BlobId,
        request: &CopyRequest,
    ) -> Result<Received, StorageError> {
        match request.stored {
            Some(stored) if self.local_copy_is_good(blob, stored, None).await => {
                return Ok(Received {
                    len: stored.len,
                    crc32c: stored.crc32c,
                });
            }
            // Nothing to check a copy written before checksums were
            // recorded against: one that exists is taken as it is.
            None if self.local.get(blob, 0, 0).await.is_ok() => {
                return Ok(Received { len: 0, crc32c: 0 });
            }
            _ => {}
        }
        let me = self.node_id();
        let sources: Vec<u64> = if request.from.is_empty() {
            self.members().into_iter().collect()
        } else {
            request.from.clone()
        };
        let mut last = StorageError::NotFound(blob.clone());
        for node in sources.into_iter().filter(|&n| n != me) {
            let length = request.stored.map(|s| s.len);
            let stream = match self.fetch(node, blob, 0, length).await {
                Ok(stream) => stream,
                Err(e) => {
                    last = StorageError::Unavailable(blob.clone(), e.to_string());
                    continue;
                }
            };
            let stream = match request.stored {
                Some(stored) => checked(stream, blob, Some(stored), 0, stored.len, Box::new(|| {})),
                None => stream,
            };
            let crc = super::CrcTap::default();
            let stream = crc.tap(self.receiving.pace(stream));
            match self.local.put(blob, stream).await {
                Ok(len) => {
                    return Ok(Received {
                        len,
                        crc32c: crc.crc32c().unwrap_or(0),
                    });
                }
                Err(StorageError::Body(e)) => {
                    tracing::warn!(%blob, node, error = %e, "a copy from a holder failed; trying another");
                    last = StorageError::Unavailable(blob.clone(), e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Whether the local copy of `blob` exists and matches `stored`, read
    /// at the pace of `pace` if given.
    pub(super) async fn local_copy_is_good(
        &self,
        blob: &BlobId,
        stored: StoredBlob,
        pace: Option<&super::Throttle>,
    ) -> bool {
        let Ok(stream) = self.local.get(blob, 0, stored.len).await else {
            return false;
        };
        let stream = match pace {
            Some(throttle) => throttle.pace(stream),
            None => stream,
        };
        let mut stream = checked(stream, blob, Some(stored), 0, stored.len, Box::new(|| {}));
        while let Some(chunk) = stream.next().await {
            if chunk.is_err() {
                return false;
            }
        }
        true
    }

    /// Checks this node's copy of `blob`; drops it from the metadata when
    /// it is missing or fails the check. `true` if it is good.
    pub(super) async fn check_local(&self, blob: &BlobId, stored: Option<StoredBlob>) -> bool {
        let good = match stored {
            Some(stored) => self.local_copy_is_good(blob, stored, None).await,
            None => self.local.get(blob, 0, 0).await.is_ok(),
        };
        if !good && self.replicated {
            self.cluster.instruments().scrub_bad.inc();
            self.drop_copy(
                blob,
                self.node_id(),
                "the copy is missing or fails its check",
            )
            .await;
        }
        good
    }
}

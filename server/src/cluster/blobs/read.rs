//! Reading blob bytes wherever they are kept. A node reads its own copy
//! when it is listed for one, and otherwise streams the bytes from a node
//! that holds the blob. Either way exactly the asked-for length must arrive
//! and, for a whole blob, the CRC32C recorded when it was written: a copy
//! that fails the check ends the stream with an error instead of being
//! served, and is reported so that it is dropped and repaired.

use super::Replicas;
use crate::cluster::paths::BLOBS;
use crate::cluster::transport::{TransportError, full};
use crate::meta::model::{Placement, StoredBlob};
use crate::storage::{BlobId, BodyStream, StorageError};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use std::sync::Arc;

/// Called once when a copy fails its check.
type OnBad = Box<dyn FnOnce() + Send>;

impl Replicas {
    /// Streams `length` stored bytes of `blob` from `offset`: the local copy
    /// first, then the nodes its placement names (or, for blobs written
    /// before placements were recorded, every other member).
    pub async fn get(
        self: &Arc<Self>,
        blob: &BlobId,
        place: &Placement,
        offset: u64,
        length: u64,
    ) -> Result<BodyStream, StorageError> {
        let me = self.node_id();
        let clustered = self.cluster.is_clustered();
        let shared = self.local.is_shared_for(blob);
        let listed_here = place.nodes.is_empty() || place.nodes.contains(&me);
        if shared {
            // Every node reads a shared backend itself; no other node has more.
            let stream = self.local.get(blob, offset, length).await?;
            let on_bad = self.reporter(blob, me, "a shared backend returned a bad blob");
            return Ok(checked(stream, blob, place.stored, offset, length, on_bad));
        }
        if listed_here || !clustered {
            match self.local.get(blob, offset, length).await {
                Ok(stream) => {
                    let on_bad = self.reporter(blob, me, "a local copy fails its check");
                    return Ok(checked(stream, blob, place.stored, offset, length, on_bad));
                }
                Err(StorageError::NotFound(_)) if clustered => {
                    if place.nodes.contains(&me) {
                        self.cluster.instruments().scrub_bad.inc();
                        (self.reporter(blob, me, "the local copy is missing"))();
                    }
                }
                Err(e) if clustered => {
                    tracing::warn!(%blob, error = %e, "cannot read the local copy; trying the other holders");
                }
                Err(e) => return Err(e),
            }
        }
        let holders: Vec<u64> = if place.nodes.is_empty() {
            self.members().into_iter().collect()
        } else {
            place.nodes.clone()
        };
        let mut last = StorageError::NotFound(blob.clone());
        for node in holders.into_iter().filter(|node| *node != me) {
            match self.fetch(node, blob, offset, Some(length)).await {
                Ok(stream) => {
                    let on_bad = self.verifier(blob, node, place.stored);
                    return Ok(checked(stream, blob, place.stored, offset, length, on_bad));
                }
                Err(TransportError::Status { status: 404, .. }) => {}
                Err(e) => {
                    tracing::warn!(%blob, node, error = %e, "cannot read a blob from its holder");
                    last = StorageError::Unavailable(blob.clone(), e.to_string());
                }
            }
        }
        Err(last)
    }

    /// Streams bytes of `node`'s copy of `blob` (to its end without a length).
    pub(super) async fn fetch(
        &self,
        node: u64,
        blob: &BlobId,
        offset: u64,
        length: Option<u64>,
    ) -> Result<BodyStream, TransportError> {
        let path = match length {
            Some(length) => format!("{BLOBS}/{blob}?offset={offset}&length={length}"),
            None => format!("{BLOBS}/{blob}?offset={offset}"),
        };
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

    /// Drops `node`'s copy of `blob` from the metadata, in the background.
    fn reporter(self: &Arc<Self>, blob: &BlobId, node: u64, why: &'static str) -> OnBad {
        let replicas = self.clone();
        let blob = blob.clone();
        Box::new(move || {
            if !replicas.replicated {
                tracing::error!(%blob, "{why}; with a single copy there is nothing to repair it from");
                return;
            }
            tokio::spawn(async move { replicas.drop_copy(&blob, node, why).await });
        })
    }

    /// Asks `node` to check its copy of `blob` (and drop it if it is bad).
    fn verifier(self: &Arc<Self>, blob: &BlobId, node: u64, stored: Option<StoredBlob>) -> OnBad {
        let replicas = self.clone();
        let blob = blob.clone();
        Box::new(move || {
            tokio::spawn(async move {
                let path = format!("{BLOBS}/{blob}/verify");
                let timeout = replicas.cluster.settings().request_timeout;
                let asked: Result<bool, TransportError> =
                    replicas.cluster.call(node, &path, &stored, timeout).await;
                if let Err(e) = asked {
                    tracing::warn!(%blob, node, error = %e, "cannot ask a holder to check its copy");
                }
            });
        })
    }
}

/// `stream` ending in an error unless it carries exactly `length` bytes and,
/// when it is the whole blob, the recorded CRC32C. The last chunk is held
/// back until the check passes, so a bad copy never reaches a client whole.
pub(super) fn checked(
    stream: BodyStream,
    blob: &BlobId,
    stored: Option<StoredBlob>,
    offset: u64,
    length: u64,
    on_bad: OnBad,
) -> BodyStream {
    let expected_crc = stored
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
        on_bad: Some(on_bad),
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
    on_bad: Option<OnBad>,
}

impl Check {
    fn fail(&mut self, message: String) -> Option<std::io::Result<Bytes>> {
        self.done = true;
        tracing::error!(blob = %self.blob, "{message}");
        if let Some(report) = self.on_bad.take() {
            report();
        }
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

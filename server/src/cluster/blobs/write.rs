//! Writing a new blob to its targets: the nodes its placement names (with
//! the next-ranked member standing in for one known to be down), fed
//! in parallel from the one incoming stream while it arrives (never
//! buffered whole; the slowest target sets the pace, within a bound). The
//! write succeeds once a write quorum of the targets has the blob durable
//! and checked; fewer, and every copy made is removed and the write fails
//! as unavailable, so nothing is committed.

use super::Replicas;
use super::placement::{write_quorum, write_targets};
use super::serve::Received;
use crate::cluster::paths::BLOBS;
use crate::cluster::proposal::decode;
use crate::cluster::transport::{TransportError, full, streaming};
use crate::storage::{BlobId, BodyStream, StorageError};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A blob written: its stored length and the nodes that hold it.
#[derive(Debug)]
pub struct Written {
    pub len: u64,
    pub holders: Vec<u64>,
}

/// What the feeding loop sends each target. A stream that closes without
/// `End` was abandoned, and the target must not keep what it got.
enum Piece {
    Data(Bytes),
    End,
}

/// Chunks in flight to one target before the writer waits for it.
const QUEUE: usize = 8;

/// Longest a streaming copy may run at all; progress is bounded by the
/// per-chunk wait instead.
const COPY_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// How long a peer that could not be reached is routed around by new
/// writes; after that a write tries it again.
const ROUTE_AROUND: Duration = Duration::from_secs(10);

fn piece_stream(rx: mpsc::Receiver<Piece>) -> BodyStream {
    futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(Piece::Data(bytes)) => Some((Ok(bytes), Some(rx))),
            Some(Piece::End) => None,
            None => Some((
                Err(std::io::Error::other("the writer abandoned this copy")),
                None,
            )),
        }
    })
    .boxed()
}

struct Target {
    node: u64,
    feed: Option<mpsc::Sender<Piece>>,
    copy: tokio::task::JoinHandle<Result<Received, StorageError>>,
}

impl Replicas {
    /// Stores `stream` as `blob` on its targets. `crc32c` gives the CRC32C
    /// of what the stream carried once it has ended, to check the copies.
    pub async fn put(
        self: &Arc<Self>,
        blob: &BlobId,
        stream: BodyStream,
        crc32c: impl Fn() -> Option<u32>,
    ) -> Result<Written, StorageError> {
        let me = self.node_id();
        let shared = self.local.is_shared_for(blob);
        let targets = if self.replicated && !shared {
            let mut unreachable = self.cluster.transport().unreachable(ROUTE_AROUND);
            unreachable.remove(&me);
            write_targets(
                blob,
                &self.data_members().await,
                self.settings.factor,
                &unreachable,
            )
        } else {
            vec![me]
        };
        if targets == [me] {
            let len = self.local.put(blob, stream).await?;
            // Every node reads a shared backend itself: no holders to record.
            let holders = if shared { Vec::new() } else { targets };
            return Ok(Written { len, holders });
        }
        let quorum = write_quorum(targets.len());
        let mut copies: Vec<Target> = targets
            .iter()
            .map(|&node| {
                let (feed, rx) = mpsc::channel(QUEUE);
                let replicas = self.clone();
                let blob = blob.clone();
                let copy =
                    tokio::spawn(
                        async move { replicas.copy_to(node, &blob, piece_stream(rx)).await },
                    );
                Target {
                    node,
                    feed: Some(feed),
                    copy,
                }
            })
            .collect();
        let wait = self.cluster.settings().peer_timeout;
        let fed = feed(blob, stream, &mut copies, quorum, wait).await;
        if let Err(e) = fed {
            // Closing the feeds without `End` makes every target give up.
            copies.iter_mut().for_each(|t| t.feed = None);
            let finished = self.collect(blob, copies, usize::MAX, wait, None).await;
            self.abandon(blob, &nodes(&finished)).await;
            if matches!(e, StorageError::Unavailable(..)) {
                self.cluster.instruments().blob_writes_refused.inc();
            }
            return Err(e);
        }
        let done = self.collect(blob, copies, quorum, wait, crc32c()).await;
        if done.len() < quorum {
            self.abandon(blob, &nodes(&done)).await;
            self.cluster.instruments().blob_writes_refused.inc();
            return Err(StorageError::Unavailable(
                blob.clone(),
                format!(
                    "only {} of the {} copies a write needs were made (targets {targets:?})",
                    done.len(),
                    quorum
                ),
            ));
        }
        Ok(Written {
            len: done[0].1.len,
            holders: nodes(&done),
        })
    }

    /// One target's copy: the local store, or a peer over the internal API.
    async fn copy_to(
        &self,
        node: u64,
        blob: &BlobId,
        stream: BodyStream,
    ) -> Result<Received, StorageError> {
        if node == self.node_id() {
            let crc = super::CrcTap::default();
            let len = self.local.put(blob, crc.tap(stream)).await?;
            return Ok(Received {
                len,
                crc32c: crc.crc32c().unwrap_or(0),
            });
        }
        let unavailable =
            |e: TransportError| StorageError::Unavailable(blob.clone(), e.to_string());
        let path = format!("{BLOBS}/{blob}");
        let transport = self.cluster.transport();
        let sent = transport
            .send(
                node,
                hyper::Method::PUT,
                &path,
                streaming(stream),
                COPY_LIMIT,
            )
            .await;
        match &sent {
            Err(e) if e.undelivered() => transport.link_state(node, Some(e)),
            Ok(_) => transport.link_state(node, None),
            Err(_) => {}
        }
        let response = sent.map_err(unavailable)?;
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| StorageError::Unavailable(blob.clone(), e.to_string()))?
            .to_bytes();
        decode(&body).map_err(|e| StorageError::Unavailable(blob.clone(), e.to_string()))
    }

    /// Waits for the copies: all of them within the request timeout, but
    /// once `quorum` have finished the rest get only `wait` more (and are
    /// then cancelled). Returns the good ones (a copy whose CRC32C differs
    /// from `crc32c` is discarded, not counted).
    async fn collect(
        &self,
        blob: &BlobId,
        copies: Vec<Target>,
        quorum: usize,
        wait: Duration,
        crc32c: Option<u32>,
    ) -> Vec<(u64, Received)> {
        let cancel: Vec<tokio::task::AbortHandle> =
            copies.iter().map(|t| t.copy.abort_handle()).collect();
        let mut pending: futures::stream::FuturesUnordered<_> = copies
            .into_iter()
            .map(|t| async move { (t.node, t.copy.await) })
            .collect();
        let mut done = Vec::new();
        let mut deadline = tokio::time::Instant::now() + self.cluster.settings().request_timeout;
        let mut quorum_met = false;
        loop {
            let next = match tokio::time::timeout_at(deadline, pending.next()).await {
                Ok(next) => next,
                Err(_) => {
                    tracing::warn!(%blob, late = pending.len(), "cancelling copies that did not finish in time; the repair makes them later");
                    cancel.iter().for_each(|c| c.abort());
                    break;
                }
            };
            let Some((node, result)) = next else { break };
            match result {
                Ok(Ok(received)) if crc32c.is_none_or(|crc| crc == received.crc32c) => {
                    done.push((node, received));
                }
                Ok(Ok(received)) => {
                    tracing::error!(%blob, node, crc = received.crc32c, "a copy arrived with the wrong CRC32C; discarding it");
                    self.cluster.instruments().blob_copies_failed.inc();
                    self.abandon(blob, &[node]).await;
                }
                Ok(Err(e)) => {
                    tracing::warn!(%blob, node, error = %e, "a target did not take its copy");
                    self.cluster.instruments().blob_copies_failed.inc();
                }
                Err(e) => {
                    tracing::error!(%blob, node, error = %e, "a copy task failed");
                    self.cluster.instruments().blob_copies_failed.inc();
                }
            }
            if done.len() >= quorum && !quorum_met {
                quorum_met = true;
                deadline = deadline.min(tokio::time::Instant::now() + wait);
            }
        }
        done
    }

    /// Removes the copies on `holders` of a blob that will not be
    /// committed (the write failed after the bytes were stored).
    pub async fn abandon(&self, blob: &BlobId, holders: &[u64]) {
        if self.local.is_shared_for(blob) {
            if let Err(e) = self.local.delete(blob).await {
                tracing::warn!(%blob, error = %e, "cannot remove a failed write's blob; the sweep will");
            }
            return;
        }
        for node in holders {
            let result = if *node == self.node_id() {
                self.local.delete(blob).await.map_err(|e| e.to_string())
            } else {
                let path = format!("{BLOBS}/{blob}");
                let timeout = self.cluster.settings().peer_timeout;
                self.cluster
                    .transport()
                    .send(
                        *node,
                        hyper::Method::DELETE,
                        &path,
                        full(Bytes::new()),
                        timeout,
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            };
            if let Err(e) = result {
                tracing::warn!(%blob, node, error = %e, "cannot remove a copy of a failed write; the sweep will");
            }
        }
    }
}

fn nodes(copies: &[(u64, Received)]) -> Vec<u64> {
    copies.iter().map(|(node, _)| *node).collect()
}

/// Feeds every chunk of `stream` to the targets still taking it. A target
/// that fails or makes no room for `wait` is dropped; when fewer than
/// `quorum` remain the write is unavailable. A failing body fails the write
/// with its own error.
async fn feed(
    blob: &BlobId,
    mut stream: BodyStream,
    copies: &mut [Target],
    quorum: usize,
    wait: Duration,
) -> Result<(), StorageError> {
    let blob_unavailable = |copies: &[Target]| {
        let live = copies.iter().filter(|t| t.feed.is_some()).count();
        (live < quorum).then(|| {
            StorageError::Unavailable(
                blob.clone(),
                format!("only {live} targets are taking the write; it needs {quorum}"),
            )
        })
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(StorageError::Body)?;
        send_all(copies, |_| Piece::Data(chunk.clone()), wait).await;
        if let Some(e) = blob_unavailable(copies) {
            return Err(e);
        }
    }
    send_all(copies, |_| Piece::End, wait).await;
    match blob_unavailable(copies) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn send_all(copies: &mut [Target], piece: impl Fn(u64) -> Piece, wait: Duration) {
    for target in copies.iter_mut() {
        let Some(feed) = &target.feed else { continue };
        let sent = tokio::time::timeout(wait, feed.send(piece(target.node))).await;
        if !matches!(sent, Ok(Ok(()))) {
            if sent.is_err() {
                tracing::warn!(
                    node = target.node,
                    "a target stopped taking a blob write; dropping it"
                );
            }
            target.feed = None;
        }
    }
}

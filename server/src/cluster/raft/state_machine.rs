//! The state machine: a thin adapter that applies committed log entries to
//! the metadata store with the same `apply` everything else uses. Each batch
//! of entries is one SQLite transaction that also records the applied log id
//! and membership, so a crash never leaves the data and the position apart.
//! What applying freed is handed to [`AfterApply`] once the batch commits,
//! on every node.

use super::snapshots::{
    APPLIED, MEMBERSHIP, SnapshotFile, SnapshotStore, applied_state, encoded_applied,
    encoded_membership,
};
use super::types::{Entry, LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};
use crate::cluster::instruments::{Instruments, seconds_since};
use crate::cluster::proposal::{ANSWER_RETENTION_MS, Answer, FORMAT, Proposal, decode, encode};
use crate::meta::holders::DroppedCopy;
use crate::meta::{MetaError, Metadata, Outcome, apply_entry, raft_state};
use crate::storage::BlobId;
use futures::future::BoxFuture;
use futures::{Stream, TryStreamExt};
use openraft::storage::{ApplyResponder, EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use std::io;
use std::sync::Arc;

/// Entries applied per transaction at most: bounds the memory a catch-up
/// holds and the time one transaction keeps the writer.
const MAX_BATCH: usize = 512;

/// What a node does once a batch of commands is committed locally, before
/// the commands' proposers hear back.
pub trait AfterApply: Send + Sync + 'static {
    /// Blobs nothing references any more (delete this node's copies), and
    /// copies the commands took away from particular nodes (delete those
    /// that are this node's).
    fn freed(&self, blobs: Vec<BlobId>, dropped: Vec<DroppedCopy>) -> BoxFuture<'_, ()>;
}

struct Inner {
    meta: Metadata,
    snapshots: Arc<SnapshotStore>,
    after: Arc<dyn AfterApply>,
    instruments: Instruments,
}

#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Inner>,
}

fn other<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(e.to_string())
}

impl StateMachine {
    pub fn new(
        meta: Metadata,
        snapshots: Arc<SnapshotStore>,
        after: Arc<dyn AfterApply>,
        instruments: Instruments,
    ) -> Self {
        StateMachine {
            inner: Arc::new(Inner {
                meta,
                snapshots,
                after,
                instruments,
            }),
        }
    }

    async fn apply_batch(
        &self,
        batch: Vec<(Entry, Option<ApplyResponder<TypeConfig>>)>,
    ) -> io::Result<()> {
        let started = std::time::Instant::now();
        let (entries, responders): (Vec<Entry>, Vec<_>) = batch.into_iter().unzip();
        self.inner
            .instruments
            .apply_batch_entries
            .observe(entries.len() as f64);
        let answers = self
            .inner
            .meta
            .write(move |tx| apply_entries(tx, entries))
            .await
            .map_err(other)?;
        self.inner.instruments.apply.observe(seconds_since(started));
        let mut freed: Vec<BlobId> = Vec::new();
        let mut dropped: Vec<DroppedCopy> = Vec::new();
        for answer in &answers {
            if let Some(Ok(outcome)) = &answer.0 {
                freed.extend(outcome.freed.iter().cloned());
                dropped.extend(outcome.dropped.iter().cloned());
            }
        }
        if !freed.is_empty() || !dropped.is_empty() {
            self.inner.after.freed(freed, dropped).await;
        }
        for (answer, responder) in answers.into_iter().zip(responders) {
            if let Some(responder) = responder {
                responder.send(answer);
            }
        }
        Ok(())
    }
}

/// Applies `entries` in order inside `tx`, recording the last one's log id.
pub(crate) fn apply_entries(
    tx: &rusqlite::Transaction,
    entries: Vec<Entry>,
) -> Result<Vec<Answer>, MetaError> {
    let mut answers = Vec::with_capacity(entries.len());
    let mut last: Option<LogId> = None;
    for entry in entries {
        let answer = match entry.payload {
            EntryPayload::Blank => Answer(None),
            EntryPayload::Membership(membership) => {
                let stored = StoredMembership::new(Some(entry.log_id), membership);
                let bytes = encoded_membership(&stored).map_err(io_to_meta)?;
                raft_state::set_value(tx, MEMBERSHIP, &bytes)?;
                Answer(None)
            }
            EntryPayload::Normal(proposal) => apply_proposal(tx, &proposal)?,
        };
        answers.push(answer);
        last = Some(entry.log_id);
    }
    if last.is_some() {
        let bytes = encoded_applied(&last).map_err(io_to_meta)?;
        raft_state::set_value(tx, APPLIED, &bytes)?;
    }
    Ok(answers)
}

fn io_to_meta(e: io::Error) -> MetaError {
    MetaError::Corrupt(e.to_string())
}

/// Applies one proposal, or answers it again if it was applied before (a
/// resend after a lost reply). Everything here depends only on the log, so
/// every node computes the same answer.
fn apply_proposal(tx: &rusqlite::Transaction, proposal: &Proposal) -> Result<Answer, MetaError> {
    if proposal.format > FORMAT {
        return Err(MetaError::Corrupt(format!(
            "the log holds a proposal of format {} but this release understands up to {FORMAT}; upgrade this node",
            proposal.format
        )));
    }
    raft_state::forget_proposals(tx, proposal.issued_ms - ANSWER_RETENTION_MS)?;
    if let Some(bytes) = raft_state::proposal_answer(tx, &proposal.id)? {
        let mut answer: Answer =
            decode(&bytes).map_err(|e| MetaError::Corrupt(format!("stored answer: {e}")))?;
        // Its blobs were freed when it was first applied.
        if let Some(Ok(outcome)) = &mut answer.0 {
            outcome.freed.clear();
            outcome.dropped.clear();
        }
        return Ok(answer);
    }
    let answer = Answer(Some(apply_entry(tx, &proposal.command)?));
    let bytes = encode(&answer).map_err(|e| MetaError::Corrupt(format!("answer: {e}")))?;
    raft_state::record_proposal(tx, &proposal.id, proposal.issued_ms, &bytes)?;
    Ok(answer)
}

impl StateMachine {
    fn record_snapshot(&self, file: &super::snapshots::SnapshotFile, started: std::time::Instant) {
        if let Ok(m) = std::fs::metadata(&file.path) {
            self.inner.instruments.snapshot_bytes.set(m.len() as i64);
        }
        self.inner
            .instruments
            .snapshot_seconds
            .observe(seconds_since(started));
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let started = std::time::Instant::now();
        let snapshot = self.inner.snapshots.build(&self.inner.meta).await?;
        self.record_snapshot(&snapshot.snapshot, started);
        tracing::info!(last_log_id = ?snapshot.meta.last_log_id, "built a snapshot of the metadata");
        Ok(snapshot)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        self.inner
            .meta
            .read(|conn| applied_state(conn).map_err(io_to_meta))
            .await
            .map_err(other)
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut batch = Vec::new();
        while let Some(item) = entries.try_next().await? {
            batch.push(item);
            if batch.len() >= MAX_BATCH {
                self.apply_batch(std::mem::take(&mut batch)).await?;
            }
        }
        if !batch.is_empty() {
            self.apply_batch(batch).await?;
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotFile,
    ) -> Result<(), io::Error> {
        tracing::info!(last_log_id = ?meta.last_log_id, "installing a snapshot of the metadata");
        let started = std::time::Instant::now();
        let size = std::fs::metadata(&snapshot.path).map(|m| m.len()).ok();
        self.inner
            .snapshots
            .install(meta, snapshot, &self.inner.meta)
            .await?;
        if let Some(size) = size {
            self.inner.instruments.snapshot_bytes.set(size as i64);
        }
        self.inner
            .instruments
            .snapshot_seconds
            .observe(seconds_since(started));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        Ok(self.inner.snapshots.current())
    }
}

/// The outcome a proposal's answer carries, as the metadata layer's result.
pub fn outcome_of(answer: Answer) -> Result<Outcome, MetaError> {
    match answer.0 {
        Some(result) => result.map_err(MetaError::from),
        None => Err(MetaError::Corrupt(
            "a command's log entry came back without an answer".into(),
        )),
    }
}

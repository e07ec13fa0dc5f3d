//! Group commit for the Raft log: one thread owns the log's write
//! connection and turns every job queued while the previous fsync ran into
//! one transaction and one fsync. openraft hands us appends without waiting
//! for them (they only have to be readable at once, durable when the
//! callback fires), so under load many client writes share a flush.
//!
//! Entries accepted but not yet durable stay in [`Unflushed`], where the log
//! reader finds them; the writer drops them from there only after their
//! transaction committed, so every entry is always readable from one of the
//! two places.

use super::log_store::{COMMITTED, lock, other, set_state};
use super::types::{Entry, LogId, TypeConfig};
use openraft::storage::IOFlushed;
use prometheus_client::metrics::histogram::Histogram;
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Instant;

/// Jobs one transaction takes at most: bounds the work a flush waits for.
const MAX_JOBS_PER_FLUSH: usize = 4096;

/// Work run inside the writer's next transaction.
pub(super) type Work = Box<dyn FnOnce(&rusqlite::Transaction) -> io::Result<()> + Send>;

pub(super) enum Job {
    /// Log rows (index, sequence in [`Unflushed`], encoded entry).
    Append {
        rows: Vec<(u64, u64, Vec<u8>)>,
        started: Instant,
        callback: IOFlushed<TypeConfig>,
    },
    /// Anything else (vote, truncation, purge, cluster id), answered once
    /// durable.
    Run {
        work: Work,
        done: tokio::sync::oneshot::Sender<io::Result<()>>,
    },
}

/// Entries handed to the log that are not durable yet, by index. The
/// sequence number tells a flushed copy from a later rewrite of the same
/// index (after a truncation).
#[derive(Default)]
pub(super) struct Unflushed {
    entries: BTreeMap<u64, (u64, Entry)>,
    next_seq: u64,
}

impl Unflushed {
    pub(super) fn insert(&mut self, entry: Entry) -> u64 {
        self.next_seq += 1;
        self.entries
            .insert(entry.log_id.index, (self.next_seq, entry));
        self.next_seq
    }

    /// Forgets entries after `index` (a truncation).
    pub(super) fn remove_after(&mut self, index: Option<u64>) {
        match index {
            Some(index) => drop(self.entries.split_off(&(index + 1))),
            None => self.entries.clear(),
        }
    }

    /// Forgets entries up to and including `index` (a purge).
    pub(super) fn remove_through(&mut self, index: u64) {
        self.entries = self.entries.split_off(&(index + 1));
    }

    /// The entries with `start <= index < end`.
    pub(super) fn range(&self, start: u64, end: u64) -> BTreeMap<u64, Entry> {
        if start >= end {
            return BTreeMap::new();
        }
        self.entries
            .range(start..end)
            .map(|(index, (_, entry))| (*index, entry.clone()))
            .collect()
    }

    pub(super) fn last(&self) -> Option<LogId> {
        self.entries
            .last_key_value()
            .map(|(_, (_, entry))| entry.log_id)
    }

    fn flushed(&mut self, index: u64, seq: u64) {
        if self.entries.get(&index).map(|(s, _)| *s) == Some(seq) {
            self.entries.remove(&index);
        }
    }
}

/// Where the log reports its flushes.
pub struct LogInstruments {
    /// Time from handing entries to the log until they are durable.
    pub append_seconds: Histogram,
    /// Entries made durable by one flush.
    pub flush_entries: Histogram,
}

/// What the writer thread shares with the log store.
pub(super) struct Shared {
    pub conn: Arc<Mutex<Connection>>,
    pub unflushed: Arc<Mutex<Unflushed>>,
    /// The committed position openraft reported last, written with the next
    /// durable write rather than on its own: losing it only means that a
    /// restart re-applies a little less before the leader tells it again.
    pub committed: Arc<Mutex<Option<Option<LogId>>>>,
    pub instruments: Arc<OnceLock<LogInstruments>>,
}

/// The sending side; the thread ends when every sender is gone.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub(super) fn start(shared: Shared) -> io::Result<Self> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || run(shared, queue))?;
        Ok(Writer { jobs })
    }

    pub(super) fn submit(&self, job: Job) -> io::Result<()> {
        self.jobs
            .send(job)
            .map_err(|_| io::Error::other("the Raft log writer has stopped"))
    }

    /// Runs `work` in the next transaction and waits until it is durable.
    pub(super) async fn run(&self, work: Work) -> io::Result<()> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.submit(Job::Run { work, done })?;
        answer
            .await
            .map_err(|_| io::Error::other("the Raft log writer has stopped"))?
    }
}

fn run(shared: Shared, queue: mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS_PER_FLUSH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (result, finished) = commit(&shared, jobs);
        finish(&shared, finished, result);
    }
}

/// A job written, waiting for its transaction's outcome.
enum Finished {
    Append {
        /// (index, sequence) of each row.
        rows: Vec<(u64, u64)>,
        started: Instant,
        callback: IOFlushed<TypeConfig>,
    },
    Run(tokio::sync::oneshot::Sender<io::Result<()>>),
}

/// One transaction for the whole batch, in the order the jobs came; every
/// job shares its outcome.
fn commit(shared: &Shared, jobs: Vec<Job>) -> (io::Result<()>, Vec<Finished>) {
    let mut finished = Vec::with_capacity(jobs.len());
    let mut conn = lock(&shared.conn);
    let tx = conn.transaction().map_err(other);
    let mut result = tx.as_ref().map(|_| ()).map_err(other);
    if let Ok(tx) = &tx
        && let Some(committed) = lock(&shared.committed).take()
    {
        result = crate::cluster::proposal::encode(&committed)
            .map_err(other)
            .and_then(|bytes| set_state(tx, COMMITTED, &bytes));
    }
    for job in jobs {
        match job {
            Job::Run { work, done } => {
                if let (Ok(()), Ok(tx)) = (&result, &tx) {
                    result = work(tx);
                }
                finished.push(Finished::Run(done));
            }
            Job::Append {
                rows,
                started,
                callback,
            } => {
                if let (Ok(()), Ok(tx)) = (&result, &tx) {
                    result = insert_rows(tx, &rows);
                }
                finished.push(Finished::Append {
                    rows: rows.iter().map(|(index, seq, _)| (*index, *seq)).collect(),
                    started,
                    callback,
                });
            }
        }
    }
    if let Ok(tx) = tx {
        result = result.and_then(|()| tx.commit().map_err(other));
    }
    (result, finished)
}

fn insert_rows(tx: &rusqlite::Transaction, rows: &[(u64, u64, Vec<u8>)]) -> io::Result<()> {
    let mut stmt = tx
        .prepare_cached("INSERT OR REPLACE INTO entries(idx, entry) VALUES (?1, ?2)")
        .map_err(other)?;
    for (index, _, bytes) in rows {
        stmt.execute(rusqlite::params![*index as i64, bytes])
            .map_err(other)?;
    }
    Ok(())
}

fn finish(shared: &Shared, jobs: Vec<Finished>, result: io::Result<()>) {
    if result.is_ok() {
        let mut unflushed = lock(&shared.unflushed);
        for job in &jobs {
            if let Finished::Append { rows, .. } = job {
                for (index, seq) in rows {
                    unflushed.flushed(*index, *seq);
                }
            }
        }
    }
    let instruments = shared.instruments.get();
    if let Some(instruments) = instruments {
        let entries: usize = jobs
            .iter()
            .map(|job| match job {
                Finished::Append { rows, .. } => rows.len(),
                Finished::Run(_) => 0,
            })
            .sum();
        if entries > 0 {
            instruments.flush_entries.observe(entries as f64);
        }
    }
    let failure = result.as_ref().err().map(|e| e.to_string());
    let outcome = || match &failure {
        None => Ok(()),
        Some(message) => Err(io::Error::other(message.clone())),
    };
    for job in jobs {
        match job {
            Finished::Append {
                started, callback, ..
            } => {
                if let Some(instruments) = instruments {
                    instruments
                        .append_seconds
                        .observe(started.elapsed().as_secs_f64());
                }
                callback.io_completed(outcome());
            }
            Finished::Run(done) => {
                let _ = done.send(outcome());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::entry::RaftEntry;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(
            openraft::vote::leader_id_adv::CommittedLeaderId { term, node_id: 0 },
            index,
        )
    }

    fn entry(term: u64, index: u64) -> Entry {
        Entry::new_blank(log_id(term, index))
    }

    #[test]
    fn a_flushed_copy_is_dropped_but_a_rewrite_after_truncation_stays() {
        let mut unflushed = Unflushed::default();
        let first = unflushed.insert(entry(1, 5));
        let six = unflushed.insert(entry(1, 6));
        // A new leader's entry replaces index 6 before the old one is durable.
        unflushed.remove_after(Some(5));
        assert!(unflushed.range(0, 10).keys().eq([5].iter()));
        let rewritten = unflushed.insert(entry(2, 6));
        // The old write of 6 completes: the rewrite must stay readable.
        unflushed.flushed(6, six);
        unflushed.flushed(5, first);
        let left = unflushed.range(0, 10);
        assert_eq!(left.len(), 1);
        assert_eq!(left[&6].log_id, log_id(2, 6));
        unflushed.flushed(6, rewritten);
        assert!(unflushed.range(0, 10).is_empty());
        assert_eq!(unflushed.last(), None);
    }

    #[test]
    fn ranges_truncations_and_purges() {
        let mut unflushed = Unflushed::default();
        for index in 1..=8 {
            unflushed.insert(entry(1, index));
        }
        assert!(unflushed.range(3, 6).keys().eq([3, 4, 5].iter()));
        assert!(unflushed.range(6, 3).is_empty());
        assert_eq!(unflushed.last().map(|l| l.index), Some(8));
        unflushed.remove_through(2);
        unflushed.remove_after(Some(6));
        assert!(unflushed.range(0, u64::MAX).keys().eq([3, 4, 5, 6].iter()));
        unflushed.remove_after(None);
        assert_eq!(unflushed.last(), None);
    }
}

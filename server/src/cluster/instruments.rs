//! Prometheus instruments of the Raft node (gauges read from openraft's
//! metrics when scraped, counters and histograms fed by the log store, the
//! state machine, the snapshot builder and the write path) and of the blob
//! copies (writes to their targets, repair, scrub).

use super::raft::types::TypeConfig;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

#[derive(Clone)]
pub struct Instruments {
    term: Gauge<i64, AtomicI64>,
    commit_index: Gauge<i64, AtomicI64>,
    applied_index: Gauge<i64, AtomicI64>,
    is_leader: Gauge<i64, AtomicI64>,
    leader_changes: Counter<u64, AtomicU64>,
    /// The leader last seen by `observe`, +1 (0: none seen yet).
    last_leader: Arc<AtomicU64>,
    pub forwarded: Counter<u64, AtomicU64>,
    pub log_append: Histogram,
    pub log_flush_entries: Histogram,
    pub apply: Histogram,
    pub apply_batch_entries: Histogram,
    pub read_round_reads: Histogram,
    pub snapshot_bytes: Gauge<i64, AtomicI64>,
    pub snapshot_seconds: Histogram,
    pub blob_writes_refused: Counter<u64, AtomicU64>,
    pub blob_copies_failed: Counter<u64, AtomicU64>,
    pub copies_dropped: Counter<u64, AtomicU64>,
    pub repair_copies: Counter<u64, AtomicU64>,
    pub repair_bytes: Counter<u64, AtomicU64>,
    pub repair_failures: Counter<u64, AtomicU64>,
    pub under_replicated: Gauge<i64, AtomicI64>,
    pub misplaced: Gauge<i64, AtomicI64>,
    pub scrub_bytes: Counter<u64, AtomicU64>,
    pub scrub_copies: Counter<u64, AtomicU64>,
    pub scrub_bad: Counter<u64, AtomicU64>,
}

fn latency() -> Histogram {
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    ])
}

fn batch_sizes() -> Histogram {
    Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0])
}

impl Default for Instruments {
    fn default() -> Self {
        Instruments {
            term: Gauge::default(),
            commit_index: Gauge::default(),
            applied_index: Gauge::default(),
            is_leader: Gauge::default(),
            leader_changes: Counter::default(),
            last_leader: Arc::new(AtomicU64::new(0)),
            forwarded: Counter::default(),
            log_append: latency(),
            log_flush_entries: batch_sizes(),
            apply: latency(),
            apply_batch_entries: batch_sizes(),
            read_round_reads: batch_sizes(),
            snapshot_bytes: Gauge::default(),
            snapshot_seconds: Histogram::new([0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0]),
            blob_writes_refused: Counter::default(),
            blob_copies_failed: Counter::default(),
            copies_dropped: Counter::default(),
            repair_copies: Counter::default(),
            repair_bytes: Counter::default(),
            repair_failures: Counter::default(),
            under_replicated: Gauge::default(),
            misplaced: Gauge::default(),
            scrub_bytes: Counter::default(),
            scrub_copies: Counter::default(),
            scrub_bad: Counter::default(),
        }
    }
}

impl Instruments {
    pub fn register(&self, registry: &mut Registry) {
        registry.register("raft_term", "Current Raft term", self.term.clone());
        registry.register(
            "raft_commit_index",
            "Highest log index known committed",
            self.commit_index.clone(),
        );
        registry.register(
            "raft_applied_index",
            "Highest log index applied to the metadata",
            self.applied_index.clone(),
        );
        registry.register(
            "raft_is_leader",
            "1 on the leader, else 0",
            self.is_leader.clone(),
        );
        registry.register(
            "raft_leader_changes",
            "Times this node saw the leader change",
            self.leader_changes.clone(),
        );
        registry.register(
            "raft_forwarded",
            "Commands forwarded to the leader",
            self.forwarded.clone(),
        );
        registry.register(
            "raft_log_append_seconds",
            "Time from handing log entries to the log until they are durable",
            self.log_append.clone(),
        );
        registry.register(
            "raft_log_flush_entries",
            "Log entries made durable by one flush (group commit)",
            self.log_flush_entries.clone(),
        );
        registry.register(
            "raft_apply_batch_entries",
            "Committed entries applied in one metadata transaction",
            self.apply_batch_entries.clone(),
        );
        registry.register(
            "raft_read_index_round_reads",
            "Consistent reads answered by one read-index confirmation",
            self.read_round_reads.clone(),
        );
        registry.register(
            "raft_apply_seconds",
            "Time to apply a batch of committed entries",
            self.apply.clone(),
        );
        registry.register(
            "raft_snapshot_bytes",
            "Size of the newest snapshot built or installed",
            self.snapshot_bytes.clone(),
        );
        registry.register(
            "raft_snapshot_seconds",
            "Time to build or install a snapshot",
            self.snapshot_seconds.clone(),
        );
        let blobs: [(&str, &str, &Counter<u64, AtomicU64>); 9] = [
            (
                "blob_writes_refused",
                "Blob writes refused because fewer targets than a write quorum took them",
                &self.blob_writes_refused,
            ),
            (
                "blob_copies_failed",
                "Copies of a blob write that a target did not complete",
                &self.blob_copies_failed,
            ),
            (
                "blob_copies_dropped",
                "Copies dropped from the metadata as missing or corrupt",
                &self.copies_dropped,
            ),
            (
                "repair_copies",
                "Blob copies the repair made (lost copies, rebalancing, drains)",
                &self.repair_copies,
            ),
            (
                "repair_bytes",
                "Bytes of blob copies the repair made",
                &self.repair_bytes,
            ),
            (
                "repair_failures",
                "Repair copies that failed (retried on the next pass)",
                &self.repair_failures,
            ),
            (
                "scrub_copies",
                "Local blob copies the scrub checked",
                &self.scrub_copies,
            ),
            (
                "scrub_bytes",
                "Bytes of local blob copies the scrub read",
                &self.scrub_bytes,
            ),
            (
                "scrub_bad_copies",
                "Local copies the scrub or a read found missing or corrupt",
                &self.scrub_bad,
            ),
        ];
        for (name, help, counter) in blobs {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "blobs_under_replicated",
            "Blobs with fewer copies than their replication factor (last repair pass, leader)",
            self.under_replicated.clone(),
        );
        registry.register(
            "blobs_misplaced",
            "Blobs with copies on nodes their placement does not name (last repair pass, leader)",
            self.misplaced.clone(),
        );
    }

    /// Updates the gauges from openraft's view (called on every change).
    pub fn observe(&self, node_id: u64, m: &openraft::RaftMetrics<TypeConfig>) {
        self.term.set(m.current_term as i64);
        let index = |l: Option<u64>| l.map(|i| i as i64).unwrap_or(0);
        self.commit_index
            .set(index(m.local_committed.as_ref().map(|l| l.index)));
        self.applied_index
            .set(index(m.last_applied.as_ref().map(|l| l.index)));
        self.is_leader
            .set(i64::from(m.current_leader == Some(node_id)));
        if let Some(leader) = m.current_leader {
            let previous = self.last_leader.swap(leader + 1, Ordering::Relaxed);
            if previous != 0 && previous != leader + 1 {
                self.leader_changes.inc();
            }
        }
    }
}

/// Seconds since `start`, for a histogram.
pub fn seconds_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

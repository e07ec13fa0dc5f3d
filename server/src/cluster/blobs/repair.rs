//! The leader's repair worker: passes over every blob in the metadata and
//! brings each to its placement — copies to the nodes that lack one (after
//! a node was down or replaced, a copy was found bad, a node joined), then
//! drops surplus copies (after a scale-up, or from a draining member) once
//! every target holds one. Copies flow from a holder straight to the node
//! that needs one, paced by that node's repair bandwidth; at most
//! `cluster.repair.concurrency` run at once. A member being drained leaves
//! the group when no blob lists it any more. Each pass leaves a report for
//! the admin API.

use super::Replicas;
use super::plan::{BlobPlan, plan};
use super::serve::{CopyRequest, Received};
use crate::cluster::paths::BLOBS;
use crate::cluster::transport::TransportError;
use crate::meta::holders::{self, HolderChange, Holding};
use crate::meta::{Command, MetaError};
use crate::storage::StorageError;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one member holds and owes, as of the last pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberBlobs {
    /// Blobs the metadata lists this member as holding, and their bytes.
    pub blobs: u64,
    pub bytes: u64,
    /// Under-replicated blobs this member holds or should hold.
    pub under_replicated: u64,
    /// Copies this member should receive.
    pub repair_queue: u64,
    /// Copies still to move off this member before it may leave.
    pub drain_queue: u64,
    pub draining: bool,
}

/// The account of the last repair pass (kept by the leader that ran it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlobsReport {
    pub replication_factor: u32,
    /// Unix milliseconds when the pass ended, and how long it took.
    pub finished_ms: u64,
    pub seconds: f64,
    pub blobs: u64,
    pub bytes: u64,
    pub under_replicated: u64,
    pub misplaced: u64,
    /// Blobs no member holds any more.
    pub lost: u64,
    pub copies_made: u64,
    pub bytes_copied: u64,
    /// Copy throughput of the pass.
    pub mib_per_second: f64,
    pub copy_failures: u64,
    /// Shown per member in the cluster view.
    #[serde(skip)]
    pub members: BTreeMap<u64, MemberBlobs>,
}

impl Replicas {
    /// Runs passes on the leader: on every membership change, on a wake-up
    /// (a drain started, a bad copy dropped), and every repair interval.
    pub fn spawn_repair(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if !self.replicated {
            return None;
        }
        let replicas = self.clone();
        Some(tokio::spawn(async move {
            let mut seen = None;
            let mut last_pass: Option<Instant> = None;
            loop {
                let woken = tokio::select! {
                    _ = replicas.wake.notified() => true,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                };
                if !replicas.cluster.raft().is_leader() {
                    seen = None;
                    continue;
                }
                // A membership change or a drain started or ended.
                let membership = *replicas.cluster.metrics().membership_config.log_id();
                let draining = replicas.meta.lookup(holders::draining).await.ok();
                let state = Some((membership, draining));
                let due =
                    last_pass.is_none_or(|at| at.elapsed() >= replicas.settings.repair_interval);
                if !(woken || due || seen != state) {
                    continue;
                }
                seen = state;
                last_pass = Some(Instant::now());
                match replicas.repair_pass().await {
                    Ok(report) => {
                        let busy = report.under_replicated > 0 || report.misplaced > 0;
                        replicas.cluster.set_blobs_report(report);
                        if busy {
                            // Keep going while there is work (paced anyway).
                            last_pass = None;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "blob repair pass failed"),
                }
            }
        }))
    }

    /// One pass over every blob.
    pub async fn repair_pass(self: &Arc<Self>) -> Result<BlobsReport, MetaError> {
        let started = Instant::now();
        self.cluster.caught_up().await?;
        let members = self.members();
        let draining: BTreeSet<u64> = self
            .meta
            .lookup(holders::draining)
            .await?
            .into_iter()
            .filter(|n| members.contains(n))
            .collect();
        let mut report = BlobsReport {
            replication_factor: self.settings.factor,
            members: members
                .iter()
                .map(|&m| {
                    let entry = MemberBlobs {
                        draining: draining.contains(&m),
                        ..Default::default()
                    };
                    (m, entry)
                })
                .collect(),
            ..Default::default()
        };
        let mut after = None;
        // Nodes a copy failed to this pass: not tried again until the next,
        // so one unreachable node does not cost a timeout per blob.
        let failing = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
        loop {
            let Some(page) = self.next_holdings(&mut after).await? else {
                break;
            };
            let plans: Vec<(Holding, BlobPlan)> = page
                .into_iter()
                .map(|h| {
                    let p = plan(
                        &h.blob,
                        &h.place.nodes,
                        &members,
                        &draining,
                        self.settings.factor,
                    );
                    (h, p)
                })
                .collect();
            tally(&mut report, &plans);
            let changes = self.carry_out(&plans, &failing, &mut report).await;
            if !changes.is_empty() {
                let outcome = self
                    .cluster
                    .write(Command::ChangeHolders { changes })
                    .await
                    .map_err(|e| MetaError::Unavailable(format!("cannot record copies: {e}")))?;
                // What the command really dropped (never a last holder).
                for copy in outcome.dropped {
                    if let Some(member) = report.members.get_mut(&copy.node) {
                        member.drain_queue = member.drain_queue.saturating_sub(1);
                    }
                }
            }
        }
        report.seconds = started.elapsed().as_secs_f64();
        report.mib_per_second = if report.seconds > 0.0 {
            report.bytes_copied as f64 / (1024.0 * 1024.0) / report.seconds
        } else {
            0.0
        };
        report.finished_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let instruments = self.cluster.instruments();
        instruments
            .under_replicated
            .set(report.under_replicated as i64);
        instruments.misplaced.set(report.misplaced as i64);
        self.finish_drains(&report).await;
        if report.copies_made > 0 || report.under_replicated > 0 || report.misplaced > 0 {
            tracing::info!(
                blobs = report.blobs,
                under_replicated = report.under_replicated,
                misplaced = report.misplaced,
                copies = report.copies_made,
                mib_per_second = report.mib_per_second,
                "blob repair pass"
            );
        }
        Ok(report)
    }

    /// Makes the copies `plans` ask for (bounded concurrency) and returns
    /// the holder changes to record.
    async fn carry_out(
        self: &Arc<Self>,
        plans: &[(Holding, BlobPlan)],
        failing: &Arc<std::sync::Mutex<BTreeSet<u64>>>,
        report: &mut BlobsReport,
    ) -> Vec<HolderChange> {
        let jobs: Vec<futures::future::BoxFuture<'static, (HolderChange, u64, u64)>> = plans
            .iter()
            .filter(|(_, p)| !p.is_settled())
            .map(|(holding, p)| {
                let (replicas, failing) = (self.clone(), failing.clone());
                let (holding, p) = (holding.clone(), p.clone());
                let job = async move { replicas.repair_one(holding, p, &failing).await };
                Box::pin(job) as futures::future::BoxFuture<'static, _>
            })
            .collect();
        let mut done =
            futures::stream::iter(jobs).buffer_unordered(self.settings.repair_concurrency);
        let mut changes = Vec::new();
        let instruments = self.cluster.instruments();
        while let Some((change, bytes, failures)) = done.next().await {
            report.copies_made += change.add.len() as u64;
            report.bytes_copied += bytes;
            report.copy_failures += failures;
            instruments.repair_copies.inc_by(change.add.len() as u64);
            instruments.repair_bytes.inc_by(bytes);
            instruments.repair_failures.inc_by(failures);
            if !change.add.is_empty() || !change.remove.is_empty() {
                changes.push(change);
            }
        }
        changes
    }

    /// Makes the copies one blob lacks; returns its holder change, the
    /// bytes copied and the copies that failed.
    async fn repair_one(
        &self,
        holding: Holding,
        p: BlobPlan,
        failing: &std::sync::Mutex<BTreeSet<u64>>,
    ) -> (HolderChange, u64, u64) {
        let mut gained = Vec::new();
        let mut bytes = 0u64;
        let mut failures = 0u64;
        for &node in &p.copy_to {
            if failing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&node)
            {
                failures += 1;
                continue;
            }
            match self.copy_to_node(node, &holding, &p.sources).await {
                Ok(received) => {
                    gained.push(node);
                    bytes += received.len;
                }
                Err(e) => {
                    failures += 1;
                    if matches!(e, StorageError::Unavailable(..)) {
                        failing
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(node);
                    }
                    tracing::warn!(blob = %holding.blob, node, error = %e, "repair copy failed; retrying next pass");
                }
            }
        }
        let mut remove = p.forget.clone();
        if p.surplus_may_go(&gained) {
            remove.extend(&p.surplus);
        }
        let change = HolderChange {
            blob: holding.blob,
            add: gained,
            remove,
        };
        (change, bytes, failures)
    }

    /// Has `node` make a copy of the blob from one of `sources`.
    async fn copy_to_node(
        &self,
        node: u64,
        holding: &Holding,
        sources: &[u64],
    ) -> Result<Received, StorageError> {
        let request = CopyRequest {
            from: sources.to_vec(),
            stored: holding.place.stored,
        };
        if node == self.node_id() {
            return self.copy_here(&holding.blob, &request).await;
        }
        let len = holding.place.stored.map(|s| s.len).unwrap_or(0);
        // Enough for the copy at 1 MiB/s on top of the usual wait.
        let timeout = self.cluster.settings().request_timeout + Duration::from_secs(len >> 20);
        let path = format!("{BLOBS}/{}/copy", holding.blob);
        self.cluster
            .call(node, &path, &request, timeout)
            .await
            .map_err(|e| match e {
                // The node answered: it is up, its copy just failed.
                TransportError::Status { .. } => {
                    StorageError::Io(std::io::Error::other(e.to_string()))
                }
                e => StorageError::Unavailable(holding.blob.clone(), e.to_string()),
            })
    }

    /// Removes every draining member that no blob lists any more from the
    /// group, and clears its drain.
    async fn finish_drains(&self, report: &BlobsReport) {
        for (&node, member) in &report.members {
            if !member.draining || member.drain_queue > 0 {
                continue;
            }
            match self.cluster.remove(node).await {
                Ok(()) => tracing::info!(node, "drained member removed from the group"),
                Err(e) => {
                    tracing::warn!(node, error = %e, "cannot remove a drained member yet");
                    continue;
                }
            }
            let command = Command::SetDraining {
                node,
                draining: false,
            };
            if let Err(e) = self.cluster.write(command).await {
                tracing::warn!(node, error = %e, "cannot clear a finished drain");
            }
        }
    }
}

/// Adds one page of plans to the pass's account.
fn tally(report: &mut BlobsReport, plans: &[(Holding, BlobPlan)]) {
    for (holding, p) in plans {
        let len = holding.place.stored.map(|s| s.len).unwrap_or(0);
        report.blobs += 1;
        report.bytes += len;
        let under = p.under_replicated();
        report.under_replicated += u64::from(under);
        report.misplaced += u64::from(p.misplaced());
        report.lost += u64::from(p.sources.is_empty() && !holding.place.nodes.is_empty());
        for &node in &p.sources {
            if let Some(member) = report.members.get_mut(&node) {
                member.blobs += 1;
                member.bytes += len;
                if member.draining {
                    member.drain_queue += 1;
                }
            }
        }
        let involved: BTreeSet<u64> = p.sources.iter().chain(&p.desired).copied().collect();
        for node in involved {
            if let Some(member) = report.members.get_mut(&node) {
                member.under_replicated += u64::from(under);
                member.repair_queue += u64::from(p.copy_to.contains(&node));
            }
        }
    }
}

//! Blob copies across the cluster (DESIGN §7). A blob that is not inline is
//! written to `replication_factor` nodes chosen by rendezvous hashing
//! (`placement`), streamed to all of them while it arrives (`write`); a node
//! reads its own copy or a holder's, checked (`read`); peers reach each
//! other's copies through `serve`. The leader's `repair` worker keeps every
//! blob at its factor as nodes fail, join, drain and leave; every node's
//! `scrub` checks the copies it is listed for.
//!
//! Standalone, or on a backend all nodes share, a blob has one copy: the
//! local store's.

pub mod placement;
mod plan;
mod read;
pub mod repair;
pub mod scrub;
pub mod serve;
mod throttle;
mod write;

pub use read::CrcTap;
pub use repair::BlobsReport;
pub use serve::LocalBlobs;

use super::Cluster;
use crate::meta::MetaError;
use crate::meta::Metadata;
use crate::meta::holders::{self, HolderChange, Holding};
use crate::storage::{BlobId, BlobPins, BlobStore};
use bleepstore_config::Config;
use std::collections::BTreeSet;
use std::sync::Arc;
use throttle::Throttle;

/// Blobs read from the metadata per step of a repair or scrub pass.
const PAGE: usize = 256;

/// Limits of the background copying and checking.
pub struct CopySettings {
    pub factor: u32,
    pub repair_interval: std::time::Duration,
    pub repair_concurrency: usize,
    pub scrub_interval: Option<std::time::Duration>,
}

/// This node's access to blob copies wherever they are.
pub struct Replicas {
    local: Arc<dyn BlobStore>,
    pins: Arc<BlobPins>,
    cluster: Arc<Cluster>,
    meta: Metadata,
    /// Whether this node keeps copies on other nodes at all (clustered, on
    /// a backend of its own).
    replicated: bool,
    settings: CopySettings,
    /// Paces the repair copies this node receives.
    receiving: Throttle,
    /// Paces the scrub's reads.
    scrubbing: Throttle,
    /// Starts a repair pass before the interval is up (shared with the
    /// reaper, which sees copies dropped).
    wake: Arc<tokio::sync::Notify>,
}

impl Replicas {
    pub fn new(
        config: &Config,
        local: Arc<dyn BlobStore>,
        pins: Arc<BlobPins>,
        cluster: Arc<Cluster>,
        meta: Metadata,
        wake: Arc<tokio::sync::Notify>,
    ) -> Arc<Self> {
        let c = &config.cluster;
        let settings = CopySettings {
            factor: c.replication_factor,
            repair_interval: std::time::Duration::from_secs(c.repair.interval_secs.max(1)),
            repair_concurrency: c.repair.concurrency.max(1) as usize,
            scrub_interval: (c.scrub.interval_secs > 0)
                .then(|| std::time::Duration::from_secs(c.scrub.interval_secs)),
        };
        Arc::new(Replicas {
            replicated: cluster.is_clustered() && !local.is_shared(),
            local,
            pins,
            cluster,
            meta,
            settings,
            receiving: Throttle::new(c.repair.bandwidth.0),
            scrubbing: Throttle::new(c.scrub.rate.0),
            wake,
        })
    }

    pub fn node_id(&self) -> u64 {
        self.cluster.node_id()
    }

    pub fn is_replicated(&self) -> bool {
        self.replicated
    }

    /// Every member of the group, learners included: all of them hold blobs.
    fn members(&self) -> BTreeSet<u64> {
        self.cluster.with_metrics(|m| {
            m.membership_config
                .membership()
                .nodes()
                .map(|(&id, _)| id)
                .collect()
        })
    }

    /// The members new copies may go to: all but those being drained.
    async fn data_members(&self) -> BTreeSet<u64> {
        let mut members = self.members();
        match self.meta.lookup(holders::draining).await {
            Ok(draining) => members.retain(|m| !draining.contains(m)),
            Err(e) => tracing::warn!(error = %e, "cannot read which members drain"),
        }
        members
    }

    /// Marks the members being drained in `view`.
    pub async fn mark_draining(&self, view: &mut super::ClusterView) {
        if !self.replicated {
            return;
        }
        let Ok(draining) = self.meta.lookup(holders::draining).await else {
            return;
        };
        for member in &mut view.members {
            let blobs = member.blobs.get_or_insert_with(Default::default);
            blobs.draining = draining.contains(&member.id);
            if blobs.draining {
                // Every copy a draining member holds has to move.
                blobs.drain_queue = blobs.drain_queue.max(blobs.blobs);
            }
        }
    }

    /// The next blobs in id order after `after`, which moves past them;
    /// `None` once there are no more (the repair's and the scrub's scan).
    async fn next_holdings(
        &self,
        after: &mut Option<BlobId>,
    ) -> Result<Option<Vec<Holding>>, MetaError> {
        let from = after.clone();
        let page = self
            .meta
            .lookup(move |c| holders::holdings(c, from.as_ref(), PAGE))
            .await?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        *after = Some(last.blob.clone());
        // A shared backend (a cloud bucket) keeps its own copies: nothing
        // to repair or scrub there, and reading it all back would cost.
        Ok(Some(
            page.into_iter()
                .filter(|h| !self.local.is_shared_for(&h.blob))
                .collect(),
        ))
    }

    /// Starts a repair pass soon (on the leader; elsewhere it is a no-op).
    pub fn wake_repair(&self) {
        self.wake.notify_one();
    }

    /// Records in the metadata that `node`'s copy of `blob` is gone or bad:
    /// the node deletes it once that is applied, and the repair makes a
    /// good copy from another holder. The last listed holder stays listed.
    pub async fn drop_copy(&self, blob: &BlobId, node: u64, why: &str) {
        if self.local.is_shared_for(blob) {
            tracing::error!(%blob, reason = why, "a blob on a shared backend fails its check; the cluster keeps no other copy of it");
            return;
        }
        tracing::warn!(%blob, node, reason = why, "dropping a bad copy of a blob");
        let change = HolderChange {
            blob: blob.clone(),
            add: Vec::new(),
            remove: vec![node],
        };
        let command = crate::meta::Command::ChangeHolders {
            changes: vec![change],
        };
        match self.cluster.write(command).await {
            Ok(_) => {
                self.cluster.instruments().copies_dropped.inc();
            }
            Err(e) => {
                tracing::warn!(%blob, node, error = %e, "cannot drop a bad copy; the scrub will retry")
            }
        }
    }
}

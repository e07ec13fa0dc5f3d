//! Every node's scrub: reads the copies the metadata lists on this node, at
//! `cluster.scrub.rate`, and checks their length and CRC32C. A copy that is
//! missing (a replaced disk) or fails the check is dropped from the
//! metadata, and the repair makes a good one from another holder. Shortly
//! after start-up a quick pass only looks for missing copies, so a node
//! that lost its data dir is found out at once; a full pass then runs every
//! `cluster.scrub.interval_secs`.

use super::Replicas;
use crate::meta::MetaError;
use std::sync::Arc;
use std::time::Duration;

/// What a scrub pass found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Scrubbed {
    pub checked: u64,
    pub bad: u64,
}

impl Replicas {
    pub fn spawn_scrub(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let interval = self.settings.scrub_interval?;
        let replicas = self.clone();
        Some(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut deep = false;
            loop {
                let started = tokio::time::Instant::now();
                match replicas.scrub_pass(deep).await {
                    Ok(found) if found.bad > 0 => {
                        tracing::warn!(
                            checked = found.checked,
                            bad = found.bad,
                            "scrub found bad copies"
                        )
                    }
                    Ok(found) => tracing::debug!(checked = found.checked, "scrub pass"),
                    Err(e) => tracing::warn!(error = %e, "scrub pass failed"),
                }
                deep = true;
                tokio::time::sleep_until(started + interval).await;
            }
        }))
    }

    /// Checks every copy the metadata lists on this node: that it exists,
    /// and when `deep`, its length and CRC32C.
    pub async fn scrub_pass(&self, deep: bool) -> Result<Scrubbed, MetaError> {
        self.cluster.caught_up().await?;
        let me = self.node_id();
        let mut found = Scrubbed::default();
        let mut after = None;
        let instruments = self.cluster.instruments();
        loop {
            let Some(page) = self.next_holdings(&mut after).await? else {
                break;
            };
            for holding in page {
                let mine = holding.place.nodes.contains(&me)
                    || (holding.place.nodes.is_empty() && !self.replicated);
                if !mine {
                    continue;
                }
                found.checked += 1;
                instruments.scrub_copies.inc();
                let good = match holding.place.stored {
                    Some(stored) if deep => {
                        instruments.scrub_bytes.inc_by(stored.len);
                        self.local_copy_is_good(&holding.blob, stored, Some(&self.scrubbing))
                            .await
                    }
                    _ => self.local.get(&holding.blob, 0, 0).await.is_ok(),
                };
                if !good {
                    found.bad += 1;
                    instruments.scrub_bad.inc();
                    if self.replicated {
                        self.drop_copy(
                            &holding.blob,
                            me,
                            "the scrub found the copy missing or corrupt",
                        )
                        .await;
                    } else {
                        tracing::error!(blob = %holding.blob, "the scrub found a blob missing or corrupt, and there is no other copy");
                    }
                }
            }
        }
        Ok(found)
    }
}

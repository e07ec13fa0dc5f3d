//! Removes blobs the metadata does not list on this node: leftovers of
//! writes that crashed between storing a blob and committing its metadata,
//! of frees that crashed before deleting, of writes and repair copies that
//! were abandoned, and of copies dropped while this node was away
//! (DESIGN.md §4, §7).

use crate::app::App;
use crate::meta::holders;
use crate::storage::BlobId;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The time `d` before now (the epoch if that is before it).
fn ago(d: Duration) -> SystemTime {
    SystemTime::now()
        .checked_sub(d)
        .unwrap_or(std::time::UNIX_EPOCH)
}

/// Blob names checked against the metadata at a time.
const SWEEP_PAGE: usize = 1000;

/// Deletes blobs created before `cutoff` that the metadata does not list
/// on this node; returns how many.
/// Waits first until this node has applied everything committed, so that a
/// blob whose command is committed but not yet applied here is not taken
/// for an orphan.
pub async fn sweep_orphans(app: &App, cutoff: SystemTime) -> anyhow::Result<usize> {
    app.cluster.caught_up().await?;
    // The listing is read a page at a time: an upstream bucket may hold
    // more blob names than fit in memory.
    let mut listing = app.blobs.list();
    let mut page: Vec<BlobId> = Vec::with_capacity(SWEEP_PAGE);
    let mut removed = 0;
    // Other nodes write to a shared backend too: a blob older than this
    // process may be another node's write still in flight, so there only
    // the grace period makes a blob an orphan.
    let grace = Duration::from_secs(app.config.storage.orphan_grace_secs);
    let shared_cutoff = cutoff.min(ago(grace));
    let cutoff_for = |id: &BlobId| {
        if app.blobs.is_shared_for(id) {
            shared_cutoff
        } else {
            cutoff
        }
    };
    loop {
        let next = listing.next().await.transpose()?;
        let ended = next.is_none();
        if let Some(blob) = next
            && blob.created < cutoff_for(&blob.id)
            && !app.pins.is_pinned(&blob.id)
        {
            page.push(blob.id);
        }
        if page.len() >= SWEEP_PAGE || (ended && !page.is_empty()) {
            removed += remove_orphans(app, std::mem::take(&mut page)).await?;
        }
        if ended {
            break;
        }
    }
    if removed > 0 {
        app.metrics.orphans_removed.inc_by(removed as u64);
        tracing::info!(removed, "removed orphan blobs");
    }
    Ok(removed)
}

/// Removes those of `candidates` the metadata does not list on this node.
async fn remove_orphans(app: &App, candidates: Vec<BlobId>) -> anyhow::Result<usize> {
    let me = app.cluster.node_id();
    let orphans = app
        .meta
        .read(move |conn| {
            let mut orphans = Vec::new();
            for blob in candidates {
                if !holders::kept_on(conn, &blob, me)? {
                    orphans.push(blob);
                }
            }
            Ok(orphans)
        })
        .await?;
    for blob in &orphans {
        app.blobs.delete(blob).await?;
    }
    Ok(orphans.len())
}

/// Aborts multipart uploads older than `multipart.upload_expiry_secs` and
/// frees their parts' blobs. Only the leader proposes it: one proposal per
/// sweep for the whole group.
pub async fn expire_uploads(app: &App) -> anyhow::Result<usize> {
    if !app.cluster.raft().is_leader() {
        return Ok(0);
    }
    let expiry = Duration::from_secs(app.config.multipart.upload_expiry_secs);
    let cutoff = ago(expiry)
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let outcome = app
        .cluster
        .write(crate::meta::Command::AbortExpiredUploads {
            initiated_before_ms: cutoff,
        })
        .await?;
    if outcome.count > 0 {
        tracing::info!(aborted = outcome.count, "aborted expired multipart uploads");
    }
    Ok(outcome.count)
}

/// Runs the start-up sweep (on this node's own disks everything older than
/// this process is fair game, as no write of an earlier run can still be in
/// flight; on a shared backend only the grace period counts), then one sweep per
/// interval for blobs older than the grace period.
pub fn spawn(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = expire_uploads(&app).await {
            tracing::warn!(error = %e, "start-up multipart expiry failed");
        }
        match sweep_orphans(&app, app.started).await {
            Ok(removed) => tracing::info!(removed, "start-up orphan sweep done"),
            Err(e) => tracing::warn!(error = %e, "start-up orphan sweep failed"),
        }
        let interval = Duration::from_secs(app.config.storage.sweep_interval_secs.max(1));
        let grace = Duration::from_secs(app.config.storage.orphan_grace_secs);
        loop {
            tokio::time::sleep(interval).await;
            if let Err(e) = expire_uploads(&app).await {
                tracing::warn!(error = %e, "multipart expiry failed");
            }
            if let Err(e) = sweep_orphans(&app, ago(grace)).await {
                tracing::warn!(error = %e, "orphan sweep failed");
            }
        }
    })
}

//! The lifecycle worker. On the leader only (one proposer for the group),
//! it passes over every bucket with rules at `lifecycle.interval_secs` and
//! removes what is due with ordinary commands: DeleteObjects batches that
//! the metadata checks again as they apply (the current version must be the
//! one judged; object lock still refuses), and AbortUpload. What it did is
//! counted in `bleepstore_lifecycle_actions` and logged per bucket.

use crate::app::App;
use crate::cluster::proposal::now_ms;
use crate::meta::Command;
use crate::meta::command::{DeleteCondition, DeleteEntry, NewMarker};
use crate::meta::lifecycle::{
    DAY_MS, Due, ScanVersion, due_for_key, due_ms, scan_versions, uploads_before,
};
use crate::meta::model::BucketRecord;
use crate::meta::new_version_id;
use crate::metrics::LifecycleLabels;
use std::sync::Arc;
use std::time::Duration;

/// Versions read per scan step, and deletes per command.
const PAGE: usize = 1000;

/// The length of a lifecycle day in milliseconds.
pub fn day_ms(app: &App) -> i64 {
    match app.config.lifecycle.debug_day_secs {
        0 => DAY_MS,
        secs => (secs as i64).saturating_mul(1000),
    }
}

/// How many of each action one pass took.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub expired: u64,
    pub noncurrent_removed: u64,
    pub markers_removed: u64,
    pub uploads_aborted: u64,
    pub skipped: u64,
}

impl PassReport {
    fn add(&mut self, other: PassReport) {
        self.expired += other.expired;
        self.noncurrent_removed += other.noncurrent_removed;
        self.markers_removed += other.markers_removed;
        self.uploads_aborted += other.uploads_aborted;
        self.skipped += other.skipped;
    }

    fn count(&self, app: &App) {
        for (action, n) in [
            ("expired", self.expired),
            ("noncurrent_removed", self.noncurrent_removed),
            ("marker_removed", self.markers_removed),
            ("upload_aborted", self.uploads_aborted),
            ("skipped", self.skipped),
        ] {
            if n > 0 {
                app.metrics
                    .lifecycle_actions
                    .get_or_create(&LifecycleLabels {
                        action: action.into(),
                    })
                    .inc_by(n);
            }
        }
    }
}

/// One pass over every bucket with rules, if this node leads.
pub async fn run_pass(app: &App) -> anyhow::Result<PassReport> {
    if !app.cluster.raft().is_leader() {
        return Ok(PassReport::default());
    }
    let buckets = app
        .meta
        .read(crate::meta::lifecycle::buckets_with_rules)
        .await?;
    let mut total = PassReport::default();
    for bucket in buckets {
        match apply_bucket(app, &bucket).await {
            Ok(report) => {
                if report != PassReport::default() {
                    tracing::info!(bucket = %bucket.name, ?report, "lifecycle applied");
                }
                report.count(app);
                total.add(report);
            }
            Err(e) => tracing::warn!(bucket = %bucket.name, error = %e, "lifecycle pass failed"),
        }
    }
    Ok(total)
}

async fn apply_bucket(app: &App, bucket: &BucketRecord) -> anyhow::Result<PassReport> {
    let rules = bucket.settings.lifecycle.clone().unwrap_or_default();
    let day = day_ms(app);
    let now = now_ms();
    let mut report = PassReport::default();
    let mut batch: Vec<(DeleteEntry, Due)> = Vec::new();
    let mut cursor: Option<(String, i64)> = None;
    // A key's versions may straddle two pages: the last key waits for the next.
    let mut pending: Vec<ScanVersion> = Vec::new();
    loop {
        let name = bucket.name.clone();
        let after = cursor.clone();
        let page = app
            .meta
            .read(move |c| {
                scan_versions(
                    c,
                    &name,
                    after.as_ref().map(|(k, id)| (k.as_str(), *id)),
                    PAGE,
                )
            })
            .await?;
        let done = page.len() < PAGE;
        if let Some(last) = page.last() {
            cursor = Some((last.key.clone(), last.id));
        }
        for version in page {
            if pending.first().is_some_and(|p| p.key != version.key) {
                plan_key(&rules, &pending, now, day, &mut batch);
                pending.clear();
            }
            pending.push(version);
        }
        if done {
            plan_key(&rules, &pending, now, day, &mut batch);
            pending.clear();
        }
        if batch.len() >= PAGE || (done && !batch.is_empty()) {
            report.add(delete_batch(app, bucket, std::mem::take(&mut batch), now).await?);
        }
        if done {
            break;
        }
    }
    report.uploads_aborted += abort_uploads(app, bucket, now, day).await?;
    Ok(report)
}

fn plan_key(
    rules: &[crate::meta::model::LifecycleRule],
    versions: &[ScanVersion],
    now: i64,
    day: i64,
    batch: &mut Vec<(DeleteEntry, Due)>,
) {
    let Some(first) = versions.first() else {
        return;
    };
    for due in due_for_key(rules, versions, now, day) {
        let entry = match &due {
            Due::Current { etag } => DeleteEntry {
                key: first.key.clone(),
                version_id: None,
                marker_version_id: new_version_id(),
                condition: DeleteCondition {
                    if_match: Some(etag.clone()),
                    modified_ms: Some(first.modified_ms),
                    size: None,
                },
            },
            Due::Version { version_id } => DeleteEntry {
                key: first.key.clone(),
                version_id: Some(version_id.clone()),
                marker_version_id: new_version_id(),
                condition: DeleteCondition::default(),
            },
        };
        batch.push((entry, due));
    }
}

async fn delete_batch(
    app: &App,
    bucket: &BucketRecord,
    batch: Vec<(DeleteEntry, Due)>,
    now: i64,
) -> anyhow::Result<PassReport> {
    let kinds: Vec<Due> = batch.iter().map(|(_, d)| d.clone()).collect();
    let entries = batch.into_iter().map(|(e, _)| e).collect();
    let outcome = app
        .cluster
        .write(Command::DeleteObjects {
            bucket: bucket.name.clone(),
            entries,
            marker: NewMarker {
                owner: bucket.owner.clone(),
                modified_ms: now,
            },
            bypass_governance: false,
        })
        .await?;
    let mut report = PassReport::default();
    for (result, due) in outcome.deleted.iter().zip(&kinds) {
        match (&result.outcome, due) {
            (Err(refusal), _) => {
                tracing::debug!(key = %result.key, ?refusal, "lifecycle left a version in place");
                report.skipped += 1;
            }
            (Ok(_), Due::Current { .. }) => report.expired += 1,
            (Ok(deleted), Due::Version { .. }) if deleted.delete_marker => {
                report.markers_removed += 1
            }
            (Ok(_), Due::Version { .. }) => report.noncurrent_removed += 1,
        }
    }
    Ok(report)
}

async fn abort_uploads(
    app: &App,
    bucket: &BucketRecord,
    now: i64,
    day: i64,
) -> anyhow::Result<u64> {
    let rules: Vec<_> = bucket
        .settings
        .lifecycle
        .iter()
        .flatten()
        .filter(|r| r.enabled && r.abort_upload_days.is_some())
        .cloned()
        .collect();
    if rules.is_empty() {
        return Ok(0);
    }
    let name = bucket.name.clone();
    let uploads = app
        .meta
        .read(move |c| uploads_before(c, &name, now))
        .await?;
    let mut aborted = 0;
    for (upload_id, key, initiated_ms) in uploads {
        let due = rules.iter().any(|r| {
            r.filter.matches(&key, 0, &[])
                && r.abort_upload_days
                    .is_some_and(|days| now >= due_ms(initiated_ms, days, day))
        });
        if !due {
            continue;
        }
        match app
            .cluster
            .write(Command::AbortUpload {
                upload_id,
                bucket: bucket.name.clone(),
                key: key.clone(),
            })
            .await
        {
            Ok(_) => aborted += 1,
            Err(e) if e.is_refusal() => {}
            Err(e) => tracing::debug!(%key, error = %e, "lifecycle could not abort an upload"),
        }
    }
    Ok(aborted)
}

/// Runs a pass every `lifecycle.interval_secs` (more often when a debug day
/// is short, so tests see rules applied within a couple of "days").
pub fn spawn(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = app.config.lifecycle.interval_secs.max(1);
        if app.config.lifecycle.debug_day_secs > 0 {
            interval = interval.min((app.config.lifecycle.debug_day_secs / 2).max(1));
        }
        loop {
            tokio::time::sleep(Duration::from_secs(interval)).await;
            if let Err(e) = run_pass(&app).await {
                tracing::warn!(error = %e, "lifecycle pass failed");
            }
        }
    })
}

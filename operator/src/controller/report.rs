//! The status a pass writes, and the Events for changes of `Degraded`.

use super::{Context, Error, key};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use crate::builders;
use crate::crd::{BleepStoreCluster, BleepStoreClusterStatus};
use crate::status::{self, Motion, Observed, truncate};

/// What is known without looking: the previous status, carried forward.
pub(super) fn observed_from_previous(
    bsc: &BleepStoreCluster,
    previous: &BleepStoreClusterStatus,
) -> Observed {
    let motion = match status::condition(previous, status::PROGRESSING) {
        // Keep saying what was in progress; a failed pass changes nothing.
        Some(c) if c.status == "True" && c.reason == "ScaleDownWaiting" => {
            Motion::ScaleDownWaiting {
                from: previous.replicas,
                to: bsc.spec.replicas,
                why: c.message.clone(),
            }
        }
        _ => Motion::Stable,
    };
    Observed {
        generation: bsc.metadata.generation,
        desired_replicas: bsc.spec.replicas,
        replicas: previous.replicas,
        ready_replicas: previous.ready_replicas,
        cluster_mode: bsc.cluster_enabled(),
        raft: previous.raft.clone(),
        motion,
        problem: None,
        selector: Some(builders::selector_string(bsc)),
        endpoint: previous.endpoint.clone(),
        current_image: None,
        current_config_hash: None,
        service_monitor: None,
        generated_secrets: previous.generated_secrets.clone(),
        secrets_regenerated: None,
    }
}

pub(super) async fn publish(
    ctx: &Context,
    bsc: &BleepStoreCluster,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        // The API refuses notes above 1024 characters.
        note: Some(truncate(&note, 1000)),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &bsc.object_ref(&())).await {
        tracing::warn!(cluster = %key(bsc), error = %e, "could not publish an event");
    }
}

/// Writes the status if it changed. A change of the Degraded condition is
/// also an Event: a Warning with the new reason, or Normal `Recovered`.
pub(super) async fn write_status(
    ctx: &Context,
    bsc: &BleepStoreCluster,
    observed: &Observed,
) -> Result<(), Error> {
    let now = Time(Timestamp::now());
    let previous = bsc.status.as_ref();
    let new = status::compute(previous, observed, &now);
    let was = previous
        .and_then(|p| status::condition(p, status::DEGRADED))
        .filter(|c| c.status == "True")
        .map(|c| c.reason.clone());
    match (&was, &observed.problem) {
        (was, Some(problem)) if was.as_deref() != Some(problem.reason.as_str()) => {
            publish(
                ctx,
                bsc,
                EventType::Warning,
                &problem.reason,
                "Reconcile",
                problem.message.clone(),
            )
            .await
        }
        (Some(was), None) => {
            publish(
                ctx,
                bsc,
                EventType::Normal,
                "Recovered",
                "Reconcile",
                format!("{was} is resolved"),
            )
            .await
        }
        _ => {}
    }
    if previous == Some(&new) {
        return Ok(());
    }
    let api: Api<BleepStoreCluster> =
        Api::namespaced(ctx.client.clone(), &bsc.namespace().unwrap_or_default());
    api.patch_status(
        &bsc.name_any(),
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": new })),
    )
    .await
    .map_err(Error::kube("writing the status"))?;
    Ok(())
}

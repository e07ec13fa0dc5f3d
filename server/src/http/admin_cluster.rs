//! The admin API's cluster calls (docs/admin-api.md): the view, adding and
//! removing members, a snapshot, and handing leadership to another node.

use super::admin::{admin_error, check_token, optional_json};
use crate::app::App;
use crate::cluster::Refused;
use crate::cluster::membership::{JoinRequest, transfer_leadership};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn view(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(denied) = check_token(&app, &headers) {
        return *denied;
    }
    axum::Json(cluster_view(&app).await).into_response()
}

/// The cluster view, with which members drain as this node's metadata says
/// (the repair's per-member figures are from its last pass).
async fn cluster_view(app: &App) -> crate::cluster::ClusterView {
    let mut view = app.cluster.view().await;
    app.replicas.mark_draining(&mut view).await;
    view
}

fn refused(refusal: Refused) -> Response {
    let (status, code) = match &refusal {
        Refused::NotLeader { .. } | Refused::Unavailable(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "Unavailable")
        }
        Refused::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
        Refused::NotFound(_) => (StatusCode::NOT_FOUND, "NotMember"),
        Refused::Invalid(_) => (StatusCode::BAD_REQUEST, "InvalidChange"),
    };
    admin_error(status, code, &refusal.to_string())
}

fn not_clustered() -> Response {
    admin_error(
        StatusCode::CONFLICT,
        "NotClustered",
        "this server runs standalone (cluster.enabled is false); membership cannot change",
    )
}

#[derive(serde::Deserialize)]
pub struct AddMember {
    id: u64,
    address: String,
}

pub async fn add_member(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(denied) = check_token(&app, &headers) {
        return *denied;
    }
    if !app.cluster.is_clustered() {
        return not_clustered();
    }
    let request: AddMember = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, "MalformedRequest", &e.to_string()),
    };
    let address_ok = request
        .address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !address_ok {
        return admin_error(
            StatusCode::BAD_REQUEST,
            "MalformedRequest",
            &format!("address {:?} is not host:port", request.address),
        );
    }
    let join = JoinRequest {
        id: request.id,
        address: request.address,
        fresh: false,
    };
    match app.cluster.admit(join).await {
        Ok(()) => axum::Json(cluster_view(&app).await).into_response(),
        Err(refusal) => refused(refusal),
    }
}

#[derive(serde::Deserialize, Default)]
pub struct RemoveOptions {
    /// Leave at once, without moving the member's blob copies first.
    #[serde(default)]
    force: bool,
}

/// Removes a member. With replicated blobs it is drained first: `202` and
/// the member stays (marked `draining`) until the repair has moved every
/// copy it holds, then leaves the group by itself; `?force=true` removes it
/// at once.
pub async fn remove_member(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Query(options): Query<RemoveOptions>,
) -> Response {
    if let Err(denied) = check_token(&app, &headers) {
        return *denied;
    }
    if !app.cluster.is_clustered() {
        return not_clustered();
    }
    let membership = app.cluster.metrics().membership_config;
    let membership = membership.membership();
    if membership.get_node(&id).is_none() {
        return refused(Refused::NotFound(format!("node {id} is not a member")));
    }
    let voters: Vec<u64> = membership.voter_ids().collect();
    if voters == [id] {
        return refused(Refused::Conflict(format!(
            "node {id} is the only voter: the group cannot go on without it"
        )));
    }
    if options.force || !app.replicas.is_replicated() {
        if let Err(refusal) = app.cluster.remove(id).await {
            return refused(refusal);
        }
        return match set_draining(&app, id, false).await {
            Ok(()) => axum::Json(cluster_view(&app).await).into_response(),
            Err(response) => *response,
        };
    }
    if let Err(response) = set_draining(&app, id, true).await {
        return *response;
    }
    app.replicas.wake_repair();
    (StatusCode::ACCEPTED, axum::Json(cluster_view(&app).await)).into_response()
}

async fn set_draining(app: &App, node: u64, draining: bool) -> Result<(), Box<Response>> {
    let command = crate::meta::Command::SetDraining { node, draining };
    app.cluster.write(command).await.map(|_| ()).map_err(|e| {
        Box::new(admin_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            &format!("cannot record the drain: {e}"),
        ))
    })
}

/// Builds a snapshot of the metadata now (the log is compacted after it).
pub async fn snapshot(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(denied) = check_token(&app, &headers) {
        return *denied;
    }
    match app.cluster.raft().trigger().snapshot().await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({"snapshot": "requested"})),
        )
            .into_response(),
        Err(e) => admin_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            &e.to_string(),
        ),
    }
}

#[derive(serde::Deserialize, Default)]
pub struct TransferLeader {
    to: Option<u64>,
}

/// Hands leadership to `to` (or any other voter): call it on the leader,
/// e.g. before restarting its pod.
pub async fn transfer_leader(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(denied) = check_token(&app, &headers) {
        return *denied;
    }
    if !app.cluster.is_clustered() {
        return not_clustered();
    }
    let request: TransferLeader = match optional_json(&body) {
        Ok(r) => r,
        Err(malformed) => return *malformed,
    };
    match transfer_leadership(&app.cluster, request.to).await {
        Ok(to) => axum::Json(serde_json::json!({"transferring_to": to})).into_response(),
        Err(refusal) => refused(refusal),
    }
}

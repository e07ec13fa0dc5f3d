//! The admin API's cluster calls (docs/admin-api.md): the view, adding and
//! removing members, a snapshot, and handing leadership to another node.

use super::admin::{admin_error, check_token, optional_json};
use crate::app::App;
use crate::cluster::Refused;
use crate::cluster::membership::{JoinRequest, transfer_leadership};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn view(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(denied) = check_token(&app, &headers) {
        return *denied;
    }
    axum::Json(app.cluster.view().await).into_response()
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
        Ok(()) => axum::Json(app.cluster.view().await).into_response(),
        Err(refusal) => refused(refusal),
    }
}

pub async fn remove_member(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    if let Err(denied) = check_token(&app, &headers) {
        return *denied;
    }
    if !app.cluster.is_clustered() {
        return not_clustered();
    }
    match app.cluster.remove(id).await {
        Ok(()) => axum::Json(app.cluster.view().await).into_response(),
        Err(refusal) => refused(refusal),
    }
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

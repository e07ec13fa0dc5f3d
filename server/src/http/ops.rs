//! The operations port (9001): liveness, readiness, metrics and the admin API.

use crate::app::App;
use crate::meta::query;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/admin/v1/cluster", get(cluster))
        .route("/admin/v1/cluster/members", post(membership_change))
        .route("/admin/v1/cluster/members/{id}", delete(membership_change))
        .route("/admin/v1/encryption/keys", get(encryption_keys))
        .route("/admin/v1/encryption/rewrap", post(encryption_rewrap))
        .with_state(app)
}

async fn health() -> &'static str {
    "ok\n"
}

/// Ready once the metadata store answers queries.
async fn ready(State(app): State<Arc<App>>) -> Response {
    match app
        .meta
        .read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
        .await
    {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response(),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    if let Ok(stats) = app.meta.read(query::stats).await {
        app.metrics.buckets.set(stats.buckets as i64);
        app.metrics.objects.set(stats.objects as i64);
        app.metrics.stored_bytes.set(stats.bytes as i64);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

fn admin_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": code, "message": message})),
    )
        .into_response()
}

fn check_token(app: &App, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(expected) = &app.config.auth.admin_token else {
        return Err(Box::new(admin_error(
            StatusCode::FORBIDDEN,
            "AdminDisabled",
            "no admin token is configured (auth.admin_token)",
        )));
    };
    let provided = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(provided.as_bytes().ct_eq(expected.expose().as_bytes())) {
        Ok(())
    } else {
        Err(Box::new(admin_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "missing or wrong bearer token",
        )))
    }
}

fn advertised_address(app: &App) -> String {
    let port = app.config.server.ops_listen.port();
    match (
        &app.config.cluster.pod_name,
        &app.config.cluster.headless_service,
        &app.config.cluster.namespace,
    ) {
        (Some(pod), Some(service), Some(ns)) => {
            format!(
                "{pod}.{service}.{ns}.svc.{}:{port}",
                app.config.cluster.cluster_domain
            )
        }
        _ => app.config.server.ops_listen.to_string(),
    }
}

/// A standalone server is a cluster of one: itself, as leader.
async fn cluster(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(denied) = check_token(&app, &headers) {
        return *denied;
    }
    axum::Json(serde_json::json!({
        "mode": "standalone",
        "node_id": 0,
        "leader": 0,
        "members": [{"id": 0, "address": advertised_address(&app), "voter": true}],
        "healthy": true,
    }))
    .into_response()
}

async fn membership_change(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(denied) = check_token(&app, &headers) {
        return *denied;
    }
    admin_error(
        StatusCode::CONFLICT,
        "NotClustered",
        "this server runs standalone (cluster.enabled is false); membership cannot change",
    )
}

/// The keyring (ids only) and how many data keys each master key wraps.
async fn encryption_keys(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(denied) = check_token(&app, &headers) {
        return *denied;
    }
    let usage = match app.meta.read(crate::meta::rewrap::master_key_usage).await {
        Ok(usage) => usage,
        Err(e) => {
            return admin_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "MetadataError",
                &e.to_string(),
            );
        }
    };
    let count = |id: &str| {
        usage
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let mut keys: Vec<serde_json::Value> = app
        .keyring
        .ids()
        .map(|id| serde_json::json!({"id": id, "data_keys": count(id), "in_keyring": true}))
        .collect();
    // Keys still wrapping data but gone from the keyring: that data is unreadable.
    for (id, n) in &usage {
        if !app.keyring.ids().any(|k| k == id) {
            keys.push(serde_json::json!({"id": id, "data_keys": n, "in_keyring": false}));
        }
    }
    axum::Json(serde_json::json!({
        "default": app.keyring.default_id(),
        "keys": keys,
    }))
    .into_response()
}

#[derive(serde::Deserialize, Default)]
struct RewrapRequest {
    /// Master keys to move data keys away from (default: all but `to`).
    from: Option<Vec<String>>,
    /// The key to wrap them with (default: the keyring's default key).
    to: Option<String>,
}

/// Re-wraps data keys with another master key (after rotating the default
/// key), so old keys can leave the keyring. Rewrites no object data.
async fn encryption_rewrap(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(denied) = check_token(&app, &headers) {
        return *denied;
    }
    let request: RewrapRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RewrapRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return admin_error(StatusCode::BAD_REQUEST, "MalformedRequest", &e.to_string());
            }
        }
    };
    match crate::rotation::rewrap(&app, request.from, request.to).await {
        Ok(rewrapped) => {
            tracing::info!(rewrapped, "re-wrapped data keys");
            axum::Json(serde_json::json!({"rewrapped": rewrapped})).into_response()
        }
        Err(
            e @ (crate::rotation::RotationError::UnknownKey(_)
            | crate::rotation::RotationError::NoKeyring),
        ) => admin_error(StatusCode::BAD_REQUEST, "InvalidKey", &e.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "re-wrapping data keys failed");
            admin_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "RewrapFailed",
                &e.to_string(),
            )
        }
    }
}

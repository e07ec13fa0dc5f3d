//! The operations port (9001): liveness, readiness, metrics and the admin API.

use super::{admin, admin_cluster};
use crate::app::App;
use crate::meta::query;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use std::sync::Arc;

pub fn router(app: Arc<App>) -> Router {
    let router = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/admin/v1/cluster", get(admin_cluster::view))
        .route("/admin/v1/cluster/members", post(admin_cluster::add_member))
        .route(
            "/admin/v1/cluster/members/{id}",
            delete(admin_cluster::remove_member),
        )
        .route("/admin/v1/cluster/snapshot", post(admin_cluster::snapshot))
        .route(
            "/admin/v1/cluster/leader",
            post(admin_cluster::transfer_leader),
        )
        .route("/admin/v1/encryption/keys", get(admin::encryption_keys))
        .route(
            "/admin/v1/encryption/rewrap",
            post(admin::encryption_rewrap),
        );
    let router = router.with_state(app.clone());
    match (&app.config.cluster.secret, app.cluster.is_clustered()) {
        (Some(secret), true) => {
            let internal = crate::cluster::internal_api::router(
                app.cluster.clone(),
                secret.expose().to_string(),
                app.replicas.clone(),
            );
            let internal = if app.config.server.tls.is_some() {
                internal.layer(axum::middleware::from_fn(over_tls_only))
            } else {
                internal
            };
            router.merge(internal)
        }
        _ => router,
    }
}

/// With `server.tls`, nodes talk to each other over TLS (DESIGN §7): a
/// node-to-node call over plain HTTP is refused before its secret is even
/// looked at, so a misconfigured peer fails loudly instead of sending the
/// cluster secret in the clear again and again.
async fn over_tls_only(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if request.extensions().get::<super::server::Tls>().is_none() {
        return (
            StatusCode::FORBIDDEN,
            "this node has TLS: node-to-node calls must use it\n",
        )
            .into_response();
    }
    next.run(request).await
}

async fn health() -> &'static str {
    "ok\n"
}

/// Ready once the metadata store answers queries and this node is a member
/// that knows the leader and has applied what it knows to be committed.
async fn ready(State(app): State<Arc<App>>) -> Response {
    if let Err(e) = app
        .meta
        .read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
        .await
    {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response();
    }
    let Some(statuses) = app.backend_health.statuses() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the storage backends have not been checked yet\n",
        )
            .into_response();
    };
    let broken: Vec<String> = statuses
        .into_iter()
        .filter_map(|s| {
            s.problem
                .map(|p| format!("storage backend {} ({}): {p}", s.name, s.kind))
        })
        .collect();
    if !broken.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", broken.join("; ")),
        )
            .into_response();
    }
    if !app.cluster.is_ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not a member that knows the leader and has caught up\n",
        )
            .into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
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

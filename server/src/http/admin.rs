//! The admin API on the operations port (docs/admin-api.md): bearer-token
//! authentication and the encryption calls. The cluster calls are in
//! `admin_cluster.rs`.

use crate::app::App;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub fn admin_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": code, "message": message})),
    )
        .into_response()
}

/// A JSON body whose fields are all optional: empty means the defaults.
pub fn optional_json<T: Default + serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(admin_error(
            StatusCode::BAD_REQUEST,
            "MalformedRequest",
            &e.to_string(),
        ))
    })
}

pub fn check_token(app: &App, headers: &HeaderMap) -> Result<(), Box<Response>> {
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

/// The keyring (ids only) and how many data keys each master key wraps.
pub async fn encryption_keys(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
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
pub async fn encryption_rewrap(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(denied) = check_token(&app, &headers) {
        return *denied;
    }
    let request: RewrapRequest = match optional_json(&body) {
        Ok(r) => r,
        Err(malformed) => return *malformed,
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

//! The node-to-node routes on the operations port: `/raft/v1/…` for
//! openraft's RPCs and `/internal/v1/…` for forwarded writes, read indexes,
//! joins and node info. Every call must carry the cluster secret (compared
//! in constant time) and the caller's node id; a caller from another group
//! (a different cluster id) is refused.

use super::blobs::{LocalBlobs, serve as blobs};
use super::membership::JoinRequest;
use super::proposal::{Answer, Proposal, decode, encode};
use super::raft::network::{APPEND, PRE_VOTE, SNAPSHOT, TRANSFER_LEADER, VOTE};
use super::raft::{self, RpcError};
use super::transport::{CLUSTER_ID_HEADER, NODE_HEADER, SECRET_HEADER};
use super::{Cluster, Refused, paths};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::TryStreamExt;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::time::Instant;

/// Largest body of a non-snapshot internal call (a batch of log entries
/// with inline objects).
const MAX_BODY: usize = 256 * 1024 * 1024;

#[derive(Clone)]
struct Internal {
    cluster: Arc<Cluster>,
    secret: Arc<String>,
}

pub fn router(cluster: Arc<Cluster>, secret: String, local: LocalBlobs) -> Router {
    let state = Internal {
        cluster,
        secret: Arc::new(secret),
    };
    Router::new()
        .route(APPEND, post(append))
        .route(VOTE, post(vote))
        .route(PRE_VOTE, post(pre_vote))
        .route(SNAPSHOT, post(snapshot))
        .route(TRANSFER_LEADER, post(transfer_leader))
        .route(paths::INFO, post(info))
        .route(paths::PROPOSE, post(propose))
        .route(paths::READ_INDEX, post(read_index))
        .route(paths::JOIN, post(join))
        .route(paths::REMOVE, post(remove))
        .route(paths::VIEW, post(view))
        .route(
            &format!("{}/{{id}}", paths::BLOBS),
            get(blobs::serve)
                .put(blobs::receive)
                .delete(blobs::discard)
                .with_state(local.clone()),
        )
        .route(
            &format!("{}/{{id}}/copy", paths::BLOBS),
            post(blobs::copy).with_state(local.clone()),
        )
        .route(
            &format!("{}/{{id}}/verify", paths::BLOBS),
            post(blobs::verify).with_state(local),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, message).into_response()
}

async fn authenticate(State(state): State<Internal>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let secret = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !bool::from(secret.ct_eq(state.secret.as_bytes())) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "wrong or missing cluster secret".into(),
        );
    }
    let Some(caller) = headers
        .get(NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return refuse(StatusCode::BAD_REQUEST, "missing caller node id".into());
    };
    let theirs = headers
        .get(CLUSTER_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match (state.cluster.cluster_id(), theirs) {
        (Some(ours), Some(theirs)) if ours != theirs => {
            return refuse(
                StatusCode::CONFLICT,
                format!("node {caller} belongs to cluster {theirs}, this node to {ours}"),
            );
        }
        // Entries from the leader that added this node reach it before (or
        // instead of) the answer to its join request.
        (None, Some(theirs)) if request.uri().path().starts_with("/raft/") => {
            if let Err(e) = state.cluster.adopt_cluster_id(&theirs).await {
                return refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
            }
        }
        _ => {}
    }
    next.run(request).await
}

fn msgpack(result: Result<Vec<u8>, RpcError>) -> Response {
    match result {
        Ok(bytes) => (
            [(axum::http::header::CONTENT_TYPE, "application/vnd.msgpack")],
            bytes,
        )
            .into_response(),
        Err(e) => refuse(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// A MessagePack answer (also the blob routes', `blobs::serve`).
pub(super) fn encoded<T: serde::Serialize>(value: &T) -> Response {
    msgpack(encode(value).map_err(|e| RpcError(e.to_string())))
}

async fn append(State(s): State<Internal>, body: Bytes) -> Response {
    s.cluster.heard_from_leader();
    msgpack(raft::serve_append(s.cluster.raft(), &body).await)
}

/// A node that is not a voter in its own membership (a new node, or one
/// that came back with empty storage) must not vote: it may have voted in
/// a term it no longer remembers.
fn may_vote(cluster: &Cluster) -> bool {
    cluster
        .metrics()
        .membership_config
        .voter_ids()
        .any(|id| id == cluster.node_id())
}

async fn vote(State(s): State<Internal>, body: Bytes) -> Response {
    if !may_vote(&s.cluster) {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "not a voter".into());
    }
    msgpack(raft::serve_vote(s.cluster.raft(), &body).await)
}

async fn pre_vote(State(s): State<Internal>, body: Bytes) -> Response {
    if !may_vote(&s.cluster) {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "not a voter".into());
    }
    msgpack(raft::serve_pre_vote(s.cluster.raft(), &body).await)
}

async fn transfer_leader(State(s): State<Internal>, body: Bytes) -> Response {
    msgpack(raft::serve_transfer_leader(s.cluster.raft(), &body).await)
}

async fn snapshot(State(s): State<Internal>, body: Body) -> Response {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    msgpack(raft::serve_snapshot(s.cluster.raft(), s.cluster.snapshots(), stream).await)
}

async fn info(State(s): State<Internal>) -> Response {
    encoded(&s.cluster.info())
}

async fn view(State(s): State<Internal>) -> Response {
    encoded(&s.cluster.leader_view().await)
}

pub(super) fn decoded<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    decode(body).map_err(|e| {
        Box::new(refuse(
            StatusCode::BAD_REQUEST,
            format!("cannot decode: {e}"),
        ))
    })
}

async fn propose(State(s): State<Internal>, body: Bytes) -> Response {
    let proposal: Proposal = match decoded(&body) {
        Ok(p) => p,
        Err(response) => return *response,
    };
    let deadline = Instant::now() + s.cluster.settings().request_timeout;
    let answer: Result<Answer, Refused> = match s.cluster.propose_here(&proposal, deadline).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(forward)) => Err(Refused::NotLeader {
            leader: forward.leader_id,
        }),
        Err(e) => Err(Refused::Unavailable(e.to_string())),
    };
    encoded(&answer)
}

async fn read_index(State(s): State<Internal>) -> Response {
    let deadline = Instant::now() + s.cluster.settings().request_timeout;
    let answer: Result<u64, Refused> = match s.cluster.read_index_here(deadline).await {
        Ok(Some(index)) => Ok(index),
        Ok(None) => Err(Refused::NotLeader {
            leader: s.cluster.metrics().current_leader,
        }),
        Err(e) => Err(Refused::Unavailable(e.to_string())),
    };
    encoded(&answer)
}

async fn join(State(s): State<Internal>, body: Bytes) -> Response {
    let request: JoinRequest = match decoded(&body) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    encoded(&s.cluster.admit(request).await)
}

async fn remove(State(s): State<Internal>, body: Bytes) -> Response {
    let id: u64 = match decoded(&body) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    encoded(&s.cluster.remove(id).await)
}

//! Node-to-node calls: HTTP/1.1 to a peer's operations port, addressed by
//! node id through the [`Resolver`], authenticated with the cluster secret
//! and this node's id, and carrying the cluster id so that nodes of two
//! different groups never talk to each other by mistake.

use super::connector::{self, NodeConnector};
use super::peer_tls::PeerTlsError;
use super::resolver::{ResolveError, Resolver};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub const NODE_HEADER: &str = "x-bleepstore-node";
pub const SECRET_HEADER: &str = "x-bleepstore-cluster-secret";
pub const CLUSTER_ID_HEADER: &str = "x-bleepstore-cluster-id";

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    Resolve(#[from] ResolveError),
    /// No connection could be made: the request was not delivered.
    #[error("node {node} unreachable: {reason}")]
    Unreachable { node: u64, reason: String },
    /// The request may or may not have been delivered and acted on.
    #[error("node {node}: {reason}")]
    Broken { node: u64, reason: String },
    #[error("node {node} timed out after {after:?}")]
    Timeout { node: u64, after: Duration },
    /// The peer answered with an error status.
    #[error("node {node} answered {status}: {message}")]
    Status {
        node: u64,
        status: u16,
        message: String,
    },
}

impl TransportError {
    /// Whether the peer certainly never acted on the request.
    pub fn undelivered(&self) -> bool {
        matches!(
            self,
            TransportError::Resolve(_) | TransportError::Unreachable { .. }
        )
    }
}

/// The cluster this node belongs to, once known (formed or joined).
#[derive(Default)]
pub struct ClusterId(RwLock<Option<String>>);

impl ClusterId {
    pub fn get(&self) -> Option<String> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub fn set(&self, id: String) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(id);
    }
}

pub struct Transport {
    client: Client<HttpsConnector<NodeConnector>, Body>,
    /// `https` when the server has TLS (DESIGN §7).
    scheme: &'static str,
    resolver: Arc<Resolver>,
    secret: String,
    cluster_id: Arc<ClusterId>,
    /// Peers whose last call failed, with when it last failed: a link going
    /// down or coming back is logged once, not on every heartbeat, and blob
    /// writes route around peers that failed lately.
    down: std::sync::Mutex<std::collections::BTreeMap<u64, Instant>>,
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A streaming request body.
pub fn streaming(
    stream: impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Body {
    StreamBody::new(stream.map(|chunk| chunk.map(Frame::data))).boxed_unsync()
}

impl Transport {
    /// `tls`: how to verify peers, when nodes talk over TLS.
    pub fn new(
        resolver: Arc<Resolver>,
        secret: String,
        cluster_id: Arc<ClusterId>,
        tls: Option<rustls::ClientConfig>,
    ) -> Result<Self, PeerTlsError> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let tls = match tls {
            Some(config) => config,
            // Never used: every URI is plain `http`.
            None => super::peer_tls::plain_placeholder()?,
        };
        let connector = NodeConnector::new(resolver.clone(), Duration::from_secs(2));
        let names = connector.clone();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .with_server_name_resolver(move |uri: &hyper::Uri| names.server_name(uri))
            .enable_http1()
            .wrap_connector(connector);
        Ok(Transport {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            scheme,
            resolver,
            secret,
            cluster_id,
            down: Default::default(),
        })
    }

    /// Records how the last call to `peer` went (Raft calls, and blob
    /// copies that could not be delivered).
    pub fn link_state(&self, peer: u64, error: Option<&TransportError>) {
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        match error {
            Some(e) => {
                let newly_down = down.insert(peer, Instant::now()).is_none();
                if newly_down {
                    tracing::warn!(peer, error = %e, "cannot reach a peer; retrying quietly")
                }
            }
            None if down.remove(&peer).is_some() => {
                tracing::info!(peer, "a peer is reachable again")
            }
            None => {}
        }
    }

    /// Peers whose last call failed less than `within` ago. Older failures
    /// do not count, so a node that only ever talked to a peer through
    /// writes routed around it tries that peer again.
    pub fn unreachable(&self, within: Duration) -> std::collections::BTreeSet<u64> {
        let down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        down.iter()
            .filter(|(_, since)| since.elapsed() < within)
            .map(|(peer, _)| *peer)
            .collect()
    }

    pub fn resolver(&self) -> &Arc<Resolver> {
        &self.resolver
    }

    /// Sends `body` to `path` on node `target` and returns the response
    /// (status checked) for the caller to read, within `timeout` for the
    /// response head.
    pub async fn send(
        &self,
        target: u64,
        method: hyper::Method,
        path: &str,
        body: Body,
        timeout: Duration,
    ) -> Result<hyper::Response<hyper::body::Incoming>, TransportError> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!(
                "{}://{}{path}",
                self.scheme,
                connector::authority(target)
            ))
            .header(NODE_HEADER, self.resolver.self_id().to_string())
            .header(SECRET_HEADER, &self.secret)
            .header("content-type", "application/vnd.msgpack");
        if let Some(id) = self.cluster_id.get() {
            request = request.header(CLUSTER_ID_HEADER, id);
        }
        let request = request.body(body).map_err(|e| TransportError::Broken {
            node: target,
            reason: e.to_string(),
        })?;
        let response = match tokio::time::timeout(timeout, self.client.request(request)).await {
            Err(_) => {
                return Err(TransportError::Timeout {
                    node: target,
                    after: timeout,
                });
            }
            Ok(Err(e)) if e.is_connect() => {
                return Err(TransportError::Unreachable {
                    node: target,
                    reason: error_chain(&e),
                });
            }
            Ok(Err(e)) => {
                return Err(TransportError::Broken {
                    node: target,
                    reason: error_chain(&e),
                });
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            let message = match tokio::time::timeout(timeout, response.into_body().collect()).await
            {
                Ok(Ok(body)) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                _ => String::new(),
            };
            return Err(TransportError::Status {
                node: target,
                status: status.as_u16(),
                message,
            });
        }
        Ok(response)
    }

    /// `send` with a whole body each way.
    pub async fn call(
        &self,
        target: u64,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, TransportError> {
        let response = self
            .send(target, hyper::Method::POST, path, full(body), timeout)
            .await?;
        match tokio::time::timeout(timeout, response.into_body().collect()).await {
            Err(_) => Err(TransportError::Timeout {
                node: target,
                after: timeout,
            }),
            Ok(Err(e)) => Err(TransportError::Broken {
                node: target,
                reason: e.to_string(),
            }),
            Ok(Ok(body)) => Ok(body.to_bytes()),
        }
    }
}

/// An error with its sources (hyper's own message is only "client error
/// (Connect)"; the cause — refused, timed out, a certificate — is below it).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

//! Client of the server's admin API (docs/admin-api.md) on the operations port.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    pub address: String,
    pub voter: bool,
    /// The member's blob copies (servers that replicate blobs report them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blobs: Option<MemberBlobs>,
}

/// What a member holds and still has to move off before it may leave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberBlobs {
    #[serde(default)]
    pub blobs: u64,
    #[serde(default)]
    pub draining: bool,
    #[serde(default)]
    pub drain_queue: u64,
}

impl Member {
    /// Being drained: still a member, its copies moving elsewhere.
    pub fn draining(&self) -> bool {
        self.blobs.as_ref().is_some_and(|b| b.draining)
    }
}

/// `GET /admin/v1/cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    pub mode: String,
    pub node_id: u64,
    pub leader: Option<u64>,
    #[serde(default)]
    pub members: Vec<Member>,
    pub healthy: bool,
}

impl ClusterView {
    pub fn is_cluster(&self) -> bool {
        self.mode == "cluster"
    }
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin API unreachable: {0}")]
    Unreachable(String),
    #[error("admin API answered {status}: {code}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
    #[error("admin API sent an unexpected body: {0}")]
    Body(String),
}

impl AdminError {
    pub fn status(&self) -> Option<u16> {
        match self {
            AdminError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn code(&self) -> Option<&str> {
        match self {
            AdminError::Status { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub type AdminFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, AdminError>> + Send + 'a>>;

/// The admin calls the operator makes. `base` is `http://host:port`.
pub trait AdminApi: Send + Sync {
    fn cluster<'a>(&'a self, base: &'a str, token: &'a str) -> AdminFuture<'a, ClusterView>;
    fn add_member<'a>(
        &'a self,
        base: &'a str,
        token: &'a str,
        id: u64,
        address: &'a str,
    ) -> AdminFuture<'a, ClusterView>;
    fn remove_member<'a>(
        &'a self,
        base: &'a str,
        token: &'a str,
        id: u64,
    ) -> AdminFuture<'a, ClusterView>;
}

/// The real client: plain HTTP/1.1 inside the cluster network.
pub struct HttpAdmin {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Default for HttpAdmin {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        HttpAdmin {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
}

impl HttpAdmin {
    async fn call(
        &self,
        method: hyper::Method,
        url: String,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> Result<ClusterView, AdminError> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "application/json");
        let body = match body {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Full::new(Bytes::from(json.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request
            .body(body)
            .map_err(|e| AdminError::Unreachable(format!("{url}: {e}")))?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| AdminError::Unreachable(format!("{url}: timed out")))?
            .map_err(|e| AdminError::Unreachable(format!("{url}: {e}")))?;
        let status = response.status();
        let bytes = tokio::time::timeout(self.timeout, response.into_body().collect())
            .await
            .map_err(|_| AdminError::Unreachable(format!("{url}: body timed out")))?
            .map_err(|e| AdminError::Unreachable(format!("{url}: {e}")))?
            .to_bytes();
        if !status.is_success() {
            let parsed: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            let (code, message) = parsed
                .map(|b| (b.error, b.message))
                .unwrap_or_else(|| (String::new(), String::from_utf8_lossy(&bytes).into()));
            return Err(AdminError::Status {
                status: status.as_u16(),
                code,
                message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| AdminError::Body(e.to_string()))
    }
}

impl AdminApi for HttpAdmin {
    fn cluster<'a>(&'a self, base: &'a str, token: &'a str) -> AdminFuture<'a, ClusterView> {
        Box::pin(self.call(
            hyper::Method::GET,
            format!("{base}/admin/v1/cluster"),
            token,
            None,
        ))
    }

    fn add_member<'a>(
        &'a self,
        base: &'a str,
        token: &'a str,
        id: u64,
        address: &'a str,
    ) -> AdminFuture<'a, ClusterView> {
        Box::pin(self.call(
            hyper::Method::POST,
            format!("{base}/admin/v1/cluster/members"),
            token,
            Some(serde_json::json!({"id": id, "address": address})),
        ))
    }

    fn remove_member<'a>(
        &'a self,
        base: &'a str,
        token: &'a str,
        id: u64,
    ) -> AdminFuture<'a, ClusterView> {
        Box::pin(self.call(
            hyper::Method::DELETE,
            format!("{base}/admin/v1/cluster/members/{id}"),
            token,
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server answering each connection with the next canned
    /// response and recording the request head.
    async fn serve(
        responses: Vec<(u16, &'static str)>,
    ) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            for (status, body) in responses {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 8192];
                let mut read = 0;
                loop {
                    let n = socket.read(&mut buf[read..]).await.unwrap();
                    read += n;
                    let text = String::from_utf8_lossy(&buf[..read]).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if read >= end + 4 + length || n == 0 {
                            seen.push(text);
                            break;
                        }
                    }
                }
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(reply.as_bytes()).await.unwrap();
                socket.shutdown().await.ok();
            }
            seen
        });
        (base, task)
    }

    #[tokio::test]
    async fn http_client_speaks_the_contract() {
        let view = r#"{"mode":"cluster","node_id":0,"leader":0,"members":[{"id":0,"address":"a:9001","voter":true}],"healthy":true}"#;
        let (base, server) = serve(vec![
            (200, view),
            (200, view),
            (404, r#"{"error":"NoSuchMember","message":"not a member"}"#),
        ])
        .await;
        let admin = HttpAdmin::default();
        let got = admin.cluster(&base, "tok").await.unwrap();
        assert_eq!(got.leader, Some(0));
        assert!(got.is_cluster());
        admin
            .add_member(&base, "tok", 3, "demo-3:9001")
            .await
            .unwrap();
        let err = admin.remove_member(&base, "tok", 7).await.unwrap_err();
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.code(), Some("NoSuchMember"));
        let seen = server.await.unwrap();
        assert!(seen[0].starts_with("GET /admin/v1/cluster HTTP/1.1"));
        assert!(
            seen[0]
                .to_ascii_lowercase()
                .contains("authorization: bearer tok")
        );
        assert!(seen[1].starts_with("POST /admin/v1/cluster/members HTTP/1.1"));
        assert!(seen[1].contains(r#""address":"demo-3:9001""#));
        assert!(seen[2].starts_with("DELETE /admin/v1/cluster/members/7 HTTP/1.1"));
    }

    #[tokio::test]
    async fn unreachable_is_an_error_not_a_hang() {
        let admin = HttpAdmin::default();
        // Port 9 (discard) on loopback is closed here: connection refused.
        let err = admin.cluster("http://127.0.0.1:9", "t").await.unwrap_err();
        assert!(matches!(err, AdminError::Unreachable(_)), "{err}");
    }
}

//! Dials peers by node id. The transport's URIs name a node (`node-3`)
//! rather than an address: each connection goes wherever the resolver says
//! that node is now (its `cluster.dial` override, `cluster.hosts`, DNS), the
//! connection pool is kept per node, and TLS checks the peer's certificate
//! against the node's own address, not a proxy's.

use super::resolver::Resolver;
use hyper::Uri;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

const HOST_PREFIX: &str = "node-";

/// The URI authority that names node `id`.
pub fn authority(id: u64) -> String {
    format!("{HOST_PREFIX}{id}")
}

/// The node a transport URI names.
pub fn node_of(uri: &Uri) -> Option<u64> {
    uri.host()?.strip_prefix(HOST_PREFIX)?.parse().ok()
}

#[derive(Clone)]
pub struct NodeConnector {
    resolver: Arc<Resolver>,
    connect_timeout: Duration,
}

impl NodeConnector {
    pub fn new(resolver: Arc<Resolver>, connect_timeout: Duration) -> Self {
        NodeConnector {
            resolver,
            connect_timeout,
        }
    }

    /// The name a peer's TLS certificate is checked against: the host of
    /// the node's configured address (a DNS name or an IP address).
    pub fn server_name(
        &self,
        uri: &Uri,
    ) -> Result<rustls::pki_types::ServerName<'static>, io::Error> {
        let id = node_of(uri).ok_or_else(|| not_a_node(uri))?;
        let address = self.resolver.configured_address(id).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no address for node {id}"))
        })?;
        let host = host_of(&address);
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("node {id}'s address {address}: {e}"),
            )
        })
    }
}

/// The host part of `host:port` (an IPv6 address without its brackets).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

fn not_a_node(uri: &Uri) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{uri} names no node"))
}

impl tower::Service<Uri> for NodeConnector {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let resolver = self.resolver.clone();
        let timeout = self.connect_timeout;
        Box::pin(async move {
            let id = node_of(&uri).ok_or_else(|| not_a_node(&uri))?;
            let addr = resolver
                .socket_addr(id)
                .await
                .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))?;
            let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("connecting to {addr} timed out"),
                    )
                })?
                .map_err(|e| io::Error::new(e.kind(), format!("{addr}: {e}")))?;
            // Raft messages are small and latency-bound.
            stream.set_nodelay(true)?;
            Ok(TokioIo::new(stream))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_nodes() {
        let uri: Uri = format!("https://{}/raft/append", authority(7))
            .parse()
            .unwrap();
        assert_eq!(node_of(&uri), Some(7));
        assert_eq!(node_of(&"http://10.0.0.1:9001/x".parse().unwrap()), None);
    }

    #[test]
    fn hosts_of_addresses() {
        assert_eq!(
            host_of("bleepstore-1.bleepstore-headless.ns.svc:9001"),
            "bleepstore-1.bleepstore-headless.ns.svc"
        );
        assert_eq!(host_of("127.0.0.1:9011"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9011"), "::1");
    }
}

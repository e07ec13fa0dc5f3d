//! Listeners: accepts connections on the S3 and operations ports, serves
//! HTTP/1.1 with header-read timeouts, and drains in-flight requests on
//! shutdown within a deadline.

use crate::app::App;
use crate::s3::service;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// The most a connection buffers for reading (and queues for writing).
/// hyper's default lets each connection's read buffer grow to ~400 KiB while
/// a body streams in, so sixteen uploads held ~10 MiB more at the bench's
/// peak than with this bound; the blob write copies every read out at once
/// anyway, and 128 KiB reads keep the system calls per MiB few.
const CONNECTION_BUFFER: usize = 128 * 1024;

/// How a listener treats its connections.
#[derive(Clone)]
enum Security {
    Plain,
    /// Every connection must open with a TLS handshake (the S3 port).
    Tls(TlsAcceptor),
    /// TLS for connections that open with a handshake, plain HTTP for the
    /// rest: on the operations port peers talk TLS to each other, while
    /// kubelet probes and metric scrapers may speak plain HTTP.
    Either(TlsAcceptor),
}

/// The first byte of a TLS connection (a handshake record).
const TLS_HANDSHAKE: u8 = 0x16;

/// Marks requests that arrived over TLS (a request extension).
#[derive(Debug, Clone, Copy)]
pub struct Tls;

/// The address a request's connection came from (a request extension).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// A server whose listeners are bound and serving.
pub struct RunningServer {
    pub s3_addr: SocketAddr,
    pub ops_addr: SocketAddr,
    pub app: Arc<App>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    sweeper: tokio::task::JoinHandle<()>,
    lifecycle: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish (up to the configured
    /// timeout), then returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.wait().await;
    }

    /// Resolves when both listeners have stopped and the Raft node has
    /// handed over leadership (if it led) and stopped.
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
        self.sweeper.abort();
        self.lifecycle.abort();
        self.app.cluster.shutdown().await;
    }

    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

pub async fn start(app: Arc<App>) -> anyhow::Result<RunningServer> {
    let config = &app.config;
    let s3_listener = TcpListener::bind(config.server.s3_listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} (server.s3_listen): {e}",
                config.server.s3_listen
            )
        })?;
    let ops_listener = TcpListener::bind(config.server.ops_listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} (server.ops_listen): {e}",
                config.server.ops_listen
            )
        })?;
    let s3_addr = s3_listener.local_addr()?;
    let ops_addr = ops_listener.local_addr()?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let header_timeout = Duration::from_secs(config.limits.header_timeout_secs);
    let drain = Duration::from_secs(config.server.shutdown_timeout_secs);

    let tls = config.server.tls.as_ref().map(tls_acceptor).transpose()?;
    let (s3_security, ops_security) = match tls {
        Some(acceptor) => (Security::Tls(acceptor.clone()), Security::Either(acceptor)),
        None => (Security::Plain, Security::Plain),
    };
    let s3_app = app.clone();
    let s3_task = tokio::spawn(serve(
        s3_listener,
        s3_security,
        move |request: http::Request<Incoming>| {
            let app = s3_app.clone();
            async move { Ok::<_, Infallible>(service::handle(app, request).await) }
        },
        shutdown_rx.clone(),
        header_timeout,
        drain,
        "s3",
    ));
    let router = crate::http::ops::router(app.clone());
    let ops_task = tokio::spawn(serve(
        ops_listener,
        ops_security,
        move |request: http::Request<Incoming>| {
            let router = router.clone();
            async move {
                let request = request.map(axum::body::Body::new);
                Ok::<_, Infallible>(match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                })
            }
        },
        shutdown_rx,
        header_timeout,
        drain,
        "ops",
    ));
    let sweeper = crate::sweep::spawn(app.clone());
    let lifecycle = crate::lifecycle::spawn(app.clone());
    tracing::info!(%s3_addr, %ops_addr, backend = app.blobs.name(), "listening");
    Ok(RunningServer {
        s3_addr,
        ops_addr,
        app,
        shutdown,
        tasks: vec![s3_task, ops_task],
        sweeper,
        lifecycle,
    })
}

/// Loads the S3 port's certificate chain and key (PEM files).
fn tls_acceptor(tls: &bleepstore_config::TlsConfig) -> anyhow::Result<TlsAcceptor> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let certs = crate::tls::read_certificates("server.tls.cert_file", &tls.cert_file)
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|e| {
        anyhow::anyhow!(
            "invalid configuration: server.tls.key_file: cannot read a private key from {}: {e}",
            tls.key_file.display()
        )
    })?;
    let mut server = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("invalid configuration: server.tls: {e}"))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

async fn serve<F, Fut>(
    listener: TcpListener,
    security: Security,
    handler: F,
    mut shutdown: watch::Receiver<bool>,
    header_timeout: Duration,
    drain: Duration,
    name: &'static str,
) where
    F: Fn(http::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<http::Response<axum::body::Body>, Infallible>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, listener = name, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Without TCP_NODELAY a response split into header and body
                // writes stalls ~40 ms on kept-alive connections (DESIGN.md §2).
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let watcher = graceful.watcher();
                let security = security.clone();
                tokio::spawn(async move {
                    let mut http = hyper::server::conn::http1::Builder::new();
                    http.timer(TokioTimer::new())
                        .header_read_timeout(header_timeout)
                        .max_buf_size(CONNECTION_BUFFER)
                        .keep_alive(true);
                    let handler = move |mut request: http::Request<Incoming>| {
                        request.extensions_mut().insert(Peer(peer));
                        handler(request)
                    };
                    let tls = match security {
                        Security::Plain => None,
                        Security::Tls(acceptor) => Some(acceptor),
                        Security::Either(acceptor) => {
                            let mut first = [0u8; 1];
                            match tokio::time::timeout(header_timeout, stream.peek(&mut first)).await {
                                Ok(Ok(1..)) => (first[0] == TLS_HANDSHAKE).then_some(acceptor),
                                // Closed, failed or silent: nothing to serve.
                                _ => return,
                            }
                        }
                    };
                    let result = match tls {
                        None => {
                            let connection = http.serve_connection(TokioIo::new(stream), service_fn(handler));
                            watcher.watch(connection).await
                        }
                        Some(acceptor) => {
                            // The handshake is bounded like the headers are.
                            let stream = match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                                Ok(Ok(stream)) => stream,
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => return,
                            };
                            let tagged = move |mut request: http::Request<Incoming>| {
                                request.extensions_mut().insert(Tls);
                                handler(request)
                            };
                            let connection = http.serve_connection(TokioIo::new(stream), service_fn(tagged));
                            watcher.watch(connection).await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!(listener = name, "all connections drained"),
        _ = tokio::time::sleep(drain) => tracing::warn!(listener = name, "shutdown timeout reached; dropping remaining connections"),
    }
}

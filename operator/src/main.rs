//! `bleepstore-operator`: reconciles `BleepStoreCluster` resources.
//! `bleepstore-operator render FILE` prints what it would apply for FILE.
//!
//! Environment:
//! - `WATCH_NAMESPACE`: only this namespace (default: all namespaces)
//! - `POD_NAME`, `POD_NAMESPACE`: identity for leader election and Events
//! - `LEADER_ELECTION` (`true`): take a Lease before reconciling
//! - `LEASE_NAME` (`bleepstore-operator`), `LEASE_DURATION_SECONDS` (15)
//! - `METRICS_ADDR` (`0.0.0.0:8080`): `/metrics`, `/healthz`, `/readyz`
//! - `LOG_FORMAT` (`json` | `text`), `RUST_LOG` (`info`)

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bleepstore_operator::admin::HttpAdmin;
use bleepstore_operator::controller::{self, Context};
use bleepstore_operator::leader::LeaseLock;
use bleepstore_operator::metrics::{self, Metrics};
use kube::{Api, Client};
use tracing_subscriber::EnvFilter;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") => {
            println!("bleepstore-operator {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        // `render FILE`: print what the operator would apply for the
        // BleepStoreCluster in FILE (no cluster needed).
        Some("render") => {
            let path = args
                .get(1)
                .ok_or_else(|| anyhow::anyhow!("usage: bleepstore-operator render FILE"))?;
            let text = std::fs::read_to_string(path)?;
            let bsc: bleepstore_operator::crd::BleepStoreCluster = serde_yaml_ng::from_str(&text)?;
            print!("{}", bleepstore_operator::render_objects(&bsc)?);
            return Ok(());
        }
        Some(other) => {
            anyhow::bail!(
                "unknown argument {other:?} (usage: bleepstore-operator [--version | render FILE])"
            )
        }
        _ => {}
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if env("LOG_FORMAT").as_deref() == Some("text") {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_env_filter(filter)
            .init();
    }

    let metrics = Arc::new(Metrics::default());
    let addr = env("METRICS_ADDR").unwrap_or_else(|| "0.0.0.0:8080".into());
    let server = tokio::spawn(metrics::serve(addr.parse()?, metrics.clone()));

    let client = Client::try_default().await?;
    let namespace = env("WATCH_NAMESPACE");
    let ctx = Arc::new(Context::new(
        client.clone(),
        Arc::new(HttpAdmin::default()),
        metrics.clone(),
    ));
    metrics.ready.store(true, Ordering::Relaxed);

    let leader_election = env("LEADER_ELECTION").is_none_or(|v| v != "false");
    if !leader_election {
        tracing::info!(namespace = ?namespace, "starting without leader election");
        metrics.leader.set(1);
        tokio::select! {
            _ = controller::run(client, namespace, ctx) => {}
            r = server => r??,
        }
        return Ok(());
    }

    let lease_ns = env("POD_NAMESPACE").unwrap_or_else(|| client.default_namespace().to_string());
    let identity =
        env("POD_NAME").unwrap_or_else(|| format!("bleepstore-operator-{}", std::process::id()));
    let duration = Duration::from_secs(
        env("LEASE_DURATION_SECONDS")
            .and_then(|v| v.parse().ok())
            .unwrap_or(15),
    );
    let lock = LeaseLock::new(
        Api::namespaced(client.clone(), &lease_ns),
        &env("LEASE_NAME").unwrap_or_else(|| "bleepstore-operator".into()),
        &identity,
        duration,
    );
    tracing::info!(identity = %lock.identity(), lease_namespace = %lease_ns, "waiting for the leader lease");
    tokio::select! {
        _ = lock.acquire() => {}
        _ = tokio::signal::ctrl_c() => return Ok(()),
        r = server => { r??; return Ok(()); }
    }
    metrics.leader.set(1);
    tokio::select! {
        // The controller stops on SIGTERM / SIGINT: hand the lease over.
        _ = controller::run(client, namespace, ctx) => {
            metrics.leader.set(0);
            match lock.release().await {
                Ok(()) => tracing::info!("released the leader lease"),
                Err(e) => tracing::warn!(error = %e, "could not release the leader lease; a standby takes over when it expires"),
            }
            Ok(())
        }
        _ = lock.hold() => {
            metrics.leader.set(0);
            anyhow::bail!("lost leadership; exiting so a fresh replica can take over")
        }
    }
}

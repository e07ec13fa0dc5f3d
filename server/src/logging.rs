//! Structured logs with `tracing`, as text or JSON.

use bleepstore_config::{LogFormat, LoggingConfig};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the
/// configured level. Calling it twice (tests) keeps the first.
pub fn init(config: &LoggingConfig) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.is_empty() => EnvFilter::try_new(value)?,
        _ => EnvFilter::try_new(with_quiet_raft(&config.level))
            .map_err(|e| anyhow::anyhow!("invalid configuration: logging.level: {e}"))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    let _ = result;
    Ok(())
}

/// openraft warns on every failed heartbeat and replication attempt (ten a
/// second while a peer is down); the transport logs each link going down and
/// coming back instead. A level that names openraft itself is kept as given.
fn with_quiet_raft(level: &str) -> String {
    if level.contains("openraft") {
        return level.to_string();
    }
    format!(
        "{level},openraft::core::heartbeat=error,openraft::replication=error,openraft::engine::handler::replication_handler=error"
    )
}

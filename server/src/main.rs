//! The `bleepstore` command.

use bleepstore::{App, logging};
use bleepstore_config::{Backend, ConfigError, LogFormat, Overrides};
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "bleepstore",
    version,
    about = "BleepStore: a Kubernetes-native, S3-compatible object store",
    long_about = "BleepStore serves the S3 API on one port (default 9000) and health, \
readiness, Prometheus metrics and the admin API on another (default 9001).\n\n\
Settings come from built-in defaults, then the YAML file given with --config, \
then environment variables BLEEPSTORE_<SECTION>_<FIELD> (for example \
BLEEPSTORE_AUTH_ACCESS_KEY, BLEEPSTORE_SERVER_REGION), then the flags below."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the S3 server. With no configuration at all it listens on
    /// 0.0.0.0:9000 (S3) and 0.0.0.0:9001 (operations), keeps data under
    /// ./bleepstore-data and accepts the keys bleepstore / bleepstore-secret.
    Serve(ServeArgs),
    /// Load and check a configuration without starting anything; prints the
    /// effective settings (secrets masked).
    CheckConfig(ConfigArgs),
}

#[derive(clap::Args)]
struct ConfigArgs {
    /// YAML configuration file (see docs/configuration.md).
    #[arg(long, short = 'c', env = "BLEEPSTORE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    /// Files under --data-dir (default).
    Local,
    /// Process memory; nothing survives a restart.
    Memory,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Json,
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address of the S3 API listener [config: server.s3_listen, default 0.0.0.0:9000].
    #[arg(long, value_name = "ADDR")]
    s3_listen: Option<SocketAddr>,
    /// Address of the operations listener: /health, /ready, /metrics, /admin
    /// [config: server.ops_listen, default 0.0.0.0:9001].
    #[arg(long, value_name = "ADDR")]
    ops_listen: Option<SocketAddr>,
    /// Directory for blobs, metadata and temp files
    /// [config: storage.data_dir, default ./bleepstore-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Where object bytes are stored [config: storage.backend, default local].
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// Region reported to clients [config: server.region, default us-east-1].
    #[arg(long)]
    region: Option<String>,
    /// Domain for virtual-hosted-style requests (`<bucket>.<domain>`); repeatable
    /// [config: server.domains].
    #[arg(long = "domain", value_name = "DOMAIN")]
    domains: Vec<String>,
    /// Log filter, e.g. info, debug, bleepstore=debug [config: logging.level, default info].
    #[arg(long)]
    log_level: Option<String>,
    /// Log format [config: logging.format, default text].
    #[arg(long, value_enum)]
    log_format: Option<FormatArg>,
}

fn overrides(args: &ServeArgs) -> Overrides {
    let mut o = Overrides::default();
    if let Some(a) = args.s3_listen {
        o.set("server.s3_listen", a.to_string());
    }
    if let Some(a) = args.ops_listen {
        o.set("server.ops_listen", a.to_string());
    }
    if let Some(d) = &args.data_dir {
        o.set("storage.data_dir", d.display().to_string());
    }
    if let Some(b) = args.backend {
        let backend = match b {
            BackendArg::Local => Backend::Local,
            BackendArg::Memory => Backend::Memory,
        };
        o.set("storage.backend", backend.as_str());
    }
    if let Some(r) = &args.region {
        o.set("server.region", r.as_str());
    }
    if !args.domains.is_empty() {
        o.set("server.domains", args.domains.clone());
    }
    if let Some(l) = &args.log_level {
        o.set("logging.level", l.as_str());
    }
    if let Some(f) = args.log_format {
        let format = match f {
            FormatArg::Text => LogFormat::Text,
            FormatArg::Json => LogFormat::Json,
        };
        o.set(
            "logging.format",
            match format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            },
        );
    }
    o
}

fn load(
    file: Option<&PathBuf>,
    overrides: &Overrides,
) -> Result<bleepstore_config::Config, ConfigError> {
    bleepstore_config::load(file.map(PathBuf::as_path), std::env::vars(), overrides)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig(args) => match load(args.config.as_ref(), &Overrides::default()) {
            Ok(config) => {
                println!("configuration is valid:\n{config:#?}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bleepstore: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve(args) => {
            let config = match load(args.config.config.as_ref(), &overrides(&args)) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("bleepstore: {e}");
                    return ExitCode::from(2);
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("bleepstore: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bleepstore: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(config: bleepstore_config::Config) -> anyhow::Result<()> {
    logging::init(&config.logging)?;
    let app = App::open(config).await?;
    if app.credentials.using_default_root {
        tracing::warn!(
            access_key = bleepstore_config::DEFAULT_ACCESS_KEY,
            "no root credentials configured (auth.access_key / BLEEPSTORE_AUTH_ACCESS_KEY and auth.secret_key / BLEEPSTORE_AUTH_SECRET_KEY); using the documented defaults, which anyone can guess: do not expose this server"
        );
    }
    let server = bleepstore::start(app).await?;
    let stop = server.shutdown_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested; draining in-flight requests");
        let _ = stop.send(true);
    });
    server.wait().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

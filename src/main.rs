//! The `incidentd` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand, ValueEnum};
use std::sync::Arc;

use incidentd::auth::Tokens;
use incidentd::server::{Config, Server, TlsFiles};
use incidentd::store::{Store, StoreOptions};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "incidentd", version, about = "Incident coordination over gRPC")]
struct Cli {
    /// Log format.
    #[arg(
        long,
        env = "INCIDENTD_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gRPC API.
    Serve(ServeArgs),
    /// Load the seed incidents (real public reports) into the database, then exit.
    Seed {
        /// Database file path or sqlite: URL.
        #[arg(long, env = "INCIDENTD_DATABASE", default_value = "./incidentd.db")]
        database: String,
        /// Folder of seed files (*.toml).
        #[arg(long, env = "INCIDENTD_SEED_DIR", default_value = "seeds")]
        dir: PathBuf,
    },
    /// Write a consistent copy of a live database to PATH (SQLite VACUUM INTO);
    /// `serve --database PATH` starts from it.
    Backup {
        /// Where the copy goes; must not exist.
        path: PathBuf,
        /// Database file path or sqlite: URL.
        #[arg(long, env = "INCIDENTD_DATABASE", default_value = "./incidentd.db")]
        database: String,
    },
    /// Create the database if needed and apply migrations, then exit.
    Migrate {
        /// Database file path or sqlite: URL.
        #[arg(long, env = "INCIDENTD_DATABASE", default_value = "./incidentd.db")]
        database: String,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "INCIDENTD_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Database file path or sqlite: URL; created and migrated if missing.
    #[arg(long, env = "INCIDENTD_DATABASE", default_value = "./incidentd.db")]
    database: String,
    /// Most write requests committed together in one transaction (1 disables group commit).
    #[arg(long, env = "INCIDENTD_MAX_BATCH", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_batch: u32,
    /// Read connections in the pool.
    #[arg(long, env = "INCIDENTD_READ_CONNECTIONS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    read_connections: u32,
    /// Committed events kept in memory for live subscribers; a subscriber further
    /// behind reads from the database until it catches up.
    #[arg(long, env = "INCIDENTD_LIVE_BUFFER", default_value_t = incidentd::hub::LIVE_BUFFER, value_parser = clap::value_parser!(u64).range(16..=1_000_000).map(|v| v as usize))]
    live_buffer: usize,
    /// Load the seed incidents before serving (those already loaded are skipped).
    #[arg(long, env = "INCIDENTD_SEED", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    seed: bool,
    /// Folder of seed files used by --seed.
    #[arg(long, env = "INCIDENTD_SEED_DIR", default_value = "seeds")]
    seed_dir: PathBuf,
    /// Bearer tokens with roles (TOML: [[token]] name, role, sha256). Without it
    /// the server runs open, and only on a loopback address.
    #[arg(long, env = "INCIDENTD_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "INCIDENTD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, env = "INCIDENTD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Most calls in flight across all connections; more are refused with
    /// RESOURCE_EXHAUSTED at once rather than queued.
    #[arg(long, env = "INCIDENTD_MAX_CONCURRENT_REQUESTS", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000).map(|v| v as usize))]
    max_concurrent_requests: usize,
    /// On SIGTERM/SIGINT, how long calls and streams get to finish before they
    /// are cut off (e.g. 5s, 500ms).
    #[arg(long, env = "INCIDENTD_SHUTDOWN_GRACE", default_value = "5s", value_parser = humantime::parse_duration)]
    shutdown_grace: std::time::Duration,
    /// Serve Prometheus metrics (GET /metrics) on this address.
    #[arg(long, env = "INCIDENTD_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Most SubscribeTimeline streams open at once; more are RESOURCE_EXHAUSTED.
    #[arg(long, env = "INCIDENTD_MAX_SUBSCRIBERS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000).map(|v| v as usize))]
    max_subscribers: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter =
        EnvFilter::try_from_env("INCIDENTD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    match cli.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .init(),
    }
    match cli.command {
        Command::Seed { database, dir } => {
            let store = Store::open(&database, StoreOptions::default()).await?;
            let loaded = incidentd::server::load_seeds(&store, &seed_dir(dir)).await;
            store.close().await;
            loaded?;
        }
        Command::Backup { path, database } => {
            Store::backup(&database, &path).await?;
            tracing::info!(%database, backup = %path.display(), "backup written");
        }
        Command::Migrate { database } => {
            Store::migrate(&database).await?;
            tracing::info!(%database, "database migrated");
        }
        Command::Serve(args) => {
            if let Some(addr) = args.metrics_listen {
                incidentd::metrics::install(addr)?;
                tracing::info!(%addr, "metrics at http://{addr}/metrics");
            }
            let server = Server::start(Config {
                listen: args.listen,
                database: args.database.clone(),
                store: StoreOptions {
                    max_batch: args.max_batch as usize,
                    read_connections: args.read_connections,
                    live_buffer: args.live_buffer,
                },
                max_subscribers: args.max_subscribers,
                seed_dir: args.seed.then(|| seed_dir(args.seed_dir)),
                tokens: args
                    .tokens_file
                    .as_deref()
                    .map(Tokens::load)
                    .transpose()?
                    .map(Arc::new),
                tls: match (args.tls_cert, args.tls_key) {
                    (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                    _ => None,
                },
                max_concurrent_requests: args.max_concurrent_requests,
                shutdown_grace: args.shutdown_grace,
            })
            .await?;
            tracing::info!(addr = %server.addr(), database = %args.database, "incidentd serving");
            shutdown_signal().await;
            server.stop().await?;
        }
    }
    Ok(())
}

/// The seed folder: as given, or, for the default `seeds` when run from
/// outside the repository, the one this binary was built from.
fn seed_dir(dir: PathBuf) -> PathBuf {
    if dir.exists() || dir != std::path::Path::new("seeds") {
        return dir;
    }
    let built_from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    if built_from.exists() { built_from } else { dir }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

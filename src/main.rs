//! The `incidentd` command line.

use std::path::PathBuf;

use clap::Parser;

use incidentd::config::{Cli, Command, LogFormat};
use incidentd::server::{Config, Server};
use incidentd::store::{Store, StoreOptions};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before anything opens a database: SQLite takes a page cache only then.
    let page_cache = incidentd::store::page_cache::install();
    let cli = Cli::parse();
    let filter =
        EnvFilter::try_from_env("INCIDENTD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // A line per call is written off the request path: a logging thread writes
    // whatever queued up in one go. The guard flushes what is left on return.
    let (log, _flush_on_exit) =
        tracing_appender::non_blocking(std::io::BufWriter::new(std::io::stdout()));
    match cli.log_format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(log)
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .with_writer(log)
            .init(),
    }
    if !page_cache {
        tracing::warn!("{}", incidentd::store::page_cache::NOT_INSTALLED);
    }
    match cli.command {
        Command::Seed { db, dir } => {
            let store = Store::open(&db.database, StoreOptions::default()).await?;
            let loaded = incidentd::server::load_seeds(&store, &seed_dir(dir)).await;
            store.close().await;
            loaded?;
        }
        Command::Backup { path, db } => {
            Store::backup(&db.database, &path).await?;
            tracing::info!(database = %incidentd::store::redacted(&db.database), backup = %path.display(), "backup written");
        }
        Command::Migrate { db } => {
            Store::migrate(&db.database).await?;
            tracing::info!(database = %incidentd::store::redacted(&db.database), "database migrated");
        }
        Command::Serve(args) => {
            if let Some(addr) = args.metrics_listen {
                incidentd::metrics::install(addr)?;
                tracing::info!(%addr, "metrics at http://{addr}/metrics");
            }
            let mut config = Config::from_args(&args)?;
            config.seed_dir = args.seed.then(|| seed_dir(args.seed_dir.clone()));
            let server = Server::start(config).await?;
            tracing::info!(addr = %server.addr(), database = %incidentd::store::redacted(&args.db.database), "incidentd serving");
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

//! A real server on a loopback port over a temporary SQLite file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use incident_client::tonic::transport::Channel;
use incident_client::{
    ActionItemServiceClient, ComponentServiceClient, IncidentServiceClient, TimelineServiceClient,
};
use incidentd::auth::Tokens;
use incidentd::server::{Config, Server, TlsFiles};
use tempfile::TempDir;

use super::db::{self, DatabaseFile, DbSnapshot};

/// Tuning of a test server; what is not set here keeps the server's default.
#[derive(Clone, Debug)]
pub struct Options {
    pub live_buffer: usize,
    pub max_subscribers: usize,
    /// Seeds to load at start (`serve --seed-dir`), e.g. [`seeds_dir()`].
    pub seed_dir: Option<PathBuf>,
    /// Bearer tokens; `None` serves open, on loopback only.
    pub tokens: Option<Arc<Tokens>>,
    pub tls: Option<TlsFiles>,
    pub max_concurrent_requests: Option<usize>,
    /// How long a call's request message may take to arrive.
    pub request_read_timeout: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            live_buffer: 4096,
            max_subscribers: 64,
            seed_dir: None,
            tokens: None,
            tls: None,
            max_concurrent_requests: None,
            request_read_timeout: None,
        }
    }
}

/// The repository's `seeds/` folder.
pub fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds")
}

/// Starts a server listening on `listen` over the database file `database`.
/// The one place the tests build a server's `Config`.
pub async fn start_server(
    listen: &str,
    database: &Path,
    options: &Options,
) -> anyhow::Result<Server> {
    let mut config = Config::new(
        listen.parse().expect("listen address"),
        database.display().to_string(),
    );
    config.store.live_buffer = options.live_buffer;
    config.limits.max_subscribers = options.max_subscribers;
    config.seed_dir = options.seed_dir.clone();
    config.tokens = options.tokens.clone();
    config.tls = options.tls.clone();
    if let Some(n) = options.max_concurrent_requests {
        config.limits.max_concurrent_requests = n;
    }
    if let Some(t) = options.request_read_timeout {
        config.limits.request_read_timeout = t;
    }
    Server::start(config).await
}

/// A running server with its database file.
pub struct TestServer {
    pub server: Option<Server>,
    pub dir: TempDir,
    pub db: PathBuf,
    pub url: String,
    pub options: Options,
}

impl TestServer {
    /// Starts a server on a fresh database.
    pub async fn start() -> TestServer {
        Self::start_with(Options::default()).await
    }

    /// Starts a server on a fresh database with non-default tuning.
    pub async fn start_with(options: Options) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("incidentd.db");
        let server = start_server("127.0.0.1:0", &db, &options)
            .await
            .expect("server starts");
        let url = format!("http://{}", server.addr());
        TestServer {
            server: Some(server),
            dir,
            db,
            url,
            options,
        }
    }

    /// Stops the server (draining it) and starts a new one on the same file
    /// and the same address, so open channels reconnect to it.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// Stops the server (draining it).
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.expect("stop");
        }
    }

    /// Starts the server again on the same file and address.
    pub async fn start_again(&mut self) {
        let server = start_server(&self.addr().to_string(), &self.db, &self.options)
            .await
            .expect("server starts again");
        self.url = format!("http://{}", server.addr());
        self.server = Some(server);
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.url
            .trim_start_matches("http://")
            .parse()
            .expect("address")
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    /// A lazily connecting channel: it reconnects after a restart.
    pub fn lazy_channel(&self) -> Channel {
        Channel::from_shared(self.url.clone())
            .expect("url")
            .connect_lazy()
    }

    pub async fn incidents(&self) -> IncidentServiceClient<Channel> {
        IncidentServiceClient::new(self.channel().await)
    }

    pub async fn components(&self) -> ComponentServiceClient<Channel> {
        ComponentServiceClient::new(self.channel().await)
    }

    pub async fn timeline(&self) -> TimelineServiceClient<Channel> {
        TimelineServiceClient::new(self.channel().await)
    }

    pub async fn action_items(&self) -> ActionItemServiceClient<Channel> {
        ActionItemServiceClient::new(self.channel().await)
    }

    /// Every row of every table, read straight from the database file.
    pub async fn snapshot(&self) -> DbSnapshot {
        db::snapshot(&self.db).await
    }

    /// Asserts that the database holds exactly the rows of `before`.
    pub async fn assert_unchanged(&self, before: &DbSnapshot, what: &str) {
        let after = self.snapshot().await;
        if let Some(diff) = before.diff(&after) {
            panic!("{what}: the database changed:\n{diff}");
        }
    }

    /// Number of rows of one table.
    pub async fn count(&self, table: &str) -> i64 {
        db::count(&self.db, table).await
    }
}

impl DatabaseFile for TestServer {
    fn database(&self) -> &Path {
        &self.db
    }
}

//! A real server on a loopback port over a database of its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use incident_client::tonic::transport::Channel;
use incident_client::{
    ActionItemServiceClient, ComponentServiceClient, IncidentServiceClient, TimelineServiceClient,
};
use incidentd::auth::Tokens;
use incidentd::server::{Config, Server, TlsFiles};

use super::db::{Backend, DbSnapshot, TestDb, WithDatabase};

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
    /// The backend of the server's database; `None` takes the run's
    /// (`INCIDENTD_TEST_BACKEND`). A test of SQLite itself sets `Sqlite`.
    pub backend: Option<Backend>,
    /// SQLite: pages the WAL may hold before the writer starts it over.
    pub wal_pages: Option<i32>,
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
            backend: None,
            wal_pages: None,
        }
    }
}

/// The repository's `seeds/` folder.
pub fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds")
}

/// Starts a server listening on `listen` over `database` (a SQLite file's
/// path or a database's URL, as `--database` takes it, e.g.
/// [`TestDb::as_str`]). The one place the tests build a server's `Config`.
pub async fn start_server(
    listen: &str,
    database: &str,
    options: &Options,
) -> anyhow::Result<Server> {
    let mut config = Config::new(listen.parse().expect("listen address"), database);
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
    if let Some(pages) = options.wal_pages {
        config.store.wal_pages = pages;
    }
    Server::start(config).await
}

/// A running server with its database. The server is dropped before the
/// database, whose drop (on PostgreSQL) ends whatever connections are left.
pub struct TestServer {
    pub server: Option<Server>,
    pub db: TestDb,
    pub url: String,
    pub options: Options,
}

impl TestServer {
    /// Starts a server on a fresh database, on the run's backend.
    pub async fn start() -> TestServer {
        Self::start_with(Options::default()).await
    }

    /// Starts a server on a fresh SQLite file whatever the run's backend, for
    /// a test of SQLite itself.
    pub async fn start_sqlite() -> TestServer {
        Self::start_with(Options {
            backend: Some(Backend::Sqlite),
            ..Options::default()
        })
        .await
    }

    /// Starts a server on a fresh database with non-default tuning.
    pub async fn start_with(options: Options) -> TestServer {
        let db = match options.backend {
            Some(b) => TestDb::create_on(b).await,
            None => TestDb::create().await,
        };
        let server = start_server("127.0.0.1:0", db.as_str(), &options)
            .await
            .unwrap_or_else(|e| panic!("server starts on {db:?}: {e:#}"));
        let url = format!("http://{}", server.addr());
        TestServer {
            server: Some(server),
            db,
            url,
            options,
        }
    }

    /// Stops the server (draining it) and starts a new one on the same
    /// database and the same address, so open channels reconnect to it.
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

    /// Starts the server again on the same database and address.
    pub async fn start_again(&mut self) {
        let server = start_server(&self.addr().to_string(), self.db.as_str(), &self.options)
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

    /// Every row of every table, read straight from the database.
    pub async fn snapshot(&self) -> DbSnapshot {
        self.db.snapshot().await
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
        self.db.count(table).await
    }
}

impl WithDatabase for TestServer {
    fn database(&self) -> &TestDb {
        &self.db
    }
}

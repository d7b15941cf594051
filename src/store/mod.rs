//! Storage through sqlx: SQLite (a file, the embedded default) or PostgreSQL
//! (one database that several replicas share). One writer task per process
//! owns its write connection and commits requests in groups; reads use a pool.

pub mod action_items;
pub mod audience;
mod batch;
mod checkpoint;
pub mod components;
pub mod db;
pub mod events;
pub mod files;
pub mod incidents;
mod lease;
pub mod notes;
pub mod page_cache;
pub mod request_ids;
pub mod seeds;
mod statement_timeout;
mod tail;
#[cfg(test)]
pub(crate) mod testing;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use rand::RngCore;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, PgConnection, SqliteConnection};
use tokio::sync::watch;

pub use batch::{ComponentRef, Needs, Tx};
pub use db::{Conn, Dialect};
use lease::Lease;
use tail::Tail;
pub use writer::{Command, WriteCtx, WriteFuture};
use writer::{Publisher, WriteConnections, Writer};

use crate::config::StoreArgs;
use crate::domain::Time;
use crate::error::{Error, Result};
use crate::hub::Hub;
use request_ids::RequestKey;

/// How long a request_id record is kept: a retry within this window gets the
/// first response back (AIP-155 asks for at least a day).
pub const REQUEST_ID_RETENTION: chrono::TimeDelta = chrono::TimeDelta::hours(24);
const REQUEST_ID_PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// Longest string or blob a read connection makes (SQLite's default is
/// 1,000,000,000 bytes): a batch of the log read as one value stays under it,
/// or is read a few rows at a time (see `events::list_stored`), so one reader
/// never holds more than this of a batch.
const READ_VALUE_MAX_BYTES: i32 = 32 * 1024 * 1024;

/// Sets the longest string or blob `conn` makes; past it a statement fails
/// with SQLITE_TOOBIG.
async fn limit_value_length(conn: &mut SqliteConnection, max: i32) -> sqlx::Result<()> {
    with_raw_handle(conn, |db| {
        // SAFETY: `db` is open and runs no statement meanwhile.
        unsafe { libsqlite3_sys::sqlite3_limit(db, libsqlite3_sys::SQLITE_LIMIT_LENGTH, max) };
    })
    .await
}

/// Runs `f` with the connection's raw SQLite handle, for the few settings
/// sqlx has no call for. The handle is locked meanwhile: the connection is
/// open and runs no statement.
async fn with_raw_handle<R>(
    conn: &mut SqliteConnection,
    f: impl FnOnce(*mut libsqlite3_sys::sqlite3) -> R,
) -> sqlx::Result<R> {
    let mut handle = conn.lock_handle().await?;
    Ok(f(handle.as_raw_handle().as_ptr()))
}

/// Rows per multi-row statement: the widest table written so (incidents, 11
/// columns) stays well under SQLite's 32,766 bound variables.
const ROWS_PER_STATEMENT: usize = 1000;

/// Tuning of the store: the settings of the command line, where the defaults live.
pub type StoreOptions = StoreArgs;

/// The database: a writer for changes, a pool for reads.
#[derive(Clone)]
pub struct Store {
    read: ReadPool,
    writer: Writer,
    page_token_key: [u8; 32],
    head: watch::Receiver<u64>,
    hub: Hub,
    /// On PostgreSQL, what feeds the hub with every replica's commits.
    tail: Option<Tail>,
    /// Whether this process runs the background work.
    lease: Lease,
}

/// The read connections of either database (on PostgreSQL, with how to
/// open the other connections a replica keeps).
#[derive(Clone)]
enum ReadPool {
    Sqlite(SqlitePool),
    Postgres(PgPool, Box<PgConnectOptions>),
}

/// Where `--database` points.
enum Location {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

/// Reads `--database`: a `postgres://` (or `postgresql://`) URL, or a path or
/// `sqlite:` URL.
fn location(database: &str) -> Result<Location> {
    match database.split_once("://") {
        Some(("postgres" | "postgresql", _)) => {
            let opts = PgConnectOptions::from_str(database)
                .map_err(|e| Error::Internal(format!("bad database URL: {e}")))?;
            Ok(Location::Postgres(
                opts.log_statements(tracing::log::LevelFilter::Trace),
            ))
        }
        Some((scheme, _)) if scheme != "sqlite" => {
            // Taken as a path, it would quietly make a SQLite file named after the URL.
            Err(Error::Internal(format!(
                "--database {scheme}://...: give a file path or sqlite: URL (SQLite), or a postgres:// URL"
            )))
        }
        _ => Ok(Location::Sqlite(connect_options(database)?)),
    }
}

/// `--database` as it may be logged: a URL's password replaced by `***`.
pub fn redacted(database: &str) -> String {
    let Some((scheme, rest)) = database.split_once("://") else {
        return database.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => database.to_owned(),
        },
        None => database.to_owned(),
    }
}

/// Turns `--database` (a path or a `sqlite:` URL) into connect options.
fn connect_options(database: &str) -> Result<SqliteConnectOptions> {
    let base = if database.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(database)
            .map_err(|e| Error::Internal(format!("bad database URL: {e}")))?
    } else {
        SqliteConnectOptions::new().filename(Path::new(database))
    };
    Ok(base
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // Every acknowledged commit is on disk: the WAL is fsynced at commit.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5))
        // Checkpoints run beside the writer (see `checkpoint`), not
        // inside whichever commit crosses the threshold.
        .pragma("wal_autocheckpoint", "0")
        // Page cache per connection, in KiB: the writer's is the big one.
        .pragma("cache_size", "-32768")
        .log_statements(tracing::log::LevelFilter::Trace))
}

impl Store {
    /// Opens (creating if needed) and migrates the database, then starts the writer.
    pub async fn open(database: &str, options: StoreOptions) -> Result<Store> {
        match location(database)? {
            Location::Sqlite(opts) => Self::open_sqlite(database, opts, options).await,
            Location::Postgres(opts) => Self::open_postgres(opts, options).await,
        }
    }

    async fn open_sqlite(
        database: &str,
        opts: SqliteConnectOptions,
        options: StoreOptions,
    ) -> Result<Store> {
        let mut conn = connect_migrated(database, &opts).await?;
        let lap = checkpoint::Lap::new(options.wal_pages);
        lap.watch(&mut conn).await?;
        let statement_timeout = options.statement_timeout;
        let read = SqlitePoolOptions::new()
            .max_connections(options.read_connections)
            .min_connections(1)
            // A read that cannot get a connection soon is refused (OVERLOADED)
            // rather than queued behind expensive ones.
            .acquire_timeout(options.read_queue_timeout)
            // Each connection carries its statement timeout, installed once;
            // connections are kept for the life of the pool.
            .max_lifetime(None)
            .idle_timeout(None)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    statement_timeout::install(conn, statement_timeout).await?;
                    limit_value_length(conn, READ_VALUE_MAX_BYTES).await
                })
            })
            // Readers share the OS page cache; a small cache each keeps memory
            // bounded whatever the pool size.
            .connect_with(opts.clone().read_only(true).pragma("cache_size", "-4096"))
            .await?;
        let store = Self::start(
            conn.into(),
            ReadPool::Sqlite(read),
            Some(lap.clone()),
            options,
        )
        .await?;
        checkpoint::spawn(
            SqliteConnection::connect_with(&opts).await?,
            store.head.clone(),
            lap,
        );
        Ok(store)
    }

    async fn open_postgres(opts: PgConnectOptions, options: StoreOptions) -> Result<Store> {
        let mut conn = PgConnection::connect_with(&opts).await?;
        // sqlx holds an advisory lock while it migrates: replicas starting
        // together migrate once.
        migrate_postgres(&mut conn).await?;
        let read = PgPoolOptions::new()
            .max_connections(options.read_connections)
            .min_connections(1)
            .acquire_timeout(options.read_queue_timeout)
            // The server stops a read past the statement timeout (57014).
            .connect_with(with_timeout(
                &opts,
                "statement_timeout",
                options.statement_timeout,
            ))
            .await?;
        Self::start(
            conn.into(),
            ReadPool::Postgres(read, Box::new(opts)),
            None,
            options,
        )
        .await
    }

    /// Starts the store on a migrated database: `conn` becomes the writer's
    /// (on SQLite, with the checkpointer's `lap`).
    async fn start(
        mut conn: Conn,
        read: ReadPool,
        lap: Option<checkpoint::Lap>,
        options: StoreOptions,
    ) -> Result<Store> {
        let postgres = match &read {
            ReadPool::Sqlite(_) => None,
            ReadPool::Postgres(_, opts) => Some(PgConnectOptions::clone(opts)),
        };
        let page_token_key = load_or_create_key(&mut conn).await?;
        let encoded = events::encode_legacy(&mut conn).await?;
        if encoded > 0 {
            tracing::info!(
                events = encoded,
                "encoded the events of an older log in their wire form"
            );
        }
        let head = events::head(&mut conn).await?;
        let (head_tx, head_rx) = watch::channel(head);
        let names = components::all_names(&mut conn).await?;
        let hub = Hub::new(
            options.live_buffer,
            options.incident_cache,
            crate::component_names::ComponentNames::new(names),
        );
        let tail = match &read {
            ReadPool::Sqlite(_) => None,
            ReadPool::Postgres(_, opts) => Some(Tail::new(
                PgConnectOptions::clone(opts),
                hub.clone(),
                head_tx.clone(),
            )),
        };
        let publisher = tail.clone().map_or(Publisher::Direct, Publisher::Tail);
        let conns = match &postgres {
            None => {
                // A group's multi-row statements keep a statement journal (the
                // pages they change, to undo one that fails halfway): in
                // memory, not a temporary file written page by page. Set
                // after the migrations, whose journals may be a whole table.
                db::query("PRAGMA temp_store = memory")
                    .execute(&mut conn)
                    .await?;
                WriteConnections::Sqlite { conn, lap }
            }
            Some(opts) => {
                // The writer opens its own on its thread; this one has done
                // its work (migrations, the start-up reads).
                let _ = conn.close().await;
                // A write transaction holds row locks and, while it writes
                // the log, the lock every replica's groups queue for: one
                // left waiting on a stopped or cut-off replica is ended by the
                // database rather than holding every replica's writes.
                WriteConnections::Postgres {
                    opts: Box::new(with_timeout(
                        opts,
                        "idle_in_transaction_session_timeout",
                        options.write_idle_timeout,
                    )),
                    count: options.write_connections,
                }
            }
        };
        let writer = Writer::start(
            conns,
            options.max_batch,
            options.incident_cache,
            writer::Fanout {
                head: head_tx,
                hub: hub.clone(),
                publisher,
            },
        )
        .await?;
        if let Some(t) = &tail {
            t.spawn();
        }
        let lease = match postgres {
            None => Lease::sole(),
            Some(opts) => Lease::contend(opts, hub.shutdown_signal()),
        };
        let store = Store {
            read,
            writer,
            page_token_key,
            head: head_rx,
            hub,
            tail,
            lease,
        };
        store.spawn_request_id_pruner();
        Ok(store)
    }

    /// How much the database takes on disk, in bytes: the SQLite file with
    /// its WAL and shared-memory files, or the PostgreSQL database.
    pub async fn size_bytes(&self) -> Result<u64> {
        match &self.read {
            ReadPool::Sqlite(pool) => {
                let path = pool.connect_options().get_filename().to_owned();
                let mut bytes = 0u64;
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    if let Ok(m) = tokio::fs::metadata(&p).await {
                        bytes += m.len();
                    }
                }
                Ok(bytes)
            }
            ReadPool::Postgres(..) => {
                let mut conn = self.reader().await?;
                let bytes: i64 = db::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(&mut conn)
                    .await?;
                Ok(bytes.max(0) as u64)
            }
        }
    }

    /// Which database this store is on.
    pub fn dialect(&self) -> Dialect {
        match self.read {
            ReadPool::Sqlite(_) => Dialect::Sqlite,
            ReadPool::Postgres(..) => Dialect::Postgres,
        }
    }

    /// Deletes request_id records past their retention, in the background,
    /// through the writer like any other write, on the one replica holding
    /// the background lease. Ends when the store closes.
    fn spawn_request_id_pruner(&self) {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REQUEST_ID_PRUNE_INTERVAL);
            loop {
                tick.tick().await;
                if !store.lease.held() {
                    continue;
                }
                // One chunk per write job, so other writes go between them.
                loop {
                    let pruned = store
                        .write(|ctx| {
                            Box::pin(async move {
                                let before = ctx.now() - REQUEST_ID_RETENTION;
                                request_ids::prune(ctx.conn(), before).await
                            })
                        })
                        .await;
                    match pruned {
                        Ok(n) => {
                            if n > 0 {
                                tracing::debug!(pruned = n, "pruned expired request_id records");
                            }
                            // A short chunk: nothing older is left.
                            if n < request_ids::PRUNE_CHUNK as u64 {
                                break;
                            }
                        }
                        // The store is closing: the writer takes no more work.
                        Err(_) if store.writer.is_closed() => return,
                        // A failed round (a lost connection, a deadlock lost
                        // to a write group) is tried again at the next tick.
                        Err(e) => {
                            tracing::warn!(error = %e, "pruning request_id records failed");
                            break;
                        }
                    }
                }
            }
        });
    }

    /// Applies migrations only (the `migrate` command).
    pub async fn migrate(database: &str) -> Result<()> {
        match location(database)? {
            Location::Sqlite(opts) => connect_migrated(database, &opts).await?.close().await?,
            Location::Postgres(opts) => {
                let mut conn = PgConnection::connect_with(&opts).await?;
                migrate_postgres(&mut conn).await?;
                conn.close().await?;
            }
        }
        Ok(())
    }

    /// Writes a consistent copy of a (possibly live) database to `dest` with
    /// `VACUUM INTO`: a snapshot as of one instant, compacted, that `serve
    /// --database dest` starts from. Refuses any existing path, a symlink
    /// (even dangling) included; the copy is created with mode 0600.
    pub async fn backup(database: &str, dest: &Path) -> Result<()> {
        let Location::Sqlite(opts) = location(database)? else {
            return Err(Error::Internal(
                "backup copies a SQLite database; back up PostgreSQL with pg_dump or its point-in-time recovery".into(),
            ));
        };
        files::check_backup_destination(dest).map_err(Error::Internal)?;
        // SQLite takes the name as text: a lossy one would be another file.
        let name = dest
            .to_str()
            .ok_or_else(|| Error::Internal(format!("{} is not valid UTF-8", dest.display())))?;
        let mut conn = SqliteConnection::connect_with(&opts.create_if_missing(false)).await?;
        // Created here, 0600 and exclusively (O_EXCL follows no symlink, so
        // nothing can slip in after the check); VACUUM INTO fills an empty file.
        files::create_new_private(dest)
            .map_err(|e| Error::Internal(format!("creating {}: {e}", dest.display())))?;
        let written = sqlx::query("VACUUM INTO ?")
            .bind(name)
            .execute(&mut conn)
            .await;
        if let Err(e) = written {
            let _ = std::fs::remove_file(dest);
            return Err(e.into());
        }
        conn.close().await?;
        Ok(())
    }

    /// Runs `job` inside the next group commit and returns its result once the
    /// group is durably committed. A job that fails is rolled back alone.
    pub async fn write<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut WriteCtx) -> WriteFuture<'c, T> + Send + 'static,
    {
        self.writer.submit(job).await
    }

    /// Runs a command in the next group commit, once per request id (a retry
    /// gets the first answer; another request under the same id is
    /// REQUEST_ID_REUSED), and returns its output once durably committed.
    pub async fn execute<C: Command>(
        &self,
        key: Option<RequestKey>,
        command: C,
    ) -> Result<C::Output> {
        self.writer.execute(key, command).await
    }

    /// Statements run on the write connection since the store opened.
    pub fn statements_written(&self) -> u64 {
        self.writer.statements()
    }

    /// Write requests waiting for the writer.
    pub fn writes_queued(&self) -> usize {
        self.writer.queued()
    }

    /// A read connection from the pool, or OVERLOADED if none frees up
    /// within the read queue timeout.
    pub async fn reader(&self) -> Result<Conn> {
        Ok(match &self.read {
            ReadPool::Sqlite(p) => p.acquire().await?.into(),
            ReadPool::Postgres(p, _) => p.acquire().await?.into(),
        })
    }

    /// A read connection from the pool, however long that takes: for work
    /// already accepted (a subscription catching up), which has nobody to
    /// send OVERLOADED to and retry. Each attempt waits the queue timeout.
    pub async fn reader_waiting(&self) -> Result<Conn> {
        loop {
            match self.reader().await {
                Err(Error::Overloaded) => continue,
                other => return other,
            }
        }
    }

    /// Key that signs page tokens; kept in the database so tokens outlive restarts.
    pub fn page_token_key(&self) -> &[u8; 32] {
        &self.page_token_key
    }

    /// The fan-out of committed events.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Sequence of the last committed event this process has published
    /// (on PostgreSQL, the tail's position in the shared log).
    pub fn head_sequence(&self) -> u64 {
        *self.head.borrow()
    }

    /// The head once it reaches `sequence`, or as it is after `within`: on
    /// PostgreSQL another replica may have committed `sequence` a moment
    /// before this one's tail read it, so a subscriber failing over (or
    /// subscribing here right after writing elsewhere) is not refused for
    /// this replica's lag. On SQLite the head is the log's.
    pub async fn head_reaching(&self, sequence: u64, within: Duration) -> u64 {
        let Some(tail) = &self.tail else {
            return self.head_sequence();
        };
        let mut head = self.head.clone();
        tail.wake();
        let reached = tokio::time::timeout(within, head.wait_for(|h| *h >= sequence)).await;
        match reached {
            Ok(Ok(h)) => *h,
            _ => self.head_sequence(),
        }
    }

    /// Stops accepting writes, finishes those queued, and closes the database.
    pub async fn close(&self) {
        // Ends the tail and the lease too (PostgreSQL).
        self.hub.shut_down();
        self.writer.close().await;
        match &self.read {
            ReadPool::Sqlite(p) => p.close().await,
            ReadPool::Postgres(p, _) => p.close().await,
        }
    }
}

/// The write connection to `database` (whose options are `opts`), its file
/// created owner-only if missing, with every migration applied.
async fn connect_migrated(database: &str, opts: &SqliteConnectOptions) -> Result<SqliteConnection> {
    // Owner-only, and so are the -wal and -shm SQLite derives from it.
    files::prepare_database_file(database, opts).map_err(|e| Error::Internal(e.to_string()))?;
    let mut conn = SqliteConnection::connect_with(opts).await?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&mut conn)
        .await
        .map_err(|e| Error::Internal(format!("migration failed: {e}")))?;
    Ok(conn)
}

/// Applies the PostgreSQL migrations. sqlx holds an advisory lock while it
/// migrates, so replicas starting together migrate once.
async fn migrate_postgres(conn: &mut PgConnection) -> Result<()> {
    sqlx::migrate!("./migrations/postgres")
        .run(conn)
        .await
        .map_err(|e| Error::Internal(format!("migration failed: {e}")))
}

/// The key that signs page tokens. Created once, by whichever process opens
/// the database first, and never replaced by one starting later: a page token
/// from one replica is good on every other.
async fn load_or_create_key(conn: &mut Conn) -> Result<[u8; 32]> {
    let mut fresh = [0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    db::query(
        "INSERT INTO meta (key, value) VALUES ('page_token_key', $1) ON CONFLICT (key) DO NOTHING",
    )
    .bind(fresh.to_vec())
    .execute(conn)
    .await?;
    let stored: Vec<u8> = db::query_scalar("SELECT value FROM meta WHERE key = 'page_token_key'")
        .fetch_one(conn)
        .await?;
    <[u8; 32]>::try_from(stored.as_slice()).map_err(|_| {
        Error::Internal(format!(
            "the stored page token key has {} bytes, not 32",
            stored.len()
        ))
    })
}

/// Position after the last item of a page, in `create_time desc, id desc` order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    pub create_time: i64,
    pub id: String,
}

/// Stored form of a time: nanoseconds since the epoch.
pub(crate) fn to_nanos(t: Time) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// A time from its stored form.
pub(crate) fn from_nanos(n: i64) -> Time {
    chrono::DateTime::from_timestamp_nanos(n)
}

/// Whether `e` is a statement stopped by the statement timeout: SQLite's
/// SQLITE_INTERRUPT, PostgreSQL's query_canceled (57014).
pub(crate) fn is_interrupted(e: &sqlx::Error) -> bool {
    has_sqlite_code(e, libsqlite3_sys::SQLITE_INTERRUPT)
        || matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("57014"))
}

/// Whether `e` says the database connection is gone or cannot be made (a
/// network error, a PostgreSQL shutdown, failover or terminated backend):
/// a retry, on a new connection, may well succeed.
pub(crate) fn is_connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| ends_the_session(&c)),
        _ => false,
    }
}

/// `opts` with one of PostgreSQL's timeout settings for the session, in
/// milliseconds (the flags that set them are bounded to what it accepts).
fn with_timeout(opts: &PgConnectOptions, setting: &str, timeout: Duration) -> PgConnectOptions {
    let ms = timeout.as_millis().max(1).to_string();
    opts.clone().options([(setting, ms.as_str())])
}

/// Whether PostgreSQL's error `code` (SQLSTATE) means the session is over:
/// class 08 (connection exception), 57P01-57P03 (admin shutdown, crash
/// shutdown, cannot connect now), 25P03 and 57P05 (ended for idling in a
/// transaction, or at all).
fn ends_the_session(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "57P05" | "25P03")
}

/// Whether `e` is SQLite's answer to a string or blob past the connection's
/// length limit (SQLITE_TOOBIG).
pub(crate) fn is_too_big(e: &sqlx::Error) -> bool {
    has_sqlite_code(e, libsqlite3_sys::SQLITE_TOOBIG)
}

fn has_sqlite_code(e: &sqlx::Error, code: i32) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some(code.to_string().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write session PostgreSQL ended (`--write-idle-timeout` among the
    /// reasons) is a lost connection, answered UNAVAILABLE: retry. Errors
    /// of the statement itself are not.
    #[test]
    fn sessions_the_database_ended_count_as_lost_connections() {
        for code in ["25P03", "57P05", "57P01", "08006", "08003"] {
            assert!(ends_the_session(code), "{code}");
        }
        for code in ["23505", "40001", "40P01", "57014", "25P02"] {
            assert!(!ends_the_session(code), "{code}");
        }
    }

    #[test]
    fn a_database_url_of_another_kind_is_refused() {
        for url in ["mysql://x", "http://127.0.0.1/db"] {
            let Err(e) = location(url) else {
                panic!("{url} accepted")
            };
            assert!(e.to_string().contains("postgres://"), "{e}");
        }
        for url in ["sqlite://incidentd.db", "data/incidentd.db"] {
            assert!(matches!(location(url), Ok(Location::Sqlite(_))), "{url}");
        }
        for url in ["postgres://postgres@127.0.0.1/test", "postgresql://h/db"] {
            assert!(matches!(location(url), Ok(Location::Postgres(_))), "{url}");
        }
    }

    #[test]
    fn a_logged_database_url_hides_its_password() {
        assert_eq!(
            redacted("postgres://app:s3cr:et@db.internal:5432/incidents?sslmode=require"),
            "postgres://app:***@db.internal:5432/incidents?sslmode=require"
        );
        for kept in [
            "postgres://app@db/incidents",
            "./incidentd.db",
            "sqlite://data/x.db",
        ] {
            assert_eq!(redacted(kept), kept);
        }
    }

    /// A reader that cannot get a connection is refused (OVERLOADED, a retry
    /// with backoff) once the queue timeout passes, instead of waiting behind
    /// whoever holds the pool.
    #[tokio::test]
    async fn a_read_that_cannot_get_a_connection_is_refused_as_overloaded() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db").display().to_string();
        let store = Store::open(
            &db,
            StoreOptions {
                read_connections: 1,
                read_queue_timeout: Duration::from_millis(100),
                ..StoreOptions::default()
            },
        )
        .await
        .unwrap();
        let held = store.reader().await.unwrap();
        let refused = tokio::time::timeout(Duration::from_secs(60), store.reader())
            .await
            .expect("refused, not queued forever");
        assert!(
            matches!(refused, Err(Error::Overloaded)),
            "{:?}",
            refused.err()
        );
        drop(held);
        assert!(store.reader().await.is_ok(), "served once the pool is free");
        store.close().await;
    }
}

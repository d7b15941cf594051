//! The test's database, on the backend the run asks for, and read straight
//! with sqlx, past the server.
//!
//! `INCIDENTD_TEST_BACKEND` picks the backend of a whole run: `sqlite` (or
//! unset) gives each server a temporary SQLite file, `postgres` a fresh
//! database of its own on the server `INCIDENTD_TEST_POSTGRES` names, so
//! that the same tests hold for both. A test about SQLite itself (its file,
//! its backup) asks for SQLite whatever the run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, PgConnection, SqliteConnection};
use tempfile::TempDir;

/// The backend of the whole run, unless a test asks for one.
pub const BACKEND_VAR: &str = "INCIDENTD_TEST_BACKEND";
/// The PostgreSQL server the test databases are created on, as a URL to a
/// database the tests may connect to (never write to): e.g.
/// `postgres://postgres@127.0.0.1:5432/test`.
pub const POSTGRES_VAR: &str = "INCIDENTD_TEST_POSTGRES";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend `INCIDENTD_TEST_BACKEND` names. A typo panics rather than
    /// quietly running the suite on SQLite and passing for PostgreSQL.
    pub fn from_env() -> Backend {
        match std::env::var(BACKEND_VAR).as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
            Ok("postgres") => Backend::Postgres,
            Ok(other) => panic!("{BACKEND_VAR}={other:?}: give sqlite or postgres"),
        }
    }
}

/// `INCIDENTD_TEST_POSTGRES`, if set.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var(POSTGRES_VAR).ok().filter(|u| !u.is_empty())
}

/// A server whose database the tests read: a `TestServer` or a `Daemon`.
pub trait WithDatabase {
    fn database(&self) -> &TestDb;
}

/// A database of one test, gone with its last handle: a SQLite file in a
/// temporary folder, or a PostgreSQL database created for it (and dropped,
/// connections and all). Clones share it, so a restarted server or daemon
/// can be given the same one.
#[derive(Clone)]
pub struct TestDb(Arc<Kind>);

enum Kind {
    Sqlite {
        path: PathBuf,
        database: String,
        _dir: TempDir,
    },
    Postgres(PgDatabase),
}

/// Long enough for a loaded machine, short enough that a test whose
/// PostgreSQL went away ends instead of hanging in a destructor.
const POSTGRES_TIMEOUT: Duration = Duration::from_secs(30);

struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl Drop for PgDatabase {
    /// Drop is sync and may run on a runtime's thread, even while a test
    /// unwinds: the DROP DATABASE runs on a thread of its own, on a runtime
    /// of its own, and a failure is reported, never a panic.
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                tokio::time::timeout(POSTGRES_TIMEOUT, drop_database(&admin, &name)).await?
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test database {} not dropped: {e:#}", self.name),
            Err(_) => eprintln!("test database {}: its drop panicked", self.name),
        }
    }
}

/// `WITH (FORCE)`: a server the test left running, or a daemon killed with
/// its connections still open, must not keep the database alive.
async fn drop_database(admin: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(admin).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        ident(name)
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await.ok();
    Ok(())
}

/// `admin` with its database (the URL's path) replaced by `name`, its user,
/// host and parameters kept.
pub fn postgres_url_of(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin, None),
    };
    let authority = base
        .find("://")
        .unwrap_or_else(|| panic!("{POSTGRES_VAR}={admin:?} is not a postgres:// URL"))
        + 3;
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut url = format!("{}/{name}", &base[..path]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// A quoted identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl TestDb {
    /// A database on the backend of the run.
    pub async fn create() -> TestDb {
        Self::create_on(Backend::from_env()).await
    }

    /// A database on `backend`, whatever the run's.
    pub async fn create_on(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => Self::sqlite(),
            Backend::Postgres => {
                let admin = postgres_admin_url().unwrap_or_else(|| {
                    panic!(
                        "{BACKEND_VAR}=postgres needs {POSTGRES_VAR}, the URL of a PostgreSQL \
                         server to create test databases on, e.g. \
                         postgres://postgres@127.0.0.1:5432/test"
                    )
                });
                Self::postgres(&admin).await
            }
        }
    }

    /// A fresh SQLite file in a temporary folder.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("incidentd.db");
        let database = path.to_str().expect("a UTF-8 temporary path").to_owned();
        TestDb(Arc::new(Kind::Sqlite {
            path,
            database,
            _dir: dir,
        }))
    }

    /// A fresh, empty database on the PostgreSQL server of `admin`, named so
    /// that no two tests (or runs) share one, and no other database is ever
    /// touched.
    pub async fn postgres(admin: &str) -> TestDb {
        let name = format!("incidentd_t_{}", uuid::Uuid::now_v7().simple());
        let create = async {
            let mut conn = PgConnection::connect(admin).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE {}",
                ident(&name)
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await.ok();
            anyhow::Ok(())
        };
        match tokio::time::timeout(POSTGRES_TIMEOUT, create).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("create the test database {name} on {admin}: {e:#}"),
            Err(_) => panic!("create the test database {name} on {admin}: timed out"),
        }
        TestDb(Arc::new(Kind::Postgres(PgDatabase {
            url: postgres_url_of(admin, &name),
            admin: admin.to_owned(),
            name,
        })))
    }

    /// The database as the server takes it (`--database`, `Config::new`,
    /// `Store::open`): the file's path, or the database's URL.
    pub fn as_str(&self) -> &str {
        match &*self.0 {
            Kind::Sqlite { database, .. } => database,
            Kind::Postgres(pg) => &pg.url,
        }
    }

    pub fn backend(&self) -> Backend {
        match &*self.0 {
            Kind::Sqlite { .. } => Backend::Sqlite,
            Kind::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite file, if the database is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &*self.0 {
            Kind::Sqlite { path, .. } => Some(path),
            Kind::Postgres(_) => None,
        }
    }

    /// The SQLite file, for a test that asked for SQLite.
    #[track_caller]
    pub fn sqlite_file(&self) -> &Path {
        self.sqlite_path().expect(
            "a SQLite file: start this test on Backend::Sqlite (e.g. TestServer::start_sqlite)",
        )
    }

    /// The PostgreSQL database's name, if the database is one.
    pub fn postgres_name(&self) -> Option<&str> {
        match &*self.0 {
            Kind::Sqlite { .. } => None,
            Kind::Postgres(pg) => Some(&pg.name),
        }
    }

    /// Every row of every table.
    pub async fn snapshot(&self) -> DbSnapshot {
        match &*self.0 {
            Kind::Sqlite { path, .. } => sqlite_snapshot(path).await,
            Kind::Postgres(pg) => postgres_snapshot(&pg.url).await,
        }
    }

    /// Number of rows of one table.
    pub async fn count(&self, table: &str) -> i64 {
        match &*self.0 {
            Kind::Sqlite { path, .. } => sqlite_count(path, table).await,
            Kind::Postgres(pg) => {
                let mut conn = PgConnection::connect(&pg.url)
                    .await
                    .expect("connect to the test database");
                let n = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT count(*) FROM {}",
                    ident(table)
                )))
                .fetch_one(&mut conn)
                .await
                .expect("count");
                conn.close().await.ok();
                n
            }
        }
    }
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestDb({:?}, {})", self.backend(), self.as_str())
    }
}

/// Every row of every table (the backend's own tables aside), each value
/// rendered as SQLite's `quote()` does (so 1, '1' and X'31' differ), the
/// rows of a table sorted. Two snapshots are equal when no row changed; a
/// snapshot is only ever compared with one of the same database.
#[derive(Clone, PartialEq, Eq)]
pub struct DbSnapshot(BTreeMap<String, Vec<Vec<String>>>);

impl DbSnapshot {
    /// What differs between `self` (before) and `after`, table by table;
    /// `None` when nothing does.
    pub fn diff(&self, after: &DbSnapshot) -> Option<String> {
        let mut out = String::new();
        let empty = Vec::new();
        let tables: std::collections::BTreeSet<&String> =
            self.0.keys().chain(after.0.keys()).collect();
        for t in tables {
            let (a, b) = (
                self.0.get(t).unwrap_or(&empty),
                after.0.get(t).unwrap_or(&empty),
            );
            if a == b {
                continue;
            }
            let _ = writeln!(out, "table {t}: {} rows before, {} after", a.len(), b.len());
            for r in a.iter().filter(|r| !b.contains(r)).take(5) {
                let _ = writeln!(out, "  - {}", r.join(", "));
            }
            for r in b.iter().filter(|r| !a.contains(r)).take(5) {
                let _ = writeln!(out, "  + {}", r.join(", "));
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// The rows of one table, as rendered.
    pub fn rows(&self, table: &str) -> Option<&[Vec<String>]> {
        self.0.get(table).map(Vec::as_slice)
    }
}

impl std::fmt::Debug for DbSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sizes: BTreeMap<&String, usize> = self.0.iter().map(|(t, r)| (t, r.len())).collect();
        write!(f, "DbSnapshot{sizes:?}")
    }
}

async fn open_read_only(db: &Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .expect("open the database read-only")
}

/// Reads every row of every table of the SQLite file `db`.
pub async fn sqlite_snapshot(db: &Path) -> DbSnapshot {
    let mut conn = open_read_only(db).await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
         ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    let mut out = BTreeMap::new();
    for t in tables {
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
            .bind(&t)
            .fetch_all(&mut conn)
            .await
            .expect("columns");
        let select = columns
            .iter()
            .map(|c| format!("quote({})", ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {select} FROM {}",
            ident(&t)
        )))
        .fetch_all(&mut conn)
        .await
        .expect("rows");
        out.insert(t, rendered(&rows, columns.len()));
    }
    conn.close().await.ok();
    DbSnapshot(out)
}

/// Rows whose every column the query rendered as text, sorted: a table as a
/// snapshot holds it.
fn rendered<R>(rows: &[R], columns: usize) -> Vec<Vec<String>>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut out: Vec<Vec<String>> = rows
        .iter()
        .map(|r| (0..columns).map(|i| r.get::<String, _>(i)).collect())
        .collect();
    out.sort();
    out
}

/// A PostgreSQL column rendered as SQLite's `quote()` renders its value:
/// numbers and booleans bare, text quoted, bytes as X'..', NULL as NULL; a
/// type the schema does not use yet as quoted text with its type, so that it
/// still differs from text.
fn postgres_quote(column: &str, data_type: &str) -> String {
    let c = ident(column);
    match data_type {
        "smallint" | "integer" | "bigint" | "numeric" | "real" | "double precision" | "boolean" => {
            format!("COALESCE({c}::text, 'NULL')")
        }
        "bytea" => format!("COALESCE('X''' || upper(encode({c}, 'hex')) || '''', 'NULL')"),
        "text" | "character varying" | "character" => format!("quote_nullable({c}::text)"),
        _ => format!("COALESCE(quote_literal({c}::text) || '::' || pg_typeof({c})::text, 'NULL')"),
    }
}

/// Reads every row of every table of schema `public` of the PostgreSQL
/// database at `url`.
async fn postgres_snapshot(url: &str) -> DbSnapshot {
    let mut conn = PgConnection::connect(url)
        .await
        .expect("connect to the test database");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
         ORDER BY table_name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    let mut out = BTreeMap::new();
    for t in tables {
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = $1
             ORDER BY ordinal_position",
        )
        .bind(&t)
        .fetch_all(&mut conn)
        .await
        .expect("columns");
        let select = columns
            .iter()
            .map(|(c, ty)| postgres_quote(c, ty))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {select} FROM public.{}",
            ident(&t)
        )))
        .fetch_all(&mut conn)
        .await
        .expect("rows");
        out.insert(t, rendered(&rows, columns.len()));
    }
    conn.close().await.ok();
    DbSnapshot(out)
}

/// Number of rows of one table of the SQLite file `db` (a test database or
/// a backup).
pub async fn sqlite_count(db: &Path, table: &str) -> i64 {
    let mut conn = open_read_only(db).await;
    let n = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {}",
        ident(table)
    )))
    .fetch_one(&mut conn)
    .await
    .expect("count");
    conn.close().await.ok();
    n
}

/// `PRAGMA integrity_check` of a SQLite file: "ok" when sound.
pub async fn integrity_check(db: &Path) -> String {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open db");
    let r: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .expect("integrity_check");
    conn.close().await.ok();
    r
}

//! The database file, read straight with sqlx, past the server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use sqlx::{Connection, SqliteConnection};

/// A server whose database file the tests read: a `TestServer` or a `Daemon`.
pub trait DatabaseFile {
    fn database(&self) -> &Path;
}

/// Every row of every table (SQLite's own `sqlite_*` tables aside), each
/// value as SQLite's `quote()` renders it (so 1, '1' and X'31' differ), the
/// rows of a table sorted. Two snapshots are equal when no row changed.
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

/// Reads every row of every table of `db`.
pub async fn snapshot(db: &Path) -> DbSnapshot {
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
            .map(|c| format!("quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {select} FROM \"{t}\"")))
            .fetch_all(&mut conn)
            .await
            .expect("rows");
        let mut rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                (0..columns.len())
                    .map(|i| sqlx::Row::get::<String, _>(r, i))
                    .collect()
            })
            .collect();
        rows.sort();
        out.insert(t, rows);
    }
    conn.close().await.ok();
    DbSnapshot(out)
}

/// Number of rows of one table.
pub async fn count(db: &Path, table: &str) -> i64 {
    let mut conn = open_read_only(db).await;
    let n = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut conn)
        .await
        .expect("count");
    conn.close().await.ok();
    n
}

/// `PRAGMA integrity_check` of a database file: "ok" when sound.
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

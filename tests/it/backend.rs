//! The harness's databases themselves: a PostgreSQL test database exists for
//! as long as a handle of it does and no longer, and a snapshot tells values
//! of different types apart on either backend; and PostgreSQL's schema keeps
//! the title index without a pending list. The PostgreSQL tests need
//! `INCIDENTD_TEST_POSTGRES` and are skipped (saying so) without it,
//! whatever `INCIDENTD_TEST_BACKEND` is.

use sqlx::{Connection, PgConnection};

use crate::support::{
    Backend, Options, POSTGRES_VAR, TestDb, TestServer, WithDatabase, postgres_admin_url,
    postgres_url_of,
};

/// `INCIDENTD_TEST_POSTGRES`, or `None` once the skip is said.
fn admin_url_or_skip() -> Option<String> {
    let admin = postgres_admin_url();
    if admin.is_none() {
        println!("skipped: {POSTGRES_VAR} is not set");
    }
    admin
}

async fn exists(admin: &str, name: &str) -> bool {
    let mut conn = PgConnection::connect(admin).await.expect("connect (admin)");
    let found = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .expect("pg_database");
    conn.close().await.ok();
    found
}

#[tokio::test]
async fn a_postgres_test_database_lives_as_long_as_a_handle_of_it() {
    let Some(admin) = admin_url_or_skip() else {
        return;
    };
    let db = TestDb::postgres(&admin).await;
    assert_eq!(db.backend(), Backend::Postgres);
    assert!(db.sqlite_path().is_none());
    let name = db
        .postgres_name()
        .expect("a PostgreSQL database")
        .to_owned();
    assert!(name.starts_with("incidentd_t_"), "{name}");
    assert!(exists(&admin, &name).await, "{name} created");

    // The server is given a URL of that database, and it starts empty.
    let mut conn = PgConnection::connect(db.as_str())
        .await
        .expect("connect to the test database");
    let current: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut conn)
        .await
        .expect("current_database");
    assert_eq!(current, name);
    assert_eq!(format!("{:?}", db.snapshot().await), "DbSnapshot{}");

    // A connection left open does not keep it alive; a clone does.
    let clone = db.clone();
    drop(db);
    assert!(exists(&admin, &name).await, "{name} kept by its clone");
    drop(clone);
    assert!(
        !exists(&admin, &name).await,
        "{name} dropped with its last handle"
    );
    assert!(
        conn.ping().await.is_err(),
        "the open connection was ended with it"
    );
}

#[tokio::test]
async fn dropping_a_postgres_test_database_already_gone_is_quiet() {
    let Some(admin) = admin_url_or_skip() else {
        return;
    };
    let db = TestDb::postgres(&admin).await;
    let name = db
        .postgres_name()
        .expect("a PostgreSQL database")
        .to_owned();
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("connect (admin)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .expect("drop behind the handle's back");
    conn.close().await.ok();
    within_drop(db).await;
    assert!(!exists(&admin, &name).await);
}

/// Drops `db` on a blocking thread, bounded: a drop that hung would fail the
/// test instead of the run.
async fn within_drop(db: TestDb) {
    crate::support::within(
        "the drop of a test database",
        tokio::task::spawn_blocking(move || drop(db)),
    )
    .await
    .expect("the drop does not panic");
}

#[tokio::test]
async fn a_postgres_snapshot_tells_1_and_text_1_and_bytes_1_apart() {
    let Some(admin) = admin_url_or_skip() else {
        return;
    };
    let db = TestDb::postgres(&admin).await;
    let mut conn = PgConnection::connect(db.as_str())
        .await
        .expect("connect to the test database");
    sqlx::raw_sql(
        "CREATE TABLE t (n BIGINT, s TEXT, b BYTEA, f BOOLEAN);
         INSERT INTO t VALUES (1, '1', '\\x31', true), (NULL, NULL, NULL, NULL),
                              (2, 'it''s', '\\x', false)",
    )
    .execute(&mut conn)
    .await
    .expect("a table of each type");
    conn.close().await.ok();

    let snapshot = db.snapshot().await;
    let rows = snapshot.rows("t").expect("table t");
    assert_eq!(
        rows,
        [
            ["1", "'1'", "X'31'", "true"],
            ["2", "'it''s'", "X''", "false"],
            ["NULL", "NULL", "NULL", "NULL"],
        ]
    );
    assert_eq!(db.count("t").await, 3);
    within_drop(db).await;
}

#[tokio::test]
async fn a_sqlite_snapshot_tells_1_and_text_1_and_bytes_1_apart() {
    let db = TestDb::create_on(Backend::Sqlite).await;
    let file = db.sqlite_file();
    let mut conn = <sqlx::SqliteConnection as Connection>::connect(&format!(
        "sqlite://{}?mode=rwc",
        file.display()
    ))
    .await
    .expect("create the file");
    sqlx::raw_sql(
        "CREATE TABLE t (v);
         INSERT INTO t VALUES (1), ('1'), (X'31'), (NULL)",
    )
    .execute(&mut conn)
    .await
    .expect("a table of each type");
    conn.close().await.ok();
    let snapshot = db.snapshot().await;
    assert_eq!(
        snapshot.rows("t").expect("table t"),
        [["'1'"], ["1"], ["NULL"], ["X'31'"]]
    );
    assert_eq!(db.count("t").await, 4);
}

#[test]
fn a_test_database_url_keeps_the_server_the_user_and_the_parameters() {
    for (admin, want) in [
        (
            "postgres://postgres@127.0.0.1:5432/test",
            "postgres://postgres@127.0.0.1:5432/incidentd_t_x",
        ),
        (
            "postgresql://u:p@db.example:6543/test?sslmode=disable",
            "postgresql://u:p@db.example:6543/incidentd_t_x?sslmode=disable",
        ),
        (
            "postgres://root@localhost",
            "postgres://root@localhost/incidentd_t_x",
        ),
        (
            "postgres://root@localhost/",
            "postgres://root@localhost/incidentd_t_x",
        ),
    ] {
        assert_eq!(postgres_url_of(admin, "incidentd_t_x"), want, "{admin}");
    }
}

/// ListIncidents' title search on PostgreSQL reads its trigram index with no
/// pending list of recent insertions to scan in full (GIN's fast update),
/// which made a search for a title no incident has take milliseconds at
/// 1,000,000 incidents.
#[tokio::test]
async fn the_postgres_title_index_keeps_no_pending_list() {
    if admin_url_or_skip().is_none() {
        return;
    }
    let srv = TestServer::start_with(Options {
        backend: Some(Backend::Postgres),
        ..Options::default()
    })
    .await;
    let mut conn = PgConnection::connect(srv.database().as_str())
        .await
        .expect("connect to the server's database");
    let options: Option<Vec<String>> = sqlx::query_scalar(
        "SELECT reloptions FROM pg_class WHERE relname = 'incidents_title_trigrams'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("the title index");
    conn.close().await.ok();
    assert!(
        options
            .unwrap_or_default()
            .contains(&"fastupdate=off".to_owned()),
        "the title index keeps a pending list"
    );
}

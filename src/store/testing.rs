//! What the store's unit tests share: a store on a fresh file, an incident
//! to declare, and a way to make what is submitted meanwhile one group.

use std::time::Duration;

use tokio::sync::oneshot;

use super::{Store, StoreOptions};
use crate::domain::IncidentKind;
use crate::domain::incident::{ComponentImpact, NewIncident};
use crate::service::incidents::CreateIncident;

/// A store on a fresh database file, with `options`; keep the directory.
pub async fn open_with(options: StoreOptions) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&db_file(&dir), options).await.unwrap();
    (dir, store)
}

/// The database file of the store `open` makes in `dir`.
pub fn db_file(dir: &tempfile::TempDir) -> String {
    dir.path().join("t.db").display().to_string()
}

/// A connection of its own to the database file `db`, with the settings the
/// store's connections have (WAL, the busy timeout): for what a test does
/// behind the store's back.
pub async fn connect(db: &str) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    sqlx::SqliteConnection::connect_with(&super::connect_options(db).unwrap())
        .await
        .unwrap()
}

/// A store on a fresh database file; keep the directory.
pub async fn open() -> (tempfile::TempDir, Store) {
    open_with(StoreOptions::default()).await
}

/// A connection to a new database file `db` migrated only up to (not
/// including) migration `version`: a database as an older release left it.
pub async fn migrated_before(db: &str, version: i64) -> sqlx::SqliteConnection {
    let mut conn = connect(db).await;
    let mut before = sqlx::migrate!("./migrations/sqlite");
    before.migrations = std::borrow::Cow::Owned(
        before
            .migrations
            .iter()
            .filter(|m| m.version < version)
            .cloned()
            .collect(),
    );
    before.run(&mut conn).await.unwrap();
    conn
}

/// "Checkout down", an incident affecting `component_impacts`.
pub fn declaration(component_impacts: Vec<ComponentImpact>) -> CreateIncident {
    let refs = component_impacts
        .iter()
        .map(|c| ("component_impacts".to_owned(), c.component_id))
        .collect();
    CreateIncident {
        actor: "ana".into(),
        new: NewIncident {
            title: "Checkout down".into(),
            kind: Some(IncidentKind::Incident),
            component_impacts,
            ..NewIncident::default()
        },
        refs,
        occur_time: None,
    }
}

/// Holds the writer inside a job until the returned sender fires, so that
/// what is submitted meanwhile forms the next group, whole.
pub async fn hold_writer(store: &Store) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (release, held) = oneshot::channel::<()>();
    let (entered_tx, entered) = oneshot::channel::<()>();
    let s = store.clone();
    let job = tokio::spawn(async move {
        s.write(move |_ctx| {
            Box::pin(async move {
                let _ = entered_tx.send(());
                let _ = held.await;
                Ok(())
            })
        })
        .await
        .unwrap();
    });
    entered.await.unwrap();
    (release, job)
}

/// The rows `table` holds.
pub async fn count_rows(conn: &mut super::db::Conn, table: &str) -> i64 {
    super::db::query_scalar(format!("SELECT count(*) FROM {table}"))
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Waits until `n` writes wait for the writer.
pub async fn until_queued(store: &Store, n: usize) {
    while store.writes_queued() < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

//! Which seeds this database holds, by their permanent key.

use super::db::{self, Conn};

use super::to_nanos;
use crate::domain::{IncidentId, Time};
use crate::error::Result;

/// Key of the PostgreSQL advisory lock on loading seeds ("seeds").
const SEEDS_LOCK: i64 = 0x0073_6565_6473;

/// Holds seed loading until the transaction commits (PostgreSQL): replicas
/// started together with `--seed` load each seed once, the later ones seeing
/// the keys the first recorded. SQLite's write lock already serializes it.
pub async fn hold(conn: &mut Conn) -> Result<()> {
    if conn.dialect() == db::Dialect::Postgres {
        db::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SEEDS_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The incident a seed was loaded as, if it was.
pub async fn find(conn: &mut Conn, key: &str) -> Result<Option<String>> {
    Ok(
        db::query_scalar("SELECT incident_id FROM seeds WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Records a loaded seed, in the transaction that loaded it.
pub async fn record(
    conn: &mut Conn,
    key: &str,
    incident_id: IncidentId,
    source: &str,
    now: Time,
) -> Result<()> {
    db::query("INSERT INTO seeds (key, incident_id, source, load_time) VALUES ($1, $2, $3, $4)")
        .bind(key)
        .bind(incident_id.to_string())
        .bind(source)
        .bind(to_nanos(now))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

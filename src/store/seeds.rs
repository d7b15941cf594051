//! Which seeds this database holds, by their permanent key.

use sqlx::SqliteConnection;

use super::to_nanos;
use crate::domain::{IncidentId, Time};
use crate::error::Result;

/// The incident a seed was loaded as, if it was.
pub async fn find(conn: &mut SqliteConnection, key: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT incident_id FROM seeds WHERE key = ?")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Records a loaded seed, in the transaction that loaded it.
pub async fn record(
    conn: &mut SqliteConnection,
    key: &str,
    incident_id: IncidentId,
    source: &str,
    now: Time,
) -> Result<()> {
    sqlx::query("INSERT INTO seeds (key, incident_id, source, load_time) VALUES (?, ?, ?, ?)")
        .bind(key)
        .bind(incident_id.to_string())
        .bind(source)
        .bind(to_nanos(now))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

//! AIP-155 request_id records: a retry gets the first response back.

use sqlx::SqliteConnection;

use super::to_nanos;
use crate::domain::Time;
use crate::error::Result;

/// Identifies one idempotent request.
#[derive(Clone, Debug)]
pub struct RequestKey {
    pub caller: String,
    pub method: &'static str,
    pub request_id: String,
    /// Hash of the request itself, to tell a retry from a reuse.
    pub fingerprint: Vec<u8>,
}

/// The stored fingerprint and response of an earlier request with this key.
pub async fn find(
    conn: &mut SqliteConnection,
    key: &RequestKey,
) -> Result<Option<(Vec<u8>, String)>> {
    Ok(sqlx::query_as(
        "SELECT fingerprint, response FROM request_ids
         WHERE caller = ? AND method = ? AND request_id = ?",
    )
    .bind(&key.caller)
    .bind(key.method)
    .bind(&key.request_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Records the response of a request, in the transaction of its change.
pub async fn record(
    conn: &mut SqliteConnection,
    key: &RequestKey,
    response: &str,
    now: Time,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO request_ids (caller, method, request_id, fingerprint, response, create_time)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&key.caller)
    .bind(key.method)
    .bind(&key.request_id)
    .bind(&key.fingerprint)
    .bind(response)
    .bind(to_nanos(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes records older than `before`; returns how many.
pub async fn prune(conn: &mut SqliteConnection, before: Time) -> Result<u64> {
    let r = sqlx::query("DELETE FROM request_ids WHERE create_time < ?")
        .bind(to_nanos(before))
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}

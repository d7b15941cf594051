//! AIP-155 request_id records: a retry gets the first response back.

use super::db::{self, Conn};

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
pub async fn find(conn: &mut Conn, key: &RequestKey) -> Result<Option<(Vec<u8>, String)>> {
    Ok(db::query_as(
        "SELECT fingerprint, response FROM request_ids
         WHERE caller = $1 AND method = $2 AND request_id = $3",
    )
    .bind(&key.caller)
    .bind(key.method)
    .bind(&key.request_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The records of those of `keys` that have one (fingerprint and response),
/// in one statement.
pub async fn find_many<'k>(
    conn: &mut Conn,
    keys: &[&'k RequestKey],
) -> Result<Vec<(&'k RequestKey, (Vec<u8>, String))>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: fn(&RequestKey) -> &str| -> Vec<String> {
        keys.iter().map(|k| f(k).to_owned()).collect()
    };
    // The keys as three lists, zipped back into rows by position.
    let rows: Vec<(String, String, String, Vec<u8>, String)> = db::query_as(db::per(
        "SELECT caller, method, request_id, fingerprint, response FROM request_ids
         WHERE (caller, method, request_id) IN
               (SELECT c.value, m.value, r.value FROM json_each($1) c
                JOIN json_each($2) m USING (key) JOIN json_each($3) r USING (key))",
        "SELECT caller, method, request_id, fingerprint, response FROM request_ids
         WHERE (caller, method, request_id) IN (SELECT * FROM unnest($1, $2, $3))",
    ))
    .bind(column(|k| &k.caller))
    .bind(column(|k| k.method))
    .bind(column(|k| &k.request_id))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(caller, method, request_id, fingerprint, response)| {
            let key = keys
                .iter()
                .find(|k| k.caller == caller && k.method == method && k.request_id == request_id)?;
            Some((*key, (fingerprint, response)))
        })
        .collect())
}

/// Records the response of a request, in the transaction of its change.
pub async fn record(conn: &mut Conn, key: &RequestKey, response: &str, now: Time) -> Result<()> {
    db::query(
        "INSERT INTO request_ids (caller, method, request_id, fingerprint, response, create_time)
         VALUES ($1, $2, $3, $4, $5, $6)",
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

/// Records the responses of a group's requests, in its transaction: a fixed
/// number of statements whatever their number.
pub async fn record_all(
    conn: &mut Conn,
    records: &[(RequestKey, String)],
    now: Time,
) -> Result<()> {
    let now = to_nanos(now);
    for chunk in records.chunks(super::ROWS_PER_STATEMENT) {
        let mut q = db::Builder::new(
            "INSERT INTO request_ids (caller, method, request_id, fingerprint, response, create_time) ",
        );
        q.push_values(chunk, |b, (k, response)| {
            b.push_bind(k.caller.as_str())
                .push_bind(k.method)
                .push_bind(k.request_id.as_str())
                .push_bind(k.fingerprint.as_slice())
                .push_bind(response.as_str())
                .push_bind(now);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Records one prune deletes at most: the pruner runs as a write job, and a
/// day's records after a long outage in one statement would hold the writer
/// (and, on SQLite, journal every page it touched) for as long as it took.
pub const PRUNE_CHUNK: i64 = 5_000;

/// Deletes up to [`PRUNE_CHUNK`] of the oldest records older than `before`;
/// returns how many (fewer than the chunk: none are left).
pub async fn prune(conn: &mut Conn, before: Time) -> Result<u64> {
    Ok(db::query(
        "DELETE FROM request_ids WHERE (caller, method, request_id) IN \
         (SELECT caller, method, request_id FROM request_ids \
          WHERE create_time < $1 ORDER BY create_time LIMIT $2)",
    )
    .bind(to_nanos(before))
    .bind(PRUNE_CHUNK)
    .execute(&mut *conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::REQUEST_ID_RETENTION;
    use crate::store::testing::open;

    fn key(id: &str) -> RequestKey {
        RequestKey {
            caller: "alice".into(),
            method: "CreateIncident",
            request_id: id.into(),
            fingerprint: vec![1, 2, 3],
        }
    }

    #[tokio::test]
    async fn records_older_than_the_retention_are_pruned_and_newer_kept() {
        let (_dir, store) = open().await;
        let pruned = store
            .write(|ctx| {
                Box::pin(async move {
                    let now = ctx.now();
                    let old = now - REQUEST_ID_RETENTION - chrono::TimeDelta::minutes(1);
                    let recent = now - REQUEST_ID_RETENTION + chrono::TimeDelta::minutes(1);
                    record(ctx.conn(), &key("old"), "{}", old).await?;
                    record(ctx.conn(), &key("recent"), "{}", recent).await?;
                    let n = prune(ctx.conn(), now - REQUEST_ID_RETENTION).await?;
                    let old_left = find(ctx.conn(), &key("old")).await?.is_some();
                    let recent_left = find(ctx.conn(), &key("recent")).await?.is_some();
                    Ok((n, old_left, recent_left))
                })
            })
            .await
            .unwrap();
        assert_eq!(pruned, (1, false, true));
        store.close().await;
    }

    /// A backlog is pruned a chunk at a time, and only what is past the
    /// retention: the chunk that says "more left", then the rest.
    #[tokio::test]
    async fn a_backlog_is_pruned_a_chunk_at_a_time() {
        let (_dir, store) = open().await;
        let backlog = PRUNE_CHUNK as u64 + 7;
        let rounds = store
            .write(move |ctx| {
                Box::pin(async move {
                    let now = ctx.now();
                    let old = now - REQUEST_ID_RETENTION - chrono::TimeDelta::minutes(1);
                    let expired: Vec<(RequestKey, String)> = (0..backlog)
                        .map(|n| (key(&format!("old-{n}")), "{}".to_owned()))
                        .collect();
                    record_all(ctx.conn(), &expired, old).await?;
                    record(ctx.conn(), &key("recent"), "{}", now).await?;
                    let mut rounds = Vec::new();
                    for _ in 0..3 {
                        rounds.push(prune(ctx.conn(), now - REQUEST_ID_RETENTION).await?);
                    }
                    let recent_left = find(ctx.conn(), &key("recent")).await?.is_some();
                    Ok((rounds, recent_left))
                })
            })
            .await
            .unwrap();
        assert_eq!(rounds, (vec![PRUNE_CHUNK as u64, 7, 0], true));
        store.close().await;
    }
}

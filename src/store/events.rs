//! The append-only event log.

use std::sync::Arc;

use sqlx::{Row, SqliteConnection};

use super::{ROWS_PER_STATEMENT, from_nanos, to_nanos};
use crate::domain::{Event, EventKind, IncidentId};
use crate::error::{Error, Result};

/// Writes numbered events, many rows per statement. Only the writer appends,
/// so the sequences it numbered are the next ones of the log.
pub async fn insert_all(conn: &mut SqliteConnection, events: &[Arc<Event>]) -> Result<()> {
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut rows = Vec::with_capacity(chunk.len());
        for e in chunk {
            rows.push((
                e,
                e.incident.as_ref().map(serde_json::to_string).transpose()?,
                serde_json::to_string(&e.payload)?,
            ));
        }
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO events (sequence, kind, incident_id, event_time, occur_time, actor, snapshot, payload) ",
        );
        q.push_values(rows, |mut b, (e, snapshot, payload)| {
            b.push_bind(e.sequence as i64)
                .push_bind(e.kind.code())
                .push_bind(e.incident.as_ref().map(|s| s.id.to_string()))
                .push_bind(to_nanos(e.event_time))
                .push_bind(to_nanos(e.occur_time))
                .push_bind(e.actor.clone())
                .push_bind(snapshot)
                .push_bind(payload);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Sequence of the last event, 0 for an empty log.
pub async fn head(conn: &mut SqliteConnection) -> Result<u64> {
    let head: Option<i64> = sqlx::query_scalar("SELECT max(sequence) FROM events")
        .fetch_one(&mut *conn)
        .await?;
    Ok(head.unwrap_or(0) as u64)
}

/// Events after `after`, oldest first, of the given incidents and kinds (empty:
/// any). Other conditions of a filter are applied by the caller on the snapshot.
pub async fn list(
    conn: &mut SqliteConnection,
    incident_ids: &[IncidentId],
    kinds: &[EventKind],
    after: u64,
    limit: usize,
) -> Result<Vec<Event>> {
    let ids = (!incident_ids.is_empty())
        .then(|| {
            serde_json::to_string(
                &incident_ids
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>(),
            )
        })
        .transpose()?;
    let kinds = (!kinds.is_empty())
        .then(|| serde_json::to_string(&kinds.iter().map(|k| k.code()).collect::<Vec<_>>()))
        .transpose()?;
    let rows = sqlx::query(
        "SELECT sequence, kind, event_time, occur_time, actor, snapshot, payload FROM events
         WHERE sequence > ?1
           AND (?2 IS NULL OR incident_id IN (SELECT value FROM json_each(?2)))
           AND (?3 IS NULL OR kind IN (SELECT value FROM json_each(?3)))
         ORDER BY sequence LIMIT ?4",
    )
    .bind(after as i64)
    .bind(ids)
    .bind(kinds)
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(decode).collect()
}

fn decode(row: &sqlx::sqlite::SqliteRow) -> Result<Event> {
    let kind_code: i32 = row.try_get("kind")?;
    let snapshot: Option<String> = row.try_get("snapshot")?;
    let payload: String = row.try_get("payload")?;
    Ok(Event {
        sequence: row.try_get::<i64, _>("sequence")? as u64,
        kind: EventKind::from_code(kind_code)
            .ok_or_else(|| Error::Internal(format!("unknown event kind {kind_code}")))?,
        incident: snapshot.as_deref().map(serde_json::from_str).transpose()?,
        event_time: from_nanos(row.try_get("event_time")?),
        occur_time: from_nanos(row.try_get("occur_time")?),
        actor: row.try_get("actor")?,
        payload: serde_json::from_str(&payload)?,
    })
}

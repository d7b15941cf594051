//! The append-only event log. Each event is kept in its wire form, beside the
//! keys subscription filters read, so a replay sends rows as they are.

use super::db::{self, Builder, Conn};
use super::{ROWS_PER_STATEMENT, from_nanos};
use crate::domain::{
    ComponentId, EncodedEvent, Event, EventKeys, EventKind, EventPayload, IncidentId,
    IncidentSnapshot, Severity,
};
use crate::error::{Error, Result};
use bytes::Bytes;
use serde::Deserialize;

/// Rows re-encoded per transaction when opening a database written before
/// events were stored encoded.
const LEGACY_BATCH: i64 = 1000;

/// Writes numbered events, many rows per statement. Only the writer appends,
/// so the sequences it numbered are the next ones of the log.
pub async fn insert_all(conn: &mut Conn, events: &[EncodedEvent]) -> Result<()> {
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        // SQLite: OR ROLLBACK, so that SQLite keeps no statement journal
        // (every page the statement changes copied aside in case this
        // statement alone must be undone): a conflict or a NOT NULL or CHECK
        // failure ends the whole transaction instead. Other failures (a
        // datatype, no memory) may leave the rows before them written, so
        // the caller runs this last before COMMIT and rolls back on any
        // error, as the writer does, which then retries the group's commands
        // one by one.
        let mut q = Builder::new("INSERT ");
        q.push_per("OR ROLLBACK ", "")
            .push("INTO events (sequence, kind, incident_id, severity, component_ids, body) ");
        q.push_values(chunk, |b, e| {
            let k = &e.keys;
            b.push_bind(k.sequence as i64)
                .push_bind(k.kind.code())
                .push_bind(k.incident_id.map(|id| id.to_string()))
                .push_bind(k.severity.map(|s| s.code()))
                .push_bind(component_blob(&k.component_ids))
                .push_bind(&e.body[..]);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Sequence of the last event, 0 for an empty log.
pub async fn head(conn: &mut Conn) -> Result<u64> {
    let head: Option<i64> = db::query_scalar("SELECT max(sequence) FROM events")
        .fetch_one(&mut *conn)
        .await?;
    Ok(head.unwrap_or(0) as u64)
}

type Row = (i64, i64, Option<String>, Option<i64>, Vec<u8>, Vec<u8>);

/// Events after `after`, oldest first, of the given incidents and kinds (empty:
/// any). Other conditions of a filter are applied by the caller on the keys.
pub async fn list(
    conn: &mut Conn,
    incident_ids: &[IncidentId],
    kinds: &[EventKind],
    after: u64,
    limit: usize,
) -> Result<Vec<EncodedEvent>> {
    let mut q = Builder::new(
        "SELECT sequence, kind, incident_id, severity, component_ids, body FROM events",
    );
    push_filter(&mut q, incident_ids, kinds, after, limit);
    let rows: Vec<Row> = q.build_query_as().fetch_all(conn).await?;
    rows.into_iter().map(decode).collect()
}

/// What the incidents table says of a PUBLIC incident for the public view:
/// its id, whether it is deleted, its title and summary.
pub type PublicIncident = (String, bool, String, String);

/// The log after `after`, oldest first, the first `limit` events, each with
/// its incident's row if that incident is PUBLIC: what a replica's tail needs
/// to publish them, in one statement (the public form of an event depends on
/// its incident as it now is).
pub async fn list_with_public_incidents(
    conn: &mut Conn,
    after: u64,
    limit: usize,
) -> Result<Vec<(EncodedEvent, Option<PublicIncident>)>> {
    type Joined = (
        i64,
        i64,
        Option<String>,
        Option<i64>,
        Vec<u8>,
        Vec<u8>,
        Option<String>,
        Option<bool>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Joined> = db::query_as(db::per(
        "SELECT e.sequence, e.kind, e.incident_id, e.severity, e.component_ids, e.body,
                i.id, i.delete_time IS NOT NULL, i.title, json_extract(i.doc, '$.summary')
         FROM events e LEFT JOIN incidents i ON i.id = e.incident_id AND i.visibility = $3
         WHERE e.sequence > $1 ORDER BY e.sequence LIMIT $2",
        "SELECT e.sequence, e.kind, e.incident_id, e.severity, e.component_ids, e.body,
                i.id, i.delete_time IS NOT NULL, i.title, i.doc::json ->> 'summary'
         FROM events e LEFT JOIN incidents i ON i.id = e.incident_id AND i.visibility = $3
         WHERE e.sequence > $1 ORDER BY e.sequence LIMIT $2",
    ))
    .bind(after as i64)
    .bind(limit as i64)
    .bind(crate::domain::Visibility::Public.code())
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(
            |(seq, kind, incident, severity, components, body, id, deleted, title, summary)| {
                let public = match (id, deleted, title) {
                    (Some(id), Some(deleted), Some(title)) => {
                        Some((id, deleted, title, summary.unwrap_or_default()))
                    }
                    _ => None,
                };
                Ok((
                    decode((seq, kind, incident, severity, components, body))?,
                    public,
                ))
            },
        )
        .collect()
}

/// `WHERE` the events after `after` of the incidents and kinds (empty: any),
/// the first `limit` of them in log order.
fn push_filter(
    q: &mut Builder,
    incident_ids: &[IncidentId],
    kinds: &[EventKind],
    after: u64,
    limit: usize,
) {
    q.push(" WHERE sequence > ").push_bind(after as i64);
    if !incident_ids.is_empty() {
        let ids: Vec<String> = incident_ids.iter().map(ToString::to_string).collect();
        q.push(" AND ").push_in_list("incident_id", ids);
    }
    if !kinds.is_empty() {
        let codes: Vec<i64> = kinds.iter().map(|k| i64::from(k.code())).collect();
        q.push(" AND ").push_in_list("kind", codes);
    }
    q.push(" ORDER BY sequence LIMIT ").push_bind(limit as i64);
}

/// Rows read at a time when a batch is too large to read as one value.
const ONE_BY_ONE_ROWS: usize = 16;

/// A batch of stored events, oldest first, each with its sequence.
#[derive(Debug, Default, PartialEq)]
pub struct StoredBatch {
    pub events: Vec<(u64, Bytes)>,
    /// Whether the batch holds every event the row limit allowed; false when
    /// it was too large to read as one value and was cut short (more events
    /// follow the last).
    pub complete: bool,
}

/// A batch as the reader sends it: by sequence. The database hands it over
/// in that order (see [`list_stored`]), which the sort finds in one pass; a
/// batch that is not is sorted rather than sent out of order, which would make
/// a subscriber's cursor skip the events behind it.
fn in_log_order(mut events: Vec<(u64, Bytes)>) -> Vec<(u64, Bytes)> {
    events.sort_unstable_by_key(|(sequence, _)| *sequence);
    events
}

/// Like [`list`], for a reader that needs no keys: the stored events only.
/// The database puts the batch end to end in one value, so the whole batch
/// crosses from the driver's thread as one row instead of one per event. A
/// batch larger than a read connection lets one value be (see
/// `READ_VALUE_MAX_BYTES`) is read a few rows at a time instead, cut short.
pub async fn list_stored(
    conn: &mut Conn,
    incident_ids: &[IncidentId],
    kinds: &[EventKind],
    after: u64,
    limit: usize,
) -> Result<StoredBatch> {
    let mut q = Builder::default();
    // No ORDER BY in SQLite's aggregate: it would copy the whole batch into
    // a temporary B-tree to sort what the subquery already yields in order
    // (a third of the read's time). That order is SQLite's behaviour, not
    // its promise, so the split batch is checked and sorted if it ever is not.
    q.push_per(
        "SELECT CAST(group_concat(body, '') AS BLOB) FROM (",
        "SELECT string_agg(body, ''::bytea ORDER BY sequence) FROM (",
    )
    .push("SELECT sequence, body FROM events");
    push_filter(&mut q, incident_ids, kinds, after, limit);
    q.push(") batch");
    let joined: sqlx::Result<Option<Vec<u8>>> = q.build_query_scalar().fetch_one(conn).await;
    match joined {
        Ok(joined) => {
            let events = crate::wire::split_events(joined.unwrap_or_default().into())?;
            Ok(StoredBatch {
                events: in_log_order(events),
                complete: true,
            })
        }
        Err(e) if super::is_too_big(&e) => {
            let n = limit.min(ONE_BY_ONE_ROWS);
            let rows = list(conn, incident_ids, kinds, after, n).await?;
            Ok(StoredBatch {
                complete: n == limit || rows.len() < n,
                events: rows
                    .into_iter()
                    .map(|e| (e.keys.sequence, e.body))
                    .collect(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

fn decode((sequence, kind, incident_id, severity, components, body): Row) -> Result<EncodedEvent> {
    let corrupt =
        |what: &str| Error::Internal(format!("event {sequence}: stored {what} is invalid"));
    Ok(EncodedEvent {
        keys: EventKeys {
            sequence: sequence as u64,
            kind: i32::try_from(kind)
                .ok()
                .and_then(EventKind::from_code)
                .ok_or_else(|| corrupt("kind"))?,
            incident_id: incident_id
                .map(|id| id.parse().map_err(|_| corrupt("incident id")))
                .transpose()?,
            severity: severity
                .map(|s| {
                    i32::try_from(s)
                        .ok()
                        .and_then(Severity::from_code)
                        .ok_or_else(|| corrupt("severity"))
                })
                .transpose()?,
            component_ids: components
                .chunks_exact(16)
                .map(|c| {
                    uuid::Uuid::from_slice(c)
                        .map(ComponentId)
                        .map_err(|_| corrupt("component ids"))
                })
                .collect::<Result<_>>()?,
        },
        body: body.into(),
    })
}

/// Component ids as stored: 16 bytes each, concatenated.
fn component_blob(ids: &[ComponentId]) -> Vec<u8> {
    ids.iter().flat_map(|c| *c.0.as_bytes()).collect()
}

/// The columns of an event written before events were stored encoded.
#[derive(Deserialize)]
struct Legacy {
    event_time: i64,
    occur_time: i64,
    actor: String,
    snapshot: Option<IncidentSnapshot>,
    payload: EventPayload,
}

/// Encodes the events written before the log kept them encoded, a batch per
/// transaction, so a database of any age opens into one format. Returns how
/// many it encoded (0 once done: the partial index finds none).
pub async fn encode_legacy(conn: &mut Conn) -> Result<u64> {
    let mut done = 0u64;
    if conn.dialect() != db::Dialect::Sqlite {
        // The PostgreSQL log was encoded from its start.
        return Ok(0);
    }
    // Components are named as the log goes: each component event renames its
    // component for the events after it; a component the rows seen so far do
    // not name has its stored name.
    let stored = super::components::all_names(&mut *conn).await?;
    let mut named: std::collections::HashMap<ComponentId, String> = Default::default();
    let Some(conn) = conn.sqlite() else {
        return Ok(0);
    };
    loop {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let rows: Vec<(i64, i32, String)> = sqlx::query_as(
            "SELECT sequence, kind, legacy FROM events
             WHERE body IS NULL ORDER BY sequence LIMIT ?",
        )
        .bind(LEGACY_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(done);
        }
        let mut encoded = Vec::with_capacity(rows.len());
        for (sequence, kind, legacy) in rows {
            let old: Legacy = serde_json::from_str(&legacy)?;
            let event = Event {
                sequence: sequence as u64,
                kind: EventKind::from_code(kind)
                    .ok_or_else(|| Error::Internal(format!("event {sequence}: unknown kind")))?,
                incident: old.snapshot,
                event_time: from_nanos(old.event_time),
                occur_time: from_nanos(old.occur_time),
                actor: old.actor,
                payload: old.payload,
            };
            if let Some((id, name)) = crate::component_names::named_by(&event) {
                named.insert(id, name.to_owned());
            }
            let names = crate::component_names::Overlay {
                base: &stored,
                changes: &named,
            };
            let keys = event.keys();
            encoded.push((
                sequence,
                keys.severity.map(|s| s.code()),
                component_blob(&keys.component_ids),
                crate::wire::encode_event(&event, &names),
            ));
        }
        // One statement for the batch: a statement per row costs a hand-off
        // to the driver's thread each.
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "UPDATE events SET severity = v.column2, component_ids = v.column3,
                 body = v.column4, legacy = NULL
             FROM (",
        );
        q.push_values(&encoded, |mut b, (sequence, severity, components, body)| {
            b.push_bind(*sequence)
                .push_bind(*severity)
                .push_bind(&components[..])
                .push_bind(&body[..]);
        });
        q.push(") AS v WHERE events.sequence = v.column1");
        q.build().execute(&mut *tx).await?;
        done += encoded.len() as u64;
        tx.commit().await?;
    }
}

#[cfg(test)]
mod tests {

    use sqlx::Connection;

    use super::*;
    use crate::domain::{Component, IncidentKind, IncidentStatus, Visibility};
    use crate::store::{Store, StoreOptions, to_nanos};

    fn old_events() -> Vec<Event> {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 5).unwrap_or_default();
        let component = ComponentId(uuid::Uuid::from_u128(9));
        vec![
            Event {
                sequence: 1,
                kind: EventKind::ComponentCreated,
                incident: None,
                event_time: at,
                occur_time: at,
                actor: "alice".into(),
                payload: EventPayload::ComponentCreated {
                    component: Box::new(Component::new(
                        component,
                        "db".into(),
                        String::new(),
                        None,
                        at,
                    )),
                },
            },
            Event {
                sequence: 2,
                kind: EventKind::NoteAdded,
                incident: Some(IncidentSnapshot {
                    id: IncidentId(uuid::Uuid::from_u128(1)),
                    number: 1,
                    title: "Checkout fails".into(),
                    severity: Some(Severity::P2),
                    status: IncidentStatus::Investigating,
                    kind: IncidentKind::Incident,
                    component_ids: vec![component],
                    visibility: Visibility::Internal,
                }),
                event_time: at,
                occur_time: at - chrono::TimeDelta::minutes(3),
                actor: "bob".into(),
                payload: EventPayload::NoteAdded {
                    text: "rolled back".into(),
                    visibility: Visibility::Internal,
                },
            },
        ]
    }

    /// A database whose log was written before events were stored encoded
    /// opens into the same events, in the one format.
    #[tokio::test]
    async fn an_older_log_is_encoded_when_the_database_opens() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("old.db").display().to_string();
        let mut conn = crate::store::testing::migrated_before(&db, 5).await;
        let events = old_events();
        // As the writer of that version wrote them.
        for e in &events {
            sqlx::query(
                "INSERT INTO events (sequence, kind, incident_id, event_time, occur_time, actor, snapshot, payload)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(e.sequence as i64)
            .bind(e.kind.code())
            .bind(e.incident.as_ref().map(|s| s.id.to_string()))
            .bind(to_nanos(e.event_time))
            .bind(to_nanos(e.occur_time))
            .bind(&e.actor)
            .bind(e.incident.as_ref().map(|s| serde_json::to_string(s).unwrap()))
            .bind(serde_json::to_string(&e.payload).unwrap())
            .execute(&mut conn)
            .await
            .unwrap();
        }
        conn.close().await.unwrap();

        let store = Store::open(&db, StoreOptions::default()).await.unwrap();
        assert_eq!(store.head_sequence(), 2);
        let mut r = store.reader().await.unwrap();
        let stored = list(&mut r, &[], &[], 0, 10).await.unwrap();
        assert_eq!(stored.len(), events.len());
        for (s, e) in stored.iter().zip(&events) {
            assert_eq!(s.keys, e.keys());
            let names: std::collections::HashMap<ComponentId, String> =
                [(ComponentId(uuid::Uuid::from_u128(9)), "db".to_owned())].into();
            assert_eq!(s.body, crate::wire::encode_event(e, &names));
        }
        let whole = list_stored(&mut r, &[], &[], 0, 10).await.unwrap();
        assert!(whole.complete);
        assert_eq!(
            whole.events,
            stored
                .iter()
                .map(|s| (s.keys.sequence, s.body.clone()))
                .collect::<Vec<_>>()
        );
        let rest = list_stored(&mut r, &[], &[], 1, 10).await.unwrap();
        assert_eq!(rest.events, whole.events[1..]);
        let none = list_stored(&mut r, &[], &[], 2, 10).await.unwrap();
        assert!(none.events.is_empty() && none.complete);
        let legacy: i64 = db::query_scalar("SELECT count(*) FROM events WHERE legacy IS NOT NULL")
            .fetch_one(&mut r)
            .await
            .unwrap();
        assert_eq!(legacy, 0);
        // The keys filter the way the events did.
        let p2 = list(&mut r, &[IncidentId(uuid::Uuid::from_u128(1))], &[], 0, 10)
            .await
            .unwrap();
        assert_eq!(p2.len(), 1);
        assert_eq!(p2[0].keys.severity, Some(Severity::P2));
        drop(r);
        store.close().await;
    }
}

#[cfg(test)]
mod batch_tests {
    use sqlx::SqliteConnection;

    use super::*;
    use crate::store::testing;

    /// A connection to a new database the server has migrated (and closed).
    async fn migrated() -> (tempfile::TempDir, SqliteConnection) {
        let (dir, store) = testing::open().await;
        store.close().await;
        let conn = testing::connect(&testing::db_file(&dir)).await;
        (dir, conn)
    }

    /// A stored event of about 100 bytes, `sequence`, of `incident`.
    async fn insert(conn: &mut SqliteConnection, sequence: u64, incident: Option<&str>) {
        let mut body = Vec::new();
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut body);
        let mut event = Vec::new();
        prost::encoding::uint64::encode(1, &sequence, &mut event);
        prost::encoding::string::encode(7, &"x".repeat(90), &mut event);
        prost::encoding::encode_varint(event.len() as u64, &mut body);
        body.extend(event);
        sqlx::query("INSERT INTO events (sequence, kind, incident_id, body) VALUES (?, 5, ?, ?)")
            .bind(sequence as i64)
            .bind(incident)
            .bind(body)
            .execute(conn)
            .await
            .unwrap();
    }

    /// The log's insert is OR ROLLBACK on SQLite: a row it cannot write ends
    /// the whole transaction, what was written before it included.
    #[tokio::test]
    async fn a_log_row_that_cannot_be_written_rolls_the_whole_transaction_back() {
        let (_dir, conn) = migrated().await;
        let mut conn: Conn = conn.into();
        db::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .unwrap();
        db::query("INSERT INTO meta (key, value) VALUES ('probe', x'00')")
            .execute(&mut conn)
            .await
            .unwrap();
        let event = |sequence| EncodedEvent {
            keys: EventKeys {
                sequence,
                kind: EventKind::NoteAdded,
                incident_id: Some(IncidentId::generate()),
                severity: None,
                component_ids: Vec::new(),
            },
            body: Bytes::from_static(b"\x0a\x00"),
        };
        // The same sequence twice: the second row conflicts with the first.
        let failed = insert_all(&mut conn, &[event(1), event(2), event(2)]).await;
        assert!(failed.is_err(), "a duplicate sequence is refused");
        assert!(
            db::query("ROLLBACK").execute(&mut conn).await.is_err(),
            "no transaction is left to roll back"
        );
        let probes: i64 = db::query_scalar("SELECT count(*) FROM meta WHERE key = 'probe'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(probes, 0, "what the transaction wrote before is gone");
        assert_eq!(head(&mut conn).await.unwrap(), 0, "and none of the rows");
    }

    /// A batch is the first events after the cursor in log order: here two
    /// incidents' events, interleaved and written newest first, read through
    /// the per-incident index.
    #[tokio::test]
    async fn a_batch_is_in_log_order() {
        let (_dir, mut conn) = migrated().await;
        let (a, b) = (IncidentId::generate(), IncidentId::generate());
        let (sa, sb) = (a.to_string(), b.to_string());
        for n in (1..=60u64).rev() {
            let incident = match n % 3 {
                0 => None,
                1 => Some(sa.as_str()),
                _ => Some(sb.as_str()),
            };
            insert(&mut conn, n, incident).await;
        }
        let mut conn = Conn::from(conn);
        let batch = list_stored(&mut conn, &[b, a], &[], 10, 25).await.unwrap();
        let expected: Vec<u64> = (11..=60).filter(|n| n % 3 != 0).take(25).collect();
        let got: Vec<u64> = batch.events.iter().map(|(s, _)| *s).collect();
        assert_eq!(got, expected);
        let all = list_stored(&mut conn, &[], &[], 0, 1000).await.unwrap();
        let got: Vec<u64> = all.events.iter().map(|(s, _)| *s).collect();
        assert_eq!(got, (1..=60).collect::<Vec<u64>>());
    }

    /// Should the database ever hand a batch over out of order, it is sent in
    /// log order all the same, each event with its own bytes.
    #[test]
    fn a_batch_handed_over_out_of_order_is_sorted() {
        let event = |n: u64| (n, Bytes::from(n.to_string()));
        let sorted = in_log_order([3, 1, 2, 5, 4].map(event).to_vec());
        assert_eq!(sorted, [1, 2, 3, 4, 5].map(event).to_vec());
        let ordered = [7, 8, 9].map(event).to_vec();
        assert_eq!(in_log_order(ordered.clone()), ordered);
    }

    /// A batch too large to be one value is read a few rows at a time, cut
    /// short and said so, and reading on from its end misses nothing.
    #[tokio::test]
    async fn a_batch_too_large_for_one_value_is_read_in_pieces() {
        let (_dir, mut conn) = migrated().await;
        // 40 events of ~100 bytes; a value may hold 1,000 bytes.
        for n in 1..=40 {
            insert(&mut conn, n, None).await;
        }
        super::super::limit_value_length(&mut conn, 1000)
            .await
            .unwrap();
        let mut conn = Conn::from(conn);
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let batch = list_stored(&mut conn, &[], &[], after, 1000).await.unwrap();
            assert!(batch.events.len() <= ONE_BY_ONE_ROWS);
            if let Some((last, _)) = batch.events.last() {
                after = *last;
            }
            seen.extend(batch.events.iter().map(|(s, _)| *s));
            if batch.complete {
                break;
            }
        }
        assert_eq!(seen, (1..=40).collect::<Vec<u64>>());
        // Small enough for one value: one batch, complete.
        let whole = list_stored(&mut conn, &[], &[], 35, 1000).await.unwrap();
        assert_eq!((whole.events.len(), whole.complete), (5, true));
    }
}

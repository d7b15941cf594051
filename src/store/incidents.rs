//! Incidents and their status updates.

use serde::Serialize;
use sqlx::SqliteConnection;

use super::{Cursor, to_nanos};
use crate::domain::{
    ComponentId, Incident, IncidentId, IncidentKind, IncidentStatus, Severity, StatusUpdate, Time,
};
use crate::error::{Error, Result};

/// Filters of ListIncidents. Serialized into page tokens to bind them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IncidentFilter {
    pub statuses: Vec<IncidentStatus>,
    pub severities: Vec<Severity>,
    pub kind: Option<IncidentKind>,
    pub component_id: Option<ComponentId>,
    pub open: Option<bool>,
    pub create_time_after: Option<Time>,
    pub create_time_before: Option<Time>,
    pub query: Option<String>,
    /// Key, and value if the label filter names one.
    pub label: Option<(String, Option<String>)>,
    pub show_deleted: bool,
}

/// Saves a changed incident; `before` (the incident as loaded) spares
/// rewriting the filter tables when its impacts and labels did not change.
pub async fn save(
    conn: &mut SqliteConnection,
    i: &Incident,
    before: Option<&Incident>,
) -> Result<()> {
    sqlx::query(
        "UPDATE incidents SET title = ?, title_key = ?, severity = ?, status = ?, is_open = ?,
         delete_time = ?, doc = ? WHERE id = ?",
    )
    .bind(&i.title)
    .bind(i.title.to_lowercase())
    .bind(i.severity.map(Severity::code))
    .bind(i.status.code())
    .bind(i.is_open())
    .bind(i.delete_time.map(to_nanos))
    .bind(serde_json::to_string(i)?)
    .bind(i.id.to_string())
    .execute(&mut *conn)
    .await?;
    if let Some(b) = before
        && b.component_impacts == i.component_impacts
        && b.labels == i.labels
    {
        return Ok(());
    }
    sqlx::query("DELETE FROM incident_components WHERE incident_id = ?")
        .bind(i.id.to_string())
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM incident_labels WHERE incident_id = ?")
        .bind(i.id.to_string())
        .execute(&mut *conn)
        .await?;
    write_side_tables(conn, i).await
}

async fn write_side_tables(conn: &mut SqliteConnection, i: &Incident) -> Result<()> {
    for c in &i.component_impacts {
        sqlx::query(
            "INSERT INTO incident_components (incident_id, component_id, impact) VALUES (?, ?, ?)",
        )
        .bind(i.id.to_string())
        .bind(c.component_id.to_string())
        .bind(c.impact.code())
        .execute(&mut *conn)
        .await?;
    }
    for (k, v) in &i.labels {
        sqlx::query("INSERT INTO incident_labels (incident_id, key, value) VALUES (?, ?, ?)")
            .bind(i.id.to_string())
            .bind(k)
            .bind(v)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Loads one incident by id.
pub async fn load(conn: &mut SqliteConnection, id: IncidentId) -> Result<Option<Incident>> {
    let row: Option<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {WITH_COUNTS} FROM incidents i WHERE i.id = ?"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(decode_counted).transpose()
}

/// Whether an incident exists (deleted or not), without reading it.
pub async fn exists(conn: &mut SqliteConnection, id: IncidentId) -> Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM incidents WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}

/// Loads one incident by its reference number.
/// The id of incident number `number` (deleted or not).
pub async fn id_by_number(conn: &mut SqliteConnection, number: i64) -> Result<Option<IncidentId>> {
    let id: Option<String> = sqlx::query_scalar("SELECT id FROM incidents WHERE number = ?")
        .bind(number)
        .fetch_optional(&mut *conn)
        .await?;
    id.map(|s| {
        s.parse()
            .map_err(|_| Error::Internal(format!("stored incident id {s:?} is not a UUID")))
    })
    .transpose()
}

pub async fn load_by_number(conn: &mut SqliteConnection, number: i64) -> Result<Option<Incident>> {
    let row: Option<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {WITH_COUNTS} FROM incidents i WHERE i.number = ?"
    )))
    .bind(number)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(decode_counted).transpose()
}

fn decode(doc: &str) -> Result<Incident> {
    Ok(serde_json::from_str(doc)?)
}

/// The document and its live action-item counts (all, and not yet closed:
/// statuses 3 and 4 are DONE and WONT_DO), in the one query that reads it.
pub(super) const WITH_COUNTS: &str = "i.doc,
    (SELECT count(*) FROM action_items a WHERE a.incident_id = i.id AND a.delete_time IS NULL),
    (SELECT count(*) FROM action_items a WHERE a.incident_id = i.id AND a.delete_time IS NULL
        AND a.status NOT IN (3, 4))";

pub(super) fn decode_counted((doc, all, open): (String, i64, i64)) -> Result<Incident> {
    let mut incident = decode(&doc)?;
    incident.action_item_count = all;
    incident.open_action_item_count = open;
    Ok(incident)
}

/// One page of incidents, newest first.
pub async fn list(
    conn: &mut SqliteConnection,
    f: &IncidentFilter,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<Incident>> {
    let codes = |v: Vec<i32>| (!v.is_empty()).then(|| serde_json::json!(v).to_string());
    let statuses = codes(f.statuses.iter().map(|s| s.code()).collect());
    let severities = codes(f.severities.iter().map(|s| s.code()).collect());
    let query = f.query.as_ref().map(|q| q.to_lowercase());
    let (label_key, label_value) = match &f.label {
        Some((k, v)) => (Some(k.as_str()), v.as_deref()),
        None => (None, None),
    };
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        r"SELECT {WITH_COUNTS} FROM incidents i
        WHERE (?1 IS NULL OR i.status IN (SELECT value FROM json_each(?1)))
          AND (?2 IS NULL OR i.severity IN (SELECT value FROM json_each(?2)))
          AND (?3 IS NULL OR i.kind = ?3)
          AND (?4 IS NULL OR EXISTS (
                SELECT 1 FROM incident_components ic
                WHERE ic.incident_id = i.id AND ic.component_id IN (
                    WITH RECURSIVE sub(id) AS (
                        SELECT ?4 UNION SELECT c.id FROM components c JOIN sub ON c.parent_id = sub.id)
                    SELECT id FROM sub)))
          AND (?5 IS NULL OR i.is_open = ?5)
          AND (?6 IS NULL OR i.create_time >= ?6)
          AND (?7 IS NULL OR i.create_time < ?7)
          AND (?8 IS NULL OR instr(i.title_key, ?8) > 0)
          AND (?9 IS NULL OR EXISTS (
                SELECT 1 FROM incident_labels l
                WHERE l.incident_id = i.id AND l.key = ?9 AND (?10 IS NULL OR l.value = ?10)))
          AND (?11 OR i.delete_time IS NULL)
          AND (?12 IS NULL OR (i.create_time, i.id) < (?12, ?13))
        ORDER BY i.create_time DESC, i.id DESC
        LIMIT ?14"
    )))
    .bind(statuses)
    .bind(severities)
    .bind(f.kind.map(IncidentKind::code))
    .bind(f.component_id.map(|c| c.to_string()))
    .bind(f.open)
    .bind(f.create_time_after.map(to_nanos))
    .bind(f.create_time_before.map(to_nanos))
    .bind(query)
    .bind(label_key)
    .bind(label_value)
    .bind(f.show_deleted)
    .bind(after.map(|c| c.create_time))
    .bind(after.map(|c| c.id.as_str()))
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(decode_counted).collect()
}

/// The cursor positioned after `i`.
pub fn cursor_after(i: &Incident) -> Cursor {
    Cursor {
        create_time: to_nanos(i.create_time),
        id: i.id.to_string(),
    }
}

/// One page of an incident's status updates, newest first.
pub async fn list_status_updates(
    conn: &mut SqliteConnection,
    incident_id: IncidentId,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<StatusUpdate>> {
    let docs: Vec<String> = sqlx::query_scalar(
        "SELECT doc FROM status_updates
         WHERE incident_id = ?1 AND (?2 IS NULL OR (create_time, id) < (?2, ?3))
         ORDER BY create_time DESC, id DESC LIMIT ?4",
    )
    .bind(incident_id.to_string())
    .bind(after.map(|c| c.create_time))
    .bind(after.map(|c| c.id.as_str()))
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    docs.iter().map(|d| Ok(serde_json::from_str(d)?)).collect()
}

/// The cursor positioned after status update `u`.
pub fn status_update_cursor(u: &StatusUpdate) -> Cursor {
    Cursor {
        create_time: to_nanos(u.create_time),
        id: u.id.to_string(),
    }
}

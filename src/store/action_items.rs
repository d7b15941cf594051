//! Action items and the postmortem singleton.

use serde::Serialize;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{Cursor, ROWS_PER_STATEMENT, to_nanos};
use crate::domain::{ActionItem, ActionItemId, ActionItemStatus, IncidentId, Postmortem, Time};
use crate::error::Result;

/// Filters of ListActionItems. Serialized into page tokens to bind them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ActionItemFilter {
    pub incident_id: Option<IncidentId>,
    pub statuses: Vec<ActionItemStatus>,
    pub owner: Option<String>,
    /// Key, and value if the label filter names one.
    pub label: Option<(String, Option<String>)>,
    /// Only items open or in progress and due at or before this instant.
    pub overdue_at: Option<Time>,
    pub show_deleted: bool,
}

/// Writes new and changed items, each with the version it had when read
/// (`None`: new), in a fixed number of multi-row statements: the items (an
/// upsert), and, only for those whose labels changed, their labels.
pub(super) async fn write_changed(
    conn: &mut SqliteConnection,
    changed: &[(&ActionItem, Option<&ActionItem>)],
) -> Result<()> {
    for chunk in changed.chunks(ROWS_PER_STATEMENT) {
        let mut docs = Vec::with_capacity(chunk.len());
        for (a, _) in chunk {
            docs.push(serde_json::to_string(a)?);
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO action_items (id, incident_id, status, owner, due_time, create_time, delete_time, doc) ",
        );
        q.push_values(chunk.iter().zip(docs), |mut b, ((a, _), doc)| {
            b.push_bind(a.id.to_string())
                .push_bind(a.incident_id.to_string())
                .push_bind(a.status.code())
                .push_bind(a.owner.clone())
                .push_bind(a.due_time.map(to_nanos))
                .push_bind(to_nanos(a.create_time))
                .push_bind(a.delete_time.map(to_nanos))
                .push_bind(doc);
        });
        q.push(
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status, owner = excluded.owner,
              due_time = excluded.due_time, delete_time = excluded.delete_time, doc = excluded.doc",
        );
        q.build().execute(&mut *conn).await?;
    }
    // The label table is rewritten only for items whose labels changed since
    // they were read (or that are new).
    let relabeled: Vec<&ActionItem> = changed
        .iter()
        .filter(|(a, before)| before.is_none_or(|b| b.labels != a.labels))
        .map(|(a, _)| *a)
        .collect();
    let stale: Vec<String> = changed
        .iter()
        .filter(|(a, before)| before.is_some_and(|b| b.labels != a.labels))
        .map(|(a, _)| a.id.to_string())
        .collect();
    if !stale.is_empty() {
        sqlx::query(
            "DELETE FROM action_item_labels WHERE action_item_id IN (SELECT value FROM json_each(?))",
        )
        .bind(serde_json::to_string(&stale)?)
        .execute(&mut *conn)
        .await?;
    }
    let labels: Vec<(String, &str, &str)> = relabeled
        .iter()
        .flat_map(|a| {
            a.labels
                .iter()
                .map(|(k, v)| (a.id.to_string(), k.as_str(), v.as_str()))
        })
        .collect();
    for chunk in labels.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO action_item_labels (action_item_id, key, value) ",
        );
        q.push_values(chunk, |mut b, (a, k, v)| {
            b.push_bind(a.as_str()).push_bind(*k).push_bind(*v);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The items of `ids` that exist, deleted or not, in one statement.
pub(super) async fn load_many(
    conn: &mut SqliteConnection,
    ids: &[ActionItemId],
) -> Result<Vec<ActionItem>> {
    let wanted: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let docs: Vec<String> = sqlx::query_scalar(
        "SELECT doc FROM action_items WHERE id IN (SELECT value FROM json_each(?))",
    )
    .bind(serde_json::to_string(&wanted)?)
    .fetch_all(&mut *conn)
    .await?;
    docs.iter().map(|d| Ok(serde_json::from_str(d)?)).collect()
}

/// Loads one item, deleted or not.
pub async fn load(conn: &mut SqliteConnection, id: ActionItemId) -> Result<Option<ActionItem>> {
    let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM action_items WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(doc.map(|d| serde_json::from_str(&d)).transpose()?)
}

/// One page of items, newest first.
pub async fn list(
    conn: &mut SqliteConnection,
    f: &ActionItemFilter,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<ActionItem>> {
    let statuses = (!f.statuses.is_empty())
        .then(|| serde_json::to_string(&f.statuses.iter().map(|s| s.code()).collect::<Vec<_>>()))
        .transpose()?;
    let (label_key, label_value) = match &f.label {
        Some((k, v)) => (Some(k.as_str()), v.as_deref()),
        None => (None, None),
    };
    let closed = serde_json::to_string(&[
        ActionItemStatus::Done.code(),
        ActionItemStatus::WontDo.code(),
    ])?;
    let docs: Vec<String> = sqlx::query_scalar(
        "SELECT a.doc FROM action_items a
         WHERE (?1 IS NULL OR a.incident_id = ?1)
           AND (?2 IS NULL OR a.status IN (SELECT value FROM json_each(?2)))
           AND (?3 IS NULL OR a.owner = ?3)
           AND (?4 IS NULL OR EXISTS (
                 SELECT 1 FROM action_item_labels l
                 WHERE l.action_item_id = a.id AND l.key = ?4 AND (?5 IS NULL OR l.value = ?5)))
           AND (?6 IS NULL OR (a.due_time <= ?6 AND a.status NOT IN (SELECT value FROM json_each(?7))))
           AND (?8 OR a.delete_time IS NULL)
           AND (?9 IS NULL OR (a.create_time, a.id) < (?9, ?10))
         ORDER BY a.create_time DESC, a.id DESC
         LIMIT ?11",
    )
    .bind(f.incident_id.map(|i| i.to_string()))
    .bind(statuses)
    .bind(f.owner.as_deref())
    .bind(label_key)
    .bind(label_value)
    .bind(f.overdue_at.map(to_nanos))
    .bind(closed)
    .bind(f.show_deleted)
    .bind(after.map(|c| c.create_time))
    .bind(after.map(|c| c.id.as_str()))
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    docs.iter().map(|d| Ok(serde_json::from_str(d)?)).collect()
}

/// The cursor positioned after `a`.
pub fn cursor_after(a: &ActionItem) -> Cursor {
    Cursor {
        create_time: to_nanos(a.create_time),
        id: a.id.to_string(),
    }
}

/// The postmortem of an incident, or its empty draft.
pub async fn load_postmortem(
    conn: &mut SqliteConnection,
    incident_id: IncidentId,
) -> Result<Postmortem> {
    let doc: Option<String> =
        sqlx::query_scalar("SELECT doc FROM postmortems WHERE incident_id = ?")
            .bind(incident_id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match doc {
        Some(d) => serde_json::from_str(&d)?,
        None => Postmortem::empty(incident_id),
    })
}

/// The postmortems written so far of the incidents of `ids`, in one statement
/// (an incident without one has its empty draft, which is not stored).
pub(super) async fn load_postmortems(
    conn: &mut SqliteConnection,
    ids: &[IncidentId],
) -> Result<Vec<Postmortem>> {
    let wanted: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let docs: Vec<String> = sqlx::query_scalar(
        "SELECT doc FROM postmortems WHERE incident_id IN (SELECT value FROM json_each(?))",
    )
    .bind(serde_json::to_string(&wanted)?)
    .fetch_all(&mut *conn)
    .await?;
    docs.iter().map(|d| Ok(serde_json::from_str(d)?)).collect()
}

/// Writes changed postmortems, in one multi-row upsert per
/// [`ROWS_PER_STATEMENT`] of them.
pub(super) async fn write_postmortems(
    conn: &mut SqliteConnection,
    changed: &[&Postmortem],
) -> Result<()> {
    for chunk in changed.chunks(ROWS_PER_STATEMENT) {
        let mut docs = Vec::with_capacity(chunk.len());
        for p in chunk {
            docs.push(serde_json::to_string(p)?);
        }
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO postmortems (incident_id, doc) ");
        q.push_values(chunk.iter().zip(docs), |mut b, (p, doc)| {
            b.push_bind(p.incident_id.to_string()).push_bind(doc);
        });
        q.push(" ON CONFLICT (incident_id) DO UPDATE SET doc = excluded.doc");
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

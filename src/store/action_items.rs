//! Action items and the postmortem singleton.

use serde::Serialize;

use super::db::{self, Builder, Conn};
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
    conn: &mut Conn,
    changed: &[(&ActionItem, Option<&ActionItem>)],
) -> Result<()> {
    for chunk in changed.chunks(ROWS_PER_STATEMENT) {
        let mut docs = Vec::with_capacity(chunk.len());
        for (a, _) in chunk {
            docs.push(serde_json::to_string(a)?);
        }
        let mut q = Builder::new(
            "INSERT INTO action_items (id, incident_id, status, owner, due_time, create_time, delete_time, doc) ",
        );
        q.push_values(chunk.iter().zip(docs), |b, ((a, _), doc)| {
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
        let mut q = Builder::new("DELETE FROM action_item_labels WHERE ");
        q.push_in_list("action_item_id", stale);
        q.build().execute(conn).await?;
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
        let mut q = Builder::new("INSERT INTO action_item_labels (action_item_id, key, value) ");
        q.push_values(chunk, |b, (a, k, v)| {
            b.push_bind(a.as_str()).push_bind(*k).push_bind(*v);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The items of `ids` that exist, deleted or not, in one statement, for a
/// write group: on PostgreSQL locked until it commits, in id order (see
/// `batch::fetch_incidents`).
pub(super) async fn load_many(conn: &mut Conn, ids: &[ActionItemId]) -> Result<Vec<ActionItem>> {
    let wanted: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let mut q = Builder::new("SELECT doc FROM action_items WHERE ");
    q.push_in_list("id", wanted);
    q.push_per("", " ORDER BY id FOR UPDATE");
    let docs: Vec<String> = q.build_query_scalar().fetch_all(conn).await?;
    docs.iter().map(|d| Ok(serde_json::from_str(d)?)).collect()
}

/// Loads one item, deleted or not.
pub async fn load(conn: &mut Conn, id: ActionItemId) -> Result<Option<ActionItem>> {
    let doc: Option<String> = db::query_scalar("SELECT doc FROM action_items WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(doc.map(|d| serde_json::from_str(&d)).transpose()?)
}

/// One page of items, newest first.
pub async fn list(
    conn: &mut Conn,
    f: &ActionItemFilter,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<ActionItem>> {
    let mut q = Builder::new("SELECT a.doc FROM action_items a WHERE true");
    if let Some(id) = f.incident_id {
        q.push(" AND a.incident_id = ").push_bind(id.to_string());
    }
    if !f.statuses.is_empty() {
        q.push(" AND ")
            .push_in_list("a.status", codes(f.statuses.iter().map(|s| s.code())));
    }
    if let Some(owner) = &f.owner {
        q.push(" AND a.owner = ").push_bind(owner);
    }
    if let Some((key, value)) = &f.label {
        q.push(" AND EXISTS (SELECT 1 FROM action_item_labels l WHERE l.action_item_id = a.id AND l.key = ")
            .push_bind(key);
        if let Some(v) = value {
            q.push(" AND l.value = ").push_bind(v);
        }
        q.push(")");
    }
    if let Some(t) = f.overdue_at {
        q.push(" AND a.due_time <= ")
            .push_bind(to_nanos(t))
            .push(" AND NOT ")
            .push_in_list(
                "a.status",
                codes(
                    [ActionItemStatus::Done, ActionItemStatus::WontDo]
                        .map(|s| s.code())
                        .into_iter(),
                ),
            );
    }
    if !f.show_deleted {
        q.push(" AND a.delete_time IS NULL");
    }
    if let Some(c) = after {
        q.push(" AND (a.create_time, a.id) < (")
            .push_bind(c.create_time)
            .push(", ")
            .push_bind(&c.id)
            .push(")");
    }
    q.push(" ORDER BY a.create_time DESC, a.id DESC LIMIT ")
        .push_bind(limit as i64);
    let docs: Vec<String> = q.build_query_scalar().fetch_all(conn).await?;
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
pub async fn load_postmortem(conn: &mut Conn, incident_id: IncidentId) -> Result<Postmortem> {
    let doc: Option<String> =
        db::query_scalar("SELECT doc FROM postmortems WHERE incident_id = $1")
            .bind(incident_id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match doc {
        Some(d) => serde_json::from_str(&d)?,
        None => Postmortem::empty(incident_id),
    })
}

/// The postmortems written so far of the incidents of `ids`, in one statement
/// (an incident without one has its empty draft, which is not stored), for a
/// write group: locked like [`load_many`]'s items.
pub(super) async fn load_postmortems(
    conn: &mut Conn,
    ids: &[IncidentId],
) -> Result<Vec<Postmortem>> {
    let wanted: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let mut q = Builder::new("SELECT doc FROM postmortems WHERE ");
    q.push_in_list("incident_id", wanted);
    q.push_per("", " ORDER BY incident_id FOR UPDATE");
    let docs: Vec<String> = q.build_query_scalar().fetch_all(conn).await?;
    docs.iter().map(|d| Ok(serde_json::from_str(d)?)).collect()
}

/// Writes changed postmortems, in one multi-row upsert per
/// [`ROWS_PER_STATEMENT`] of them.
pub(super) async fn write_postmortems(conn: &mut Conn, changed: &[&Postmortem]) -> Result<()> {
    for chunk in changed.chunks(ROWS_PER_STATEMENT) {
        let mut docs = Vec::with_capacity(chunk.len());
        for p in chunk {
            docs.push(serde_json::to_string(p)?);
        }
        let mut q = Builder::new("INSERT INTO postmortems (incident_id, doc) ");
        q.push_values(chunk.iter().zip(docs), |b, (p, doc)| {
            b.push_bind(p.incident_id.to_string()).push_bind(doc);
        });
        q.push(" ON CONFLICT (incident_id) DO UPDATE SET doc = excluded.doc");
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Proto codes as a list parameter.
pub(super) fn codes(codes: impl Iterator<Item = i32>) -> Vec<i64> {
    codes.map(i64::from).collect()
}

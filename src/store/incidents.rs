//! Incidents and their status updates.

use super::action_items::codes;
use super::db::{self, Builder, Conn, Dialect};
use super::{Cursor, ROWS_PER_STATEMENT, to_nanos};
use crate::domain::{
    Audience, ComponentId, Incident, IncidentId, IncidentKind, IncidentStatus, Severity,
    StatusUpdate, StatusUpdateId, Time,
};
use crate::error::{Error, Result};
use serde::Serialize;

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
    /// The public sees only PUBLIC incidents that are not deleted.
    pub audience: Audience,
}

/// Writes new and changed incidents, each with the version it had when read
/// (`None`: new), in a fixed number of multi-row statements: the incidents
/// (an upsert), and, only for those whose title, labels or impacts changed,
/// the title index and the filter tables.
pub(super) async fn write_changed(
    conn: &mut Conn,
    changed: &[(&Incident, Option<&Incident>)],
) -> Result<()> {
    let incidents: Vec<&Incident> = changed.iter().map(|(i, _)| *i).collect();
    for chunk in incidents.chunks(ROWS_PER_STATEMENT) {
        let mut q = Builder::new(
            "INSERT INTO incidents (id, number, title, title_key, kind, severity, status, is_open, create_time, delete_time, visibility, doc) ",
        );
        let mut docs = Vec::with_capacity(chunk.len());
        for i in chunk {
            docs.push(serde_json::to_string(i)?);
        }
        q.push_values(chunk.iter().zip(docs), |b, (i, doc)| {
            b.push_bind(i.id.to_string())
                .push_bind(i.number)
                .push_bind(i.title.clone())
                .push_bind(i.title.to_lowercase())
                .push_bind(i.kind.code())
                .push_bind(i.severity.map(Severity::code))
                .push_bind(i.status.code())
                .push_bind(i.is_open())
                .push_bind(to_nanos(i.create_time))
                .push_bind(i.delete_time.map(to_nanos))
                .push_bind(i.visibility.code())
                .push_bind(doc);
        });
        q.push(
            " ON CONFLICT (id) DO UPDATE SET title = excluded.title, title_key = excluded.title_key,
              severity = excluded.severity, status = excluded.status, is_open = excluded.is_open,
              delete_time = excluded.delete_time, visibility = excluded.visibility,
              doc = excluded.doc",
        );
        q.build().execute(&mut *conn).await?;
    }
    // The title index follows new and renamed incidents.
    let renamed: Vec<i64> = changed
        .iter()
        .filter(|(i, before)| before.is_none_or(|b| b.title != i.title))
        .map(|(i, _)| i.number)
        .collect();
    // (PostgreSQL's trigram index is on the incidents table itself.)
    if !renamed.is_empty() && conn.dialect() == Dialect::Sqlite {
        db::query(
            "DELETE FROM incidents_title_search WHERE rowid IN (SELECT value FROM json_each($1))",
        )
        .bind(renamed.clone())
        .execute(&mut *conn)
        .await?;
        db::query(
            "INSERT INTO incidents_title_search (rowid, title_key)
             SELECT number, title_key FROM incidents WHERE number IN (SELECT value FROM json_each($1))",
        )
        .bind(renamed)
        .execute(&mut *conn)
        .await?;
    }
    // The filter tables are rewritten only for incidents whose impacts or
    // labels changed since they were read (or that are new).
    let rewrite: Vec<&Incident> = changed
        .iter()
        .filter(|(i, before)| {
            before
                .is_none_or(|b| b.component_impacts != i.component_impacts || b.labels != i.labels)
        })
        .map(|(i, _)| *i)
        .collect();
    if !rewrite.is_empty() {
        let ids: Vec<String> = rewrite.iter().map(|i| i.id.to_string()).collect();
        for table in ["incident_components", "incident_labels"] {
            let mut q = Builder::new(&format!("DELETE FROM {table} WHERE "));
            q.push_in_list("incident_id", ids.clone());
            q.build().execute(&mut *conn).await?;
        }
        let impacts: Vec<(String, String, i32)> = rewrite
            .iter()
            .flat_map(|i| {
                i.component_impacts.iter().map(|c| {
                    (
                        i.id.to_string(),
                        c.component_id.to_string(),
                        c.impact.code(),
                    )
                })
            })
            .collect();
        for chunk in impacts.chunks(ROWS_PER_STATEMENT) {
            let mut q = Builder::new(
                "INSERT INTO incident_components (incident_id, component_id, impact) ",
            );
            q.push_values(chunk, |b, (i, c, impact)| {
                b.push_bind(i.as_str())
                    .push_bind(c.as_str())
                    .push_bind(*impact);
            });
            q.build().execute(&mut *conn).await?;
        }
        let labels: Vec<(String, &str, &str)> = rewrite
            .iter()
            .flat_map(|i| {
                i.labels
                    .iter()
                    .map(|(k, v)| (i.id.to_string(), k.as_str(), v.as_str()))
            })
            .collect();
        for chunk in labels.chunks(ROWS_PER_STATEMENT) {
            let mut q = Builder::new("INSERT INTO incident_labels (incident_id, key, value) ");
            q.push_values(chunk, |b, (i, k, v)| {
                b.push_bind(i.as_str()).push_bind(*k).push_bind(*v);
            });
            q.build().execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// Loads one incident by id.
pub async fn load(conn: &mut Conn, id: IncidentId) -> Result<Option<Incident>> {
    let row: Option<(String, i64, i64)> = db::query_as(format!(
        "SELECT {WITH_COUNTS} FROM incidents i WHERE i.id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(decode_counted).transpose()
}

/// Whether an incident exists for `audience` (for the full audience,
/// deleted or not), without reading it.
pub async fn exists(conn: &mut Conn, id: IncidentId, audience: Audience) -> Result<bool> {
    // For the public, only PUBLIC incidents that are not deleted exist.
    let found: Option<String> = db::query_scalar(match audience {
        Audience::Full => "SELECT id FROM incidents WHERE id = $1",
        Audience::Public => {
            "SELECT id FROM incidents WHERE id = $1 AND visibility = 1 AND delete_time IS NULL"
        }
    })
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}

/// The id of incident number `number`, if `audience` may see it (for the
/// full audience, deleted or not).
pub async fn id_by_number(
    conn: &mut Conn,
    number: i64,
    audience: Audience,
) -> Result<Option<IncidentId>> {
    let id: Option<String> = db::query_scalar(match audience {
        Audience::Full => "SELECT id FROM incidents WHERE number = $1",
        Audience::Public => {
            "SELECT id FROM incidents WHERE number = $1 AND visibility = 1 AND delete_time IS NULL"
        }
    })
    .bind(number)
    .fetch_optional(&mut *conn)
    .await?;
    id.map(|s| {
        s.parse()
            .map_err(|_| Error::Internal(format!("stored incident id {s:?} is not a UUID")))
    })
    .transpose()
}

pub async fn load_by_number(conn: &mut Conn, number: i64) -> Result<Option<Incident>> {
    let row: Option<(String, i64, i64)> = db::query_as(format!(
        "SELECT {WITH_COUNTS} FROM incidents i WHERE i.number = $1"
    ))
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

/// A filter matching at most this many rows drives the page from its own
/// index (its matches sorted by time); above it the page is read in time
/// order, each row checked, which stops as soon as the page is full.
const SPARSE_MAX: i64 = 1000;

/// Shortest query the trigram index serves; shorter ones are checked row by row.
const TRIGRAM: usize = 3;

/// One page of incidents, newest first.
///
/// Every filter has an index, but a dense filter is best served by reading
/// incidents in page order and a sparse one (matching nothing, say) by
/// reading its index: the label, component and title filters are first
/// counted (up to [`SPARSE_MAX`], a bounded index probe) to choose.
pub async fn list(
    conn: &mut Conn,
    f: &IncidentFilter,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<Incident>> {
    list_with(conn, f, after, limit, SPARSE_MAX).await
}

/// Where the incidents of [`list`]'s page sit, in its order, without reading
/// the incidents themselves (for a reader that has them in memory).
pub async fn list_positions(
    conn: &mut Conn,
    f: &IncidentFilter,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<Cursor>> {
    positions_with(conn, f, after, limit, SPARSE_MAX).await
}

/// The incidents of `ids` that exist, deleted or not, in no given order.
pub async fn load_many(conn: &mut Conn, ids: &[IncidentId]) -> Result<Vec<Incident>> {
    let wanted: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let mut q = Builder::new("SELECT ");
    q.push(WITH_COUNTS)
        .push(" FROM incidents i WHERE ")
        .push_in_list("i.id", wanted);
    let rows: Vec<(String, i64, i64)> = q.build_query_as().fetch_all(&mut *conn).await?;
    rows.into_iter().map(decode_counted).collect()
}

/// The selective filters of a ListIncidents: each can produce its matches from an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Driver {
    Label,
    Component,
    Title,
}

async fn list_with(
    conn: &mut Conn,
    f: &IncidentFilter,
    after: Option<&Cursor>,
    limit: usize,
    sparse_max: i64,
) -> Result<Vec<Incident>> {
    let mut q = Builder::new("SELECT ");
    q.push(WITH_COUNTS);
    page_query(conn, &mut q, f, after, limit, sparse_max).await?;
    let rows: Vec<(String, i64, i64)> = q.build_query_as().fetch_all(&mut *conn).await?;
    rows.into_iter().map(decode_counted).collect()
}

async fn positions_with(
    conn: &mut Conn,
    f: &IncidentFilter,
    after: Option<&Cursor>,
    limit: usize,
    sparse_max: i64,
) -> Result<Vec<Cursor>> {
    // One row for the whole page: on SQLite every row of a result crosses
    // from the driver's thread on its own, a wake-up each, and a page's
    // positions cost more in those than in reading them.
    let mut q = Builder::default();
    q.push_per("SELECT group_concat(p, ',')", "SELECT string_agg(p, ',')")
        .push(" FROM (SELECT i.create_time || ':' || i.id AS p");
    page_query(conn, &mut q, f, after, limit, sparse_max).await?;
    q.push(") page");
    let joined: Option<String> = q.build_query_scalar().fetch_one(&mut *conn).await?;
    let mut positions = joined
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(parse_position)
        .collect::<Result<Vec<Cursor>>>()?;
    // The aggregate's order is the database's behaviour, not its promise.
    positions.sort_unstable_by(|a, b| (b.create_time, &b.id).cmp(&(a.create_time, &a.id)));
    Ok(positions)
}

/// One `create_time:id` of [`positions_with`]'s aggregate.
fn parse_position(p: &str) -> Result<Cursor> {
    p.split_once(':')
        .and_then(|(t, id)| {
            Some(Cursor {
                create_time: t.parse().ok()?,
                id: id.to_owned(),
            })
        })
        .ok_or_else(|| Error::Internal(format!("stored incident position {p:?}")))
}

/// Completes `q`, which holds a statement's start up to the columns it
/// selects, into one page of incidents (see [`list`]).
async fn page_query(
    conn: &mut Conn,
    q: &mut Builder,
    f: &IncidentFilter,
    after: Option<&Cursor>,
    limit: usize,
    sparse_max: i64,
) -> Result<()> {
    let query = f.query.as_ref().map(|q| q.to_lowercase());
    let indexed_query = query.as_ref().filter(|q| q.chars().count() >= TRIGRAM);
    let mut candidates = Vec::new();
    // PostgreSQL's planner weighs the filters itself; SQLite's is told.
    let sqlite = conn.dialect() == Dialect::Sqlite;
    if sqlite && f.label.is_some() {
        candidates.push(Driver::Label);
    }
    if sqlite && f.component_id.is_some() {
        candidates.push(Driver::Component);
    }
    if sqlite && indexed_query.is_some() {
        candidates.push(Driver::Title);
    }
    let mut driver: Option<(Driver, i64)> = None;
    for d in candidates {
        let mut count = Builder::new("SELECT count(*) FROM (");
        match (d, indexed_query) {
            // Counted in the index itself: going through the incidents
            // would read every match before the LIMIT applies.
            (Driver::Title, Some(query)) => {
                count.push(
                    "SELECT rowid FROM incidents_title_search WHERE incidents_title_search MATCH ",
                )
                .push_bind(phrase(query));
            }
            _ => push_matches(&mut count, d, f, indexed_query.map(String::as_str)),
        }
        count.push(" LIMIT ").push_bind(sparse_max + 1).push(") m");
        let n: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;
        if n <= sparse_max && driver.is_none_or(|(_, best)| n < best) {
            driver = Some((d, n));
        }
    }
    match driver {
        Some((d, _)) => {
            // CROSS JOIN keeps SQLite from reordering: the few matches first.
            q.push(" FROM (");
            push_matches(q, d, f, indexed_query.map(String::as_str));
            q.push(") m CROSS JOIN incidents i ON i.id = m.id WHERE true");
        }
        None if f.audience == Audience::Public => {
            q.push_per(
                " FROM incidents i INDEXED BY incidents_public_by_create WHERE true",
                " FROM incidents i WHERE true",
            );
        }
        None => {
            q.push_per(
                " FROM incidents i INDEXED BY incidents_by_create WHERE true",
                " FROM incidents i WHERE true",
            );
        }
    }
    if f.audience == Audience::Public {
        // Spelled as the partial index's condition, so the index applies.
        q.push(" AND i.visibility = 1 AND i.delete_time IS NULL");
    }
    let driven = driver.map(|(d, _)| d);
    if !f.statuses.is_empty() {
        q.push(" AND ")
            .push_in_list("i.status", codes(f.statuses.iter().map(|s| s.code())));
    }
    if !f.severities.is_empty() {
        q.push(" AND ")
            .push_in_list("i.severity", codes(f.severities.iter().map(|s| s.code())));
    }
    if let Some(kind) = f.kind {
        q.push(" AND i.kind = ").push_bind(kind.code());
    }
    if let Some(open) = f.open {
        q.push(" AND i.is_open = ").push_bind(open);
    }
    if let Some(t) = f.create_time_after {
        q.push(" AND i.create_time >= ").push_bind(to_nanos(t));
    }
    if let Some(t) = f.create_time_before {
        q.push(" AND i.create_time < ").push_bind(to_nanos(t));
    }
    // The selective filters that do not drive are checked row by row, each
    // by a lookup that stops at its first hit.
    if let Some((key, value)) = f.label.as_ref().filter(|_| driven != Some(Driver::Label)) {
        q.push(
            " AND EXISTS (SELECT 1 FROM incident_labels l WHERE l.incident_id = i.id AND l.key = ",
        )
        .push_bind(key.clone());
        if let Some(v) = value {
            q.push(" AND l.value = ").push_bind(v.clone());
        }
        q.push(")");
    }
    if let Some(c) = f.component_id.filter(|_| driven != Some(Driver::Component)) {
        q.push(" AND EXISTS (SELECT 1 FROM incident_components ic WHERE ic.incident_id = i.id AND ic.component_id IN (");
        push_subtree(q, c);
        q.push("))");
    }
    if let Some(query) = query.as_ref().filter(|_| driven != Some(Driver::Title)) {
        // On PostgreSQL as a LIKE (its wildcards escaped), which the
        // trigram index serves.
        q.push_per(
            " AND instr(i.title_key, ",
            " AND i.title_key LIKE '%' || replace(replace(replace(",
        )
        .push_bind(query.clone())
        .push_per(
            ") > 0",
            ", '!', '!!'), '%', '!%'), '_', '!_') || '%' ESCAPE '!'",
        );
    }
    if !f.show_deleted {
        q.push(" AND i.delete_time IS NULL");
    }
    if let Some(c) = after {
        q.push(" AND (i.create_time, i.id) < (")
            .push_bind(c.create_time)
            .push(", ")
            .push_bind(c.id.clone())
            .push(")");
    }
    q.push(" ORDER BY i.create_time DESC, i.id DESC LIMIT ")
        .push_bind(limit as i64);
    if query.is_some() {
        // A title substring's plan depends on it: one no incident has is one
        // probe of the trigram index; planned blind, a walk of every row.
        q.plan_per_call();
    }
    Ok(())
}

/// The query as one FTS5 phrase: a substring match under the trigram tokenizer.
fn phrase(query: &str) -> String {
    format!("\"{}\"", query.replace('"', "\"\""))
}

/// The ids of a component and of every component under it.
fn push_subtree(q: &mut Builder, id: ComponentId) {
    q.push("WITH RECURSIVE sub(id) AS (SELECT CAST(")
        .push_bind(id.to_string())
        .push(" AS TEXT)")
        .push(" UNION SELECT c.id FROM components c JOIN sub ON c.parent_id = sub.id) SELECT id FROM sub");
}

/// The ids of the incidents one selective filter matches, from its index.
fn push_matches(q: &mut Builder, d: Driver, f: &IncidentFilter, query: Option<&str>) {
    match d {
        Driver::Label => {
            let (key, value) = f.label.clone().unwrap_or_default();
            q.push("SELECT incident_id AS id FROM incident_labels WHERE key = ")
                .push_bind(key);
            if let Some(v) = value {
                q.push(" AND value = ").push_bind(v);
            }
        }
        Driver::Component => {
            q.push("SELECT DISTINCT incident_id AS id FROM incident_components WHERE component_id IN (");
            if let Some(c) = f.component_id {
                push_subtree(q, c);
            }
            q.push(")");
        }
        Driver::Title => {
            q.push(
                "SELECT id FROM incidents WHERE number IN (
                    SELECT rowid FROM incidents_title_search WHERE incidents_title_search MATCH ",
            )
            .push_bind(phrase(query.unwrap_or_default()))
            .push(")");
        }
    }
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
    conn: &mut Conn,
    incident_id: IncidentId,
    after: Option<&Cursor>,
    limit: usize,
    audience: Audience,
) -> Result<Vec<StatusUpdate>> {
    let docs: Vec<String> = db::query_scalar(match audience {
        Audience::Full => {
            "SELECT doc FROM status_updates
             WHERE incident_id = $1 AND ($2 IS NULL OR (create_time, id) < ($2, $3))
             ORDER BY create_time DESC, id DESC LIMIT $4"
        }
        Audience::Public => {
            "SELECT doc FROM status_updates
             WHERE incident_id = $1 AND visibility = 1
               AND ($2 IS NULL OR (create_time, id) < ($2, $3))
             ORDER BY create_time DESC, id DESC LIMIT $4"
        }
    })
    .bind(incident_id.to_string())
    .bind(after.map(|c| c.create_time))
    .bind(after.map(|c| c.id.as_str()))
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    docs.iter().map(|d| Ok(serde_json::from_str(d)?)).collect()
}

/// One status update, for a write group that may correct it: on PostgreSQL
/// locked until the group commits.
pub async fn load_status_update(
    conn: &mut Conn,
    id: StatusUpdateId,
) -> Result<Option<StatusUpdate>> {
    let doc: Option<String> = db::query_scalar(db::per(
        "SELECT doc FROM status_updates WHERE id = $1",
        "SELECT doc FROM status_updates WHERE id = $1 FOR UPDATE",
    ))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(doc.map(|d| serde_json::from_str(&d)).transpose()?)
}

/// The cursor positioned after status update `u`.
pub fn status_update_cursor(u: &StatusUpdate) -> Cursor {
    Cursor {
        create_time: to_nanos(u.create_time),
        id: u.id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::domain::incident::{ComponentImpact, NewIncident};
    use crate::domain::{ImpactLevel, IncidentKind};
    use crate::service::components::CreateComponent;
    use crate::service::incidents::{CreateIncident, UpdateIncident};
    use crate::store::testing::{hold_writer, until_queued};
    use crate::store::{Store, StoreOptions};

    /// Every filter gives the same pages whether the page is read in time
    /// order (a dense filter) or from the filter's own index (a sparse one),
    /// and both give exactly the incidents the filter describes.
    #[tokio::test]
    async fn both_ways_of_reading_a_filtered_page_agree_with_the_filter() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db").display().to_string();
        let store = Store::open(&db, StoreOptions::default()).await.unwrap();
        let component = |name: &str, parent_id| CreateComponent {
            actor: "ana".into(),
            name: name.into(),
            description: String::new(),
            parent_id,
        };
        let api = store.execute(None, component("API", None)).await.unwrap();
        let login = store
            .execute(None, component("Login", Some(api.id)))
            .await
            .unwrap();
        let titles = [
            "Échec de paiement",
            "Login slow",
            "Checkout down",
            "Lenteurs login",
        ];
        let mut commands = Vec::new();
        for n in 0..40 {
            let title = format!("{} #{n}", titles[n % titles.len()]);
            let labels: BTreeMap<String, String> = match n % 3 {
                0 => [("team".into(), "payments".into())].into(),
                1 => [("team".into(), "identity".into())].into(),
                _ => BTreeMap::new(),
            };
            let component_impacts = if n % 5 == 0 {
                vec![ComponentImpact {
                    component_id: login.id,
                    impact: ImpactLevel::MajorOutage,
                }]
            } else {
                Vec::new()
            };
            let refs = component_impacts
                .iter()
                .map(|c| ("component_impacts".to_owned(), c.component_id))
                .collect();
            let command = CreateIncident {
                actor: "ana".into(),
                new: NewIncident {
                    title,
                    kind: Some(IncidentKind::Incident),
                    labels,
                    component_impacts,
                    ..NewIncident::default()
                },
                refs,
                occur_time: None,
            };
            commands.push(command);
        }
        // Four at a time, as one group: the four share a create time, and
        // their order on a page is their ids'.
        let mut all = Vec::new();
        let mut commands = commands.into_iter().peekable();
        while commands.peek().is_some() {
            let (release, held) = hold_writer(&store).await;
            let group: Vec<_> = commands
                .by_ref()
                .take(4)
                .map(|c| {
                    let store = store.clone();
                    tokio::spawn(async move { store.execute(None, c).await.unwrap() })
                })
                .collect();
            until_queued(&store, group.len()).await;
            release.send(()).unwrap();
            held.await.unwrap();
            for created in group {
                all.push(created.await.unwrap());
            }
        }
        let times: BTreeSet<_> = all.iter().map(|i| i.create_time).collect();
        assert_eq!(
            times.len(),
            10,
            "incidents created in groups of four share their time"
        );
        // A rename moves the incident in the title index.
        let renamed = UpdateIncident {
            actor: "ana".into(),
            id: all[3].id,
            etag: None,
            patch: crate::domain::incident::IncidentPatch {
                title: Some("Xylophone incident".into()),
                ..Default::default()
            },
            refs: Vec::new(),
            occur_time: None,
        };
        all[3] = store.execute(None, renamed).await.unwrap();
        all.sort_by(|a, b| {
            (b.create_time, b.id.to_string()).cmp(&(a.create_time, a.id.to_string()))
        });

        let label = |k: &str, v: Option<&str>| IncidentFilter {
            label: Some((k.into(), v.map(Into::into))),
            ..IncidentFilter::default()
        };
        let query = |q: &str| IncidentFilter {
            query: Some(q.into()),
            ..IncidentFilter::default()
        };
        let component = |c: ComponentId| IncidentFilter {
            component_id: Some(c),
            ..IncidentFilter::default()
        };
        type Matches = Box<dyn Fn(&Incident) -> bool>;
        let cases: Vec<(IncidentFilter, Matches)> = vec![
            (
                label("team", Some("payments")),
                Box::new(|i| i.labels.get("team").is_some_and(|v| v == "payments")),
            ),
            (
                label("team", None),
                Box::new(|i| i.labels.contains_key("team")),
            ),
            (label("nobody", None), Box::new(|_| false)),
            (
                query("ÉCHEC"),
                Box::new(|i| i.title.to_lowercase().contains("échec")),
            ),
            (
                query("login"),
                Box::new(|i| i.title.to_lowercase().contains("login")),
            ),
            (
                query("lo"),
                Box::new(|i| i.title.to_lowercase().contains("lo")),
            ),
            (
                query("xylophone"),
                Box::new(|i| i.title.starts_with("Xylophone")),
            ),
            (
                query("lenteurs #3"),
                Box::new(|i| i.title.to_lowercase().contains("lenteurs #3")),
            ),
            (query("zzz-no-match"), Box::new(|_| false)),
            (query("in\" OR \"lo"), Box::new(|_| false)),
            // The fourth incident was "Lenteurs login #3" before its rename.
            (
                query("lenteurs"),
                Box::new(|i| i.title.to_lowercase().contains("lenteurs")),
            ),
            (
                component(api.id),
                Box::new(move |i| i.component_ids().contains(&login.id)),
            ),
            (
                component(login.id),
                Box::new(move |i| i.component_ids().contains(&login.id)),
            ),
            (
                IncidentFilter {
                    label: Some(("team".into(), Some("payments".into()))),
                    query: Some("login".into()),
                    component_id: Some(api.id),
                    ..IncidentFilter::default()
                },
                Box::new(move |i| {
                    i.labels.get("team").is_some_and(|v| v == "payments")
                        && i.title.to_lowercase().contains("login")
                        && i.component_ids().contains(&login.id)
                }),
            ),
        ];
        let mut conn = store.reader().await.unwrap();
        for (filter, matches) in &cases {
            let expected: Vec<IncidentId> =
                all.iter().filter(|i| matches(i)).map(|i| i.id).collect();
            for sparse_max in [0, SPARSE_MAX] {
                // Pages of 3, to cross page boundaries on both ways.
                let mut got = Vec::new();
                let mut after: Option<Cursor> = None;
                loop {
                    let page = list_with(&mut conn, filter, after.as_ref(), 3, sparse_max)
                        .await
                        .unwrap();
                    // The positions alone are the same page's.
                    let positions =
                        positions_with(&mut conn, filter, after.as_ref(), 3, sparse_max)
                            .await
                            .unwrap();
                    assert_eq!(
                        positions,
                        page.iter().map(cursor_after).collect::<Vec<_>>(),
                        "{filter:?} positions with sparse_max {sparse_max}"
                    );
                    // And the page's incidents read by id are the same.
                    let ids: Vec<IncidentId> = page.iter().map(|i| i.id).collect();
                    let mut by_id = load_many(&mut conn, &ids).await.unwrap();
                    by_id.sort_by_key(|i| ids.iter().position(|id| *id == i.id));
                    assert_eq!(by_id, page, "{filter:?} read by id");
                    got.extend(page.iter().map(|i| i.id));
                    match page.last() {
                        Some(last) if page.len() == 3 => after = Some(cursor_after(last)),
                        _ => break,
                    }
                }
                assert_eq!(
                    got, expected,
                    "{filter:?} read with sparse_max {sparse_max}"
                );
            }
        }
        drop(conn);
        store.close().await;
    }
}

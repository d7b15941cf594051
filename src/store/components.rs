//! Components, their tree, and their derived status.

use std::collections::HashMap;

use super::db::{self, Builder, Conn};
use super::{Cursor, ROWS_PER_STATEMENT, from_nanos, to_nanos};
use crate::domain::{Audience, Component, ComponentId, ImpactLevel};
use crate::error::{Error, Result};

const COLUMNS: &str =
    "id, parent_id, name, description, create_time, update_time, delete_time, version";

/// Writes new and changed components in one multi-row upsert per
/// [`ROWS_PER_STATEMENT`] of them. The unique index of live sibling names
/// backs the check the commands make first.
pub(super) async fn write_changed(conn: &mut Conn, changed: &[&Component]) -> Result<()> {
    for chunk in changed.chunks(ROWS_PER_STATEMENT) {
        let mut q = Builder::new(
            "INSERT INTO components (id, parent_id, name, description, create_time, update_time, delete_time, version) ",
        );
        q.push_values(chunk, |b, c| {
            b.push_bind(c.id.to_string())
                .push_bind(c.parent_id.map(|p| p.to_string()))
                .push_bind(c.name.clone())
                .push_bind(c.description.clone())
                .push_bind(to_nanos(c.create_time))
                .push_bind(to_nanos(c.update_time))
                .push_bind(c.delete_time.map(to_nanos))
                .push_bind(c.version as i64);
        });
        q.push(
            " ON CONFLICT (id) DO UPDATE SET parent_id = excluded.parent_id, name = excluded.name,
              description = excluded.description, update_time = excluded.update_time,
              delete_time = excluded.delete_time, version = excluded.version",
        );
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Loads one component (deleted or not), with its derived status.
pub async fn load(
    conn: &mut Conn,
    id: ComponentId,
    audience: Audience,
) -> Result<Option<Component>> {
    let row: Option<Columns> =
        db::query_as(format!("SELECT {COLUMNS} FROM components WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let mut c = decode(row)?;
    fill_statuses(conn, std::slice::from_mut(&mut c), audience).await?;
    Ok(Some(c))
}

/// One page of components, newest first.
pub async fn list(
    conn: &mut Conn,
    parent_id: Option<ComponentId>,
    show_deleted: bool,
    after: Option<&Cursor>,
    limit: usize,
    audience: Audience,
) -> Result<Vec<Component>> {
    let mut q = Builder::new(&format!("SELECT {COLUMNS} FROM components WHERE true"));
    if let Some(p) = parent_id {
        q.push(" AND parent_id = ").push_bind(p.to_string());
    }
    if !show_deleted {
        q.push(" AND delete_time IS NULL");
    }
    if let Some(c) = after {
        q.push(" AND (create_time, id) < (")
            .push_bind(c.create_time)
            .push(", ")
            .push_bind(&c.id)
            .push(")");
    }
    q.push(" ORDER BY create_time DESC, id DESC LIMIT ")
        .push_bind(limit as i64);
    let rows: Vec<Columns> = q.build_query_as().fetch_all(&mut *conn).await?;
    let mut out = rows.into_iter().map(decode).collect::<Result<Vec<_>>>()?;
    fill_statuses(conn, &mut out, audience).await?;
    Ok(out)
}

/// The cursor positioned after `c`.
pub fn cursor_after(c: &Component) -> Cursor {
    Cursor {
        create_time: to_nanos(c.create_time),
        id: c.id.to_string(),
    }
}

/// Sets each component's derived status: the worst impact of open, live
/// incidents on it or on any of its descendants; for the public, of open,
/// live PUBLIC incidents only.
async fn fill_statuses(
    conn: &mut Conn,
    components: &mut [Component],
    audience: Audience,
) -> Result<()> {
    if components.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = components.iter().map(|c| c.id.to_string()).collect();
    // Walk every open impact up to the roots, then keep the rows of the asked ids.
    let mut q = Builder::new(
        "WITH RECURSIVE hit(component_id, impact) AS (
             SELECT ic.component_id, ic.impact FROM incident_components ic
             JOIN incidents i ON i.id = ic.incident_id
             WHERE i.is_open = 1 AND i.delete_time IS NULL",
    );
    if audience == Audience::Public {
        q.push(" AND i.visibility = 1");
    }
    q.push(
        " UNION ALL
             SELECT c.parent_id, hit.impact FROM hit JOIN components c ON c.id = hit.component_id
             WHERE c.parent_id IS NOT NULL)
         SELECT component_id, impact FROM hit WHERE ",
    )
    .push_in_list("component_id", ids);
    let rows: Vec<(String, i64)> = q.build_query_as().fetch_all(&mut *conn).await?;
    let mut worst: HashMap<String, ImpactLevel> = HashMap::new();
    for (id, code) in rows {
        if let Some(level) = i32::try_from(code).ok().and_then(ImpactLevel::from_code) {
            let e = worst.entry(id).or_insert(ImpactLevel::Operational);
            *e = e.worst(level);
        }
    }
    for c in components {
        c.status = worst
            .get(&c.id.to_string())
            .copied()
            .unwrap_or(ImpactLevel::Operational);
    }
    Ok(())
}

/// Whether `ancestor` is `id` or above it in the tree (to refuse cycles).
pub async fn is_ancestor_or_self(
    conn: &mut Conn,
    ancestor: ComponentId,
    id: ComponentId,
) -> Result<bool> {
    let found: bool = db::query_scalar(
        "WITH RECURSIVE up(id) AS (
             SELECT CAST($1 AS TEXT) UNION SELECT c.parent_id FROM components c JOIN up ON c.id = up.id
             WHERE c.parent_id IS NOT NULL)
         SELECT EXISTS (SELECT 1 FROM up WHERE id = $2)",
    )
    .bind(id.to_string())
    .bind(ancestor.to_string())
    .fetch_one(&mut *conn)
    .await?;
    Ok(found)
}

/// The live component named `name` under `parent` (top level when `None`).
pub async fn live_named(
    conn: &mut Conn,
    parent: Option<ComponentId>,
    name: &str,
) -> Result<Option<ComponentId>> {
    let id: Option<String> = db::query_scalar(
        "SELECT id FROM components
         WHERE coalesce(parent_id, '') = coalesce($1, '') AND name = $2 AND delete_time IS NULL",
    )
    .bind(parent.map(|p| p.to_string()))
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id.and_then(|id| id.parse().ok()))
}

/// What still refers to a component: live children and open, live incidents.
pub async fn dependents(conn: &mut Conn, id: ComponentId) -> Result<(i64, i64)> {
    Ok(db::query_as(
        "SELECT
           (SELECT count(*) FROM components WHERE parent_id = $1 AND delete_time IS NULL),
           (SELECT count(*) FROM incident_components ic JOIN incidents i ON i.id = ic.incident_id
            WHERE ic.component_id = $1 AND i.is_open = 1 AND i.delete_time IS NULL)",
    )
    .bind(id.to_string())
    .fetch_one(&mut *conn)
    .await?)
}

/// The columns of [`COLUMNS`], in order.
type Columns = (
    String,
    Option<String>,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
);

fn decode(
    (id, parent, name, description, create_time, update_time, delete_time, version): Columns,
) -> Result<Component> {
    let bad = |what: &str| Error::Internal(format!("stored component has a bad {what}"));
    Ok(Component {
        id: id.parse().map_err(|_| bad("id"))?,
        parent_id: parent
            .map(|p| p.parse().map_err(|_| bad("parent_id")))
            .transpose()?,
        name,
        description,
        status: ImpactLevel::Operational,
        create_time: from_nanos(create_time),
        update_time: from_nanos(update_time),
        delete_time: delete_time.map(from_nanos),
        version: version as u64,
    })
}

/// Every component's name, deleted ones included, by id.
pub async fn all_names(conn: &mut Conn) -> Result<std::collections::HashMap<ComponentId, String>> {
    let rows: Vec<(String, String)> = db::query_as("SELECT id, name FROM components")
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter()
        .map(|(id, name)| {
            let id = id.parse().map_err(|_| {
                Error::Internal(format!("stored component id {id:?} is not a UUID"))
            })?;
            Ok((id, name))
        })
        .collect()
}

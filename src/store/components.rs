//! Components, their tree, and their derived status.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{Cursor, ROWS_PER_STATEMENT, from_nanos, to_nanos};
use crate::domain::{Audience, Component, ComponentId, ImpactLevel};
use crate::error::{Error, Result};

const COLUMNS: &str =
    "id, parent_id, name, description, create_time, update_time, delete_time, version";

/// Writes new and changed components in one multi-row upsert per
/// [`ROWS_PER_STATEMENT`] of them. The unique index of live sibling names
/// backs the check the commands make first.
pub(super) async fn write_changed(
    conn: &mut SqliteConnection,
    changed: &[&Component],
) -> Result<()> {
    for chunk in changed.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO components (id, parent_id, name, description, create_time, update_time, delete_time, version) ",
        );
        q.push_values(chunk, |mut b, c| {
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
    conn: &mut SqliteConnection,
    id: ComponentId,
    audience: Audience,
) -> Result<Option<Component>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM components WHERE id = ?"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut c = decode(&row)?;
    fill_statuses(conn, std::slice::from_mut(&mut c), audience).await?;
    Ok(Some(c))
}

/// One page of components, newest first.
pub async fn list(
    conn: &mut SqliteConnection,
    parent_id: Option<ComponentId>,
    show_deleted: bool,
    after: Option<&Cursor>,
    limit: usize,
    audience: Audience,
) -> Result<Vec<Component>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM components
         WHERE (?1 IS NULL OR parent_id = ?1) AND (?2 OR delete_time IS NULL)
           AND (?3 IS NULL OR (create_time, id) < (?3, ?4))
         ORDER BY create_time DESC, id DESC LIMIT ?5"
    )))
    .bind(parent_id.map(|p| p.to_string()))
    .bind(show_deleted)
    .bind(after.map(|c| c.create_time))
    .bind(after.map(|c| c.id.as_str()))
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
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
    conn: &mut SqliteConnection,
    components: &mut [Component],
    audience: Audience,
) -> Result<()> {
    if components.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = components.iter().map(|c| c.id.to_string()).collect();
    // Walk every open impact up to the roots, then keep the rows of the asked ids.
    let rows: Vec<(String, i32)> = sqlx::query_as(
        "WITH RECURSIVE hit(component_id, impact) AS (
             SELECT ic.component_id, ic.impact FROM incident_components ic
             JOIN incidents i ON i.id = ic.incident_id
             WHERE i.is_open = 1 AND i.delete_time IS NULL AND (?2 = 0 OR i.visibility = 1)
             UNION ALL
             SELECT c.parent_id, hit.impact FROM hit JOIN components c ON c.id = hit.component_id
             WHERE c.parent_id IS NOT NULL)
         SELECT component_id, impact FROM hit
         WHERE component_id IN (SELECT value FROM json_each(?1))",
    )
    .bind(serde_json::to_string(&ids)?)
    .bind(audience == Audience::Public)
    .fetch_all(&mut *conn)
    .await?;
    let mut worst: HashMap<String, ImpactLevel> = HashMap::new();
    for (id, code) in rows {
        if let Some(level) = ImpactLevel::from_code(code) {
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
    conn: &mut SqliteConnection,
    ancestor: ComponentId,
    id: ComponentId,
) -> Result<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "WITH RECURSIVE up(id) AS (
             SELECT ?1 UNION SELECT c.parent_id FROM components c JOIN up ON c.id = up.id
             WHERE c.parent_id IS NOT NULL)
         SELECT 1 FROM up WHERE id = ?2",
    )
    .bind(id.to_string())
    .bind(ancestor.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}

/// The live component named `name` under `parent` (top level when `None`).
pub async fn live_named(
    conn: &mut SqliteConnection,
    parent: Option<ComponentId>,
    name: &str,
) -> Result<Option<ComponentId>> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT id FROM components
         WHERE coalesce(parent_id, '') = coalesce(?1, '') AND name = ?2 AND delete_time IS NULL",
    )
    .bind(parent.map(|p| p.to_string()))
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id.and_then(|id| id.parse().ok()))
}

/// What still refers to a component: live children and open, live incidents.
pub async fn dependents(conn: &mut SqliteConnection, id: ComponentId) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT
           (SELECT count(*) FROM components WHERE parent_id = ?1 AND delete_time IS NULL) AS children,
           (SELECT count(*) FROM incident_components ic JOIN incidents i ON i.id = ic.incident_id
            WHERE ic.component_id = ?1 AND i.is_open = 1 AND i.delete_time IS NULL) AS incidents",
    )
    .bind(id.to_string())
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.try_get("children")?, row.try_get("incidents")?))
}

fn decode(row: &sqlx::sqlite::SqliteRow) -> Result<Component> {
    let id: String = row.try_get("id")?;
    let parent: Option<String> = row.try_get("parent_id")?;
    let bad = |what: &str| Error::Internal(format!("stored component has a bad {what}"));
    Ok(Component {
        id: id.parse().map_err(|_| bad("id"))?,
        parent_id: parent
            .map(|p| p.parse().map_err(|_| bad("parent_id")))
            .transpose()?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        status: ImpactLevel::Operational,
        create_time: from_nanos(row.try_get("create_time")?),
        update_time: from_nanos(row.try_get("update_time")?),
        delete_time: row
            .try_get::<Option<i64>, _>("delete_time")?
            .map(from_nanos),
        version: row.try_get::<i64, _>("version")? as u64,
    })
}

/// Every component's name, deleted ones included, by id.
pub async fn all_names(
    conn: &mut SqliteConnection,
) -> Result<std::collections::HashMap<ComponentId, String>> {
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, name FROM components")
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

//! What the public view needs to read: which incidents are PUBLIC, and the
//! status updates and notes as they now are.

use sqlx::SqliteConnection;

use crate::api::convert::ts;
use crate::domain::{Note, StatusUpdate, Visibility};
use crate::error::Result;
use crate::public_view::{Facts, Named, Seen, Shown};

/// The facts of what `named` names, in at most three statements (none for
/// what it does not name).
pub async fn facts(conn: &mut SqliteConnection, named: &Named) -> Result<Facts> {
    let mut facts = Facts::default();
    if !named.incidents.is_empty() {
        let rows: Vec<(String, bool, String, String)> = sqlx::query_as(
            "SELECT id, delete_time IS NOT NULL, title, json_extract(doc, '$.summary')
             FROM incidents WHERE id IN (SELECT value FROM json_each(?1)) AND visibility = ?2",
        )
        .bind(serde_json::to_string(&named.incidents)?)
        .bind(Visibility::Public.code())
        .fetch_all(&mut *conn)
        .await?;
        for (id, deleted, title, summary) in rows {
            let seen = if deleted {
                Seen::Deleted
            } else {
                Seen::Public { title, summary }
            };
            facts.incidents.insert(id, seen);
        }
    }
    if !named.updates.is_empty() {
        let docs: Vec<String> = sqlx::query_scalar(
            "SELECT doc FROM status_updates WHERE id IN (SELECT value FROM json_each(?1))",
        )
        .bind(serde_json::to_string(&named.updates)?)
        .fetch_all(&mut *conn)
        .await?;
        for doc in docs {
            let u: StatusUpdate = serde_json::from_str(&doc)?;
            facts.updates.insert(
                u.id.to_string(),
                Shown {
                    visibility: u.visibility,
                    text: u.message,
                    edit_time: u.edit_time.map(ts),
                },
            );
        }
    }
    if !named.notes.is_empty() {
        let docs: Vec<String> = sqlx::query_scalar(
            "SELECT doc FROM notes WHERE sequence IN (SELECT value FROM json_each(?1))",
        )
        .bind(serde_json::to_string(&named.notes)?)
        .fetch_all(&mut *conn)
        .await?;
        for doc in docs {
            let n: Note = serde_json::from_str(&doc)?;
            facts.notes.insert(
                n.sequence,
                Shown {
                    visibility: n.visibility,
                    text: n.text,
                    edit_time: n.edit_time.map(ts),
                },
            );
        }
    }
    Ok(facts)
}

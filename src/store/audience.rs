//! What the public view needs to read: which incidents are PUBLIC, and the
//! status updates and notes as they now are; and the public form of events
//! made from it.

use std::collections::HashMap;

use bytes::Bytes;

use super::db::{self, Conn, Row, Sql};
use super::events::PublicIncident;

use crate::api::convert::ts;
use crate::domain::{Incident, IncidentId, Note, StatusUpdate, StatusUpdateId, Time, Visibility};
use crate::error::Result;
use crate::proto as pb;
use crate::public_view::{Facts, Named, Seen, Shown};

/// Each event as the public sees it now (`None`: hidden from it): what the
/// events name is read in at most three statements, then each is projected.
pub async fn public_forms(
    conn: &mut Conn,
    events: &[pb::TimelineEvent],
) -> Result<Vec<Option<Bytes>>> {
    let facts = facts_of(conn, events).await?;
    Ok(project(events, &facts))
}

/// What the public form of `events` depends on, read as [`public_forms`]
/// does, for [`project`] to use later.
pub async fn facts_of(conn: &mut Conn, events: &[pb::TimelineEvent]) -> Result<Facts> {
    let named = named(events);
    let rows = public_incidents(conn, &named).await?;
    facts(conn, &named, rows).await
}

/// What a group of commands holds in memory as it now is: the incidents it
/// read (under its locks) or wrote, and the status updates and notes it
/// wrote. What its own events name is all there, so the public form of
/// those events needs no read.
#[derive(Debug, Default)]
pub struct Known {
    incidents: HashMap<IncidentId, Incident>,
    updates: HashMap<StatusUpdateId, StatusUpdate>,
    notes: HashMap<u64, Note>,
}

impl Known {
    pub fn incidents(&mut self, incidents: impl IntoIterator<Item = Incident>) {
        self.incidents
            .extend(incidents.into_iter().map(|i| (i.id, i)));
    }

    pub fn updates(&mut self, updates: impl IntoIterator<Item = StatusUpdate>) {
        self.updates.extend(updates.into_iter().map(|u| (u.id, u)));
    }

    pub fn notes(&mut self, notes: impl IntoIterator<Item = Note>) {
        self.notes
            .extend(notes.into_iter().map(|n| (n.sequence, n)));
    }

    /// What [`facts_of`] would read for `events`, from memory; `None` if
    /// they name an incident or a status update the group neither read nor
    /// wrote. A note the group did not write has no row it could read: it
    /// was added by this group and not corrected since, so it is as its
    /// event says.
    pub fn facts_of(&self, events: &[pb::TimelineEvent]) -> Option<Facts> {
        let named = named(events);
        let mut rows = Vec::new();
        for id in named.incidents.keys() {
            let i = self.incidents.get(&id.parse::<IncidentId>().ok()?)?;
            if i.visibility == Visibility::Public {
                rows.push((
                    id.clone(),
                    i.delete_time.is_some(),
                    i.title.clone(),
                    i.summary.clone(),
                ));
            }
        }
        let (mut facts, updates, notes) = seen(&named, rows);
        for id in updates {
            let u = self.updates.get(&id.parse::<StatusUpdateId>().ok()?)?;
            let shown = shown(u.visibility, u.message.clone(), u.edit_time);
            facts.updates.insert(id, shown);
        }
        for sequence in notes {
            if let Some(n) = self.notes.get(&sequence) {
                let shown = shown(n.visibility, n.text.clone(), n.edit_time);
                facts.notes.insert(sequence, shown);
            }
        }
        Some(facts)
    }
}

/// As [`public_forms`], the rows of the PUBLIC incidents among those the
/// events name already read (with the events: see
/// `events::list_with_public_incidents`).
pub async fn public_forms_given(
    conn: &mut Conn,
    events: &[pb::TimelineEvent],
    incidents: Vec<PublicIncident>,
) -> Result<Vec<Option<Bytes>>> {
    let facts = facts(conn, &named(events), incidents).await?;
    Ok(project(events, &facts))
}

fn named(events: &[pb::TimelineEvent]) -> Named {
    let mut named = Named::default();
    events.iter().for_each(|e| named.add(e));
    named
}

/// Each event as the public sees it, given the facts (`None`: hidden from it).
pub fn project(events: &[pb::TimelineEvent], facts: &Facts) -> Vec<Option<Bytes>> {
    events
        .iter()
        .map(|e| crate::public_view::event(e, facts).map(|p| crate::wire::encode_reply(&p)))
        .collect()
}

/// The rows of the PUBLIC incidents among those `named` names.
async fn public_incidents(conn: &mut Conn, named: &Named) -> Result<Vec<PublicIncident>> {
    if named.incidents.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = named.incidents.keys().cloned().collect();
    Ok(db::query_as(db::per(
        "SELECT id, delete_time IS NOT NULL, title, json_extract(doc, '$.summary')
         FROM incidents WHERE id IN (SELECT value FROM json_each($1)) AND visibility = $2",
        "SELECT id, delete_time IS NOT NULL, title, doc::json ->> 'summary'
         FROM incidents WHERE id = ANY($1) AND visibility = $2",
    ))
    .bind(ids)
    .bind(Visibility::Public.code())
    .fetch_all(&mut *conn)
    .await?)
}

/// The facts of what `named` names, given which of its incidents are public
/// (`rows`): the updates and notes of those only are read (events of the
/// others are hidden whatever their updates and notes say).
async fn facts(conn: &mut Conn, named: &Named, rows: Vec<PublicIncident>) -> Result<Facts> {
    let (mut facts, updates, notes) = seen(named, rows);
    if !updates.is_empty() {
        let sql = db::per(
            "SELECT id, visibility, json_extract(doc, '$.message'), json_extract(doc, '$.edit_time')
             FROM status_updates WHERE id IN (SELECT value FROM json_each($1))",
            "SELECT id, visibility, doc::json ->> 'message', doc::json ->> 'edit_time'
             FROM status_updates WHERE id = ANY($1)",
        );
        facts
            .updates
            .extend(read_shown::<String>(conn, sql, updates.into()).await?);
    }
    if !notes.is_empty() {
        let sql = db::per(
            "SELECT sequence, visibility, json_extract(doc, '$.text'), json_extract(doc, '$.edit_time')
             FROM notes WHERE sequence IN (SELECT value FROM json_each($1))",
            "SELECT sequence, visibility, doc::json ->> 'text', doc::json ->> 'edit_time'
             FROM notes WHERE sequence = ANY($1)",
        );
        let keys: Vec<i64> = notes.iter().map(|&n| n as i64).collect();
        let rows = read_shown::<i64>(conn, sql, keys.into()).await?;
        facts
            .notes
            .extend(rows.into_iter().map(|(k, s)| (k as u64, s)));
    }
    Ok(facts)
}

/// What the public sees of the incidents, given which of those `named`
/// names are PUBLIC (`rows`), and the updates and notes whose current form
/// the rest of the facts needs: those of the public incidents that are not
/// deleted (events of the others are hidden whatever their updates and
/// notes say).
fn seen(named: &Named, rows: Vec<PublicIncident>) -> (Facts, Vec<String>, Vec<u64>) {
    let mut facts = Facts::default();
    let mut updates = Vec::new();
    let mut notes = Vec::new();
    for (id, deleted, title, summary) in rows {
        if deleted {
            facts.incidents.insert(id, Seen::Deleted);
            continue;
        }
        if let Some(posts) = named.incidents.get(&id) {
            updates.extend(posts.updates.iter().cloned());
            notes.extend(posts.notes.iter());
        }
        facts.incidents.insert(id, Seen::Public { title, summary });
    }
    (facts, updates, notes)
}

/// A status update or a note as it now is.
fn shown(visibility: Visibility, text: String, edit_time: Option<Time>) -> Shown {
    Shown {
        visibility,
        text,
        edit_time: edit_time.map(ts),
    }
}

/// Status updates or notes as they now are, read by `sql` (key, visibility,
/// current text, edit time as stored) for the keys bound as `keys`. Only
/// these columns are read: an update's revisions may be large.
async fn read_shown<K>(conn: &mut Conn, sql: Sql, keys: db::Value) -> Result<Vec<(K, Shown)>>
where
    (K, i64, String, Option<String>): Row,
{
    let rows: Vec<(K, i64, String, Option<String>)> =
        db::query_as(sql).bind(keys).fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for (key, visibility, text, edit_time) in rows {
        // Time is stored as serde writes it: RFC 3339.
        let edit_time = match edit_time {
            Some(t) => Some(serde_json::from_value::<Time>(t.into())?),
            None => None,
        };
        let visibility = i32::try_from(visibility)
            .ok()
            .and_then(Visibility::from_code)
            .unwrap_or(Visibility::Internal);
        out.push((key, shown(visibility, text, edit_time)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use crate::domain::incident::NewIncident;
    use crate::domain::{
        Audience, Incident, IncidentId, IncidentKind, IncidentStatus, Postmortem, StatusUpdate,
        StatusUpdateId, Visibility,
    };
    use crate::store::testing::migrated_before;
    use crate::store::{Store, StoreOptions, action_items, incidents, to_nanos};

    /// `value` as the version before audiences wrote it: no `visibility`
    /// (and, for a postmortem, no `published`).
    fn old_doc(value: &impl serde::Serialize) -> String {
        let mut v = serde_json::to_value(value).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("visibility");
        o.remove("published");
        v.to_string()
    }

    /// A database from before audiences opens with the incidents loaded from
    /// seeds PUBLIC and every other INTERNAL, the status updates as they were
    /// posted, and a published postmortem published as it is.
    #[tokio::test]
    async fn a_database_from_before_audiences_opens_with_only_the_seeds_public() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("old.db").display().to_string();
        let mut conn = migrated_before(&db, 6).await;
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut made: Vec<Incident> = Vec::new();
        for (n, title) in [(1, "From a seed"), (2, "Entered by hand")] {
            let new = NewIncident {
                title: title.into(),
                kind: Some(IncidentKind::Incident),
                ..NewIncident::default()
            };
            let id = IncidentId(uuid::Uuid::from_u128(n as u128));
            let i = Incident::declare(new, id, n, at, at).unwrap();
            sqlx::query(
                "INSERT INTO incidents (id, number, title, title_key, kind, status, is_open, create_time, doc)
                 VALUES (?, ?, ?, ?, 1, 1, 1, ?, ?)",
            )
            .bind(i.id.to_string())
            .bind(n)
            .bind(title)
            .bind(title.to_lowercase())
            .bind(to_nanos(at))
            .bind(old_doc(&i))
            .execute(&mut conn)
            .await
            .unwrap();
            made.push(i);
        }
        sqlx::query(
            "INSERT INTO seeds (key, incident_id, source, load_time) VALUES ('s', ?, 'f', 0)",
        )
        .bind(made[0].id.to_string())
        .execute(&mut conn)
        .await
        .unwrap();
        // An INTERNAL update on the public incident: the public must not get it.
        let update = StatusUpdate {
            id: StatusUpdateId(uuid::Uuid::from_u128(7)),
            incident_id: made[0].id,
            status: IncidentStatus::Investigating,
            message: "internal".into(),
            component_impacts: Vec::new(),
            next_update_time: None,
            visibility: Visibility::Internal,
            author: "ana".into(),
            post_time: at,
            create_time: at,
            revisions: Vec::new(),
            edit_time: None,
            version: 1,
        };
        sqlx::query(
            "INSERT INTO status_updates (id, incident_id, create_time, doc) VALUES (?, ?, ?, ?)",
        )
        .bind(update.id.to_string())
        .bind(made[0].id.to_string())
        .bind(to_nanos(at))
        .bind(serde_json::to_string(&update).unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
        let mut pm = Postmortem::empty(made[0].id);
        pm.body = "What happened".into();
        pm.publish(true, at, at).unwrap();
        sqlx::query("INSERT INTO postmortems (incident_id, doc) VALUES (?, ?)")
            .bind(made[0].id.to_string())
            .bind(old_doc(&pm))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();

        let store = Store::open(&db, StoreOptions::default()).await.unwrap();
        let mut r = store.reader().await.unwrap();
        let seeded = incidents::load(&mut r, made[0].id).await.unwrap().unwrap();
        let by_hand = incidents::load(&mut r, made[1].id).await.unwrap().unwrap();
        assert_eq!(seeded.visibility, Visibility::Public);
        assert_eq!(by_hand.visibility, Visibility::Internal);
        assert!(
            incidents::exists(&mut r, made[0].id, Audience::Public)
                .await
                .unwrap()
        );
        assert!(
            !incidents::exists(&mut r, made[1].id, Audience::Public)
                .await
                .unwrap()
        );
        for (audience, n) in [(Audience::Full, 1), (Audience::Public, 0)] {
            let updates = incidents::list_status_updates(&mut r, made[0].id, None, 10, audience)
                .await
                .unwrap();
            assert_eq!(updates.len(), n, "{audience:?}");
        }
        let pm = action_items::load_postmortem(&mut r, made[0].id)
            .await
            .unwrap();
        let published = pm.published.expect("published as it was");
        assert_eq!(
            (published.body.as_str(), published.publish_time),
            ("What happened", at)
        );
        drop(r);
        store.close().await;
    }
}

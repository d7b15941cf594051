//! Set-wise writes. The commands of a group declare what they will read; it is
//! fetched in a fixed number of statements before the first one runs. They run
//! in memory against that state, each on its own staging area that is kept
//! only if the command succeeds, so a command its rules refuse never reaches
//! SQL. What the kept ones wrote goes to the database in a fixed number of
//! multi-row statements before the one COMMIT: the statements per group do not
//! grow with the group, which is what a network database (one round trip per
//! statement) needs as much as SQLite (one thread hand-off per statement).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::incidents::WITH_COUNTS;
use super::request_ids::RequestKey;
use super::{ROWS_PER_STATEMENT, WriteCtx, to_nanos};
use crate::domain::{ComponentId, Event, Incident, IncidentId, NewEvent, StatusUpdate, Time};
use crate::error::{Error, Result};

/// What a command will read, declared before its group runs.
#[derive(Debug, Default)]
pub struct Needs {
    pub incidents: Vec<IncidentId>,
    pub components: Vec<ComponentId>,
    /// Whether it takes a new reference number (creates an incident).
    pub incident_number: bool,
}

/// A component as a write sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentRef {
    pub name: String,
    pub live: bool,
}

/// The state a group works on: rows read once, and the writes of the
/// commands kept so far, not yet in SQL.
#[derive(Default)]
pub(super) struct Working {
    /// Incidents as read from the database (`None`: no such incident).
    read: HashMap<IncidentId, Option<Incident>>,
    components: HashMap<ComponentId, Option<ComponentRef>>,
    /// The next unused reference number, once read.
    next_number: Option<i64>,
    /// request_id records, read or written in this group.
    request_ids: HashMap<(String, &'static str, String), (Vec<u8>, String)>,
    /// Changed and new incidents, as last written.
    changed: HashMap<IncidentId, Incident>,
    status_updates: Vec<StatusUpdate>,
    records: Vec<(RequestKey, String)>,
}

impl Working {
    fn incident(&self, id: IncidentId) -> Option<Option<&Incident>> {
        if let Some(i) = self.changed.get(&id) {
            return Some(Some(i));
        }
        self.read.get(&id).map(Option::as_ref)
    }

    /// Whether writes are waiting for [`flush`].
    pub(super) fn is_dirty(&self) -> bool {
        !self.changed.is_empty() || !self.status_updates.is_empty() || !self.records.is_empty()
    }

    /// The record of an earlier request with this key, if any.
    pub(super) fn request_id(&self, key: &RequestKey) -> Option<&(Vec<u8>, String)> {
        self.request_ids
            .get(&(key.caller.clone(), key.method, key.request_id.clone()))
    }

    /// Records a request's response, written with the group.
    pub(super) fn record_request_id(&mut self, key: RequestKey, response: String) {
        self.request_ids.insert(
            (key.caller.clone(), key.method, key.request_id.clone()),
            (key.fingerprint.clone(), response.clone()),
        );
        self.records.push((key, response));
    }
}

/// One command's view of the group: reads see the group's state and this
/// command's own writes; writes are staged, and reach the group only through
/// [`Tx::keep`].
pub struct Tx<'a> {
    ctx: &'a mut WriteCtx,
    incidents: HashMap<IncidentId, Incident>,
    status_updates: Vec<StatusUpdate>,
    events: Vec<Arc<Event>>,
    numbers_taken: i64,
}

impl<'a> Tx<'a> {
    pub(super) fn new(ctx: &'a mut WriteCtx) -> Self {
        Tx {
            ctx,
            incidents: HashMap::new(),
            status_updates: Vec::new(),
            events: Vec::new(),
            numbers_taken: 0,
        }
    }

    /// The commit time of the group.
    pub fn now(&self) -> Time {
        self.ctx.now
    }

    /// An incident, deleted or not, as this command would see it now.
    /// Read from the database only if the group did not fetch it.
    pub async fn incident(&mut self, id: IncidentId) -> Result<Option<Incident>> {
        if let Some(i) = self.incidents.get(&id) {
            return Ok(Some(i.clone()));
        }
        if let Some(found) = self.ctx.working.incident(id) {
            return Ok(found.cloned());
        }
        fetch_incidents(&mut self.ctx.conn, &mut self.ctx.working, &[id]).await?;
        Ok(self.ctx.working.incident(id).flatten().cloned())
    }

    /// Stages a new or changed incident.
    pub fn put_incident(&mut self, incident: Incident) {
        self.incidents.insert(incident.id, incident);
    }

    /// Takes the next reference number (the N of INC-N).
    pub async fn next_number(&mut self) -> Result<i64> {
        if self.ctx.working.next_number.is_none() {
            fetch_next_number(&mut self.ctx.conn, &mut self.ctx.working).await?;
        }
        let n = self.ctx.working.next_number.unwrap_or(1) + self.numbers_taken;
        self.numbers_taken += 1;
        Ok(n)
    }

    /// The given components as stored; unknown ids are absent.
    pub async fn components(
        &mut self,
        ids: &[ComponentId],
    ) -> Result<HashMap<ComponentId, ComponentRef>> {
        let missing: Vec<ComponentId> = ids
            .iter()
            .filter(|id| !self.ctx.working.components.contains_key(id))
            .copied()
            .collect();
        if !missing.is_empty() {
            fetch_components(&mut self.ctx.conn, &mut self.ctx.working, &missing).await?;
        }
        Ok(ids
            .iter()
            .filter_map(|id| {
                let c = self.ctx.working.components.get(id)?.clone()?;
                Some((*id, c))
            })
            .collect())
    }

    /// Stages a new status update.
    pub fn insert_status_update(&mut self, update: StatusUpdate) {
        self.status_updates.push(update);
    }

    /// Stages an event; its sequence is final if this command is kept.
    pub fn append(&mut self, event: NewEvent) -> Arc<Event> {
        let sequence = self.ctx.head + (self.ctx.events.len() + self.events.len()) as u64 + 1;
        let event = Arc::new(Event::numbered(event, sequence, self.ctx.now));
        self.events.push(Arc::clone(&event));
        event
    }

    /// Keeps this command's writes: they join the group.
    pub fn keep(self) {
        let Tx {
            ctx,
            incidents,
            status_updates,
            events,
            numbers_taken,
        } = self;
        let w = &mut ctx.working;
        if let Some(n) = w.next_number.as_mut() {
            *n += numbers_taken;
        }
        w.changed.extend(incidents);
        w.status_updates.extend(status_updates);
        ctx.events.extend(events);
    }
}

/// Reads in one go what the commands of a group declared they need.
pub(super) async fn prefetch(
    ctx: &mut WriteCtx,
    needs: &Needs,
    keys: &[&RequestKey],
) -> Result<()> {
    let conn = &mut ctx.conn;
    let w = &mut ctx.working;
    let incidents: Vec<IncidentId> = needs
        .incidents
        .iter()
        .filter(|id| w.incident(**id).is_none())
        .copied()
        .collect();
    if !incidents.is_empty() {
        fetch_incidents(conn, w, &incidents).await?;
    }
    // The components an incident already names are rendered by name when its
    // impacts change, so they are fetched with those the commands name.
    let mut components: HashSet<ComponentId> = needs.components.iter().copied().collect();
    for id in &needs.incidents {
        if let Some(Some(i)) = w.incident(*id) {
            components.extend(i.component_ids());
        }
    }
    components.retain(|c| !w.components.contains_key(c));
    if !components.is_empty() {
        let ids: Vec<ComponentId> = components.into_iter().collect();
        fetch_components(conn, w, &ids).await?;
    }
    if needs.incident_number && w.next_number.is_none() {
        fetch_next_number(conn, w).await?;
    }
    let keys: Vec<&&RequestKey> = keys.iter().filter(|k| w.request_id(k).is_none()).collect();
    if !keys.is_empty() {
        let wanted: Vec<(&str, &str, &str)> = keys
            .iter()
            .map(|k| (k.caller.as_str(), k.method, k.request_id.as_str()))
            .collect();
        let rows: Vec<(String, String, String, Vec<u8>, String)> = sqlx::query_as(
            "SELECT caller, method, request_id, fingerprint, response FROM request_ids
             WHERE (caller, method, request_id) IN
                   (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?))",
        )
        .bind(serde_json::to_string(&wanted)?)
        .fetch_all(&mut *conn)
        .await?;
        for (caller, method, request_id, fingerprint, response) in rows {
            // The method names the statement matched are the keys' own.
            if let Some(k) = keys.iter().find(|k| k.method == method) {
                w.request_ids
                    .insert((caller, k.method, request_id), (fingerprint, response));
            }
        }
    }
    Ok(())
}

async fn fetch_incidents(
    conn: &mut SqliteConnection,
    w: &mut Working,
    ids: &[IncidentId],
) -> Result<()> {
    let wanted: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {WITH_COUNTS} FROM incidents i WHERE i.id IN (SELECT value FROM json_each(?))"
    )))
    .bind(serde_json::to_string(&wanted)?)
    .fetch_all(&mut *conn)
    .await?;
    for id in ids {
        w.read.insert(*id, None);
    }
    for row in rows {
        let incident = super::incidents::decode_counted(row)?;
        w.read.insert(incident.id, Some(incident));
    }
    Ok(())
}

async fn fetch_components(
    conn: &mut SqliteConnection,
    w: &mut Working,
    ids: &[ComponentId],
) -> Result<()> {
    let wanted: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT id, name, delete_time IS NULL FROM components
         WHERE id IN (SELECT value FROM json_each(?))",
    )
    .bind(serde_json::to_string(&wanted)?)
    .fetch_all(&mut *conn)
    .await?;
    for id in ids {
        w.components.insert(*id, None);
    }
    for (id, name, live) in rows {
        let id: ComponentId = id
            .parse()
            .map_err(|_| Error::Internal(format!("stored component id {id:?} is not a UUID")))?;
        w.components.insert(id, Some(ComponentRef { name, live }));
    }
    Ok(())
}

async fn fetch_next_number(conn: &mut SqliteConnection, w: &mut Working) -> Result<()> {
    let max: Option<i64> = sqlx::query_scalar("SELECT max(number) FROM incidents")
        .fetch_one(&mut *conn)
        .await?;
    w.next_number = Some(max.unwrap_or(0) + 1);
    Ok(())
}

/// Writes what the kept commands wrote, a fixed number of statements whatever
/// their number, and forgets what was read: the next command to run may
/// follow a write this state did not see.
pub(super) async fn flush(ctx: &mut WriteCtx) -> Result<()> {
    let w = std::mem::take(&mut ctx.working);
    let conn = &mut ctx.conn;
    let changed: Vec<(&Incident, Option<&Incident>)> = w
        .changed
        .values()
        .map(|i| (i, w.read.get(&i.id).and_then(Option::as_ref)))
        .collect();
    super::incidents::write_changed(conn, &changed).await?;
    for chunk in w.status_updates.chunks(ROWS_PER_STATEMENT) {
        let mut docs = Vec::with_capacity(chunk.len());
        for u in chunk {
            docs.push(serde_json::to_string(u)?);
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO status_updates (id, incident_id, create_time, doc) ",
        );
        q.push_values(chunk.iter().zip(docs), |mut b, (u, doc)| {
            b.push_bind(u.id.to_string())
                .push_bind(u.incident_id.to_string())
                .push_bind(to_nanos(u.create_time))
                .push_bind(doc);
        });
        q.build().execute(&mut *conn).await?;
    }
    let now = to_nanos(ctx.now);
    for chunk in w.records.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO request_ids (caller, method, request_id, fingerprint, response, create_time) ",
        );
        q.push_values(chunk, |mut b, (k, response)| {
            b.push_bind(k.caller.as_str())
                .push_bind(k.method)
                .push_bind(k.request_id.as_str())
                .push_bind(k.fingerprint.as_slice())
                .push_bind(response.as_str())
                .push_bind(now);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

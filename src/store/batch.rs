//! Set-wise writes. The commands of a group declare what they will read; it is
//! fetched in a fixed number of statements before the first one runs. They run
//! in memory against that state, each on its own staging area that is kept
//! only if the command succeeds, so a command its rules refuse never reaches
//! SQL. What the kept ones wrote goes to the database in a fixed number of
//! multi-row statements before the one COMMIT: the statements per group do not
//! grow with the group, which is what a network database (one round trip per
//! statement) needs as much as SQLite (one thread hand-off per statement).
//!
//! Component writes are rare, and their rules read the tree and the incidents
//! that use it (names unique among live siblings, no cycles, nothing live
//! referring to a deleted one): their reads go to the connection, after the
//! writes the group kept so far are written (still before the COMMIT), which
//! then count as read.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::incidents::WITH_COUNTS;
use super::request_ids::RequestKey;
use super::{ROWS_PER_STATEMENT, WriteCtx, to_nanos};
use crate::domain::{
    ActionItem, ActionItemId, Component, ComponentId, Event, Incident, IncidentId, NewEvent,
    Postmortem, StatusUpdate, Time,
};
use crate::error::{Error, Result};

/// What a command will read, declared before its group runs.
#[derive(Debug, Default)]
pub struct Needs {
    pub incidents: Vec<IncidentId>,
    pub components: Vec<ComponentId>,
    /// Action items; the incident of each is read with them.
    pub action_items: Vec<ActionItemId>,
    /// Postmortems, by their incident.
    pub postmortems: Vec<IncidentId>,
    /// Whether it takes a new reference number (creates an incident).
    pub incident_number: bool,
}

/// A component as a write sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentRef {
    pub name: String,
    pub live: bool,
}

impl From<&Component> for ComponentRef {
    fn from(c: &Component) -> Self {
        ComponentRef {
            name: c.name.clone(),
            live: c.delete_time.is_none(),
        }
    }
}

/// What an action item adds to its incident's counts: (all, not yet
/// closed), of live items only, as `WITH_COUNTS` counts them.
fn counted(item: Option<&ActionItem>) -> (i64, i64) {
    match item {
        Some(a) if a.delete_time.is_none() => (1, i64::from(!a.status.is_closed())),
        _ => (0, 0),
    }
}

/// How a write of an action item (`before` as read, `None`: new) changes its
/// incident's counts.
fn count_change(before: Option<&ActionItem>, after: &ActionItem) -> (i64, i64) {
    let (b, a) = (counted(before), counted(Some(after)));
    (a.0 - b.0, a.1 - b.1)
}

/// The state a group works on: rows read once, and the writes of the
/// commands kept so far, not yet in SQL.
#[derive(Default)]
pub(super) struct Working {
    /// Incidents as read from the database (`None`: no such incident), with
    /// their action-item counts as read.
    read: HashMap<IncidentId, Option<Incident>>,
    components: HashMap<ComponentId, Option<ComponentRef>>,
    /// Action items as read (`None`: no such item).
    action_items: HashMap<ActionItemId, Option<ActionItem>>,
    /// Postmortems as read, by incident (the empty draft if none is stored).
    postmortems: HashMap<IncidentId, Postmortem>,
    /// The next unused reference number, once read.
    next_number: Option<i64>,
    /// request_id records, read or written in this group.
    request_ids: HashMap<(String, &'static str, String), (Vec<u8>, String)>,
    /// Changed and new incidents, as last written.
    changed: HashMap<IncidentId, Incident>,
    changed_components: HashMap<ComponentId, Component>,
    changed_action_items: HashMap<ActionItemId, ActionItem>,
    changed_postmortems: HashMap<IncidentId, Postmortem>,
    /// What the changed action items add to their incidents' counts as read.
    count_changes: HashMap<IncidentId, (i64, i64)>,
    status_updates: Vec<StatusUpdate>,
    records: Vec<(RequestKey, String)>,
    /// Why writing the kept commands failed in the middle of the group (see
    /// [`Tx::write_kept`]): the group cannot commit.
    failed: Option<String>,
}

impl Working {
    fn incident(&self, id: IncidentId) -> Option<Option<&Incident>> {
        if let Some(i) = self.changed.get(&id) {
            return Some(Some(i));
        }
        self.read.get(&id).map(Option::as_ref)
    }

    /// An incident's action-item counts: as read, and what the kept writes
    /// changed since.
    fn counts(&self, id: IncidentId) -> (i64, i64) {
        let (mut all, mut open) = match self.read.get(&id) {
            Some(Some(i)) => (i.action_item_count, i.open_action_item_count),
            _ => (0, 0),
        };
        if let Some((a, o)) = self.count_changes.get(&id) {
            all += a;
            open += o;
        }
        (all, open)
    }

    fn action_item(&self, id: ActionItemId) -> Option<Option<&ActionItem>> {
        if let Some(a) = self.changed_action_items.get(&id) {
            return Some(Some(a));
        }
        self.action_items.get(&id).map(Option::as_ref)
    }

    fn postmortem(&self, incident_id: IncidentId) -> Option<&Postmortem> {
        self.changed_postmortems
            .get(&incident_id)
            .or_else(|| self.postmortems.get(&incident_id))
    }

    fn component(&self, id: ComponentId) -> Option<Option<ComponentRef>> {
        if let Some(c) = self.changed_components.get(&id) {
            return Some(Some(ComponentRef::from(c)));
        }
        self.components.get(&id).cloned()
    }

    /// Whether the kept commands wrote anything not yet in SQL.
    fn has_writes(&self) -> bool {
        !self.changed.is_empty()
            || !self.changed_components.is_empty()
            || !self.changed_action_items.is_empty()
            || !self.changed_postmortems.is_empty()
            || !self.status_updates.is_empty()
            || !self.records.is_empty()
    }

    /// Whether writes are waiting for [`flush`] (or a failed one must be reported by it).
    pub(super) fn is_dirty(&self) -> bool {
        self.has_writes() || self.failed.is_some()
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

    /// Once the kept writes are in SQL: they become the state as read, so
    /// what comes next neither writes them again nor reads them again.
    fn settle(&mut self) {
        for (id, mut incident) in std::mem::take(&mut self.changed) {
            (incident.action_item_count, incident.open_action_item_count) = self.counts(id);
            self.count_changes.remove(&id);
            self.read.insert(id, Some(incident));
        }
        for (id, (all, open)) in std::mem::take(&mut self.count_changes) {
            if let Some(Some(i)) = self.read.get_mut(&id) {
                i.action_item_count += all;
                i.open_action_item_count += open;
            }
        }
        for (id, c) in std::mem::take(&mut self.changed_components) {
            self.components.insert(id, Some(ComponentRef::from(&c)));
        }
        for (id, a) in std::mem::take(&mut self.changed_action_items) {
            self.action_items.insert(id, Some(a));
        }
        self.postmortems
            .extend(std::mem::take(&mut self.changed_postmortems));
        self.status_updates.clear();
        self.records.clear();
    }
}

/// One command's view of the group: reads see the group's state and this
/// command's own writes; writes are staged, and reach the group only through
/// [`Tx::keep`].
pub struct Tx<'a> {
    ctx: &'a mut WriteCtx,
    incidents: HashMap<IncidentId, Incident>,
    components: HashMap<ComponentId, Component>,
    action_items: HashMap<ActionItemId, ActionItem>,
    postmortems: HashMap<IncidentId, Postmortem>,
    status_updates: Vec<StatusUpdate>,
    events: Vec<Arc<Event>>,
    numbers_taken: i64,
}

impl<'a> Tx<'a> {
    pub(super) fn new(ctx: &'a mut WriteCtx) -> Self {
        Tx {
            ctx,
            incidents: HashMap::new(),
            components: HashMap::new(),
            action_items: HashMap::new(),
            postmortems: HashMap::new(),
            status_updates: Vec::new(),
            events: Vec::new(),
            numbers_taken: 0,
        }
    }

    /// The commit time of the group.
    pub fn now(&self) -> Time {
        self.ctx.now
    }

    /// An incident, deleted or not, as this command would see it now, its
    /// action-item counts included. Read from the database only if the
    /// group did not fetch it.
    pub async fn incident(&mut self, id: IncidentId) -> Result<Option<Incident>> {
        let found = if let Some(i) = self.incidents.get(&id) {
            Some(i.clone())
        } else if let Some(found) = self.ctx.working.incident(id) {
            found.cloned()
        } else {
            fetch_incidents(&mut self.ctx.conn, &mut self.ctx.working, &[id]).await?;
            self.ctx.working.incident(id).flatten().cloned()
        };
        Ok(found.map(|mut i| {
            (i.action_item_count, i.open_action_item_count) = self.counts(id);
            i
        }))
    }

    /// An incident's action-item counts, this command's writes included.
    fn counts(&self, id: IncidentId) -> (i64, i64) {
        let w = &self.ctx.working;
        let (mut all, mut open) = w.counts(id);
        for a in self.action_items.values().filter(|a| a.incident_id == id) {
            let (da, dopen) = count_change(w.action_item(a.id).flatten(), a);
            all += da;
            open += dopen;
        }
        (all, open)
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

    /// The given components as this command would see them now; unknown ids
    /// are absent.
    pub async fn components(
        &mut self,
        ids: &[ComponentId],
    ) -> Result<HashMap<ComponentId, ComponentRef>> {
        let missing: Vec<ComponentId> = ids
            .iter()
            .filter(|id| {
                !self.components.contains_key(id) && self.ctx.working.component(**id).is_none()
            })
            .copied()
            .collect();
        if !missing.is_empty() {
            fetch_components(&mut self.ctx.conn, &mut self.ctx.working, &missing).await?;
        }
        Ok(ids
            .iter()
            .filter_map(|id| {
                let c = match self.components.get(id) {
                    Some(c) => ComponentRef::from(c),
                    None => self.ctx.working.component(*id)??,
                };
                Some((*id, c))
            })
            .collect())
    }

    /// A whole component, deleted or not, with its derived status: this
    /// command's own if it staged one, else read from the database after the
    /// writes the group kept so far. The component reads below read the
    /// database the same way, without this command's own writes.
    pub async fn component(&mut self, id: ComponentId) -> Result<Option<Component>> {
        if let Some(c) = self.components.get(&id) {
            return Ok(Some(c.clone()));
        }
        self.write_kept().await?;
        super::components::load(&mut self.ctx.conn, id).await
    }

    /// The live component named `name` under `parent` (top level when `None`).
    pub async fn live_component_named(
        &mut self,
        parent: Option<ComponentId>,
        name: &str,
    ) -> Result<Option<ComponentId>> {
        self.write_kept().await?;
        super::components::live_named(&mut self.ctx.conn, parent, name).await
    }

    /// Whether `ancestor` is `id` or above it in the tree.
    pub async fn is_ancestor_or_self(
        &mut self,
        ancestor: ComponentId,
        id: ComponentId,
    ) -> Result<bool> {
        self.write_kept().await?;
        super::components::is_ancestor_or_self(&mut self.ctx.conn, ancestor, id).await
    }

    /// What still refers to a component: (live children, open live incidents).
    pub async fn component_dependents(&mut self, id: ComponentId) -> Result<(i64, i64)> {
        self.write_kept().await?;
        super::components::dependents(&mut self.ctx.conn, id).await
    }

    /// Stages a new or changed component.
    pub fn put_component(&mut self, component: Component) {
        self.components.insert(component.id, component);
    }

    /// An action item, deleted or not, as this command would see it now.
    /// Read from the database only if the group did not fetch it.
    pub async fn action_item(&mut self, id: ActionItemId) -> Result<Option<ActionItem>> {
        if let Some(a) = self.action_items.get(&id) {
            return Ok(Some(a.clone()));
        }
        if self.ctx.working.action_item(id).is_none() {
            fetch_action_items(&mut self.ctx.conn, &mut self.ctx.working, &[id]).await?;
        }
        Ok(self.ctx.working.action_item(id).flatten().cloned())
    }

    /// Stages a new or changed action item (a changed one must have been
    /// read first, through [`Tx::action_item`], for its incident's counts).
    pub fn put_action_item(&mut self, item: ActionItem) {
        self.action_items.insert(item.id, item);
    }

    /// The postmortem of an incident as this command would see it now (its
    /// empty draft if none was written). Read from the database only if the
    /// group did not fetch it.
    pub async fn postmortem(&mut self, incident_id: IncidentId) -> Result<Postmortem> {
        if let Some(p) = self.postmortems.get(&incident_id) {
            return Ok(p.clone());
        }
        if self.ctx.working.postmortem(incident_id).is_none() {
            fetch_postmortems(&mut self.ctx.conn, &mut self.ctx.working, &[incident_id]).await?;
        }
        Ok(self
            .ctx
            .working
            .postmortem(incident_id)
            .cloned()
            .unwrap_or_else(|| Postmortem::empty(incident_id)))
    }

    /// Stages a changed postmortem.
    pub fn put_postmortem(&mut self, postmortem: Postmortem) {
        self.postmortems.insert(postmortem.incident_id, postmortem);
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

    /// Writes what the group kept so far, so that a read through the
    /// connection sees it; the group's state stays as it is, now as read.
    /// If that fails, the group cannot commit: [`flush`] reports it, and the
    /// writer retries the group's commands one at a time.
    async fn write_kept(&mut self) -> Result<()> {
        let ctx = &mut *self.ctx;
        if let Some(e) = &ctx.working.failed {
            return Err(Error::Internal(e.clone()));
        }
        if !ctx.working.has_writes() {
            return Ok(());
        }
        if let Err(e) = write(&mut ctx.conn, &ctx.working, ctx.now).await {
            let e = format!("writing the group's earlier commands failed: {e}");
            ctx.working.failed = Some(e.clone());
            return Err(Error::Internal(e));
        }
        ctx.working.settle();
        Ok(())
    }

    /// Keeps this command's writes: they join the group.
    pub fn keep(self) {
        let Tx {
            ctx,
            incidents,
            components,
            action_items,
            postmortems,
            status_updates,
            events,
            numbers_taken,
        } = self;
        let w = &mut ctx.working;
        if let Some(n) = w.next_number.as_mut() {
            *n += numbers_taken;
        }
        for (id, item) in action_items {
            let (all, open) = count_change(w.action_item(id).flatten(), &item);
            if (all, open) != (0, 0) {
                let c = w.count_changes.entry(item.incident_id).or_default();
                c.0 += all;
                c.1 += open;
            }
            w.changed_action_items.insert(id, item);
        }
        w.changed.extend(incidents);
        w.changed_components.extend(components);
        w.changed_postmortems.extend(postmortems);
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
    let items = unique(
        needs
            .action_items
            .iter()
            .copied()
            .filter(|id| w.action_item(*id).is_none()),
    );
    if !items.is_empty() {
        fetch_action_items(conn, w, &items).await?;
    }
    // The incidents of the action items are read with those the commands name.
    let of_items: Vec<IncidentId> = needs
        .action_items
        .iter()
        .filter_map(|id| w.action_item(*id).flatten().map(|a| a.incident_id))
        .collect();
    let incidents = unique(
        needs
            .incidents
            .iter()
            .copied()
            .chain(of_items)
            .filter(|id| w.incident(*id).is_none()),
    );
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
    let postmortems = unique(
        needs
            .postmortems
            .iter()
            .copied()
            .filter(|id| w.postmortem(*id).is_none()),
    );
    if !postmortems.is_empty() {
        fetch_postmortems(conn, w, &postmortems).await?;
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

/// Each id once, in the order first seen.
fn unique<T: Copy + Eq + std::hash::Hash>(ids: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    ids.filter(|id| seen.insert(*id)).collect()
}

async fn fetch_action_items(
    conn: &mut SqliteConnection,
    w: &mut Working,
    ids: &[ActionItemId],
) -> Result<()> {
    let found = super::action_items::load_many(conn, ids).await?;
    for id in ids {
        w.action_items.insert(*id, None);
    }
    for a in found {
        w.action_items.insert(a.id, Some(a));
    }
    Ok(())
}

async fn fetch_postmortems(
    conn: &mut SqliteConnection,
    w: &mut Working,
    ids: &[IncidentId],
) -> Result<()> {
    let found = super::action_items::load_postmortems(conn, ids).await?;
    for id in ids {
        w.postmortems.insert(*id, Postmortem::empty(*id));
    }
    for p in found {
        w.postmortems.insert(p.incident_id, p);
    }
    Ok(())
}

/// Writes what the kept commands wrote, a fixed number of statements whatever
/// their number, and forgets what was read: the next command to run may
/// follow a write this state did not see.
pub(super) async fn flush(ctx: &mut WriteCtx) -> Result<()> {
    let w = std::mem::take(&mut ctx.working);
    if let Some(e) = w.failed {
        return Err(Error::Internal(e));
    }
    write(&mut ctx.conn, &w, ctx.now).await
}

/// Writes the kept commands' writes: a fixed number of multi-row statements
/// per table, parents before what refers to them.
async fn write(conn: &mut SqliteConnection, w: &Working, now: Time) -> Result<()> {
    let components: Vec<&Component> = w.changed_components.values().collect();
    super::components::write_changed(conn, &components).await?;
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
    let items: Vec<(&ActionItem, Option<&ActionItem>)> = w
        .changed_action_items
        .values()
        .map(|a| (a, w.action_items.get(&a.id).and_then(Option::as_ref)))
        .collect();
    super::action_items::write_changed(conn, &items).await?;
    let postmortems: Vec<&Postmortem> = w.changed_postmortems.values().collect();
    super::action_items::write_postmortems(conn, &postmortems).await?;
    let now = to_nanos(now);
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

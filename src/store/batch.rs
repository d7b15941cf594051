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

use super::audience::Known;
use super::db::{self, Builder, Conn, Dialect};
use super::incidents::WITH_COUNTS;
use super::request_ids::RequestKey;
use super::writer::TreeLock;
use super::{ROWS_PER_STATEMENT, WriteCtx, to_nanos};
use crate::domain::{
    ActionItem, ActionItemId, Audience, Component, ComponentId, Event, Incident, IncidentId,
    NewEvent, Note, Postmortem, StatusUpdate, StatusUpdateId, Time,
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
    /// Whether it changes the component tree (creates, renames, moves or
    /// deletes a component): the group holds the tree exclusively from the
    /// start, not from the middle of its run (two groups each holding it
    /// shared and asking for more would wait for each other).
    pub component_tree: bool,
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
    /// request_id records, read or answered in this group (written at
    /// COMMIT, once the answers' sequences are final).
    request_ids: HashMap<(String, &'static str, String), (Vec<u8>, String)>,
    /// Changed and new incidents, as last written.
    changed: HashMap<IncidentId, Incident>,
    changed_components: HashMap<ComponentId, Component>,
    changed_action_items: HashMap<ActionItemId, ActionItem>,
    changed_postmortems: HashMap<IncidentId, Postmortem>,
    /// What the changed action items add to their incidents' counts as read.
    count_changes: HashMap<IncidentId, (i64, i64)>,
    status_updates: Vec<StatusUpdate>,
    notes: Vec<Note>,
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
            || !self.notes.is_empty()
    }

    /// The record of an earlier request with this key, if any.
    pub(super) fn request_id(&self, key: &RequestKey) -> Option<&(Vec<u8>, String)> {
        self.request_ids
            .get(&(key.caller.clone(), key.method, key.request_id.clone()))
    }

    /// Remembers a request's response, so that a retry later in the group
    /// replays it.
    pub(super) fn record_request_id(&mut self, key: RequestKey, response: String) {
        self.request_ids.insert(
            (key.caller, key.method, key.request_id),
            (key.fingerprint, response),
        );
    }

    /// Once the kept writes are in SQL: they become the state as read, so
    /// what comes next neither writes them again nor reads them again.
    /// Records in `committed` what they made of the incidents they touched.
    fn settle(&mut self, committed: &mut Committed, known: Option<&mut Known>) {
        let touched: Vec<IncidentId> = self
            .changed
            .keys()
            .chain(self.count_changes.keys())
            .copied()
            .collect();
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
        for id in touched {
            if let Some(Some(i)) = self.read.get(&id) {
                committed.pend(i);
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
        match known {
            Some(known) => {
                known.updates(self.status_updates.drain(..));
                known.notes(self.notes.drain(..));
            }
            None => {
                self.status_updates.clear();
                self.notes.clear();
            }
        }
    }
}

/// Incidents as committed, kept by the writer from one group to the next so a
/// group reads from the database only the incidents it has not seen. Sound
/// on SQLite, where this writer is the only one that changes incidents; on
/// PostgreSQL, shared by several replicas, it is not read (each group reads,
/// and locks, what it changes).
pub(super) struct Committed {
    incidents: quick_cache::unsync::Cache<IncidentId, Incident>,
    /// What the open transaction made of the incidents it changed or first
    /// read from the database: kept only once it commits, and read before
    /// `incidents` meanwhile (a job between
    /// two runs of commands of one group resets the group's state, and the
    /// second run must see what the first wrote).
    pending: HashMap<IncidentId, Incident>,
    enabled: bool,
}

impl Committed {
    /// Keeps up to `capacity` incidents (0: none).
    pub(super) fn new(capacity: usize) -> Self {
        Committed {
            incidents: quick_cache::unsync::Cache::new(capacity.max(1)),
            pending: HashMap::new(),
            enabled: capacity > 0,
        }
    }

    /// The transaction committed: what it wrote is now the committed state.
    /// An incident as the open transaction leaves it.
    fn pend(&mut self, incident: &Incident) {
        if self.enabled {
            self.pending.insert(incident.id, incident.clone());
        }
    }

    pub(super) fn committed(&mut self) {
        for (id, i) in self.pending.drain() {
            self.incidents.insert(id, i);
        }
    }

    /// The transaction was rolled back: nothing it wrote happened.
    pub(super) fn rolled_back(&mut self) {
        self.pending.clear();
    }

    /// Part of the transaction was rolled back (a savepoint): what is pending
    /// can no longer be told apart, so start over.
    pub(super) fn forget_all(&mut self) {
        self.pending.clear();
        self.incidents.clear();
    }

    fn get(&self, id: IncidentId) -> Option<&Incident> {
        self.pending.get(&id).or_else(|| self.incidents.get(&id))
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
    notes: Vec<Note>,
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
            notes: Vec::new(),
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
            let ctx = &mut *self.ctx;
            fetch_incidents(&mut ctx.conn, &mut ctx.working, &mut ctx.committed, &[id]).await?;
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
            let ctx = &mut *self.ctx;
            fetch_components(&mut ctx.conn, &mut ctx.tree, &mut ctx.working, &missing).await?;
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
        self.hold_tree().await?;
        self.write_kept().await?;
        super::components::load(&mut self.ctx.conn, id, Audience::Full).await
    }

    /// The live component named `name` under `parent` (top level when `None`).
    pub async fn live_component_named(
        &mut self,
        parent: Option<ComponentId>,
        name: &str,
    ) -> Result<Option<ComponentId>> {
        self.hold_tree().await?;
        self.write_kept().await?;
        super::components::live_named(&mut self.ctx.conn, parent, name).await
    }

    /// Whether `ancestor` is `id` or above it in the tree.
    pub async fn is_ancestor_or_self(
        &mut self,
        ancestor: ComponentId,
        id: ComponentId,
    ) -> Result<bool> {
        self.hold_tree().await?;
        self.write_kept().await?;
        super::components::is_ancestor_or_self(&mut self.ctx.conn, ancestor, id).await
    }

    /// What still refers to a component: (live children, open live incidents).
    pub async fn component_dependents(&mut self, id: ComponentId) -> Result<(i64, i64)> {
        self.hold_tree().await?;
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

    /// Stages a new or corrected status update.
    pub fn put_status_update(&mut self, update: StatusUpdate) {
        self.status_updates.push(update);
    }

    /// A status update: read from the database after the writes the group
    /// kept so far (corrections are rare: no set-wise read for them).
    pub async fn status_update(&mut self, id: StatusUpdateId) -> Result<Option<StatusUpdate>> {
        self.write_kept().await?;
        super::incidents::load_status_update(&mut self.ctx.conn, id).await
    }

    /// A note of an incident, by the sequence of its NOTE_ADDED event, read
    /// like [`Tx::status_update`].
    pub async fn note(&mut self, incident_id: IncidentId, sequence: u64) -> Result<Option<Note>> {
        self.write_kept().await?;
        super::notes::load(&mut self.ctx.conn, incident_id, sequence).await
    }

    /// Stages a new or corrected note.
    pub fn put_note(&mut self, note: Note) {
        self.notes.push(note);
    }

    /// Stages an event; its sequence is final if this command is kept.
    pub fn append(&mut self, event: NewEvent) -> Arc<Event> {
        let sequence = self.ctx.base + (self.ctx.events.len() + self.events.len()) as u64 + 1;
        let event = Arc::new(Event::numbered(event, sequence, self.ctx.now));
        self.events.push(Arc::clone(&event));
        event
    }

    /// Holds the component tree exclusively until the group commits (on
    /// PostgreSQL): what a component command reads of the tree to change it
    /// (names among siblings, ancestors, what refers to a component) stays
    /// as read.
    async fn hold_tree(&mut self) -> Result<()> {
        let ctx = &mut *self.ctx;
        hold_tree(&mut ctx.conn, &mut ctx.tree, TreeLock::Exclusive).await
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
        if let Err(e) = write(&mut ctx.conn, &ctx.working).await {
            let e = format!("writing the group's earlier commands failed: {e}");
            ctx.working.failed = Some(e.clone());
            return Err(Error::Internal(e));
        }
        ctx.working.settle(&mut ctx.committed, ctx.known.as_mut());
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
            notes,
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
        w.notes.extend(notes);
        ctx.events.extend(events);
    }
}

/// Reads in one go what the commands of a group declared they need.
pub(super) async fn prefetch(
    ctx: &mut WriteCtx,
    needs: &Needs,
    keys: &[&RequestKey],
) -> Result<()> {
    if needs.component_tree {
        hold_tree(&mut ctx.conn, &mut ctx.tree, TreeLock::Exclusive).await?;
    }
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
        fetch_incidents(conn, w, &mut ctx.committed, &incidents).await?;
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
        fetch_components(conn, &mut ctx.tree, w, &ids).await?;
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
    let keys: Vec<&RequestKey> = keys
        .iter()
        .copied()
        .filter(|k| w.request_id(k).is_none())
        .collect();
    for (key, record) in super::request_ids::find_many(conn, &keys).await? {
        w.request_ids.insert(
            (key.caller.clone(), key.method, key.request_id.clone()),
            record,
        );
    }
    Ok(())
}

async fn fetch_incidents(
    conn: &mut Conn,
    w: &mut Working,
    committed: &mut Committed,
    ids: &[IncidentId],
) -> Result<()> {
    // On PostgreSQL another replica may have changed any incident since this
    // writer last saw it: each is read, and locked until the group commits
    // (in id order within the statement, so two groups locking their sets
    // this way do not wait for each other in a circle; rows locked later in
    // a group can, and PostgreSQL then fails one group, whose commands are
    // retried one at a time). The lock is what keeps two replicas from both
    // writing on top of the same version.
    let cached = conn.dialect() == Dialect::Sqlite;
    let mut wanted: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        match committed.get(*id).filter(|_| cached) {
            Some(i) => {
                w.read.insert(*id, Some(i.clone()));
            }
            None => wanted.push(id.to_string()),
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let mut q = Builder::new(&format!("SELECT {WITH_COUNTS} FROM incidents i WHERE "));
    q.push_in_list("i.id", wanted);
    q.push_per("", " ORDER BY i.id FOR UPDATE OF i");
    let rows: Vec<(String, i64, i64)> = q.build_query_as().fetch_all(&mut *conn).await?;
    for id in ids {
        w.read.entry(*id).or_insert(None);
    }
    for row in rows {
        let incident = super::incidents::decode_counted(row)?;
        // Read inside the transaction: the writer remembers it once it commits.
        committed.pend(&incident);
        w.read.insert(incident.id, Some(incident));
    }
    Ok(())
}

/// Components as a write group sees them; on PostgreSQL the tree is held
/// shared until the group commits, so one read as live stays live (deleting
/// one holds it exclusively).
async fn fetch_components(
    conn: &mut Conn,
    tree: &mut TreeLock,
    w: &mut Working,
    ids: &[ComponentId],
) -> Result<()> {
    hold_tree(conn, tree, TreeLock::Shared).await?;
    let wanted: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let mut q = Builder::new("SELECT id, name, delete_time IS NULL FROM components WHERE ");
    q.push_in_list("id", wanted);
    let rows: Vec<(String, String, bool)> = q.build_query_as().fetch_all(&mut *conn).await?;
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

async fn fetch_next_number(conn: &mut Conn, w: &mut Working) -> Result<()> {
    if conn.dialect() == Dialect::Postgres {
        // Held to COMMIT: replicas take reference numbers one group at a time.
        db::query("SELECT pg_advisory_xact_lock($1)")
            .bind(NUMBERS_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let max: Option<i64> = db::query_scalar("SELECT max(number) FROM incidents")
        .fetch_one(&mut *conn)
        .await?;
    w.next_number = Some(max.unwrap_or(0) + 1);
    Ok(())
}

/// Key of the PostgreSQL advisory lock on taking reference numbers ("numbers").
const NUMBERS_LOCK: i64 = 0x006e_756d_6265_7273;
/// Key of the PostgreSQL advisory lock on the component tree ("tree").
const TREE_LOCK: i64 = 0x7472_6565;

/// Holds the component tree in `mode` (or stronger) until the group commits,
/// on PostgreSQL; SQLite's write lock already holds the whole database.
async fn hold_tree(conn: &mut Conn, held: &mut TreeLock, mode: TreeLock) -> Result<()> {
    if conn.dialect() == Dialect::Sqlite || *held >= mode {
        return Ok(());
    }
    let sql = match mode {
        TreeLock::None => return Ok(()),
        TreeLock::Shared => "SELECT pg_advisory_xact_lock_shared($1)",
        TreeLock::Exclusive => "SELECT pg_advisory_xact_lock($1)",
    };
    db::query(sql).bind(TREE_LOCK).execute(&mut *conn).await?;
    *held = mode;
    Ok(())
}

/// Each id once, in the order first seen.
fn unique<T: Copy + Eq + std::hash::Hash>(ids: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    ids.filter(|id| seen.insert(*id)).collect()
}

async fn fetch_action_items(conn: &mut Conn, w: &mut Working, ids: &[ActionItemId]) -> Result<()> {
    let found = super::action_items::load_many(conn, ids).await?;
    for id in ids {
        w.action_items.insert(*id, None);
    }
    for a in found {
        w.action_items.insert(a.id, Some(a));
    }
    Ok(())
}

async fn fetch_postmortems(conn: &mut Conn, w: &mut Working, ids: &[IncidentId]) -> Result<()> {
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
/// their number (none if they wrote nothing), and forgets what was read: the
/// next command to run may follow a write this state did not see.
pub(super) async fn flush(ctx: &mut WriteCtx) -> Result<()> {
    let mut w = std::mem::take(&mut ctx.working);
    if let Some(e) = w.failed {
        return Err(Error::Internal(e));
    }
    write(&mut ctx.conn, &w).await?;
    w.settle(&mut ctx.committed, ctx.known.as_mut());
    if let Some(known) = ctx.known.as_mut() {
        // Read under the group's locks, or written by it: as they now are.
        known.incidents(w.read.into_values().flatten());
    }
    Ok(())
}

/// Writes the kept commands' writes: a fixed number of multi-row statements
/// per table, parents before what refers to them.
async fn write(conn: &mut Conn, w: &Working) -> Result<()> {
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
        let mut q = Builder::new(
            "INSERT INTO status_updates (id, incident_id, create_time, visibility, doc) ",
        );
        q.push_values(chunk.iter().zip(docs), |b, (u, doc)| {
            b.push_bind(u.id.to_string())
                .push_bind(u.incident_id.to_string())
                .push_bind(to_nanos(u.create_time))
                .push_bind(u.visibility.code())
                .push_bind(doc);
        });
        q.push(
            " ON CONFLICT (id) DO UPDATE SET visibility = excluded.visibility, doc = excluded.doc",
        );
        q.build().execute(&mut *conn).await?;
    }
    for chunk in w.notes.chunks(ROWS_PER_STATEMENT) {
        let mut docs = Vec::with_capacity(chunk.len());
        for n in chunk {
            docs.push(serde_json::to_string(n)?);
        }
        let mut q = Builder::new("INSERT INTO notes (sequence, incident_id, visibility, doc) ");
        q.push_values(chunk.iter().zip(docs), |b, (n, doc)| {
            b.push_bind(n.sequence as i64)
                .push_bind(n.incident_id.to_string())
                .push_bind(n.visibility.code())
                .push_bind(doc);
        });
        q.push(
            " ON CONFLICT (sequence) DO UPDATE SET visibility = excluded.visibility, doc = excluded.doc",
        );
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::domain::action_item::{ActionItemPatch, NewActionItem};
    use crate::domain::incident::ComponentImpact;
    use crate::domain::postmortem::PostmortemPatch;
    use crate::domain::{ActionItemStatus, ImpactLevel};
    use crate::service::action_items::{
        CreateActionItem, DeleteActionItem, UpdateActionItem, UpdatePostmortem,
    };
    use crate::service::components::{CreateComponent, DeleteComponent};
    use crate::store::testing::{declaration, hold_writer, open, until_queued};
    use crate::store::{Command, Store, WriteFuture};

    fn new_item(incident_id: IncidentId) -> CreateActionItem {
        CreateActionItem {
            actor: "ana".into(),
            new: NewActionItem {
                incident_id,
                title: "Add an alert".into(),
                description: String::new(),
                owner: "ana".into(),
                status: None,
                priority: None,
                due_time: None,
                complete_time: None,
                labels: [("team".to_owned(), "payments".to_owned())].into(),
            },
            occur_time: None,
        }
    }

    /// Queues `commands` in order behind a held writer, so that they run as one
    /// group, and returns their answers.
    async fn one_group<C: Command>(store: &Store, commands: Vec<C>) -> Vec<Result<C::Output>> {
        let (release, held) = hold_writer(store).await;
        let mut running = Vec::new();
        for (n, command) in commands.into_iter().enumerate() {
            let s = store.clone();
            running.push(tokio::spawn(async move { s.execute(None, command).await }));
            until_queued(store, n + 1).await;
        }
        release.send(()).unwrap();
        held.await.unwrap();
        let mut answers = Vec::new();
        for r in running {
            answers.push(r.await.unwrap());
        }
        answers
    }

    /// Mixed action item and postmortem writes, as one group.
    #[derive(Debug)]
    enum Write {
        Item(UpdateActionItem),
        Postmortem(UpdatePostmortem),
    }

    impl Command for Write {
        type Output = ();

        fn needs(&self, needs: &mut Needs) {
            match self {
                Write::Item(c) => c.needs(needs),
                Write::Postmortem(c) => c.needs(needs),
            }
        }

        fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, ()> {
            Box::pin(async move {
                match self {
                    Write::Item(c) => c.apply(tx).await.map(drop),
                    Write::Postmortem(c) => c.apply(tx).await.map(drop),
                }
            })
        }
    }

    /// Statements run by one group of `n` writes, half closing and relabeling
    /// an action item, half editing a postmortem (and by the lone group of
    /// the job that held the writer, the same for every `n`).
    async fn statements_for_group_of(n: usize) -> u64 {
        let (_dir, store) = open().await;
        let incidents = [
            store.execute(None, declaration(Vec::new())).await.unwrap(),
            store.execute(None, declaration(Vec::new())).await.unwrap(),
        ];
        let mut items = Vec::new();
        for i in 0..n.div_ceil(2) {
            let item = new_item(incidents[i % 2].id);
            items.push(store.execute(None, item).await.unwrap());
        }
        let writes: Vec<Write> = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    Write::Item(UpdateActionItem {
                        actor: "ana".into(),
                        id: items[i / 2].id,
                        etag: None,
                        patch: ActionItemPatch {
                            status: Some(ActionItemStatus::Done),
                            labels: Some([("n".to_owned(), i.to_string())].into()),
                            ..ActionItemPatch::default()
                        },
                    })
                } else {
                    Write::Postmortem(UpdatePostmortem {
                        actor: "ana".into(),
                        incident_id: incidents[(i / 2) % 2].id,
                        etag: None,
                        patch: PostmortemPatch {
                            body: Some(format!("draft {i}")),
                            ..PostmortemPatch::default()
                        },
                        max_bytes: 1 << 20,
                        occur_time: None,
                    })
                }
            })
            .collect();
        let before = store.statements_written();
        for answer in one_group(&store, writes).await {
            answer.unwrap();
        }
        let statements = store.statements_written() - before;
        let mut conn = store.reader().await.unwrap();
        let (closed, labels, postmortems): (i64, i64, i64) = crate::store::db::query_as(
            "SELECT (SELECT count(*) FROM action_items WHERE status = ?),
                    (SELECT count(*) FROM action_item_labels WHERE key = 'n'),
                    (SELECT count(*) FROM postmortems)",
        )
        .bind(ActionItemStatus::Done.code())
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(closed as usize, n.div_ceil(2), "every item is closed");
        assert_eq!(labels as usize, n.div_ceil(2), "every item is relabeled");
        assert_eq!(
            postmortems,
            n.min(4) as i64 / 2,
            "the postmortems are written"
        );
        drop(conn);
        store.close().await;
        statements
    }

    #[tokio::test]
    async fn the_statements_of_a_group_of_action_item_and_postmortem_writes_do_not_grow_with_it() {
        let two = statements_for_group_of(2).await;
        let two_hundred = statements_for_group_of(200).await;
        assert_eq!(
            two, two_hundred,
            "a group of 200 item and postmortem writes runs the statements of a group of 2"
        );
        // BEGIN, the items, incidents and postmortems read, the items,
        // labels (delete and insert) and postmortems written, the events,
        // COMMIT, and the holding job's own BEGIN and COMMIT: 12.
        assert!(two <= 14, "{two} statements");
    }

    /// An id a command of the group learns when it runs, for those after it.
    type Slot<T> = Arc<Mutex<Option<T>>>;

    fn slot<T>() -> Slot<T> {
        Arc::new(Mutex::new(None))
    }

    fn taken<T: Copy>(slot: &Slot<T>) -> T {
        slot.lock()
            .unwrap()
            .expect("an earlier command of the group filled it")
    }

    /// Commands that name what earlier commands of their group created, as a
    /// client could only in its next request: what they read is not
    /// prefetched, it is what the group kept.
    #[derive(Debug)]
    enum Step {
        Declare(Slot<IncidentId>, Vec<ComponentImpact>),
        AddItem(Slot<IncidentId>, Slot<ActionItemId>),
        CloseItem(Slot<ActionItemId>),
        DeleteItem(Slot<ActionItemId>, Option<String>),
        /// The incident's counts: (all items, open items).
        Counts(Slot<IncidentId>),
        DeleteComponent(ComponentId),
    }

    impl Command for Step {
        type Output = (i64, i64);

        fn needs(&self, _: &mut Needs) {}

        fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, (i64, i64)> {
            Box::pin(async move {
                match self {
                    Step::Declare(out, impacts) => {
                        let i = declaration(impacts.clone()).apply(tx).await?;
                        *out.lock().unwrap() = Some(i.id);
                    }
                    Step::AddItem(incident, out) => {
                        let item = new_item(taken(incident)).apply(tx).await?;
                        *out.lock().unwrap() = Some(item.id);
                    }
                    Step::CloseItem(item) => {
                        let close = UpdateActionItem {
                            actor: "ana".into(),
                            id: taken(item),
                            etag: None,
                            patch: ActionItemPatch {
                                status: Some(ActionItemStatus::Done),
                                ..ActionItemPatch::default()
                            },
                        };
                        close.apply(tx).await?;
                    }
                    Step::DeleteItem(item, etag) => {
                        let delete = DeleteActionItem {
                            actor: "ana".into(),
                            id: taken(item),
                            etag: etag.clone(),
                        };
                        delete.apply(tx).await?;
                    }
                    Step::Counts(incident) => {
                        let i = tx.incident(taken(incident)).await?.expect("the incident");
                        return Ok((i.action_item_count, i.open_action_item_count));
                    }
                    Step::DeleteComponent(id) => {
                        let delete = DeleteComponent {
                            actor: "ana".into(),
                            id: *id,
                            etag: None,
                        };
                        delete.apply(tx).await?;
                    }
                }
                Ok((0, 0))
            })
        }
    }

    /// Inside one group: an incident declared, items added to it, closed and
    /// deleted, each command seeing what those before it kept, the incident's
    /// action-item counts included; a refused command leaves nothing.
    #[tokio::test]
    async fn reads_in_a_group_see_what_the_commands_before_them_kept() {
        let (_dir, store) = open().await;
        let incident = slot();
        let (first, second, third) = (slot(), slot(), slot());
        let answers = one_group(
            &store,
            vec![
                Step::Declare(incident.clone(), Vec::new()),
                Step::AddItem(incident.clone(), first.clone()),
                Step::AddItem(incident.clone(), second.clone()),
                Step::AddItem(incident.clone(), third.clone()),
                Step::Counts(incident.clone()),
                Step::CloseItem(first.clone()),
                Step::Counts(incident.clone()),
                Step::DeleteItem(second.clone(), Some("stale".into())),
                Step::DeleteItem(third.clone(), None),
                Step::Counts(incident.clone()),
                Step::DeleteItem(third.clone(), None),
            ],
        )
        .await;
        let counts: Vec<(i64, i64)> = [4, 6, 9]
            .iter()
            .map(|&n| *answers[n].as_ref().unwrap())
            .collect();
        assert_eq!(counts, vec![(3, 3), (3, 2), (2, 1)]);
        assert!(
            matches!(answers[7], Err(Error::EtagMismatch { .. })),
            "{:?}",
            answers[7]
        );
        assert!(
            matches!(answers[10], Err(Error::NotFound { .. })),
            "deleting twice in one group: {:?}",
            answers[10]
        );
        for n in [0, 1, 2, 3, 5, 8] {
            answers[n].as_ref().unwrap();
        }
        let mut conn = store.reader().await.unwrap();
        let stored = super::super::incidents::load(&mut conn, taken(&incident))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.action_item_count, stored.open_action_item_count),
            (2, 1),
            "the stored counts are those the group saw last"
        );
        let second = super::super::action_items::load(&mut conn, taken(&second))
            .await
            .unwrap()
            .unwrap();
        assert!(
            second.delete_time.is_none(),
            "the refused delete left nothing"
        );
        assert_eq!(second.version, 1);
        let events = crate::store::testing::count_rows(&mut conn, "events").await;
        assert_eq!(events, 6, "created, 3 items created, 1 closed, 1 deleted");
        drop(conn);
        store.close().await;
    }

    /// A component command reads through the connection: it sees the
    /// incidents the group kept before it, and the commands after it see the
    /// component it kept.
    #[tokio::test]
    async fn component_commands_see_the_group_and_the_group_sees_them() {
        let (_dir, store) = open().await;
        let component = |name: &str| CreateComponent {
            actor: "ana".into(),
            name: name.into(),
            description: String::new(),
            parent_id: None,
        };
        let used = store.execute(None, component("Login")).await.unwrap();
        let unused = store.execute(None, component("Billing")).await.unwrap();
        let impact = |c: &Component| ComponentImpact {
            component_id: c.id,
            impact: ImpactLevel::MajorOutage,
        };
        let answers = one_group(
            &store,
            vec![
                Step::Declare(slot(), vec![impact(&used)]),
                Step::DeleteComponent(used.id),
                Step::DeleteComponent(unused.id),
                Step::Declare(slot(), vec![impact(&unused)]),
            ],
        )
        .await;
        answers[0].as_ref().unwrap();
        assert!(
            matches!(answers[1], Err(Error::HasDependents { .. })),
            "the incident declared before it uses the component: {:?}",
            answers[1]
        );
        answers[2].as_ref().unwrap();
        assert!(
            matches!(answers[3], Err(Error::InvalidArgument(_))),
            "the component was deleted before it: {:?}",
            answers[3]
        );
        let mut conn = store.reader().await.unwrap();
        let (incidents, live): (i64, i64) = crate::store::db::query_as(
            "SELECT (SELECT count(*) FROM incidents),
                    (SELECT count(*) FROM components WHERE delete_time IS NULL)",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!((incidents, live), (1, 1));
        drop(conn);
        store.close().await;
    }

    /// Reports an incident's title as the writer sees it.
    #[derive(Debug)]
    struct Title(IncidentId);

    impl Command for Title {
        type Output = Option<String>;

        fn needs(&self, needs: &mut Needs) {
            needs.incidents.push(self.0);
        }

        fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Option<String>> {
            Box::pin(async move { Ok(tx.incident(self.0).await?.map(|i| i.title)) })
        }
    }

    /// Reports an incident's action-item counts as the writer sees them.
    #[derive(Debug)]
    struct ItemCounts(IncidentId);

    impl Command for ItemCounts {
        type Output = Option<(i64, i64)>;

        fn needs(&self, needs: &mut Needs) {
            needs.incidents.push(self.0);
        }

        fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Option<(i64, i64)>> {
            Box::pin(async move {
                let i = tx.incident(self.0).await?;
                Ok(i.map(|i| (i.action_item_count, i.open_action_item_count)))
            })
        }
    }

    /// The counts an item write changes, without changing the incident's
    /// own row, are what a later group sees of the incident.
    #[tokio::test]
    async fn the_writer_remembers_the_counts_of_committed_items() {
        let (_dir, store) = open().await;
        let id = store.execute(None, declaration(vec![])).await.unwrap().id;
        assert_eq!(
            store.execute(None, ItemCounts(id)).await.unwrap(),
            Some((0, 0))
        );
        store.execute(None, new_item(id)).await.unwrap();
        assert_eq!(
            store.execute(None, ItemCounts(id)).await.unwrap(),
            Some((1, 1))
        );
        store.execute(None, new_item(id)).await.unwrap();
        assert_eq!(
            store.execute(None, ItemCounts(id)).await.unwrap(),
            Some((2, 2))
        );
        store.close().await;
    }

    fn rename(id: IncidentId, title: &str) -> crate::service::incidents::UpdateIncident {
        crate::service::incidents::UpdateIncident {
            actor: "ana".into(),
            id,
            etag: None,
            patch: crate::domain::incident::IncidentPatch {
                title: Some(title.into()),
                ..Default::default()
            },
            refs: Vec::new(),
            occur_time: None,
        }
    }

    /// A job between two runs of commands splits a group's state: the
    /// second run must still see what the first wrote, not the incident as it
    /// was before the group.
    #[tokio::test]
    async fn a_job_between_two_runs_of_commands_loses_no_write() {
        let (_dir, store) = open().await;
        let id = store.execute(None, declaration(vec![])).await.unwrap().id;
        // The writer has seen the incident before the group.
        store.execute(None, Title(id)).await.unwrap();

        let (release, held) = hold_writer(&store).await;
        let s = store.clone();
        let first = tokio::spawn(async move { s.execute(None, rename(id, "Renamed")).await });
        until_queued(&store, 1).await;
        let s = store.clone();
        let job = tokio::spawn(async move { s.write(|_ctx| Box::pin(async { Ok(()) })).await });
        until_queued(&store, 2).await;
        let s = store.clone();
        let second = tokio::spawn(async move { s.execute(None, Title(id)).await });
        until_queued(&store, 3).await;
        release.send(()).unwrap();
        held.await.unwrap();
        first.await.unwrap().unwrap();
        job.await.unwrap().unwrap();
        assert_eq!(second.await.unwrap().unwrap(), Some("Renamed".to_owned()));
        assert_eq!(
            store.execute(None, Title(id)).await.unwrap(),
            Some("Renamed".to_owned())
        );
        let mut conn = store.reader().await.unwrap();
        let stored = super::super::incidents::load(&mut conn, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.title, "Renamed");
        drop(conn);
        store.close().await;
    }

    /// The writer remembers incidents from one group to the next, but only
    /// what committed: a write rolled back with its savepoint is forgotten,
    /// by the rest of its group and by every group after it.
    #[tokio::test]
    async fn the_writer_remembers_only_what_committed() {
        let (_dir, store) = open().await;
        let id = store.execute(None, declaration(vec![])).await.unwrap().id;
        let title = |s: &str| Some(s.to_owned());
        assert_eq!(
            store.execute(None, Title(id)).await.unwrap(),
            title("Checkout down")
        );

        let (release, held) = hold_writer(&store).await;
        let s = store.clone();
        let failing = tokio::spawn(async move {
            s.write(move |ctx| {
                Box::pin(async move {
                    ctx.run(&rename(id, "never committed")).await?;
                    Err::<(), _>(Error::Internal("the job fails after its command".into()))
                })
            })
            .await
        });
        until_queued(&store, 1).await;
        let s = store.clone();
        let same_group = tokio::spawn(async move { s.execute(None, Title(id)).await });
        until_queued(&store, 2).await;
        release.send(()).unwrap();
        held.await.unwrap();
        assert!(failing.await.unwrap().is_err());
        assert_eq!(same_group.await.unwrap().unwrap(), title("Checkout down"));
        assert_eq!(
            store.execute(None, Title(id)).await.unwrap(),
            title("Checkout down")
        );

        // What commits is remembered, and is what the database holds.
        store
            .execute(None, rename(id, "Checkout slow"))
            .await
            .unwrap();
        assert_eq!(
            store.execute(None, Title(id)).await.unwrap(),
            title("Checkout slow")
        );
        let mut conn = store.reader().await.unwrap();
        let stored = super::super::incidents::load(&mut conn, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.title, "Checkout slow");
        drop(conn);
        store.close().await;
    }
}

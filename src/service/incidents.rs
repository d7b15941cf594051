//! Incident use cases.

use std::collections::HashMap;

use bytes::Bytes;

use crate::domain::correction::{Correction, Editor};
use crate::domain::event::VisibilityTarget;
use crate::domain::incident::{IncidentPatch, NewIncident, NewStatusUpdate};
use crate::domain::{
    Audience, ComponentId, EventPayload, Incident, IncidentId, IncidentSnapshot, NewEvent,
    StatusUpdate, StatusUpdateId, Time,
};
use crate::error::{Error, Result};
use crate::incident_cache::IncidentCache;
use crate::store::db::Conn;
use crate::store::incidents::{self as db, IncidentFilter};
use crate::store::{Command, Cursor, Needs, Store, Tx, WriteFuture};

use super::check_etag;

/// How a client names an incident: by id or by reference ("INC-42").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncidentRef {
    Id(IncidentId),
    Number(i64),
}

/// Components a write refers to, each with the request field that names it.
pub type ComponentRefs = Vec<(String, ComponentId)>;

/// Refuses components a write names that do not exist or are deleted.
pub(super) async fn require_live_components(tx: &mut Tx<'_>, refs: &ComponentRefs) -> Result<()> {
    if refs.is_empty() {
        return Ok(());
    }
    let ids: Vec<ComponentId> = refs.iter().map(|(_, id)| *id).collect();
    let found = tx.components(&ids).await?;
    let missing: Vec<_> = refs
        .iter()
        .filter(|(_, id)| !found.get(id).is_some_and(|c| c.live))
        .map(|(field, id)| crate::error::FieldViolation {
            field: field.clone(),
            description: format!("component {id} does not exist"),
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(missing))
    }
}

/// The incident a write is about, deleted or not.
pub(super) async fn load_for_write(tx: &mut Tx<'_>, id: IncidentId) -> Result<Incident> {
    tx.incident(id).await?.ok_or(Error::NotFound {
        resource: "incident",
        id: id.to_string(),
    })
}

/// The incident a write with an etag is about, if the etag (when given) is current.
async fn load_at_etag(tx: &mut Tx<'_>, id: IncidentId, etag: Option<&str>) -> Result<Incident> {
    let incident = load_for_write(tx, id).await?;
    check_etag(etag, &incident.etag(), "incident", id.to_string())?;
    Ok(incident)
}

/// An event about `incident`, as it is after the change.
pub(super) fn event(
    incident: &Incident,
    occur_time: Time,
    actor: &str,
    payload: EventPayload,
) -> NewEvent {
    NewEvent {
        incident: Some(IncidentSnapshot::from(incident)),
        occur_time,
        actor: actor.to_owned(),
        payload,
    }
}

/// Declares an incident.
#[derive(Debug)]
pub struct CreateIncident {
    pub actor: String,
    pub new: NewIncident,
    pub refs: ComponentRefs,
    pub occur_time: Option<Time>,
}

impl Command for CreateIncident {
    type Output = Incident;

    fn needs(&self, needs: &mut Needs) {
        needs.incident_number = true;
        needs.components.extend(self.refs.iter().map(|(_, id)| *id));
    }

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Incident> {
        Box::pin(async move {
            require_live_components(tx, &self.refs).await?;
            let now = tx.now();
            let declare_time = self.occur_time.unwrap_or(now);
            let number = tx.next_number().await?;
            let incident = Incident::declare(
                self.new.clone(),
                IncidentId::generate(),
                number,
                declare_time,
                now,
            )?;
            tx.append(event(
                &incident,
                declare_time,
                &self.actor,
                EventPayload::IncidentCreated {
                    incident: Box::new(incident.clone()),
                },
            ));
            tx.put_incident(incident.clone());
            Ok(incident)
        })
    }
}

/// Changes the fields of a patch.
#[derive(Debug)]
pub struct UpdateIncident {
    pub actor: String,
    pub id: IncidentId,
    pub etag: Option<String>,
    pub patch: IncidentPatch,
    pub refs: ComponentRefs,
    /// When the change happened, if before it is recorded (imports).
    pub occur_time: Option<Time>,
}

impl Command for UpdateIncident {
    type Output = Incident;

    fn needs(&self, needs: &mut Needs) {
        needs.incidents.push(self.id);
        needs.components.extend(self.refs.iter().map(|(_, id)| *id));
    }

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Incident> {
        Box::pin(async move {
            let mut incident = load_at_etag(tx, self.id, self.etag.as_deref()).await?;
            incident.ensure_live()?;
            require_live_components(tx, &self.refs).await?;
            let now = tx.now();
            let occur_time = self.occur_time.unwrap_or(now);
            let changes = incident.apply_patch(self.patch.clone(), now)?;
            let changed = !changes.is_empty();
            if changed {
                tx.append(event(
                    &incident,
                    occur_time,
                    &self.actor,
                    EventPayload::IncidentUpdated { changes },
                ));
            }
            let moved = self
                .patch
                .visibility
                .and_then(|v| Some((incident.set_visibility(v, now)?, v)));
            if let Some((old, new)) = moved {
                tx.append(event(
                    &incident,
                    occur_time,
                    &self.actor,
                    EventPayload::VisibilityChanged {
                        target: VisibilityTarget::Incident,
                        old,
                        new,
                    },
                ));
            }
            if changed || moved.is_some() {
                tx.put_incident(incident.clone());
            }
            Ok(incident)
        })
    }
}

/// Soft-deletes (or, with `deleted: false`, restores) an incident.
#[derive(Debug)]
pub struct SetIncidentDeleted {
    pub actor: String,
    pub id: IncidentId,
    pub etag: Option<String>,
    pub deleted: bool,
}

impl Command for SetIncidentDeleted {
    type Output = Incident;

    fn needs(&self, needs: &mut Needs) {
        needs.incidents.push(self.id);
    }

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Incident> {
        Box::pin(async move {
            let mut incident = load_at_etag(tx, self.id, self.etag.as_deref()).await?;
            let now = tx.now();
            let payload = if self.deleted {
                incident.delete(now)?;
                EventPayload::IncidentDeleted { delete_time: now }
            } else {
                incident.undelete(now)?;
                EventPayload::IncidentUndeleted {
                    incident: Box::new(incident.clone()),
                }
            };
            tx.append(event(&incident, now, &self.actor, payload));
            tx.put_incident(incident.clone());
            Ok(incident)
        })
    }
}

/// Posts a status update; answers with it and the incident after it.
#[derive(Debug)]
pub struct PostStatusUpdate {
    pub actor: String,
    pub id: IncidentId,
    pub new: NewStatusUpdate,
    pub refs: ComponentRefs,
    pub occur_time: Option<Time>,
}

impl Command for PostStatusUpdate {
    type Output = (StatusUpdate, Incident);

    fn needs(&self, needs: &mut Needs) {
        needs.incidents.push(self.id);
        needs.components.extend(self.refs.iter().map(|(_, id)| *id));
    }

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Self::Output> {
        Box::pin(async move {
            let mut incident = load_for_write(tx, self.id).await?;
            incident.ensure_live()?;
            require_live_components(tx, &self.refs).await?;
            let now = tx.now();
            let post_time = self.occur_time.unwrap_or(now);
            // Names only render impact changes: an update that lists no
            // impact and does not close the incident changes none.
            let closes = self.new.status.is_some_and(|s| s.is_closed());
            let names: HashMap<ComponentId, String> =
                if self.new.component_impacts.is_empty() && !closes {
                    HashMap::new()
                } else {
                    let mut ids = incident.component_ids();
                    ids.extend(self.new.component_impacts.iter().map(|c| c.component_id));
                    tx.components(&ids)
                        .await?
                        .into_iter()
                        .map(|(id, c)| (id, c.name))
                        .collect()
                };
            let outcome = incident.post_status_update(
                self.new.clone(),
                StatusUpdateId::generate(),
                self.actor.clone(),
                post_time,
                now,
                |c| names.get(&c).cloned().unwrap_or_default(),
            )?;
            let update_id = outcome.update.id;
            tx.append(event(
                &incident,
                post_time,
                &self.actor,
                EventPayload::StatusUpdatePosted {
                    status_update: Box::new(outcome.update.clone()),
                },
            ));
            if let Some(change) = outcome.status_change {
                tx.append(event(
                    &incident,
                    post_time,
                    &self.actor,
                    EventPayload::StatusChanged {
                        change,
                        status_update_id: update_id,
                    },
                ));
            }
            if !outcome.impact_changes.is_empty() {
                tx.append(event(
                    &incident,
                    post_time,
                    &self.actor,
                    EventPayload::ComponentImpactChanged {
                        changes: outcome.impact_changes,
                        status_update_id: Some(update_id),
                    },
                ));
            }
            tx.put_status_update(outcome.update.clone());
            tx.put_incident(incident.clone());
            Ok((outcome.update, incident))
        })
    }
}

/// Corrects a status update's text or visibility.
#[derive(Debug)]
pub struct EditStatusUpdate {
    pub editor: Editor,
    pub id: StatusUpdateId,
    pub etag: Option<String>,
    pub correction: Correction,
}

impl Command for EditStatusUpdate {
    type Output = StatusUpdate;

    fn needs(&self, _: &mut Needs) {}

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, StatusUpdate> {
        Box::pin(async move {
            let not_found = || Error::NotFound {
                resource: "status_update",
                id: self.id.to_string(),
            };
            let mut update = tx.status_update(self.id).await?.ok_or_else(not_found)?;
            check_etag(
                self.etag.as_deref(),
                &update.etag(),
                "status_update",
                self.id.to_string(),
            )?;
            let incident = load_for_write(tx, update.incident_id).await?;
            incident.ensure_live()?;
            let now = tx.now();
            let done = update.correct(self.correction.clone(), &self.editor, now)?;
            if done.text_changed {
                tx.append(event(
                    &incident,
                    now,
                    &self.editor.name,
                    EventPayload::StatusUpdateEdited {
                        status_update: Box::new(update.clone()),
                        old_message: done.old_text.clone(),
                    },
                ));
            }
            if done.visibility_changed {
                tx.append(event(
                    &incident,
                    now,
                    &self.editor.name,
                    EventPayload::VisibilityChanged {
                        target: VisibilityTarget::StatusUpdate { id: update.id },
                        old: done.old_visibility,
                        new: update.visibility,
                    },
                ));
            }
            if done.changed() {
                tx.put_status_update(update.clone());
            }
            Ok(update)
        })
    }
}

/// Gets an incident by id or reference: for the full audience deleted or
/// not; for the public, only a PUBLIC live one (any other is NOT_FOUND,
/// exactly as one that does not exist).
pub async fn get(store: &Store, r: IncidentRef, audience: Audience) -> Result<Incident> {
    let mut conn = store.reader().await?;
    let found = match r {
        IncidentRef::Id(id) => db::load(&mut conn, id).await?,
        IncidentRef::Number(n) => db::load_by_number(&mut conn, n).await?,
    };
    found
        .filter(|i| audience == Audience::Full || i.is_public())
        .ok_or_else(|| Error::NotFound {
            resource: "incident",
            id: match r {
                IncidentRef::Id(id) => id.to_string(),
                IncidentRef::Number(n) => format!("INC-{n}"),
            },
        })
}

/// One page of incidents in their wire form, each with its position.
pub struct Page {
    pub items: Vec<(Cursor, Bytes)>,
    /// More follow the last.
    pub more: bool,
}

/// One page of at most `limit` incidents in their wire form (as `encode`
/// makes it, for the filter's audience).
///
/// Full-audience pages take their incidents from the incident cache where it
/// shows them as the read that chose the page saw them (see
/// `crate::incident_cache`), and read only the rest; failing that, the page
/// is read again as one whole.
pub async fn list(
    store: &Store,
    filter: &IncidentFilter,
    after: Option<&Cursor>,
    limit: usize,
    encode: impl Fn(&[Incident]) -> Vec<Bytes>,
) -> Result<Page> {
    let cache = store.hub().incidents();
    let mut conn = store.reader().await?;
    if filter.audience == Audience::Public || !cache.enabled() {
        return list_whole(&mut conn, filter, after, limit, &encode, None).await;
    }
    let mark = cache.mark();
    // One more, to know whether more follow.
    let mut positions = db::list_positions(&mut conn, filter, after, limit + 1).await?;
    let more = positions.len() > limit;
    positions.truncate(limit);
    let ids = positions
        .iter()
        .map(|p| {
            p.id.parse::<IncidentId>()
                .map_err(|_| Error::Internal(format!("stored incident id {:?}", p.id)))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut bodies: Vec<Option<Bytes>> = ids.iter().map(|id| cache.get_as_of(*id, &mark)).collect();
    let missing: Vec<IncidentId> = ids
        .iter()
        .zip(&bodies)
        .filter(|(_, b)| b.is_none())
        .map(|(id, _)| *id)
        .collect();
    cache.count(ids.len() - missing.len(), missing.len());
    if !missing.is_empty() {
        let unchanged = || missing.iter().all(|id| cache.unchanged_since(&mark, *id));
        // Read by id only what may still be as the page saw it.
        let read = if unchanged() {
            db::load_many(&mut conn, &missing).await?
        } else {
            Vec::new()
        };
        if read.len() != missing.len() || !unchanged() {
            return list_whole(&mut conn, filter, after, limit, &encode, Some(cache)).await;
        }
        let mut fresh: HashMap<IncidentId, Bytes> = HashMap::with_capacity(read.len());
        for (incident, body) in read.iter().zip(encode(&read)) {
            cache.fill(mark.ticket(incident.id), body.clone());
            fresh.insert(incident.id, body);
        }
        for (id, body) in ids.iter().zip(&mut bodies) {
            if body.is_none() {
                *body = fresh.remove(id);
            }
        }
    }
    let items = positions
        .into_iter()
        .zip(bodies)
        .map(|(position, body)| body.map(|b| (position, b)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Error::Internal("an incident of the page was not read".into()))?;
    Ok(Page { items, more })
}

/// The page read in one statement, documents and all; what it read fills
/// `cache`, if given.
async fn list_whole(
    conn: &mut Conn,
    filter: &IncidentFilter,
    after: Option<&Cursor>,
    limit: usize,
    encode: impl Fn(&[Incident]) -> Vec<Bytes>,
    cache: Option<&IncidentCache>,
) -> Result<Page> {
    let mark = cache.map(IncidentCache::mark);
    let mut page = db::list(conn, filter, after, limit + 1).await?;
    let more = page.len() > limit;
    page.truncate(limit);
    let bodies = encode(&page);
    if let (Some(cache), Some(mark)) = (cache, &mark) {
        for (incident, body) in page.iter().zip(&bodies) {
            cache.fill(mark.ticket(incident.id), body.clone());
        }
    }
    Ok(Page {
        items: page.iter().map(db::cursor_after).zip(bodies).collect(),
        more,
    })
}

/// One page of an incident's status updates, newest first.
pub async fn list_status_updates(
    store: &Store,
    id: IncidentId,
    after: Option<&Cursor>,
    limit: usize,
    audience: Audience,
) -> Result<Vec<StatusUpdate>> {
    let mut conn = store.reader().await?;
    if !db::exists(&mut conn, id, audience).await? {
        return Err(Error::NotFound {
            resource: "incident",
            id: id.to_string(),
        });
    }
    db::list_status_updates(&mut conn, id, after, limit, audience).await
}

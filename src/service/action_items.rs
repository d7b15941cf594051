//! Action item and postmortem use cases.

use crate::domain::action_item::{ActionItemPatch, NewActionItem};
use crate::domain::postmortem::PostmortemPatch;
use crate::domain::{
    ActionItem, ActionItemId, Audience, EventPayload, Incident, IncidentId, Postmortem, Time,
};
use crate::error::{Error, Result};
use crate::store::action_items::{self as db, ActionItemFilter};
use crate::store::incidents as incidents_db;
use crate::store::{Command, Cursor, Needs, Store, Tx, WriteFuture};

use super::check_etag;
use super::incidents::{event, load_for_write};

/// The incident a write on its action items or postmortem is about; it must be live.
async fn live_incident(tx: &mut Tx<'_>, id: IncidentId) -> Result<Incident> {
    let incident = load_for_write(tx, id).await?;
    incident.ensure_live()?;
    Ok(incident)
}

/// The item a write is about, deleted or not, if the etag (when given) is current.
async fn load_at_etag(tx: &mut Tx<'_>, id: ActionItemId, etag: Option<&str>) -> Result<ActionItem> {
    let item = tx.action_item(id).await?.ok_or(Error::NotFound {
        resource: "action_item",
        id: id.to_string(),
    })?;
    check_etag(etag, &item.etag(), "action_item", id.to_string())?;
    Ok(item)
}

/// Creates an action item on a live incident.
#[derive(Debug)]
pub struct CreateActionItem {
    pub actor: String,
    pub new: NewActionItem,
    /// When it was written, if before it is recorded (seeds).
    pub occur_time: Option<Time>,
}

impl Command for CreateActionItem {
    type Output = ActionItem;

    fn needs(&self, needs: &mut Needs) {
        needs.incidents.push(self.new.incident_id);
    }

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, ActionItem> {
        Box::pin(async move {
            let incident = live_incident(tx, self.new.incident_id).await?;
            let now = tx.now();
            let item = ActionItem::create(self.new.clone(), ActionItemId::generate(), now)?;
            tx.append(event(
                &incident,
                self.occur_time.unwrap_or(now),
                &self.actor,
                EventPayload::ActionItemCreated {
                    action_item: Box::new(item.clone()),
                },
            ));
            tx.put_action_item(item.clone());
            Ok(item)
        })
    }
}

/// Changes an item of a live incident.
#[derive(Debug)]
pub struct UpdateActionItem {
    pub actor: String,
    pub id: ActionItemId,
    pub etag: Option<String>,
    pub patch: ActionItemPatch,
}

impl Command for UpdateActionItem {
    type Output = ActionItem;

    fn needs(&self, needs: &mut Needs) {
        needs.action_items.push(self.id);
    }

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, ActionItem> {
        Box::pin(async move {
            let mut item = load_at_etag(tx, self.id, self.etag.as_deref()).await?;
            let incident = live_incident(tx, item.incident_id).await?;
            let now = tx.now();
            let changes = item.apply_patch(self.patch.clone(), now)?;
            if !changes.is_empty() {
                tx.append(event(
                    &incident,
                    now,
                    &self.actor,
                    EventPayload::ActionItemUpdated {
                        action_item: Box::new(item.clone()),
                        changes,
                    },
                ));
                tx.put_action_item(item.clone());
            }
            Ok(item)
        })
    }
}

/// Soft-deletes an item of a live incident.
#[derive(Debug)]
pub struct DeleteActionItem {
    pub actor: String,
    pub id: ActionItemId,
    pub etag: Option<String>,
}

impl Command for DeleteActionItem {
    type Output = ActionItem;

    fn needs(&self, needs: &mut Needs) {
        needs.action_items.push(self.id);
    }

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, ActionItem> {
        Box::pin(async move {
            let mut item = load_at_etag(tx, self.id, self.etag.as_deref()).await?;
            let incident = live_incident(tx, item.incident_id).await?;
            let now = tx.now();
            item.delete(now)?;
            tx.append(event(
                &incident,
                now,
                &self.actor,
                EventPayload::ActionItemDeleted {
                    action_item: Box::new(item.clone()),
                },
            ));
            tx.put_action_item(item.clone());
            Ok(item)
        })
    }
}

/// Gets an item, deleted or not.
pub async fn get(store: &Store, id: ActionItemId) -> Result<ActionItem> {
    let mut conn = store.reader().await?;
    db::load(&mut conn, id).await?.ok_or(Error::NotFound {
        resource: "action_item",
        id: id.to_string(),
    })
}

/// One page of items.
pub async fn list(
    store: &Store,
    filter: &ActionItemFilter,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<ActionItem>> {
    let mut conn = store.reader().await?;
    db::list(&mut conn, filter, after, limit).await
}

/// The postmortem of an incident (its empty draft if never written).
pub async fn get_postmortem(
    store: &Store,
    incident_id: IncidentId,
    audience: Audience,
) -> Result<Postmortem> {
    let mut conn = store.reader().await?;
    if !incidents_db::exists(&mut conn, incident_id, audience).await? {
        return Err(Error::NotFound {
            resource: "incident",
            id: incident_id.to_string(),
        });
    }
    db::load_postmortem(&mut conn, incident_id).await
}

/// The postmortem of a live incident, if the etag (when given) is current.
async fn postmortem_at_etag(
    tx: &mut Tx<'_>,
    incident_id: IncidentId,
    etag: Option<&str>,
) -> Result<Postmortem> {
    let pm = tx.postmortem(incident_id).await?;
    check_etag(etag, &pm.etag(), "postmortem", incident_id.to_string())?;
    Ok(pm)
}

/// Edits the postmortem draft of a live incident.
#[derive(Debug)]
pub struct UpdatePostmortem {
    pub actor: String,
    pub incident_id: IncidentId,
    pub etag: Option<String>,
    pub patch: PostmortemPatch,
    /// The most the body and sections may hold together, in bytes.
    pub max_bytes: usize,
    /// When it was written, if before it is recorded (seeds).
    pub occur_time: Option<Time>,
}

impl Command for UpdatePostmortem {
    type Output = Postmortem;

    fn needs(&self, needs: &mut Needs) {
        needs.incidents.push(self.incident_id);
        needs.postmortems.push(self.incident_id);
    }

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Postmortem> {
        Box::pin(async move {
            let incident = live_incident(tx, self.incident_id).await?;
            let mut pm = postmortem_at_etag(tx, self.incident_id, self.etag.as_deref()).await?;
            let now = tx.now();
            let changes = pm.apply_patch(self.patch.clone(), now);
            // The limit holds for the whole document, whichever part grew.
            let size = pm.body.len()
                + pm.sections
                    .iter()
                    .map(|s| s.title.len() + s.body.len())
                    .sum::<usize>();
            if size > self.max_bytes {
                return Err(Error::invalid(
                    "postmortem",
                    format!(
                        "body and sections together must be at most {} KiB",
                        self.max_bytes / 1024
                    ),
                ));
            }
            if !changes.is_empty() {
                let section_titles = pm.section_titles();
                tx.append(event(
                    &incident,
                    self.occur_time.unwrap_or(now),
                    &self.actor,
                    EventPayload::PostmortemUpdated {
                        changes,
                        section_titles,
                    },
                ));
                tx.put_postmortem(pm.clone());
            }
            Ok(pm)
        })
    }
}

/// Publishes the postmortem of a resolved or completed incident.
#[derive(Debug)]
pub struct PublishPostmortem {
    pub actor: String,
    pub incident_id: IncidentId,
    pub etag: Option<String>,
    pub occur_time: Option<Time>,
}

impl Command for PublishPostmortem {
    type Output = Postmortem;

    fn needs(&self, needs: &mut Needs) {
        needs.incidents.push(self.incident_id);
        needs.postmortems.push(self.incident_id);
    }

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Postmortem> {
        Box::pin(async move {
            let mut incident = live_incident(tx, self.incident_id).await?;
            let mut pm = postmortem_at_etag(tx, self.incident_id, self.etag.as_deref()).await?;
            let now = tx.now();
            let at = self.occur_time.unwrap_or(now);
            pm.publish(!incident.is_open(), at, now)?;
            incident.record_postmortem_published(at, now);
            tx.append(event(
                &incident,
                at,
                &self.actor,
                EventPayload::PostmortemPublished {
                    publish_time: at,
                    author: pm.author.clone(),
                    section_titles: pm.section_titles(),
                },
            ));
            tx.put_postmortem(pm.clone());
            tx.put_incident(incident);
            Ok(pm)
        })
    }
}

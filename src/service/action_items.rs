//! Action item and postmortem use cases.

use crate::domain::action_item::{ActionItemPatch, NewActionItem};
use crate::domain::postmortem::PostmortemPatch;
use crate::domain::{
    ActionItem, ActionItemId, EventPayload, Incident, IncidentId, IncidentSnapshot, NewEvent,
    Postmortem, Time,
};
use crate::error::{Error, Result};
use crate::store::Cursor;
use crate::store::action_items::{self as db, ActionItemFilter};
use crate::store::incidents as incidents_db;
use crate::store::request_ids::RequestKey;
use crate::store::{Store, WriteCtx};

use super::{Caller, check_etag, write_once};

async fn live_incident(ctx: &mut WriteCtx, id: IncidentId) -> Result<Incident> {
    let incident = incidents_db::load(ctx.conn(), id)
        .await?
        .ok_or(Error::NotFound {
            resource: "incident",
            id: id.to_string(),
        })?;
    incident.ensure_live()?;
    Ok(incident)
}

async fn load_item(ctx: &mut WriteCtx, id: ActionItemId) -> Result<ActionItem> {
    db::load(ctx.conn(), id).await?.ok_or(Error::NotFound {
        resource: "action_item",
        id: id.to_string(),
    })
}

async fn append(
    ctx: &mut WriteCtx,
    incident: &Incident,
    occur_time: Time,
    caller: &Caller,
    payload: EventPayload,
) -> Result<()> {
    ctx.append(NewEvent {
        incident: Some(IncidentSnapshot::from(incident)),
        occur_time,
        actor: caller.actor.clone(),
        payload,
    })
    .await?;
    Ok(())
}

/// Creates an action item on a live incident.
pub async fn create(
    store: &Store,
    caller: Caller,
    key: Option<RequestKey>,
    new: NewActionItem,
) -> Result<ActionItem> {
    write_once(store, key, move |ctx| {
        Box::pin(create_in(ctx, caller, new, None))
    })
    .await
}

/// Inside a write transaction: see [`create`].
pub async fn create_in(
    ctx: &mut WriteCtx,
    caller: Caller,
    new: NewActionItem,
    occur_time: Option<Time>,
) -> Result<ActionItem> {
    let incident = live_incident(ctx, new.incident_id).await?;
    let now = ctx.now();
    let item = ActionItem::create(new, ActionItemId::generate(), now)?;
    db::insert(ctx.conn(), &item).await?;
    append(
        ctx,
        &incident,
        occur_time.unwrap_or(now),
        &caller,
        EventPayload::ActionItemCreated {
            action_item: Box::new(item.clone()),
        },
    )
    .await?;
    Ok(item)
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

/// Changes an item.
pub async fn update(
    store: &Store,
    caller: Caller,
    key: Option<RequestKey>,
    id: ActionItemId,
    etag: Option<String>,
    patch: ActionItemPatch,
) -> Result<ActionItem> {
    write_once(store, key, move |ctx| {
        Box::pin(async move {
            let mut item = load_item(ctx, id).await?;
            check_etag(etag.as_deref(), &item.etag(), "action_item", id.to_string())?;
            let incident = live_incident(ctx, item.incident_id).await?;
            let now = ctx.now();
            let changes = item.apply_patch(patch, now)?;
            if !changes.is_empty() {
                db::save(ctx.conn(), &item).await?;
                append(
                    ctx,
                    &incident,
                    now,
                    &caller,
                    EventPayload::ActionItemUpdated {
                        action_item: Box::new(item.clone()),
                        changes,
                    },
                )
                .await?;
            }
            Ok(item)
        })
    })
    .await
}

/// Soft-deletes an item.
pub async fn delete(
    store: &Store,
    caller: Caller,
    key: Option<RequestKey>,
    id: ActionItemId,
    etag: Option<String>,
) -> Result<ActionItem> {
    write_once(store, key, move |ctx| {
        Box::pin(async move {
            let mut item = load_item(ctx, id).await?;
            check_etag(etag.as_deref(), &item.etag(), "action_item", id.to_string())?;
            let incident = live_incident(ctx, item.incident_id).await?;
            let now = ctx.now();
            item.delete(now)?;
            db::save(ctx.conn(), &item).await?;
            append(
                ctx,
                &incident,
                now,
                &caller,
                EventPayload::ActionItemDeleted {
                    action_item: Box::new(item.clone()),
                },
            )
            .await?;
            Ok(item)
        })
    })
    .await
}

/// The postmortem of an incident (its empty draft if never written).
pub async fn get_postmortem(store: &Store, incident_id: IncidentId) -> Result<Postmortem> {
    let mut conn = store.reader().await?;
    if !incidents_db::exists(&mut conn, incident_id).await? {
        return Err(Error::NotFound {
            resource: "incident",
            id: incident_id.to_string(),
        });
    }
    db::load_postmortem(&mut conn, incident_id).await
}

/// Edits the postmortem draft.
pub async fn update_postmortem(
    store: &Store,
    caller: Caller,
    key: Option<RequestKey>,
    incident_id: IncidentId,
    etag: Option<String>,
    patch: PostmortemPatch,
    max_bytes: usize,
) -> Result<Postmortem> {
    write_once(store, key, move |ctx| {
        Box::pin(update_postmortem_in(
            ctx,
            caller,
            incident_id,
            etag,
            patch,
            max_bytes,
            None,
        ))
    })
    .await
}

/// Inside a write transaction: see [`update_postmortem`].
pub async fn update_postmortem_in(
    ctx: &mut WriteCtx,
    caller: Caller,
    incident_id: IncidentId,
    etag: Option<String>,
    patch: PostmortemPatch,
    max_bytes: usize,
    occur_time: Option<Time>,
) -> Result<Postmortem> {
    let incident = live_incident(ctx, incident_id).await?;
    let mut pm = db::load_postmortem(ctx.conn(), incident_id).await?;
    check_etag(
        etag.as_deref(),
        &pm.etag(),
        "postmortem",
        incident_id.to_string(),
    )?;
    let now = ctx.now();
    let changes = pm.apply_patch(patch, now);
    // The limit holds for the whole document, whichever part grew.
    let size = pm.body.len()
        + pm.sections
            .iter()
            .map(|s| s.title.len() + s.body.len())
            .sum::<usize>();
    if size > max_bytes {
        return Err(Error::invalid(
            "postmortem",
            format!(
                "body and sections together must be at most {} KiB",
                max_bytes / 1024
            ),
        ));
    }
    if !changes.is_empty() {
        db::save_postmortem(ctx.conn(), &pm).await?;
        let section_titles = pm.section_titles();
        append(
            ctx,
            &incident,
            occur_time.unwrap_or(now),
            &caller,
            EventPayload::PostmortemUpdated {
                changes,
                section_titles,
            },
        )
        .await?;
    }
    Ok(pm)
}

/// Publishes the postmortem of a resolved or completed incident.
pub async fn publish_postmortem(
    store: &Store,
    caller: Caller,
    key: Option<RequestKey>,
    incident_id: IncidentId,
    etag: Option<String>,
    occur_time: Option<Time>,
) -> Result<Postmortem> {
    write_once(store, key, move |ctx| {
        Box::pin(publish_postmortem_in(
            ctx,
            caller,
            incident_id,
            etag,
            occur_time,
        ))
    })
    .await
}

/// Inside a write transaction: see [`publish_postmortem`].
pub async fn publish_postmortem_in(
    ctx: &mut WriteCtx,
    caller: Caller,
    incident_id: IncidentId,
    etag: Option<String>,
    occur_time: Option<Time>,
) -> Result<Postmortem> {
    let mut incident = live_incident(ctx, incident_id).await?;
    let before = incident.clone();
    let mut pm = db::load_postmortem(ctx.conn(), incident_id).await?;
    check_etag(
        etag.as_deref(),
        &pm.etag(),
        "postmortem",
        incident_id.to_string(),
    )?;
    let now = ctx.now();
    let at = occur_time.unwrap_or(now);
    pm.publish(!incident.is_open(), at, now)?;
    incident.record_postmortem_published(at, now);
    db::save_postmortem(ctx.conn(), &pm).await?;
    incidents_db::save(ctx.conn(), &incident, Some(&before)).await?;
    append(
        ctx,
        &incident,
        at,
        &caller,
        EventPayload::PostmortemPublished {
            publish_time: at,
            author: pm.author.clone(),
            section_titles: pm.section_titles(),
        },
    )
    .await?;
    Ok(pm)
}

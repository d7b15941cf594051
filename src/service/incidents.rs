//! Incident use cases.

use std::collections::HashMap;

use crate::domain::incident::{IncidentPatch, NewIncident, NewStatusUpdate};
use crate::domain::{
    ComponentId, EventPayload, Incident, IncidentId, IncidentSnapshot, NewEvent, StatusUpdate,
    StatusUpdateId, Time,
};
use crate::error::{Error, Result};
use crate::store::Cursor;
use crate::store::incidents::{self as db, IncidentFilter};
use crate::store::request_ids::RequestKey;
use crate::store::{Store, WriteCtx, components};

use super::{Caller, check_etag, write_once};

/// How a client names an incident: by id or by reference ("INC-42").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncidentRef {
    Id(IncidentId),
    Number(i64),
}

/// Components a write refers to, each with the request field that names it.
pub type ComponentRefs = Vec<(String, ComponentId)>;

async fn require_live_components(
    conn: &mut sqlx::SqliteConnection,
    refs: &ComponentRefs,
) -> Result<()> {
    if refs.is_empty() {
        return Ok(());
    }
    let ids: Vec<ComponentId> = refs.iter().map(|(_, id)| *id).collect();
    let live = components::live(conn, &ids).await?;
    let missing: Vec<_> = refs
        .iter()
        .filter(|(_, id)| !live.contains(id))
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

async fn load_for_write(conn: &mut sqlx::SqliteConnection, id: IncidentId) -> Result<Incident> {
    db::load(conn, id).await?.ok_or(Error::NotFound {
        resource: "incident",
        id: id.to_string(),
    })
}

fn event(
    incident: &Incident,
    occur_time: Time,
    caller: &Caller,
    payload: EventPayload,
) -> NewEvent {
    NewEvent {
        incident: Some(IncidentSnapshot::from(incident)),
        occur_time,
        actor: caller.actor.clone(),
        payload,
    }
}

/// Declares an incident.
pub async fn create(
    store: &Store,
    caller: Caller,
    key: Option<RequestKey>,
    new: NewIncident,
    refs: ComponentRefs,
    occur_time: Option<Time>,
) -> Result<Incident> {
    write_once(store, key, move |ctx| {
        Box::pin(create_in(ctx, caller, new, refs, occur_time))
    })
    .await
}

/// Inside a write transaction: see [`create`].
pub async fn create_in(
    ctx: &mut WriteCtx,
    caller: Caller,
    new: NewIncident,
    refs: ComponentRefs,
    occur_time: Option<Time>,
) -> Result<Incident> {
    require_live_components(ctx.conn(), &refs).await?;
    let now = ctx.now();
    let number = db::next_number(ctx.conn()).await?;
    let declare_time = occur_time.unwrap_or(now);
    let incident = Incident::declare(new, IncidentId::generate(), number, declare_time, now)?;
    db::insert(ctx.conn(), &incident).await?;
    ctx.append(event(
        &incident,
        declare_time,
        &caller,
        EventPayload::IncidentCreated {
            incident: Box::new(incident.clone()),
        },
    ))
    .await?;
    Ok(incident)
}

/// Gets an incident by id or reference, deleted or not.
pub async fn get(store: &Store, r: IncidentRef) -> Result<Incident> {
    let mut conn = store.reader().await?;
    let found = match r {
        IncidentRef::Id(id) => db::load(&mut conn, id).await?,
        IncidentRef::Number(n) => db::load_by_number(&mut conn, n).await?,
    };
    found.ok_or_else(|| Error::NotFound {
        resource: "incident",
        id: match r {
            IncidentRef::Id(id) => id.to_string(),
            IncidentRef::Number(n) => format!("INC-{n}"),
        },
    })
}

/// One page of incidents; `limit + 1` are read to know whether more follow.
pub async fn list(
    store: &Store,
    filter: &IncidentFilter,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<Incident>> {
    let mut conn = store.reader().await?;
    db::list(&mut conn, filter, after, limit).await
}

/// Changes the fields of a patch.
pub async fn update(
    store: &Store,
    caller: Caller,
    key: Option<RequestKey>,
    id: IncidentId,
    etag: Option<String>,
    patch: IncidentPatch,
    refs: ComponentRefs,
) -> Result<Incident> {
    write_once(store, key, move |ctx| {
        Box::pin(update_in(ctx, caller, id, etag, patch, refs, None))
    })
    .await
}

/// Inside a write transaction: see [`update`].
pub async fn update_in(
    ctx: &mut WriteCtx,
    caller: Caller,
    id: IncidentId,
    etag: Option<String>,
    patch: IncidentPatch,
    refs: ComponentRefs,
    occur_time: Option<Time>,
) -> Result<Incident> {
    let mut incident = load_for_write(ctx.conn(), id).await?;
    let before = incident.clone();
    check_etag(
        etag.as_deref(),
        &incident.etag(),
        "incident",
        id.to_string(),
    )?;
    incident.ensure_live()?;
    require_live_components(ctx.conn(), &refs).await?;
    let now = ctx.now();
    let changes = incident.apply_patch(patch, now)?;
    if !changes.is_empty() {
        db::save(ctx.conn(), &incident, Some(&before)).await?;
        ctx.append(event(
            &incident,
            occur_time.unwrap_or(now),
            &caller,
            EventPayload::IncidentUpdated { changes },
        ))
        .await?;
    }
    Ok(incident)
}

/// Soft-deletes (or, with `undelete`, restores) an incident.
pub async fn set_deleted(
    store: &Store,
    caller: Caller,
    key: Option<RequestKey>,
    id: IncidentId,
    etag: Option<String>,
    deleted: bool,
) -> Result<Incident> {
    write_once(store, key, move |ctx| {
        Box::pin(async move {
            let mut incident = load_for_write(ctx.conn(), id).await?;
            let before = incident.clone();
            check_etag(
                etag.as_deref(),
                &incident.etag(),
                "incident",
                id.to_string(),
            )?;
            let now = ctx.now();
            let payload = if deleted {
                incident.delete(now)?;
                EventPayload::IncidentDeleted { delete_time: now }
            } else {
                incident.undelete(now)?;
                EventPayload::IncidentUndeleted {
                    incident: Box::new(incident.clone()),
                }
            };
            db::save(ctx.conn(), &incident, Some(&before)).await?;
            ctx.append(event(&incident, now, &caller, payload)).await?;
            Ok(incident)
        })
    })
    .await
}

/// Posts a status update and returns it with the incident after it.
pub async fn post_status_update(
    store: &Store,
    caller: Caller,
    key: Option<RequestKey>,
    id: IncidentId,
    new: NewStatusUpdate,
    refs: ComponentRefs,
    occur_time: Option<Time>,
) -> Result<(StatusUpdate, Incident)> {
    write_once(store, key, move |ctx| {
        Box::pin(post_status_update_in(
            ctx, caller, id, new, refs, occur_time,
        ))
    })
    .await
}

/// Inside a write transaction: see [`post_status_update`].
pub async fn post_status_update_in(
    ctx: &mut WriteCtx,
    caller: Caller,
    id: IncidentId,
    new: NewStatusUpdate,
    refs: ComponentRefs,
    occur_time: Option<Time>,
) -> Result<(StatusUpdate, Incident)> {
    let mut incident = load_for_write(ctx.conn(), id).await?;
    let before = incident.clone();
    incident.ensure_live()?;
    require_live_components(ctx.conn(), &refs).await?;
    let now = ctx.now();
    let post_time = occur_time.unwrap_or(now);
    // Names only render impact changes: an update that lists no impact and
    // does not close the incident changes none.
    let closes = new.status.is_some_and(|s| s.is_closed());
    let names: HashMap<ComponentId, String> = if new.component_impacts.is_empty() && !closes {
        HashMap::new()
    } else {
        let mut ids = incident.component_ids();
        ids.extend(new.component_impacts.iter().map(|c| c.component_id));
        components::names(ctx.conn(), &ids).await?
    };
    let outcome = incident.post_status_update(
        new,
        StatusUpdateId::generate(),
        caller.actor.clone(),
        post_time,
        now,
        |c| names.get(&c).cloned().unwrap_or_default(),
    )?;
    db::save(ctx.conn(), &incident, Some(&before)).await?;
    db::insert_status_update(ctx.conn(), &outcome.update).await?;
    let update_id = outcome.update.id;
    ctx.append(event(
        &incident,
        post_time,
        &caller,
        EventPayload::StatusUpdatePosted {
            status_update: Box::new(outcome.update.clone()),
        },
    ))
    .await?;
    if let Some(change) = outcome.status_change {
        ctx.append(event(
            &incident,
            post_time,
            &caller,
            EventPayload::StatusChanged {
                change,
                status_update_id: update_id,
            },
        ))
        .await?;
    }
    if !outcome.impact_changes.is_empty() {
        ctx.append(event(
            &incident,
            post_time,
            &caller,
            EventPayload::ComponentImpactChanged {
                changes: outcome.impact_changes,
                status_update_id: Some(update_id),
            },
        ))
        .await?;
    }
    Ok((outcome.update, incident))
}

/// One page of an incident's status updates, newest first.
pub async fn list_status_updates(
    store: &Store,
    id: IncidentId,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<StatusUpdate>> {
    let mut conn = store.reader().await?;
    if !db::exists(&mut conn, id).await? {
        return Err(Error::NotFound {
            resource: "incident",
            id: id.to_string(),
        });
    }
    db::list_status_updates(&mut conn, id, after, limit).await
}

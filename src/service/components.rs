//! Component use cases.

use crate::domain::component::ComponentPatch;
use crate::domain::{Component, ComponentId, EventPayload, NewEvent};
use crate::error::{Error, FieldViolation, Result};
use crate::store::Cursor;
use crate::store::components as db;
use crate::store::request_ids::RequestKey;
use crate::store::{Store, WriteCtx};

use super::{Caller, check_etag, write_once};

async fn load_for_write(ctx: &mut WriteCtx, id: ComponentId) -> Result<Component> {
    db::load(ctx.conn(), id).await?.ok_or(Error::NotFound {
        resource: "component",
        id: id.to_string(),
    })
}

async fn require_live_parent(
    ctx: &mut WriteCtx,
    field: &str,
    parent: Option<ComponentId>,
) -> Result<()> {
    if let Some(p) = parent
        && db::live(ctx.conn(), &[p]).await?.is_empty()
    {
        return Err(Error::InvalidArgument(vec![FieldViolation {
            field: field.to_owned(),
            description: format!("parent component {p} does not exist"),
        }]));
    }
    Ok(())
}

async fn append(ctx: &mut WriteCtx, caller: &Caller, payload: EventPayload) -> Result<()> {
    let now = ctx.now();
    ctx.append(NewEvent {
        incident: None,
        occur_time: now,
        actor: caller.actor.clone(),
        payload,
    })
    .await?;
    Ok(())
}

/// Creates a component.
pub async fn create(
    store: &Store,
    caller: Caller,
    key: Option<RequestKey>,
    name: String,
    description: String,
    parent_id: Option<ComponentId>,
) -> Result<Component> {
    write_once(store, key, move |ctx| {
        Box::pin(create_in(ctx, caller, name, description, parent_id))
    })
    .await
}

/// Inside a write transaction: see [`create`].
pub async fn create_in(
    ctx: &mut WriteCtx,
    caller: Caller,
    name: String,
    description: String,
    parent_id: Option<ComponentId>,
) -> Result<Component> {
    require_live_parent(ctx, "component.parent_id", parent_id).await?;
    let c = Component::new(
        ComponentId::generate(),
        name,
        description,
        parent_id,
        ctx.now(),
    );
    db::insert(ctx.conn(), &c).await?;
    append(
        ctx,
        &caller,
        EventPayload::ComponentCreated {
            component: Box::new(c.clone()),
        },
    )
    .await?;
    Ok(c)
}

/// Gets a component, deleted or not.
pub async fn get(store: &Store, id: ComponentId) -> Result<Component> {
    let mut conn = store.reader().await?;
    db::load(&mut conn, id).await?.ok_or(Error::NotFound {
        resource: "component",
        id: id.to_string(),
    })
}

/// One page of components.
pub async fn list(
    store: &Store,
    parent_id: Option<ComponentId>,
    show_deleted: bool,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<Component>> {
    let mut conn = store.reader().await?;
    db::list(&mut conn, parent_id, show_deleted, after, limit).await
}

/// Changes a component's name, description or parent.
pub async fn update(
    store: &Store,
    caller: Caller,
    key: Option<RequestKey>,
    id: ComponentId,
    etag: Option<String>,
    patch: ComponentPatch,
) -> Result<Component> {
    write_once(store, key, move |ctx| {
        Box::pin(async move {
            let mut c = load_for_write(ctx, id).await?;
            check_etag(etag.as_deref(), &c.etag(), "component", id.to_string())?;
            if c.delete_time.is_some() {
                return Err(Error::NotFound {
                    resource: "component",
                    id: id.to_string(),
                });
            }
            if let Some(Some(parent)) = patch.parent_id {
                require_live_parent(ctx, "component.parent_id", Some(parent)).await?;
                if db::is_ancestor_or_self(ctx.conn(), id, parent).await? {
                    return Err(Error::invalid(
                        "component.parent_id",
                        "a component cannot be moved under itself or its descendants",
                    ));
                }
            }
            let changes = c.apply_patch(patch, ctx.now());
            if !changes.is_empty() {
                db::save(ctx.conn(), &c).await?;
                append(
                    ctx,
                    &caller,
                    EventPayload::ComponentUpdated {
                        component: Box::new(c.clone()),
                        changes,
                    },
                )
                .await?;
            }
            Ok(c)
        })
    })
    .await
}

/// Soft-deletes a component nothing live refers to.
pub async fn delete(
    store: &Store,
    caller: Caller,
    key: Option<RequestKey>,
    id: ComponentId,
    etag: Option<String>,
) -> Result<Component> {
    write_once(store, key, move |ctx| {
        Box::pin(async move {
            let mut c = load_for_write(ctx, id).await?;
            check_etag(etag.as_deref(), &c.etag(), "component", id.to_string())?;
            if c.delete_time.is_none() {
                let (children, incidents) = db::dependents(ctx.conn(), id).await?;
                if children > 0 || incidents > 0 {
                    return Err(Error::HasDependents {
                        resource: "component",
                        id: id.to_string(),
                        description: format!(
                            "component {id} is still used by {incidents} open incident(s) and has {children} live child component(s)"
                        ),
                    });
                }
            }
            c.delete(ctx.now())?;
            db::save(ctx.conn(), &c).await?;
            append(ctx, &caller, EventPayload::ComponentDeleted { component: Box::new(c.clone()) }).await?;
            Ok(c)
        })
    })
    .await
}

//! Component use cases.

use crate::domain::component::ComponentPatch;
use crate::domain::{Audience, Component, ComponentId, EventPayload, NewEvent};
use crate::error::{Error, FieldViolation, Result};
use crate::store::components as db;
use crate::store::{Command, Cursor, Needs, Store, Tx, WriteFuture};

use super::check_etag;

/// The component a write is about, deleted or not, if the etag (when given) is current.
async fn load_at_etag(tx: &mut Tx<'_>, id: ComponentId, etag: Option<&str>) -> Result<Component> {
    let c = tx.component(id).await?.ok_or(Error::NotFound {
        resource: "component",
        id: id.to_string(),
    })?;
    check_etag(etag, &c.etag(), "component", id.to_string())?;
    Ok(c)
}

async fn require_live_parent(
    tx: &mut Tx<'_>,
    field: &str,
    parent: Option<ComponentId>,
) -> Result<()> {
    if let Some(p) = parent
        && !tx.components(&[p]).await?.get(&p).is_some_and(|c| c.live)
    {
        return Err(Error::InvalidArgument(vec![FieldViolation {
            field: field.to_owned(),
            description: format!("parent component {p} does not exist"),
        }]));
    }
    Ok(())
}

/// ALREADY_EXISTS naming the live sibling that holds a live component's name, if any.
async fn require_unique_name(tx: &mut Tx<'_>, c: &Component) -> Result<()> {
    match tx.live_component_named(c.parent_id, &c.name).await? {
        Some(sibling) if sibling != c.id => Err(Error::AlreadyExists {
            meta: ("component_id", sibling.to_string()),
            message: format!("a sibling component is already named {:?}", c.name),
        }),
        _ => Ok(()),
    }
}

fn event(tx: &Tx<'_>, actor: &str, payload: EventPayload) -> NewEvent {
    NewEvent {
        incident: None,
        occur_time: tx.now(),
        actor: actor.to_owned(),
        payload,
    }
}

/// Creates a component.
#[derive(Debug)]
pub struct CreateComponent {
    pub actor: String,
    pub name: String,
    pub description: String,
    pub parent_id: Option<ComponentId>,
}

impl Command for CreateComponent {
    type Output = Component;

    fn needs(&self, needs: &mut Needs) {
        needs.component_tree = true;
        needs.components.extend(self.parent_id);
    }

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Component> {
        Box::pin(async move {
            require_live_parent(tx, "component.parent_id", self.parent_id).await?;
            let c = Component::new(
                ComponentId::generate(),
                self.name.clone(),
                self.description.clone(),
                self.parent_id,
                tx.now(),
            );
            require_unique_name(tx, &c).await?;
            let payload = EventPayload::ComponentCreated {
                component: Box::new(c.clone()),
            };
            tx.append(event(tx, &self.actor, payload));
            tx.put_component(c.clone());
            Ok(c)
        })
    }
}

/// Changes a component's name, description or parent.
#[derive(Debug)]
pub struct UpdateComponent {
    pub actor: String,
    pub id: ComponentId,
    pub etag: Option<String>,
    pub patch: ComponentPatch,
}

impl Command for UpdateComponent {
    type Output = Component;

    /// Reads through the connection (see [`Tx::component`]).
    fn needs(&self, needs: &mut Needs) {
        needs.component_tree = true;
    }

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Component> {
        Box::pin(async move {
            let id = self.id;
            let mut c = load_at_etag(tx, id, self.etag.as_deref()).await?;
            if c.delete_time.is_some() {
                return Err(Error::NotFound {
                    resource: "component",
                    id: id.to_string(),
                });
            }
            if let Some(Some(parent)) = self.patch.parent_id {
                require_live_parent(tx, "component.parent_id", Some(parent)).await?;
                if tx.is_ancestor_or_self(id, parent).await? {
                    return Err(Error::invalid(
                        "component.parent_id",
                        "a component cannot be moved under itself or its descendants",
                    ));
                }
            }
            let changes = c.apply_patch(self.patch.clone(), tx.now());
            if !changes.is_empty() {
                require_unique_name(tx, &c).await?;
                let payload = EventPayload::ComponentUpdated {
                    component: Box::new(c.clone()),
                    changes,
                };
                tx.append(event(tx, &self.actor, payload));
                tx.put_component(c.clone());
            }
            Ok(c)
        })
    }
}

/// Soft-deletes a component nothing live refers to.
#[derive(Debug)]
pub struct DeleteComponent {
    pub actor: String,
    pub id: ComponentId,
    pub etag: Option<String>,
}

impl Command for DeleteComponent {
    type Output = Component;

    /// Reads through the connection (see [`Tx::component`]).
    fn needs(&self, needs: &mut Needs) {
        needs.component_tree = true;
    }

    fn apply<'t, 'a>(&'t self, tx: &'t mut Tx<'a>) -> WriteFuture<'t, Component> {
        Box::pin(async move {
            let id = self.id;
            let mut c = load_at_etag(tx, id, self.etag.as_deref()).await?;
            if c.delete_time.is_none() {
                let (children, incidents) = tx.component_dependents(id).await?;
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
            c.delete(tx.now())?;
            let payload = EventPayload::ComponentDeleted {
                component: Box::new(c.clone()),
            };
            tx.append(event(tx, &self.actor, payload));
            tx.put_component(c.clone());
            Ok(c)
        })
    }
}

/// Gets a component, deleted or not.
pub async fn get(store: &Store, id: ComponentId, audience: Audience) -> Result<Component> {
    let mut conn = store.reader().await?;
    db::load(&mut conn, id, audience)
        .await?
        .ok_or(Error::NotFound {
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
    audience: Audience,
) -> Result<Vec<Component>> {
    let mut conn = store.reader().await?;
    db::list(&mut conn, parent_id, show_deleted, after, limit, audience).await
}

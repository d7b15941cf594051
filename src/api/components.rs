//! ComponentService.

use serde::Serialize;
use tonic::{Request, Response, Status};

use super::parse::{self, Mutation, Violations};
use super::{Run, convert, page_start, paginate};
use crate::domain::component::ComponentPatch;
use crate::domain::limits::TEXT_MAX_BYTES;
use crate::domain::{Audience, Component, ComponentId};
use crate::proto as pb;
use crate::proto::component_service_server::ComponentService;
use crate::public_view;
use crate::service::components as svc;
use crate::service::{Caller, execute};
use crate::store::Cursor;
use crate::store::Store;
use crate::store::components::cursor_after;

/// The ComponentService handlers.
#[derive(Clone)]
pub struct Components {
    store: Store,
}

impl Components {
    pub fn new(store: Store) -> Self {
        Components { store }
    }
}

const UPDATABLE: &[&str] = &["name", "description", "parent_id"];
const OUTPUT_ONLY: &[&str] = &[
    "id",
    "status",
    "create_time",
    "update_time",
    "delete_time",
    "etag",
];

#[derive(Serialize)]
struct ListFilters {
    parent_id: Option<ComponentId>,
    show_deleted: bool,
}

fn component_id(v: &mut Violations, field: &str, s: &str) -> Option<ComponentId> {
    v.check(field, parse::uuid(s))
}

/// Validates a CreateComponent request (all but its request_id).
pub(crate) fn parse_create(
    r: &pb::CreateComponentRequest,
    caller: &Caller,
    v: &mut Violations,
) -> Option<svc::CreateComponent> {
    let Some(c) = r.component.as_ref() else {
        v.add("component", "is required");
        return None;
    };
    let name = v.check("component.name", parse::title(&c.name));
    let description = v.check(
        "component.description",
        parse::text(&c.description, TEXT_MAX_BYTES, false),
    );
    let parent_id = v
        .check("component.parent_id", parse::optional_uuid(&c.parent_id))
        .flatten();
    Some(svc::CreateComponent {
        actor: caller.actor.clone(),
        name: name?,
        description: description?,
        parent_id,
    })
}

/// Validates an UpdateComponent request (all but its request_id).
pub(crate) fn parse_update(
    r: &pb::UpdateComponentRequest,
    caller: &Caller,
    v: &mut Violations,
) -> Option<svc::UpdateComponent> {
    let Some(c) = r.component.as_ref() else {
        v.add("component", "is required");
        return None;
    };
    let id = component_id(v, "component.id", &c.id);
    let paths = parse::mask_paths(
        &r.update_mask,
        &[
            ("name", !c.name.is_empty()),
            ("description", !c.description.is_empty()),
            ("parent_id", !c.parent_id.is_empty()),
        ],
    );
    let mut patch = ComponentPatch::default();
    for path in &paths {
        match path.as_str() {
            "name" => patch.name = v.check("component.name", parse::title(&c.name)),
            "description" => {
                patch.description = v.check(
                    "component.description",
                    parse::text(&c.description, TEXT_MAX_BYTES, false),
                )
            }
            "parent_id" => {
                patch.parent_id = v.check("component.parent_id", parse::optional_uuid(&c.parent_id))
            }
            p if OUTPUT_ONLY.contains(&p) => {}
            p => {
                debug_assert!(!UPDATABLE.contains(&p));
                v.add(
                    "update_mask",
                    format!("unknown field path {}", crate::error::quote(p)),
                );
            }
        }
    }
    Some(svc::UpdateComponent {
        actor: caller.actor.clone(),
        id: id?,
        etag: parse::etag(&c.etag),
        patch,
    })
}

/// Validates a DeleteComponent request (all but its request_id).
pub(crate) fn parse_delete(
    r: &pb::DeleteComponentRequest,
    caller: &Caller,
    v: &mut Violations,
) -> Option<svc::DeleteComponent> {
    let id = component_id(v, "id", &r.id);
    Some(svc::DeleteComponent {
        actor: caller.actor.clone(),
        id: id?,
        etag: parse::etag(&r.etag),
    })
}

/// A component as `audience` sees it (its status already from what that
/// audience may see).
fn for_audience(c: &Component, audience: Audience) -> pb::Component {
    match audience {
        Audience::Full => convert::component(c),
        Audience::Public => public_view::component(&convert::component(c)),
    }
}

#[tonic::async_trait]
impl ComponentService for Components {
    async fn create_component(
        &self,
        req: Request<pb::CreateComponentRequest>,
    ) -> Result<Response<pb::CreateComponentResponse>, Status> {
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let command = parse_create(&r, &caller, &mut v);
        let c = execute(&self.store, key, v.into_result(command)?).await?;
        Ok(Response::new(pb::CreateComponentResponse {
            component: Some(convert::component(&c)),
        }))
    }

    async fn get_component(
        &self,
        req: Request<pb::GetComponentRequest>,
    ) -> Result<Response<pb::GetComponentResponse>, Status> {
        let audience = super::audience(&req, req.get_ref().view)?;
        let mut v = Violations::new();
        let id = component_id(&mut v, "id", &req.get_ref().id);
        let id = v.into_result(id)?;
        let c = svc::get(&self.store, id, audience).await?;
        Ok(Response::new(pb::GetComponentResponse {
            component: Some(for_audience(&c, audience)),
        }))
    }

    async fn list_components(
        &self,
        req: Request<pb::ListComponentsRequest>,
    ) -> Result<Response<pb::ListComponentsResponse>, Status> {
        let audience = super::audience(&req, req.get_ref().view)?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let limit = parse::page_size(&mut v, r.page_size);
        let parent_id = v
            .check("parent_id", parse::optional_uuid(&r.parent_id))
            .flatten();
        v.finish()?;
        let filters = ListFilters {
            parent_id,
            show_deleted: r.show_deleted,
        };
        let start: Option<Cursor> = page_start(&self.store, "components", &filters, &r.page_token)?;
        let items = svc::list(
            &self.store,
            parent_id,
            r.show_deleted,
            start.as_ref(),
            limit + 1,
            audience,
        )
        .await?;
        let (components, next_page_token) = paginate(
            &self.store,
            "components",
            &filters,
            Run::whole(&items),
            limit,
            |c| for_audience(c, audience),
            cursor_after,
        )?;
        Ok(Response::new(pb::ListComponentsResponse {
            components,
            next_page_token,
        }))
    }

    async fn update_component(
        &self,
        req: Request<pb::UpdateComponentRequest>,
    ) -> Result<Response<pb::UpdateComponentResponse>, Status> {
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let command = parse_update(&r, &caller, &mut v);
        let c = execute(&self.store, key, v.into_result(command)?).await?;
        Ok(Response::new(pb::UpdateComponentResponse {
            component: Some(convert::component(&c)),
        }))
    }

    async fn delete_component(
        &self,
        req: Request<pb::DeleteComponentRequest>,
    ) -> Result<Response<pb::DeleteComponentResponse>, Status> {
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let command = parse_delete(&r, &caller, &mut v);
        let c = execute(&self.store, key, v.into_result(command)?).await?;
        Ok(Response::new(pb::DeleteComponentResponse {
            component: Some(convert::component(&c)),
        }))
    }
}

//! ActionItemService.

use tonic::{Request, Response, Status};

use super::parse::{self, Mutation, Violations};
use super::{Run, convert, page_start, paginate};
use crate::domain::Audience;
use crate::domain::action_item::{ActionItemPatch, NewActionItem};
use crate::domain::limits::TEXT_MAX_BYTES;
use crate::domain::{ActionItemId, ActionItemStatus, Priority};
use crate::error::Error;
use crate::proto as pb;
use crate::proto::action_item_service_server::ActionItemService;
use crate::service::action_items as svc;
use crate::service::{Caller, execute};
use crate::store::Cursor;
use crate::store::Store;
use crate::store::action_items::{ActionItemFilter, cursor_after};

/// The ActionItemService handlers.
#[derive(Clone)]
pub struct ActionItems {
    store: Store,
}

impl ActionItems {
    pub fn new(store: Store) -> Self {
        ActionItems { store }
    }
}

const OUTPUT_ONLY: &[&str] = &[
    "id",
    "incident_id",
    "create_time",
    "update_time",
    "delete_time",
    "etag",
];

fn owner(s: &str) -> Result<String, String> {
    parse::short(s, false)
}

/// Validates a CreateActionItem request (all but its request_id).
pub(crate) fn parse_create(
    r: &pb::CreateActionItemRequest,
    caller: &Caller,
    v: &mut Violations,
) -> Option<svc::CreateActionItem> {
    let Some(a) = r.action_item.as_ref() else {
        v.add("action_item", "is required");
        return None;
    };
    let incident_id = v.check("action_item.incident_id", parse::uuid(&a.incident_id));
    let title = v.check("action_item.title", parse::title(&a.title));
    let description = v.check(
        "action_item.description",
        parse::text(&a.description, TEXT_MAX_BYTES, false),
    );
    let owner = v.check("action_item.owner", owner(&a.owner));
    let status = v
        .check(
            "action_item.status",
            parse::optional_enum(a.status, ActionItemStatus::from_code),
        )
        .flatten();
    let priority = v
        .check(
            "action_item.priority",
            parse::optional_enum(a.priority, Priority::from_code),
        )
        .flatten();
    let due_time = v
        .check("action_item.due_time", parse::optional_time(&a.due_time))
        .flatten();
    let complete_time = v
        .check(
            "action_item.complete_time",
            parse::past_time(&a.complete_time),
        )
        .flatten();
    let labels = parse::labels(v, "action_item.labels", &a.labels);
    Some(svc::CreateActionItem {
        actor: caller.actor.clone(),
        new: NewActionItem {
            incident_id: incident_id?,
            title: title?,
            description: description?,
            owner: owner?,
            status,
            priority,
            due_time,
            complete_time,
            labels,
        },
        occur_time: None,
    })
}

/// Validates an UpdateActionItem request (all but its request_id).
pub(crate) fn parse_update(
    r: &pb::UpdateActionItemRequest,
    caller: &Caller,
    v: &mut Violations,
) -> Option<svc::UpdateActionItem> {
    let Some(a) = r.action_item.as_ref() else {
        v.add("action_item", "is required");
        return None;
    };
    let id: Option<ActionItemId> = v.check("action_item.id", parse::uuid(&a.id));
    let paths = parse::mask_paths(
        &r.update_mask,
        &[
            ("title", !a.title.is_empty()),
            ("description", !a.description.is_empty()),
            ("owner", !a.owner.is_empty()),
            ("status", a.status != 0),
            ("priority", a.priority != 0),
            ("due_time", a.due_time.is_some()),
            ("complete_time", a.complete_time.is_some()),
            ("labels", !a.labels.is_empty()),
        ],
    );
    let mut patch = ActionItemPatch::default();
    for path in &paths {
        match path.as_str() {
            "title" => patch.title = v.check("action_item.title", parse::title(&a.title)),
            "description" => {
                patch.description = v.check(
                    "action_item.description",
                    parse::text(&a.description, TEXT_MAX_BYTES, false),
                )
            }
            "owner" => patch.owner = v.check("action_item.owner", owner(&a.owner)),
            "status" => {
                patch.status = v.check(
                    "action_item.status",
                    parse::required_enum(a.status, ActionItemStatus::from_code),
                )
            }
            "priority" => {
                patch.priority = v.check(
                    "action_item.priority",
                    parse::optional_enum(a.priority, Priority::from_code),
                )
            }
            "due_time" => {
                patch.due_time = v.check("action_item.due_time", parse::optional_time(&a.due_time))
            }
            "complete_time" => {
                patch.complete_time = v.check(
                    "action_item.complete_time",
                    parse::past_time(&a.complete_time),
                )
            }
            "labels" => patch.labels = Some(parse::labels(v, "action_item.labels", &a.labels)),
            p if OUTPUT_ONLY.contains(&p) => {}
            p => v.add(
                "update_mask",
                format!("unknown field path {}", crate::error::quote(p)),
            ),
        }
    }
    Some(svc::UpdateActionItem {
        actor: caller.actor.clone(),
        id: id?,
        etag: parse::etag(&a.etag),
        patch,
    })
}

/// Validates a DeleteActionItem request (all but its request_id).
pub(crate) fn parse_delete(
    r: &pb::DeleteActionItemRequest,
    caller: &Caller,
    v: &mut Violations,
) -> Option<svc::DeleteActionItem> {
    let id: Option<ActionItemId> = v.check("id", parse::uuid(&r.id));
    Some(svc::DeleteActionItem {
        actor: caller.actor.clone(),
        id: id?,
        etag: parse::etag(&r.etag),
    })
}

/// Action items are never public: VIEW_PUBLIC is refused.
fn full_view_only<T>(req: &Request<T>, view: i32) -> Result<(), Error> {
    match super::audience(req, view)? {
        Audience::Full => Ok(()),
        Audience::Public => Err(Error::PermissionDenied(
            "action items are not shown under VIEW_PUBLIC".into(),
        )),
    }
}

#[tonic::async_trait]
impl ActionItemService for ActionItems {
    async fn create_action_item(
        &self,
        req: Request<pb::CreateActionItemRequest>,
    ) -> Result<Response<pb::CreateActionItemResponse>, Status> {
        let mut req = req;
        let sent = super::refs::resolve(&self.store, req.get_mut(), Audience::Full).await?;
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let command = parse_create(&r, &caller, &mut v);
        let item = execute(&self.store, key, v.into_result(command)?)
            .await
            .map_err(|e| sent.echo(e))?;
        Ok(Response::new(pb::CreateActionItemResponse {
            action_item: Some(convert::action_item(&item)),
        }))
    }

    async fn get_action_item(
        &self,
        req: Request<pb::GetActionItemRequest>,
    ) -> Result<Response<pb::GetActionItemResponse>, Status> {
        full_view_only(&req, req.get_ref().view)?;
        let mut v = Violations::new();
        let id: Option<ActionItemId> = v.check("id", parse::uuid(&req.get_ref().id));
        let id = v.into_result(id)?;
        let item = svc::get(&self.store, id).await?;
        Ok(Response::new(pb::GetActionItemResponse {
            action_item: Some(convert::action_item(&item)),
        }))
    }

    async fn list_action_items(
        &self,
        req: Request<pb::ListActionItemsRequest>,
    ) -> Result<Response<pb::ListActionItemsResponse>, Status> {
        full_view_only(&req, req.get_ref().view)?;
        let mut req = req;
        let sent = super::refs::resolve(&self.store, req.get_mut(), Audience::Full).await?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let limit = parse::page_size(&mut v, r.page_size);
        let mut statuses = Vec::new();
        for (i, s) in super::filter_list(&mut v, "statuses", &r.statuses)
            .iter()
            .enumerate()
        {
            if let Some(s) = v.check(
                &format!("statuses[{i}]"),
                parse::required_enum(*s, ActionItemStatus::from_code),
            ) && !statuses.contains(&s)
            {
                statuses.push(s);
            }
        }
        statuses.sort_by_key(|s| s.code());
        let label = parse::label_filter(&mut v, &r.label);
        let as_of = v
            .check("as_of_time", parse::optional_time(&r.as_of_time))
            .flatten();
        let owner = v.check("owner", owner(&r.owner)).filter(|o| !o.is_empty());
        let filter = ActionItemFilter {
            incident_id: v
                .check("incident_id", parse::optional_uuid(&r.incident_id))
                .flatten(),
            statuses,
            owner,
            label,
            overdue_at: r.overdue.then(|| as_of.unwrap_or_else(chrono::Utc::now)),
            show_deleted: r.show_deleted,
        };
        v.finish()?;
        // The page token binds the filters, not the instant "overdue" was
        // judged at: later pages judge at their own now unless as_of is given.
        let mut bound = filter.clone();
        bound.overdue_at = as_of.filter(|_| r.overdue);
        let bound = (bound, r.overdue);
        let start: Option<Cursor> = page_start(&self.store, "action_items", &bound, &r.page_token)?;
        let items = svc::list(&self.store, &filter, start.as_ref(), limit + 1)
            .await
            .map_err(|e| sent.echo(e))?;
        let (action_items, next_page_token) = paginate(
            &self.store,
            "action_items",
            &bound,
            Run::whole(&items),
            limit,
            convert::action_item,
            cursor_after,
        )?;
        Ok(Response::new(pb::ListActionItemsResponse {
            action_items,
            next_page_token,
        }))
    }

    async fn update_action_item(
        &self,
        req: Request<pb::UpdateActionItemRequest>,
    ) -> Result<Response<pb::UpdateActionItemResponse>, Status> {
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let command = parse_update(&r, &caller, &mut v);
        let item = execute(&self.store, key, v.into_result(command)?).await?;
        Ok(Response::new(pb::UpdateActionItemResponse {
            action_item: Some(convert::action_item(&item)),
        }))
    }

    async fn delete_action_item(
        &self,
        req: Request<pb::DeleteActionItemRequest>,
    ) -> Result<Response<pb::DeleteActionItemResponse>, Status> {
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let command = parse_delete(&r, &caller, &mut v);
        let item = execute(&self.store, key, v.into_result(command)?).await?;
        Ok(Response::new(pb::DeleteActionItemResponse {
            action_item: Some(convert::action_item(&item)),
        }))
    }
}

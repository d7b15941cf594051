//! IncidentService.

use bytes::Bytes;
use prost::Message;
use tonic::{Request, Response, Status};

use super::parse::{self, Mutation, Violations};
use super::{Run, convert, page_start, paginate};
use crate::domain::incident::{IncidentPatch, NewIncident, NewStatusUpdate};
use crate::domain::limits::{POSTMORTEM_MAX_BYTES, TEXT_MAX_BYTES, TITLE_MAX_CHARS};
use crate::domain::postmortem::{PostmortemPatch, Section};
use crate::domain::{
    Audience, IncidentId, IncidentKind, IncidentStatus, Severity, StatusUpdateId, Visibility,
};
use crate::error::{Error, Result};
use crate::proto as pb;
use crate::proto::incident_service_server::IncidentService;
use crate::public_view;
use crate::service::incidents::{self as svc, IncidentRef};
use crate::service::{Caller, action_items, execute};
use crate::store::Cursor;
use crate::store::Store;
use crate::store::incidents::{IncidentFilter, status_update_cursor};
use crate::wire::{GetIncidentResponse, ListIncidentsResponse};

/// The IncidentService handlers.
#[derive(Clone)]
pub struct Incidents {
    store: Store,
}

impl Incidents {
    pub fn new(store: Store) -> Self {
        Incidents { store }
    }

    /// DeleteIncident and UndeleteIncident: the same request shape, opposite ways.
    async fn set_deleted<M: parse::Mutating>(
        &self,
        req: Request<M>,
        id_and_etag: fn(&M) -> (&str, &str),
        deleted: bool,
        sent: &super::refs::Sent,
    ) -> Result<crate::domain::Incident, Status> {
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let (id, etag) = id_and_etag(&r);
        let id = incident_id(&mut v, "id", id);
        let id = v.into_result(id)?;
        let etag = parse::etag(etag);
        let command = svc::SetIncidentDeleted {
            actor: caller.actor,
            id,
            etag,
            deleted,
        };
        Ok(execute(&self.store, key, command)
            .await
            .map_err(|e| sent.echo(e))?)
    }
}

/// Paths UpdateIncident may change.
const UPDATABLE: &[&str] = &[
    "title",
    "summary",
    "severity",
    "impact_windows",
    "scheduled_start_time",
    "scheduled_end_time",
    "roles",
    "labels",
    "next_update_time",
    "declare_time",
    "identify_time",
    "mitigate_time",
    "resolve_time",
    "visibility",
];
/// Paths that move only through PostStatusUpdate.
const STATUS_ONLY: &[&str] = &["kind", "status", "component_impacts"];
/// Output-only paths: ignored in input (AIP-203).
const OUTPUT_ONLY: &[&str] = &[
    "id",
    "reference",
    "postmortem_publish_time",
    "action_item_count",
    "open_action_item_count",
    "create_time",
    "update_time",
    "delete_time",
    "etag",
];

fn incident_id(v: &mut Violations, field: &str, s: &str) -> Option<IncidentId> {
    v.check(field, parse::uuid(s))
}

/// "INC-42" (any case) or a UUID.
fn incident_ref(s: &str) -> Result<IncidentRef> {
    if let Some(n) = super::refs::reference_number(s) {
        return Ok(IncidentRef::Number(n));
    }
    parse::uuid(s.trim()).map(IncidentRef::Id).map_err(|_| {
        Error::invalid(
            "id",
            format!(
                "{} is neither an incident id nor a reference like INC-42",
                crate::error::quote(s)
            ),
        )
    })
}

fn new_incident(
    v: &mut Violations,
    p: &pb::Incident,
    refs: &mut svc::ComponentRefs,
) -> NewIncident {
    let f = |name: &str| format!("incident.{name}");
    NewIncident {
        visibility: v
            .check(
                &f("visibility"),
                parse::optional_enum(p.visibility, Visibility::from_code),
            )
            .flatten(),
        title: v
            .check(&f("title"), parse::title(&p.title))
            .unwrap_or_default(),
        summary: v
            .check(
                &f("summary"),
                parse::text(&p.summary, TEXT_MAX_BYTES, false),
            )
            .unwrap_or_default(),
        kind: v
            .check(
                &f("kind"),
                parse::required_enum(p.kind, IncidentKind::from_code),
            )
            .map(Some)
            .unwrap_or_default(),
        severity: v
            .check(
                &f("severity"),
                parse::optional_enum(p.severity, Severity::from_code),
            )
            .flatten(),
        status: v
            .check(
                &f("status"),
                parse::optional_enum(p.status, IncidentStatus::from_code),
            )
            .flatten(),
        component_impacts: parse::component_impacts(
            v,
            &f("component_impacts"),
            &p.component_impacts,
            refs,
        ),
        impact_windows: parse::impact_windows(v, &f("impact_windows"), &p.impact_windows, refs),
        scheduled_start_time: v
            .check(
                &f("scheduled_start_time"),
                parse::optional_time(&p.scheduled_start_time),
            )
            .flatten(),
        scheduled_end_time: v
            .check(
                &f("scheduled_end_time"),
                parse::optional_time(&p.scheduled_end_time),
            )
            .flatten(),
        roles: parse::roles(v, &f("roles"), &p.roles),
        labels: parse::labels(v, &f("labels"), &p.labels),
        next_update_time: v
            .check(
                &f("next_update_time"),
                parse::optional_time(&p.next_update_time),
            )
            .flatten(),
    }
}

fn check_schedule(
    v: &mut Violations,
    start: Option<crate::domain::Time>,
    end: Option<crate::domain::Time>,
) {
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        v.add(
            "incident.scheduled_end_time",
            "must not be before scheduled_start_time",
        );
    }
}

/// The paths an update names: the mask, or every field the request sets.
fn update_paths(
    v: &mut Violations,
    req: &pb::UpdateIncidentRequest,
    p: &pb::Incident,
) -> Vec<String> {
    let paths = parse::mask_paths(
        &req.update_mask,
        &[
            ("title", !p.title.is_empty()),
            ("summary", !p.summary.is_empty()),
            ("severity", p.severity != 0),
            ("impact_windows", !p.impact_windows.is_empty()),
            ("scheduled_start_time", p.scheduled_start_time.is_some()),
            ("scheduled_end_time", p.scheduled_end_time.is_some()),
            ("roles", !p.roles.is_empty()),
            ("labels", !p.labels.is_empty()),
            ("next_update_time", p.next_update_time.is_some()),
            ("declare_time", p.declare_time.is_some()),
            ("identify_time", p.identify_time.is_some()),
            ("mitigate_time", p.mitigate_time.is_some()),
            ("resolve_time", p.resolve_time.is_some()),
            ("visibility", p.visibility != 0),
            ("kind", p.kind != 0),
            ("status", p.status != 0),
            ("component_impacts", !p.component_impacts.is_empty()),
        ],
    );
    let mut out = Vec::new();
    for path in paths {
        if STATUS_ONLY.contains(&path.as_str()) {
            v.add(
                "update_mask",
                format!(
                    "{path:?} cannot be changed by UpdateIncident: post a status update instead"
                ),
            );
        } else if UPDATABLE.contains(&path.as_str()) {
            if !out.contains(&path) {
                out.push(path);
            }
        } else if !OUTPUT_ONLY.contains(&path.as_str()) {
            v.add(
                "update_mask",
                format!("unknown field path {}", crate::error::quote(&path)),
            );
        }
    }
    out
}

fn patch(
    v: &mut Violations,
    paths: &[String],
    p: &pb::Incident,
    refs: &mut svc::ComponentRefs,
) -> IncidentPatch {
    let mut patch = IncidentPatch::default();
    let f = |name: &str| format!("incident.{name}");
    for path in paths {
        match path.as_str() {
            "title" => patch.title = v.check(&f("title"), parse::title(&p.title)),
            "summary" => {
                patch.summary = v.check(
                    &f("summary"),
                    parse::text(&p.summary, TEXT_MAX_BYTES, false),
                )
            }
            "severity" => {
                patch.severity = v.check(
                    &f("severity"),
                    parse::optional_enum(p.severity, Severity::from_code),
                )
            }
            "impact_windows" => {
                patch.impact_windows = Some(parse::impact_windows(
                    v,
                    &f("impact_windows"),
                    &p.impact_windows,
                    refs,
                ))
            }
            "scheduled_start_time" => {
                patch.scheduled_start_time = v.check(
                    &f("scheduled_start_time"),
                    parse::optional_time(&p.scheduled_start_time),
                )
            }
            "scheduled_end_time" => {
                patch.scheduled_end_time = v.check(
                    &f("scheduled_end_time"),
                    parse::optional_time(&p.scheduled_end_time),
                )
            }
            "roles" => patch.roles = Some(parse::roles(v, &f("roles"), &p.roles)),
            "labels" => patch.labels = Some(parse::labels(v, &f("labels"), &p.labels)),
            "next_update_time" => {
                patch.next_update_time = v.check(
                    &f("next_update_time"),
                    parse::optional_time(&p.next_update_time),
                )
            }
            "declare_time" => {
                match v.check(&f("declare_time"), parse::past_time(&p.declare_time)) {
                    Some(Some(t)) => patch.declare_time = Some(t),
                    Some(None) => v.add(f("declare_time"), "cannot be cleared"),
                    None => {}
                }
            }
            "identify_time" => {
                patch.identify_time =
                    v.check(&f("identify_time"), parse::past_time(&p.identify_time))
            }
            "mitigate_time" => {
                patch.mitigate_time =
                    v.check(&f("mitigate_time"), parse::past_time(&p.mitigate_time))
            }
            "resolve_time" => {
                patch.resolve_time = v.check(&f("resolve_time"), parse::past_time(&p.resolve_time))
            }
            "visibility" => {
                patch.visibility = v.check(
                    &f("visibility"),
                    parse::required_enum(p.visibility, Visibility::from_code),
                )
            }
            _ => {}
        }
    }
    patch
}

pub(crate) fn list_filter(
    v: &mut Violations,
    r: &pb::ListIncidentsRequest,
    audience: Audience,
) -> IncidentFilter {
    let mut statuses = Vec::new();
    for (i, s) in super::filter_list(v, "statuses", &r.statuses)
        .iter()
        .enumerate()
    {
        if let Some(s) = v.check(
            &format!("statuses[{i}]"),
            parse::required_enum(*s, IncidentStatus::from_code),
        ) {
            statuses.push(s);
        }
    }
    let mut severities = Vec::new();
    for (i, s) in super::filter_list(v, "severities", &r.severities)
        .iter()
        .enumerate()
    {
        if let Some(s) = v.check(
            &format!("severities[{i}]"),
            parse::required_enum(*s, Severity::from_code),
        ) {
            severities.push(s);
        }
    }
    statuses.sort_by_key(|s| s.code());
    statuses.dedup();
    severities.sort_by_key(|s| s.code());
    severities.dedup();
    let query = r.query.trim();
    if query.chars().count() > TITLE_MAX_CHARS {
        v.add(
            "query",
            format!("must be at most {TITLE_MAX_CHARS} characters"),
        );
    }
    let label = parse::label_filter(v, &r.label);
    if audience == Audience::Public {
        // Filters on what the public cannot see would tell it what is there.
        if !r.label.is_empty() {
            v.add("label", "labels are not shown under VIEW_PUBLIC");
        }
        if r.show_deleted {
            v.add(
                "show_deleted",
                "deleted incidents are not shown under VIEW_PUBLIC",
            );
        }
    }
    let after = v
        .check(
            "create_time_after",
            parse::optional_time(&r.create_time_after),
        )
        .flatten();
    let before = v
        .check(
            "create_time_before",
            parse::optional_time(&r.create_time_before),
        )
        .flatten();
    IncidentFilter {
        statuses,
        severities,
        kind: v
            .check(
                "kind",
                parse::optional_enum(r.kind, IncidentKind::from_code),
            )
            .flatten(),
        component_id: v
            .check("component_id", parse::optional_uuid(&r.component_id))
            .flatten(),
        open: r.open,
        create_time_after: after,
        create_time_before: before,
        query: (!query.is_empty()).then(|| query.to_owned()),
        label,
        show_deleted: r.show_deleted,
        audience,
    }
}

/// Validates a CreateIncident request (all but its request_id).
pub(crate) fn parse_create(
    r: &pb::CreateIncidentRequest,
    caller: &Caller,
    v: &mut Violations,
) -> Option<svc::CreateIncident> {
    let occur_time = v
        .check("occur_time", parse::past_time(&r.occur_time))
        .flatten();
    let Some(p) = r.incident.as_ref() else {
        v.add("incident", "is required");
        return None;
    };
    let mut refs = Vec::new();
    let new = new_incident(v, p, &mut refs);
    check_schedule(v, new.scheduled_start_time, new.scheduled_end_time);
    Some(svc::CreateIncident {
        actor: caller.actor.clone(),
        new,
        refs,
        occur_time,
    })
}

/// Validates a PostStatusUpdate request (all but its request_id).
pub(crate) fn parse_post(
    r: &pb::PostStatusUpdateRequest,
    caller: &Caller,
    v: &mut Violations,
) -> Option<svc::PostStatusUpdate> {
    let id = incident_id(v, "incident_id", &r.incident_id);
    let status = v
        .check(
            "status",
            parse::optional_enum(r.status, IncidentStatus::from_code),
        )
        .flatten();
    let message = v
        .check("message", parse::text(&r.message, TEXT_MAX_BYTES, true))
        .unwrap_or_default();
    let mut refs = Vec::new();
    let component_impacts =
        parse::component_impacts(v, "component_impacts", &r.component_impacts, &mut refs);
    let next_update_time = v
        .check(
            "next_update_time",
            parse::optional_time(&r.next_update_time),
        )
        .flatten();
    let visibility = v
        .check(
            "visibility",
            parse::optional_enum(r.visibility, Visibility::from_code),
        )
        .flatten()
        .unwrap_or(Visibility::Public);
    let occur_time = v
        .check("occur_time", parse::past_time(&r.occur_time))
        .flatten();
    Some(svc::PostStatusUpdate {
        actor: caller.actor.clone(),
        id: id?,
        new: NewStatusUpdate {
            status,
            message,
            component_impacts,
            next_update_time,
            visibility,
        },
        refs,
        occur_time,
    })
}

/// Validates an UpdateIncident request (all but its request_id).
pub(crate) fn parse_update(
    r: &pb::UpdateIncidentRequest,
    caller: &Caller,
    v: &mut Violations,
) -> Option<svc::UpdateIncident> {
    let Some(p) = r.incident.as_ref() else {
        v.add("incident", "is required");
        return None;
    };
    let id = incident_id(v, "incident.id", &p.id);
    let paths = update_paths(v, r, p);
    let mut refs = Vec::new();
    let patch = patch(v, &paths, p, &mut refs);
    check_schedule(
        v,
        patch.scheduled_start_time.flatten(),
        patch.scheduled_end_time.flatten(),
    );
    Some(svc::UpdateIncident {
        actor: caller.actor.clone(),
        id: id?,
        etag: parse::etag(&p.etag),
        patch,
        refs,
        occur_time: None,
    })
}

/// Validates an UpdatePostmortem request (all but its request_id).
pub(crate) fn parse_update_postmortem(
    r: &pb::UpdatePostmortemRequest,
    caller: &Caller,
    v: &mut Violations,
) -> Option<action_items::UpdatePostmortem> {
    let Some(p) = r.postmortem.as_ref() else {
        v.add("postmortem", "is required");
        return None;
    };
    let id = incident_id(v, "postmortem.incident_id", &p.incident_id);
    let paths = parse::mask_paths(
        &r.update_mask,
        &[
            ("body", !p.body.is_empty()),
            ("sections", !p.sections.is_empty()),
            ("author", !p.author.is_empty()),
        ],
    );
    let mut patch = PostmortemPatch::default();
    for path in &paths {
        match path.as_str() {
            "body" => {
                patch.body = v.check(
                    "postmortem.body",
                    parse::text(&p.body, POSTMORTEM_MAX_BYTES, false),
                )
            }
            "sections" => {
                let mut sections = Vec::new();
                for (i, s) in p.sections.iter().enumerate() {
                    let title = v.check(
                        &format!("postmortem.sections[{i}].title"),
                        parse::title(&s.title),
                    );
                    let body = v.check(
                        &format!("postmortem.sections[{i}].body"),
                        parse::text(&s.body, POSTMORTEM_MAX_BYTES, false),
                    );
                    if let (Some(title), Some(body)) = (title, body) {
                        sections.push(Section { title, body });
                    }
                }
                patch.sections = Some(sections);
            }
            "author" => patch.author = v.check("postmortem.author", parse::short(&p.author, false)),
            "incident_id" | "publish_time" | "update_time" | "etag" => {}
            other => v.add(
                "update_mask",
                format!("unknown field path {}", crate::error::quote(other)),
            ),
        }
    }
    Some(action_items::UpdatePostmortem {
        actor: caller.actor.clone(),
        incident_id: id?,
        etag: parse::etag(&p.etag),
        patch,
        max_bytes: POSTMORTEM_MAX_BYTES,
        occur_time: None,
    })
}

/// Validates a PublishPostmortem request (all but its request_id).
pub(crate) fn parse_publish(
    r: &pb::PublishPostmortemRequest,
    caller: &Caller,
    v: &mut Violations,
) -> Option<action_items::PublishPostmortem> {
    let id = incident_id(v, "incident_id", &r.incident_id);
    let occur_time = v
        .check("occur_time", parse::past_time(&r.occur_time))
        .flatten();
    Some(action_items::PublishPostmortem {
        actor: caller.actor.clone(),
        incident_id: id?,
        etag: parse::etag(&r.etag),
        occur_time,
    })
}

#[tonic::async_trait]
impl IncidentService for Incidents {
    async fn create_incident(
        &self,
        req: Request<pb::CreateIncidentRequest>,
    ) -> Result<Response<pb::CreateIncidentResponse>, Status> {
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let command = parse_create(&r, &caller, &mut v);
        let incident = execute(&self.store, key, v.into_result(command)?).await?;
        Ok(Response::new(pb::CreateIncidentResponse {
            incident: Some(convert::incident(
                &incident,
                &self.store.hub().components().read(),
            )),
        }))
    }

    async fn get_incident(
        &self,
        req: Request<pb::GetIncidentRequest>,
    ) -> Result<Response<GetIncidentResponse>, Status> {
        let audience = super::audience(&req, req.get_ref().view)?;
        let r = incident_ref(&req.get_ref().id)?;
        if audience == Audience::Public {
            let incident = svc::get(&self.store, r, audience).await?;
            let full = convert::incident(&incident, &self.store.hub().components().read());
            let body = Bytes::from(public_view::incident(&full).encode_to_vec());
            return Ok(Response::new(GetIncidentResponse { incident: body }));
        }
        let cache = self.store.hub().incidents();
        let id = match r {
            IncidentRef::Id(id) => Some(id),
            IncidentRef::Number(n) => cache.id_of(n),
        };
        if let Some(body) = id.and_then(|id| cache.get(id)) {
            return Ok(Response::new(GetIncidentResponse { incident: body }));
        }
        // Taken before the read: a commit in between keeps the read out.
        let ticket = id.map(|id| cache.ticket(id));
        let incident = svc::get(&self.store, r, audience).await?;
        let body = Bytes::from(
            convert::incident(&incident, &self.store.hub().components().read()).encode_to_vec(),
        );
        cache.learn_number(incident.number, incident.id);
        if let Some(ticket) = ticket {
            cache.fill(ticket, body.clone());
        }
        Ok(Response::new(GetIncidentResponse { incident: body }))
    }

    async fn list_incidents(
        &self,
        req: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<ListIncidentsResponse>, Status> {
        let audience = super::audience(&req, req.get_ref().view)?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let limit = parse::page_size(&mut v, r.page_size);
        let filter = list_filter(&mut v, &r, audience);
        v.finish()?;
        let start: Option<Cursor> = page_start(&self.store, "incidents", &filter, &r.page_token)?;
        let components = self.store.hub().components();
        let page = svc::list(&self.store, &filter, start.as_ref(), limit, |incidents| {
            let names = components.read();
            incidents
                .iter()
                .map(|i| {
                    let full = convert::incident(i, &names);
                    Bytes::from(match audience {
                        Audience::Full => full.encode_to_vec(),
                        Audience::Public => public_view::incident(&full).encode_to_vec(),
                    })
                })
                .collect()
        })
        .await?;
        let (incidents, next_page_token) = paginate(
            &self.store,
            "incidents",
            &filter,
            Run {
                items: &page.items,
                cut_short: page.more,
            },
            limit,
            // Sized as prost sizes `Bytes` (a BytesValue: field 1, as each
            // incident is in the reply).
            |(_, body): &(Cursor, Bytes)| body.clone(),
            |(position, _): &(Cursor, Bytes)| position.clone(),
        )?;
        Ok(Response::new(ListIncidentsResponse {
            incidents,
            next_page_token,
        }))
    }

    async fn update_incident(
        &self,
        req: Request<pb::UpdateIncidentRequest>,
    ) -> Result<Response<pb::UpdateIncidentResponse>, Status> {
        let mut req = req;
        let sent = super::refs::resolve(&self.store, req.get_mut(), Audience::Full).await?;
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let command = parse_update(&r, &caller, &mut v);
        let incident = execute(&self.store, key, v.into_result(command)?)
            .await
            .map_err(|e| sent.echo(e))?;
        Ok(Response::new(pb::UpdateIncidentResponse {
            incident: Some(convert::incident(
                &incident,
                &self.store.hub().components().read(),
            )),
        }))
    }

    async fn delete_incident(
        &self,
        req: Request<pb::DeleteIncidentRequest>,
    ) -> Result<Response<pb::DeleteIncidentResponse>, Status> {
        let mut req = req;
        let sent = super::refs::resolve(&self.store, req.get_mut(), Audience::Full).await?;
        let incident = self
            .set_deleted(req, |r| (&r.id, &r.etag), true, &sent)
            .await?;
        Ok(Response::new(pb::DeleteIncidentResponse {
            incident: Some(convert::incident(
                &incident,
                &self.store.hub().components().read(),
            )),
        }))
    }

    async fn undelete_incident(
        &self,
        req: Request<pb::UndeleteIncidentRequest>,
    ) -> Result<Response<pb::UndeleteIncidentResponse>, Status> {
        let mut req = req;
        let sent = super::refs::resolve(&self.store, req.get_mut(), Audience::Full).await?;
        let incident = self
            .set_deleted(req, |r| (&r.id, &r.etag), false, &sent)
            .await?;
        Ok(Response::new(pb::UndeleteIncidentResponse {
            incident: Some(convert::incident(
                &incident,
                &self.store.hub().components().read(),
            )),
        }))
    }

    async fn post_status_update(
        &self,
        req: Request<pb::PostStatusUpdateRequest>,
    ) -> Result<Response<pb::PostStatusUpdateResponse>, Status> {
        let mut req = req;
        let sent = super::refs::resolve(&self.store, req.get_mut(), Audience::Full).await?;
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let command = parse_post(&r, &caller, &mut v);
        let (update, incident) = execute(&self.store, key, v.into_result(command)?)
            .await
            .map_err(|e| sent.echo(e))?;
        Ok(Response::new(pb::PostStatusUpdateResponse {
            status_update: Some(convert::status_update(
                &update,
                &self.store.hub().components().read(),
            )),
            incident: Some(convert::incident(
                &incident,
                &self.store.hub().components().read(),
            )),
        }))
    }

    async fn list_status_updates(
        &self,
        req: Request<pb::ListStatusUpdatesRequest>,
    ) -> Result<Response<pb::ListStatusUpdatesResponse>, Status> {
        let mut req = req;
        let audience = super::audience(&req, req.get_ref().view)?;
        let sent = super::refs::resolve(&self.store, req.get_mut(), audience).await?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let limit = parse::page_size(&mut v, r.page_size);
        let id = incident_id(&mut v, "incident_id", &r.incident_id);
        let id = v.into_result(id)?;
        let scope_filters = (id.to_string(), audience);
        let start: Option<Cursor> =
            page_start(&self.store, "status_updates", &scope_filters, &r.page_token)?;
        let items = svc::list_status_updates(&self.store, id, start.as_ref(), limit + 1, audience)
            .await
            .map_err(|e| sent.echo(e))?;
        let names = self.store.hub().components().read();
        let (status_updates, next_page_token) = paginate(
            &self.store,
            "status_updates",
            &scope_filters,
            Run::whole(&items),
            limit,
            |u| {
                let full = convert::status_update(u, &names);
                match audience {
                    Audience::Full => full,
                    Audience::Public => {
                        public_view::status_update(&full, &full.message, full.edit_time)
                    }
                }
            },
            status_update_cursor,
        )?;
        Ok(Response::new(pb::ListStatusUpdatesResponse {
            status_updates,
            next_page_token,
        }))
    }

    async fn edit_status_update(
        &self,
        req: Request<pb::EditStatusUpdateRequest>,
    ) -> Result<Response<pb::EditStatusUpdateResponse>, Status> {
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let id: Option<StatusUpdateId> = v.check("id", parse::uuid(&r.id));
        let correction = parse::correction(&mut v, "message", &r.message, r.visibility);
        let id = v.into_result(id)?;
        let command = svc::EditStatusUpdate {
            editor: caller.editor(),
            id,
            etag: parse::etag(&r.etag),
            correction,
        };
        let update = execute(&self.store, key, command).await?;
        Ok(Response::new(pb::EditStatusUpdateResponse {
            status_update: Some(convert::status_update(
                &update,
                &self.store.hub().components().read(),
            )),
        }))
    }

    async fn get_postmortem(
        &self,
        req: Request<pb::GetPostmortemRequest>,
    ) -> Result<Response<pb::GetPostmortemResponse>, Status> {
        let mut req = req;
        let audience = super::audience(&req, req.get_ref().view)?;
        let sent = super::refs::resolve(&self.store, req.get_mut(), audience).await?;
        let mut v = Violations::new();
        let id = incident_id(&mut v, "incident_id", &req.get_ref().incident_id);
        let id = v.into_result(id)?;
        let pm = action_items::get_postmortem(&self.store, id, audience)
            .await
            .map_err(|e| sent.echo(e))?;
        let postmortem = match audience {
            Audience::Full => convert::postmortem(&pm),
            // The public reads what was published, never the draft.
            Audience::Public => {
                let published = pm.published.as_ref().ok_or_else(|| {
                    sent.echo(Error::NotFound {
                        resource: "postmortem",
                        id: id.to_string(),
                    })
                })?;
                public_view::postmortem(id, published)
            }
        };
        Ok(Response::new(pb::GetPostmortemResponse {
            postmortem: Some(postmortem),
        }))
    }

    async fn update_postmortem(
        &self,
        req: Request<pb::UpdatePostmortemRequest>,
    ) -> Result<Response<pb::UpdatePostmortemResponse>, Status> {
        let mut req = req;
        let sent = super::refs::resolve(&self.store, req.get_mut(), Audience::Full).await?;
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let command = parse_update_postmortem(&r, &caller, &mut v);
        let pm = execute(&self.store, key, v.into_result(command)?)
            .await
            .map_err(|e| sent.echo(e))?;
        Ok(Response::new(pb::UpdatePostmortemResponse {
            postmortem: Some(convert::postmortem(&pm)),
        }))
    }

    async fn publish_postmortem(
        &self,
        req: Request<pb::PublishPostmortemRequest>,
    ) -> Result<Response<pb::PublishPostmortemResponse>, Status> {
        let mut req = req;
        let sent = super::refs::resolve(&self.store, req.get_mut(), Audience::Full).await?;
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let command = parse_publish(&r, &caller, &mut v);
        let pm = execute(&self.store, key, v.into_result(command)?)
            .await
            .map_err(|e| sent.echo(e))?;
        Ok(Response::new(pb::PublishPostmortemResponse {
            postmortem: Some(convert::postmortem(&pm)),
        }))
    }
}

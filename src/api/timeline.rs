//! TimelineService.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::parse::{self, Mutation, Violations};
use super::{Run, convert, filter_list, page_start, paginate};
use crate::auth::Identity;
use crate::domain::filter::EventFilter;
use crate::domain::limits::TEXT_MAX_BYTES;
use crate::domain::{Audience, EventKind, IncidentId, Severity, Visibility};
use crate::error::Error;
use crate::proto as pb;
use crate::proto::subscribe_timeline_request::Start as PbStart;
use crate::proto::timeline_service_server::TimelineService;
use crate::quota::Quotas;
use crate::service::timeline::{self as svc, Item, Start};
use crate::store::Store;
use crate::wire::{ListTimelineEventsResponse, SubscribeTimelineResponse};

const HEARTBEAT_DEFAULT: Duration = Duration::from_secs(15);
const HEARTBEAT_MIN: Duration = Duration::from_secs(1);
const HEARTBEAT_MAX: Duration = Duration::from_secs(3600);

/// The TimelineService handlers.
#[derive(Clone)]
pub struct Timeline {
    store: Store,
    quotas: Quotas,
}

impl Timeline {
    /// `quotas` bounds the streams open at once, per caller and in all.
    pub fn new(store: Store, quotas: Quotas) -> Self {
        Timeline { store, quotas }
    }
}

fn kinds(v: &mut Violations, list: &[i32]) -> Vec<EventKind> {
    let mut out = Vec::new();
    for (i, k) in filter_list(v, "kinds", list).iter().enumerate() {
        if let Some(k) = v.check(
            &format!("kinds[{i}]"),
            parse::required_enum(*k, EventKind::from_code),
        ) && !out.contains(&k)
        {
            out.push(k);
        }
    }
    out.sort_by_key(|k| k.code());
    out
}

type EventStream = Pin<Box<dyn Stream<Item = Result<SubscribeTimelineResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TimelineService for Timeline {
    type SubscribeTimelineStream = EventStream;

    async fn list_timeline_events(
        &self,
        req: Request<pb::ListTimelineEventsRequest>,
    ) -> Result<Response<ListTimelineEventsResponse>, Status> {
        let mut req = req;
        let audience = super::audience(&req, req.get_ref().view)?;
        let sent = super::refs::resolve(&self.store, req.get_mut(), audience).await?;
        let r = req.into_inner();
        let mut v = Violations::new();
        let limit = parse::page_size(&mut v, r.page_size);
        let incident: Option<IncidentId> = v
            .check("incident_id", parse::optional_uuid(&r.incident_id))
            .flatten();
        let filter = EventFilter {
            incident_ids: incident.into_iter().collect(),
            kinds: kinds(&mut v, &r.kinds),
            ..Default::default()
        };
        v.finish()?;
        let scope = (&filter, audience);
        // A page token carries its position and supersedes after_sequence.
        let after = page_start::<u64>(&self.store, "timeline", &scope, &r.page_token)?
            .unwrap_or(r.after_sequence);
        let batch = svc::list(&self.store, &filter, after, limit + 1, audience)
            .await
            .map_err(|e| sent.echo(e))?;
        let (events, mut next_page_token) = paginate(
            &self.store,
            "timeline",
            &scope,
            Run {
                items: &batch.events,
                cut_short: !batch.complete,
            },
            limit,
            |(_, stored): &(u64, Bytes)| stored.clone(),
            |(sequence, _): &(u64, Bytes)| *sequence,
        )?;
        if let Some(scanned_to) = batch.scanned_to.filter(|_| next_page_token.is_empty()) {
            // Stopped on the scan budget: the next page goes on from there.
            next_page_token = crate::page_token::encode(
                self.store.page_token_key(),
                "timeline",
                &scope,
                &scanned_to,
            )?;
        }
        Ok(Response::new(ListTimelineEventsResponse {
            events,
            next_page_token,
        }))
    }

    async fn subscribe_timeline(
        &self,
        req: Request<pb::SubscribeTimelineRequest>,
    ) -> Result<Response<Self::SubscribeTimelineStream>, Status> {
        let mut req = req;
        let audience = super::audience(&req, req.get_ref().view)?;
        super::refs::resolve(&self.store, req.get_mut(), audience).await?;
        let caller = req.extensions().get::<Identity>().cloned();
        let r = req.into_inner();
        let mut v = Violations::new();
        let start = match r.start {
            Some(PbStart::AfterSequence(after)) => Some(Start::After(after)),
            Some(PbStart::FromNow(_)) => Some(Start::Now),
            None => {
                v.add(
                    "start",
                    "name a start: after_sequence (0 = from the beginning) or from_now",
                );
                None
            }
        };
        let mut incident_ids = Vec::new();
        for (i, id) in filter_list(&mut v, "incident_ids", &r.incident_ids)
            .iter()
            .enumerate()
        {
            if let Some(id) = v.check(&format!("incident_ids[{i}]"), parse::uuid::<IncidentId>(id))
            {
                incident_ids.push(id);
            }
        }
        let filter = EventFilter {
            incident_ids,
            kinds: kinds(&mut v, &r.kinds),
            severity_at_least: v
                .check(
                    "severity_at_least",
                    parse::optional_enum(r.severity_at_least, Severity::from_code),
                )
                .flatten(),
            component_id: v
                .check("component_id", parse::optional_uuid(&r.component_id))
                .flatten(),
        };
        let heartbeat = match &r.heartbeat_interval {
            None => HEARTBEAT_DEFAULT,
            Some(d) => match parse::duration(d).ok().and_then(|d| d.to_std().ok()) {
                Some(d) if (HEARTBEAT_MIN..=HEARTBEAT_MAX).contains(&d) => d,
                _ => {
                    v.add("heartbeat_interval", "must be between 1 s and 1 h");
                    HEARTBEAT_DEFAULT
                }
            },
        };
        v.finish()?;
        let Some(start) = start else {
            return Err(Error::invalid("start", "is required").into());
        };
        let permit = self.quotas.admit_subscriber(caller.as_ref())?;
        let subscription = svc::subscribe(
            self.store.clone(),
            start,
            filter,
            heartbeat,
            permit,
            audience,
        )
        .await?;
        let stream = subscription.map(|item| {
            item.map(|item| match item {
                // The stored encoding, shared by every subscriber.
                Item::Event(reply) => SubscribeTimelineResponse::Event(reply),
                Item::Heartbeat(sequence) => {
                    SubscribeTimelineResponse::Heartbeat(pb::Heartbeat { sequence })
                }
            })
            .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn edit_note(
        &self,
        req: Request<pb::EditNoteRequest>,
    ) -> Result<Response<pb::EditNoteResponse>, Status> {
        let mut req = req;
        let sent = super::refs::resolve(&self.store, req.get_mut(), Audience::Full).await?;
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let id: Option<IncidentId> = v.check("incident_id", parse::uuid(&r.incident_id));
        if r.note_sequence == 0 {
            v.add(
                "note_sequence",
                "is required: the sequence of the NOTE_ADDED event",
            );
        }
        let correction = parse::correction(&mut v, "text", &r.text, r.visibility);
        let incident_id = v.into_result(id)?;
        let command = svc::EditNote {
            editor: caller.editor(),
            incident_id,
            sequence: r.note_sequence,
            correction,
        };
        let event = crate::service::execute(&self.store, key, command)
            .await
            .map_err(|e| sent.echo(e))?;
        let names = self.store.hub().components().read();
        Ok(Response::new(pb::EditNoteResponse {
            event: event.map(|e| convert::event(&e, &names)),
        }))
    }

    async fn add_note(
        &self,
        req: Request<pb::AddNoteRequest>,
    ) -> Result<Response<pb::AddNoteResponse>, Status> {
        let mut req = req;
        let sent = super::refs::resolve(&self.store, req.get_mut(), Audience::Full).await?;
        let Mutation {
            caller,
            request: r,
            key,
            violations: mut v,
        } = parse::mutation(req);
        let id: Option<IncidentId> = v.check("incident_id", parse::uuid(&r.incident_id));
        let text = v.check("text", parse::text(&r.text, TEXT_MAX_BYTES, true));
        let occur_time = v
            .check("occur_time", parse::past_time(&r.occur_time))
            .flatten();
        let visibility = v
            .check(
                "visibility",
                parse::optional_enum(r.visibility, Visibility::from_code),
            )
            .flatten()
            .unwrap_or(Visibility::Internal);
        v.finish()?;
        let (Some(id), Some(text)) = (id, text) else {
            return Err(Error::invalid("incident_id", "is required").into());
        };
        let command = svc::AddNote {
            actor: caller.actor,
            incident_id: id,
            text,
            visibility,
            occur_time,
        };
        let event = crate::service::execute(&self.store, key, command)
            .await
            .map_err(|e| sent.echo(e))?;
        Ok(Response::new(pb::AddNoteResponse {
            event: Some(convert::event(
                &event,
                &self.store.hub().components().read(),
            )),
        }))
    }
}

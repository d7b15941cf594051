//! Action items and postmortems, over a real socket through
//! `incident-client`: the lifecycle from a resolved incident to closed
//! follow-ups and a published postmortem, listing with every filter across
//! pages, overdue at the boundary, complete_time, etags, request_id
//! idempotency, the refusals, bad input, and the timeline events.

mod bad_input;
mod lifecycle;
mod listing;
mod refusals;
mod timeline;
mod writes;

use std::collections::BTreeMap;

use incident_client::prost_types::value::Kind;
use incident_client::prost_types::{Timestamp, Value};
use incident_client::tonic::Status;
use incident_client::tonic::transport::Channel;
use incident_client::*;

use crate::support::{TestServer, list_all_timeline_events, mask_if_any};

pub fn from_nanos(n: i128) -> Timestamp {
    Timestamp {
        seconds: n.div_euclid(1_000_000_000) as i64,
        nanos: n.rem_euclid(1_000_000_000) as i32,
    }
}

pub fn now_nanos() -> i128 {
    i128::from(
        chrono::Utc::now()
            .timestamp_nanos_opt()
            .expect("now fits in i64 nanoseconds"),
    )
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn section(title: &str, body: &str) -> PostmortemSection {
    PostmortemSection {
        title: title.into(),
        body: body.into(),
    }
}

pub fn titles(sections: &[PostmortemSection]) -> Vec<String> {
    sections.iter().map(|s| s.title.clone()).collect()
}

pub fn ids(items: &[ActionItem]) -> Vec<String> {
    items.iter().map(|a| a.id.clone()).collect()
}

pub fn is_closed(status: i32) -> bool {
    status == ActionItemStatus::Done as i32 || status == ActionItemStatus::WontDo as i32
}

/// The string inside a `google.protobuf.Value`, if it holds one.
pub fn string_value(v: &Option<Value>) -> Option<String> {
    match v.as_ref().and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

/// True when a `google.protobuf.Value` is set and holds null.
pub fn is_null(v: &Option<Value>) -> bool {
    matches!(
        v.as_ref().and_then(|v| v.kind.as_ref()),
        Some(Kind::NullValue(_))
    )
}

/// Nanoseconds of an RFC 3339 string value.
pub fn time_value(v: &Option<Value>) -> i128 {
    let s = string_value(v).unwrap_or_else(|| panic!("expected a time string, got {v:?}"));
    let t = chrono::DateTime::parse_from_rfc3339(&s).expect("rfc3339 value");
    i128::from(t.timestamp_nanos_opt().expect("fits"))
}

pub fn item(incident_id: &str, title: &str, status: ActionItemStatus) -> ActionItem {
    ActionItem {
        incident_id: incident_id.into(),
        title: title.into(),
        status: status as i32,
        ..Default::default()
    }
}

/// The three clients of one test.
pub struct Api {
    pub inc: IncidentServiceClient<Channel>,
    pub ai: ActionItemServiceClient<Channel>,
    pub tl: TimelineServiceClient<Channel>,
}

impl Api {
    pub async fn new(srv: &TestServer) -> Api {
        Api {
            inc: srv.incidents().await,
            ai: srv.action_items().await,
            tl: srv.timeline().await,
        }
    }

    pub async fn declare(&mut self, title: &str) -> Incident {
        crate::support::create_incident(
            &mut self.inc,
            Incident {
                severity: Severity::P1 as i32,
                ..crate::support::plain_incident(title)
            },
        )
        .await
    }

    pub async fn post(&mut self, id: &str, status: IncidentStatus) -> Incident {
        self.inc
            .post_status_update(PostStatusUpdateRequest {
                incident_id: id.into(),
                status: status as i32,
                message: format!("now {status:?}"),
                ..Default::default()
            })
            .await
            .expect("post status update")
            .into_inner()
            .incident
            .expect("incident")
    }

    pub async fn resolved(&mut self, title: &str) -> Incident {
        let i = self.declare(title).await;
        self.post(&i.id, IncidentStatus::Resolved).await
    }

    pub async fn get_incident(&mut self, id: &str) -> Incident {
        self.inc
            .get_incident(GetIncidentRequest {
                id: id.into(),
                ..Default::default()
            })
            .await
            .expect("get incident")
            .into_inner()
            .incident
            .expect("incident")
    }

    /// (action_item_count, open_action_item_count) of an incident.
    pub async fn counts(&mut self, id: &str) -> (i32, i32) {
        let i = self.get_incident(id).await;
        (i.action_item_count, i.open_action_item_count)
    }

    pub async fn try_create(&mut self, a: ActionItem) -> Result<ActionItem, Status> {
        self.ai
            .create_action_item(CreateActionItemRequest {
                action_item: Some(a),
                request_id: String::new(),
            })
            .await
            .map(|r| r.into_inner().action_item.expect("action item"))
    }

    pub async fn create(&mut self, a: ActionItem) -> ActionItem {
        self.try_create(a).await.expect("create action item")
    }

    pub async fn try_update(
        &mut self,
        a: ActionItem,
        paths: &[&str],
    ) -> Result<ActionItem, Status> {
        self.ai
            .update_action_item(UpdateActionItemRequest {
                action_item: Some(a),
                update_mask: mask_if_any(paths),
                request_id: String::new(),
            })
            .await
            .map(|r| r.into_inner().action_item.expect("action item"))
    }

    pub async fn set_status(&mut self, id: &str, status: ActionItemStatus) -> ActionItem {
        self.try_update(
            ActionItem {
                id: id.into(),
                status: status as i32,
                ..Default::default()
            },
            &["status"],
        )
        .await
        .expect("update status")
    }

    pub async fn try_delete(&mut self, id: &str, etag: &str) -> Result<ActionItem, Status> {
        self.ai
            .delete_action_item(DeleteActionItemRequest {
                id: id.into(),
                etag: etag.into(),
                request_id: String::new(),
            })
            .await
            .map(|r| r.into_inner().action_item.expect("action item"))
    }

    pub async fn get_item(&mut self, id: &str) -> ActionItem {
        self.ai
            .get_action_item(GetActionItemRequest {
                id: id.into(),
                ..Default::default()
            })
            .await
            .expect("get action item")
            .into_inner()
            .action_item
            .expect("action item")
    }

    /// Every page of a listing, checking the paging contract on the way.
    pub async fn list_pages(&mut self, req: ListActionItemsRequest) -> Vec<Vec<ActionItem>> {
        let size = usize::try_from(req.page_size).expect("page size");
        let mut pages = Vec::new();
        let mut token = String::new();
        loop {
            let resp = self
                .ai
                .list_action_items(ListActionItemsRequest {
                    page_token: token.clone(),
                    ..req.clone()
                })
                .await
                .unwrap_or_else(|e| panic!("list {req:?}: {e:?}"))
                .into_inner();
            if size > 0 {
                assert!(resp.action_items.len() <= size, "page over page_size");
            }
            token = resp.next_page_token;
            pages.push(resp.action_items);
            if token.is_empty() {
                break;
            }
            assert!(pages.len() < 1000, "paging does not end");
        }
        pages
    }

    pub async fn list_all(&mut self, req: ListActionItemsRequest) -> Vec<ActionItem> {
        self.list_pages(req).await.into_iter().flatten().collect()
    }

    pub async fn get_pm(&mut self, incident_id: &str) -> Postmortem {
        self.inc
            .get_postmortem(GetPostmortemRequest {
                incident_id: incident_id.into(),
                ..Default::default()
            })
            .await
            .expect("get postmortem")
            .into_inner()
            .postmortem
            .expect("postmortem")
    }

    pub async fn try_update_pm(
        &mut self,
        pm: Postmortem,
        paths: &[&str],
    ) -> Result<Postmortem, Status> {
        self.inc
            .update_postmortem(UpdatePostmortemRequest {
                postmortem: Some(pm),
                update_mask: mask_if_any(paths),
                request_id: String::new(),
            })
            .await
            .map(|r| r.into_inner().postmortem.expect("postmortem"))
    }

    pub async fn try_publish(
        &mut self,
        incident_id: &str,
        etag: &str,
        occur_time: Option<Timestamp>,
    ) -> Result<Postmortem, Status> {
        self.inc
            .publish_postmortem(PublishPostmortemRequest {
                incident_id: incident_id.into(),
                etag: etag.into(),
                request_id: String::new(),
                occur_time,
            })
            .await
            .map(|r| r.into_inner().postmortem.expect("postmortem"))
    }

    /// The incident's events of these kinds, oldest first, every page.
    pub async fn events(
        &mut self,
        incident_id: &str,
        kinds: &[TimelineEventKind],
    ) -> Vec<TimelineEvent> {
        list_all_timeline_events(
            &mut self.tl,
            ListTimelineEventsRequest {
                incident_id: incident_id.into(),
                kinds: kinds.iter().map(|k| *k as i32).collect(),
                page_size: 3,
                ..Default::default()
            },
        )
        .await
    }
}

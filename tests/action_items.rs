//! Action items and postmortems (issue 4), over a real socket through
//! `incident-client`: the lifecycle from a resolved incident to closed
//! follow-ups and a published postmortem, listing with every filter across
//! pages, overdue at the boundary, complete_time, etags, request_id
//! idempotency, the refusals, bad input, and the timeline events.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::future::Future;

use common::{TestServer, assert_error, details, list_all_timeline_events, mask, nanos, rid, ts};
use incident_client::pb::timeline_event::Payload;
use incident_client::prost_types::value::Kind;
use incident_client::prost_types::{Timestamp, Value};
use incident_client::tonic::transport::Channel;
use incident_client::tonic::{Code, Response, Status};
use incident_client::*;

// ---------------------------------------------------------------- helpers

fn from_nanos(n: i128) -> Timestamp {
    Timestamp {
        seconds: n.div_euclid(1_000_000_000) as i64,
        nanos: n.rem_euclid(1_000_000_000) as i32,
    }
}

fn now_nanos() -> i128 {
    i128::from(
        chrono::Utc::now()
            .timestamp_nanos_opt()
            .expect("now fits in i64 nanoseconds"),
    )
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn section(title: &str, body: &str) -> PostmortemSection {
    PostmortemSection {
        title: title.into(),
        body: body.into(),
    }
}

fn titles(sections: &[PostmortemSection]) -> Vec<String> {
    sections.iter().map(|s| s.title.clone()).collect()
}

fn ids(items: &[ActionItem]) -> Vec<String> {
    items.iter().map(|a| a.id.clone()).collect()
}

fn is_closed(status: i32) -> bool {
    status == ActionItemStatus::Done as i32 || status == ActionItemStatus::WontDo as i32
}

/// The string inside a `google.protobuf.Value`, if it holds one.
fn string_value(v: &Option<Value>) -> Option<String> {
    match v.as_ref().and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

/// True when a `google.protobuf.Value` is set and holds null.
fn is_null(v: &Option<Value>) -> bool {
    matches!(
        v.as_ref().and_then(|v| v.kind.as_ref()),
        Some(Kind::NullValue(_))
    )
}

/// Nanoseconds of an RFC 3339 string value.
fn time_value(v: &Option<Value>) -> i128 {
    let s = string_value(v).unwrap_or_else(|| panic!("expected a time string, got {v:?}"));
    let t = chrono::DateTime::parse_from_rfc3339(&s).expect("rfc3339 value");
    i128::from(t.timestamp_nanos_opt().expect("fits"))
}

fn item(incident_id: &str, title: &str, status: ActionItemStatus) -> ActionItem {
    ActionItem {
        incident_id: incident_id.into(),
        title: title.into(),
        status: status as i32,
        ..Default::default()
    }
}

/// The three clients of one test.
struct Api {
    inc: IncidentServiceClient<Channel>,
    ai: ActionItemServiceClient<Channel>,
    tl: TimelineServiceClient<Channel>,
}

impl Api {
    async fn new(srv: &TestServer) -> Api {
        Api {
            inc: srv.incidents().await,
            ai: ActionItemServiceClient::new(srv.channel().await),
            tl: srv.timeline().await,
        }
    }

    async fn declare(&mut self, title: &str) -> Incident {
        self.inc
            .create_incident(CreateIncidentRequest {
                incident: Some(Incident {
                    title: title.into(),
                    kind: IncidentKind::Incident as i32,
                    severity: Severity::P1 as i32,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("create incident")
            .into_inner()
            .incident
            .expect("incident")
    }

    async fn post(&mut self, id: &str, status: IncidentStatus) -> Incident {
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

    async fn resolved(&mut self, title: &str) -> Incident {
        let i = self.declare(title).await;
        self.post(&i.id, IncidentStatus::Resolved).await
    }

    async fn get_incident(&mut self, id: &str) -> Incident {
        self.inc
            .get_incident(GetIncidentRequest { id: id.into() })
            .await
            .expect("get incident")
            .into_inner()
            .incident
            .expect("incident")
    }

    /// (action_item_count, open_action_item_count) of an incident.
    async fn counts(&mut self, id: &str) -> (i32, i32) {
        let i = self.get_incident(id).await;
        (i.action_item_count, i.open_action_item_count)
    }

    async fn try_create(&mut self, a: ActionItem) -> Result<ActionItem, Status> {
        self.ai
            .create_action_item(CreateActionItemRequest {
                action_item: Some(a),
                request_id: String::new(),
            })
            .await
            .map(|r| r.into_inner().action_item.expect("action item"))
    }

    async fn create(&mut self, a: ActionItem) -> ActionItem {
        self.try_create(a).await.expect("create action item")
    }

    async fn try_update(&mut self, a: ActionItem, paths: &[&str]) -> Result<ActionItem, Status> {
        self.ai
            .update_action_item(UpdateActionItemRequest {
                action_item: Some(a),
                update_mask: if paths.is_empty() { None } else { mask(paths) },
                request_id: String::new(),
            })
            .await
            .map(|r| r.into_inner().action_item.expect("action item"))
    }

    async fn set_status(&mut self, id: &str, status: ActionItemStatus) -> ActionItem {
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

    async fn try_delete(&mut self, id: &str, etag: &str) -> Result<ActionItem, Status> {
        self.ai
            .delete_action_item(DeleteActionItemRequest {
                id: id.into(),
                etag: etag.into(),
                request_id: String::new(),
            })
            .await
            .map(|r| r.into_inner().action_item.expect("action item"))
    }

    async fn get_item(&mut self, id: &str) -> ActionItem {
        self.ai
            .get_action_item(GetActionItemRequest { id: id.into() })
            .await
            .expect("get action item")
            .into_inner()
            .action_item
            .expect("action item")
    }

    /// Every page of a listing, checking the paging contract on the way.
    async fn list_pages(&mut self, req: ListActionItemsRequest) -> Vec<Vec<ActionItem>> {
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

    async fn list_all(&mut self, req: ListActionItemsRequest) -> Vec<ActionItem> {
        self.list_pages(req).await.into_iter().flatten().collect()
    }

    async fn get_pm(&mut self, incident_id: &str) -> Postmortem {
        self.inc
            .get_postmortem(GetPostmortemRequest {
                incident_id: incident_id.into(),
            })
            .await
            .expect("get postmortem")
            .into_inner()
            .postmortem
            .expect("postmortem")
    }

    async fn try_update_pm(
        &mut self,
        pm: Postmortem,
        paths: &[&str],
    ) -> Result<Postmortem, Status> {
        self.inc
            .update_postmortem(UpdatePostmortemRequest {
                postmortem: Some(pm),
                update_mask: if paths.is_empty() { None } else { mask(paths) },
                request_id: String::new(),
            })
            .await
            .map(|r| r.into_inner().postmortem.expect("postmortem"))
    }

    async fn try_publish(
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
    async fn events(
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

/// Runs a request that must be refused with this code and reason, naming
/// `field` if given, and leave the database unchanged; records each failure.
async fn refused<T: Debug>(
    srv: &TestServer,
    name: &str,
    call: impl Future<Output = Result<Response<T>, Status>>,
    code: Code,
    reason: &str,
    field: Option<&str>,
    failures: &mut Vec<String>,
) {
    let before = srv.db_state().await;
    let result = call.await;
    if srv.db_state().await != before {
        failures.push(format!("{name}: the database changed"));
    }
    let status = match result {
        Ok(r) => {
            failures.push(format!("{name}: accepted: {:?}", r.into_inner()));
            return;
        }
        Err(s) => s,
    };
    let d = details(&status);
    if d.code != code || d.reason != reason {
        failures.push(format!(
            "{name}: want {code:?} {reason}, got {:?} {} ({})",
            d.code,
            d.reason,
            status.message()
        ));
    }
    if let Some(field) = field
        && !d.bad_fields.iter().any(|f| f == field)
    {
        failures.push(format!(
            "{name}: want bad field {field:?}, got {:?}",
            d.bad_fields
        ));
    }
}

fn finish(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------- lifecycle

#[tokio::test]
async fn lifecycle_from_resolved_incident_to_published_postmortem() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Livechat DB frozen after upgrade").await;
    assert_eq!(inc.status, IncidentStatus::Resolved as i32);
    assert_eq!(api.counts(&inc.id).await, (0, 0));

    // Items are created on a resolved incident, in every status.
    let throttle = api
        .create(ActionItem {
            description: "Allow a gradual increase of incoming traffic".into(),
            owner: "dba@iadvize.com".into(),
            priority: Priority::High as i32,
            due_time: Some(ts("2024-03-31T00:00:00Z")),
            labels: labels(&[("area", "tech")]),
            ..item(
                &inc.id,
                "Throttle the next DB migrations",
                ActionItemStatus::Open,
            )
        })
        .await;
    assert_eq!(throttle.status, ActionItemStatus::Open as i32);
    assert_eq!(throttle.incident_id, inc.id);
    assert_eq!(throttle.owner, "dba@iadvize.com");
    assert_eq!(throttle.priority, Priority::High as i32);
    assert_eq!(throttle.labels, labels(&[("area", "tech")]));
    assert!(throttle.complete_time.is_none());
    assert!(throttle.delete_time.is_none());
    assert!(!throttle.etag.is_empty());
    assert!(throttle.create_time.is_some());
    assert_eq!(api.counts(&inc.id).await, (1, 1));

    let process = api
        .create(item(
            &inc.id,
            "Improve DB crash resolution tooling",
            ActionItemStatus::InProgress,
        ))
        .await;
    assert_eq!(process.status, ActionItemStatus::InProgress as i32);
    assert!(process.complete_time.is_none());
    assert_eq!(api.counts(&inc.id).await, (2, 2));

    let runbook = api
        .create(item(&inc.id, "Write the runbook", ActionItemStatus::Done))
        .await;
    assert_eq!(runbook.status, ActionItemStatus::Done as i32);
    assert!(
        runbook.complete_time.is_some(),
        "DONE on create stamps complete_time"
    );
    assert_eq!(api.counts(&inc.id).await, (3, 2));
    assert_eq!(api.get_item(&throttle.id).await, throttle);

    // Updated through to DONE.
    let t1 = api
        .set_status(&throttle.id, ActionItemStatus::InProgress)
        .await;
    assert_eq!(t1.status, ActionItemStatus::InProgress as i32);
    assert_ne!(t1.etag, throttle.etag);
    assert_eq!(t1.title, throttle.title, "the mask kept the other fields");
    assert_eq!(t1.owner, throttle.owner);
    assert_eq!(t1.labels, throttle.labels);
    assert_eq!(api.counts(&inc.id).await, (3, 2));
    let t2 = api.set_status(&throttle.id, ActionItemStatus::Done).await;
    assert!(t2.complete_time.is_some());
    assert_eq!(api.counts(&inc.id).await, (3, 1));
    let p2 = api.set_status(&process.id, ActionItemStatus::Done).await;
    assert_eq!(p2.status, ActionItemStatus::Done as i32);
    assert_eq!(api.counts(&inc.id).await, (3, 0));

    // A deleted item is not counted, whatever its status.
    let extra = api
        .create(item(
            &inc.id,
            "Duplicate of the throttle item",
            ActionItemStatus::Open,
        ))
        .await;
    assert_eq!(api.counts(&inc.id).await, (4, 1));
    let deleted = api
        .try_delete(&extra.id, &extra.etag)
        .await
        .expect("delete");
    assert!(deleted.delete_time.is_some());
    assert_ne!(deleted.etag, extra.etag);
    assert_eq!(api.counts(&inc.id).await, (3, 0));
    assert_eq!(
        api.get_item(&extra.id).await,
        deleted,
        "Get still returns it"
    );
    let again = api
        .try_delete(&extra.id, "")
        .await
        .expect_err("deleted twice");
    assert_error(&again, Code::NotFound, "NOT_FOUND", None);
    let live = api
        .list_all(ListActionItemsRequest {
            incident_id: inc.id.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(
        ids(&live),
        vec![runbook.id.clone(), process.id.clone(), throttle.id.clone()]
    );
    let all = api
        .list_all(ListActionItemsRequest {
            incident_id: inc.id.clone(),
            show_deleted: true,
            ..Default::default()
        })
        .await;
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].id, extra.id);

    // The postmortem: an empty draft, then free-titled sections in order.
    let draft = api.get_pm(&inc.id).await;
    assert_eq!(draft.incident_id, inc.id);
    assert!(draft.publish_time.is_none());
    assert!(draft.sections.is_empty());
    let order = [
        "Incident",
        "Reasons",
        "Root Cause",
        "Impact",
        "Actions for the future",
    ];
    let written = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                body: "# Postmortem\nThe Livechat DB froze.".into(),
                sections: order
                    .iter()
                    .map(|t| section(t, &format!("About {t}.")))
                    .collect(),
                author: "ops@iadvize.com".into(),
                etag: draft.etag.clone(),
                ..Default::default()
            },
            &[],
        )
        .await
        .expect("write the draft");
    assert_eq!(titles(&written.sections), order);
    assert_eq!(written.sections[2].body, "About Root Cause.");
    assert_eq!(written.author, "ops@iadvize.com");
    assert_ne!(written.etag, draft.etag);
    assert!(written.publish_time.is_none());
    assert!(written.update_time.is_some());

    // Reordering the sections alone keeps the body and author.
    let reordered: Vec<PostmortemSection> = written.sections.iter().rev().cloned().collect();
    let edited = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                sections: reordered.clone(),
                body: "IGNORED: not in the mask".into(),
                ..Default::default()
            },
            &["sections"],
        )
        .await
        .expect("reorder sections");
    assert_eq!(edited.sections, reordered);
    assert_eq!(edited.body, written.body);
    assert_eq!(edited.author, written.author);
    assert_eq!(api.get_pm(&inc.id).await, edited);
    assert!(
        api.get_incident(&inc.id)
            .await
            .postmortem_publish_time
            .is_none()
    );

    // Published with a backfilled occur_time.
    let at = ts("2024-02-26T09:05:00Z");
    let published = api
        .try_publish(&inc.id, &edited.etag, Some(at))
        .await
        .expect("publish");
    assert_eq!(published.publish_time, Some(at));
    assert_eq!(published.sections, reordered);
    assert_ne!(published.etag, edited.etag);
    assert_eq!(api.get_pm(&inc.id).await, published);
    let after = api.get_incident(&inc.id).await;
    assert_eq!(after.postmortem_publish_time, Some(at));
    assert_eq!(
        (after.action_item_count, after.open_action_item_count),
        (3, 0)
    );
    assert_eq!(after.status, IncidentStatus::Resolved as i32);
}

// ---------------------------------------------------------------- listing

/// One model row: the item as last returned by the server.
fn matches(a: &ActionItem, r: &ListActionItemsRequest) -> bool {
    if !r.show_deleted && a.delete_time.is_some() {
        return false;
    }
    if !r.incident_id.is_empty() && a.incident_id != r.incident_id {
        return false;
    }
    if !r.statuses.is_empty() && !r.statuses.contains(&a.status) {
        return false;
    }
    if !r.owner.is_empty() && a.owner != r.owner {
        return false;
    }
    if !r.label.is_empty() {
        let ok = match r.label.split_once('=') {
            Some((k, v)) => a.labels.get(k).is_some_and(|x| x == v),
            None => a.labels.contains_key(&r.label),
        };
        if !ok {
            return false;
        }
    }
    if r.overdue {
        let at = r.as_of_time.map_or_else(now_nanos, |t| nanos(&Some(t)));
        let due = a.due_time.map(|d| nanos(&Some(d)));
        if is_closed(a.status) || due.is_none_or(|d| d > at) {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn every_filter_alone_and_combined_across_pages() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let incidents = [
        api.resolved("Livechat DB frozen").await,
        api.declare("Desk does not load").await,
        api.resolved("Dixa phone outage").await,
    ];
    let statuses = [
        ActionItemStatus::Open,
        ActionItemStatus::InProgress,
        ActionItemStatus::Done,
        ActionItemStatus::WontDo,
    ];
    let owners = ["alice", "bob", "carol"];
    // Items in creation order (oldest first), as last returned by the server.
    let mut model: Vec<ActionItem> = Vec::new();
    for i in 0..26usize {
        let mut l = BTreeMap::new();
        if i % 2 == 0 {
            l.insert("area".to_owned(), "tech".to_owned());
        } else if i % 5 == 0 {
            l.insert("area".to_owned(), "support".to_owned());
        }
        if i % 4 == 1 {
            l.insert("customer".to_owned(), "iadvize".to_owned());
        }
        let due_time = match i % 3 {
            0 => None,
            // Long past: overdue now.
            1 if i % 2 == 1 => Some(ts(&format!("2020-01-{:02}T00:00:00Z", i + 1))),
            _ => Some(ts(&format!("2030-01-{:02}T00:00:00Z", i + 1))),
        };
        let created = api
            .create(ActionItem {
                owner: owners[(i / 2) % 3].into(),
                due_time,
                labels: l,
                ..item(
                    &incidents[i % 3].id,
                    &format!("item {i}"),
                    statuses[(i / 3) % 4],
                )
            })
            .await;
        model.push(created);
    }
    for i in [4usize, 11, 19] {
        let d = api.try_delete(&model[i].id, "").await.expect("delete");
        model[i] = d;
    }
    // Newest first.
    let newest_first: Vec<ActionItem> = model.iter().rev().cloned().collect();

    let a = incidents[0].id.clone();
    let b = incidents[1].id.clone();
    let c = incidents[2].id.clone();
    let as_of = Some(ts("2030-01-15T00:00:00Z"));
    let open = ActionItemStatus::Open as i32;
    let in_progress = ActionItemStatus::InProgress as i32;
    let done = ActionItemStatus::Done as i32;
    let wont_do = ActionItemStatus::WontDo as i32;
    let base = ListActionItemsRequest::default;
    let cases: Vec<(&str, ListActionItemsRequest)> = vec![
        ("no filter", base()),
        (
            "incident",
            ListActionItemsRequest {
                incident_id: b.clone(),
                ..base()
            },
        ),
        (
            "one status",
            ListActionItemsRequest {
                statuses: vec![open],
                ..base()
            },
        ),
        (
            "two statuses",
            ListActionItemsRequest {
                statuses: vec![done, open],
                ..base()
            },
        ),
        (
            "owner",
            ListActionItemsRequest {
                owner: "alice".into(),
                ..base()
            },
        ),
        (
            "label key",
            ListActionItemsRequest {
                label: "area".into(),
                ..base()
            },
        ),
        (
            "label key=value",
            ListActionItemsRequest {
                label: "area=tech".into(),
                ..base()
            },
        ),
        (
            "other label",
            ListActionItemsRequest {
                label: "customer=iadvize".into(),
                ..base()
            },
        ),
        (
            "overdue now",
            ListActionItemsRequest {
                overdue: true,
                ..base()
            },
        ),
        (
            "overdue as of",
            ListActionItemsRequest {
                overdue: true,
                as_of_time: as_of,
                ..base()
            },
        ),
        (
            "show deleted",
            ListActionItemsRequest {
                show_deleted: true,
                ..base()
            },
        ),
        (
            "incident + statuses + owner",
            ListActionItemsRequest {
                incident_id: a.clone(),
                statuses: vec![open, in_progress],
                owner: "bob".into(),
                ..base()
            },
        ),
        (
            "incident + label + deleted",
            ListActionItemsRequest {
                incident_id: a.clone(),
                label: "area=tech".into(),
                show_deleted: true,
                ..base()
            },
        ),
        (
            "label + closed statuses + deleted",
            ListActionItemsRequest {
                label: "area".into(),
                statuses: vec![done, wont_do],
                show_deleted: true,
                ..base()
            },
        ),
        (
            "overdue + owner + status",
            ListActionItemsRequest {
                overdue: true,
                as_of_time: as_of,
                owner: "carol".into(),
                statuses: vec![open, in_progress, done],
                ..base()
            },
        ),
        (
            "incident + overdue + deleted",
            ListActionItemsRequest {
                incident_id: c.clone(),
                overdue: true,
                as_of_time: as_of,
                show_deleted: true,
                ..base()
            },
        ),
        (
            "every filter",
            ListActionItemsRequest {
                incident_id: b.clone(),
                statuses: vec![open, in_progress],
                owner: "alice".into(),
                label: "area".into(),
                overdue: true,
                as_of_time: as_of,
                show_deleted: true,
                ..base()
            },
        ),
    ];
    let mut failures = Vec::new();
    for (name, req) in cases {
        let want: Vec<String> = newest_first
            .iter()
            .filter(|a| matches(a, &req))
            .map(|a| a.id.clone())
            .collect();
        assert!(
            !want.is_empty(),
            "case {name:?} selects nothing: fix the data set"
        );
        for size in [1, 2, 3, 0] {
            let pages = api
                .list_pages(ListActionItemsRequest {
                    page_size: size,
                    ..req.clone()
                })
                .await;
            let got: Vec<String> = pages.iter().flatten().map(|a| a.id.clone()).collect();
            let unique: HashSet<&String> = got.iter().collect();
            if unique.len() != got.len() {
                failures.push(format!("{name} (page_size {size}): an item repeated"));
            }
            if got != want {
                failures.push(format!(
                    "{name} (page_size {size}): want {} items {want:?}, got {} {got:?}",
                    want.len(),
                    got.len()
                ));
            }
            if size > 0 {
                let want_pages = want.len().div_ceil(size as usize).max(1);
                if pages.len() != want_pages && pages.len() != want_pages + 1 {
                    failures.push(format!(
                        "{name} (page_size {size}): {} pages for {} items",
                        pages.len(),
                        want.len()
                    ));
                }
            }
            // The items listed are the items as they are.
            for got in pages.iter().flatten() {
                let m = model.iter().find(|m| m.id == got.id).expect("known item");
                if m != got {
                    failures.push(format!("{name}: {} differs from Get", got.id));
                }
            }
        }
    }
    finish(failures);
}

#[tokio::test]
async fn a_page_token_is_bound_to_its_filters() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Paging").await;
    for i in 0..4 {
        api.create(ActionItem {
            owner: "alice".into(),
            ..item(&inc.id, &format!("item {i}"), ActionItemStatus::Open)
        })
        .await;
    }
    let first = api
        .ai
        .list_action_items(ListActionItemsRequest {
            page_size: 2,
            owner: "alice".into(),
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    assert_eq!(first.action_items.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let err = api
        .ai
        .list_action_items(ListActionItemsRequest {
            page_size: 2,
            owner: "bob".into(),
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect_err("filters changed between pages");
    assert_error(&err, Code::InvalidArgument, "PAGE_TOKEN_INVALID", None);

    // Keyset pages: writes between pages neither skip nor repeat an item.
    let all = api.list_all(ListActionItemsRequest::default()).await;
    assert_eq!(all.len(), 4);
    let first = api
        .ai
        .list_action_items(ListActionItemsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    assert_eq!(ids(&first.action_items), ids(&all[..2]));
    // A newer item and the deletion of a listed one do not shift the rest.
    api.create(item(&inc.id, "newer", ActionItemStatus::Open))
        .await;
    api.try_delete(&all[0].id, "")
        .await
        .expect("delete a listed item");
    let rest = api
        .ai
        .list_action_items(ListActionItemsRequest {
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .expect("second page")
        .into_inner();
    assert_eq!(ids(&rest.action_items), ids(&all[2..]));
}

#[tokio::test]
async fn overdue_at_the_boundary() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Overdue").await;
    let due = nanos(&Some(ts("2031-06-01T12:00:00.5Z")));
    let mk = |title: &str, status: ActionItemStatus, due_at: i128| ActionItem {
        due_time: Some(from_nanos(due_at)),
        ..item(&inc.id, title, status)
    };
    let exactly = api
        .create(mk("due exactly then", ActionItemStatus::Open, due))
        .await;
    let later = api
        .create(mk("due 1 ns later", ActionItemStatus::Open, due + 1))
        .await;
    let earlier = api
        .create(mk(
            "due 1 ns earlier",
            ActionItemStatus::InProgress,
            due - 1,
        ))
        .await;
    let done = api
        .create(mk(
            "done, long due",
            ActionItemStatus::Done,
            due - 86_400_000_000_000,
        ))
        .await;
    let wont = api
        .create(mk(
            "won't do, long due",
            ActionItemStatus::WontDo,
            due - 86_400_000_000_000,
        ))
        .await;
    let undated = api
        .create(item(&inc.id, "no due time", ActionItemStatus::Open))
        .await;
    assert_eq!(
        nanos(&exactly.due_time),
        due,
        "due_time keeps its nanoseconds"
    );

    let overdue_at = |at: i128| ListActionItemsRequest {
        overdue: true,
        as_of_time: Some(from_nanos(at)),
        ..Default::default()
    };
    let at_due = api.list_all(overdue_at(due)).await;
    assert_eq!(ids(&at_due), vec![earlier.id.clone(), exactly.id.clone()]);
    let before_due = api.list_all(overdue_at(due - 1)).await;
    assert_eq!(ids(&before_due), vec![earlier.id.clone()]);
    let just_after = api.list_all(overdue_at(due + 1)).await;
    assert_eq!(
        ids(&just_after),
        vec![earlier.id.clone(), later.id.clone(), exactly.id.clone()]
    );
    // Far later still: DONE, WONT_DO and undated items are never overdue.
    let far = api.list_all(overdue_at(due + 1_000_000_000_000_000)).await;
    let far_ids: HashSet<String> = ids(&far).into_iter().collect();
    for never in [&done, &wont, &undated] {
        assert!(
            !far_ids.contains(&never.id),
            "{} is not overdue",
            never.title
        );
    }
    // Without as_of_time it is judged now: none of these is due yet.
    assert!(
        api.list_all(ListActionItemsRequest {
            overdue: true,
            ..Default::default()
        })
        .await
        .is_empty()
    );

    // Closing an overdue item takes it out; reopening it brings it back.
    api.set_status(&exactly.id, ActionItemStatus::Done).await;
    assert_eq!(
        ids(&api.list_all(overdue_at(due)).await),
        vec![earlier.id.clone()]
    );
    api.set_status(&exactly.id, ActionItemStatus::InProgress)
        .await;
    assert_eq!(
        ids(&api.list_all(overdue_at(due)).await),
        vec![earlier.id.clone(), exactly.id.clone()]
    );
}

// ---------------------------------------------------------------- complete_time

#[tokio::test]
async fn complete_time_is_set_on_closing_and_cleared_on_reopening() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Completion").await;

    // Created closed: the time given, or the server's now.
    let given = ts("2024-02-26T09:00:00.123456789Z");
    let wont = api
        .create(ActionItem {
            complete_time: Some(given),
            ..item(&inc.id, "won't do, given time", ActionItemStatus::WontDo)
        })
        .await;
    assert_eq!(wont.complete_time, Some(given));
    let before = now_nanos();
    let done = api
        .create(item(&inc.id, "done now", ActionItemStatus::Done))
        .await;
    let after = now_nanos();
    let ct = nanos(&done.complete_time);
    assert!(
        ct >= before - 1_000_000_000 && ct <= after + 1_000_000_000,
        "complete_time is now"
    );

    // OPEN → DONE: now. DONE → WONT_DO stays closed: kept. → OPEN: cleared.
    let it = api
        .create(item(&inc.id, "moves around", ActionItemStatus::Open))
        .await;
    assert!(it.complete_time.is_none());
    let before = now_nanos();
    let closed = api.set_status(&it.id, ActionItemStatus::Done).await;
    let after = now_nanos();
    let ct = nanos(&closed.complete_time);
    assert!(ct >= before - 1_000_000_000 && ct <= after + 1_000_000_000);
    let still = api.set_status(&it.id, ActionItemStatus::WontDo).await;
    assert_eq!(still.complete_time, closed.complete_time);
    let reopened = api.set_status(&it.id, ActionItemStatus::Open).await;
    assert!(
        reopened.complete_time.is_none(),
        "cleared on leaving DONE/WONT_DO"
    );
    assert!(api.get_item(&it.id).await.complete_time.is_none());

    // Closed again with a given time, then back in progress.
    let at = ts("2024-03-01T10:00:00Z");
    let closed = api
        .try_update(
            ActionItem {
                id: it.id.clone(),
                status: ActionItemStatus::Done as i32,
                complete_time: Some(at),
                ..Default::default()
            },
            &["status", "complete_time"],
        )
        .await
        .expect("close with a time");
    assert_eq!(closed.complete_time, Some(at));
    // An empty mask means every field set: the same, on another item.
    let other = api
        .create(item(&inc.id, "empty mask", ActionItemStatus::Open))
        .await;
    let other = api
        .try_update(
            ActionItem {
                id: other.id.clone(),
                status: ActionItemStatus::WontDo as i32,
                complete_time: Some(at),
                ..Default::default()
            },
            &[],
        )
        .await
        .expect("close with an empty mask");
    assert_eq!(other.complete_time, Some(at));
    // Correcting complete_time on a closed item.
    let fixed = ts("2024-03-02T10:00:00Z");
    let corrected = api
        .try_update(
            ActionItem {
                id: it.id.clone(),
                complete_time: Some(fixed),
                ..Default::default()
            },
            &["complete_time"],
        )
        .await
        .expect("correct complete_time");
    assert_eq!(corrected.complete_time, Some(fixed));
    assert_eq!(corrected.status, ActionItemStatus::Done as i32);
    let back = api.set_status(&it.id, ActionItemStatus::InProgress).await;
    assert!(back.complete_time.is_none());
    assert_eq!(api.get_item(&it.id).await, back);
}

#[tokio::test]
async fn complete_time_on_an_open_item_is_refused() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Completion refused").await;
    let open = api
        .create(item(&inc.id, "open", ActionItemStatus::Open))
        .await;
    let at = Some(ts("2024-03-01T10:00:00Z"));
    let mut failures = Vec::new();
    for (name, status) in [
        ("create OPEN", ActionItemStatus::Open),
        ("create IN_PROGRESS", ActionItemStatus::InProgress),
    ] {
        let req = CreateActionItemRequest {
            action_item: Some(ActionItem {
                complete_time: at,
                ..item(&inc.id, name, status)
            }),
            request_id: rid(),
        };
        refused(
            &srv,
            name,
            api.ai.create_action_item(req),
            Code::InvalidArgument,
            "FIELD_INVALID",
            Some("action_item.complete_time"),
            &mut failures,
        )
        .await;
    }
    for (name, status, paths) in [
        (
            "update complete_time alone on OPEN",
            ActionItemStatus::Unspecified,
            vec!["complete_time"],
        ),
        (
            "update to IN_PROGRESS with complete_time",
            ActionItemStatus::InProgress,
            vec!["status", "complete_time"],
        ),
    ] {
        let req = UpdateActionItemRequest {
            action_item: Some(ActionItem {
                id: open.id.clone(),
                status: status as i32,
                complete_time: at,
                ..Default::default()
            }),
            update_mask: mask(&paths),
            request_id: rid(),
        };
        refused(
            &srv,
            name,
            api.ai.update_action_item(req),
            Code::InvalidArgument,
            "FIELD_INVALID",
            Some("action_item.complete_time"),
            &mut failures,
        )
        .await;
    }
    finish(failures);
    assert_eq!(api.get_item(&open.id).await, open);
}

// ---------------------------------------------------------------- etags

#[tokio::test]
async fn stale_etags_are_aborted() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Etags").await;
    let v1 = api
        .create(item(&inc.id, "etag", ActionItemStatus::Open))
        .await;
    let v2 = api
        .try_update(
            ActionItem {
                id: v1.id.clone(),
                owner: "alice".into(),
                etag: v1.etag.clone(),
                ..Default::default()
            },
            &["owner"],
        )
        .await
        .expect("update with the current etag");
    assert_ne!(v2.etag, v1.etag);

    let mut failures = Vec::new();
    let req = UpdateActionItemRequest {
        action_item: Some(ActionItem {
            id: v1.id.clone(),
            owner: "bob".into(),
            etag: v1.etag.clone(),
            ..Default::default()
        }),
        update_mask: mask(&["owner"]),
        request_id: String::new(),
    };
    refused(
        &srv,
        "UpdateActionItem stale",
        api.ai.update_action_item(req),
        Code::Aborted,
        "ETAG_MISMATCH",
        None,
        &mut failures,
    )
    .await;
    let req = DeleteActionItemRequest {
        id: v1.id.clone(),
        etag: v1.etag.clone(),
        request_id: String::new(),
    };
    refused(
        &srv,
        "DeleteActionItem stale",
        api.ai.delete_action_item(req),
        Code::Aborted,
        "ETAG_MISMATCH",
        None,
        &mut failures,
    )
    .await;
    let err = api.try_delete(&v1.id, &v1.etag).await.expect_err("stale");
    assert_eq!(details(&err).metadata.get("action_item_id"), Some(&v1.id));
    let gone = api
        .try_delete(&v2.id, &v2.etag)
        .await
        .expect("delete with the current etag");
    assert!(gone.delete_time.is_some());

    // The postmortem has an etag of its own.
    let p0 = api.get_pm(&inc.id).await;
    let p1 = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                body: "draft 1".into(),
                etag: p0.etag.clone(),
                ..Default::default()
            },
            &["body"],
        )
        .await
        .expect("update with the current etag");
    assert_ne!(p1.etag, p0.etag);
    let req = UpdatePostmortemRequest {
        postmortem: Some(Postmortem {
            incident_id: inc.id.clone(),
            body: "draft 2".into(),
            etag: p0.etag.clone(),
            ..Default::default()
        }),
        update_mask: mask(&["body"]),
        request_id: String::new(),
    };
    refused(
        &srv,
        "UpdatePostmortem stale",
        api.inc.update_postmortem(req),
        Code::Aborted,
        "ETAG_MISMATCH",
        None,
        &mut failures,
    )
    .await;
    let req = PublishPostmortemRequest {
        incident_id: inc.id.clone(),
        etag: p0.etag.clone(),
        ..Default::default()
    };
    refused(
        &srv,
        "PublishPostmortem stale",
        api.inc.publish_postmortem(req),
        Code::Aborted,
        "ETAG_MISMATCH",
        None,
        &mut failures,
    )
    .await;
    finish(failures);
    assert!(api.get_pm(&inc.id).await.publish_time.is_none());
    let published = api
        .try_publish(&inc.id, &p1.etag, None)
        .await
        .expect("publish with the current etag");
    assert!(published.publish_time.is_some());
}

#[tokio::test]
async fn postmortem_etag_ignores_incident_writes() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.declare("Independent etags").await;
    let pm = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                body: "Draft written while the incident is open".into(),
                ..Default::default()
            },
            &[],
        )
        .await
        .expect("draft");

    // Status updates, an incident edit, a note and an action item.
    let moved = api.post(&inc.id, IncidentStatus::Identified).await;
    assert_ne!(moved.etag, inc.etag);
    api.inc
        .post_status_update(PostStatusUpdateRequest {
            incident_id: inc.id.clone(),
            message: "Still working on it".into(),
            ..Default::default()
        })
        .await
        .expect("post an Update");
    api.inc
        .update_incident(UpdateIncidentRequest {
            incident: Some(Incident {
                id: inc.id.clone(),
                title: "Independent etags (renamed)".into(),
                ..Default::default()
            }),
            update_mask: mask(&["title"]),
            request_id: String::new(),
        })
        .await
        .expect("rename");
    api.tl
        .add_note(AddNoteRequest {
            incident_id: inc.id.clone(),
            text: "a note".into(),
            ..Default::default()
        })
        .await
        .expect("note");
    api.create(item(&inc.id, "follow-up", ActionItemStatus::Open))
        .await;
    let resolved = api.post(&inc.id, IncidentStatus::Resolved).await;

    let same = api.get_pm(&inc.id).await;
    assert_eq!(
        same.etag, pm.etag,
        "incident writes do not touch the postmortem etag"
    );
    assert_eq!(same, pm);
    let edited = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                body: "Final draft".into(),
                etag: pm.etag.clone(),
                ..Default::default()
            },
            &["body"],
        )
        .await
        .expect("the etag read before the status updates still matches");
    // And a postmortem edit does not touch the incident's etag.
    assert_eq!(api.get_incident(&inc.id).await.etag, resolved.etag);
    api.try_publish(&inc.id, &edited.etag, None)
        .await
        .expect("publish");
}

// ---------------------------------------------------------------- request_id

#[tokio::test]
async fn request_id_retry_returns_the_first_response_and_writes_nothing() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Retries").await;
    let mut failures = Vec::new();

    // CreateActionItem.
    let id = rid();
    let create = CreateActionItemRequest {
        action_item: Some(ActionItem {
            owner: "alice".into(),
            due_time: Some(ts("2030-01-01T00:00:00Z")),
            ..item(&inc.id, "retried create", ActionItemStatus::Open)
        }),
        request_id: id.clone(),
    };
    let first = api
        .ai
        .create_action_item(create.clone())
        .await
        .expect("create")
        .into_inner();
    let state = srv.db_state().await;
    let retry = api
        .ai
        .create_action_item(create.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, first, "CreateActionItem retry");
    assert_eq!(srv.db_state().await, state, "CreateActionItem retry wrote");
    let mut other = create.clone();
    other.action_item.as_mut().expect("item").title = "another title".into();
    refused(
        &srv,
        "CreateActionItem reused",
        api.ai.create_action_item(other),
        Code::FailedPrecondition,
        "REQUEST_ID_REUSED",
        None,
        &mut failures,
    )
    .await;
    let created = first.action_item.expect("item");
    assert_eq!(api.counts(&inc.id).await, (1, 1));

    // UpdateActionItem.
    let update = UpdateActionItemRequest {
        action_item: Some(ActionItem {
            id: created.id.clone(),
            status: ActionItemStatus::Done as i32,
            etag: created.etag.clone(),
            ..Default::default()
        }),
        update_mask: mask(&["status"]),
        request_id: rid(),
    };
    let first = api
        .ai
        .update_action_item(update.clone())
        .await
        .expect("update")
        .into_inner();
    let state = srv.db_state().await;
    // The etag sent is stale now: a retry must still answer the first response.
    let retry = api
        .ai
        .update_action_item(update.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, first, "UpdateActionItem retry");
    assert_eq!(srv.db_state().await, state, "UpdateActionItem retry wrote");
    let mut other = update.clone();
    other.action_item.as_mut().expect("item").status = ActionItemStatus::WontDo as i32;
    refused(
        &srv,
        "UpdateActionItem reused",
        api.ai.update_action_item(other),
        Code::FailedPrecondition,
        "REQUEST_ID_REUSED",
        None,
        &mut failures,
    )
    .await;
    let updated = first.action_item.expect("item");

    // DeleteActionItem: a retry is not NOT_FOUND.
    let delete = DeleteActionItemRequest {
        id: updated.id.clone(),
        etag: updated.etag.clone(),
        request_id: rid(),
    };
    let first = api
        .ai
        .delete_action_item(delete.clone())
        .await
        .expect("delete")
        .into_inner();
    let state = srv.db_state().await;
    let retry = api
        .ai
        .delete_action_item(delete.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, first, "DeleteActionItem retry");
    assert_eq!(srv.db_state().await, state, "DeleteActionItem retry wrote");

    // UpdatePostmortem.
    let write = UpdatePostmortemRequest {
        postmortem: Some(Postmortem {
            incident_id: inc.id.clone(),
            body: "body".into(),
            sections: vec![
                section("Root Cause", "CPU"),
                section("Impact", "all channels"),
            ],
            author: "ops".into(),
            ..Default::default()
        }),
        update_mask: None,
        request_id: rid(),
    };
    let first = api
        .inc
        .update_postmortem(write.clone())
        .await
        .expect("write")
        .into_inner();
    let state = srv.db_state().await;
    let retry = api
        .inc
        .update_postmortem(write.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, first, "UpdatePostmortem retry");
    assert_eq!(srv.db_state().await, state, "UpdatePostmortem retry wrote");
    let mut other = write.clone();
    other.postmortem.as_mut().expect("pm").sections.reverse();
    refused(
        &srv,
        "UpdatePostmortem reused",
        api.inc.update_postmortem(other),
        Code::FailedPrecondition,
        "REQUEST_ID_REUSED",
        None,
        &mut failures,
    )
    .await;

    // PublishPostmortem: a retry is not ALREADY_PUBLISHED.
    let publish = PublishPostmortemRequest {
        incident_id: inc.id.clone(),
        etag: first.postmortem.expect("pm").etag,
        request_id: rid(),
        occur_time: Some(ts("2024-02-26T09:05:00Z")),
    };
    let first = api
        .inc
        .publish_postmortem(publish.clone())
        .await
        .expect("publish")
        .into_inner();
    let state = srv.db_state().await;
    let retry = api
        .inc
        .publish_postmortem(publish.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, first, "PublishPostmortem retry");
    assert_eq!(srv.db_state().await, state, "PublishPostmortem retry wrote");
    let mut other = publish.clone();
    other.occur_time = Some(ts("2024-02-27T09:05:00Z"));
    refused(
        &srv,
        "PublishPostmortem reused",
        api.inc.publish_postmortem(other),
        Code::FailedPrecondition,
        "REQUEST_ID_REUSED",
        None,
        &mut failures,
    )
    .await;

    // The same request_id on another method is another key.
    let create_again = CreateActionItemRequest {
        action_item: Some(item(
            &inc.id,
            "same id, other method",
            ActionItemStatus::Open,
        )),
        request_id: publish.request_id.clone(),
    };
    api.ai
        .create_action_item(create_again)
        .await
        .expect("request ids are per method");
    finish(failures);
}

// ---------------------------------------------------------------- refusals

#[tokio::test]
async fn publishing_an_open_incidents_postmortem_is_refused_and_changes_nothing() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.declare("Still open").await;
    let pm = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                body: "early draft".into(),
                ..Default::default()
            },
            &[],
        )
        .await
        .expect("draft on an open incident");
    for status in [IncidentStatus::Investigating, IncidentStatus::Monitoring] {
        api.post(&inc.id, status).await;
        let before = srv.db_state().await;
        let err = api
            .try_publish(&inc.id, &pm.etag, None)
            .await
            .expect_err("open incident");
        assert_eq!(srv.db_state().await, before, "nothing changed");
        assert_error(&err, Code::FailedPrecondition, "INCIDENT_OPEN", None);
        let d = details(&err);
        assert_eq!(
            d.preconditions,
            vec![("INCIDENT_OPEN".to_owned(), format!("incidents/{}", inc.id))]
        );
        assert_eq!(d.metadata.get("incident_id"), Some(&inc.id));
    }
    assert!(api.get_pm(&inc.id).await.publish_time.is_none());
    assert!(
        api.get_incident(&inc.id)
            .await
            .postmortem_publish_time
            .is_none()
    );
    // Reopened after resolution: refused again.
    api.post(&inc.id, IncidentStatus::Resolved).await;
    api.post(&inc.id, IncidentStatus::Investigating).await;
    let err = api
        .try_publish(&inc.id, "", None)
        .await
        .expect_err("reopened");
    assert_error(&err, Code::FailedPrecondition, "INCIDENT_OPEN", None);
}

#[tokio::test]
async fn publishing_twice_is_refused() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Published once").await;
    let at = ts("2024-02-26T09:05:00Z");
    let first = api
        .try_publish(&inc.id, "", Some(at))
        .await
        .expect("publish");
    let before = srv.db_state().await;
    let err = api.try_publish(&inc.id, "", None).await.expect_err("twice");
    assert_eq!(srv.db_state().await, before);
    assert_error(&err, Code::FailedPrecondition, "ALREADY_PUBLISHED", None);
    assert!(
        !details(&err).preconditions.is_empty(),
        "carries a PreconditionFailure"
    );
    let err = api
        .try_publish(&inc.id, &first.etag, None)
        .await
        .expect_err("twice, current etag");
    assert_error(&err, Code::FailedPrecondition, "ALREADY_PUBLISHED", None);
    assert_eq!(api.get_pm(&inc.id).await.publish_time, Some(at));
    assert_eq!(
        api.get_incident(&inc.id).await.postmortem_publish_time,
        Some(at)
    );
}

#[tokio::test]
async fn an_item_on_a_deleted_incident_is_refused() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Deleted").await;
    api.inc
        .delete_incident(DeleteIncidentRequest {
            id: inc.id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete incident");
    let before = srv.db_state().await;
    let err = api
        .try_create(item(&inc.id, "too late", ActionItemStatus::Open))
        .await
        .expect_err("deleted incident");
    assert_eq!(srv.db_state().await, before);
    assert_error(&err, Code::FailedPrecondition, "INCIDENT_DELETED", None);
    let d = details(&err);
    assert_eq!(
        d.preconditions,
        vec![(
            "INCIDENT_DELETED".to_owned(),
            format!("incidents/{}", inc.id)
        )]
    );
    assert_eq!(d.metadata.get("incident_id"), Some(&inc.id));
    // An unknown incident is NOT_FOUND.
    let err = api
        .try_create(item(&rid(), "nowhere", ActionItemStatus::Open))
        .await
        .expect_err("unknown incident");
    assert_error(&err, Code::NotFound, "NOT_FOUND", None);
}

#[tokio::test]
async fn resolving_an_incident_does_not_close_its_items() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.declare("Items outlive the incident").await;
    let open = api
        .create(item(&inc.id, "open", ActionItemStatus::Open))
        .await;
    let busy = api
        .create(item(&inc.id, "in progress", ActionItemStatus::InProgress))
        .await;
    let done = api
        .create(item(&inc.id, "done", ActionItemStatus::Done))
        .await;
    assert_eq!(api.counts(&inc.id).await, (3, 2));
    let resolved = api.post(&inc.id, IncidentStatus::Resolved).await;
    assert_eq!(resolved.status, IncidentStatus::Resolved as i32);
    assert_eq!(
        (resolved.action_item_count, resolved.open_action_item_count),
        (3, 2),
        "the status update's incident carries the counts"
    );
    assert_eq!(api.counts(&inc.id).await, (3, 2));
    for it in [&open, &busy, &done] {
        assert_eq!(&api.get_item(&it.id).await, it, "{} unchanged", it.title);
    }
    let updated = api
        .events(&inc.id, &[TimelineEventKind::ActionItemUpdated])
        .await;
    assert!(updated.is_empty(), "no item was touched: {updated:?}");
}

// ---------------------------------------------------------------- bad input

#[tokio::test]
async fn every_bad_input_is_rejected_with_the_field_named_and_nothing_written() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Bad input").await;
    let it = api
        .create(item(&inc.id, "target", ActionItemStatus::Open))
        .await;
    let mut failures = Vec::new();
    let invalid = Code::InvalidArgument;

    let good = || item(&inc.id, "fine", ActionItemStatus::Open);
    let too_many: BTreeMap<String, String> =
        (0..65).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    let create_cases: Vec<(&str, ActionItem, &str)> = vec![
        (
            "empty title",
            ActionItem {
                title: String::new(),
                ..good()
            },
            "action_item.title",
        ),
        (
            "blank title",
            ActionItem {
                title: "   ".into(),
                ..good()
            },
            "action_item.title",
        ),
        (
            "201-char title",
            ActionItem {
                title: "x".repeat(201),
                ..good()
            },
            "action_item.title",
        ),
        (
            "unknown status",
            ActionItem {
                status: 99,
                ..good()
            },
            "action_item.status",
        ),
        (
            "unknown priority",
            ActionItem {
                priority: 99,
                ..good()
            },
            "action_item.priority",
        ),
        (
            "257-char owner",
            ActionItem {
                owner: "o".repeat(257),
                ..good()
            },
            "action_item.owner",
        ),
        (
            "due_time nanos 1e9",
            ActionItem {
                due_time: Some(Timestamp {
                    seconds: 1_900_000_000,
                    nanos: 1_000_000_000,
                }),
                ..good()
            },
            "action_item.due_time",
        ),
        (
            "due_time nanos -1",
            ActionItem {
                due_time: Some(Timestamp {
                    seconds: 1_900_000_000,
                    nanos: -1,
                }),
                ..good()
            },
            "action_item.due_time",
        ),
        (
            "bad incident_id",
            ActionItem {
                incident_id: "INC-1x".into(),
                ..good()
            },
            "action_item.incident_id",
        ),
        (
            "empty incident_id",
            ActionItem {
                incident_id: String::new(),
                ..good()
            },
            "action_item.incident_id",
        ),
        (
            "65 labels",
            ActionItem {
                labels: too_many.clone(),
                ..good()
            },
            "action_item.labels",
        ),
        (
            "description over 16 KiB",
            ActionItem {
                description: "d".repeat(16 * 1024 + 1),
                ..good()
            },
            "action_item.description",
        ),
    ];
    for (name, a, field) in create_cases {
        let req = CreateActionItemRequest {
            action_item: Some(a),
            request_id: rid(),
        };
        refused(
            &srv,
            &format!("create: {name}"),
            api.ai.create_action_item(req),
            invalid,
            "FIELD_INVALID",
            Some(field),
            &mut failures,
        )
        .await;
    }
    // Every bad field at once.
    let req = CreateActionItemRequest {
        action_item: Some(ActionItem {
            title: String::new(),
            status: 99,
            owner: "o".repeat(257),
            ..good()
        }),
        request_id: String::new(),
    };
    let before = srv.db_state().await;
    let err = api
        .ai
        .create_action_item(req)
        .await
        .expect_err("three bad fields");
    assert_eq!(srv.db_state().await, before);
    let bad = details(&err).bad_fields;
    for f in [
        "action_item.title",
        "action_item.status",
        "action_item.owner",
    ] {
        if !bad.iter().any(|b| b == f) {
            failures.push(format!("create: all at once: {f} not named in {bad:?}"));
        }
    }
    // Values at the limits are accepted.
    let at_limits = api
        .try_create(ActionItem {
            title: "x".repeat(200),
            owner: "o".repeat(256),
            labels: (0..64).map(|i| (format!("k{i}"), "v".to_owned())).collect(),
            due_time: Some(Timestamp {
                seconds: 1_900_000_000,
                nanos: 999_999_999,
            }),
            ..good()
        })
        .await;
    if let Err(e) = at_limits {
        failures.push(format!("create at the limits refused: {e:?}"));
    }

    let upd = |f: fn(&mut ActionItem)| {
        let mut a = ActionItem {
            id: it.id.clone(),
            ..Default::default()
        };
        f(&mut a);
        a
    };
    let update_cases: Vec<(&str, ActionItem, Vec<&str>, &str)> = vec![
        (
            "empty title",
            upd(|a| a.title.clear()),
            vec!["title"],
            "action_item.title",
        ),
        (
            "201-char title",
            upd(|a| a.title = "x".repeat(201)),
            vec![],
            "action_item.title",
        ),
        (
            "unknown status",
            upd(|a| a.status = 99),
            vec![],
            "action_item.status",
        ),
        (
            "unset status in the mask",
            upd(|_| {}),
            vec!["status"],
            "action_item.status",
        ),
        (
            "257-char owner",
            upd(|a| a.owner = "o".repeat(257)),
            vec!["owner"],
            "action_item.owner",
        ),
        (
            "due_time nanos",
            upd(|a| {
                a.due_time = Some(Timestamp {
                    seconds: 1_900_000_000,
                    nanos: 1_000_000_000,
                })
            }),
            vec!["due_time"],
            "action_item.due_time",
        ),
        (
            "unknown mask path",
            upd(|a| a.title = "t".into()),
            vec!["title", "bogus"],
            "update_mask",
        ),
        (
            "65 labels",
            upd(|a| a.labels = (0..65).map(|i| (format!("k{i}"), "v".to_owned())).collect()),
            vec!["labels"],
            "action_item.labels",
        ),
        (
            "bad id",
            ActionItem {
                id: "nope".into(),
                title: "t".into(),
                ..Default::default()
            },
            vec!["title"],
            "action_item.id",
        ),
    ];
    for (name, a, paths, field) in update_cases {
        let req = UpdateActionItemRequest {
            action_item: Some(a),
            update_mask: mask(&paths),
            request_id: rid(),
        };
        refused(
            &srv,
            &format!("update: {name}"),
            api.ai.update_action_item(req),
            invalid,
            "FIELD_INVALID",
            Some(field),
            &mut failures,
        )
        .await;
    }
    let req = DeleteActionItemRequest {
        id: "nope".into(),
        ..Default::default()
    };
    refused(
        &srv,
        "delete: bad id",
        api.ai.delete_action_item(req),
        invalid,
        "FIELD_INVALID",
        Some("id"),
        &mut failures,
    )
    .await;
    let req = DeleteActionItemRequest {
        id: rid(),
        ..Default::default()
    };
    refused(
        &srv,
        "delete: unknown id",
        api.ai.delete_action_item(req),
        Code::NotFound,
        "NOT_FOUND",
        None,
        &mut failures,
    )
    .await;
    let req = CreateActionItemRequest {
        action_item: Some(good()),
        request_id: "not-a-uuid".into(),
    };
    refused(
        &srv,
        "create: bad request_id",
        api.ai.create_action_item(req),
        invalid,
        "FIELD_INVALID",
        Some("request_id"),
        &mut failures,
    )
    .await;

    // Listing.
    let list_cases: Vec<(&str, ListActionItemsRequest, &str)> = vec![
        (
            "unknown status",
            ListActionItemsRequest {
                statuses: vec![99],
                ..Default::default()
            },
            "statuses[0]",
        ),
        (
            "bad label",
            ListActionItemsRequest {
                label: "bad key!".into(),
                ..Default::default()
            },
            "label",
        ),
        (
            "bad incident_id",
            ListActionItemsRequest {
                incident_id: "INC-1x".into(),
                ..Default::default()
            },
            "incident_id",
        ),
        (
            "negative page_size",
            ListActionItemsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            "as_of_time nanos",
            ListActionItemsRequest {
                overdue: true,
                as_of_time: Some(Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
                ..Default::default()
            },
            "as_of_time",
        ),
    ];
    for (name, req, field) in list_cases {
        let err = api.ai.list_action_items(req).await.expect_err(name);
        let d = details(&err);
        if d.code != invalid || !d.bad_fields.iter().any(|f| f == field) {
            failures.push(format!(
                "list: {name}: want {field} named, got {:?} {:?}",
                d.code, d.bad_fields
            ));
        }
    }

    // The postmortem.
    let pm = |f: fn(&mut Postmortem)| {
        let mut p = Postmortem {
            incident_id: inc.id.clone(),
            ..Default::default()
        };
        f(&mut p);
        p
    };
    let pm_cases: Vec<(&str, Postmortem, Vec<&str>, &str)> = vec![
        (
            "body over 256 KiB",
            pm(|p| p.body = "b".repeat(256 * 1024 + 1)),
            vec![],
            "postmortem.body",
        ),
        (
            "body and sections over 256 KiB together",
            pm(|p| {
                p.body = "b".repeat(200 * 1024);
                p.sections = vec![section("Timeline", &"t".repeat(57 * 1024))];
            }),
            vec![],
            "postmortem",
        ),
        (
            "section with an empty title",
            pm(|p| p.sections = vec![section("Impact", "x"), section("", "body")]),
            vec![],
            "postmortem.sections[1].title",
        ),
        (
            "section with a 201-char title",
            pm(|p| p.sections = vec![section(&"s".repeat(201), "x")]),
            vec![],
            "postmortem.sections[0].title",
        ),
        (
            "unknown mask path",
            pm(|p| p.body = "x".into()),
            vec!["body", "conclusion"],
            "update_mask",
        ),
        (
            "bad incident_id",
            Postmortem {
                incident_id: "INC-1x".into(),
                body: "x".into(),
                ..Default::default()
            },
            vec![],
            "postmortem.incident_id",
        ),
        (
            "257-char author",
            pm(|p| p.author = "a".repeat(257)),
            vec![],
            "postmortem.author",
        ),
    ];
    for (name, p, paths, field) in pm_cases {
        let req = UpdatePostmortemRequest {
            postmortem: Some(p),
            update_mask: if paths.is_empty() { None } else { mask(&paths) },
            request_id: rid(),
        };
        refused(
            &srv,
            &format!("postmortem: {name}"),
            api.inc.update_postmortem(req),
            invalid,
            "FIELD_INVALID",
            Some(field),
            &mut failures,
        )
        .await;
    }
    // A postmortem of exactly 256 KiB is accepted.
    let full = api
        .try_update_pm(pm(|p| p.body = "b".repeat(256 * 1024)), &[])
        .await;
    if let Err(e) = full {
        failures.push(format!(
            "postmortem of exactly 256 KiB refused: {}",
            e.message()
        ));
    }
    let req = PublishPostmortemRequest {
        incident_id: inc.id.clone(),
        occur_time: Some(Timestamp {
            seconds: chrono::Utc::now().timestamp() + 3600,
            nanos: 0,
        }),
        ..Default::default()
    };
    refused(
        &srv,
        "publish: occur_time in the future",
        api.inc.publish_postmortem(req),
        invalid,
        "FIELD_INVALID",
        Some("occur_time"),
        &mut failures,
    )
    .await;
    let req = PublishPostmortemRequest {
        incident_id: "nope".into(),
        ..Default::default()
    };
    refused(
        &srv,
        "publish: bad incident_id",
        api.inc.publish_postmortem(req),
        invalid,
        "FIELD_INVALID",
        Some("incident_id"),
        &mut failures,
    )
    .await;

    finish(failures);
    assert_eq!(api.get_item(&it.id).await, it);
    assert_eq!(api.counts(&inc.id).await.0, 2);
}

// ---------------------------------------------------------------- timeline

#[tokio::test]
async fn item_and_postmortem_writes_are_timeline_events_with_the_incident_snapshot() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Events").await;
    let kinds = [
        TimelineEventKind::ActionItemCreated,
        TimelineEventKind::ActionItemUpdated,
        TimelineEventKind::ActionItemDeleted,
        TimelineEventKind::PostmortemUpdated,
        TimelineEventKind::PostmortemPublished,
    ];
    let elsewhere = api.resolved("Other incident").await;
    api.create(item(&elsewhere.id, "elsewhere", ActionItemStatus::Open))
        .await;

    let created = api
        .create(item(&inc.id, "throttle", ActionItemStatus::Open))
        .await;
    let done = api.set_status(&created.id, ActionItemStatus::Done).await;
    let reopened = api
        .set_status(&created.id, ActionItemStatus::InProgress)
        .await;
    let renamed = api
        .try_update(
            ActionItem {
                id: created.id.clone(),
                title: "throttle migrations".into(),
                description: "a long text".into(),
                ..Default::default()
            },
            &["title", "description"],
        )
        .await
        .expect("rename");
    let deleted = api.try_delete(&created.id, "").await.expect("delete");
    let pm1 = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                body: "body".into(),
                sections: vec![
                    section("Incident", "a"),
                    section("Root Cause", "b"),
                    section("Conclusion", "c"),
                ],
                author: "ops".into(),
                ..Default::default()
            },
            &[],
        )
        .await
        .expect("draft");
    let pm2 = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                sections: vec![section("Root Cause", "b"), section("Incident", "a2")],
                ..Default::default()
            },
            &["sections"],
        )
        .await
        .expect("edit sections");
    let at = ts("2024-02-26T09:05:00Z");
    api.try_publish(&inc.id, &pm2.etag, Some(at))
        .await
        .expect("publish");
    assert_eq!(pm1.sections.len(), 3);

    let events = api.events(&inc.id, &kinds).await;
    let got: Vec<i32> = events.iter().map(|e| e.kind).collect();
    let want: Vec<i32> = [
        TimelineEventKind::ActionItemCreated,
        TimelineEventKind::ActionItemUpdated,
        TimelineEventKind::ActionItemUpdated,
        TimelineEventKind::ActionItemUpdated,
        TimelineEventKind::ActionItemDeleted,
        TimelineEventKind::PostmortemUpdated,
        TimelineEventKind::PostmortemUpdated,
        TimelineEventKind::PostmortemPublished,
    ]
    .iter()
    .map(|k| *k as i32)
    .collect();
    assert_eq!(
        got, want,
        "the incident's item and postmortem events, in order"
    );
    for w in events.windows(2) {
        assert!(w[0].sequence < w[1].sequence);
    }
    for e in &events {
        assert_eq!(e.incident_id, inc.id);
        let snap = e.incident.as_ref().expect("incident snapshot");
        assert_eq!(snap.id, inc.id);
        assert_eq!(snap.reference, inc.reference);
        assert_eq!(snap.title, inc.title);
        assert_eq!(snap.status, IncidentStatus::Resolved as i32);
        assert_eq!(snap.severity, Severity::P1 as i32);
        assert_eq!(snap.kind, IncidentKind::Incident as i32);
        assert_eq!(e.actor, "anonymous");
        assert!(e.event_time.is_some() && e.occur_time.is_some());
    }

    let change = |changes: &[FieldChange], path: &str| -> FieldChange {
        changes
            .iter()
            .find(|c| c.path == path)
            .cloned()
            .unwrap_or_else(|| panic!("no change of {path} in {changes:?}"))
    };
    match &events[0].payload {
        Some(Payload::ActionItemCreated(p)) => assert_eq!(p.action_item.as_ref(), Some(&created)),
        other => panic!("created payload: {other:?}"),
    }
    // OPEN → DONE: status and complete_time, with values.
    match &events[1].payload {
        Some(Payload::ActionItemUpdated(p)) => {
            assert_eq!(p.action_item.as_ref(), Some(&done));
            let paths: HashSet<&str> = p.changes.iter().map(|c| c.path.as_str()).collect();
            assert_eq!(paths, HashSet::from(["status", "complete_time"]));
            let s = change(&p.changes, "status");
            assert!(
                string_value(&s.old_value).is_some_and(|v| v.ends_with("OPEN")),
                "{s:?}"
            );
            assert!(
                string_value(&s.new_value).is_some_and(|v| v.ends_with("DONE")),
                "{s:?}"
            );
            let c = change(&p.changes, "complete_time");
            assert!(is_null(&c.old_value), "complete_time was unset: {c:?}");
            assert_eq!(time_value(&c.new_value), nanos(&done.complete_time));
        }
        other => panic!("updated payload: {other:?}"),
    }
    // DONE → IN_PROGRESS: complete_time cleared.
    match &events[2].payload {
        Some(Payload::ActionItemUpdated(p)) => {
            assert_eq!(p.action_item.as_ref(), Some(&reopened));
            let s = change(&p.changes, "status");
            assert!(
                string_value(&s.old_value).is_some_and(|v| v.ends_with("DONE")),
                "{s:?}"
            );
            assert!(
                string_value(&s.new_value).is_some_and(|v| v.ends_with("IN_PROGRESS")),
                "{s:?}"
            );
            let c = change(&p.changes, "complete_time");
            assert_eq!(time_value(&c.old_value), nanos(&done.complete_time));
            assert!(is_null(&c.new_value), "complete_time cleared: {c:?}");
        }
        other => panic!("updated payload: {other:?}"),
    }
    // Title with values; description path only.
    match &events[3].payload {
        Some(Payload::ActionItemUpdated(p)) => {
            assert_eq!(p.action_item.as_ref(), Some(&renamed));
            let paths: HashSet<&str> = p.changes.iter().map(|c| c.path.as_str()).collect();
            assert_eq!(paths, HashSet::from(["title", "description"]));
            let t = change(&p.changes, "title");
            assert_eq!(string_value(&t.old_value).as_deref(), Some("throttle"));
            assert_eq!(
                string_value(&t.new_value).as_deref(),
                Some("throttle migrations")
            );
            let d = change(&p.changes, "description");
            assert!(
                d.old_value.is_none() && d.new_value.is_none(),
                "large text: path only"
            );
        }
        other => panic!("updated payload: {other:?}"),
    }
    match &events[4].payload {
        Some(Payload::ActionItemDeleted(p)) => assert_eq!(p.action_item.as_ref(), Some(&deleted)),
        other => panic!("deleted payload: {other:?}"),
    }
    match &events[5].payload {
        Some(Payload::PostmortemUpdated(p)) => {
            assert_eq!(p.section_titles, ["Incident", "Root Cause", "Conclusion"]);
            let paths: HashSet<&str> = p.changes.iter().map(|c| c.path.as_str()).collect();
            assert_eq!(paths, HashSet::from(["body", "sections", "author"]));
            for path in ["body", "sections"] {
                let c = change(&p.changes, path);
                assert!(
                    c.old_value.is_none() && c.new_value.is_none(),
                    "{path}: path only"
                );
            }
            let a = change(&p.changes, "author");
            assert_eq!(string_value(&a.new_value).as_deref(), Some("ops"));
        }
        other => panic!("postmortem payload: {other:?}"),
    }
    match &events[6].payload {
        Some(Payload::PostmortemUpdated(p)) => {
            assert_eq!(p.section_titles, ["Root Cause", "Incident"]);
            let paths: Vec<&str> = p.changes.iter().map(|c| c.path.as_str()).collect();
            assert_eq!(paths, ["sections"]);
            assert!(p.changes[0].old_value.is_none() && p.changes[0].new_value.is_none());
        }
        other => panic!("postmortem payload: {other:?}"),
    }
    let published = &events[7];
    assert_eq!(
        published.occur_time,
        Some(at),
        "the event occurs at the occur_time"
    );
    match &published.payload {
        Some(Payload::PostmortemPublished(p)) => {
            assert_eq!(p.publish_time, Some(at));
            assert_eq!(p.author, "ops");
            assert_eq!(p.section_titles, ["Root Cause", "Incident"]);
        }
        other => panic!("published payload: {other:?}"),
    }
    // The kinds filter alone selects: only the published event.
    let only = api
        .events(&inc.id, &[TimelineEventKind::PostmortemPublished])
        .await;
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].sequence, published.sequence);
}

// ---------------------------------------------------------------- seed 001

#[tokio::test]
async fn seed_001_actions_for_the_future_and_its_postmortem() {
    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    // iAdvize, Feb 22 2024 (CET = UTC+1).
    let inc = api
        .inc
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                title: "P0 - Service disruption - Impossible to start new conversations & errors on the conversation panel".into(),
                kind: IncidentKind::Incident as i32,
                severity: Severity::P0 as i32,
                labels: labels(&[("company", "iAdvize")]),
                ..Default::default()
            }),
            occur_time: Some(ts("2024-02-22T09:42:00+01:00")),
            request_id: String::new(),
        })
        .await
        .expect("declare")
        .into_inner()
        .incident
        .expect("incident");
    for (status, at, message) in [
        (
            IncidentStatus::Unspecified,
            "2024-02-22T09:59:00+01:00",
            "We are still investigating and attempting to mitigate the issue.",
        ),
        (
            IncidentStatus::Unspecified,
            "2024-02-22T10:23:00+01:00",
            "Our technical team is still actively working on this issue to mitigate this incident.",
        ),
        (
            IncidentStatus::Monitoring,
            "2024-02-22T10:58:00+01:00",
            "Following technical interventions we are noticing great improvements.",
        ),
        (
            IncidentStatus::Unspecified,
            "2024-02-22T11:35:00+01:00",
            "The incident is over since 10:50am CET. The conversation processing flow is now operational.",
        ),
        (
            IncidentStatus::Resolved,
            "2024-02-22T14:48:00+01:00",
            "During the monitoring performed since the last update, no issue has been identified.",
        ),
    ] {
        api.inc
            .post_status_update(PostStatusUpdateRequest {
                incident_id: inc.id.clone(),
                status: status as i32,
                message: message.into(),
                occur_time: Some(ts(at)),
                ..Default::default()
            })
            .await
            .expect("status update");
    }

    // Actions for the future: one Done, one In progress.
    let throttle = api
        .create(ActionItem {
            description: "The aim here is to allow a gradual increase of incoming traffic on new instances, in order to keep control over CPU and memory load.".into(),
            ..item(
                &inc.id,
                "Identification and setting up a throttle system for next DBs migrations",
                ActionItemStatus::Done,
            )
        })
        .await;
    let tooling = api
        .create(item(
            &inc.id,
            "Improving our internal processes and tools to optimize DB crash resolution time",
            ActionItemStatus::InProgress,
        ))
        .await;
    assert!(throttle.complete_time.is_some());
    assert!(tooling.complete_time.is_none());

    let sections = vec![
        section(
            "Incident",
            "Following a major maintenance on our Livechat database (DB) to upgrade to a new version, scheduled on Feb. 22th 6:30 > 8:00 CET, we encountered CPU scalability problems as traffic on the new instance began to increase with the start of the day in Europe.\n\nDowntime on conversations processing happened on Feb. 22th, between 9:25 > 10:50 CET.",
        ),
        section(
            "Resolution",
            "As soon as we became aware of this incident, we shut down the services displaying contact notifications. Finally we were able to restart all services one by one without risking a new CPU burst.",
        ),
        // Its actions are the incident's action items, not text.
        section("Actions for the future", ""),
    ];
    let draft = api
        .try_update_pm(
            Postmortem {
                incident_id: inc.id.clone(),
                sections: sections.clone(),
                author: "iAdvize".into(),
                ..Default::default()
            },
            &[],
        )
        .await
        .expect("postmortem draft");
    let posted = ts("2024-02-26T10:05:00+01:00");
    let published = api
        .try_publish(&inc.id, &draft.etag, Some(posted))
        .await
        .expect("publish");
    assert_eq!(published.sections, sections);
    assert_eq!(
        titles(&published.sections),
        ["Incident", "Resolution", "Actions for the future"]
    );
    assert_eq!(published.publish_time, Some(posted));
    assert_eq!(published.author, "iAdvize");

    let after = api.get_incident(&inc.id).await;
    assert_eq!(after.status, IncidentStatus::Resolved as i32);
    assert_eq!(after.resolve_time, Some(ts("2024-02-22T14:48:00+01:00")));
    assert_eq!(after.postmortem_publish_time, Some(posted));
    assert_eq!(
        (after.action_item_count, after.open_action_item_count),
        (2, 1)
    );
    let listed = api
        .list_all(ListActionItemsRequest {
            incident_id: inc.id.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(listed, vec![tooling.clone(), throttle.clone()]);
    let still_open = api
        .list_all(ListActionItemsRequest {
            incident_id: inc.id.clone(),
            statuses: vec![
                ActionItemStatus::Open as i32,
                ActionItemStatus::InProgress as i32,
            ],
            ..Default::default()
        })
        .await;
    assert_eq!(ids(&still_open), vec![tooling.id.clone()]);
    let events = api
        .events(&inc.id, &[TimelineEventKind::PostmortemPublished])
        .await;
    assert_eq!(events.len(), 1);
    match &events[0].payload {
        Some(Payload::PostmortemPublished(p)) => {
            assert_eq!(
                p.section_titles,
                ["Incident", "Resolution", "Actions for the future"]
            );
        }
        other => panic!("published payload: {other:?}"),
    }
}

#[tokio::test]
async fn live_and_replayed_item_events_agree() {
    use incident_client::pb::subscribe_timeline_request::Start;
    use incident_client::pb::subscribe_timeline_response::Kind as Msg;

    let srv = TestServer::start().await;
    let mut api = Api::new(&srv).await;
    let inc = api.resolved("Live and replay").await;
    let it = api
        .create(item(&inc.id, "closed and reopened", ActionItemStatus::Open))
        .await;
    let mut stream = srv
        .timeline()
        .await
        .subscribe_timeline(SubscribeTimelineRequest {
            start: Some(Start::FromNow(())),
            incident_ids: vec![inc.id.clone()],
            kinds: vec![TimelineEventKind::ActionItemUpdated as i32],
            ..Default::default()
        })
        .await
        .expect("subscribe")
        .into_inner();
    let next = async |stream: &mut incident_client::tonic::Streaming<SubscribeTimelineResponse>| {
        tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
            .await
            .expect("a message in time")
            .expect("stream ok")
            .expect("stream open")
            .kind
            .expect("message kind")
    };
    // A from_now stream first states its position: it is live from here.
    assert!(matches!(next(&mut stream).await, Msg::Heartbeat(_)));
    api.set_status(&it.id, ActionItemStatus::Done).await;
    api.set_status(&it.id, ActionItemStatus::Open).await;
    let mut live = Vec::new();
    while live.len() < 2 {
        if let Msg::Event(e) = next(&mut stream).await {
            live.push(e);
        }
    }
    let replayed = api
        .events(&inc.id, &[TimelineEventKind::ActionItemUpdated])
        .await;
    let changes = |events: &[TimelineEvent]| -> Vec<Vec<FieldChange>> {
        events
            .iter()
            .map(|e| match &e.payload {
                Some(Payload::ActionItemUpdated(p)) => p.changes.clone(),
                other => panic!("updated payload: {other:?}"),
            })
            .collect()
    };
    assert_eq!(
        changes(&live),
        changes(&replayed),
        "the FieldChanges are the same live and replayed"
    );
    assert_eq!(
        live, replayed,
        "an event is the same live and replayed (FieldChange of an unset complete_time included)"
    );
}

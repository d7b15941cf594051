//! Seeds: the five real incident reports of `seeds/` load through the RPCs'
//! own validation, and read back over gRPC with the facts a reader of each
//! report can check (posts, times in UTC, impact windows, milestones,
//! postmortem, action items, labels, timeline order). Loading twice changes
//! nothing; a broken copy of a seed names its file and field and loads nothing.

mod broken;
mod loading;
mod reports;

use incident_client::prost_types::Timestamp;
use incident_client::*;
use incidentd::seed;

use crate::support::{Options, TestServer, list_all_timeline_events, seeds_dir};

pub const SEED_FILES: [&str; 5] = [
    "000_iadvize_2024-11-20_conversation_panel.toml",
    "001_iadvize_2024-02-22_livechat_db.toml",
    "002_iadvize_2024-09-02_notifications.toml",
    "003_iadvize_2023-08-11_desk_loading.toml",
    "004_dixa_2024-10-01_queue_routing.toml",
];

pub async fn seeded() -> TestServer {
    TestServer::start_with(Options {
        seed_dir: Some(seeds_dir()),
        ..Default::default()
    })
    .await
}

/// A set timestamp as RFC 3339 in UTC ("2024-02-22T08:42:00Z").
pub fn utc(t: &Option<Timestamp>) -> String {
    let t = t.as_ref().expect("timestamp set");
    chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)
        .expect("valid timestamp")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn seconds(t: &Option<Timestamp>) -> i64 {
    t.as_ref().expect("timestamp set").seconds
}

/// Everything the API says about one seeded incident.
pub struct Seeded {
    pub incident: Incident,
    /// In posting order.
    pub updates: Vec<StatusUpdate>,
    /// In creation order (the seed file's order).
    pub items: Vec<ActionItem>,
    pub postmortem: Postmortem,
    /// Oldest first, by sequence.
    pub events: Vec<TimelineEvent>,
}

pub async fn all_incidents(ts: &TestServer, req: ListIncidentsRequest) -> Vec<Incident> {
    ts.incidents()
        .await
        .list_incidents(ListIncidentsRequest {
            page_size: 1000,
            ..req
        })
        .await
        .expect("list incidents")
        .into_inner()
        .incidents
}

pub async fn fetch(ts: &TestServer, title: &str) -> Seeded {
    let found: Vec<Incident> = all_incidents(ts, ListIncidentsRequest::default())
        .await
        .into_iter()
        .filter(|i| i.title == title)
        .collect();
    assert_eq!(found.len(), 1, "one incident titled {title:?}");
    let incident = found.into_iter().next().expect("found");
    let id = incident.id.clone();

    let mut updates = ts
        .incidents()
        .await
        .list_status_updates(ListStatusUpdatesRequest {
            incident_id: id.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list status updates")
        .into_inner()
        .status_updates;
    // Listed newest first (by insertion); the seed's posting order is by post time.
    updates.sort_by_key(|u| seconds(&u.post_time));

    let mut items = ActionItemServiceClient::new(ts.channel().await)
        .list_action_items(ListActionItemsRequest {
            incident_id: id.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list action items")
        .into_inner()
        .action_items;
    items.reverse();

    let postmortem = ts
        .incidents()
        .await
        .get_postmortem(GetPostmortemRequest {
            incident_id: id.clone(),
            ..Default::default()
        })
        .await
        .expect("get postmortem")
        .into_inner()
        .postmortem
        .expect("postmortem");

    let events = list_all_timeline_events(
        &mut ts.timeline().await,
        ListTimelineEventsRequest {
            incident_id: id.clone(),
            page_size: 1000,
            ..Default::default()
        },
    )
    .await;

    Seeded {
        incident,
        updates,
        items,
        postmortem,
        events,
    }
}

/// (post time in UTC, status) of every status update, in posting order.
pub fn posts(s: &Seeded) -> Vec<(String, IncidentStatus)> {
    s.updates
        .iter()
        .map(|u| (utc(&u.post_time), u.status()))
        .collect()
}

/// (start, end, minutes of impact, level) of every impact window: the stated
/// `duration` when the report gives only a total, else end - start.
pub fn windows(s: &Seeded) -> Vec<(String, String, i64, ImpactLevel)> {
    s.incident
        .impact_windows
        .iter()
        .map(|w| {
            let minutes = match &w.duration {
                Some(d) => {
                    assert_eq!(d.nanos, 0);
                    d.seconds / 60
                }
                None => (seconds(&w.end_time) - seconds(&w.start_time)) / 60,
            };
            (utc(&w.start_time), utc(&w.end_time), minutes, w.impact())
        })
        .collect()
}

pub fn item_statuses(s: &Seeded) -> Vec<ActionItemStatus> {
    s.items.iter().map(|i| i.status()).collect()
}

pub fn section_titles(s: &Seeded) -> Vec<String> {
    s.postmortem
        .sections
        .iter()
        .map(|s| s.title.clone())
        .collect()
}

/// Checks what every seed shares: the company label, the postmortem is
/// published at the incident's postmortem_publish_time, the counts agree, and
/// the events that carry the report's times read in the order they happened.
#[track_caller]
pub fn check_common(s: &Seeded, company: &str) {
    let i = &s.incident;
    assert_eq!(i.labels.get("company").map(String::as_str), Some(company));
    assert_eq!(i.kind(), IncidentKind::Incident);
    assert_eq!(i.status(), IncidentStatus::Resolved);
    assert_eq!(i.delete_time, None);
    assert_eq!(
        utc(&i.postmortem_publish_time),
        utc(&s.postmortem.publish_time)
    );
    assert_eq!(i.action_item_count as usize, s.items.len());
    let open = s
        .items
        .iter()
        .filter(|a| {
            matches!(
                a.status(),
                ActionItemStatus::Open | ActionItemStatus::InProgress
            )
        })
        .count();
    assert_eq!(i.open_action_item_count as usize, open);
    // Resolved: every impact settled back to operational.
    assert!(
        i.component_impacts
            .iter()
            .all(|c| c.impact() == ImpactLevel::Operational),
        "{:?}",
        i.component_impacts
    );
    // The declaration is the first post.
    assert_eq!(utc(&i.declare_time), utc(&s.updates[0].post_time));
    // Posts are strictly in the order they were posted.
    for w in s.updates.windows(2) {
        assert!(seconds(&w[0].post_time) < seconds(&w[1].post_time));
    }
    // Written by the seed loader, under its own actor.
    assert!(s.events.iter().all(|e| e.actor == seed::SEED_ACTOR));
    check_report_order(s);
}

/// The events that carry a time of the report (creation, posts, status and
/// impact changes, publication) come in sequence order with non-decreasing
/// occurrence times: created at the declaration, one STATUS_UPDATE_POSTED per
/// post at its post time, the publication last at the publish time.
#[track_caller]
pub fn check_report_order(s: &Seeded) {
    use TimelineEventKind as K;
    let report_timed: Vec<&TimelineEvent> = s
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind(),
                K::IncidentCreated
                    | K::StatusUpdatePosted
                    | K::StatusChanged
                    | K::ComponentImpactChanged
                    | K::PostmortemPublished
            )
        })
        .collect();
    for w in report_timed.windows(2) {
        assert!(w[0].sequence < w[1].sequence);
        assert!(
            seconds(&w[0].occur_time) <= seconds(&w[1].occur_time),
            "{:?} at {} before {:?} at {}",
            w[0].kind(),
            utc(&w[0].occur_time),
            w[1].kind(),
            utc(&w[1].occur_time)
        );
    }
    let first = report_timed.first().expect("events");
    assert_eq!(first.kind(), K::IncidentCreated);
    assert_eq!(utc(&first.occur_time), utc(&s.incident.declare_time));
    let last = report_timed.last().expect("events");
    assert_eq!(last.kind(), K::PostmortemPublished);
    assert_eq!(utc(&last.occur_time), utc(&s.postmortem.publish_time));
    let posted: Vec<String> = report_timed
        .iter()
        .filter(|e| e.kind() == K::StatusUpdatePosted)
        .map(|e| utc(&e.occur_time))
        .collect();
    let expected: Vec<String> = s.updates.iter().map(|u| utc(&u.post_time)).collect();
    assert_eq!(posted, expected);
    // Status changes happen at the posts that made them.
    for e in report_timed.iter().filter(|e| e.kind() == K::StatusChanged) {
        assert!(expected.contains(&utc(&e.occur_time)));
    }
}

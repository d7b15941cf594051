//! Seeds (issue 5): the five real incident reports of `seeds/` load through the
//! RPCs' own validation, and read back over gRPC with the facts a reader of
//! each report can check (posts, times in UTC, impact windows, milestones,
//! postmortem, action items, labels, timeline order). Loading twice changes
//! nothing; a broken copy of a seed names its file and field and loads nothing.

mod common;

use std::path::{Path, PathBuf};

use common::{Options, TestServer, list_all_timeline_events, seeds_dir};
use incident_client::prost_types::Timestamp;
use incident_client::*;
use incidentd::seed::{self, Outcome};
use incidentd::store::{Store, StoreOptions};

// ---------------------------------------------------------------- helpers

const SEED_FILES: [&str; 5] = [
    "000_iadvize_2024-11-20_conversation_panel.toml",
    "001_iadvize_2024-02-22_livechat_db.toml",
    "002_iadvize_2024-09-02_notifications.toml",
    "003_iadvize_2023-08-11_desk_loading.toml",
    "004_dixa_2024-10-01_queue_routing.toml",
];

async fn seeded() -> TestServer {
    TestServer::start_with(Options {
        seed_dir: Some(seeds_dir()),
        ..Default::default()
    })
    .await
}

/// A set timestamp as RFC 3339 in UTC ("2024-02-22T08:42:00Z").
fn utc(t: &Option<Timestamp>) -> String {
    let t = t.as_ref().expect("timestamp set");
    chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)
        .expect("valid timestamp")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn seconds(t: &Option<Timestamp>) -> i64 {
    t.as_ref().expect("timestamp set").seconds
}

/// Everything the API says about one seeded incident.
struct Seeded {
    incident: Incident,
    /// In posting order.
    updates: Vec<StatusUpdate>,
    /// In creation order (the seed file's order).
    items: Vec<ActionItem>,
    postmortem: Postmortem,
    /// Oldest first, by sequence.
    events: Vec<TimelineEvent>,
}

async fn all_incidents(ts: &TestServer, req: ListIncidentsRequest) -> Vec<Incident> {
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

async fn fetch(ts: &TestServer, title: &str) -> Seeded {
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
fn posts(s: &Seeded) -> Vec<(String, IncidentStatus)> {
    s.updates
        .iter()
        .map(|u| (utc(&u.post_time), u.status()))
        .collect()
}

/// (start, end, minutes of impact, level) of every impact window: the stated
/// `duration` when the report gives only a total, else end - start.
fn windows(s: &Seeded) -> Vec<(String, String, i64, ImpactLevel)> {
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

fn item_statuses(s: &Seeded) -> Vec<ActionItemStatus> {
    s.items.iter().map(|i| i.status()).collect()
}

fn section_titles(s: &Seeded) -> Vec<String> {
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
fn check_common(s: &Seeded, company: &str) {
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
fn check_report_order(s: &Seeded) {
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

// ---------------------------------------------------------------- loading

#[tokio::test]
async fn every_seed_file_loads() {
    let seeds = seed::read_dir(&seeds_dir()).expect("every seed parses");
    assert_eq!(seeds.len(), SEED_FILES.len());
    for f in SEED_FILES {
        assert!(seeds_dir().join(f).is_file(), "{f} exists");
    }

    let ts = seeded().await;
    let incidents = all_incidents(&ts, ListIncidentsRequest::default()).await;
    let mut titles: Vec<&str> = incidents.iter().map(|i| i.title.as_str()).collect();
    titles.sort_unstable();
    assert_eq!(
        titles,
        [
            "Conversation notifications might not be visible on websites",
            "Delays in the Dashboard, Analytics, and Offers for some queues",
            "Difficulty to load the desk",
            "Disturbances on the Conversations Panel",
            "Service disruption - Impossible to start new conversations & errors on the conversation panel",
        ]
    );
    // References in file order: INC-1 is seed 000 ... INC-5 is seed 004.
    let by_ref = |r: &str| {
        incidents
            .iter()
            .find(|i| i.reference == r)
            .map(|i| i.title.clone())
    };
    assert_eq!(
        by_ref("INC-1").as_deref(),
        Some("Disturbances on the Conversations Panel")
    );
    assert_eq!(
        by_ref("INC-5").as_deref(),
        Some("Delays in the Dashboard, Analytics, and Offers for some queues")
    );
    // Every seed is resolved, with a published postmortem.
    for i in &incidents {
        assert_eq!(i.status(), IncidentStatus::Resolved, "{}", i.title);
        assert!(i.postmortem_publish_time.is_some(), "{}", i.title);
    }
    assert_eq!(ts.count("seeds").await, 5);
}

#[tokio::test]
async fn labels_and_severities_filter_the_seeds() {
    let ts = seeded().await;
    let titles = |v: Vec<Incident>| {
        let mut t: Vec<String> = v.into_iter().map(|i| i.title).collect();
        t.sort_unstable();
        t
    };
    let dixa = all_incidents(
        &ts,
        ListIncidentsRequest {
            label: "company=Dixa".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        titles(dixa),
        ["Delays in the Dashboard, Analytics, and Offers for some queues"]
    );
    let iadvize = all_incidents(
        &ts,
        ListIncidentsRequest {
            label: "company=iAdvize".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(iadvize.len(), 4);

    let p0 = all_incidents(
        &ts,
        ListIncidentsRequest {
            severities: vec![Severity::P0 as i32],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        titles(p0),
        [
            "Service disruption - Impossible to start new conversations & errors on the conversation panel"
        ]
    );
    let p1 = all_incidents(
        &ts,
        ListIncidentsRequest {
            severities: vec![Severity::P1 as i32],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        titles(p1),
        [
            "Conversation notifications might not be visible on websites",
            "Difficulty to load the desk",
            "Disturbances on the Conversations Panel",
        ]
    );
    let open = all_incidents(
        &ts,
        ListIncidentsRequest {
            open: Some(true),
            ..Default::default()
        },
    )
    .await;
    assert!(open.is_empty());
}

// ---------------------------------------------------------------- per seed

#[tokio::test]
async fn seed_000_conversation_panel_two_windows_on_two_days() {
    let ts = seeded().await;
    let s = fetch(&ts, "Disturbances on the Conversations Panel").await;
    check_common(&s, "iAdvize");
    assert_eq!(s.incident.severity(), Severity::P1);

    use IncidentStatus::*;
    assert_eq!(
        posts(&s),
        [
            ("2024-11-21T08:52:00Z".to_owned(), Investigating), // 09:52 CET
            ("2024-11-21T09:01:00Z".to_owned(), Monitoring),    // 10:01 CET
            ("2024-11-21T13:09:00Z".to_owned(), Resolved),      // 14:09 CET
        ]
    );
    // Nov 20 17:19 > 17:52 CET and Nov 21 9:30 > 9:43 CET.
    assert_eq!(
        windows(&s),
        [
            (
                "2024-11-20T16:19:00Z".to_owned(),
                "2024-11-20T16:52:00Z".to_owned(),
                33,
                ImpactLevel::DegradedPerformance
            ),
            (
                "2024-11-21T08:30:00Z".to_owned(),
                "2024-11-21T08:43:00Z".to_owned(),
                13,
                ImpactLevel::DegradedPerformance
            ),
        ]
    );
    assert_eq!(s.incident.identify_time, None);
    assert_eq!(utc(&s.incident.mitigate_time), "2024-11-21T09:01:00Z");
    assert_eq!(utc(&s.incident.resolve_time), "2024-11-21T13:09:00Z");

    assert_eq!(utc(&s.postmortem.publish_time), "2024-11-25T13:44:00Z"); // 14:44 CET
    assert_eq!(
        section_titles(&s),
        [
            "Incident",
            "Resolution",
            "Actions for the future",
            "Focus on the Black Friday period"
        ]
    );
    assert_eq!(item_statuses(&s), [ActionItemStatus::Done; 3]);

    // The full "This incident affected" list: 8 groups, 31 components under them,
    // each marked by the first post.
    assert_eq!(s.incident.component_impacts.len(), 31);
    let components = ts
        .components()
        .await
        .list_components(ListComponentsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list components")
        .into_inner()
        .components;
    let name_of = |id: &str| {
        components
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    };
    // "Login" under both Administration and Conversation Panel.
    let mut login_parents: Vec<String> = components
        .iter()
        .filter(|c| c.name == "Login")
        .map(|c| name_of(&c.parent_id))
        .collect();
    login_parents.sort_unstable();
    assert_eq!(login_parents, ["Administration", "Conversation Panel"]);
    // Both windows name the two areas the postmortem names.
    for w in &s.incident.impact_windows {
        let mut names: Vec<String> = w.component_ids.iter().map(|id| name_of(id)).collect();
        names.sort_unstable();
        assert_eq!(names, ["Administration", "Conversation Panel"]);
    }
}

#[tokio::test]
async fn seed_001_livechat_db_downtime_and_stated_milestones() {
    let ts = seeded().await;
    let s = fetch(
        &ts,
        "Service disruption - Impossible to start new conversations & errors on the conversation panel",
    )
    .await;
    check_common(&s, "iAdvize");
    assert_eq!(s.incident.severity(), Severity::P0);

    use IncidentStatus::*;
    // "Update" posts keep the status.
    assert_eq!(
        posts(&s),
        [
            ("2024-02-22T08:42:00Z".to_owned(), Investigating), // 09:42 CET
            ("2024-02-22T08:59:00Z".to_owned(), Investigating), // 09:59 CET, Update
            ("2024-02-22T09:23:00Z".to_owned(), Investigating), // 10:23 CET, Update
            ("2024-02-22T09:58:00Z".to_owned(), Monitoring),    // 10:58 CET
            ("2024-02-22T10:35:00Z".to_owned(), Monitoring),    // 11:35 CET, Update
            ("2024-02-22T13:48:00Z".to_owned(), Resolved),      // 14:48 CET
        ]
    );
    // Downtime 9:25 > 10:50 CET: 85 minutes.
    assert_eq!(
        windows(&s),
        [(
            "2024-02-22T08:25:00Z".to_owned(),
            "2024-02-22T09:50:00Z".to_owned(),
            85,
            ImpactLevel::MajorOutage
        )]
    );
    // "over since 10:50am CET" / "resolved since 10:50am CET": stated outright,
    // while the RESOLVED post itself is at 14:48 CET.
    assert_eq!(s.incident.identify_time, None);
    assert_eq!(utc(&s.incident.mitigate_time), "2024-02-22T09:50:00Z");
    assert_eq!(utc(&s.incident.resolve_time), "2024-02-22T09:50:00Z");
    assert_eq!(
        utc(&s.updates.last().expect("posts").post_time),
        "2024-02-22T13:48:00Z"
    );

    assert_eq!(utc(&s.postmortem.publish_time), "2024-02-26T09:05:00Z"); // 10:05 CET
    assert_eq!(
        section_titles(&s),
        ["Incident", "Resolution", "Actions for the future"]
    );
    assert_eq!(
        item_statuses(&s),
        [ActionItemStatus::Done, ActionItemStatus::InProgress]
    );
    assert_eq!(s.incident.open_action_item_count, 1);
    // No separate maintenance incident for the 6:30 > 8:00 CET upgrade.
    let maintenance = all_incidents(
        &ts,
        ListIncidentsRequest {
            kind: IncidentKind::Maintenance as i32,
            ..Default::default()
        },
    )
    .await;
    assert!(maintenance.is_empty());
}

#[tokio::test]
async fn seed_002_notifications_86_and_37_minutes_inside_11_01_to_13_04_cest() {
    let ts = seeded().await;
    let s = fetch(
        &ts,
        "Conversation notifications might not be visible on websites",
    )
    .await;
    check_common(&s, "iAdvize");
    assert_eq!(s.incident.severity(), Severity::P1);

    use IncidentStatus::*;
    assert_eq!(
        posts(&s),
        [
            ("2024-09-02T10:06:00Z".to_owned(), Investigating),
            ("2024-09-02T10:08:00Z".to_owned(), Investigating), // keeps the status
            ("2024-09-02T10:26:00Z".to_owned(), Identified),
            ("2024-09-02T11:07:00Z".to_owned(), Monitoring),
            ("2024-09-02T12:02:00Z".to_owned(), Resolved),
        ]
    );
    // 11:01 > 13:04 CEST, order of the phases not given: totals by `duration`.
    assert_eq!(
        windows(&s),
        [
            (
                "2024-09-02T09:01:00Z".to_owned(),
                "2024-09-02T11:04:00Z".to_owned(),
                86,
                ImpactLevel::DegradedPerformance
            ),
            (
                "2024-09-02T09:01:00Z".to_owned(),
                "2024-09-02T11:04:00Z".to_owned(),
                37,
                ImpactLevel::MajorOutage
            ),
        ]
    );
    // Together they fill the 123 minutes of the span.
    let span = (seconds(&s.incident.impact_windows[0].end_time)
        - seconds(&s.incident.impact_windows[0].start_time))
        / 60;
    assert_eq!(span, 86 + 37);
    assert_eq!(utc(&s.incident.identify_time), "2024-09-02T10:26:00Z");
    assert_eq!(utc(&s.incident.mitigate_time), "2024-09-02T11:07:00Z");
    assert_eq!(utc(&s.incident.resolve_time), "2024-09-02T12:02:00Z");

    assert_eq!(utc(&s.postmortem.publish_time), "2024-09-06T12:31:00Z");
    assert_eq!(
        section_titles(&s),
        ["Incident", "Resolution", "Actions for the future"]
    );
    assert_eq!(item_statuses(&s), [ActionItemStatus::Done; 3]);
    // Chat, Call and "1 more component" (Video).
    assert_eq!(s.incident.component_impacts.len(), 3);
    for w in &s.incident.impact_windows {
        assert_eq!(w.component_ids.len(), 3);
    }
}

#[tokio::test]
async fn seed_003_desk_loading() {
    let ts = seeded().await;
    let s = fetch(&ts, "Difficulty to load the desk").await;
    check_common(&s, "iAdvize");
    assert_eq!(s.incident.severity(), Severity::P1);

    use IncidentStatus::*;
    assert_eq!(
        posts(&s),
        [
            ("2023-08-11T08:04:00Z".to_owned(), Investigating), // 10:04 CEST
            ("2023-08-11T08:22:00Z".to_owned(), Identified),    // 10:22 CEST
            ("2023-08-11T08:45:00Z".to_owned(), Monitoring),    // 10:45 CEST
            ("2023-08-11T13:38:00Z".to_owned(), Resolved),      // 15:38 CEST
        ]
    );
    // 9:35 > 10:42 CEST.
    assert_eq!(
        windows(&s),
        [(
            "2023-08-11T07:35:00Z".to_owned(),
            "2023-08-11T08:42:00Z".to_owned(),
            67,
            ImpactLevel::MajorOutage
        )]
    );
    assert_eq!(utc(&s.incident.identify_time), "2023-08-11T08:22:00Z");
    assert_eq!(utc(&s.incident.mitigate_time), "2023-08-11T08:45:00Z");
    assert_eq!(utc(&s.incident.resolve_time), "2023-08-11T13:38:00Z");

    assert_eq!(utc(&s.postmortem.publish_time), "2023-08-17T16:03:00Z"); // 18:03 CEST
    assert_eq!(
        section_titles(&s),
        [
            "Incident",
            "Reasons",
            "Resolution",
            "Actions for the future"
        ]
    );
    assert_eq!(item_statuses(&s), [ActionItemStatus::Done; 2]);
}

#[tokio::test]
async fn seed_004_dixa_queue_routing_over_three_days() {
    let ts = seeded().await;
    let s = fetch(
        &ts,
        "Delays in the Dashboard, Analytics, and Offers for some queues",
    )
    .await;
    check_common(&s, "Dixa");
    // The report does not assess severity.
    assert_eq!(s.incident.severity(), Severity::Unspecified);

    use IncidentStatus::*;
    assert_eq!(
        posts(&s),
        [
            ("2024-10-01T12:12:00Z".to_owned(), Identified), // Oct 1 14:12 CEST
            ("2024-10-01T12:15:00Z".to_owned(), Identified), // 14:15 CEST, Update
            ("2024-10-01T12:18:00Z".to_owned(), Identified), // 14:18 CEST, Update
            ("2024-10-01T12:20:00Z".to_owned(), Identified), // 14:20 CEST, Update
            ("2024-10-01T13:29:00Z".to_owned(), Identified), // 15:29 CEST, Update
            ("2024-10-02T07:38:00Z".to_owned(), Identified), // Oct 2 09:38 CEST, Update
            ("2024-10-02T08:25:00Z".to_owned(), Identified), // Oct 2 10:25 CEST, Update
            ("2024-10-02T18:20:00Z".to_owned(), Resolved),   // Oct 2 20:20 CEST
        ]
    );
    // The "next update" promises, each after its own post.
    let promises: Vec<Option<String>> = s
        .updates
        .iter()
        .map(|u| {
            u.next_update_time
                .as_ref()
                .map(|_| utc(&u.next_update_time))
        })
        .collect();
    assert_eq!(
        promises,
        [
            Some("2024-10-01T13:00:00Z".to_owned()), // "13:00 UCT"
            None,
            None,
            None,
            None,
            Some("2024-10-02T09:00:00Z".to_owned()),
            Some("2024-10-02T11:00:00Z".to_owned()),
            None,
        ]
    );
    for u in &s.updates {
        if u.next_update_time.is_some() {
            assert!(seconds(&u.next_update_time) > seconds(&u.post_time));
        }
    }
    assert_eq!(s.incident.next_update_time, None);

    // Oct 1 13:07 CEST > Oct 3 20:20 CEST, with the postmortem's timeline inside.
    assert_eq!(
        windows(&s),
        [
            (
                "2024-10-01T11:07:00Z".to_owned(),
                "2024-10-03T18:20:00Z".to_owned(),
                2 * 24 * 60 + 7 * 60 + 13,
                ImpactLevel::PartialOutage
            ),
            (
                "2024-10-01T11:07:00Z".to_owned(),
                "2024-10-01T12:30:00Z".to_owned(),
                83,
                ImpactLevel::PartialOutage
            ),
            (
                "2024-10-01T13:00:00Z".to_owned(),
                "2024-10-02T16:00:00Z".to_owned(),
                27 * 60,
                ImpactLevel::PartialOutage
            ),
        ]
    );
    // Declared as IDENTIFIED at the first post; mitigated at 14:30 CEST as the
    // postmortem states; resolved by the status post of Oct 2 20:20 CEST, while
    // the impact window runs to Oct 3 20:20 CEST (the report's contradiction).
    assert_eq!(utc(&s.incident.identify_time), "2024-10-01T12:12:00Z");
    assert_eq!(utc(&s.incident.mitigate_time), "2024-10-01T12:30:00Z");
    assert_eq!(utc(&s.incident.resolve_time), "2024-10-02T18:20:00Z");

    assert_eq!(utc(&s.postmortem.publish_time), "2024-10-04T13:09:00Z"); // 15:09 CEST
    assert_eq!(s.postmortem.author, "Dixa Incident Management Team");
    assert_eq!(
        section_titles(&s),
        [
            "Incident Overview",
            "Timeline",
            "Root Cause",
            "Impact",
            "Resolution",
            "Aftermath and Long-term Actions",
            "Conclusion"
        ]
    );
    assert_eq!(item_statuses(&s), [ActionItemStatus::Open; 4]);
    assert_eq!(s.incident.open_action_item_count, 4);
    let titles: Vec<&str> = s.items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Protocol review",
            "Queue service improvements",
            "Enhanced monitoring",
            "Post-incident review"
        ]
    );
}

/// Every event of a seed incident, in sequence order, should carry a time of
/// the report as its occurrence time. Today the milestones (UpdateIncident),
/// the action items and the postmortem draft are written with the load time
/// as their occurrence time, so they read as happening after the postmortem's
/// publication (and years after the incident).
#[tokio::test]
async fn every_seed_event_carries_a_report_time() {
    let ts = seeded().await;
    for i in all_incidents(&ts, ListIncidentsRequest::default()).await {
        let s = fetch(&ts, &i.title).await;
        let publish = seconds(&s.postmortem.publish_time);
        for w in s.events.windows(2) {
            assert!(
                seconds(&w[0].occur_time) <= seconds(&w[1].occur_time),
                "{}: {:?} at {} before {:?} at {}",
                i.title,
                w[0].kind(),
                utc(&w[0].occur_time),
                w[1].kind(),
                utc(&w[1].occur_time)
            );
        }
        for e in &s.events {
            assert!(
                seconds(&e.occur_time) <= publish,
                "{}: {:?} at {}",
                i.title,
                e.kind(),
                utc(&e.occur_time)
            );
        }
    }
}

// ---------------------------------------------------------------- idempotency

#[tokio::test]
async fn loading_twice_changes_nothing() {
    let mut ts = seeded().await;
    let before = ts.db_state().await;

    // Again through the loader, on the same database.
    ts.stop().await;
    let store = Store::open(&ts.db.display().to_string(), StoreOptions::default())
        .await
        .expect("open store");
    let outcomes = seed::load(&store, seed::read_dir(&seeds_dir()).expect("read seeds"))
        .await
        .expect("load again");
    store.close().await;
    assert_eq!(outcomes.len(), 5);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Skipped { .. })),
        "{outcomes:?}"
    );
    assert_eq!(ts.db_state().await, before);

    // And through a server started with the seeds on the same database.
    ts.start_again().await;
    assert_eq!(ts.db_state().await, before);
    let incidents = all_incidents(&ts, ListIncidentsRequest::default()).await;
    assert_eq!(incidents.len(), 5);
}

// ---------------------------------------------------------------- broken seeds

/// A copy of `seeds/` in a temporary folder, with `file` rewritten by `edit`.
fn broken_copy(file: &str, edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for f in SEED_FILES {
        std::fs::copy(seeds_dir().join(f), dir.path().join(f)).expect("copy seed");
    }
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).expect("read seed");
    std::fs::write(&path, edit(text)).expect("write seed");
    dir
}

/// Replaces exactly one occurrence of `from`.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} occurs once");
    text.replacen(from, to, 1)
}

#[track_caller]
fn assert_names(e: &seed::SeedError, file: &str, field: &str, reason: &str) {
    let message = e.to_string();
    assert!(
        Path::new(&e.file).ends_with(file),
        "file {:?} in {message:?}",
        e.file
    );
    assert_eq!(e.field, field, "field in {message:?}");
    assert!(
        e.reason.contains(reason),
        "reason {:?} in {message:?}",
        e.reason
    );
    assert!(
        message.contains(file) && message.contains(field),
        "{message}"
    );
}

const DIXA: &str = "004_dixa_2024-10-01_queue_routing.toml";
const LIVECHAT: &str = "001_iadvize_2024-02-22_livechat_db.toml";

/// A broken copy: the file, how to break it, the field and reason expected.
type Case = (
    &'static str,
    Box<dyn FnOnce(String) -> String>,
    &'static str,
    &'static str,
);

#[test]
fn a_broken_seed_file_is_rejected_naming_file_and_field() {
    let cases: Vec<Case> = vec![
        // A missing required field.
        (
            DIXA,
            Box::new(|t| {
                replace_once(
                    &t,
                    "declare_time = \"2024-10-01T14:12:00+02:00\"   # first post, 14:12 CEST\n",
                    "",
                )
            }),
            "declare_time",
            "missing field",
        ),
        // A time without its offset.
        (
            DIXA,
            Box::new(|t| {
                replace_once(
                    &t,
                    "time = \"2024-10-02T09:38:00+02:00\"",
                    "time = \"2024-10-02 09:38\"",
                )
            }),
            "updates[5].time",
            "RFC 3339",
        ),
        // An unknown status.
        (
            DIXA,
            Box::new(|t| replace_once(&t, "status = \"RESOLVED\"", "status = \"CLOSED\"")),
            "updates[7].status",
            "unknown status",
        ),
        // An unknown action item status.
        (
            LIVECHAT,
            Box::new(|t| replace_once(&t, "status = \"IN_PROGRESS\"", "status = \"STARTED\"")),
            "action_items[1].status",
            "unknown status",
        ),
        // An unknown field.
        (
            LIVECHAT,
            Box::new(|t| replace_once(&t, "severity = \"P0\"", "severity = \"P0\"\npriority = 1")),
            "priority",
            "unknown field",
        ),
        // A bad milestone time.
        (
            LIVECHAT,
            Box::new(|t| {
                replace_once(
                    &t,
                    "resolve_time = \"2024-02-22T10:50:00+01:00\"",
                    "resolve_time = \"10:50 CET\"",
                )
            }),
            "milestones.resolve_time",
            "RFC 3339",
        ),
        // An impact on a component the file does not declare.
        (
            DIXA,
            Box::new(|t| {
                replace_once(
                    &t,
                    "\"Agent Interface/Dashboard\" = \"OPERATIONAL\"",
                    "\"Agent Interface/Inbox\" = \"OPERATIONAL\"",
                )
            }),
            "updates[6].impacts",
            "not declared",
        ),
        // A duration that is not one.
        (
            "002_iadvize_2024-09-02_notifications.toml",
            Box::new(|t| replace_once(&t, "duration = \"37m\"", "duration = \"37 parsecs\"")),
            "impact_windows[1].duration",
            "37 parsecs",
        ),
    ];
    for (file, edit, field, reason) in cases {
        let dir = broken_copy(file, edit);
        let e = seed::read_dir(dir.path())
            .err()
            .unwrap_or_else(|| panic!("{file} broken at {field} is rejected"));
        assert_names(&e, file, field, reason);
        // The same through `parse` on the one file.
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        let e = seed::parse(&path.display().to_string(), &text)
            .err()
            .expect("rejected by parse");
        assert_names(&e, file, field, reason);
    }
}

/// A fresh database's state, and its path, with the server stopped.
async fn fresh_db() -> (TestServer, String) {
    let mut ts = TestServer::start().await;
    ts.stop().await;
    let state = ts.db_state().await;
    (ts, state)
}

/// Loads `dir` with the loader straight on the test server's database.
async fn load_dir(ts: &TestServer, dir: &Path) -> Result<Vec<Outcome>, seed::SeedError> {
    let seeds = seed::read_dir(dir).expect("parses: the error is the RPC validation's");
    let store = Store::open(&ts.db.display().to_string(), StoreOptions::default())
        .await
        .expect("open store");
    let out = seed::load(&store, seeds).await;
    store.close().await;
    out
}

#[track_caller]
fn assert_nothing_loaded_counts(counts: [i64; 4]) {
    assert_eq!(counts, [0; 4], "incidents, components, events, seeds");
}

async fn counts(ts: &TestServer) -> [i64; 4] {
    [
        ts.count("incidents").await,
        ts.count("components").await,
        ts.count("events").await,
        ts.count("seeds").await,
    ]
}

#[tokio::test]
async fn a_seed_failing_rpc_validation_loads_nothing_not_even_the_good_ones() {
    // The last file in load order: the four before it are written in the same
    // transaction, and must be rolled back with it.
    let long = "x".repeat(300);
    let dir = broken_copy(DIXA, |t| {
        replace_once(
            &t,
            "title = \"Delays in the Dashboard, Analytics, and Offers for some queues\"",
            &format!("title = \"{long}\""),
        )
    });
    let (ts, before) = fresh_db().await;
    let e = load_dir(&ts, dir.path()).await.expect_err("rejected");
    assert_names(&e, DIXA, "incident", "incident.title");
    assert!(e.reason.contains("200"), "{e}");
    assert_eq!(ts.db_state().await, before);
    assert_nothing_loaded_counts(counts(&ts).await);
}

#[tokio::test]
async fn a_next_update_before_its_post_is_rejected_and_loads_nothing() {
    // "Next Update: 13:00 UCT" read as CEST would be before its 14:12 CEST post.
    let dir = broken_copy(DIXA, |t| {
        replace_once(
            &t,
            "next_update = \"2024-10-01T13:00:00Z\"",
            "next_update = \"2024-10-01T13:00:00+02:00\"",
        )
    });
    let (ts, before) = fresh_db().await;
    let e = load_dir(&ts, dir.path()).await.expect_err("rejected");
    assert_names(&e, DIXA, "updates[0]", "next_update_time");
    assert_eq!(ts.db_state().await, before);
    assert_nothing_loaded_counts(counts(&ts).await);
}

#[tokio::test]
async fn a_server_started_with_a_broken_seed_refuses_and_changes_nothing() {
    let dir = broken_copy(LIVECHAT, |t| {
        replace_once(&t, "status = \"MONITORING\"", "status = \"WATCHING\"")
    });
    let (ts, before) = fresh_db().await;
    let mut config = incidentd::server::Config::new(
        "127.0.0.1:0".parse().expect("addr"),
        ts.db.display().to_string(),
    );
    config.seed_dir = Some(PathBuf::from(dir.path()));
    let started = incidentd::server::Server::start(config).await;
    let e = match started {
        Ok(_) => panic!("a server with a broken seed must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.contains(LIVECHAT) && e.contains("updates[3].status") && e.contains("WATCHING"),
        "{e}"
    );
    assert_eq!(ts.db_state().await, before);
    assert_nothing_loaded_counts(counts(&ts).await);
}

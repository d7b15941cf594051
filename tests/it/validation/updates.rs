//! UpdateIncident and PostStatusUpdate.

use incident_client::prost_types::Duration as PbDuration;
use incident_client::*;

use super::*;
use crate::support::*;

#[tokio::test]
async fn update_incident_rejects_bad_input() {
    let srv = TestServer::start().await;
    let c = create_component(&srv, "APIs", "").await;
    let gone = deleted_component(&srv, "Legacy").await;
    let created = declare(&srv, valid_incident()).await;
    let id = created.id.clone();
    let mut client = srv.incidents().await;
    // One write makes the etag read at creation stale.
    let current = client
        .update_incident(update_with(&id, &["title"], |i| {
            i.title = "Webhook delays (EU)".into()
        }))
        .await
        .expect("update")
        .into_inner()
        .incident
        .expect("incident");
    assert_ne!(current.etag, created.etag, "etags change on every write");
    let unknown = rid();
    let mut cases = Cases::new(&srv, "UpdateIncident");

    let w = |start: &str, end: Option<&str>| window(Some(ts(start)), end.map(ts));
    let table: Vec<(&str, UpdateIncidentRequest, Rejection)> = vec![
        (
            "missing incident",
            UpdateIncidentRequest::default(),
            Rejection::invalid(&["incident"]),
        ),
        (
            "incident id empty",
            update_with("", &["title"], |i| i.title = "x".into()),
            Rejection::invalid(&["incident.id"]),
        ),
        (
            "incident id garbage",
            update_with("garbage", &["title"], |i| i.title = "x".into()),
            Rejection::invalid(&["incident.id"]),
        ),
        (
            "update_mask names status",
            update_with(&id, &["status"], |i| {
                i.status = IncidentStatus::Resolved as i32
            }),
            Rejection::invalid(&["update_mask"]),
        ),
        (
            "update_mask names kind",
            update_with(&id, &["kind"], |i| {
                i.kind = IncidentKind::Maintenance as i32
            }),
            Rejection::invalid(&["update_mask"]),
        ),
        (
            "update_mask names component_impacts",
            update_with(&id, &["component_impacts"], |i| {
                i.component_impacts = vec![impact_on(&c.id, ImpactLevel::MajorOutage as i32)]
            }),
            Rejection::invalid(&["update_mask"]),
        ),
        (
            "update_mask names status beside a valid path",
            update_with(&id, &["title", "status"], |i| {
                i.title = "New title".into();
                i.status = IncidentStatus::Resolved as i32;
            }),
            Rejection::invalid(&["update_mask"]),
        ),
        (
            "update_mask names an unknown path",
            update_with(&id, &["colour"], |_| {}),
            Rejection::invalid(&["update_mask"]),
        ),
        (
            "update_mask names a sub-field path",
            update_with(&id, &["impact_windows.start_time"], |_| {}),
            Rejection::invalid(&["update_mask"]),
        ),
        (
            "no mask, status set",
            update_with(&id, &[], |i| i.status = IncidentStatus::Resolved as i32),
            Rejection::invalid(&["update_mask"]),
        ),
        (
            "no mask, kind set",
            update_with(&id, &[], |i| i.kind = IncidentKind::Maintenance as i32),
            Rejection::invalid(&["update_mask"]),
        ),
        (
            "no mask, component_impacts set",
            update_with(&id, &[], |i| {
                i.component_impacts = vec![impact_on(&c.id, ImpactLevel::MajorOutage as i32)]
            }),
            Rejection::invalid(&["update_mask"]),
        ),
        (
            "empty title",
            update_with(&id, &["title"], |i| i.title = String::new()),
            Rejection::invalid(&["incident.title"]),
        ),
        (
            "whitespace-only title",
            update_with(&id, &["title"], |i| i.title = " \u{a0} ".into()),
            Rejection::invalid(&["incident.title"]),
        ),
        (
            "title of 201 characters",
            update_with(&id, &["title"], |i| i.title = "x".repeat(201)),
            Rejection::invalid(&["incident.title"]),
        ),
        (
            "summary over 16 KiB",
            update_with(&id, &["summary"], |i| i.summary = "s".repeat(16 * 1024 + 1)),
            Rejection::invalid(&["incident.summary"]),
        ),
        (
            "severity unknown",
            update_with(&id, &["severity"], |i| i.severity = 77),
            Rejection::invalid(&["incident.severity"]),
        ),
        (
            "65 labels",
            update_with(&id, &["labels"], |i| i.labels = labels(65)),
            Rejection::invalid(&["incident.labels"]),
        ),
        (
            "bad label key",
            update_with(&id, &["labels"], |i| i.labels = label("bad key", "v")),
            Rejection::invalid(&["incident.labels[bad key]"]),
        ),
        (
            "impact window without start",
            update_with(&id, &["impact_windows"], |i| {
                i.impact_windows = vec![window(None, Some(ts("2023-08-11T11:00:00Z")))]
            }),
            Rejection::invalid(&["incident.impact_windows[0].start_time"]),
        ),
        (
            "impact window ending before its start",
            update_with(&id, &["impact_windows"], |i| {
                i.impact_windows = vec![w("2023-08-11T11:00:00Z", Some("2023-08-11T10:59:59Z"))]
            }),
            Rejection::invalid(&["incident.impact_windows[0].end_time"]),
        ),
        (
            "second impact window duration longer than its window",
            update_with(&id, &["impact_windows"], |i| {
                i.impact_windows = vec![
                    w("2023-08-11T09:00:00Z", None),
                    ImpactWindow {
                        duration: Some(PbDuration {
                            seconds: 86 * 60,
                            nanos: 0,
                        }),
                        ..w("2023-08-11T10:00:00Z", Some("2023-08-11T11:00:00Z"))
                    },
                ]
            }),
            Rejection::invalid(&["incident.impact_windows[1].duration"]),
        ),
        (
            "impact window on a deleted component",
            update_with(&id, &["impact_windows"], |i| {
                i.impact_windows = vec![ImpactWindow {
                    component_ids: vec![gone.id.clone()],
                    ..w("2023-08-11T10:00:00Z", None)
                }]
            }),
            Rejection::invalid(&["incident.impact_windows[0].component_ids[0]"]),
        ),
        (
            "impact window on an unknown component",
            update_with(&id, &["impact_windows"], |i| {
                i.impact_windows = vec![ImpactWindow {
                    component_ids: vec![unknown.clone()],
                    ..w("2023-08-11T10:00:00Z", None)
                }]
            }),
            Rejection::invalid(&["incident.impact_windows[0].component_ids[0]"]),
        ),
        (
            "scheduled end before scheduled start",
            update_with(&id, &["scheduled_start_time", "scheduled_end_time"], |i| {
                i.scheduled_start_time = Some(ts("2030-01-01T12:00:00Z"));
                i.scheduled_end_time = Some(ts("2030-01-01T11:00:00Z"));
            }),
            Rejection::invalid(&["incident.scheduled_end_time"]),
        ),
        (
            "declare_time in the future",
            update_with(&id, &["declare_time"], |i| {
                i.declare_time = Some(from_now(60 * 60))
            }),
            Rejection::invalid(&["incident.declare_time"]),
        ),
        (
            "declare_time cleared",
            update_with(&id, &["declare_time"], |_| {}),
            Rejection::invalid(&["incident.declare_time"]),
        ),
        (
            "identify_time in the future",
            update_with(&id, &["identify_time"], |i| {
                i.identify_time = Some(from_now(60 * 60))
            }),
            Rejection::invalid(&["incident.identify_time"]),
        ),
        (
            "mitigate_time in the future",
            update_with(&id, &["mitigate_time"], |i| {
                i.mitigate_time = Some(from_now(60 * 60))
            }),
            Rejection::invalid(&["incident.mitigate_time"]),
        ),
        (
            "resolve_time in the future",
            update_with(&id, &[], |i| i.resolve_time = Some(from_now(60 * 60))),
            Rejection::invalid(&["incident.resolve_time"]),
        ),
        (
            "next_update_time with bad nanos",
            update_with(&id, &["next_update_time"], |i| {
                i.next_update_time = Some(bad_nanos())
            }),
            Rejection::invalid(&["incident.next_update_time"]),
        ),
        (
            "request_id not a UUID",
            UpdateIncidentRequest {
                request_id: "42".into(),
                ..update_with(&id, &["title"], |i| i.title = "x".into())
            },
            Rejection::invalid(&["request_id"]),
        ),
        (
            "stale etag",
            update_with(&id, &["title"], |i| {
                i.title = "Stale write".into();
                i.etag = created.etag.clone();
            }),
            Rejection::stale_etag("incident_id", &id),
        ),
        (
            "unknown incident",
            update_with(&unknown, &["title"], |i| i.title = "x".into()),
            Rejection::not_found("incident_id", &unknown),
        ),
    ];
    for (name, req, want) in table {
        cases.reject(name, want, client.update_incident(req)).await;
    }
    cases
        .accept(
            "current etag",
            client.update_incident(update_with(&id, &["title"], |i| {
                i.title = "Webhook delays (EU, US)".into();
                i.etag = current.etag.clone();
            })),
        )
        .await;
    cases.finish();
}

#[tokio::test]
async fn post_status_update_rejects_bad_input() {
    let srv = TestServer::start().await;
    let c = create_component(&srv, "APIs", "").await;
    let gone = deleted_component(&srv, "Legacy").await;
    let inc = declare(&srv, valid_incident()).await;
    let mnt = maintenance(&srv).await;
    let id = inc.id.clone();
    let unknown = rid();
    let mut client = srv.incidents().await;
    let mut cases = Cases::new(&srv, "PostStatusUpdate");
    let hour_ago = from_now(60 * -60);

    let table: Vec<(&str, PostStatusUpdateRequest, Rejection)> = vec![
        (
            "incident_id empty",
            post_with("", |_| {}),
            Rejection::invalid(&["incident_id"]),
        ),
        (
            "incident_id garbage",
            post_with("INC-1x", |_| {}),
            Rejection::invalid(&["incident_id"]),
        ),
        (
            "status unknown (9)",
            post_with(&id, |r| r.status = 9),
            Rejection::invalid(&["status"]),
        ),
        (
            "status negative",
            post_with(&id, |r| r.status = -1),
            Rejection::invalid(&["status"]),
        ),
        (
            "empty message",
            post_with(&id, |r| r.message = String::new()),
            Rejection::invalid(&["message"]),
        ),
        (
            "whitespace-only message",
            post_with(&id, |r| r.message = " \n\t ".into()),
            Rejection::invalid(&["message"]),
        ),
        (
            "message over 16 KiB",
            post_with(&id, |r| r.message = "m".repeat(16 * 1024 + 1)),
            Rejection::invalid(&["message"]),
        ),
        (
            "component impact id not a UUID",
            post_with(&id, |r| {
                r.component_impacts = vec![impact_on("apis", ImpactLevel::MajorOutage as i32)]
            }),
            Rejection::invalid(&["component_impacts[0].component_id"]),
        ),
        (
            "component impact on an unknown component",
            post_with(&id, |r| {
                r.component_impacts = vec![impact_on(&unknown, ImpactLevel::MajorOutage as i32)]
            }),
            Rejection::invalid(&["component_impacts[0].component_id"]),
        ),
        (
            "component impact on a deleted component",
            post_with(&id, |r| {
                r.component_impacts = vec![impact_on(&gone.id, ImpactLevel::MajorOutage as i32)]
            }),
            Rejection::invalid(&["component_impacts[0].component_id"]),
        ),
        (
            "component listed twice",
            post_with(&id, |r| {
                r.component_impacts = vec![
                    impact_on(&c.id, ImpactLevel::MajorOutage as i32),
                    impact_on(&c.id, ImpactLevel::Operational as i32),
                ]
            }),
            Rejection::invalid(&["component_impacts[1].component_id"]),
        ),
        (
            "component impact level unspecified",
            post_with(&id, |r| r.component_impacts = vec![impact_on(&c.id, 0)]),
            Rejection::invalid(&["component_impacts[0].impact"]),
        ),
        (
            "component impact level unknown",
            post_with(&id, |r| r.component_impacts = vec![impact_on(&c.id, 42)]),
            Rejection::invalid(&["component_impacts[0].impact"]),
        ),
        (
            "visibility unknown",
            post_with(&id, |r| r.visibility = 3),
            Rejection::invalid(&["visibility"]),
        ),
        (
            "occur_time in the future",
            post_with(&id, |r| r.occur_time = Some(from_now(60 * 60))),
            Rejection::invalid(&["occur_time"]),
        ),
        (
            "occur_time with bad nanos",
            post_with(&id, |r| r.occur_time = Some(bad_nanos())),
            Rejection::invalid(&["occur_time"]),
        ),
        (
            "next_update_time before the backfilled post time",
            post_with(&id, |r| {
                r.occur_time = Some(hour_ago);
                r.next_update_time = Some(from_now(60 * -90));
            }),
            Rejection::invalid(&["next_update_time"]),
        ),
        (
            "next_update_time equal to the post time",
            post_with(&id, |r| {
                r.occur_time = Some(hour_ago);
                r.next_update_time = Some(hour_ago);
            }),
            Rejection::invalid(&["next_update_time"]),
        ),
        (
            "next_update_time in the past, post time now",
            post_with(&id, |r| r.next_update_time = Some(from_now(60 * -5))),
            Rejection::invalid(&["next_update_time"]),
        ),
        (
            "next_update_time after 2262",
            post_with(&id, |r| r.next_update_time = Some(year_2300())),
            Rejection::invalid(&["next_update_time"]),
        ),
        (
            "request_id not a UUID",
            post_with(&id, |r| r.request_id = "post-1".into()),
            Rejection::invalid(&["request_id"]),
        ),
        (
            "maintenance status posted on an incident",
            post_with(&id, |r| r.status = IncidentStatus::InProgress as i32),
            Rejection::wrong_kind("status"),
        ),
        (
            "maintenance completion posted on an incident",
            post_with(&id, |r| r.status = IncidentStatus::Completed as i32),
            Rejection::wrong_kind("status"),
        ),
        (
            "incident status posted on a maintenance",
            post_with(&mnt.id, |r| r.status = IncidentStatus::Resolved as i32),
            Rejection::wrong_kind("status"),
        ),
        (
            "unknown incident",
            post_with(&unknown, |_| {}),
            Rejection::not_found("incident_id", &unknown),
        ),
    ];
    for (name, req, want) in table {
        cases
            .reject(name, want, client.post_status_update(req))
            .await;
    }
    cases
        .accept(
            "message of exactly 16 KiB, next update promised",
            client.post_status_update(post_with(&id, |r| {
                r.message = "m".repeat(16 * 1024);
                r.next_update_time = Some(from_now(60 * 30));
                r.component_impacts = vec![impact_on(&c.id, ImpactLevel::PartialOutage as i32)];
            })),
        )
        .await;
    cases.finish();
}

/// Every error carries the ids involved in its metadata: a status of the
/// wrong kind posted on incident X involves X.
#[tokio::test]
async fn wrong_kind_status_names_the_incident_in_metadata() {
    let srv = TestServer::start().await;
    let inc = declare(&srv, valid_incident()).await;
    let mut cases = Cases::new(&srv, "INVALID_TRANSITION metadata");
    cases
        .reject(
            "maintenance status on an incident names incident_id",
            Rejection::wrong_kind("status").meta("incident_id", &inc.id),
            srv.incidents()
                .await
                .post_status_update(post_with(&inc.id, |r| {
                    r.status = IncidentStatus::Scheduled as i32
                })),
        )
        .await;
    cases.finish();
}

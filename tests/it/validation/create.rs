//! CreateIncident: every bad field, values at the limits, all bad fields at once.

use incident_client::prost_types::Duration as PbDuration;
use incident_client::*;

use super::*;
use crate::support::*;

#[tokio::test]
async fn create_incident_rejects_every_bad_field() {
    let srv = TestServer::start().await;
    let live = create_component(&srv, "APIs", "").await;
    let gone = deleted_component(&srv, "Legacy").await;
    let unknown = rid();
    let mut client = srv.incidents().await;

    let long_key = "k".repeat(64);
    let cases: Vec<(&str, CreateIncidentRequest, Rejection)> = vec![
        (
            "missing incident",
            CreateIncidentRequest::default(),
            Rejection::invalid(&["incident"]),
        ),
        (
            "kind unspecified",
            create_with(|i| i.kind = 0),
            Rejection::invalid(&["incident.kind"]),
        ),
        (
            "kind unknown (99)",
            create_with(|i| i.kind = 99),
            Rejection::invalid(&["incident.kind"]),
        ),
        (
            "kind negative (-1)",
            create_with(|i| i.kind = -1),
            Rejection::invalid(&["incident.kind"]),
        ),
        (
            "severity unknown (6)",
            create_with(|i| i.severity = 6),
            Rejection::invalid(&["incident.severity"]),
        ),
        (
            "status unknown (9)",
            create_with(|i| i.status = 9),
            Rejection::invalid(&["incident.status"]),
        ),
        (
            "empty title",
            create_with(|i| i.title = String::new()),
            Rejection::invalid(&["incident.title"]),
        ),
        (
            "whitespace-only title",
            create_with(|i| i.title = "   ".into()),
            Rejection::invalid(&["incident.title"]),
        ),
        (
            "title of 201 characters",
            create_with(|i| i.title = "x".repeat(201)),
            Rejection::invalid(&["incident.title"]),
        ),
        (
            "title of 201 two-byte characters",
            create_with(|i| i.title = "é".repeat(201)),
            Rejection::invalid(&["incident.title"]),
        ),
        (
            "title with a control character",
            create_with(|i| i.title = "Web\u{7}hooks".into()),
            Rejection::invalid(&["incident.title"]),
        ),
        (
            "summary over 16 KiB",
            create_with(|i| i.summary = "s".repeat(16 * 1024 + 1)),
            Rejection::invalid(&["incident.summary"]),
        ),
        (
            "summary over 16 KiB in two-byte characters",
            create_with(|i| i.summary = "é".repeat(8 * 1024 + 1)),
            Rejection::invalid(&["incident.summary"]),
        ),
        (
            "257 component impacts",
            create_with(|i| {
                i.component_impacts = (0..257)
                    .map(|_| impact_on(&rid(), ImpactLevel::MajorOutage as i32))
                    .collect()
            }),
            Rejection::invalid(&["incident.component_impacts"]),
        ),
        (
            "257 roles",
            create_with(|i| {
                i.roles = (0..257)
                    .map(|n| RoleAssignment {
                        role: format!("role{n}"),
                        assignee: "alice".into(),
                    })
                    .collect()
            }),
            Rejection::invalid(&["incident.roles"]),
        ),
        (
            "65 labels",
            create_with(|i| i.labels = labels(65)),
            Rejection::invalid(&["incident.labels"]),
        ),
        (
            "label key with a space",
            create_with(|i| i.labels = label("bad key", "v")),
            Rejection::invalid(&["incident.labels[bad key]"]),
        ),
        (
            "label key with a colon",
            create_with(|i| i.labels = label("team:core", "v")),
            Rejection::invalid(&["incident.labels[team:core]"]),
        ),
        (
            "empty label key",
            create_with(|i| i.labels = label("", "v")),
            Rejection::invalid(&["incident.labels[]"]),
        ),
        (
            "label key of 64 characters",
            create_with(|i| i.labels = label(&long_key, "v")),
            Rejection::invalid(&[&format!("incident.labels[{long_key}]")]),
        ),
        (
            "label value of 257 characters",
            create_with(|i| i.labels = label("team", &"v".repeat(257))),
            Rejection::invalid(&["incident.labels[team]"]),
        ),
        (
            "component impact id not a UUID",
            create_with(|i| {
                i.component_impacts = vec![impact_on("not-a-uuid", ImpactLevel::MajorOutage as i32)]
            }),
            Rejection::invalid(&["incident.component_impacts[0].component_id"]),
        ),
        (
            "component impact on an unknown component",
            create_with(|i| {
                i.component_impacts = vec![impact_on(&unknown, ImpactLevel::MajorOutage as i32)]
            }),
            Rejection::invalid(&["incident.component_impacts[0].component_id"]),
        ),
        (
            "component impact on a deleted component",
            create_with(|i| {
                i.component_impacts = vec![impact_on(&gone.id, ImpactLevel::MajorOutage as i32)]
            }),
            Rejection::invalid(&["incident.component_impacts[0].component_id"]),
        ),
        (
            "second component impact on an unknown component",
            create_with(|i| {
                i.component_impacts = vec![
                    impact_on(&live.id, ImpactLevel::MajorOutage as i32),
                    impact_on(&unknown, ImpactLevel::MajorOutage as i32),
                ]
            }),
            Rejection::invalid(&["incident.component_impacts[1].component_id"]),
        ),
        (
            "component listed twice",
            create_with(|i| {
                i.component_impacts = vec![
                    impact_on(&live.id, ImpactLevel::MajorOutage as i32),
                    impact_on(&live.id, ImpactLevel::PartialOutage as i32),
                ]
            }),
            Rejection::invalid(&["incident.component_impacts[1].component_id"]),
        ),
        (
            "component impact level unspecified",
            create_with(|i| i.component_impacts = vec![impact_on(&live.id, 0)]),
            Rejection::invalid(&["incident.component_impacts[0].impact"]),
        ),
        (
            "component impact level unknown (6)",
            create_with(|i| i.component_impacts = vec![impact_on(&live.id, 6)]),
            Rejection::invalid(&["incident.component_impacts[0].impact"]),
        ),
        (
            "impact window without start",
            create_with(|i| {
                i.impact_windows = vec![window(None, Some(ts("2023-08-11T11:00:00Z")))]
            }),
            Rejection::invalid(&["incident.impact_windows[0].start_time"]),
        ),
        (
            "impact window ending before its start",
            create_with(|i| {
                i.impact_windows = vec![window(
                    Some(ts("2023-08-11T11:00:00Z")),
                    Some(ts("2023-08-11T10:00:00Z")),
                )]
            }),
            Rejection::invalid(&["incident.impact_windows[0].end_time"]),
        ),
        (
            "impact window duration longer than the window",
            create_with(|i| {
                i.impact_windows = vec![ImpactWindow {
                    duration: Some(PbDuration {
                        seconds: 2 * 3600,
                        nanos: 0,
                    }),
                    ..window(
                        Some(ts("2023-08-11T10:00:00Z")),
                        Some(ts("2023-08-11T11:00:00Z")),
                    )
                }]
            }),
            Rejection::invalid(&["incident.impact_windows[0].duration"]),
        ),
        (
            "impact window negative duration",
            create_with(|i| {
                i.impact_windows = vec![ImpactWindow {
                    duration: Some(PbDuration {
                        seconds: -60,
                        nanos: 0,
                    }),
                    ..window(
                        Some(ts("2023-08-11T10:00:00Z")),
                        Some(ts("2023-08-11T11:00:00Z")),
                    )
                }]
            }),
            Rejection::invalid(&["incident.impact_windows[0].duration"]),
        ),
        (
            "impact window impact unspecified",
            create_with(|i| {
                i.impact_windows = vec![ImpactWindow {
                    impact: 0,
                    ..window(Some(ts("2023-08-11T10:00:00Z")), None)
                }]
            }),
            Rejection::invalid(&["incident.impact_windows[0].impact"]),
        ),
        (
            "impact window start before 1678",
            create_with(|i| i.impact_windows = vec![window(Some(year_1500()), None)]),
            Rejection::invalid(&["incident.impact_windows[0].start_time"]),
        ),
        (
            "impact window end after 2262",
            create_with(|i| {
                i.impact_windows = vec![window(Some(ts("2023-08-11T10:00:00Z")), Some(year_2300()))]
            }),
            Rejection::invalid(&["incident.impact_windows[0].end_time"]),
        ),
        (
            "impact window duration out of range",
            create_with(|i| {
                i.impact_windows = vec![ImpactWindow {
                    duration: Some(PbDuration {
                        seconds: i64::MAX,
                        nanos: 0,
                    }),
                    ..window(Some(ts("2023-08-11T10:00:00Z")), None)
                }]
            }),
            Rejection::invalid(&["incident.impact_windows[0].duration"]),
        ),
        (
            "scheduled start after 2262",
            create_with(|i| {
                i.kind = IncidentKind::Maintenance as i32;
                i.scheduled_start_time = Some(year_2300());
            }),
            Rejection::invalid(&["incident.scheduled_start_time"]),
        ),
        (
            "impact window start with bad nanos",
            create_with(|i| i.impact_windows = vec![window(Some(bad_nanos()), None)]),
            Rejection::invalid(&["incident.impact_windows[0].start_time"]),
        ),
        (
            "impact window component id not a UUID",
            create_with(|i| {
                i.impact_windows = vec![ImpactWindow {
                    component_ids: vec!["nope".into()],
                    ..window(Some(ts("2023-08-11T10:00:00Z")), None)
                }]
            }),
            Rejection::invalid(&["incident.impact_windows[0].component_ids[0]"]),
        ),
        (
            "impact window on an unknown component",
            create_with(|i| {
                i.impact_windows = vec![ImpactWindow {
                    component_ids: vec![unknown.clone()],
                    ..window(Some(ts("2023-08-11T10:00:00Z")), None)
                }]
            }),
            Rejection::invalid(&["incident.impact_windows[0].component_ids[0]"]),
        ),
        (
            "scheduled end before scheduled start",
            create_with(|i| {
                i.kind = IncidentKind::Maintenance as i32;
                i.scheduled_start_time = Some(ts("2030-01-01T12:00:00Z"));
                i.scheduled_end_time = Some(ts("2030-01-01T10:00:00Z"));
            }),
            Rejection::invalid(&["incident.scheduled_end_time"]),
        ),
        (
            "role without an assignee",
            create_with(|i| {
                i.roles = vec![RoleAssignment {
                    role: "incident_commander".into(),
                    assignee: String::new(),
                }]
            }),
            Rejection::invalid(&["incident.roles[0].assignee"]),
        ),
        (
            "occur_time in the future",
            CreateIncidentRequest {
                occur_time: Some(from_now(60 * 60)),
                ..create_with(|_| {})
            },
            Rejection::invalid(&["occur_time"]),
        ),
        (
            "occur_time with bad nanos",
            CreateIncidentRequest {
                occur_time: Some(bad_nanos()),
                ..create_with(|_| {})
            },
            Rejection::invalid(&["occur_time"]),
        ),
        (
            "request_id not a UUID",
            CreateIncidentRequest {
                request_id: "retry-1".into(),
                ..create_with(|_| {})
            },
            Rejection::invalid(&["request_id"]),
        ),
        (
            "maintenance status on a new incident",
            create_with(|i| i.status = IncidentStatus::InProgress as i32),
            Rejection::wrong_kind("incident.status"),
        ),
        (
            "incident status on a new maintenance",
            create_with(|i| {
                i.kind = IncidentKind::Maintenance as i32;
                i.status = IncidentStatus::Identified as i32;
            }),
            Rejection::wrong_kind("incident.status"),
        ),
    ];

    let mut cases_run = Cases::new(&srv, "CreateIncident");
    for (name, req, want) in cases {
        cases_run
            .reject(name, want, client.create_incident(req))
            .await;
    }
    // Nothing rejected consumed a reference number.
    if let Some(r) = cases_run
        .accept(
            "valid create after the rejections",
            client.create_incident(create_with(|_| {})),
        )
        .await
    {
        let reference = r.incident.map(|i| i.reference).unwrap_or_default();
        if reference != "INC-1" {
            cases_run.fail(
                "valid create after the rejections",
                format!("reference {reference:?}, want \"INC-1\""),
            );
        }
    }
    cases_run.finish();
}

#[tokio::test]
async fn create_incident_accepts_values_at_the_limits() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let mut cases = Cases::new(&srv, "CreateIncident limits");
    let key63 = "k".repeat(63);
    let accepted: Vec<(&str, CreateIncidentRequest)> = vec![
        (
            "title of exactly 200 characters",
            create_with(|i| i.title = "x".repeat(200)),
        ),
        (
            "title of exactly 200 two-byte characters",
            create_with(|i| i.title = "é".repeat(200)),
        ),
        (
            "title of 200 characters padded with spaces",
            create_with(|i| i.title = format!("  {}  ", "x".repeat(200))),
        ),
        (
            "summary of exactly 16 KiB",
            create_with(|i| i.summary = "s".repeat(16 * 1024)),
        ),
        ("exactly 64 labels", create_with(|i| i.labels = labels(64))),
        (
            "label key of 63 characters",
            create_with(|i| i.labels = label(&key63, "v")),
        ),
        (
            "label value of 256 characters",
            create_with(|i| i.labels = label("team", &"v".repeat(256))),
        ),
        (
            "severity unspecified (not assessed)",
            create_with(|i| i.severity = 0),
        ),
        (
            "maintenance created in progress",
            create_with(|i| {
                i.kind = IncidentKind::Maintenance as i32;
                i.status = IncidentStatus::InProgress as i32;
            }),
        ),
        (
            "impact window duration equal to the window",
            create_with(|i| {
                i.impact_windows = vec![ImpactWindow {
                    duration: Some(PbDuration {
                        seconds: 3600,
                        nanos: 0,
                    }),
                    ..window(
                        Some(ts("2023-08-11T10:00:00Z")),
                        Some(ts("2023-08-11T11:00:00Z")),
                    )
                }]
            }),
        ),
        (
            "occur_time an hour ago",
            CreateIncidentRequest {
                occur_time: Some(from_now(60 * -60)),
                ..create_with(|_| {})
            },
        ),
    ];
    for (name, req) in accepted {
        let title = req.incident.as_ref().map(|i| i.title.trim().to_owned());
        if let Some(r) = cases.accept(name, client.create_incident(req)).await {
            let got = r.incident.map(|i| i.title);
            if got != title {
                cases.fail(name, format!("title {got:?}, want {title:?}"));
            }
        }
    }
    cases.finish();
}

#[tokio::test]
async fn every_bad_field_is_named_at_once() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    assert_rejected(
        &srv,
        Rejection::invalid(&[
            "incident.title",
            "incident.kind",
            "incident.severity",
            "incident.labels[bad key]",
            "occur_time",
            "request_id",
        ]),
        client.create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                title: " ".into(),
                kind: 0,
                severity: 42,
                labels: label("bad key", "v"),
                ..Default::default()
            }),
            occur_time: Some(from_now(60 * 60)),
            request_id: "not-a-uuid".into(),
        }),
    )
    .await;
}

/// INVALID_ARGUMENT carries a BadRequest naming every bad field: a missing
/// resource message must not hide a bad request_id sent beside it.
#[tokio::test]
async fn a_missing_message_does_not_hide_a_bad_request_id() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let mut components = srv.components().await;
    let mut cases = Cases::new(&srv, "missing message beside a bad request_id");
    let bad = "not-a-uuid".to_owned();
    cases
        .reject(
            "create incident without incident and with a bad request_id names both",
            Rejection::invalid(&["incident", "request_id"]),
            client.create_incident(CreateIncidentRequest {
                request_id: bad.clone(),
                ..Default::default()
            }),
        )
        .await;
    cases
        .reject(
            "update incident without incident and with a bad request_id names both",
            Rejection::invalid(&["incident", "request_id"]),
            client.update_incident(UpdateIncidentRequest {
                request_id: bad.clone(),
                ..Default::default()
            }),
        )
        .await;
    cases
        .reject(
            "create component without component and with a bad request_id names both",
            Rejection::invalid(&["component", "request_id"]),
            components.create_component(CreateComponentRequest {
                request_id: bad.clone(),
                ..Default::default()
            }),
        )
        .await;
    cases
        .reject(
            "update component without component and with a bad request_id names both",
            Rejection::invalid(&["component", "request_id"]),
            components.update_component(UpdateComponentRequest {
                request_id: bad.clone(),
                ..Default::default()
            }),
        )
        .await;
    cases.finish();
}

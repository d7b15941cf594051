//! Bad input, rule by rule. Every rejected request must answer the documented
//! gRPC code, the ErrorInfo reason (domain `incidentd`), the bad field in
//! BadRequest (or the PreconditionFailure for FAILED_PRECONDITION), the ids
//! involved in the ErrorInfo metadata, and leave every row of the database as
//! it was (DESIGN.md §2 "Errors": a rejected request changes nothing).
//!
//! Cases are tables run against one server per test; every failing case is
//! reported by name, all of them at once.

mod common;

use std::fmt::Debug;
use std::future::Future;

use chrono::{DateTime, TimeDelta, Utc};
use common::{TestServer, create_component, create_incident, mask};
use incident_client::prost_types::{Duration as PbDuration, Timestamp};
use incident_client::tonic::{Code, Response, Status};
use incident_client::*;

// ---------------------------------------------------------------------------
// What a rejection must look like, and the runner of the tables.
// ---------------------------------------------------------------------------

/// The expected answer to a bad request.
#[derive(Clone, Debug)]
struct Want {
    code: Code,
    reason: &'static str,
    /// A field the BadRequest must name.
    field: Option<String>,
    /// A (type, subject) the PreconditionFailure must hold.
    precondition: Option<(String, String)>,
    /// Entries the ErrorInfo metadata must hold.
    metadata: Vec<(&'static str, String)>,
}

impl Want {
    fn new(code: Code, reason: &'static str) -> Want {
        Want {
            code,
            reason,
            field: None,
            precondition: None,
            metadata: Vec::new(),
        }
    }

    /// INVALID_ARGUMENT FIELD_INVALID naming `field`.
    fn invalid(field: &str) -> Want {
        Want {
            field: Some(field.to_owned()),
            ..Want::new(Code::InvalidArgument, "FIELD_INVALID")
        }
    }

    /// INVALID_ARGUMENT PAGE_TOKEN_INVALID naming `page_token`.
    fn page_token() -> Want {
        Want {
            field: Some("page_token".to_owned()),
            ..Want::new(Code::InvalidArgument, "PAGE_TOKEN_INVALID")
        }
    }

    fn not_found(key: &'static str, id: &str) -> Want {
        Want::new(Code::NotFound, "NOT_FOUND").meta(key, id)
    }

    fn stale_etag(key: &'static str, id: &str) -> Want {
        Want::new(Code::Aborted, "ETAG_MISMATCH").meta(key, id)
    }

    fn already_exists(key: &'static str, id: &str) -> Want {
        Want::new(Code::AlreadyExists, "ALREADY_EXISTS").meta(key, id)
    }

    /// FAILED_PRECONDITION with this reason and PreconditionFailure violation.
    fn failed(reason: &'static str, kind: &str, subject: &str) -> Want {
        Want {
            precondition: Some((kind.to_owned(), subject.to_owned())),
            ..Want::new(Code::FailedPrecondition, reason)
        }
    }

    fn wrong_kind(subject: &str) -> Want {
        Want::failed("INVALID_TRANSITION", "STATUS_KIND", subject)
    }

    fn deleted(incident_id: &str) -> Want {
        Want::failed(
            "INCIDENT_DELETED",
            "INCIDENT_DELETED",
            &format!("incidents/{incident_id}"),
        )
        .meta("incident_id", incident_id)
    }

    fn has_dependents(component_id: &str) -> Want {
        Want::failed(
            "HAS_DEPENDENTS",
            "HAS_DEPENDENTS",
            &format!("components/{component_id}"),
        )
        .meta("component_id", component_id)
    }

    fn meta(mut self, key: &'static str, value: &str) -> Want {
        self.metadata.push((key, value.to_owned()));
        self
    }
}

fn clip(s: String) -> String {
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

/// Compares a status with what is wanted; describes every difference.
fn verify<T: Debug>(result: Result<Response<T>, Status>, want: &Want) -> Result<(), String> {
    let status = match result {
        Ok(r) => {
            return Err(format!(
                "accepted, wanted {:?} {}: {}",
                want.code,
                want.reason,
                clip(format!("{:?}", r.get_ref()))
            ));
        }
        Err(s) => s,
    };
    let d = common::details(&status);
    let domain = {
        use tonic_types::StatusExt;
        status
            .get_error_details()
            .error_info()
            .map(|i| i.domain.clone())
    };
    let mut errs = Vec::new();
    if d.code != want.code {
        errs.push(format!("code {:?}, want {:?}", d.code, want.code));
    }
    match domain.as_deref() {
        None => errs.push("no ErrorInfo".to_owned()),
        Some("incidentd") => {}
        Some(other) => errs.push(format!("ErrorInfo domain {other:?}, want \"incidentd\"")),
    }
    if d.reason != want.reason {
        errs.push(format!("reason {:?}, want {:?}", d.reason, want.reason));
    }
    for (k, v) in &want.metadata {
        if d.metadata.get(*k) != Some(v) {
            errs.push(format!(
                "metadata {k} = {:?}, want {v:?}",
                d.metadata.get(*k)
            ));
        }
    }
    if want.code == Code::InvalidArgument && d.bad_fields.is_empty() {
        errs.push("INVALID_ARGUMENT without BadRequest".to_owned());
    }
    if let Some(f) = &want.field
        && !d.bad_fields.contains(f)
    {
        errs.push(format!("BadRequest names {:?}, want {f:?}", d.bad_fields));
    }
    if want.code == Code::FailedPrecondition && d.preconditions.is_empty() {
        errs.push("FAILED_PRECONDITION without PreconditionFailure".to_owned());
    }
    if let Some(p) = &want.precondition
        && !d.preconditions.contains(p)
    {
        errs.push(format!(
            "PreconditionFailure holds {:?}, want {p:?}",
            d.preconditions
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} (message: {:?})",
            errs.join("; "),
            clip(status.message().to_owned())
        ))
    }
}

/// Runs named cases against one server and collects every failure.
struct Cases<'a> {
    srv: &'a TestServer,
    suite: &'static str,
    run: usize,
    failures: Vec<String>,
}

impl<'a> Cases<'a> {
    fn new(srv: &'a TestServer, suite: &'static str) -> Self {
        Cases {
            srv,
            suite,
            run: 0,
            failures: Vec::new(),
        }
    }

    /// The call must be rejected as `want` says and change nothing.
    async fn reject<T: Debug>(
        &mut self,
        name: &str,
        want: Want,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) {
        self.run += 1;
        let before = self.srv.db_state().await;
        let result = call.await;
        let after = self.srv.db_state().await;
        let mut problems = Vec::new();
        if let Err(e) = verify(result, &want) {
            problems.push(e);
        }
        if before != after {
            problems.push("the database changed".to_owned());
        }
        if !problems.is_empty() {
            self.failures
                .push(format!("[{name}] {}", problems.join("; ")));
        }
    }

    /// The call must succeed.
    async fn accept<T>(
        &mut self,
        name: &str,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Option<T> {
        self.run += 1;
        match call.await {
            Ok(r) => Some(r.into_inner()),
            Err(s) => {
                self.failures.push(format!(
                    "[{name}] rejected: {:?} {:?} {:?}",
                    s.code(),
                    clip(s.message().to_owned()),
                    common::details(&s).bad_fields
                ));
                None
            }
        }
    }

    /// Records a failed side check.
    fn fail(&mut self, name: &str, what: String) {
        self.failures.push(format!("[{name}] {what}"));
    }

    #[track_caller]
    fn finish(self) {
        println!("{}: {} cases", self.suite, self.run);
        assert!(
            self.failures.is_empty(),
            "{}: {} of {} cases failed:\n  {}",
            self.suite,
            self.failures.len(),
            self.run,
            self.failures.join("\n  ")
        );
    }
}

// ---------------------------------------------------------------------------
// Fixtures.
// ---------------------------------------------------------------------------

fn ts(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn at(s: &str) -> Timestamp {
    ts(DateTime::parse_from_rfc3339(s)
        .expect("rfc3339")
        .with_timezone(&Utc))
}

fn minutes_from_now(m: i64) -> Timestamp {
    ts(Utc::now() + TimeDelta::minutes(m))
}

fn bad_nanos() -> Timestamp {
    Timestamp {
        seconds: 0,
        nanos: -1,
    }
}

/// 2300-01-01: a valid Timestamp the store (i64 nanoseconds) cannot hold.
fn year_2300() -> Timestamp {
    Timestamp {
        seconds: 10_413_792_000,
        nanos: 0,
    }
}

/// 1500-01-01: likewise, before 1678.
fn year_1500() -> Timestamp {
    Timestamp {
        seconds: -14_831_769_600,
        nanos: 0,
    }
}

fn unknown_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn labels(n: usize) -> std::collections::BTreeMap<String, String> {
    (0..n).map(|i| (format!("k{i}"), "v".to_owned())).collect()
}

fn label(k: &str, v: &str) -> std::collections::BTreeMap<String, String> {
    [(k.to_owned(), v.to_owned())].into_iter().collect()
}

fn impact(component_id: &str, level: i32) -> ComponentImpact {
    ComponentImpact {
        component_id: component_id.to_owned(),
        impact: level,
    }
}

fn window(start: Option<Timestamp>, end: Option<Timestamp>) -> ImpactWindow {
    ImpactWindow {
        start_time: start,
        end_time: end,
        impact: ImpactLevel::DegradedPerformance as i32,
        ..Default::default()
    }
}

/// A valid incident to create.
fn valid_incident() -> Incident {
    Incident {
        title: "Webhook delays".into(),
        kind: IncidentKind::Incident as i32,
        severity: Severity::P2 as i32,
        ..Default::default()
    }
}

/// A create request: the valid incident, changed by `f`.
fn create_with(f: impl FnOnce(&mut Incident)) -> CreateIncidentRequest {
    let mut i = valid_incident();
    f(&mut i);
    CreateIncidentRequest {
        incident: Some(i),
        ..Default::default()
    }
}

/// An update request for `id` with this mask (none if empty), changed by `f`.
fn update_with(id: &str, paths: &[&str], f: impl FnOnce(&mut Incident)) -> UpdateIncidentRequest {
    let mut i = Incident {
        id: id.to_owned(),
        ..Default::default()
    };
    f(&mut i);
    UpdateIncidentRequest {
        incident: Some(i),
        update_mask: if paths.is_empty() { None } else { mask(paths) },
        request_id: String::new(),
    }
}

/// A valid "Update" post on `id`, changed by `f`.
fn post_with(id: &str, f: impl FnOnce(&mut PostStatusUpdateRequest)) -> PostStatusUpdateRequest {
    let mut r = PostStatusUpdateRequest {
        incident_id: id.to_owned(),
        message: "Still investigating".into(),
        ..Default::default()
    };
    f(&mut r);
    r
}

async fn deleted_component(srv: &TestServer, name: &str) -> Component {
    let c = create_component(srv, name, "").await;
    srv.components()
        .await
        .delete_component(DeleteComponentRequest {
            id: c.id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete component")
        .into_inner()
        .component
        .expect("component")
}

async fn declare(srv: &TestServer, incident: Incident) -> Incident {
    create_incident(&mut srv.incidents().await, incident).await
}

async fn maintenance(srv: &TestServer) -> Incident {
    declare(
        srv,
        Incident {
            title: "Database upgrade".into(),
            kind: IncidentKind::Maintenance as i32,
            ..Default::default()
        },
    )
    .await
}

/// The same base64url token with one character changed in the middle.
fn tamper(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// A token shaped like the server's (base64url of a 16-byte tag and a JSON
/// body) but signed by nobody.
fn forged_token() -> String {
    use base64::Engine;
    let mut raw = vec![0u8; 16];
    raw.extend_from_slice(br#"{"f":"000000000000000000000000","c":{"create_time":0,"id":"x"}}"#);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

// ---------------------------------------------------------------------------
// CreateIncident.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn create_incident_rejects_every_bad_field() {
    let srv = TestServer::start().await;
    let live = create_component(&srv, "APIs", "").await;
    let gone = deleted_component(&srv, "Legacy").await;
    let unknown = unknown_id();
    let mut client = srv.incidents().await;

    let long_key = "k".repeat(64);
    let cases: Vec<(&str, CreateIncidentRequest, Want)> = vec![
        (
            "missing incident",
            CreateIncidentRequest::default(),
            Want::invalid("incident"),
        ),
        (
            "kind unspecified",
            create_with(|i| i.kind = 0),
            Want::invalid("incident.kind"),
        ),
        (
            "kind unknown (99)",
            create_with(|i| i.kind = 99),
            Want::invalid("incident.kind"),
        ),
        (
            "kind negative (-1)",
            create_with(|i| i.kind = -1),
            Want::invalid("incident.kind"),
        ),
        (
            "severity unknown (6)",
            create_with(|i| i.severity = 6),
            Want::invalid("incident.severity"),
        ),
        (
            "status unknown (9)",
            create_with(|i| i.status = 9),
            Want::invalid("incident.status"),
        ),
        (
            "empty title",
            create_with(|i| i.title = String::new()),
            Want::invalid("incident.title"),
        ),
        (
            "whitespace-only title",
            create_with(|i| i.title = "   ".into()),
            Want::invalid("incident.title"),
        ),
        (
            "title of 201 characters",
            create_with(|i| i.title = "x".repeat(201)),
            Want::invalid("incident.title"),
        ),
        (
            "title of 201 two-byte characters",
            create_with(|i| i.title = "é".repeat(201)),
            Want::invalid("incident.title"),
        ),
        (
            "title with a control character",
            create_with(|i| i.title = "Web\u{7}hooks".into()),
            Want::invalid("incident.title"),
        ),
        (
            "summary over 16 KiB",
            create_with(|i| i.summary = "s".repeat(16 * 1024 + 1)),
            Want::invalid("incident.summary"),
        ),
        (
            "summary over 16 KiB in two-byte characters",
            create_with(|i| i.summary = "é".repeat(8 * 1024 + 1)),
            Want::invalid("incident.summary"),
        ),
        (
            "257 component impacts",
            create_with(|i| {
                i.component_impacts = (0..257)
                    .map(|_| impact(&unknown_id(), ImpactLevel::MajorOutage as i32))
                    .collect()
            }),
            Want::invalid("incident.component_impacts"),
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
            Want::invalid("incident.roles"),
        ),
        (
            "65 labels",
            create_with(|i| i.labels = labels(65)),
            Want::invalid("incident.labels"),
        ),
        (
            "label key with a space",
            create_with(|i| i.labels = label("bad key", "v")),
            Want::invalid("incident.labels[bad key]"),
        ),
        (
            "label key with a colon",
            create_with(|i| i.labels = label("team:core", "v")),
            Want::invalid("incident.labels[team:core]"),
        ),
        (
            "empty label key",
            create_with(|i| i.labels = label("", "v")),
            Want::invalid("incident.labels[]"),
        ),
        (
            "label key of 64 characters",
            create_with(|i| i.labels = label(&long_key, "v")),
            Want::invalid(&format!("incident.labels[{long_key}]")),
        ),
        (
            "label value of 257 characters",
            create_with(|i| i.labels = label("team", &"v".repeat(257))),
            Want::invalid("incident.labels[team]"),
        ),
        (
            "component impact id not a UUID",
            create_with(|i| {
                i.component_impacts = vec![impact("not-a-uuid", ImpactLevel::MajorOutage as i32)]
            }),
            Want::invalid("incident.component_impacts[0].component_id"),
        ),
        (
            "component impact on an unknown component",
            create_with(|i| {
                i.component_impacts = vec![impact(&unknown, ImpactLevel::MajorOutage as i32)]
            }),
            Want::invalid("incident.component_impacts[0].component_id"),
        ),
        (
            "component impact on a deleted component",
            create_with(|i| {
                i.component_impacts = vec![impact(&gone.id, ImpactLevel::MajorOutage as i32)]
            }),
            Want::invalid("incident.component_impacts[0].component_id"),
        ),
        (
            "second component impact on an unknown component",
            create_with(|i| {
                i.component_impacts = vec![
                    impact(&live.id, ImpactLevel::MajorOutage as i32),
                    impact(&unknown, ImpactLevel::MajorOutage as i32),
                ]
            }),
            Want::invalid("incident.component_impacts[1].component_id"),
        ),
        (
            "component listed twice",
            create_with(|i| {
                i.component_impacts = vec![
                    impact(&live.id, ImpactLevel::MajorOutage as i32),
                    impact(&live.id, ImpactLevel::PartialOutage as i32),
                ]
            }),
            Want::invalid("incident.component_impacts[1].component_id"),
        ),
        (
            "component impact level unspecified",
            create_with(|i| i.component_impacts = vec![impact(&live.id, 0)]),
            Want::invalid("incident.component_impacts[0].impact"),
        ),
        (
            "component impact level unknown (6)",
            create_with(|i| i.component_impacts = vec![impact(&live.id, 6)]),
            Want::invalid("incident.component_impacts[0].impact"),
        ),
        (
            "impact window without start",
            create_with(|i| {
                i.impact_windows = vec![window(None, Some(at("2023-08-11T11:00:00Z")))]
            }),
            Want::invalid("incident.impact_windows[0].start_time"),
        ),
        (
            "impact window ending before its start",
            create_with(|i| {
                i.impact_windows = vec![window(
                    Some(at("2023-08-11T11:00:00Z")),
                    Some(at("2023-08-11T10:00:00Z")),
                )]
            }),
            Want::invalid("incident.impact_windows[0].end_time"),
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
                        Some(at("2023-08-11T10:00:00Z")),
                        Some(at("2023-08-11T11:00:00Z")),
                    )
                }]
            }),
            Want::invalid("incident.impact_windows[0].duration"),
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
                        Some(at("2023-08-11T10:00:00Z")),
                        Some(at("2023-08-11T11:00:00Z")),
                    )
                }]
            }),
            Want::invalid("incident.impact_windows[0].duration"),
        ),
        (
            "impact window impact unspecified",
            create_with(|i| {
                i.impact_windows = vec![ImpactWindow {
                    impact: 0,
                    ..window(Some(at("2023-08-11T10:00:00Z")), None)
                }]
            }),
            Want::invalid("incident.impact_windows[0].impact"),
        ),
        (
            "impact window start before 1678",
            create_with(|i| i.impact_windows = vec![window(Some(year_1500()), None)]),
            Want::invalid("incident.impact_windows[0].start_time"),
        ),
        (
            "impact window end after 2262",
            create_with(|i| {
                i.impact_windows = vec![window(Some(at("2023-08-11T10:00:00Z")), Some(year_2300()))]
            }),
            Want::invalid("incident.impact_windows[0].end_time"),
        ),
        (
            "impact window duration out of range",
            create_with(|i| {
                i.impact_windows = vec![ImpactWindow {
                    duration: Some(PbDuration {
                        seconds: i64::MAX,
                        nanos: 0,
                    }),
                    ..window(Some(at("2023-08-11T10:00:00Z")), None)
                }]
            }),
            Want::invalid("incident.impact_windows[0].duration"),
        ),
        (
            "scheduled start after 2262",
            create_with(|i| {
                i.kind = IncidentKind::Maintenance as i32;
                i.scheduled_start_time = Some(year_2300());
            }),
            Want::invalid("incident.scheduled_start_time"),
        ),
        (
            "impact window start with bad nanos",
            create_with(|i| i.impact_windows = vec![window(Some(bad_nanos()), None)]),
            Want::invalid("incident.impact_windows[0].start_time"),
        ),
        (
            "impact window component id not a UUID",
            create_with(|i| {
                i.impact_windows = vec![ImpactWindow {
                    component_ids: vec!["nope".into()],
                    ..window(Some(at("2023-08-11T10:00:00Z")), None)
                }]
            }),
            Want::invalid("incident.impact_windows[0].component_ids[0]"),
        ),
        (
            "impact window on an unknown component",
            create_with(|i| {
                i.impact_windows = vec![ImpactWindow {
                    component_ids: vec![unknown.clone()],
                    ..window(Some(at("2023-08-11T10:00:00Z")), None)
                }]
            }),
            Want::invalid("incident.impact_windows[0].component_ids[0]"),
        ),
        (
            "scheduled end before scheduled start",
            create_with(|i| {
                i.kind = IncidentKind::Maintenance as i32;
                i.scheduled_start_time = Some(at("2030-01-01T12:00:00Z"));
                i.scheduled_end_time = Some(at("2030-01-01T10:00:00Z"));
            }),
            Want::invalid("incident.scheduled_end_time"),
        ),
        (
            "role without an assignee",
            create_with(|i| {
                i.roles = vec![RoleAssignment {
                    role: "incident_commander".into(),
                    assignee: String::new(),
                }]
            }),
            Want::invalid("incident.roles[0].assignee"),
        ),
        (
            "occur_time in the future",
            CreateIncidentRequest {
                occur_time: Some(minutes_from_now(60)),
                ..create_with(|_| {})
            },
            Want::invalid("occur_time"),
        ),
        (
            "occur_time with bad nanos",
            CreateIncidentRequest {
                occur_time: Some(bad_nanos()),
                ..create_with(|_| {})
            },
            Want::invalid("occur_time"),
        ),
        (
            "request_id not a UUID",
            CreateIncidentRequest {
                request_id: "retry-1".into(),
                ..create_with(|_| {})
            },
            Want::invalid("request_id"),
        ),
        (
            "maintenance status on a new incident",
            create_with(|i| i.status = IncidentStatus::InProgress as i32),
            Want::wrong_kind("incident.status"),
        ),
        (
            "incident status on a new maintenance",
            create_with(|i| {
                i.kind = IncidentKind::Maintenance as i32;
                i.status = IncidentStatus::Identified as i32;
            }),
            Want::wrong_kind("incident.status"),
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
                        Some(at("2023-08-11T10:00:00Z")),
                        Some(at("2023-08-11T11:00:00Z")),
                    )
                }]
            }),
        ),
        (
            "occur_time an hour ago",
            CreateIncidentRequest {
                occur_time: Some(minutes_from_now(-60)),
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
    let mut cases = Cases::new(&srv, "every bad field");

    let before = srv.db_state().await;
    let status = client
        .create_incident(CreateIncidentRequest {
            incident: Some(Incident {
                title: " ".into(),
                kind: 0,
                severity: 42,
                labels: label("bad key", "v"),
                ..Default::default()
            }),
            occur_time: Some(minutes_from_now(60)),
            request_id: "not-a-uuid".into(),
        })
        .await
        .expect_err("a request with six bad fields is rejected");
    let d = common::details(&status);
    for field in [
        "incident.title",
        "incident.kind",
        "incident.severity",
        "incident.labels[bad key]",
        "occur_time",
        "request_id",
    ] {
        cases.run += 1;
        if !d.bad_fields.iter().any(|f| f == field) {
            cases.fail(
                &format!("create names {field}"),
                format!("BadRequest names {:?}", d.bad_fields),
            );
        }
    }
    assert_eq!(srv.db_state().await, before);
    cases.finish();
}

/// DESIGN §2: INVALID_ARGUMENT carries a BadRequest "naming every bad field"
/// (and parse.rs: "Every bad field is collected"). A missing resource message
/// must not hide a bad request_id sent beside it.
#[tokio::test]
async fn a_missing_message_does_not_hide_a_bad_request_id() {
    let srv = TestServer::start().await;
    let before = srv.db_state().await;
    let mut client = srv.incidents().await;
    let mut components = srv.components().await;
    let mut cases = Cases::new(&srv, "missing message beside a bad request_id");
    let rid = "not-a-uuid".to_owned();
    let calls: Vec<(&str, &str, Status)> = vec![
        (
            "create incident without incident and with a bad request_id names both",
            "incident",
            client
                .create_incident(CreateIncidentRequest {
                    request_id: rid.clone(),
                    ..Default::default()
                })
                .await
                .expect_err("rejected"),
        ),
        (
            "update incident without incident and with a bad request_id names both",
            "incident",
            client
                .update_incident(UpdateIncidentRequest {
                    request_id: rid.clone(),
                    ..Default::default()
                })
                .await
                .expect_err("rejected"),
        ),
        (
            "create component without component and with a bad request_id names both",
            "component",
            components
                .create_component(CreateComponentRequest {
                    request_id: rid.clone(),
                    ..Default::default()
                })
                .await
                .expect_err("rejected"),
        ),
        (
            "update component without component and with a bad request_id names both",
            "component",
            components
                .update_component(UpdateComponentRequest {
                    request_id: rid.clone(),
                    ..Default::default()
                })
                .await
                .expect_err("rejected"),
        ),
    ];
    for (name, message_field, status) in calls {
        cases.run += 1;
        let d = common::details(&status);
        if !(d.bad_fields.iter().any(|f| f == message_field)
            && d.bad_fields.iter().any(|f| f == "request_id"))
        {
            cases.fail(name, format!("BadRequest names {:?}", d.bad_fields));
        }
    }
    assert_eq!(srv.db_state().await, before);
    cases.finish();
}

// ---------------------------------------------------------------------------
// GetIncident, GetComponent.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn get_rejects_garbage_ids_and_answers_not_found_for_unknown_ones() {
    let srv = TestServer::start().await;
    declare(&srv, valid_incident()).await;
    let mut incidents = srv.incidents().await;
    let mut components = srv.components().await;
    let mut cases = Cases::new(&srv, "Get");
    let unknown = unknown_id();

    for (name, id, want) in [
        ("incident id garbage", "garbage", Want::invalid("id")),
        ("incident id empty", "", Want::invalid("id")),
        ("incident reference INC-0", "INC-0", Want::invalid("id")),
        ("incident reference INC-x", "INC-x", Want::invalid("id")),
        (
            "incident id truncated UUID",
            &unknown[..30],
            Want::invalid("id"),
        ),
        (
            "unknown incident id",
            unknown.as_str(),
            Want::not_found("incident_id", &unknown),
        ),
        (
            "unknown incident reference",
            "INC-99",
            Want::not_found("incident_id", "INC-99"),
        ),
    ] {
        cases
            .reject(
                name,
                want,
                incidents.get_incident(GetIncidentRequest { id: id.into() }),
            )
            .await;
    }
    for (name, id, want) in [
        ("component id garbage", "garbage", Want::invalid("id")),
        ("component id empty", "", Want::invalid("id")),
        (
            "component id is an incident reference",
            "INC-1",
            Want::invalid("id"),
        ),
        (
            "unknown component id",
            unknown.as_str(),
            Want::not_found("component_id", &unknown),
        ),
    ] {
        cases
            .reject(
                name,
                want,
                components.get_component(GetComponentRequest { id: id.into() }),
            )
            .await;
    }
    cases.finish();
}

// ---------------------------------------------------------------------------
// ListIncidents, ListStatusUpdates, ListComponents.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn list_incidents_rejects_bad_filters_and_foreign_page_tokens() {
    let srv = TestServer::start().await;
    let c = create_component(&srv, "APIs", "").await;
    for _ in 0..3 {
        declare(&srv, valid_incident()).await;
    }
    let mut client = srv.incidents().await;
    let mut components = srv.components().await;
    let mut cases = Cases::new(&srv, "ListIncidents");

    let first_page = ListIncidentsRequest {
        page_size: 1,
        kind: IncidentKind::Incident as i32,
        ..Default::default()
    };
    let token = client
        .list_incidents(first_page.clone())
        .await
        .expect("first page")
        .into_inner()
        .next_page_token;
    assert!(!token.is_empty(), "three incidents make more than one page");
    let component_token = {
        create_component(&srv, "Web", "").await;
        components
            .list_components(ListComponentsRequest {
                page_size: 1,
                ..Default::default()
            })
            .await
            .expect("components")
            .into_inner()
            .next_page_token
    };
    assert!(!component_token.is_empty());
    // A token of another server (another database, another key) is stale here.
    let foreign_token = {
        let other = TestServer::start().await;
        for _ in 0..2 {
            declare(&other, valid_incident()).await;
        }
        other
            .incidents()
            .await
            .list_incidents(first_page.clone())
            .await
            .expect("other server")
            .into_inner()
            .next_page_token
    };
    assert!(!foreign_token.is_empty());
    let next = |f: &dyn Fn(&mut ListIncidentsRequest)| {
        let mut r = ListIncidentsRequest {
            page_token: token.clone(),
            ..first_page.clone()
        };
        f(&mut r);
        r
    };
    let list = |f: &dyn Fn(&mut ListIncidentsRequest)| {
        let mut r = ListIncidentsRequest::default();
        f(&mut r);
        r
    };

    let table: Vec<(&str, ListIncidentsRequest, Want)> = vec![
        (
            "statuses with an unknown value",
            list(&|r| r.statuses = vec![99]),
            Want::invalid("statuses[0]"),
        ),
        (
            "statuses with an unknown second value",
            list(&|r| r.statuses = vec![IncidentStatus::Investigating as i32, 9]),
            Want::invalid("statuses[1]"),
        ),
        (
            "statuses with unspecified",
            list(&|r| r.statuses = vec![0]),
            Want::invalid("statuses[0]"),
        ),
        (
            "severities with an unknown value",
            list(&|r| r.severities = vec![6]),
            Want::invalid("severities[0]"),
        ),
        (
            "severities with a negative value",
            list(&|r| r.severities = vec![-3]),
            Want::invalid("severities[0]"),
        ),
        ("kind unknown", list(&|r| r.kind = 3), Want::invalid("kind")),
        (
            "component_id not a UUID",
            list(&|r| r.component_id = "apis".into()),
            Want::invalid("component_id"),
        ),
        (
            "page_size -1",
            list(&|r| r.page_size = -1),
            Want::invalid("page_size"),
        ),
        (
            "page_size i32::MIN",
            list(&|r| r.page_size = i32::MIN),
            Want::invalid("page_size"),
        ),
        (
            "label filter with a bad key",
            list(&|r| r.label = "bad key=x".into()),
            Want::invalid("label"),
        ),
        (
            "label filter with an empty key",
            list(&|r| r.label = "=x".into()),
            Want::invalid("label"),
        ),
        (
            "query of 201 characters",
            list(&|r| r.query = "q".repeat(201)),
            Want::invalid("query"),
        ),
        (
            "create_time_after with bad nanos",
            list(&|r| r.create_time_after = Some(bad_nanos())),
            Want::invalid("create_time_after"),
        ),
        (
            "page token garbage",
            list(&|r| r.page_token = "not-a-token".into()),
            Want::page_token(),
        ),
        (
            "page token forged",
            list(&|r| r.page_token = forged_token()),
            Want::page_token(),
        ),
        (
            "page token tampered",
            next(&|r| r.page_token = tamper(&token)),
            Want::page_token(),
        ),
        (
            "page token truncated",
            next(&|r| r.page_token = token[..token.len() - 4].to_owned()),
            Want::page_token(),
        ),
        (
            "page token reused without the kind filter",
            next(&|r| r.kind = 0),
            Want::page_token(),
        ),
        (
            "page token reused with another kind",
            next(&|r| r.kind = IncidentKind::Maintenance as i32),
            Want::page_token(),
        ),
        (
            "page token reused with a status filter",
            next(&|r| r.statuses = vec![IncidentStatus::Investigating as i32]),
            Want::page_token(),
        ),
        (
            "page token reused with a severity filter",
            next(&|r| r.severities = vec![Severity::P2 as i32]),
            Want::page_token(),
        ),
        (
            "page token reused with show_deleted",
            next(&|r| r.show_deleted = true),
            Want::page_token(),
        ),
        (
            "page token reused with open",
            next(&|r| r.open = Some(true)),
            Want::page_token(),
        ),
        (
            "page token reused with a query",
            next(&|r| r.query = "webhook".into()),
            Want::page_token(),
        ),
        (
            "page token reused with a label",
            next(&|r| r.label = "team".into()),
            Want::page_token(),
        ),
        (
            "page token reused with a component",
            next(&|r| r.component_id = c.id.clone()),
            Want::page_token(),
        ),
        (
            "page token reused with a time range",
            next(&|r| r.create_time_after = Some(at("2020-01-01T00:00:00Z"))),
            Want::page_token(),
        ),
        (
            "page token of another server",
            next(&|r| r.page_token = foreign_token.clone()),
            Want::page_token(),
        ),
        (
            "page token of ListComponents",
            list(&|r| r.page_token = component_token.clone()),
            Want::page_token(),
        ),
    ];
    for (name, req, want) in table {
        cases.reject(name, want, client.list_incidents(req)).await;
    }
    // The same filters with another page size keep the token valid.
    cases
        .accept(
            "page token reused with the same filters and another page size",
            client.list_incidents(next(&|r| r.page_size = 2)),
        )
        .await;
    cases
        .accept(
            "page_size above the cap",
            client.list_incidents(list(&|r| r.page_size = i32::MAX)),
        )
        .await;
    cases.finish();
}

#[tokio::test]
async fn list_status_updates_and_components_reject_bad_input() {
    let srv = TestServer::start().await;
    let a = declare(&srv, valid_incident()).await;
    let b = declare(&srv, valid_incident()).await;
    let group = create_component(&srv, "Conversation Panel", "").await;
    for name in ["Login", "Desk", "Chat"] {
        create_component(&srv, name, &group.id).await;
    }
    let mut client = srv.incidents().await;
    let mut components = srv.components().await;
    for m in ["one", "two", "three"] {
        client
            .post_status_update(post_with(&a.id, |r| r.message = m.into()))
            .await
            .expect("post");
    }
    let su_token = client
        .list_status_updates(ListStatusUpdatesRequest {
            incident_id: a.id.clone(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("updates")
        .into_inner()
        .next_page_token;
    assert!(!su_token.is_empty());
    let c_token = components
        .list_components(ListComponentsRequest {
            page_size: 1,
            parent_id: group.id.clone(),
            ..Default::default()
        })
        .await
        .expect("components")
        .into_inner()
        .next_page_token;
    assert!(!c_token.is_empty());
    let unknown = unknown_id();
    let mut cases = Cases::new(&srv, "ListStatusUpdates/ListComponents");

    let su = |incident_id: &str, page_size: i32, page_token: &str| ListStatusUpdatesRequest {
        incident_id: incident_id.to_owned(),
        page_size,
        page_token: page_token.to_owned(),
    };
    for (name, req, want) in [
        (
            "status updates: incident_id garbage",
            su("garbage", 0, ""),
            Want::invalid("incident_id"),
        ),
        (
            "status updates: incident_id empty",
            su("", 0, ""),
            Want::invalid("incident_id"),
        ),
        (
            "status updates: page_size -1",
            su(&a.id, -1, ""),
            Want::invalid("page_size"),
        ),
        (
            "status updates: unknown incident",
            su(&unknown, 0, ""),
            Want::not_found("incident_id", &unknown),
        ),
        (
            "status updates: forged page token",
            su(&a.id, 1, &forged_token()),
            Want::page_token(),
        ),
        (
            "status updates: tampered page token",
            su(&a.id, 1, &tamper(&su_token)),
            Want::page_token(),
        ),
        (
            "status updates: page token of another incident",
            su(&b.id, 1, &su_token),
            Want::page_token(),
        ),
        (
            "status updates: page token of ListComponents",
            su(&a.id, 1, &c_token),
            Want::page_token(),
        ),
    ] {
        cases
            .reject(name, want, client.list_status_updates(req))
            .await;
    }

    let lc = |parent_id: &str, show_deleted: bool, page_size: i32, page_token: &str| {
        ListComponentsRequest {
            page_size,
            page_token: page_token.to_owned(),
            parent_id: parent_id.to_owned(),
            show_deleted,
        }
    };
    for (name, req, want) in [
        (
            "components: page_size -1",
            lc("", false, -1, ""),
            Want::invalid("page_size"),
        ),
        (
            "components: parent_id garbage",
            lc("garbage", false, 0, ""),
            Want::invalid("parent_id"),
        ),
        (
            "components: forged page token",
            lc(&group.id, false, 1, &forged_token()),
            Want::page_token(),
        ),
        (
            "components: tampered page token",
            lc(&group.id, false, 1, &tamper(&c_token)),
            Want::page_token(),
        ),
        (
            "components: page token reused without the parent filter",
            lc("", false, 1, &c_token),
            Want::page_token(),
        ),
        (
            "components: page token reused with show_deleted",
            lc(&group.id, true, 1, &c_token),
            Want::page_token(),
        ),
        (
            "components: page token of ListStatusUpdates",
            lc(&group.id, false, 1, &su_token),
            Want::page_token(),
        ),
    ] {
        cases
            .reject(name, want, components.list_components(req))
            .await;
    }
    cases
        .accept(
            "components: page token reused with the same filters",
            components.list_components(lc(&group.id, false, 5, &c_token)),
        )
        .await;
    cases.finish();
}

// ---------------------------------------------------------------------------
// UpdateIncident.
// ---------------------------------------------------------------------------

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
    let unknown = unknown_id();
    let mut cases = Cases::new(&srv, "UpdateIncident");

    let w = |start: &str, end: Option<&str>| window(Some(at(start)), end.map(at));
    let table: Vec<(&str, UpdateIncidentRequest, Want)> = vec![
        (
            "missing incident",
            UpdateIncidentRequest::default(),
            Want::invalid("incident"),
        ),
        (
            "incident id empty",
            update_with("", &["title"], |i| i.title = "x".into()),
            Want::invalid("incident.id"),
        ),
        (
            "incident id garbage",
            update_with("garbage", &["title"], |i| i.title = "x".into()),
            Want::invalid("incident.id"),
        ),
        (
            "update_mask names status",
            update_with(&id, &["status"], |i| {
                i.status = IncidentStatus::Resolved as i32
            }),
            Want::invalid("update_mask"),
        ),
        (
            "update_mask names kind",
            update_with(&id, &["kind"], |i| {
                i.kind = IncidentKind::Maintenance as i32
            }),
            Want::invalid("update_mask"),
        ),
        (
            "update_mask names component_impacts",
            update_with(&id, &["component_impacts"], |i| {
                i.component_impacts = vec![impact(&c.id, ImpactLevel::MajorOutage as i32)]
            }),
            Want::invalid("update_mask"),
        ),
        (
            "update_mask names status beside a valid path",
            update_with(&id, &["title", "status"], |i| {
                i.title = "New title".into();
                i.status = IncidentStatus::Resolved as i32;
            }),
            Want::invalid("update_mask"),
        ),
        (
            "update_mask names an unknown path",
            update_with(&id, &["colour"], |_| {}),
            Want::invalid("update_mask"),
        ),
        (
            "update_mask names a sub-field path",
            update_with(&id, &["impact_windows.start_time"], |_| {}),
            Want::invalid("update_mask"),
        ),
        (
            "no mask, status set",
            update_with(&id, &[], |i| i.status = IncidentStatus::Resolved as i32),
            Want::invalid("update_mask"),
        ),
        (
            "no mask, kind set",
            update_with(&id, &[], |i| i.kind = IncidentKind::Maintenance as i32),
            Want::invalid("update_mask"),
        ),
        (
            "no mask, component_impacts set",
            update_with(&id, &[], |i| {
                i.component_impacts = vec![impact(&c.id, ImpactLevel::MajorOutage as i32)]
            }),
            Want::invalid("update_mask"),
        ),
        (
            "empty title",
            update_with(&id, &["title"], |i| i.title = String::new()),
            Want::invalid("incident.title"),
        ),
        (
            "whitespace-only title",
            update_with(&id, &["title"], |i| i.title = " \u{a0} ".into()),
            Want::invalid("incident.title"),
        ),
        (
            "title of 201 characters",
            update_with(&id, &["title"], |i| i.title = "x".repeat(201)),
            Want::invalid("incident.title"),
        ),
        (
            "summary over 16 KiB",
            update_with(&id, &["summary"], |i| i.summary = "s".repeat(16 * 1024 + 1)),
            Want::invalid("incident.summary"),
        ),
        (
            "severity unknown",
            update_with(&id, &["severity"], |i| i.severity = 77),
            Want::invalid("incident.severity"),
        ),
        (
            "65 labels",
            update_with(&id, &["labels"], |i| i.labels = labels(65)),
            Want::invalid("incident.labels"),
        ),
        (
            "bad label key",
            update_with(&id, &["labels"], |i| i.labels = label("bad key", "v")),
            Want::invalid("incident.labels[bad key]"),
        ),
        (
            "impact window without start",
            update_with(&id, &["impact_windows"], |i| {
                i.impact_windows = vec![window(None, Some(at("2023-08-11T11:00:00Z")))]
            }),
            Want::invalid("incident.impact_windows[0].start_time"),
        ),
        (
            "impact window ending before its start",
            update_with(&id, &["impact_windows"], |i| {
                i.impact_windows = vec![w("2023-08-11T11:00:00Z", Some("2023-08-11T10:59:59Z"))]
            }),
            Want::invalid("incident.impact_windows[0].end_time"),
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
            Want::invalid("incident.impact_windows[1].duration"),
        ),
        (
            "impact window on a deleted component",
            update_with(&id, &["impact_windows"], |i| {
                i.impact_windows = vec![ImpactWindow {
                    component_ids: vec![gone.id.clone()],
                    ..w("2023-08-11T10:00:00Z", None)
                }]
            }),
            Want::invalid("incident.impact_windows[0].component_ids[0]"),
        ),
        (
            "impact window on an unknown component",
            update_with(&id, &["impact_windows"], |i| {
                i.impact_windows = vec![ImpactWindow {
                    component_ids: vec![unknown.clone()],
                    ..w("2023-08-11T10:00:00Z", None)
                }]
            }),
            Want::invalid("incident.impact_windows[0].component_ids[0]"),
        ),
        (
            "scheduled end before scheduled start",
            update_with(&id, &["scheduled_start_time", "scheduled_end_time"], |i| {
                i.scheduled_start_time = Some(at("2030-01-01T12:00:00Z"));
                i.scheduled_end_time = Some(at("2030-01-01T11:00:00Z"));
            }),
            Want::invalid("incident.scheduled_end_time"),
        ),
        (
            "declare_time in the future",
            update_with(&id, &["declare_time"], |i| {
                i.declare_time = Some(minutes_from_now(60))
            }),
            Want::invalid("incident.declare_time"),
        ),
        (
            "declare_time cleared",
            update_with(&id, &["declare_time"], |_| {}),
            Want::invalid("incident.declare_time"),
        ),
        (
            "identify_time in the future",
            update_with(&id, &["identify_time"], |i| {
                i.identify_time = Some(minutes_from_now(60))
            }),
            Want::invalid("incident.identify_time"),
        ),
        (
            "mitigate_time in the future",
            update_with(&id, &["mitigate_time"], |i| {
                i.mitigate_time = Some(minutes_from_now(60))
            }),
            Want::invalid("incident.mitigate_time"),
        ),
        (
            "resolve_time in the future",
            update_with(&id, &[], |i| i.resolve_time = Some(minutes_from_now(60))),
            Want::invalid("incident.resolve_time"),
        ),
        (
            "next_update_time with bad nanos",
            update_with(&id, &["next_update_time"], |i| {
                i.next_update_time = Some(bad_nanos())
            }),
            Want::invalid("incident.next_update_time"),
        ),
        (
            "request_id not a UUID",
            UpdateIncidentRequest {
                request_id: "42".into(),
                ..update_with(&id, &["title"], |i| i.title = "x".into())
            },
            Want::invalid("request_id"),
        ),
        (
            "stale etag",
            update_with(&id, &["title"], |i| {
                i.title = "Stale write".into();
                i.etag = created.etag.clone();
            }),
            Want::stale_etag("incident_id", &id),
        ),
        (
            "unknown incident",
            update_with(&unknown, &["title"], |i| i.title = "x".into()),
            Want::not_found("incident_id", &unknown),
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

// ---------------------------------------------------------------------------
// PostStatusUpdate.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn post_status_update_rejects_bad_input() {
    let srv = TestServer::start().await;
    let c = create_component(&srv, "APIs", "").await;
    let gone = deleted_component(&srv, "Legacy").await;
    let inc = declare(&srv, valid_incident()).await;
    let mnt = maintenance(&srv).await;
    let id = inc.id.clone();
    let unknown = unknown_id();
    let mut client = srv.incidents().await;
    let mut cases = Cases::new(&srv, "PostStatusUpdate");
    let hour_ago = minutes_from_now(-60);

    let table: Vec<(&str, PostStatusUpdateRequest, Want)> = vec![
        (
            "incident_id empty",
            post_with("", |_| {}),
            Want::invalid("incident_id"),
        ),
        (
            "incident_id garbage",
            post_with("INC-1", |_| {}),
            Want::invalid("incident_id"),
        ),
        (
            "status unknown (9)",
            post_with(&id, |r| r.status = 9),
            Want::invalid("status"),
        ),
        (
            "status negative",
            post_with(&id, |r| r.status = -1),
            Want::invalid("status"),
        ),
        (
            "empty message",
            post_with(&id, |r| r.message = String::new()),
            Want::invalid("message"),
        ),
        (
            "whitespace-only message",
            post_with(&id, |r| r.message = " \n\t ".into()),
            Want::invalid("message"),
        ),
        (
            "message over 16 KiB",
            post_with(&id, |r| r.message = "m".repeat(16 * 1024 + 1)),
            Want::invalid("message"),
        ),
        (
            "component impact id not a UUID",
            post_with(&id, |r| {
                r.component_impacts = vec![impact("apis", ImpactLevel::MajorOutage as i32)]
            }),
            Want::invalid("component_impacts[0].component_id"),
        ),
        (
            "component impact on an unknown component",
            post_with(&id, |r| {
                r.component_impacts = vec![impact(&unknown, ImpactLevel::MajorOutage as i32)]
            }),
            Want::invalid("component_impacts[0].component_id"),
        ),
        (
            "component impact on a deleted component",
            post_with(&id, |r| {
                r.component_impacts = vec![impact(&gone.id, ImpactLevel::MajorOutage as i32)]
            }),
            Want::invalid("component_impacts[0].component_id"),
        ),
        (
            "component listed twice",
            post_with(&id, |r| {
                r.component_impacts = vec![
                    impact(&c.id, ImpactLevel::MajorOutage as i32),
                    impact(&c.id, ImpactLevel::Operational as i32),
                ]
            }),
            Want::invalid("component_impacts[1].component_id"),
        ),
        (
            "component impact level unspecified",
            post_with(&id, |r| r.component_impacts = vec![impact(&c.id, 0)]),
            Want::invalid("component_impacts[0].impact"),
        ),
        (
            "component impact level unknown",
            post_with(&id, |r| r.component_impacts = vec![impact(&c.id, 42)]),
            Want::invalid("component_impacts[0].impact"),
        ),
        (
            "visibility unknown",
            post_with(&id, |r| r.visibility = 3),
            Want::invalid("visibility"),
        ),
        (
            "occur_time in the future",
            post_with(&id, |r| r.occur_time = Some(minutes_from_now(60))),
            Want::invalid("occur_time"),
        ),
        (
            "occur_time with bad nanos",
            post_with(&id, |r| r.occur_time = Some(bad_nanos())),
            Want::invalid("occur_time"),
        ),
        (
            "next_update_time before the backfilled post time",
            post_with(&id, |r| {
                r.occur_time = Some(hour_ago);
                r.next_update_time = Some(minutes_from_now(-90));
            }),
            Want::invalid("next_update_time"),
        ),
        (
            "next_update_time equal to the post time",
            post_with(&id, |r| {
                r.occur_time = Some(hour_ago);
                r.next_update_time = Some(hour_ago);
            }),
            Want::invalid("next_update_time"),
        ),
        (
            "next_update_time in the past, post time now",
            post_with(&id, |r| r.next_update_time = Some(minutes_from_now(-5))),
            Want::invalid("next_update_time"),
        ),
        (
            "next_update_time after 2262",
            post_with(&id, |r| r.next_update_time = Some(year_2300())),
            Want::invalid("next_update_time"),
        ),
        (
            "request_id not a UUID",
            post_with(&id, |r| r.request_id = "post-1".into()),
            Want::invalid("request_id"),
        ),
        (
            "maintenance status posted on an incident",
            post_with(&id, |r| r.status = IncidentStatus::InProgress as i32),
            Want::wrong_kind("status"),
        ),
        (
            "maintenance completion posted on an incident",
            post_with(&id, |r| r.status = IncidentStatus::Completed as i32),
            Want::wrong_kind("status"),
        ),
        (
            "incident status posted on a maintenance",
            post_with(&mnt.id, |r| r.status = IncidentStatus::Resolved as i32),
            Want::wrong_kind("status"),
        ),
        (
            "unknown incident",
            post_with(&unknown, |_| {}),
            Want::not_found("incident_id", &unknown),
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
                r.next_update_time = Some(minutes_from_now(30));
                r.component_impacts = vec![impact(&c.id, ImpactLevel::PartialOutage as i32)];
            })),
        )
        .await;
    cases.finish();
}

/// DESIGN §2 Errors: every error carries "the ids involved in metadata". A
/// status of the wrong kind posted on incident X involves X.
#[tokio::test]
async fn wrong_kind_status_names_the_incident_in_metadata() {
    let srv = TestServer::start().await;
    let inc = declare(&srv, valid_incident()).await;
    let mut cases = Cases::new(&srv, "INVALID_TRANSITION metadata");
    cases
        .reject(
            "maintenance status on an incident names incident_id",
            Want::wrong_kind("status").meta("incident_id", &inc.id),
            srv.incidents()
                .await
                .post_status_update(post_with(&inc.id, |r| {
                    r.status = IncidentStatus::Scheduled as i32
                })),
        )
        .await;
    cases.finish();
}

// ---------------------------------------------------------------------------
// Delete, Undelete, writes on a deleted incident, request_id reuse.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn delete_and_undelete_incident_reject_bad_input() {
    let srv = TestServer::start().await;
    let live = declare(&srv, valid_incident()).await;
    let victim = declare(&srv, valid_incident()).await;
    let unknown = unknown_id();
    let mut client = srv.incidents().await;
    let mut cases = Cases::new(&srv, "Delete/UndeleteIncident");

    let del = |id: &str, etag: &str, request_id: &str| DeleteIncidentRequest {
        id: id.to_owned(),
        etag: etag.to_owned(),
        request_id: request_id.to_owned(),
    };
    let undel = |id: &str, etag: &str| UndeleteIncidentRequest {
        id: id.to_owned(),
        etag: etag.to_owned(),
        request_id: String::new(),
    };
    for (name, req, want) in [
        ("delete: id empty", del("", "", ""), Want::invalid("id")),
        (
            "delete: id garbage",
            del("INC-1", "", ""),
            Want::invalid("id"),
        ),
        (
            "delete: request_id not a UUID",
            del(&victim.id, "", "x"),
            Want::invalid("request_id"),
        ),
        (
            "delete: unknown incident",
            del(&unknown, "", ""),
            Want::not_found("incident_id", &unknown),
        ),
        (
            "delete: stale etag",
            del(&victim.id, "W/\"stale\"", ""),
            Want::stale_etag("incident_id", &victim.id),
        ),
    ] {
        cases.reject(name, want, client.delete_incident(req)).await;
    }
    for (name, req, want) in [
        ("undelete: id garbage", undel("x", ""), Want::invalid("id")),
        (
            "undelete: unknown incident",
            undel(&unknown, ""),
            Want::not_found("incident_id", &unknown),
        ),
        (
            "undelete: live incident",
            undel(&live.id, ""),
            Want::already_exists("incident_id", &live.id),
        ),
        (
            "undelete: live incident with its current etag",
            undel(&live.id, &live.etag),
            Want::already_exists("incident_id", &live.id),
        ),
    ] {
        cases
            .reject(name, want, client.undelete_incident(req))
            .await;
    }

    let deleted = cases
        .accept(
            "delete with the current etag",
            client.delete_incident(del(&victim.id, &victim.etag, "")),
        )
        .await
        .and_then(|r| r.incident)
        .expect("the first delete succeeds");
    if deleted.delete_time.is_none() {
        cases.fail("delete with the current etag", "no delete_time".into());
    }
    let d = &deleted.id;
    cases
        .reject(
            "delete twice",
            Want::not_found("incident_id", d),
            client.delete_incident(del(d, "", "")),
        )
        .await;
    cases
        .reject(
            "undelete with a stale etag",
            Want::stale_etag("incident_id", d),
            client.undelete_incident(undel(d, &victim.etag)),
        )
        .await;
    cases
        .reject(
            "update a deleted incident",
            Want::deleted(d),
            client.update_incident(update_with(d, &["title"], |i| i.title = "x".into())),
        )
        .await;
    cases
        .reject(
            "update a deleted incident with its current etag",
            Want::deleted(d),
            client.update_incident(update_with(d, &["title"], |i| {
                i.title = "x".into();
                i.etag = deleted.etag.clone();
            })),
        )
        .await;
    cases
        .reject(
            "post a status update on a deleted incident",
            Want::deleted(d),
            client.post_status_update(post_with(d, |_| {})),
        )
        .await;
    cases
        .reject(
            "resolve a deleted incident",
            Want::deleted(d),
            client.post_status_update(post_with(d, |r| r.status = IncidentStatus::Resolved as i32)),
        )
        .await;
    // Get still returns a deleted incident; undelete brings it back once.
    cases
        .accept(
            "get a deleted incident",
            client.get_incident(GetIncidentRequest { id: d.clone() }),
        )
        .await;
    cases
        .accept(
            "undelete with the current etag",
            client.undelete_incident(undel(d, &deleted.etag)),
        )
        .await;
    cases
        .reject(
            "undelete twice",
            Want::already_exists("incident_id", d),
            client.undelete_incident(undel(d, "")),
        )
        .await;
    cases.finish();
}

#[tokio::test]
async fn request_id_reused_for_another_request_is_refused() {
    let srv = TestServer::start().await;
    let mut client = srv.incidents().await;
    let mut cases = Cases::new(&srv, "request_id reuse");
    let rid = unknown_id();
    let first = cases
        .accept(
            "create with a request_id",
            client.create_incident(CreateIncidentRequest {
                request_id: rid.clone(),
                ..create_with(|_| {})
            }),
        )
        .await
        .and_then(|r| r.incident)
        .expect("created");
    let reused = || {
        Want::failed(
            "REQUEST_ID_REUSED",
            "REQUEST_ID_REUSED",
            &format!("request_id/{rid}"),
        )
        .meta("request_id", &rid)
    };
    cases
        .reject(
            "same request_id, other title",
            reused(),
            client.create_incident(CreateIncidentRequest {
                request_id: rid.clone(),
                ..create_with(|i| i.title = "Another incident".into())
            }),
        )
        .await;
    cases
        .reject(
            "same request_id, an occur_time added",
            reused(),
            client.create_incident(CreateIncidentRequest {
                request_id: rid.clone(),
                occur_time: Some(minutes_from_now(-10)),
                ..create_with(|_| {})
            }),
        )
        .await;
    // A request rejected inside its write records nothing: its request_id
    // stays free for the corrected request.
    let post_rid = unknown_id();
    let missing = unknown_id();
    cases
        .reject(
            "post with a request_id, rejected for an unknown component",
            Want::invalid("component_impacts[0].component_id"),
            client.post_status_update(post_with(&first.id, |r| {
                r.request_id = post_rid.clone();
                r.component_impacts = vec![impact(&missing, ImpactLevel::MajorOutage as i32)];
            })),
        )
        .await;
    cases
        .accept(
            "post with a request_id",
            client.post_status_update(post_with(&first.id, |r| r.request_id = post_rid.clone())),
        )
        .await;
    cases
        .reject(
            "same request_id, other message",
            Want::failed(
                "REQUEST_ID_REUSED",
                "REQUEST_ID_REUSED",
                &format!("request_id/{post_rid}"),
            )
            .meta("request_id", &post_rid),
            client.post_status_update(post_with(&first.id, |r| {
                r.request_id = post_rid.clone();
                r.message = "Something else".into();
            })),
        )
        .await;
    cases.finish();
}

// ---------------------------------------------------------------------------
// ComponentService.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn create_component_rejects_bad_input_and_taken_names() {
    let srv = TestServer::start().await;
    let group = create_component(&srv, "Conversation Panel", "").await;
    let login = create_component(&srv, "Login", &group.id).await;
    let top = create_component(&srv, "APIs", "").await;
    let gone = deleted_component(&srv, "Legacy").await;
    let unknown = unknown_id();
    let mut client = srv.components().await;
    let mut cases = Cases::new(&srv, "CreateComponent");

    let new = |name: &str, parent: &str| CreateComponentRequest {
        component: Some(Component {
            name: name.to_owned(),
            parent_id: parent.to_owned(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let table: Vec<(&str, CreateComponentRequest, Want)> = vec![
        (
            "missing component",
            CreateComponentRequest::default(),
            Want::invalid("component"),
        ),
        ("empty name", new("", ""), Want::invalid("component.name")),
        (
            "whitespace-only name",
            new("  ", ""),
            Want::invalid("component.name"),
        ),
        (
            "name of 201 characters",
            new(&"n".repeat(201), ""),
            Want::invalid("component.name"),
        ),
        (
            "name with a control character",
            new("Lo\ngin", ""),
            Want::invalid("component.name"),
        ),
        (
            "description over 16 KiB",
            CreateComponentRequest {
                component: Some(Component {
                    name: "Webhooks".into(),
                    description: "d".repeat(16 * 1024 + 1),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            Want::invalid("component.description"),
        ),
        (
            "parent_id garbage",
            new("Webhooks", "apis"),
            Want::invalid("component.parent_id"),
        ),
        (
            "parent_id unknown",
            new("Webhooks", &unknown),
            Want::invalid("component.parent_id"),
        ),
        (
            "parent_id of a deleted component",
            new("Webhooks", &gone.id),
            Want::invalid("component.parent_id"),
        ),
        (
            "request_id not a UUID",
            CreateComponentRequest {
                request_id: "c-1".into(),
                ..new("Webhooks", "")
            },
            Want::invalid("request_id"),
        ),
        (
            "top-level name taken",
            new("APIs", ""),
            Want::already_exists("component_id", &top.id),
        ),
        (
            "name taken by a sibling in a group",
            new("Login", &group.id),
            Want::already_exists("component_id", &login.id),
        ),
        (
            "name taken once trimmed",
            new("  Login ", &group.id),
            Want::already_exists("component_id", &login.id),
        ),
    ];
    for (name, req, want) in table {
        cases.reject(name, want, client.create_component(req)).await;
    }
    for (name, req) in [
        ("same name under another parent", new("Login", "")),
        ("same name under a third parent", new("Login", &top.id)),
        ("name of a deleted sibling", new("Legacy", "")),
        ("name of exactly 200 characters", new(&"n".repeat(200), "")),
    ] {
        cases.accept(name, client.create_component(req)).await;
    }
    cases.finish();
}

#[tokio::test]
async fn update_component_rejects_bad_input_taken_names_and_stale_etags() {
    let srv = TestServer::start().await;
    let group = create_component(&srv, "Conversation Panel", "").await;
    let other = create_component(&srv, "Statistics", "").await;
    let login = create_component(&srv, "Login", &group.id).await;
    let desk = create_component(&srv, "Desk", &group.id).await;
    let other_login = create_component(&srv, "Login", &other.id).await;
    let gone = deleted_component(&srv, "Legacy").await;
    let unknown = unknown_id();
    let mut client = srv.components().await;
    let renamed = client
        .update_component(UpdateComponentRequest {
            component: Some(Component {
                id: desk.id.clone(),
                name: "Agent Desk".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
            request_id: String::new(),
        })
        .await
        .expect("rename")
        .into_inner()
        .component
        .expect("component");
    assert_ne!(renamed.etag, desk.etag);
    let mut cases = Cases::new(&srv, "UpdateComponent");

    let upd = |id: &str, paths: &[&str], f: &dyn Fn(&mut Component)| {
        let mut c = Component {
            id: id.to_owned(),
            ..Default::default()
        };
        f(&mut c);
        UpdateComponentRequest {
            component: Some(c),
            update_mask: if paths.is_empty() { None } else { mask(paths) },
            request_id: String::new(),
        }
    };
    let table: Vec<(&str, UpdateComponentRequest, Want)> = vec![
        (
            "missing component",
            UpdateComponentRequest::default(),
            Want::invalid("component"),
        ),
        (
            "id garbage",
            upd("desk", &["name"], &|c| c.name = "x".into()),
            Want::invalid("component.id"),
        ),
        (
            "id empty",
            upd("", &["name"], &|c| c.name = "x".into()),
            Want::invalid("component.id"),
        ),
        (
            "update_mask names an unknown path",
            upd(&desk.id, &["colour"], &|_| {}),
            Want::invalid("update_mask"),
        ),
        (
            "empty name",
            upd(&desk.id, &["name"], &|_| {}),
            Want::invalid("component.name"),
        ),
        (
            "name of 201 characters",
            upd(&desk.id, &[], &|c| c.name = "n".repeat(201)),
            Want::invalid("component.name"),
        ),
        (
            "description over 16 KiB",
            upd(&desk.id, &["description"], &|c| {
                c.description = "d".repeat(16 * 1024 + 1)
            }),
            Want::invalid("component.description"),
        ),
        (
            "parent_id garbage",
            upd(&desk.id, &["parent_id"], &|c| c.parent_id = "group".into()),
            Want::invalid("component.parent_id"),
        ),
        (
            "parent_id unknown",
            upd(&desk.id, &["parent_id"], &|c| c.parent_id = unknown.clone()),
            Want::invalid("component.parent_id"),
        ),
        (
            "parent_id of a deleted component",
            upd(&desk.id, &["parent_id"], &|c| c.parent_id = gone.id.clone()),
            Want::invalid("component.parent_id"),
        ),
        (
            "parent_id is itself",
            upd(&group.id, &["parent_id"], &|c| {
                c.parent_id = group.id.clone()
            }),
            Want::invalid("component.parent_id"),
        ),
        (
            "parent_id is its own child",
            upd(&group.id, &["parent_id"], &|c| {
                c.parent_id = login.id.clone()
            }),
            Want::invalid("component.parent_id"),
        ),
        (
            "request_id not a UUID",
            UpdateComponentRequest {
                request_id: "u".into(),
                ..upd(&desk.id, &["name"], &|c| c.name = "Desk".into())
            },
            Want::invalid("request_id"),
        ),
        (
            "rename to a sibling's name",
            upd(&desk.id, &["name"], &|c| c.name = "Login".into()),
            Want::already_exists("component_id", &login.id),
        ),
        (
            "move under a parent where the name is taken",
            upd(&login.id, &["parent_id"], &|c| {
                c.parent_id = other.id.clone()
            }),
            Want::already_exists("component_id", &other_login.id),
        ),
        (
            "stale etag",
            upd(&desk.id, &["name"], &|c| {
                c.name = "Desk".into();
                c.etag = desk.etag.clone();
            }),
            Want::stale_etag("component_id", &desk.id),
        ),
        (
            "unknown component",
            upd(&unknown, &["name"], &|c| c.name = "x".into()),
            Want::not_found("component_id", &unknown),
        ),
        (
            "deleted component",
            upd(&gone.id, &["name"], &|c| c.name = "Revived".into()),
            Want::not_found("component_id", &gone.id),
        ),
    ];
    for (name, req, want) in table {
        cases.reject(name, want, client.update_component(req)).await;
    }
    cases
        .accept(
            "current etag",
            client.update_component(upd(&desk.id, &["name"], &|c| {
                c.name = "Desk".into();
                c.etag = renamed.etag.clone();
            })),
        )
        .await;
    cases.finish();
}

#[tokio::test]
async fn delete_component_refuses_while_referenced() {
    let srv = TestServer::start().await;
    let group = create_component(&srv, "Conversation Panel", "").await;
    let login = create_component(&srv, "Login", &group.id).await;
    let apis = create_component(&srv, "APIs", "").await;
    let db = create_component(&srv, "Database", "").await;
    let inc = declare(
        &srv,
        Incident {
            component_impacts: vec![impact(&apis.id, ImpactLevel::PartialOutage as i32)],
            ..valid_incident()
        },
    )
    .await;
    declare(
        &srv,
        Incident {
            title: "Database upgrade".into(),
            kind: IncidentKind::Maintenance as i32,
            component_impacts: vec![impact(&db.id, ImpactLevel::UnderMaintenance as i32)],
            ..Default::default()
        },
    )
    .await;
    let unknown = unknown_id();
    let mut client = srv.components().await;
    let mut cases = Cases::new(&srv, "DeleteComponent");

    let del = |id: &str, etag: &str, request_id: &str| DeleteComponentRequest {
        id: id.to_owned(),
        etag: etag.to_owned(),
        request_id: request_id.to_owned(),
    };
    for (name, req, want) in [
        ("id garbage", del("apis", "", ""), Want::invalid("id")),
        ("id empty", del("", "", ""), Want::invalid("id")),
        (
            "request_id not a UUID",
            del(&login.id, "", "d"),
            Want::invalid("request_id"),
        ),
        (
            "unknown component",
            del(&unknown, "", ""),
            Want::not_found("component_id", &unknown),
        ),
        (
            "stale etag",
            del(&login.id, "W/\"stale\"", ""),
            Want::stale_etag("component_id", &login.id),
        ),
        (
            "used by an open incident",
            del(&apis.id, "", ""),
            Want::has_dependents(&apis.id),
        ),
        (
            "used by an open maintenance",
            del(&db.id, "", ""),
            Want::has_dependents(&db.id),
        ),
        (
            "has a live child",
            del(&group.id, "", ""),
            Want::has_dependents(&group.id),
        ),
    ] {
        cases.reject(name, want, client.delete_component(req)).await;
    }

    // Once the incident is resolved and the child gone, both may go.
    srv.incidents()
        .await
        .post_status_update(post_with(&inc.id, |r| {
            r.status = IncidentStatus::Resolved as i32;
            r.message = "Resolved".into();
        }))
        .await
        .expect("resolve");
    cases
        .accept(
            "used only by a resolved incident",
            client.delete_component(del(&apis.id, &apis.etag, "")),
        )
        .await;
    cases
        .accept(
            "leaf child",
            client.delete_component(del(&login.id, "", "")),
        )
        .await;
    cases
        .accept(
            "group whose children are deleted",
            client.delete_component(del(&group.id, "", "")),
        )
        .await;
    cases
        .reject(
            "delete twice",
            Want::not_found("component_id", &apis.id),
            client.delete_component(del(&apis.id, "", "")),
        )
        .await;
    cases.finish();
}

// ---------------------------------------------------------------------------
// The transport's own limit.
// ---------------------------------------------------------------------------

/// A request over 4 MiB never reaches a handler: tonic answers OUT_OF_RANGE
/// (documented as is, without ErrorInfo), and nothing is written.
#[tokio::test]
async fn request_over_four_mib_is_refused_by_the_transport() {
    let srv = TestServer::start().await;
    let before = srv.db_state().await;
    let status = srv
        .incidents()
        .await
        .create_incident(create_with(|i| i.summary = "s".repeat(5 * 1024 * 1024)))
        .await
        .expect_err("a 5 MiB request is refused");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(srv.db_state().await, before, "the database changed");
}

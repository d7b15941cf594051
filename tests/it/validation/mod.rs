//! Bad input, rule by rule. Every rejected request must answer the documented
//! gRPC code, the ErrorInfo reason (domain `incidentd`), exactly the bad
//! fields in BadRequest (or the PreconditionFailure for FAILED_PRECONDITION),
//! the ids involved in the ErrorInfo metadata, and leave every row of the
//! database as it was: a rejected request changes nothing.
//!
//! Cases are tables run against one server per test; every failing case is
//! reported by name, all of them at once.

mod components;
mod create;
mod deletes;
mod reads;
mod updates;

use incident_client::prost_types::Timestamp;
use incident_client::*;

use crate::support::{TestServer, create_component, create_incident, mask_if_any};

pub fn bad_nanos() -> Timestamp {
    Timestamp {
        seconds: 0,
        nanos: -1,
    }
}

/// 2300-01-01: a valid Timestamp the store (i64 nanoseconds) cannot hold.
pub fn year_2300() -> Timestamp {
    Timestamp {
        seconds: 10_413_792_000,
        nanos: 0,
    }
}

/// 1500-01-01: likewise, before 1678.
pub fn year_1500() -> Timestamp {
    Timestamp {
        seconds: -14_831_769_600,
        nanos: 0,
    }
}

pub fn labels(n: usize) -> std::collections::BTreeMap<String, String> {
    (0..n).map(|i| (format!("k{i}"), "v".to_owned())).collect()
}

pub fn label(k: &str, v: &str) -> std::collections::BTreeMap<String, String> {
    [(k.to_owned(), v.to_owned())].into_iter().collect()
}

pub fn impact_on(component_id: &str, level: i32) -> ComponentImpact {
    ComponentImpact {
        component_id: component_id.to_owned(),
        impact: level,
        ..Default::default()
    }
}

pub fn window(start: Option<Timestamp>, end: Option<Timestamp>) -> ImpactWindow {
    ImpactWindow {
        start_time: start,
        end_time: end,
        impact: ImpactLevel::DegradedPerformance as i32,
        ..Default::default()
    }
}

/// A valid incident to create.
pub fn valid_incident() -> Incident {
    Incident {
        title: "Webhook delays".into(),
        kind: IncidentKind::Incident as i32,
        severity: Severity::P2 as i32,
        ..Default::default()
    }
}

/// A create request: the valid incident, changed by `f`.
pub fn create_with(f: impl FnOnce(&mut Incident)) -> CreateIncidentRequest {
    let mut i = valid_incident();
    f(&mut i);
    CreateIncidentRequest {
        incident: Some(i),
        ..Default::default()
    }
}

/// An update request for `id` with this mask (none if empty), changed by `f`.
pub fn update_with(
    id: &str,
    paths: &[&str],
    f: impl FnOnce(&mut Incident),
) -> UpdateIncidentRequest {
    let mut i = Incident {
        id: id.to_owned(),
        ..Default::default()
    };
    f(&mut i);
    UpdateIncidentRequest {
        incident: Some(i),
        update_mask: mask_if_any(paths),
        request_id: String::new(),
    }
}

/// A valid "Update" post on `id`, changed by `f`.
pub fn post_with(
    id: &str,
    f: impl FnOnce(&mut PostStatusUpdateRequest),
) -> PostStatusUpdateRequest {
    let mut r = PostStatusUpdateRequest {
        incident_id: id.to_owned(),
        message: "Still investigating".into(),
        ..Default::default()
    };
    f(&mut r);
    r
}

pub async fn deleted_component(srv: &TestServer, name: &str) -> Component {
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

pub async fn declare(srv: &TestServer, incident: Incident) -> Incident {
    create_incident(&mut srv.incidents().await, incident).await
}

pub async fn maintenance(srv: &TestServer) -> Incident {
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
pub fn tamper(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// A token shaped like the server's (base64url of a 16-byte tag and a JSON
/// body) but signed by nobody.
pub fn forged_token() -> String {
    use base64::Engine;
    let mut raw = vec![0u8; 16];
    raw.extend_from_slice(br#"{"f":"000000000000000000000000","c":{"create_time":0,"id":"x"}}"#);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

//! Values the requests are made of.

use incident_client::prost_types::{FieldMask, Timestamp};
use incident_client::{Component, ComponentImpact, ImpactLevel, Incident, IncidentKind};

/// Parses an RFC 3339 string (e.g. `"2023-08-11T10:04:00+02:00"`) into a
/// protobuf `Timestamp`.
pub fn ts(s: &str) -> Timestamp {
    let t = chrono::DateTime::parse_from_rfc3339(s).expect("rfc3339");
    Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// Now plus `secs` seconds (negative: in the past).
pub fn from_now(secs: i64) -> Timestamp {
    let t = chrono::Utc::now() + chrono::TimeDelta::seconds(secs);
    Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// Nanoseconds since the epoch of a timestamp that must be set; a total
/// order key for comparing timestamps.
pub fn nanos(t: &Option<Timestamp>) -> i128 {
    let t = t.as_ref().expect("timestamp set");
    i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos)
}

/// A fresh, unique `request_id` (UUIDv7); also an id nothing has.
pub fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A field mask naming these paths.
pub fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// A field mask naming these paths; none at all when `paths` is empty.
pub fn mask_if_any(paths: &[&str]) -> Option<FieldMask> {
    if paths.is_empty() { None } else { mask(paths) }
}

/// An incident (kind `Incident`) with only its title set, ready to create.
pub fn plain_incident(title: &str) -> Incident {
    Incident {
        title: title.into(),
        kind: IncidentKind::Incident as i32,
        ..Default::default()
    }
}

/// An impact of `level` on component `c`.
pub fn impact(c: &Component, level: ImpactLevel) -> ComponentImpact {
    ComponentImpact {
        component_id: c.id.clone(),
        impact: level as i32,
        ..Default::default()
    }
}

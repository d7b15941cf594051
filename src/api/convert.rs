//! Domain values to proto messages.

use crate::domain::incident::{ImpactWindow, RoleAssignment};
use crate::domain::{Component, ComponentImpact, Incident, StatusUpdate, Time, Visibility};
use crate::proto as pb;

/// A time as a Timestamp.
pub fn ts(t: Time) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn opt_ts(t: Option<Time>) -> Option<prost_types::Timestamp> {
    t.map(ts)
}

fn impacts(list: &[ComponentImpact]) -> Vec<pb::ComponentImpact> {
    list.iter()
        .map(|c| pb::ComponentImpact {
            component_id: c.component_id.to_string(),
            impact: c.impact.code(),
        })
        .collect()
}

fn window(w: &ImpactWindow) -> pb::ImpactWindow {
    pb::ImpactWindow {
        start_time: Some(ts(w.start_time)),
        end_time: opt_ts(w.end_time),
        impact: w.impact.code(),
        component_ids: w.component_ids.iter().map(ToString::to_string).collect(),
        description: w.description.clone(),
        duration: w.duration.map(|d| prost_types::Duration {
            seconds: d.num_seconds(),
            nanos: d.subsec_nanos(),
        }),
    }
}

fn role(r: &RoleAssignment) -> pb::RoleAssignment {
    pb::RoleAssignment {
        role: r.role.clone(),
        assignee: r.assignee.clone(),
    }
}

/// An incident.
pub fn incident(i: &Incident) -> pb::Incident {
    pb::Incident {
        id: i.id.to_string(),
        reference: i.reference(),
        title: i.title.clone(),
        summary: i.summary.clone(),
        kind: i.kind.code(),
        severity: i.severity.map_or(0, |s| s.code()),
        status: i.status.code(),
        component_impacts: impacts(&i.component_impacts),
        impact_windows: i.impact_windows.iter().map(window).collect(),
        scheduled_start_time: opt_ts(i.scheduled_start_time),
        scheduled_end_time: opt_ts(i.scheduled_end_time),
        roles: i.roles.iter().map(role).collect(),
        labels: i.labels.clone(),
        next_update_time: opt_ts(i.next_update_time),
        declare_time: Some(ts(i.declare_time)),
        identify_time: opt_ts(i.identify_time),
        mitigate_time: opt_ts(i.mitigate_time),
        resolve_time: opt_ts(i.resolve_time),
        postmortem_publish_time: opt_ts(i.postmortem_publish_time),
        action_item_count: i.action_item_count as i32,
        open_action_item_count: i.open_action_item_count as i32,
        create_time: Some(ts(i.create_time)),
        update_time: Some(ts(i.update_time)),
        delete_time: opt_ts(i.delete_time),
        etag: i.etag(),
    }
}

/// A status update.
pub fn status_update(u: &StatusUpdate) -> pb::StatusUpdate {
    pb::StatusUpdate {
        id: u.id.to_string(),
        incident_id: u.incident_id.to_string(),
        status: u.status.code(),
        message: u.message.clone(),
        component_impacts: impacts(&u.component_impacts),
        next_update_time: opt_ts(u.next_update_time),
        visibility: match u.visibility {
            Visibility::Public => pb::Visibility::Public,
            Visibility::Internal => pb::Visibility::Internal,
        } as i32,
        author: u.author.clone(),
        post_time: Some(ts(u.post_time)),
        create_time: Some(ts(u.create_time)),
    }
}

/// A component.
pub fn component(c: &Component) -> pb::Component {
    pb::Component {
        id: c.id.to_string(),
        name: c.name.clone(),
        description: c.description.clone(),
        parent_id: c.parent_id.map(|p| p.to_string()).unwrap_or_default(),
        status: c.status.code(),
        create_time: Some(ts(c.create_time)),
        update_time: Some(ts(c.update_time)),
        delete_time: opt_ts(c.delete_time),
        etag: c.etag(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ImpactLevel, IncidentKind, IncidentStatus, Severity};

    /// The domain codes are the proto numbers; this catches either drifting.
    #[test]
    fn domain_codes_equal_proto_numbers() {
        for s in IncidentStatus::ALL {
            let name = pb::IncidentStatus::try_from(s.code())
                .unwrap()
                .as_str_name();
            assert!(
                name.ends_with(
                    &format!("{s:?}")
                        .to_uppercase()
                        .replace("INPROGRESS", "IN_PROGRESS")
                )
            );
        }
        assert_eq!(pb::Severity::P0 as i32, Severity::P0.code());
        assert_eq!(pb::Severity::P4 as i32, Severity::P4.code());
        assert_eq!(
            pb::IncidentKind::Maintenance as i32,
            IncidentKind::Maintenance.code()
        );
        assert_eq!(
            pb::ImpactLevel::UnderMaintenance as i32,
            ImpactLevel::UnderMaintenance.code()
        );
        assert_eq!(
            pb::ImpactLevel::MajorOutage as i32,
            ImpactLevel::MajorOutage.code()
        );
        for k in crate::domain::EventKind::ALL {
            assert!(pb::TimelineEventKind::try_from(k.code()).is_ok());
        }
        assert_eq!(crate::domain::EventKind::ALL.len(), 16);
    }
}

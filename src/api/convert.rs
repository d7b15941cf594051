//! Domain values to proto messages.

use crate::component_names::NameOf;
use crate::domain::correction::Revision;
use crate::domain::event::VisibilityTarget;
use crate::domain::incident::{ImpactChange, ImpactWindow, RoleAssignment};
use crate::domain::postmortem::Section;
use crate::domain::{
    ActionItem, Component, ComponentImpact, Event, EventPayload, FieldChange, Incident,
    IncidentSnapshot, Postmortem, StatusUpdate, Time,
};
use crate::proto as pb;
use crate::proto::timeline_event::Payload;

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

fn impacts(list: &[ComponentImpact], names: &dyn NameOf) -> Vec<pb::ComponentImpact> {
    list.iter()
        .map(|c| pb::ComponentImpact {
            component_id: c.component_id.to_string(),
            impact: c.impact.code(),
            component_name: names.name_of(c.component_id).to_owned(),
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

/// An incident; `names` names the components it affects.
pub fn incident(i: &Incident, names: &dyn NameOf) -> pb::Incident {
    pb::Incident {
        id: i.id.to_string(),
        reference: i.reference(),
        title: i.title.clone(),
        summary: i.summary.clone(),
        kind: i.kind.code(),
        severity: i.severity.map_or(0, |s| s.code()),
        status: i.status.code(),
        component_impacts: impacts(&i.component_impacts, names),
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
        visibility: i.visibility.code(),
    }
}

/// A status update; `names` names the components it affects.
pub fn status_update(u: &StatusUpdate, names: &dyn NameOf) -> pb::StatusUpdate {
    pb::StatusUpdate {
        id: u.id.to_string(),
        incident_id: u.incident_id.to_string(),
        status: u.status.code(),
        message: u.message.clone(),
        component_impacts: impacts(&u.component_impacts, names),
        next_update_time: opt_ts(u.next_update_time),
        visibility: u.visibility.code(),
        author: u.author.clone(),
        post_time: Some(ts(u.post_time)),
        create_time: Some(ts(u.create_time)),
        revisions: u.revisions.iter().map(revision).collect(),
        edit_time: opt_ts(u.edit_time),
        etag: u.etag(),
    }
}

fn revision(r: &Revision) -> pb::Revision {
    pb::Revision {
        message: r.message.clone(),
        visibility: r.visibility.code(),
        editor: r.editor.clone(),
        edit_time: Some(ts(r.edit_time)),
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

/// An action item.
pub fn action_item(a: &ActionItem) -> pb::ActionItem {
    pb::ActionItem {
        id: a.id.to_string(),
        incident_id: a.incident_id.to_string(),
        title: a.title.clone(),
        description: a.description.clone(),
        owner: a.owner.clone(),
        status: a.status.code(),
        priority: a.priority.map_or(0, |p| p.code()),
        due_time: opt_ts(a.due_time),
        complete_time: opt_ts(a.complete_time),
        labels: a.labels.clone(),
        create_time: Some(ts(a.create_time)),
        update_time: Some(ts(a.update_time)),
        delete_time: opt_ts(a.delete_time),
        etag: a.etag(),
    }
}

/// Postmortem sections.
pub fn sections(list: &[Section]) -> Vec<pb::PostmortemSection> {
    list.iter()
        .map(|s| pb::PostmortemSection {
            title: s.title.clone(),
            body: s.body.clone(),
        })
        .collect()
}

/// A postmortem.
pub fn postmortem(p: &Postmortem) -> pb::Postmortem {
    pb::Postmortem {
        incident_id: p.incident_id.to_string(),
        body: p.body.clone(),
        sections: sections(&p.sections),
        author: p.author.clone(),
        publish_time: opt_ts(p.publish_time),
        update_time: opt_ts(p.update_time),
        etag: p.etag(),
    }
}

/// The incident as of an event.
pub fn snapshot(s: &IncidentSnapshot) -> pb::IncidentSnapshot {
    pb::IncidentSnapshot {
        id: s.id.to_string(),
        reference: format!("INC-{}", s.number),
        title: s.title.clone(),
        severity: s.severity.map_or(0, |s| s.code()),
        status: s.status.code(),
        kind: s.kind.code(),
        component_ids: s.component_ids.iter().map(ToString::to_string).collect(),
        visibility: s.visibility.code(),
    }
}

/// A JSON value as a `google.protobuf.Value`.
pub fn value(v: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(value).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(prost_types::Struct {
            fields: o.iter().map(|(k, v)| (k.clone(), value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

fn changes(list: &[FieldChange]) -> Vec<pb::FieldChange> {
    list.iter()
        .map(|c| pb::FieldChange {
            path: c.path.clone(),
            old_value: c.old_value.as_ref().map(value),
            new_value: c.new_value.as_ref().map(value),
        })
        .collect()
}

fn impact_change(c: &ImpactChange) -> pb::ComponentImpactChange {
    pb::ComponentImpactChange {
        component_id: c.component_id.to_string(),
        component_name: c.component_name.clone(),
        old_impact: c.old.map_or(0, |i| i.code()),
        new_impact: c.new.code(),
    }
}

/// A timeline event; `names` names components as of the event.
pub fn event(e: &Event, names: &dyn NameOf) -> pb::TimelineEvent {
    let payload = match &e.payload {
        EventPayload::IncidentCreated { incident: i } => {
            Payload::IncidentCreated(pb::IncidentCreated {
                incident: Some(incident(i, names)),
            })
        }
        EventPayload::IncidentUpdated { changes: c } => {
            Payload::IncidentUpdated(pb::IncidentUpdated {
                changes: changes(c),
            })
        }
        EventPayload::StatusChanged {
            change,
            status_update_id,
        } => Payload::StatusChanged(pb::StatusChanged {
            old_status: change.old.code(),
            new_status: change.new.code(),
            status_update_id: status_update_id.to_string(),
            reopened: change.reopened,
        }),
        EventPayload::StatusUpdatePosted { status_update: u } => {
            Payload::StatusUpdatePosted(pb::StatusUpdatePosted {
                status_update: Some(status_update(u, names)),
            })
        }
        EventPayload::NoteAdded { text, visibility } => Payload::NoteAdded(pb::NoteAdded {
            text: text.clone(),
            visibility: visibility.code(),
        }),
        EventPayload::StatusUpdateEdited {
            status_update: u,
            old_message,
        } => Payload::StatusUpdateEdited(pb::StatusUpdateEdited {
            status_update: Some(pb::StatusUpdate {
                // The event says what changed; the update holds the history.
                revisions: Vec::new(),
                ..status_update(u, names)
            }),
            old_message: old_message.clone(),
        }),
        EventPayload::NoteEdited {
            note_sequence,
            text,
            visibility,
            old_text,
        } => Payload::NoteEdited(pb::NoteEdited {
            note_sequence: *note_sequence,
            text: text.clone(),
            visibility: visibility.code(),
            old_text: old_text.clone(),
        }),
        EventPayload::VisibilityChanged { target, old, new } => {
            let (status_update_id, note_sequence) = match target {
                VisibilityTarget::Incident => (String::new(), 0),
                VisibilityTarget::StatusUpdate { id } => (id.to_string(), 0),
                VisibilityTarget::Note { sequence } => (String::new(), *sequence),
            };
            Payload::VisibilityChanged(pb::VisibilityChanged {
                status_update_id,
                note_sequence,
                old_visibility: old.code(),
                new_visibility: new.code(),
            })
        }
        EventPayload::ComponentImpactChanged {
            changes: c,
            status_update_id,
        } => Payload::ComponentImpactChanged(pb::ComponentImpactChanged {
            changes: c.iter().map(impact_change).collect(),
            status_update_id: status_update_id.map(|u| u.to_string()).unwrap_or_default(),
        }),
        EventPayload::IncidentDeleted { delete_time } => {
            Payload::IncidentDeleted(pb::IncidentDeleted {
                delete_time: Some(ts(*delete_time)),
            })
        }
        EventPayload::IncidentUndeleted { incident: i } => {
            Payload::IncidentUndeleted(pb::IncidentUndeleted {
                incident: Some(incident(i, names)),
            })
        }
        EventPayload::ComponentCreated { component: c } => {
            Payload::ComponentCreated(pb::ComponentCreated {
                component: Some(component(c)),
            })
        }
        EventPayload::ComponentUpdated {
            component: c,
            changes: ch,
        } => Payload::ComponentUpdated(pb::ComponentUpdated {
            component: Some(component(c)),
            changes: changes(ch),
        }),
        EventPayload::ComponentDeleted { component: c } => {
            Payload::ComponentDeleted(pb::ComponentDeleted {
                component: Some(component(c)),
            })
        }
        EventPayload::ActionItemCreated { action_item: a } => {
            Payload::ActionItemCreated(pb::ActionItemCreated {
                action_item: Some(action_item(a)),
            })
        }
        EventPayload::ActionItemUpdated {
            action_item: a,
            changes: ch,
        } => Payload::ActionItemUpdated(pb::ActionItemUpdated {
            action_item: Some(action_item(a)),
            changes: changes(ch),
        }),
        EventPayload::ActionItemDeleted { action_item: a } => {
            Payload::ActionItemDeleted(pb::ActionItemDeleted {
                action_item: Some(action_item(a)),
            })
        }
        EventPayload::PostmortemUpdated {
            changes: ch,
            section_titles,
        } => Payload::PostmortemUpdated(pb::PostmortemUpdated {
            changes: changes(ch),
            section_titles: section_titles.clone(),
        }),
        EventPayload::PostmortemPublished {
            publish_time,
            author,
            section_titles,
        } => Payload::PostmortemPublished(pb::PostmortemPublished {
            publish_time: Some(ts(*publish_time)),
            author: author.clone(),
            section_titles: section_titles.clone(),
        }),
    };
    pb::TimelineEvent {
        sequence: e.sequence,
        kind: e.kind.code(),
        incident_id: e
            .incident
            .as_ref()
            .map(|s| s.id.to_string())
            .unwrap_or_default(),
        incident: e.incident.as_ref().map(snapshot),
        event_time: Some(ts(e.event_time)),
        occur_time: Some(ts(e.occur_time)),
        actor: e.actor.clone(),
        payload: Some(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ImpactLevel, IncidentKind, IncidentStatus, Severity, Visibility};

    /// Domain codes are the proto numbers and domain names the proto names;
    /// this catches either drifting.
    #[test]
    fn domain_enums_mirror_the_proto_enums() {
        fn check<D: Copy, P: TryFrom<i32>>(
            all: &[D],
            code: fn(D) -> i32,
            name: fn(D) -> &'static str,
            pname: fn(P) -> &'static str,
        ) {
            for d in all {
                let p = P::try_from(code(*d))
                    .ok()
                    .expect("proto value for every domain value");
                assert_eq!(pname(p), name(*d));
            }
        }
        use crate::domain::{ActionItemStatus, EventKind, Priority};
        check(
            Severity::ALL,
            Severity::code,
            Severity::name,
            |p: pb::Severity| p.as_str_name(),
        );
        check(
            IncidentKind::ALL,
            IncidentKind::code,
            IncidentKind::name,
            |p: pb::IncidentKind| p.as_str_name(),
        );
        check(
            IncidentStatus::ALL,
            IncidentStatus::code,
            IncidentStatus::name,
            |p: pb::IncidentStatus| p.as_str_name(),
        );
        check(
            ImpactLevel::ALL,
            ImpactLevel::code,
            ImpactLevel::name,
            |p: pb::ImpactLevel| p.as_str_name(),
        );
        check(
            ActionItemStatus::ALL,
            ActionItemStatus::code,
            ActionItemStatus::name,
            |p: pb::ActionItemStatus| p.as_str_name(),
        );
        check(
            Priority::ALL,
            Priority::code,
            Priority::name,
            |p: pb::Priority| p.as_str_name(),
        );
        check(
            EventKind::ALL,
            EventKind::code,
            EventKind::name,
            |p: pb::TimelineEventKind| p.as_str_name(),
        );
        check(
            Visibility::ALL,
            Visibility::code,
            Visibility::name,
            |p: pb::Visibility| p.as_str_name(),
        );
        // Every proto value but UNSPECIFIED has its domain twin.
        assert_eq!(EventKind::ALL.len(), 19);
        assert_eq!(Visibility::ALL.len(), 2);
        assert_eq!(IncidentStatus::ALL.len(), 8);
    }
}

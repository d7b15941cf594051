//! Which timeline events a subscriber or a listing asked for. Evaluated against
//! each event's own incident snapshot, so a replay and the live stream select
//! the same events.

use super::{ComponentId, Event, EventKind, EventPayload, IncidentId, Severity};

/// A conjunction of optional conditions; an empty filter matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EventFilter {
    /// The event's incident is one of these.
    pub incident_ids: Vec<IncidentId>,
    /// The event is of one of these kinds.
    pub kinds: Vec<EventKind>,
    /// The event's incident is at least this severe (unassessed never matches).
    pub severity_at_least: Option<Severity>,
    /// The event's incident affects this component, or the event is about it.
    pub component_id: Option<ComponentId>,
}

impl EventFilter {
    /// Whether `e` is selected.
    pub fn matches(&self, e: &Event) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&e.kind) {
            return false;
        }
        let snapshot = e.incident.as_ref();
        if !self.incident_ids.is_empty()
            && !snapshot.is_some_and(|s| self.incident_ids.contains(&s.id))
        {
            return false;
        }
        if let Some(floor) = self.severity_at_least
            && !snapshot
                .and_then(|s| s.severity)
                .is_some_and(|s| s.at_least(floor))
        {
            return false;
        }
        if let Some(c) = self.component_id {
            let about_component = match &e.payload {
                EventPayload::ComponentCreated { component }
                | EventPayload::ComponentUpdated { component, .. }
                | EventPayload::ComponentDeleted { component } => component.id == c,
                _ => false,
            };
            if !about_component && !snapshot.is_some_and(|s| s.component_ids.contains(&c)) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::{IncidentKind, IncidentSnapshot, IncidentStatus};
    use super::*;
    use proptest::prelude::*;

    fn event(severity: Option<Severity>, kind: EventKind, components: Vec<ComponentId>) -> Event {
        Event {
            sequence: 1,
            kind,
            incident: Some(IncidentSnapshot {
                id: IncidentId(uuid::Uuid::from_u128(1)),
                number: 1,
                title: "t".into(),
                severity,
                status: IncidentStatus::Investigating,
                kind: IncidentKind::Incident,
                component_ids: components,
            }),
            event_time: chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
            occur_time: chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
            actor: "a".into(),
            payload: EventPayload::NoteAdded { text: "n".into() },
        }
    }

    #[test]
    fn unassessed_severity_never_matches_a_floor() {
        let f = EventFilter {
            severity_at_least: Some(Severity::P4),
            ..Default::default()
        };
        assert!(!f.matches(&event(None, EventKind::NoteAdded, vec![])));
        assert!(f.matches(&event(Some(Severity::P4), EventKind::NoteAdded, vec![])));
    }

    proptest! {
        #[test]
        fn severity_floor_selects_exactly_the_more_severe(sev in 1i32..=5, floor in 1i32..=5) {
            let f = EventFilter { severity_at_least: Severity::from_code(floor), ..Default::default() };
            let e = event(Severity::from_code(sev), EventKind::NoteAdded, vec![]);
            prop_assert_eq!(f.matches(&e), sev <= floor);
        }

        #[test]
        fn conditions_combine_as_and(kind_ok: bool, comp_ok: bool) {
            let c = ComponentId(uuid::Uuid::from_u128(7));
            let other = ComponentId(uuid::Uuid::from_u128(8));
            let f = EventFilter {
                kinds: vec![EventKind::NoteAdded],
                component_id: Some(c),
                ..Default::default()
            };
            let e = event(
                None,
                if kind_ok { EventKind::NoteAdded } else { EventKind::StatusChanged },
                vec![if comp_ok { c } else { other }],
            );
            prop_assert_eq!(f.matches(&e), kind_ok && comp_ok);
        }
    }
}

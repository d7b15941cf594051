//! Which timeline events a subscriber or a listing asked for. Evaluated against
//! each event's own incident snapshot, so a replay and the live stream select
//! the same events.

use super::{ComponentId, EventKeys, EventKind, IncidentId, Severity};

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
    /// Whether the event with these keys is selected.
    pub fn matches(&self, e: &EventKeys) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&e.kind) {
            return false;
        }
        if !self.incident_ids.is_empty()
            && !e
                .incident_id
                .is_some_and(|id| self.incident_ids.contains(&id))
        {
            return false;
        }
        if let Some(floor) = self.severity_at_least
            && !e.severity.is_some_and(|s| s.at_least(floor))
        {
            return false;
        }
        if let Some(c) = self.component_id
            && !e.component_ids.contains(&c)
        {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        Event, EventPayload, IncidentKind, IncidentSnapshot, IncidentStatus, Visibility,
    };
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
                visibility: Visibility::Internal,
            }),
            event_time: chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
            occur_time: chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
            actor: "a".into(),
            payload: EventPayload::NoteAdded {
                text: "n".into(),
                visibility: Visibility::Internal,
            },
        }
    }

    fn keys(
        severity: Option<Severity>,
        kind: EventKind,
        components: Vec<ComponentId>,
    ) -> EventKeys {
        event(severity, kind, components).keys()
    }

    #[test]
    fn a_component_event_matches_the_component_it_is_about() {
        let c = ComponentId(uuid::Uuid::from_u128(7));
        let e = Event {
            kind: EventKind::ComponentDeleted,
            incident: None,
            payload: EventPayload::ComponentDeleted {
                component: Box::new(crate::domain::Component::new(
                    c,
                    "db".into(),
                    String::new(),
                    None,
                    chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
                )),
            },
            ..event(None, EventKind::NoteAdded, vec![])
        };
        let f = EventFilter {
            component_id: Some(c),
            ..Default::default()
        };
        assert!(f.matches(&e.keys()));
        let other = EventFilter {
            component_id: Some(ComponentId(uuid::Uuid::from_u128(8))),
            ..Default::default()
        };
        assert!(!other.matches(&e.keys()));
    }

    #[test]
    fn unassessed_severity_never_matches_a_floor() {
        let f = EventFilter {
            severity_at_least: Some(Severity::P4),
            ..Default::default()
        };
        assert!(!f.matches(&keys(None, EventKind::NoteAdded, vec![])));
        assert!(f.matches(&keys(Some(Severity::P4), EventKind::NoteAdded, vec![])));
    }

    proptest! {
        #[test]
        fn severity_floor_selects_exactly_the_more_severe(sev in 1i32..=5, floor in 1i32..=5) {
            let f = EventFilter { severity_at_least: Severity::from_code(floor), ..Default::default() };
            let e = event(Severity::from_code(sev), EventKind::NoteAdded, vec![]);
            prop_assert_eq!(f.matches(&e.keys()), sev <= floor);
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
            prop_assert_eq!(f.matches(&e.keys()), kind_ok && comp_ok);
        }
    }
}

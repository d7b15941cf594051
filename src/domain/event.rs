//! The timeline: append-only events, each carrying the incident snapshot that
//! subscription filters look at and a payload a bot can render on its own.

use serde::{Deserialize, Serialize};

use super::change::FieldChange;
use super::incident::{ImpactChange, StatusChange};
use super::status::coded_enum;
use super::{
    ActionItem, Component, ComponentId, Incident, IncidentId, IncidentKind, IncidentStatus,
    Severity, StatusUpdate, StatusUpdateId, Time, Visibility,
};

coded_enum!(
    /// What a timeline event records.
    EventKind {
        IncidentCreated = 1 => "TIMELINE_EVENT_KIND_INCIDENT_CREATED",
        IncidentUpdated = 2 => "TIMELINE_EVENT_KIND_INCIDENT_UPDATED",
        StatusChanged = 3 => "TIMELINE_EVENT_KIND_STATUS_CHANGED",
        StatusUpdatePosted = 4 => "TIMELINE_EVENT_KIND_STATUS_UPDATE_POSTED",
        NoteAdded = 5 => "TIMELINE_EVENT_KIND_NOTE_ADDED",
        ComponentImpactChanged = 6 => "TIMELINE_EVENT_KIND_COMPONENT_IMPACT_CHANGED",
        ActionItemCreated = 7 => "TIMELINE_EVENT_KIND_ACTION_ITEM_CREATED",
        ActionItemUpdated = 8 => "TIMELINE_EVENT_KIND_ACTION_ITEM_UPDATED",
        ActionItemDeleted = 9 => "TIMELINE_EVENT_KIND_ACTION_ITEM_DELETED",
        PostmortemUpdated = 10 => "TIMELINE_EVENT_KIND_POSTMORTEM_UPDATED",
        PostmortemPublished = 11 => "TIMELINE_EVENT_KIND_POSTMORTEM_PUBLISHED",
        IncidentDeleted = 12 => "TIMELINE_EVENT_KIND_INCIDENT_DELETED",
        IncidentUndeleted = 13 => "TIMELINE_EVENT_KIND_INCIDENT_UNDELETED",
        ComponentCreated = 14 => "TIMELINE_EVENT_KIND_COMPONENT_CREATED",
        ComponentUpdated = 15 => "TIMELINE_EVENT_KIND_COMPONENT_UPDATED",
        ComponentDeleted = 16 => "TIMELINE_EVENT_KIND_COMPONENT_DELETED",
        VisibilityChanged = 17 => "TIMELINE_EVENT_KIND_VISIBILITY_CHANGED",
        StatusUpdateEdited = 18 => "TIMELINE_EVENT_KIND_STATUS_UPDATE_EDITED",
        NoteEdited = 19 => "TIMELINE_EVENT_KIND_NOTE_EDITED",
    }
);

/// The incident as of one event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentSnapshot {
    pub id: IncidentId,
    pub number: i64,
    pub title: String,
    pub severity: Option<Severity>,
    pub status: IncidentStatus,
    pub kind: IncidentKind,
    pub component_ids: Vec<ComponentId>,
    #[serde(default = "Visibility::internal")]
    pub visibility: Visibility,
}

/// What changed visibility.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VisibilityTarget {
    Incident,
    StatusUpdate {
        id: StatusUpdateId,
    },
    /// The note added by the event with this sequence.
    Note {
        sequence: u64,
    },
}

impl From<&Incident> for IncidentSnapshot {
    fn from(i: &Incident) -> Self {
        IncidentSnapshot {
            id: i.id,
            number: i.number,
            title: i.title.clone(),
            severity: i.severity,
            status: i.status,
            kind: i.kind,
            component_ids: i.component_ids(),
            visibility: i.visibility,
        }
    }
}

/// What happened, in detail. The log keeps it in its wire form (protobuf),
/// so what may change is what the proto allows: fields added, numbers never
/// reused. The serde form is what request_id records keep of an AddNote
/// answer, and what logs written before the wire form held.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventPayload {
    IncidentCreated {
        incident: Box<Incident>,
    },
    IncidentUpdated {
        changes: Vec<FieldChange>,
    },
    StatusChanged {
        change: StatusChange,
        status_update_id: StatusUpdateId,
    },
    StatusUpdatePosted {
        status_update: Box<StatusUpdate>,
    },
    NoteAdded {
        text: String,
        #[serde(default = "Visibility::internal")]
        visibility: Visibility,
    },
    VisibilityChanged {
        target: VisibilityTarget,
        old: Visibility,
        new: Visibility,
    },
    StatusUpdateEdited {
        status_update: Box<StatusUpdate>,
        old_message: String,
    },
    NoteEdited {
        note_sequence: u64,
        text: String,
        visibility: Visibility,
        old_text: String,
    },
    ComponentImpactChanged {
        changes: Vec<ImpactChange>,
        status_update_id: Option<StatusUpdateId>,
    },
    IncidentDeleted {
        delete_time: Time,
    },
    IncidentUndeleted {
        incident: Box<Incident>,
    },
    ComponentCreated {
        component: Box<Component>,
    },
    ComponentUpdated {
        component: Box<Component>,
        changes: Vec<FieldChange>,
    },
    ComponentDeleted {
        component: Box<Component>,
    },
    ActionItemCreated {
        action_item: Box<ActionItem>,
    },
    ActionItemUpdated {
        action_item: Box<ActionItem>,
        changes: Vec<FieldChange>,
    },
    ActionItemDeleted {
        action_item: Box<ActionItem>,
    },
    PostmortemUpdated {
        changes: Vec<FieldChange>,
        section_titles: Vec<String>,
    },
    PostmortemPublished {
        publish_time: Time,
        author: String,
        section_titles: Vec<String>,
    },
}

impl EventPayload {
    /// The kind of event this payload belongs to.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::IncidentCreated { .. } => EventKind::IncidentCreated,
            Self::IncidentUpdated { .. } => EventKind::IncidentUpdated,
            Self::StatusChanged { .. } => EventKind::StatusChanged,
            Self::StatusUpdatePosted { .. } => EventKind::StatusUpdatePosted,
            Self::NoteAdded { .. } => EventKind::NoteAdded,
            Self::VisibilityChanged { .. } => EventKind::VisibilityChanged,
            Self::StatusUpdateEdited { .. } => EventKind::StatusUpdateEdited,
            Self::NoteEdited { .. } => EventKind::NoteEdited,
            Self::ComponentImpactChanged { .. } => EventKind::ComponentImpactChanged,
            Self::IncidentDeleted { .. } => EventKind::IncidentDeleted,
            Self::IncidentUndeleted { .. } => EventKind::IncidentUndeleted,
            Self::ComponentCreated { .. } => EventKind::ComponentCreated,
            Self::ComponentUpdated { .. } => EventKind::ComponentUpdated,
            Self::ComponentDeleted { .. } => EventKind::ComponentDeleted,
            Self::ActionItemCreated { .. } => EventKind::ActionItemCreated,
            Self::ActionItemUpdated { .. } => EventKind::ActionItemUpdated,
            Self::ActionItemDeleted { .. } => EventKind::ActionItemDeleted,
            Self::PostmortemUpdated { .. } => EventKind::PostmortemUpdated,
            Self::PostmortemPublished { .. } => EventKind::PostmortemPublished,
        }
    }
}

/// An event about to be appended.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// The incident as of this event; `None` for component events.
    pub incident: Option<IncidentSnapshot>,
    pub occur_time: Time,
    pub actor: String,
    pub payload: EventPayload,
}

/// An event as committed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub sequence: u64,
    pub kind: EventKind,
    pub incident: Option<IncidentSnapshot>,
    pub event_time: Time,
    pub occur_time: Time,
    pub actor: String,
    pub payload: EventPayload,
}

impl Event {
    /// `event` as committed at `event_time` with number `sequence`.
    pub fn numbered(event: NewEvent, sequence: u64, event_time: Time) -> Event {
        Event {
            sequence,
            kind: event.payload.kind(),
            incident: event.incident,
            event_time,
            occur_time: event.occur_time,
            actor: event.actor,
            payload: event.payload,
        }
    }
}

/// What subscription filters look at in an event. Kept beside its encoded
/// form in the log, so a replay filters without decoding the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventKeys {
    pub sequence: u64,
    pub kind: EventKind,
    pub incident_id: Option<IncidentId>,
    /// The incident's severity as of the event.
    pub severity: Option<Severity>,
    /// The components the incident affected as of the event, and the
    /// component a component event is about.
    pub component_ids: Vec<ComponentId>,
}

impl Event {
    /// The component a component event is about.
    pub fn component(&self) -> Option<&Component> {
        match &self.payload {
            EventPayload::ComponentCreated { component }
            | EventPayload::ComponentUpdated { component, .. }
            | EventPayload::ComponentDeleted { component } => Some(component),
            _ => None,
        }
    }

    /// The filter keys of this event.
    pub fn keys(&self) -> EventKeys {
        let mut component_ids = self
            .incident
            .as_ref()
            .map(|s| s.component_ids.clone())
            .unwrap_or_default();
        if let Some(component) = self.component()
            && !component_ids.contains(&component.id)
        {
            component_ids.push(component.id);
        }
        EventKeys {
            sequence: self.sequence,
            kind: self.kind,
            incident_id: self.incident.as_ref().map(|s| s.id),
            severity: self.incident.as_ref().and_then(|s| s.severity),
            component_ids,
        }
    }
}

/// An event as the log keeps it: its filter keys and its wire encoding (an
/// encoded `incident.v1.TimelineEvent`), which every reader and subscriber is
/// sent as it is.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedEvent {
    pub keys: EventKeys,
    pub body: bytes::Bytes,
}

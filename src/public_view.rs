//! What the public may see: the public role and VIEW_PUBLIC read through
//! here, and nothing else decides it.
//!
//! Every projection is an allowlist on the wire form: a reply is rebuilt from
//! the fields the public may read, so a field added to a message later stays
//! hidden until it is added here. Events are projected when read, from what
//! the things they name are now (the stored event never changes): a status
//! update made INTERNAL after it was posted disappears from the public
//! timeline, one made PUBLIC appears in it, a corrected one reads as
//! corrected, and an incident's title and summary read as they are now (so
//! what an incident was called while it was internal never shows).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::domain::postmortem::Published;
use crate::domain::{IncidentId, Visibility};
use crate::proto as pb;
use crate::proto::timeline_event::Payload;

/// A status update or a note as it now is: whether the public may see it,
/// and its current text.
#[derive(Clone, Debug, PartialEq)]
pub struct Shown {
    pub visibility: Visibility,
    pub text: String,
    /// When it was last corrected.
    pub edit_time: Option<prost_types::Timestamp>,
}

/// An incident as the public may know it now.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    /// PUBLIC and not deleted: its title and summary as they now are.
    Public { title: String, summary: String },
    /// PUBLIC but deleted: the public learns that, and nothing else.
    Deleted,
}

/// What projecting events needs to know about the things they name, as they
/// are now. Anything absent is hidden (an INTERNAL incident is absent).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    /// PUBLIC incidents, by id.
    pub incidents: HashMap<String, Seen>,
    /// Status updates, by id.
    pub updates: HashMap<String, Shown>,
    /// Notes corrected since they were added, as they now are, by the
    /// sequence of their NOTE_ADDED event. A note not here is as that event
    /// says.
    pub notes: HashMap<u64, Shown>,
}

/// The things a run of events names, whose facts it needs: incidents, and
/// the updates and notes of each.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Named {
    pub incidents: BTreeMap<String, Posts>,
}

/// The updates and notes of one incident that events name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Posts {
    pub updates: BTreeSet<String>,
    pub notes: BTreeSet<u64>,
}

impl Named {
    /// Adds what `e` names.
    pub fn add(&mut self, e: &pb::TimelineEvent) {
        if e.incident_id.is_empty() {
            return;
        }
        let posts = self.incidents.entry(e.incident_id.clone()).or_default();
        let update = match &e.payload {
            Some(
                Payload::StatusUpdatePosted(pb::StatusUpdatePosted { status_update })
                | Payload::StatusUpdateEdited(pb::StatusUpdateEdited { status_update, .. }),
            ) => status_update.as_ref().map(|u| &u.id),
            Some(
                Payload::StatusChanged(pb::StatusChanged {
                    status_update_id, ..
                })
                | Payload::ComponentImpactChanged(pb::ComponentImpactChanged {
                    status_update_id,
                    ..
                }),
            ) => Some(status_update_id).filter(|id| !id.is_empty()),
            Some(Payload::NoteAdded(_)) => {
                posts.notes.insert(e.sequence);
                None
            }
            Some(Payload::NoteEdited(p)) => {
                posts.notes.insert(p.note_sequence);
                None
            }
            _ => None,
        };
        posts.updates.extend(update.cloned());
    }
}

/// The incident as the public sees it.
pub fn incident(i: &pb::Incident) -> pb::Incident {
    pb::Incident {
        id: i.id.clone(),
        reference: i.reference.clone(),
        title: i.title.clone(),
        summary: i.summary.clone(),
        kind: i.kind,
        severity: i.severity,
        status: i.status,
        visibility: i.visibility,
        component_impacts: i.component_impacts.clone(),
        impact_windows: i.impact_windows.clone(),
        scheduled_start_time: i.scheduled_start_time,
        scheduled_end_time: i.scheduled_end_time,
        next_update_time: i.next_update_time,
        declare_time: i.declare_time,
        identify_time: i.identify_time,
        mitigate_time: i.mitigate_time,
        resolve_time: i.resolve_time,
        postmortem_publish_time: i.postmortem_publish_time,
        create_time: i.create_time,
        update_time: i.update_time,
        ..Default::default()
    }
}

/// A PUBLIC status update as the public sees it: its text as it now is
/// (`text`, corrected at `edit_time`), and no author, no revisions, no
/// version.
pub fn status_update(
    u: &pb::StatusUpdate,
    text: &str,
    edit_time: Option<prost_types::Timestamp>,
) -> pb::StatusUpdate {
    pb::StatusUpdate {
        id: u.id.clone(),
        incident_id: u.incident_id.clone(),
        status: u.status,
        message: text.to_owned(),
        edit_time,
        visibility: Visibility::Public.code(),
        component_impacts: u.component_impacts.clone(),
        next_update_time: u.next_update_time,
        post_time: u.post_time,
        create_time: u.create_time,
        ..Default::default()
    }
}

/// A component as the public sees it; `status` must already come from
/// public incidents only.
pub fn component(c: &pb::Component) -> pb::Component {
    pb::Component {
        id: c.id.clone(),
        name: c.name.clone(),
        description: c.description.clone(),
        parent_id: c.parent_id.clone(),
        status: c.status,
        create_time: c.create_time,
        update_time: c.update_time,
        delete_time: c.delete_time,
        ..Default::default()
    }
}

/// Fields of INCIDENT_UPDATED the public may see change.
const PUBLIC_PATHS: &[&str] = &[
    "title",
    "summary",
    "severity",
    "impact_windows",
    "scheduled_start_time",
    "scheduled_end_time",
    "next_update_time",
    "declare_time",
    "identify_time",
    "mitigate_time",
    "resolve_time",
    "visibility",
];

/// A snapshot with the incident's current title (and visibility).
fn snapshot(s: &pb::IncidentSnapshot, title: &str) -> pb::IncidentSnapshot {
    pb::IncidentSnapshot {
        id: s.id.clone(),
        reference: s.reference.clone(),
        title: title.to_owned(),
        severity: s.severity,
        status: s.status,
        kind: s.kind,
        component_ids: s.component_ids.clone(),
        // What the public reads is public now, whatever it was then.
        visibility: Visibility::Public.code(),
    }
}

impl Facts {
    /// A status update, if the public may see it now.
    fn public_update(&self, id: &str) -> Option<&Shown> {
        self.updates
            .get(id)
            .filter(|s| s.visibility == Visibility::Public)
    }

    /// The id of a status update the public may see, or nothing.
    fn update_id(&self, id: &str) -> String {
        match self.public_update(id) {
            Some(_) => id.to_owned(),
            None => String::new(),
        }
    }

    /// A status update as the public sees it now, if it may.
    fn public_status_update(&self, u: &Option<pb::StatusUpdate>) -> Option<pb::StatusUpdate> {
        let u = u.as_ref()?;
        let now = self.public_update(&u.id)?;
        Some(status_update(u, &now.text, now.edit_time))
    }
}

/// The event as the public sees it, or `None` if it sees nothing of it.
pub fn event(e: &pb::TimelineEvent, facts: &Facts) -> Option<pb::TimelineEvent> {
    // A component's status in an event counts every incident: not shown.
    let component = |c: &Option<pb::Component>| {
        c.as_ref().map(|c| pb::Component {
            status: 0,
            ..component(c)
        })
    };
    let payload = e.payload.as_ref()?;
    let mut out = pb::TimelineEvent {
        sequence: e.sequence,
        kind: e.kind,
        incident_id: e.incident_id.clone(),
        incident: None,
        event_time: e.event_time,
        occur_time: e.occur_time,
        // Actors are people: never shown.
        actor: String::new(),
        payload: None,
    };
    if e.incident_id.is_empty() {
        // Component events: component names are public.
        out.payload = Some(match payload {
            Payload::ComponentCreated(p) => Payload::ComponentCreated(pb::ComponentCreated {
                component: component(&p.component),
            }),
            Payload::ComponentUpdated(p) => Payload::ComponentUpdated(pb::ComponentUpdated {
                component: component(&p.component),
                changes: p.changes.clone(),
            }),
            Payload::ComponentDeleted(p) => Payload::ComponentDeleted(pb::ComponentDeleted {
                component: component(&p.component),
            }),
            _ => return None,
        });
        return Some(out);
    }
    let (title, summary) = match facts.incidents.get(&e.incident_id) {
        Some(Seen::Public { title, summary }) => (title, summary),
        seen => {
            // All the public learns of an incident it cannot see: that it was
            // withdrawn or (a public one) deleted, by its id and reference.
            let told = match payload {
                Payload::VisibilityChanged(p) => {
                    p.status_update_id.is_empty() && p.note_sequence == 0
                }
                Payload::IncidentDeleted(_) => seen == Some(&Seen::Deleted),
                _ => false,
            };
            if !told {
                return None;
            }
            out.incident = e.incident.as_ref().map(|s| pb::IncidentSnapshot {
                id: s.id.clone(),
                reference: s.reference.clone(),
                ..Default::default()
            });
            out.payload = Some(payload.clone());
            return Some(out);
        }
    };
    out.incident = e.incident.as_ref().map(|s| snapshot(s, title));
    // The incident as it was created or restored, named as it is now; its
    // impact windows (free text) then are not shown, GetIncident has them now.
    let now_named = |i: &pb::Incident| pb::Incident {
        title: title.clone(),
        summary: summary.clone(),
        impact_windows: Vec::new(),
        visibility: Visibility::Public.code(),
        ..incident(i)
    };
    out.payload = Some(match payload {
        Payload::IncidentCreated(p) => Payload::IncidentCreated(pb::IncidentCreated {
            incident: p.incident.as_ref().map(now_named),
        }),
        Payload::IncidentUndeleted(p) => Payload::IncidentUndeleted(pb::IncidentUndeleted {
            incident: p.incident.as_ref().map(now_named),
        }),
        Payload::IncidentDeleted(p) => Payload::IncidentDeleted(*p),
        Payload::IncidentUpdated(p) => {
            let changes: Vec<pb::FieldChange> = p
                .changes
                .iter()
                .filter(|c| PUBLIC_PATHS.contains(&c.path.as_str()))
                .map(|c| match c.path.as_str() {
                    // Texts: the path only; what they say now is in the snapshot
                    // and the incident, what they said before is not shown.
                    "title" | "summary" | "impact_windows" => pb::FieldChange {
                        path: c.path.clone(),
                        ..Default::default()
                    },
                    _ => c.clone(),
                })
                .collect();
            if changes.is_empty() {
                return None;
            }
            Payload::IncidentUpdated(pb::IncidentUpdated { changes })
        }
        Payload::StatusChanged(p) => Payload::StatusChanged(pb::StatusChanged {
            status_update_id: facts.update_id(&p.status_update_id),
            ..p.clone()
        }),
        Payload::ComponentImpactChanged(p) => {
            Payload::ComponentImpactChanged(pb::ComponentImpactChanged {
                changes: p.changes.clone(),
                status_update_id: facts.update_id(&p.status_update_id),
            })
        }
        Payload::StatusUpdatePosted(p) => Payload::StatusUpdatePosted(pb::StatusUpdatePosted {
            status_update: Some(facts.public_status_update(&p.status_update)?),
        }),
        Payload::StatusUpdateEdited(p) => Payload::StatusUpdateEdited(pb::StatusUpdateEdited {
            status_update: Some(facts.public_status_update(&p.status_update)?),
            old_message: String::new(),
        }),
        Payload::NoteAdded(added) => {
            // As corrected since, or as added.
            let (visibility, text) = match facts.notes.get(&e.sequence) {
                Some(now) => (now.visibility, &now.text),
                None => (
                    Visibility::from_code(added.visibility).unwrap_or(Visibility::Internal),
                    &added.text,
                ),
            };
            if visibility != Visibility::Public {
                return None;
            }
            Payload::NoteAdded(pb::NoteAdded {
                text: text.clone(),
                visibility: Visibility::Public.code(),
            })
        }
        Payload::NoteEdited(p) => {
            let shown = facts
                .notes
                .get(&p.note_sequence)
                .filter(|s| s.visibility == Visibility::Public)?;
            Payload::NoteEdited(pb::NoteEdited {
                note_sequence: p.note_sequence,
                text: shown.text.clone(),
                visibility: Visibility::Public.code(),
                old_text: String::new(),
            })
        }
        Payload::PostmortemPublished(p) => Payload::PostmortemPublished(pb::PostmortemPublished {
            publish_time: p.publish_time,
            // What was published then may have been replaced since:
            // GetPostmortem has the text as published now.
            section_titles: Vec::new(),
            author: String::new(),
        }),
        Payload::VisibilityChanged(p) => Payload::VisibilityChanged(p.clone()),
        // Action items, postmortem drafts, and anything not listed here.
        _ => return None,
    });
    Some(out)
}

/// The published postmortem of incident `id`, as the public reads it: the
/// text as published, without author or version.
pub fn postmortem(id: IncidentId, published: &Published) -> pb::Postmortem {
    let at = Some(crate::api::convert::ts(published.publish_time));
    pb::Postmortem {
        incident_id: id.to_string(),
        body: published.body.clone(),
        sections: crate::api::convert::sections(&published.sections),
        publish_time: at,
        update_time: at,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01a233e2-6fa7-70db-be61-8e68e9edabe6";

    fn event(payload: Payload) -> pb::TimelineEvent {
        pb::TimelineEvent {
            sequence: 7,
            kind: 1,
            incident_id: ID.into(),
            incident: Some(pb::IncidentSnapshot {
                id: ID.into(),
                reference: "INC-1".into(),
                title: "what it was called then".into(),
                visibility: Visibility::Internal.code(),
                ..Default::default()
            }),
            actor: "alice".into(),
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn public_incident() -> Facts {
        Facts {
            incidents: [(
                ID.to_owned(),
                Seen::Public {
                    title: "Checkout errors".into(),
                    summary: "Some payments fail".into(),
                },
            )]
            .into(),
            ..Facts::default()
        }
    }

    fn note(visibility: Visibility, text: &str) -> Payload {
        Payload::NoteAdded(pb::NoteAdded {
            text: text.into(),
            visibility: visibility.code(),
        })
    }

    #[test]
    fn an_incident_the_public_cannot_see_shows_only_its_withdrawal_by_id() {
        let hidden = Facts::default();
        assert_eq!(
            super::event(&event(note(Visibility::Public, "n")), &hidden),
            None
        );
        let withdrawal = Payload::VisibilityChanged(pb::VisibilityChanged {
            old_visibility: Visibility::Public.code(),
            new_visibility: Visibility::Internal.code(),
            ..Default::default()
        });
        let shown = super::event(&event(withdrawal), &hidden).expect("the withdrawal");
        let snapshot = shown.incident.expect("snapshot");
        assert_eq!((snapshot.id.as_str(), snapshot.title.as_str()), (ID, ""));
        assert_eq!(snapshot.reference, "INC-1");
        assert_eq!(shown.actor, "");
    }

    #[test]
    fn an_incident_reads_as_it_is_now_through_the_allowlist() {
        let created = Payload::IncidentCreated(pb::IncidentCreated {
            incident: Some(pb::Incident {
                id: ID.into(),
                title: "what it was called then".into(),
                summary: "what it said then".into(),
                labels: [("team".to_owned(), "payments".to_owned())].into(),
                roles: vec![pb::RoleAssignment::default()],
                impact_windows: vec![pb::ImpactWindow::default()],
                etag: "e".into(),
                action_item_count: 3,
                ..Default::default()
            }),
        });
        let shown = super::event(&event(created), &public_incident()).expect("shown");
        assert_eq!(shown.actor, "");
        let snapshot = shown.incident.expect("snapshot");
        assert_eq!(snapshot.title, "Checkout errors");
        assert_eq!(snapshot.visibility, Visibility::Public.code());
        let Some(Payload::IncidentCreated(p)) = shown.payload else {
            panic!("not a creation")
        };
        let i = p.incident.expect("incident");
        assert_eq!(
            (i.title.as_str(), i.summary.as_str()),
            ("Checkout errors", "Some payments fail")
        );
        assert!(i.labels.is_empty() && i.roles.is_empty() && i.impact_windows.is_empty());
        assert_eq!((i.etag.as_str(), i.action_item_count), ("", 0));
    }

    #[test]
    fn updates_and_notes_show_only_when_public_now_with_their_text_now() {
        let mut facts = public_incident();
        facts.updates.insert(
            "u".into(),
            Shown {
                visibility: Visibility::Public,
                text: "corrected".into(),
                edit_time: None,
            },
        );
        facts.updates.insert(
            "hidden".into(),
            Shown {
                visibility: Visibility::Internal,
                text: "secret".into(),
                edit_time: None,
            },
        );
        let posted = |id: &str| {
            Payload::StatusUpdatePosted(pb::StatusUpdatePosted {
                status_update: Some(pb::StatusUpdate {
                    id: id.into(),
                    message: "as posted".into(),
                    author: "alice".into(),
                    ..Default::default()
                }),
            })
        };
        let shown = super::event(&event(posted("u")), &facts).expect("public update");
        let Some(Payload::StatusUpdatePosted(p)) = shown.payload else {
            panic!("not a post")
        };
        let u = p.status_update.expect("update");
        assert_eq!((u.message.as_str(), u.author.as_str()), ("corrected", ""));
        assert_eq!(super::event(&event(posted("hidden")), &facts), None);
        let moved = Payload::StatusChanged(pb::StatusChanged {
            status_update_id: "hidden".into(),
            ..Default::default()
        });
        let Some(Payload::StatusChanged(c)) =
            super::event(&event(moved), &facts).and_then(|e| e.payload)
        else {
            panic!("the status change is public")
        };
        assert_eq!(c.status_update_id, "", "an internal update is not named");

        // A note not corrected since is as added; a corrected one as it is now.
        assert!(super::event(&event(note(Visibility::Public, "n")), &facts).is_some());
        assert_eq!(
            super::event(&event(note(Visibility::Internal, "n")), &facts),
            None
        );
        facts.notes.insert(
            7,
            Shown {
                visibility: Visibility::Internal,
                text: "withdrawn".into(),
                edit_time: None,
            },
        );
        assert_eq!(
            super::event(&event(note(Visibility::Public, "n")), &facts),
            None
        );
    }

    #[test]
    fn action_items_and_drafts_are_never_shown() {
        let facts = public_incident();
        for payload in [
            Payload::ActionItemCreated(pb::ActionItemCreated::default()),
            Payload::ActionItemUpdated(pb::ActionItemUpdated::default()),
            Payload::ActionItemDeleted(pb::ActionItemDeleted::default()),
            Payload::PostmortemUpdated(pb::PostmortemUpdated::default()),
        ] {
            assert_eq!(super::event(&event(payload), &facts), None);
        }
    }
}

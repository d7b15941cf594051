//! One readable line per timeline event, for chat bots and terminals:
//! `[P1] INC-7 Disturbances on the conversation panel — MONITORING: a fix is live`.

use crate::pb::timeline_event::Payload;
use crate::pb::{Component, ImpactLevel, IncidentStatus, Severity, TimelineEvent, Visibility};

/// "INCIDENT_STATUS_MONITORING" → "MONITORING".
fn short<'a>(name: &'a str, prefix: &str) -> &'a str {
    name.strip_prefix(prefix).unwrap_or(name)
}

fn status(code: i32) -> &'static str {
    IncidentStatus::try_from(code).map_or("?", |s| short(s.as_str_name(), "INCIDENT_STATUS_"))
}

fn impact(code: i32) -> &'static str {
    ImpactLevel::try_from(code).map_or("?", |s| short(s.as_str_name(), "IMPACT_LEVEL_"))
}

/// The line a human reads in a chat channel; needs no other call.
pub fn line(e: &TimelineEvent) -> String {
    let prefix = match &e.incident {
        Some(i) => {
            let sev = Severity::try_from(i.severity)
                .ok()
                .filter(|s| *s != Severity::Unspecified)
                .map_or(String::new(), |s| {
                    format!("[{}] ", short(s.as_str_name(), "SEVERITY_"))
                });
            format!("{sev}{} {}", i.reference, i.title)
        }
        None => "components".to_owned(),
    };
    // The public view blanks actors.
    let by = if e.actor.is_empty() {
        String::new()
    } else {
        format!(" (by {})", e.actor)
    };
    let what = match &e.payload {
        Some(Payload::IncidentCreated(p)) => {
            let s = p.incident.as_ref().map_or(0, |i| i.status);
            format!("declared, {}{by}", status(s))
        }
        Some(Payload::IncidentUpdated(p)) => {
            let paths: Vec<&str> = p.changes.iter().map(|c| c.path.as_str()).collect();
            format!("updated {}{by}", paths.join(", "))
        }
        Some(Payload::StatusChanged(p)) => format!(
            "{} → {}{}",
            status(p.old_status),
            status(p.new_status),
            if p.reopened { " (reopened)" } else { "" }
        ),
        Some(Payload::StatusUpdatePosted(p)) => match &p.status_update {
            Some(u) => format!("{}: {}", status(u.status), first_line(&u.message)),
            None => "status update".into(),
        },
        Some(Payload::NoteAdded(p)) => format!("note{by}: {}", first_line(&p.text)),
        Some(Payload::ComponentImpactChanged(p)) => p
            .changes
            .iter()
            .map(|c| {
                format!(
                    "{} {} → {}",
                    c.component_name,
                    impact(c.old_impact),
                    impact(c.new_impact)
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        Some(Payload::IncidentDeleted(_)) => format!("deleted{by}"),
        Some(Payload::IncidentUndeleted(_)) => format!("restored{by}"),
        Some(Payload::ComponentCreated(p)) => format!("created {}", name(&p.component)),
        Some(Payload::ComponentUpdated(p)) => format!("updated {}", name(&p.component)),
        Some(Payload::ComponentDeleted(p)) => format!("deleted {}", name(&p.component)),
        Some(Payload::ActionItemCreated(p)) => {
            format!(
                "action item: {}",
                p.action_item.as_ref().map_or("", |a| a.title.as_str())
            )
        }
        Some(Payload::ActionItemUpdated(p)) => format!(
            "action item updated: {}",
            p.action_item.as_ref().map_or("", |a| a.title.as_str())
        ),
        Some(Payload::ActionItemDeleted(p)) => format!(
            "action item deleted: {}",
            p.action_item.as_ref().map_or("", |a| a.title.as_str())
        ),
        Some(Payload::PostmortemUpdated(_)) => format!("postmortem edited{by}"),
        Some(Payload::StatusUpdateEdited(p)) => match &p.status_update {
            Some(u) => format!("update corrected{by}: {}", first_line(&u.message)),
            None => "update corrected".into(),
        },
        Some(Payload::NoteEdited(p)) => format!("note corrected{by}: {}", first_line(&p.text)),
        Some(Payload::VisibilityChanged(p)) => {
            let what = if !p.status_update_id.is_empty() {
                "status update"
            } else if p.note_sequence != 0 {
                "note"
            } else {
                "incident"
            };
            let to = match Visibility::try_from(p.new_visibility) {
                Ok(Visibility::Public) => "public",
                _ => "internal",
            };
            format!("{what} made {to}{by}")
        }
        Some(Payload::PostmortemPublished(_)) => "postmortem published".into(),
        None => format!("event kind {}", e.kind),
    };
    format!("{prefix} — {what}")
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

fn name(c: &Option<Component>) -> &str {
    c.as_ref().map_or("?", |c| c.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{IncidentSnapshot, StatusUpdate, StatusUpdatePosted};

    #[test]
    fn a_status_update_reads_like_a_chat_message() {
        let e = TimelineEvent {
            incident: Some(IncidentSnapshot {
                reference: "INC-7".into(),
                title: "Disturbances on the conversation panel".into(),
                severity: Severity::P1 as i32,
                ..Default::default()
            }),
            payload: Some(Payload::StatusUpdatePosted(StatusUpdatePosted {
                status_update: Some(StatusUpdate {
                    status: IncidentStatus::Monitoring as i32,
                    message: "\nA fix is live.\nWe keep watching.".into(),
                    ..Default::default()
                }),
            })),
            ..Default::default()
        };
        assert_eq!(
            line(&e),
            "[P1] INC-7 Disturbances on the conversation panel — MONITORING: A fix is live."
        );
    }
}

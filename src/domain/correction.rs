//! Corrections: a posted status update or note may be corrected, by its
//! author or an admin. A status update keeps every earlier text in its
//! revisions; a note's earlier texts stay in the log, which never changes.

use serde::{Deserialize, Serialize};

use super::incident::StatusUpdate;
use super::rule::RuleError;
use super::{Note, Time, Visibility};

/// What a correction changes; `None` keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Correction {
    pub text: Option<String>,
    pub visibility: Option<Visibility>,
}

/// Who corrects: an admin may correct anyone's text, anyone else only their own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Editor {
    pub name: String,
    pub admin: bool,
}

/// An earlier text of a status update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    pub message: String,
    pub visibility: Visibility,
    /// Who made the correction that replaced it.
    pub editor: String,
    pub edit_time: Time,
}

/// What a correction did: the earlier text and visibility, and whether each moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corrected {
    pub old_text: String,
    pub old_visibility: Visibility,
    pub text_changed: bool,
    pub visibility_changed: bool,
}

impl Corrected {
    pub fn changed(&self) -> bool {
        self.text_changed || self.visibility_changed
    }
}

/// Applies `c`, by `editor`, to a text `author` wrote and its visibility.
fn apply(
    author: &str,
    editor: &Editor,
    text: &mut String,
    visibility: &mut Visibility,
    c: Correction,
) -> Result<Corrected, RuleError> {
    if !editor.admin && editor.name != author {
        return Err(RuleError::NotAuthor {
            author: author.to_owned(),
        });
    }
    let old_text = text.clone();
    let old_visibility = *visibility;
    let text_changed = c.text.is_some_and(|t| {
        let changed = t != *text;
        *text = t;
        changed
    });
    let visibility_changed = c.visibility.is_some_and(|v| {
        let changed = v != *visibility;
        *visibility = v;
        changed
    });
    Ok(Corrected {
        old_text,
        old_visibility,
        text_changed,
        visibility_changed,
    })
}

impl StatusUpdate {
    /// Opaque version tag of the update.
    pub fn etag(&self) -> String {
        super::etag("status_update", &self.id.0, self.version)
    }

    /// Corrects the update; the text it replaces joins its revisions.
    pub fn correct(
        &mut self,
        c: Correction,
        editor: &Editor,
        now: Time,
    ) -> Result<Corrected, RuleError> {
        let done = apply(
            &self.author,
            editor,
            &mut self.message,
            &mut self.visibility,
            c,
        )?;
        if done.changed() {
            self.revisions.push(Revision {
                message: done.old_text.clone(),
                visibility: done.old_visibility,
                editor: editor.name.clone(),
                edit_time: now,
            });
            self.edit_time = Some(now);
            self.version += 1;
        }
        Ok(done)
    }
}

impl Note {
    /// Corrects the note.
    pub fn correct(
        &mut self,
        c: Correction,
        editor: &Editor,
        now: Time,
    ) -> Result<Corrected, RuleError> {
        let done = apply(
            &self.author,
            editor,
            &mut self.text,
            &mut self.visibility,
            c,
        )?;
        if done.changed() {
            self.edit_time = Some(now);
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IncidentId, IncidentStatus, StatusUpdateId};

    fn at(s: i64) -> Time {
        chrono::DateTime::from_timestamp(s, 0).unwrap_or_default()
    }

    fn update() -> StatusUpdate {
        StatusUpdate {
            id: StatusUpdateId(uuid::Uuid::from_u128(1)),
            incident_id: IncidentId(uuid::Uuid::from_u128(2)),
            status: IncidentStatus::Investigating,
            message: "Checkout eror".into(),
            component_impacts: Vec::new(),
            next_update_time: None,
            visibility: Visibility::Internal,
            author: "alice".into(),
            post_time: at(0),
            create_time: at(0),
            revisions: Vec::new(),
            edit_time: None,
            version: 0,
        }
    }

    fn editor(name: &str, admin: bool) -> Editor {
        Editor {
            name: name.into(),
            admin,
        }
    }

    #[test]
    fn every_earlier_text_is_kept_oldest_first() {
        let mut u = update();
        let first = Correction {
            text: Some("Checkout error".into()),
            visibility: None,
        };
        u.correct(first, &editor("alice", false), at(10)).unwrap();
        let second = Correction {
            text: None,
            visibility: Some(Visibility::Public),
        };
        let done = u.correct(second, &editor("root", true), at(20)).unwrap();
        assert!(done.visibility_changed && !done.text_changed);
        assert_eq!(u.message, "Checkout error");
        assert_eq!(u.visibility, Visibility::Public);
        assert_eq!(u.edit_time, Some(at(20)));
        let kept: Vec<(&str, Visibility, &str)> = u
            .revisions
            .iter()
            .map(|r| (r.message.as_str(), r.visibility, r.editor.as_str()))
            .collect();
        assert_eq!(
            kept,
            [
                ("Checkout eror", Visibility::Internal, "alice"),
                ("Checkout error", Visibility::Internal, "root")
            ]
        );
        assert_eq!(u.version, 2, "each correction is a new version");
    }

    #[test]
    fn only_the_author_or_an_admin_corrects() {
        let mut u = update();
        let c = Correction {
            text: Some("x".into()),
            visibility: None,
        };
        assert!(matches!(
            u.correct(c.clone(), &editor("bob", false), at(1)),
            Err(RuleError::NotAuthor { .. })
        ));
        assert_eq!(u, update(), "a refused correction changes nothing");
        assert!(u.correct(c, &editor("bob", true), at(1)).is_ok());
    }

    #[test]
    fn the_same_text_again_is_no_correction() {
        let mut u = update();
        let same = Correction {
            text: Some("Checkout eror".into()),
            visibility: Some(Visibility::Internal),
        };
        let done = u.correct(same, &editor("alice", false), at(1)).unwrap();
        assert!(!done.changed());
        assert_eq!(u, update());
    }
}

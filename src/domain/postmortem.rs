//! The postmortem: a singleton draft under its incident. Publishing keeps
//! the text as published: later edits stay a draft until published again.

use serde::{Deserialize, Serialize};

use super::change::{Changes, FieldChange};
use super::rule::RuleError as Error;
use super::{IncidentId, Time};

/// One titled section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub title: String,
    pub body: String,
}

/// A postmortem; version 0 is the empty draft that exists before any write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Postmortem {
    pub incident_id: IncidentId,
    pub body: String,
    pub sections: Vec<Section>,
    pub author: String,
    pub publish_time: Option<Time>,
    pub update_time: Option<Time>,
    pub version: u64,
    /// What was last published; the public reads this, never the draft.
    #[serde(default)]
    pub published: Option<Published>,
}

/// The text of a postmortem as it was published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub body: String,
    pub sections: Vec<Section>,
    pub publish_time: Time,
}

/// A change to the draft; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct PostmortemPatch {
    pub body: Option<String>,
    pub sections: Option<Vec<Section>>,
    pub author: Option<String>,
}

impl Postmortem {
    /// The empty draft of an incident.
    pub fn empty(incident_id: IncidentId) -> Self {
        Postmortem {
            incident_id,
            body: String::new(),
            sections: Vec::new(),
            author: String::new(),
            publish_time: None,
            update_time: None,
            version: 0,
            published: None,
        }
    }

    /// Opaque version tag of the postmortem alone.
    pub fn etag(&self) -> String {
        super::etag("postmortem", &self.incident_id.0, self.version)
    }

    /// Section titles, in order.
    pub fn section_titles(&self) -> Vec<String> {
        self.sections.iter().map(|s| s.title.clone()).collect()
    }

    /// Edits the draft (also after publishing: typos get fixed).
    pub fn apply_patch(&mut self, patch: PostmortemPatch, now: Time) -> Vec<FieldChange> {
        let mut c = Changes::default();
        c.set_large("body", &mut self.body, patch.body);
        c.set_large("sections", &mut self.sections, patch.sections);
        c.set("author", &mut self.author, patch.author);
        if !c.is_empty() {
            self.update_time = Some(now);
            self.version += 1;
        }
        c.0
    }

    /// Publishes the draft, once the incident is closed: the first time, or
    /// again when the text changed since (publishing the same text twice is
    /// refused).
    pub fn publish(&mut self, incident_closed: bool, at: Time, now: Time) -> Result<(), Error> {
        if self
            .published
            .as_ref()
            .is_some_and(|p| p.body == self.body && p.sections == self.sections)
        {
            return Err(Error::PostmortemPublished(self.incident_id));
        }
        if !incident_closed {
            return Err(Error::IncidentOpen(self.incident_id));
        }
        self.publish_time = Some(at);
        self.published = Some(Published {
            body: self.body.clone(),
            sections: self.sections.clone(),
            publish_time: at,
        });
        self.update_time = Some(now);
        self.version += 1;
        Ok(())
    }
}

//! Components: the parts of the service incidents affect, in groups.

use serde::{Deserialize, Serialize};

use super::change::{Changes, FieldChange};
use super::rule::{Gone, RuleError as Error};
use super::{ComponentId, ImpactLevel, Time};

/// A component, possibly inside a group (its parent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub id: ComponentId,
    pub name: String,
    pub description: String,
    pub parent_id: Option<ComponentId>,
    /// Derived when read: the worst impact of open incidents on it or below it.
    pub status: ImpactLevel,
    pub create_time: Time,
    pub update_time: Time,
    pub delete_time: Option<Time>,
    pub version: u64,
}

/// A change to a component; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct ComponentPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub parent_id: Option<Option<ComponentId>>,
}

impl Component {
    /// A new live component.
    pub fn new(
        id: ComponentId,
        name: String,
        description: String,
        parent_id: Option<ComponentId>,
        now: Time,
    ) -> Self {
        Component {
            id,
            name,
            description,
            parent_id,
            status: ImpactLevel::Operational,
            create_time: now,
            update_time: now,
            delete_time: None,
            version: 1,
        }
    }

    /// Opaque version tag; changes on every write.
    pub fn etag(&self) -> String {
        super::etag("component", &self.id.0, self.version)
    }

    /// Applies a patch and returns what changed.
    pub fn apply_patch(&mut self, patch: ComponentPatch, now: Time) -> Vec<FieldChange> {
        let mut c = Changes::default();
        c.set("name", &mut self.name, patch.name);
        c.set_large("description", &mut self.description, patch.description);
        c.set("parent_id", &mut self.parent_id, patch.parent_id);
        if !c.is_empty() {
            self.update_time = now;
            self.version += 1;
        }
        c.0
    }

    /// Marks the component deleted; deleting twice is NOT_FOUND.
    pub fn delete(&mut self, now: Time) -> Result<(), Error> {
        if self.delete_time.is_some() {
            return Err(Error::Gone(Gone::Component(self.id)));
        }
        self.delete_time = Some(now);
        self.update_time = now;
        self.version += 1;
        Ok(())
    }
}

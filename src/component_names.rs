//! Every component's current name, in memory, so that an incident or status
//! update names the components it affects (`ComponentImpact.component_name`)
//! without a lookup per reply. Loaded when the store opens and kept current by
//! the writer as component events commit, which holds while one process
//! writes the database. A deleted component keeps its last name: incidents
//! may still name it.

use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard};

use crate::domain::{ComponentId, Event};

/// Names components for the replies that mention them.
pub trait NameOf {
    /// The component's name; empty if unknown.
    fn name_of(&self, id: ComponentId) -> &str;
}

impl NameOf for HashMap<ComponentId, String> {
    fn name_of(&self, id: ComponentId) -> &str {
        self.get(&id).map_or("", String::as_str)
    }
}

/// The current names; see the module docs.
#[derive(Default)]
pub struct ComponentNames {
    names: RwLock<HashMap<ComponentId, String>>,
}

/// A consistent view of the names, held while one reply is built.
pub struct Names<'a>(RwLockReadGuard<'a, HashMap<ComponentId, String>>);

impl NameOf for Names<'_> {
    fn name_of(&self, id: ComponentId) -> &str {
        self.0.name_of(id)
    }
}

impl ComponentNames {
    /// Names as stored.
    pub fn new(names: HashMap<ComponentId, String>) -> Self {
        ComponentNames {
            names: RwLock::new(names),
        }
    }

    /// The names as they are now.
    pub fn read(&self) -> Names<'_> {
        Names(self.names.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Takes in what committed events say of components.
    pub fn apply(&self, changes: HashMap<ComponentId, String>) {
        if changes.is_empty() {
            return;
        }
        self.names
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(changes);
    }
}

/// The name a component event gives its component, if it is one.
pub fn named_by(e: &Event) -> Option<(ComponentId, &str)> {
    e.component().map(|c| (c.id, c.name.as_str()))
}

/// Names as of a point inside a group being committed: the group's own
/// component events over the names before it.
pub struct Overlay<'a, N> {
    pub base: &'a N,
    pub changes: &'a HashMap<ComponentId, String>,
}

impl<N: NameOf> NameOf for Overlay<'_, N> {
    fn name_of(&self, id: ComponentId) -> &str {
        match self.changes.get(&id) {
            Some(name) => name,
            None => self.base.name_of(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlay_names_what_the_group_changed_and_the_rest_as_before() {
        let a = ComponentId(uuid::Uuid::from_u128(1));
        let b = ComponentId(uuid::Uuid::from_u128(2));
        let names = ComponentNames::new([(a, "db".to_owned()), (b, "api".to_owned())].into());
        let changes = [(a, "database".to_owned())].into();
        let base = names.read();
        let overlay = Overlay {
            base: &base,
            changes: &changes,
        };
        assert_eq!(overlay.name_of(a), "database");
        assert_eq!(overlay.name_of(b), "api");
        assert_eq!(overlay.name_of(ComponentId(uuid::Uuid::from_u128(3))), "");
        drop(base);
        names.apply(changes);
        assert_eq!(names.read().name_of(a), "database");
    }
}

//! Follow-up action items of an incident.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::change::{Changes, FieldChange};
use super::rule::{Gone, RuleError as Error};
use super::{ActionItemId, ActionItemStatus, IncidentId, Priority, Time};

/// An action item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionItem {
    pub id: ActionItemId,
    pub incident_id: IncidentId,
    pub title: String,
    pub description: String,
    pub owner: String,
    pub status: ActionItemStatus,
    pub priority: Option<Priority>,
    pub due_time: Option<Time>,
    /// When it entered DONE or WONT_DO; `None` while open.
    pub complete_time: Option<Time>,
    pub labels: BTreeMap<String, String>,
    pub create_time: Time,
    pub update_time: Time,
    pub delete_time: Option<Time>,
    pub version: u64,
}

/// What a client supplies to create an action item, validated field by field.
#[derive(Clone, Debug)]
pub struct NewActionItem {
    pub incident_id: IncidentId,
    pub title: String,
    pub description: String,
    pub owner: String,
    pub status: Option<ActionItemStatus>,
    pub priority: Option<Priority>,
    pub due_time: Option<Time>,
    pub complete_time: Option<Time>,
    pub labels: BTreeMap<String, String>,
}

/// A change to an action item; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct ActionItemPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub status: Option<ActionItemStatus>,
    pub priority: Option<Option<Priority>>,
    pub due_time: Option<Option<Time>>,
    pub complete_time: Option<Option<Time>>,
    pub labels: Option<BTreeMap<String, String>>,
}

impl ActionItem {
    /// Creates an item; a closed one is completed at the time given, or now.
    pub fn create(new: NewActionItem, id: ActionItemId, now: Time) -> Result<ActionItem, Error> {
        let status = new.status.unwrap_or(ActionItemStatus::Open);
        let complete_time = match (status.is_closed(), new.complete_time) {
            (true, given) => Some(given.unwrap_or(now)),
            (false, None) => None,
            (false, Some(_)) => return Err(Error::CompleteTimeOnOpenItem),
        };
        Ok(ActionItem {
            id,
            incident_id: new.incident_id,
            title: new.title,
            description: new.description,
            owner: new.owner,
            status,
            priority: new.priority,
            due_time: new.due_time,
            complete_time,
            labels: new.labels,
            create_time: now,
            update_time: now,
            delete_time: None,
            version: 1,
        })
    }

    /// Opaque version tag; changes on every write.
    pub fn etag(&self) -> String {
        super::etag("action_item", &self.id.0, self.version)
    }

    /// Open or in progress and due at or before `at`.
    pub fn is_overdue(&self, at: Time) -> bool {
        !self.status.is_closed() && self.due_time.is_some_and(|d| d <= at)
    }

    /// Applies a patch. Entering DONE/WONT_DO stamps complete_time (the one
    /// given, or now); leaving them clears it.
    pub fn apply_patch(
        &mut self,
        patch: ActionItemPatch,
        now: Time,
    ) -> Result<Vec<FieldChange>, Error> {
        if self.delete_time.is_some() {
            return Err(Error::Gone(Gone::ActionItem(self.id)));
        }
        let new_status = patch.status.unwrap_or(self.status);
        let new_complete = match (new_status.is_closed(), patch.complete_time) {
            (false, Some(Some(_))) => return Err(Error::CompleteTimeOnOpenItem),
            (false, _) => None,
            (true, Some(Some(t))) => Some(t),
            // Cleared by hand on a closed item, or just closed: now.
            (true, Some(None)) => Some(now),
            (true, None) if self.status.is_closed() => self.complete_time,
            (true, None) => Some(now),
        };
        let mut c = Changes::default();
        c.set("title", &mut self.title, patch.title);
        c.set_large("description", &mut self.description, patch.description);
        c.set("owner", &mut self.owner, patch.owner);
        c.set("status", &mut self.status, Some(new_status));
        c.set("complete_time", &mut self.complete_time, Some(new_complete));
        c.set("priority", &mut self.priority, patch.priority);
        c.set("due_time", &mut self.due_time, patch.due_time);
        c.set("labels", &mut self.labels, patch.labels);
        if !c.is_empty() {
            self.update_time = now;
            self.version += 1;
        }
        Ok(c.0)
    }

    /// Marks the item deleted; deleting twice is NOT_FOUND.
    pub fn delete(&mut self, now: Time) -> Result<(), Error> {
        if self.delete_time.is_some() {
            return Err(Error::Gone(Gone::ActionItem(self.id)));
        }
        self.delete_time = Some(now);
        self.update_time = now;
        self.version += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(m: i64) -> Time {
        chrono::DateTime::from_timestamp(1_700_000_000 + m * 60, 0).unwrap_or_default()
    }

    fn item(status: ActionItemStatus) -> ActionItem {
        ActionItem::create(
            NewActionItem {
                incident_id: IncidentId(uuid::Uuid::from_u128(1)),
                title: "t".into(),
                description: String::new(),
                owner: String::new(),
                status: Some(status),
                priority: None,
                due_time: Some(at(10)),
                complete_time: None,
                labels: BTreeMap::new(),
            },
            ActionItemId(uuid::Uuid::from_u128(2)),
            at(0),
        )
        .unwrap()
    }

    #[test]
    fn overdue_includes_the_due_instant_and_excludes_closed_items() {
        let open = item(ActionItemStatus::Open);
        assert!(!open.is_overdue(at(9)));
        assert!(open.is_overdue(at(10)));
        assert!(!item(ActionItemStatus::Done).is_overdue(at(11)));
    }

    proptest! {
        /// complete_time is set exactly while the item is closed, whatever
        /// sequence of statuses it goes through.
        #[test]
        fn complete_time_tracks_closure(codes in proptest::collection::vec(1i32..=4, 1..20)) {
            let mut it = item(ActionItemStatus::Open);
            let mut closed_at = None;
            for (m, code) in codes.into_iter().enumerate() {
                let status = ActionItemStatus::from_code(code).unwrap();
                let was_closed = it.status.is_closed();
                it.apply_patch(ActionItemPatch { status: Some(status), ..Default::default() }, at(m as i64 + 1)).unwrap();
                if !status.is_closed() {
                    closed_at = None;
                } else if !was_closed {
                    closed_at = Some(at(m as i64 + 1));
                }
                prop_assert_eq!(it.complete_time, closed_at);
            }
        }
    }
}

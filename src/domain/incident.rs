//! Incidents and status updates, and the rules that move them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::change::{Changes, FieldChange};
use super::correction::Revision;
use super::rule::{Gone, RuleError as Error, StatusSource};
use super::status::coded_enum;
use super::{
    ComponentId, ImpactLevel, IncidentId, IncidentKind, IncidentStatus, Severity, StatusUpdateId,
    Time,
};

/// The impact an incident has on one component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentImpact {
    pub component_id: ComponentId,
    pub impact: ImpactLevel,
}

/// A period during which components were affected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpactWindow {
    pub start_time: Time,
    pub end_time: Option<Time>,
    pub impact: ImpactLevel,
    pub component_ids: Vec<ComponentId>,
    pub description: String,
    /// Total impact inside start..end when a report gives only a total.
    pub duration: Option<chrono::TimeDelta>,
}

/// A person holding an incident role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleAssignment {
    pub role: String,
    pub assignee: String,
}

coded_enum!(
    /// Who may see an incident, a status update or a note: INTERNAL is
    /// hidden from the public audience.
    Visibility { Public = 1 => "VISIBILITY_PUBLIC", Internal = 2 => "VISIBILITY_INTERNAL" }
);

impl Visibility {
    /// The default of incidents and notes, and of incidents recorded before
    /// incidents had a visibility.
    pub fn internal() -> Visibility {
        Visibility::Internal
    }
}

/// The derived times of an incident that a user may also set by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    Identify,
    Mitigate,
    Resolve,
}

/// An incident or a maintenance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    /// The N of "INC-N".
    pub number: i64,
    pub title: String,
    pub summary: String,
    pub kind: IncidentKind,
    pub severity: Option<Severity>,
    pub status: IncidentStatus,
    pub component_impacts: Vec<ComponentImpact>,
    pub impact_windows: Vec<ImpactWindow>,
    pub scheduled_start_time: Option<Time>,
    pub scheduled_end_time: Option<Time>,
    pub roles: Vec<RoleAssignment>,
    pub labels: BTreeMap<String, String>,
    pub next_update_time: Option<Time>,
    pub declare_time: Time,
    pub identify_time: Option<Time>,
    pub mitigate_time: Option<Time>,
    pub resolve_time: Option<Time>,
    /// Milestones set by hand, which status updates no longer derive.
    #[serde(default)]
    pub explicit_milestones: BTreeSet<Milestone>,
    /// Milestones as the status updates derive them, kept even while a hand-set
    /// value hides them, so clearing the hand-set value brings them back.
    #[serde(default)]
    pub derived_milestones: BTreeMap<Milestone, Time>,
    pub postmortem_publish_time: Option<Time>,
    /// Filled from the action-item table when read, never stored in the document.
    #[serde(skip)]
    pub action_item_count: i64,
    #[serde(skip)]
    pub open_action_item_count: i64,
    pub create_time: Time,
    pub update_time: Time,
    pub delete_time: Option<Time>,
    /// Bumped on every write; the etag is derived from it.
    pub version: u64,
    #[serde(default = "Visibility::internal")]
    pub visibility: Visibility,
}

/// What a client supplies to declare an incident, already validated field by field.
#[derive(Clone, Debug, Default)]
pub struct NewIncident {
    /// `None`: INTERNAL.
    pub visibility: Option<Visibility>,
    pub title: String,
    pub summary: String,
    pub kind: Option<IncidentKind>,
    pub severity: Option<Severity>,
    pub status: Option<IncidentStatus>,
    pub component_impacts: Vec<ComponentImpact>,
    pub impact_windows: Vec<ImpactWindow>,
    pub scheduled_start_time: Option<Time>,
    pub scheduled_end_time: Option<Time>,
    pub roles: Vec<RoleAssignment>,
    pub labels: BTreeMap<String, String>,
    pub next_update_time: Option<Time>,
}

/// A change to the fields UpdateIncident may touch; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct IncidentPatch {
    pub title: Option<String>,
    pub summary: Option<String>,
    pub severity: Option<Option<Severity>>,
    pub impact_windows: Option<Vec<ImpactWindow>>,
    pub scheduled_start_time: Option<Option<Time>>,
    pub scheduled_end_time: Option<Option<Time>>,
    pub roles: Option<Vec<RoleAssignment>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub next_update_time: Option<Option<Time>>,
    pub declare_time: Option<Time>,
    pub identify_time: Option<Option<Time>>,
    pub mitigate_time: Option<Option<Time>>,
    pub resolve_time: Option<Option<Time>>,
    /// Applied apart from the other fields: a visibility change is an event
    /// of its own.
    pub visibility: Option<Visibility>,
}

/// A status update as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub id: StatusUpdateId,
    pub incident_id: IncidentId,
    pub status: IncidentStatus,
    pub message: String,
    pub component_impacts: Vec<ComponentImpact>,
    pub next_update_time: Option<Time>,
    pub visibility: Visibility,
    pub author: String,
    pub post_time: Time,
    pub create_time: Time,
    /// Earlier texts, oldest first.
    #[serde(default)]
    pub revisions: Vec<Revision>,
    #[serde(default)]
    pub edit_time: Option<Time>,
    /// Bumped on every correction; the etag is derived from it.
    #[serde(default)]
    pub version: u64,
}

/// A status update as a client posts it, already validated field by field.
#[derive(Clone, Debug)]
pub struct NewStatusUpdate {
    pub status: Option<IncidentStatus>,
    pub message: String,
    pub component_impacts: Vec<ComponentImpact>,
    pub next_update_time: Option<Time>,
    pub visibility: Visibility,
}

/// What posting a status update did to the incident.
#[derive(Clone, Debug)]
pub struct StatusOutcome {
    pub update: StatusUpdate,
    /// Old and new status, when the status moved.
    pub status_change: Option<StatusChange>,
    pub impact_changes: Vec<ImpactChange>,
}

/// A move from one status to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub old: IncidentStatus,
    pub new: IncidentStatus,
    /// A closed record was opened again.
    pub reopened: bool,
}

/// How one component's impact moved; `old` is `None` when it was not affected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpactChange {
    pub component_id: ComponentId,
    pub component_name: String,
    pub old: Option<ImpactLevel>,
    pub new: ImpactLevel,
}

impl Incident {
    /// Human reference, "INC-42".
    pub fn reference(&self) -> String {
        format!("INC-{}", self.number)
    }

    /// Whether the public may see it: PUBLIC and not deleted.
    pub fn is_public(&self) -> bool {
        self.visibility == Visibility::Public && self.delete_time.is_none()
    }

    /// Open = neither resolved nor completed.
    pub fn is_open(&self) -> bool {
        !self.status.is_closed()
    }

    /// Opaque version tag; changes on every write.
    pub fn etag(&self) -> String {
        super::etag("incident", &self.id.0, self.version)
    }

    /// Declares a new incident from validated input.
    pub fn declare(
        new: NewIncident,
        id: IncidentId,
        number: i64,
        declare_time: Time,
        now: Time,
    ) -> Result<Incident, Error> {
        let kind = new.kind.ok_or(Error::KindRequired)?;
        let status = new.status.unwrap_or(kind.initial_status());
        check_status_kind(None, kind, status, StatusSource::Declared)?;
        let mut incident = Incident {
            id,
            number,
            title: new.title,
            summary: new.summary,
            kind,
            severity: new.severity,
            status,
            component_impacts: Vec::new(),
            impact_windows: new.impact_windows,
            scheduled_start_time: new.scheduled_start_time,
            scheduled_end_time: new.scheduled_end_time,
            roles: new.roles,
            labels: new.labels,
            next_update_time: new.next_update_time,
            declare_time,
            identify_time: None,
            mitigate_time: None,
            resolve_time: None,
            explicit_milestones: BTreeSet::new(),
            derived_milestones: BTreeMap::new(),
            postmortem_publish_time: None,
            action_item_count: 0,
            open_action_item_count: 0,
            create_time: now,
            update_time: now,
            delete_time: None,
            version: 1,
            visibility: new.visibility.unwrap_or(Visibility::Internal),
        };
        merge_impacts(&mut incident.component_impacts, &new.component_impacts);
        if status.is_closed() {
            incident.settle_impacts();
        }
        incident.derive_milestone(status, declare_time);
        Ok(incident)
    }

    /// Posts a status update: keeps or moves the status, merges impacts, restates
    /// the next-update promise, derives milestones, reopens a closed record.
    pub fn post_status_update(
        &mut self,
        new: NewStatusUpdate,
        id: StatusUpdateId,
        author: String,
        post_time: Time,
        now: Time,
        component_name: impl Fn(ComponentId) -> String,
    ) -> Result<StatusOutcome, Error> {
        self.ensure_live()?;
        let old_status = self.status;
        let new_status = new.status.unwrap_or(old_status);
        check_status_kind(Some(self.id), self.kind, new_status, StatusSource::Posted)?;
        if let Some(next) = new.next_update_time
            && next <= post_time
        {
            return Err(Error::NextUpdateNotAfterPost);
        }

        let before: BTreeMap<ComponentId, ImpactLevel> = self
            .component_impacts
            .iter()
            .map(|c| (c.component_id, c.impact))
            .collect();
        merge_impacts(&mut self.component_impacts, &new.component_impacts);

        let status_change = (new_status != old_status).then(|| StatusChange {
            old: old_status,
            new: new_status,
            reopened: old_status.is_closed() && !new_status.is_closed(),
        });
        self.status = new_status;
        if let Some(change) = status_change {
            if change.reopened {
                self.resolve_time = None;
                self.explicit_milestones.remove(&Milestone::Resolve);
                self.derived_milestones.remove(&Milestone::Resolve);
            }
            self.derive_milestone(new_status, post_time);
        }
        if new_status.is_closed() {
            self.settle_impacts();
        }
        self.next_update_time = new.next_update_time;

        let impact_changes = self
            .component_impacts
            .iter()
            .filter(|c| before.get(&c.component_id) != Some(&c.impact))
            .map(|c| ImpactChange {
                component_id: c.component_id,
                component_name: component_name(c.component_id),
                old: before.get(&c.component_id).copied(),
                new: c.impact,
            })
            .collect();

        self.touch(now);
        let update = StatusUpdate {
            id,
            incident_id: self.id,
            status: new_status,
            message: new.message,
            component_impacts: new.component_impacts,
            next_update_time: new.next_update_time,
            visibility: new.visibility,
            author,
            post_time,
            create_time: now,
            revisions: Vec::new(),
            edit_time: None,
            version: 1,
        };
        Ok(StatusOutcome {
            update,
            status_change,
            impact_changes,
        })
    }

    /// Applies a field patch and returns what changed (empty: nothing did, and
    /// the incident is left untouched).
    pub fn apply_patch(
        &mut self,
        patch: IncidentPatch,
        now: Time,
    ) -> Result<Vec<FieldChange>, Error> {
        self.ensure_live()?;
        let mut c = Changes::default();
        c.set("title", &mut self.title, patch.title);
        c.set_large("summary", &mut self.summary, patch.summary);
        c.set("severity", &mut self.severity, patch.severity);
        c.set(
            "impact_windows",
            &mut self.impact_windows,
            patch.impact_windows,
        );
        c.set(
            "scheduled_start_time",
            &mut self.scheduled_start_time,
            patch.scheduled_start_time,
        );
        c.set(
            "scheduled_end_time",
            &mut self.scheduled_end_time,
            patch.scheduled_end_time,
        );
        c.set("roles", &mut self.roles, patch.roles);
        c.set("labels", &mut self.labels, patch.labels);
        c.set(
            "next_update_time",
            &mut self.next_update_time,
            patch.next_update_time,
        );
        c.set("declare_time", &mut self.declare_time, patch.declare_time);
        for (milestone, value) in [
            (Milestone::Identify, patch.identify_time),
            (Milestone::Mitigate, patch.mitigate_time),
            (Milestone::Resolve, patch.resolve_time),
        ] {
            let Some(value) = value else { continue };
            // Set by hand: later status updates no longer derive it. Cleared by
            // hand: the derived value, if any, takes over again.
            let effective = match value {
                Some(_) => {
                    self.explicit_milestones.insert(milestone);
                    value
                }
                None => {
                    self.explicit_milestones.remove(&milestone);
                    self.derived_milestones.get(&milestone).copied()
                }
            };
            let (path, slot) = match milestone {
                Milestone::Identify => ("identify_time", &mut self.identify_time),
                Milestone::Mitigate => ("mitigate_time", &mut self.mitigate_time),
                Milestone::Resolve => ("resolve_time", &mut self.resolve_time),
            };
            c.set(path, slot, Some(effective));
        }
        if !c.is_empty() {
            self.touch(now);
        }
        Ok(c.0)
    }

    /// Makes the incident PUBLIC or INTERNAL; the visibility it had, if it
    /// changed.
    pub fn set_visibility(&mut self, visibility: Visibility, now: Time) -> Option<Visibility> {
        if self.visibility == visibility {
            return None;
        }
        let old = std::mem::replace(&mut self.visibility, visibility);
        self.touch(now);
        Some(old)
    }

    /// Marks the incident deleted.
    pub fn delete(&mut self, now: Time) -> Result<(), Error> {
        if self.delete_time.is_some() {
            return Err(Error::Gone(Gone::Incident(self.id)));
        }
        self.delete_time = Some(now);
        self.touch(now);
        Ok(())
    }

    /// Restores a deleted incident.
    pub fn undelete(&mut self, now: Time) -> Result<(), Error> {
        if self.delete_time.is_none() {
            return Err(Error::IncidentNotDeleted(self.id));
        }
        self.delete_time = None;
        self.touch(now);
        Ok(())
    }

    /// Stamps the publication of the postmortem.
    pub fn record_postmortem_published(&mut self, at: Time, now: Time) {
        self.postmortem_publish_time = Some(at);
        self.touch(now);
    }

    /// Writes to a deleted incident are refused until it is undeleted.
    pub fn ensure_live(&self) -> Result<(), Error> {
        match self.delete_time {
            Some(_) => Err(Error::IncidentDeleted(self.id)),
            None => Ok(()),
        }
    }

    /// Component ids the incident currently has an impact on.
    pub fn component_ids(&self) -> Vec<ComponentId> {
        self.component_impacts
            .iter()
            .map(|c| c.component_id)
            .collect()
    }

    fn touch(&mut self, now: Time) {
        self.update_time = now;
        self.version += 1;
    }

    /// On resolution every remaining impact returns to operational.
    fn settle_impacts(&mut self) {
        for c in &mut self.component_impacts {
            c.impact = ImpactLevel::Operational;
        }
    }

    /// Derives the milestone that entering `status` at `at` marks (the first
    /// one counts); it shows unless a hand-set value hides it.
    fn derive_milestone(&mut self, status: IncidentStatus, at: Time) {
        let (milestone, slot) = match status {
            IncidentStatus::Identified => (Milestone::Identify, &mut self.identify_time),
            IncidentStatus::Monitoring => (Milestone::Mitigate, &mut self.mitigate_time),
            IncidentStatus::Resolved | IncidentStatus::Completed => {
                (Milestone::Resolve, &mut self.resolve_time)
            }
            _ => return,
        };
        let derived = *self.derived_milestones.entry(milestone).or_insert(at);
        if !self.explicit_milestones.contains(&milestone) {
            *slot = Some(derived);
        }
    }
}

/// Sets the listed impacts, keeps unlisted ones; new components are appended.
fn merge_impacts(current: &mut Vec<ComponentImpact>, listed: &[ComponentImpact]) {
    for l in listed {
        match current
            .iter_mut()
            .find(|c| c.component_id == l.component_id)
        {
            Some(c) => c.impact = l.impact,
            None => current.push(*l),
        }
    }
}

fn check_status_kind(
    incident_id: Option<IncidentId>,
    kind: IncidentKind,
    status: IncidentStatus,
    source: StatusSource,
) -> Result<(), Error> {
    if status.kind() == kind {
        return Ok(());
    }
    Err(Error::StatusOfOtherKind {
        incident_id,
        status,
        kind,
        given_as: source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(minutes: i64) -> Time {
        chrono::DateTime::from_timestamp(1_700_000_000 + minutes * 60, 0).unwrap_or_default()
    }

    fn component(n: u128) -> ComponentId {
        ComponentId(uuid::Uuid::from_u128(n))
    }

    fn declared(kind: IncidentKind) -> Incident {
        let new = NewIncident {
            title: "t".into(),
            kind: Some(kind),
            component_impacts: vec![ComponentImpact {
                component_id: component(1),
                impact: ImpactLevel::MajorOutage,
            }],
            ..Default::default()
        };
        Incident::declare(new, IncidentId(uuid::Uuid::from_u128(9)), 1, at(0), at(0)).unwrap()
    }

    fn update(status: Option<IncidentStatus>, impacts: Vec<ComponentImpact>) -> NewStatusUpdate {
        NewStatusUpdate {
            status,
            message: "m".into(),
            component_impacts: impacts,
            next_update_time: None,
            visibility: Visibility::Public,
        }
    }

    fn post(i: &mut Incident, minute: i64, u: NewStatusUpdate) -> Result<StatusOutcome, Error> {
        i.post_status_update(
            u,
            StatusUpdateId::generate(),
            "a".into(),
            at(minute),
            at(minute),
            |_| String::new(),
        )
    }

    proptest! {
        /// Whatever order statuses are posted in, the derived times follow the
        /// first entry into each status, resolution tracks closure, and closed
        /// incidents have no remaining impact.
        #[test]
        fn derived_milestones_follow_the_posted_statuses(
            kind_is_incident: bool,
            steps in proptest::collection::vec((0usize..4, proptest::option::of(1i32..=5), any::<bool>()), 1..30),
        ) {
            let kind = if kind_is_incident { IncidentKind::Incident } else { IncidentKind::Maintenance };
            let statuses: Vec<IncidentStatus> =
                IncidentStatus::ALL.iter().copied().filter(|s| s.kind() == kind).collect();
            let mut i = declared(kind);
            let mut first_entry: std::collections::HashMap<IncidentStatus, Time> = Default::default();
            let mut closed_since: Option<Time> = None;
            for (minute, (idx, impact, keep)) in steps.into_iter().enumerate() {
                let minute = minute as i64 + 1;
                let target = if keep { None } else { Some(statuses[idx]) };
                let impacts = impact
                    .and_then(ImpactLevel::from_code)
                    .map(|impact| vec![ComponentImpact { component_id: component(2), impact }])
                    .unwrap_or_default();
                let before = i.status;
                let out = post(&mut i, minute, update(target, impacts)).unwrap();
                let after = i.status;
                prop_assert_eq!(after, target.unwrap_or(before));
                prop_assert_eq!(out.status_change.is_some(), after != before);
                if after != before {
                    first_entry.entry(after).or_insert(at(minute));
                    if after.is_closed() {
                        closed_since = Some(at(minute));
                    }
                }
                if !after.is_closed() {
                    closed_since = None;
                }
                prop_assert_eq!(i.resolve_time, closed_since);
                if after.is_closed() {
                    prop_assert!(i.component_impacts.iter().all(|c| c.impact == ImpactLevel::Operational));
                }
            }
            if kind == IncidentKind::Incident {
                prop_assert_eq!(i.identify_time, first_entry.get(&IncidentStatus::Identified).copied());
                prop_assert_eq!(i.mitigate_time, first_entry.get(&IncidentStatus::Monitoring).copied());
            }
        }

        /// A status of the other kind is refused and changes nothing.
        #[test]
        fn wrong_kind_status_is_refused_without_change(kind_is_incident: bool, idx in 0usize..4) {
            let kind = if kind_is_incident { IncidentKind::Incident } else { IncidentKind::Maintenance };
            let wrong: Vec<IncidentStatus> =
                IncidentStatus::ALL.iter().copied().filter(|s| s.kind() != kind).collect();
            let mut i = declared(kind);
            let before = i.clone();
            let r = post(&mut i, 1, update(Some(wrong[idx]), vec![]));
            let refused = matches!(r, Err(Error::StatusOfOtherKind { .. }));
            prop_assert!(refused);
            prop_assert_eq!(i, before);
        }
    }

    #[test]
    fn a_hand_set_milestone_hides_the_derived_one_until_cleared() {
        let mut i = declared(IncidentKind::Incident);
        let patch = IncidentPatch {
            mitigate_time: Some(Some(at(5))),
            ..Default::default()
        };
        i.apply_patch(patch, at(6)).unwrap();
        post(&mut i, 10, update(Some(IncidentStatus::Monitoring), vec![])).unwrap();
        assert_eq!(i.mitigate_time, Some(at(5)));
        let clear = IncidentPatch {
            mitigate_time: Some(None),
            ..Default::default()
        };
        let changes = i.apply_patch(clear, at(11)).unwrap();
        assert_eq!(i.mitigate_time, Some(at(10)));
        assert_eq!(changes[0].path, "mitigate_time");
    }
}

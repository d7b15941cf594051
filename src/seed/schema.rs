//! The seed file format (TOML). Each file is one real incident report; every
//! time carries its UTC offset as the report wrote it (CET = +01:00, CEST =
//! +02:00), so conversions are explicit and checkable.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One seed file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    /// Permanent natural key: loading a seed whose key is present is a no-op.
    pub key: String,
    /// Where the report comes from.
    pub source: String,
    /// Remarks on the report: contradictions, interpretations.
    #[serde(default)]
    pub notes: Vec<String>,
    pub incident: SeedIncident,
    /// Component groups and their children, created if missing.
    #[serde(default)]
    pub components: Vec<SeedGroup>,
    #[serde(default)]
    pub impact_windows: Vec<SeedWindow>,
    /// Status updates, in the order they were posted.
    pub updates: Vec<SeedUpdate>,
    /// Milestones the report states outright, set by hand after the updates.
    #[serde(default)]
    pub milestones: SeedMilestones,
    pub postmortem: Option<SeedPostmortem>,
    #[serde(default)]
    pub action_items: Vec<SeedActionItem>,
}

/// The incident itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedIncident {
    pub title: String,
    #[serde(default)]
    pub summary: String,
    /// INCIDENT or MAINTENANCE.
    pub kind: String,
    /// P0..P4; absent when the report does not assess it.
    pub severity: Option<String>,
    /// Initial status; absent means the kind's first status.
    pub status: Option<String>,
    /// RFC 3339 with offset: when it was declared (usually the first post).
    pub declare_time: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A component group and its children.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedGroup {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub children: Vec<String>,
}

/// A period of impact. Components are named "Group" or "Group/Child".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedWindow {
    pub start: String,
    pub end: Option<String>,
    /// OPERATIONAL, DEGRADED_PERFORMANCE, PARTIAL_OUTAGE, MAJOR_OUTAGE, UNDER_MAINTENANCE.
    pub impact: String,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// Total impact inside start..end when the report gives only a total ("86m").
    pub duration: Option<String>,
}

/// A status update as posted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUpdate {
    pub time: String,
    /// New status; absent for an "Update" post that keeps the status.
    pub status: Option<String>,
    pub message: String,
    /// The "next update at" promise, when stated.
    pub next_update: Option<String>,
    /// Component ("Group" or "Group/Child") → impact set by this update.
    #[serde(default)]
    pub impacts: BTreeMap<String, String>,
}

/// Milestones stated outright by the report.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedMilestones {
    pub identify_time: Option<String>,
    pub mitigate_time: Option<String>,
    pub resolve_time: Option<String>,
}

/// The postmortem, published at its post time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPostmortem {
    pub publish_time: String,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub body: String,
    /// Sections in the report's order.
    pub sections: Vec<SeedSection>,
}

/// One postmortem section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSection {
    pub title: String,
    pub body: String,
}

/// One "Actions for the future" entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedActionItem {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// OPEN, IN_PROGRESS, DONE or WONT_DO; absent means OPEN.
    pub status: Option<String>,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

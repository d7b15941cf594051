//! Notes: free text on an incident's timeline, for responders unless made public.

use serde::{Deserialize, Serialize};

use super::{IncidentId, Time, Visibility};

/// A note as it now is. The log keeps it as it was added; it is known by the
/// sequence of that NOTE_ADDED event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub sequence: u64,
    pub incident_id: IncidentId,
    pub author: String,
    pub text: String,
    pub visibility: Visibility,
    pub create_time: Time,
    /// When it was last corrected.
    #[serde(default)]
    pub edit_time: Option<Time>,
}

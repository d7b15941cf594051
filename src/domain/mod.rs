//! Plain domain types and the rules that govern them. No I/O, no proto, no SQL.

pub mod action_item;
pub mod change;
pub mod component;
pub mod correction;
pub mod event;
pub mod filter;
pub mod ids;
pub mod incident;
pub mod limits;
pub mod note;
pub mod postmortem;
pub mod rule;
pub mod status;

pub use action_item::ActionItem;
pub use change::FieldChange;
pub use component::Component;
pub use event::{
    EncodedEvent, Event, EventKeys, EventKind, EventPayload, IncidentSnapshot, NewEvent,
};
pub use ids::{ActionItemId, ComponentId, IncidentId, StatusUpdateId};
pub use incident::{
    ComponentImpact, ImpactWindow, Incident, Milestone, RoleAssignment, StatusUpdate, Visibility,
};
pub use note::Note;
pub use postmortem::Postmortem;
pub use rule::RuleError;
pub use status::{ActionItemStatus, ImpactLevel, IncidentKind, IncidentStatus, Priority, Severity};

/// Who a read is answered for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum Audience {
    /// Everything the caller's role may read.
    #[default]
    Full,
    /// Only what is public: PUBLIC incidents, and in them what is public.
    Public,
}

/// Instants are UTC with nanosecond precision, like `google.protobuf.Timestamp`.
pub type Time = chrono::DateTime<chrono::Utc>;

/// Opaque etag of a resource version: a short hash, so clients cannot guess or
/// do arithmetic on it. The resource kind is hashed in, so a postmortem's etag
/// never equals its incident's.
pub fn etag(kind: &str, id: &uuid::Uuid, version: u64) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update(id.as_bytes());
    h.update(version.to_be_bytes());
    let digest = h.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

//! The domain's own errors: which rule a change would break, about which
//! value. They know nothing of requests or transports; the API edge maps each
//! to a status and, where a request field is at fault, names its path.

use super::{ActionItemId, ComponentId, IncidentId, IncidentKind, IncidentStatus};

/// Where a status came from, so the edge can name the request field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusSource {
    /// The status an incident is declared with.
    Declared,
    /// The status a status update posts.
    Posted,
}

/// A resource that is gone (soft-deleted) when the change needs it live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gone {
    Incident(IncidentId),
    ActionItem(ActionItemId),
    Component(ComponentId),
}

/// A broken rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("kind is required")]
    KindRequired,
    #[error(
        "status {} belongs to {} records; this one is {}",
        status.name(),
        status.kind().name(),
        kind.name()
    )]
    StatusOfOtherKind {
        /// `None` while the incident is being declared.
        incident_id: Option<IncidentId>,
        status: IncidentStatus,
        kind: IncidentKind,
        given_as: StatusSource,
    },
    #[error("must be after the update's post time")]
    NextUpdateNotAfterPost,
    #[error("can only be set on an item that is DONE or WONT_DO")]
    CompleteTimeOnOpenItem,
    #[error("{0:?} is deleted")]
    Gone(Gone),
    #[error("incident {0} is deleted")]
    IncidentDeleted(IncidentId),
    #[error("incident {0} is not deleted")]
    IncidentNotDeleted(IncidentId),
    #[error(
        "the postmortem of incident {0} is already published as it is: change the draft to publish it again"
    )]
    PostmortemPublished(IncidentId),
    #[error("incident {0} is still open")]
    IncidentOpen(IncidentId),
    #[error("only its author ({author}) or an admin may correct it")]
    NotAuthor { author: String },
}

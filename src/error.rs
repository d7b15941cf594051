//! The one error type of the server, and its single mapping to `tonic::Status`
//! with AIP-193 details (ErrorInfo always; BadRequest or PreconditionFailure
//! where the code calls for them).

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::IncidentId;

/// The `ErrorInfo.domain` of every error.
pub const ERROR_DOMAIN: &str = "incidentd";

/// One bad field of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// Everything that can go wrong, in terms a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("page token is invalid: {0}")]
    PageTokenInvalid(String),
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    #[error("{message}")]
    AlreadyExists {
        /// The ErrorInfo metadata naming the resource that exists.
        meta: (&'static str, String),
        message: String,
    },
    #[error("{resource} {id} was changed since it was read (etag mismatch)")]
    EtagMismatch { resource: &'static str, id: String },
    #[error("{description}")]
    InvalidTransition {
        /// The incident concerned; `None` while it is being created.
        incident_id: Option<IncidentId>,
        subject: String,
        description: String,
    },
    #[error("incident {0} is deleted")]
    IncidentDeleted(IncidentId),
    #[error("incident {0} is still open")]
    IncidentOpen(IncidentId),
    #[error("the postmortem of incident {0} is already published")]
    AlreadyPublished(IncidentId),
    #[error("{description}")]
    HasDependents {
        resource: &'static str,
        id: String,
        description: String,
    },
    #[error("request_id {0} was already used for a different request")]
    RequestIdReused(String),
    #[error("start sequence is beyond the head of the log ({head})")]
    SequenceAheadOfLog { head: u64 },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("server is overloaded, retry with backoff")]
    Overloaded,
    /// One caller holds its whole fair share of the server already.
    #[error("{caller} has {limit} calls in progress, its share of the server; retry with backoff")]
    FairShare { caller: String, limit: usize },
    /// The request did not arrive, or its reads did not finish, in time.
    #[error("{0}")]
    Timeout(String),
    /// The request message is larger than the server accepts.
    #[error("request message larger than {limit} bytes")]
    MessageTooLarge { limit: usize },
    #[error("too many subscribers")]
    SubscriberLimit,
    /// The server is draining: resume from the last sequence received.
    #[error("server is shutting down; resume from the last sequence received")]
    ShuttingDown,
    /// Never shown to clients: the detail goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

fn describe(v: &[FieldViolation]) -> String {
    v.iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// A single bad field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// The closed-list ErrorInfo reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "FIELD_INVALID",
            Error::PageTokenInvalid(_) => "PAGE_TOKEN_INVALID",
            Error::NotFound { .. } => "NOT_FOUND",
            Error::AlreadyExists { .. } => "ALREADY_EXISTS",
            Error::EtagMismatch { .. } => "ETAG_MISMATCH",
            Error::InvalidTransition { .. } => "INVALID_TRANSITION",
            Error::IncidentDeleted(_) => "INCIDENT_DELETED",
            Error::IncidentOpen(_) => "INCIDENT_OPEN",
            Error::AlreadyPublished(_) => "ALREADY_PUBLISHED",
            Error::HasDependents { .. } => "HAS_DEPENDENTS",
            Error::RequestIdReused(_) => "REQUEST_ID_REUSED",
            Error::SequenceAheadOfLog { .. } => "SEQUENCE_AHEAD_OF_LOG",
            Error::Unauthenticated(_) => "UNAUTHENTICATED",
            Error::PermissionDenied(_) => "PERMISSION_DENIED",
            // The closed list has no reason of its own for a drain; the client
            // does what it does on overload: back off and retry elsewhere.
            Error::Overloaded | Error::FairShare { .. } | Error::ShuttingDown => "OVERLOADED",
            Error::Timeout(_) => "REQUEST_TIMEOUT",
            Error::MessageTooLarge { .. } => "MESSAGE_TOO_LARGE",
            Error::SubscriberLimit => "SUBSCRIBER_LIMIT",
            Error::Internal(_) => "INTERNAL",
        }
    }

    /// The gRPC status code.
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidArgument(_) | Error::PageTokenInvalid(_) => Code::InvalidArgument,
            Error::NotFound { .. } => Code::NotFound,
            Error::AlreadyExists { .. } => Code::AlreadyExists,
            Error::EtagMismatch { .. } => Code::Aborted,
            Error::InvalidTransition { .. }
            | Error::IncidentDeleted(_)
            | Error::IncidentOpen(_)
            | Error::AlreadyPublished(_)
            | Error::HasDependents { .. }
            | Error::RequestIdReused(_) => Code::FailedPrecondition,
            Error::SequenceAheadOfLog { .. } => Code::OutOfRange,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::Overloaded | Error::FairShare { .. } | Error::SubscriberLimit => {
                Code::ResourceExhausted
            }
            Error::Timeout(_) => Code::DeadlineExceeded,
            // What tonic itself answers for an oversized message.
            Error::MessageTooLarge { .. } => Code::OutOfRange,
            Error::ShuttingDown => Code::Unavailable,
            Error::Internal(_) => Code::Internal,
        }
    }

    fn metadata(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_owned(), v);
        };
        match self {
            Error::NotFound { resource, id }
            | Error::EtagMismatch { resource, id }
            | Error::HasDependents { resource, id, .. } => {
                put(&format!("{resource}_id"), id.clone())
            }
            Error::AlreadyExists { meta, .. } => put(meta.0, meta.1.clone()),
            Error::IncidentDeleted(id) | Error::IncidentOpen(id) | Error::AlreadyPublished(id) => {
                put("incident_id", id.to_string())
            }
            Error::RequestIdReused(r) => put("request_id", r.clone()),
            Error::InvalidTransition {
                incident_id: Some(id),
                ..
            } => put("incident_id", id.to_string()),
            Error::SequenceAheadOfLog { head } => put("head_sequence", head.to_string()),
            _ => {}
        }
        m
    }

    /// The PreconditionFailure violation of a FAILED_PRECONDITION error.
    fn precondition(&self) -> Option<(&'static str, String, String)> {
        let desc = self.to_string();
        Some(match self {
            Error::InvalidTransition { subject, .. } => ("STATUS_KIND", subject.clone(), desc),
            Error::IncidentDeleted(id) => ("INCIDENT_DELETED", format!("incidents/{id}"), desc),
            Error::IncidentOpen(id) => ("INCIDENT_OPEN", format!("incidents/{id}"), desc),
            Error::AlreadyPublished(id) => (
                "ALREADY_PUBLISHED",
                format!("incidents/{id}/postmortem"),
                desc,
            ),
            Error::HasDependents { resource, id, .. } => {
                ("HAS_DEPENDENTS", format!("{resource}s/{id}"), desc)
            }
            Error::RequestIdReused(r) => ("REQUEST_ID_REUSED", format!("request_id/{r}"), desc),
            _ => return None,
        })
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let message = match &err {
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let mut details = ErrorDetails::new();
        details.set_error_info(err.reason(), ERROR_DOMAIN, err.metadata());
        match &err {
            Error::InvalidArgument(violations) => {
                for v in violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
            }
            Error::PageTokenInvalid(why) => {
                details.add_bad_request_violation("page_token", why.clone());
            }
            _ => {}
        }
        if let Some((kind, subject, description)) = err.precondition() {
            details.add_precondition_failure_violation(kind, subject, description);
        }
        Status::with_error_details(err.code(), message, details)
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // Every read connection stayed busy past the acquire timeout.
            sqlx::Error::PoolTimedOut => Error::Overloaded,
            e if crate::store::is_interrupted(&e) => Error::Timeout(
                "the query ran past the statement timeout; narrow the request (filters, page size)"
                    .into(),
            ),
            e => Error::Internal(format!("database: {e}")),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("stored document: {e}"))
    }
}

/// Result with the server's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

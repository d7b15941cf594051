//! The one error type of the server, and its single mapping to `tonic::Status`
//! with AIP-193 details (ErrorInfo always; BadRequest or PreconditionFailure
//! where the code calls for them).

use std::borrow::Cow;
use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::IncidentId;
use crate::domain::rule::{Gone, RuleError, StatusSource};

/// The `ErrorInfo.domain` of every error.
pub const ERROR_DOMAIN: &str = "incidentd";

/// Most characters of a client's value that an error quotes back.
pub const QUOTE_MAX_CHARS: usize = 64;

/// Most field violations one error reports; the last one reported says how
/// many more there were.
pub const VIOLATIONS_MAX: usize = 20;

/// Most bytes the status headers of an error (grpc-status, grpc-message,
/// grpc-status-details-bin) take, counted as HTTP/2 counts a header list:
/// name + value + 32 per field. Clients commonly refuse header lists past
/// 16 KiB (grpcio's default), so an error never comes near that.
pub const ERROR_HEADERS_MAX_BYTES: usize = 8 * 1024;

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
    #[error("{resource} {} not found", clip(.id, QUOTE_MAX_CHARS))]
    NotFound { resource: &'static str, id: String },
    #[error("{message}")]
    AlreadyExists {
        /// The ErrorInfo metadata naming the resource that exists.
        meta: (&'static str, String),
        message: String,
    },
    #[error("{resource} {} was changed since it was read (etag mismatch)", clip(.id, QUOTE_MAX_CHARS))]
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
    #[error(
        "the postmortem of incident {0} is already published as it is: change the draft to publish it again"
    )]
    AlreadyPublished(IncidentId),
    #[error("{description}")]
    HasDependents {
        resource: &'static str,
        id: String,
        description: String,
    },
    #[error("request_id {} was already used for a different request", clip(.0, QUOTE_MAX_CHARS))]
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
    /// The request message does not decode (bad UTF-8 in a string, truncated,
    /// a wrong wire type, nested too deep): what prost said.
    #[error("request message is malformed: {0}")]
    MessageMalformed(String),
    /// The server is draining: resume from the last sequence received.
    #[error("server is shutting down; resume from the last sequence received")]
    ShuttingDown,
    /// The database could not be reached or dropped the connection (a
    /// failover, a restart): retry, with the same request_id for a write.
    /// The detail goes to the log only.
    #[error("the database is unavailable; retry (a write with its request_id)")]
    DatabaseUnavailable(String),
    /// Never shown to clients: the detail goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The violations for the message: at most [`VIOLATIONS_MAX`] of them.
fn describe(v: &[FieldViolation]) -> String {
    violations_message(v, &TIERS[0])
}

/// The violations as one line within `limits`: as many as fit, then how
/// many more there are.
fn violations_message(violations: &[FieldViolation], limits: &Limits) -> String {
    const PREFIX: usize = "invalid request: ".len();
    let mut out = String::new();
    let mut shown = 0;
    for v in violations.iter().take(VIOLATIONS_MAX) {
        let item = format!(
            "{}{}: {}",
            if shown == 0 { "" } else { "; " },
            clip(&v.field, limits.field.max(16)),
            clip(&v.description, limits.description.max(16))
        );
        let fits = PREFIX + out.chars().count() + item.chars().count() <= limits.message;
        if shown > 0 && !fits {
            break;
        }
        out.push_str(&clip(&item, limits.message));
        shown += 1;
    }
    if violations.len() > shown {
        out.push_str(&more_violations(violations.len() - shown));
    }
    out
}

fn more_violations(n: usize) -> String {
    format!(
        "; … and {n} more violation{}",
        if n == 1 { "" } else { "s" }
    )
}

/// At most `max` characters of `s`, cut on a character boundary, with "…"
/// in place of the rest.
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some((end, _)) => Cow::Owned(format!("{}…", &s[..end])),
    }
}

/// A client's value as an error quotes it: in quotes, escaped, and at most
/// its first [`QUOTE_MAX_CHARS`] characters, so an error never repeats an
/// unbounded input.
pub fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_MAX_CHARS) {
        None => format!("{s:?}"),
        Some((end, _)) => format!("{:?}… ({} bytes)", &s[..end], s.len()),
    }
}

/// How much of an error its status carries; see [`TIERS`].
struct Limits {
    /// Field violations reported (BadRequest).
    violations: usize,
    /// Characters of a violation's field or a precondition's subject.
    field: usize,
    /// Characters of a violation's or a precondition's description.
    description: usize,
    /// Characters of the message.
    message: usize,
    /// Characters of an ErrorInfo metadata value (ids, names: the server's
    /// own values, at most 200 characters, but bounded all the same).
    metadata: usize,
}

/// Ever shorter renderings of an error: the first whose headers fit in
/// [`ERROR_HEADERS_MAX_BYTES`] is sent. The last always fits: at most 64
/// characters of message (3 bytes each percent-encoded, 4 bytes each in
/// UTF-8) and a bare ErrorInfo.
const TIERS: [Limits; 5] = [
    Limits {
        violations: VIOLATIONS_MAX,
        field: 128,
        description: 256,
        message: 1024,
        metadata: 256,
    },
    Limits {
        violations: 10,
        field: 96,
        description: 128,
        message: 512,
        metadata: 128,
    },
    Limits {
        violations: 3,
        field: 64,
        description: 64,
        message: 256,
        metadata: QUOTE_MAX_CHARS,
    },
    Limits {
        violations: 0,
        field: 64,
        description: 64,
        message: 128,
        metadata: QUOTE_MAX_CHARS,
    },
    Limits {
        violations: 0,
        field: 0,
        description: 0,
        message: 64,
        metadata: 0,
    },
];

/// The bytes the status headers of `status` take, as HTTP/2 counts them.
fn header_bytes(status: &Status) -> usize {
    let mut headers = http::HeaderMap::new();
    if status.add_header(&mut headers).is_err() {
        return usize::MAX;
    }
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum()
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
            Error::Overloaded
            | Error::FairShare { .. }
            | Error::ShuttingDown
            | Error::DatabaseUnavailable(_) => "OVERLOADED",
            Error::Timeout(_) => "REQUEST_TIMEOUT",
            Error::MessageTooLarge { .. } => "MESSAGE_TOO_LARGE",
            Error::SubscriberLimit => "SUBSCRIBER_LIMIT",
            Error::MessageMalformed(_) => "MESSAGE_MALFORMED",
            Error::Internal(_) => "INTERNAL",
        }
    }

    /// The gRPC status code.
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidArgument(_) | Error::PageTokenInvalid(_) | Error::MessageMalformed(_) => {
                Code::InvalidArgument
            }
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
            Error::ShuttingDown | Error::DatabaseUnavailable(_) => Code::Unavailable,
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
            | Error::HasDependents { resource, id, .. } => put(
                &format!("{resource}_id"),
                clip(id, QUOTE_MAX_CHARS).into_owned(),
            ),
            Error::AlreadyExists { meta, .. } => put(meta.0, meta.1.clone()),
            Error::IncidentDeleted(id) | Error::IncidentOpen(id) | Error::AlreadyPublished(id) => {
                put("incident_id", id.to_string())
            }
            Error::RequestIdReused(r) => put("request_id", clip(r, QUOTE_MAX_CHARS).into_owned()),
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

impl Error {
    /// The message of this error within `limits`. An INVALID_ARGUMENT names
    /// as many violations as fit, then how many more there are.
    fn message(&self, limits: &Limits) -> String {
        match self {
            Error::Internal(_) => "internal error".to_owned(),
            Error::InvalidArgument(violations) => {
                format!(
                    "invalid request: {}",
                    violations_message(violations, limits)
                )
            }
            other => clip(&other.to_string(), limits.message).into_owned(),
        }
    }

    /// The status of this error rendered within `limits`.
    fn status(&self, limits: &Limits) -> Status {
        let mut details = ErrorDetails::new();
        let metadata = if limits.metadata == 0 {
            HashMap::new()
        } else {
            self.metadata()
                .into_iter()
                .map(|(k, v)| (k, clip(&v, limits.metadata).into_owned()))
                .collect()
        };
        details.set_error_info(self.reason(), ERROR_DOMAIN, metadata);
        match self {
            Error::InvalidArgument(violations) if limits.violations > 0 => {
                let shown = violations.len().min(limits.violations);
                for (i, v) in violations[..shown].iter().enumerate() {
                    let mut description = clip(&v.description, limits.description).into_owned();
                    if i + 1 == shown && violations.len() > shown {
                        // After the clipped description, so the note is never cut.
                        description.push_str(&more_violations(violations.len() - shown));
                    }
                    details.add_bad_request_violation(clip(&v.field, limits.field), description);
                }
            }
            Error::PageTokenInvalid(why) if limits.violations > 0 => {
                details.add_bad_request_violation("page_token", clip(why, limits.description));
            }
            _ => {}
        }
        if limits.field > 0
            && let Some((kind, subject, description)) = self.precondition()
        {
            details.add_precondition_failure_violation(
                kind,
                clip(&subject, limits.field),
                clip(&description, limits.description),
            );
        }
        Status::with_error_details(self.code(), self.message(limits), details)
    }
}

/// The one mapping of errors to statuses. Whatever the error holds, its
/// headers stay within [`ERROR_HEADERS_MAX_BYTES`]: renderings are shortened
/// tier by tier until they fit.
impl From<Error> for Status {
    fn from(err: Error) -> Status {
        if let Error::Internal(detail) = &err {
            tracing::error!(error = %detail, "internal error");
        }
        if let Error::DatabaseUnavailable(detail) = &err {
            tracing::warn!(error = %detail, "database unavailable");
        }
        let (last, tiers) = TIERS.split_last().expect("tiers");
        for limits in tiers {
            let status = err.status(limits);
            if header_bytes(&status) <= ERROR_HEADERS_MAX_BYTES {
                return status;
            }
        }
        err.status(last)
    }
}

/// The edge's reading of a broken domain rule: the status it answers and,
/// where a request field is at fault, that field's path.
impl From<RuleError> for Error {
    fn from(e: RuleError) -> Self {
        let description = e.to_string();
        match e {
            RuleError::KindRequired => Error::invalid("incident.kind", description),
            RuleError::NextUpdateNotAfterPost => Error::invalid("next_update_time", description),
            RuleError::CompleteTimeOnOpenItem => {
                Error::invalid("action_item.complete_time", description)
            }
            RuleError::StatusOfOtherKind {
                incident_id,
                given_as,
                ..
            } => Error::InvalidTransition {
                incident_id,
                subject: match given_as {
                    StatusSource::Declared => "incident.status",
                    StatusSource::Posted => "status",
                }
                .to_owned(),
                description,
            },
            // Deleting what is already deleted: as if it were not there.
            RuleError::Gone(gone) => {
                let (resource, id) = match gone {
                    Gone::Incident(id) => ("incident", id.to_string()),
                    Gone::ActionItem(id) => ("action_item", id.to_string()),
                    Gone::Component(id) => ("component", id.to_string()),
                };
                Error::NotFound { resource, id }
            }
            RuleError::IncidentDeleted(id) => Error::IncidentDeleted(id),
            RuleError::IncidentNotDeleted(id) => Error::AlreadyExists {
                meta: ("incident_id", id.to_string()),
                message: "incident is not deleted".into(),
            },
            RuleError::PostmortemPublished(id) => Error::AlreadyPublished(id),
            RuleError::IncidentOpen(id) => Error::IncidentOpen(id),
            e @ RuleError::NotAuthor { .. } => Error::PermissionDenied(e.to_string()),
        }
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
            e if crate::store::is_connection_lost(&e) => Error::DatabaseUnavailable(e.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::StatusExt;

    /// The bytes of the status headers of `status` as sent: every header of
    /// its HTTP response, counted as HTTP/2 counts a header list.
    fn sent_header_bytes(status: Status) -> usize {
        let response: http::Response<()> = status.into_http();
        response
            .headers()
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("grpc-"))
            .map(|(name, value)| name.as_str().len() + value.len() + 32)
            .sum()
    }

    fn violations(n: usize) -> Vec<FieldViolation> {
        (0..n)
            .map(|i| FieldViolation {
                field: format!("incident.component_impacts[{i}].component_id"),
                description: "component listed twice".into(),
            })
            .collect()
    }

    #[test]
    fn clip_and_quote_cut_on_a_character_boundary() {
        assert_eq!(clip("short", 64), "short");
        assert_eq!(clip("ééééé", 3), "ééé…");
        assert_eq!(clip("", 0), "");
        assert_eq!(clip("x", 0), "…");
        assert_eq!(quote("abc"), "\"abc\"");
        let long = "€".repeat(1000);
        let q = quote(&long);
        assert!(q.starts_with(&format!("\"{}\"…", "€".repeat(QUOTE_MAX_CHARS))));
        assert!(q.ends_with("(3000 bytes)"));
        assert!(q.chars().count() < QUOTE_MAX_CHARS + 20);
    }

    #[test]
    fn a_3mb_not_found_id_stays_within_the_header_budget() {
        let id = "x".repeat(3 * 1024 * 1024);
        let status: Status = Error::NotFound {
            resource: "incident",
            id: id.clone(),
        }
        .into();
        assert_eq!(status.code(), Code::NotFound);
        assert!(status.message().len() < 200, "{}", status.message().len());
        assert!(
            status
                .message()
                .starts_with(&format!("incident {}…", &id[..QUOTE_MAX_CHARS]))
        );
        let details = status.get_error_details();
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "NOT_FOUND");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert!(info.metadata["incident_id"].chars().count() <= QUOTE_MAX_CHARS + 1);
        let bytes = sent_header_bytes(status);
        assert!(bytes < ERROR_HEADERS_MAX_BYTES, "{bytes} bytes of headers");
    }

    #[test]
    fn ten_thousand_violations_report_the_first_twenty_and_a_count() {
        let status: Status = Error::InvalidArgument(violations(10_000)).into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        assert_eq!(
            details.error_info().expect("ErrorInfo").reason,
            "FIELD_INVALID"
        );
        let bad = &details.bad_request().expect("BadRequest").field_violations;
        assert_eq!(bad.len(), VIOLATIONS_MAX);
        assert_eq!(bad[0].field, "incident.component_impacts[0].component_id");
        assert_eq!(bad[0].description, "component listed twice");
        assert_eq!(
            bad[VIOLATIONS_MAX - 1].description,
            "component listed twice; … and 9980 more violations"
        );
        // The message names as many as fit in its 1024 characters.
        let message = status.message();
        assert!(message.starts_with("invalid request: incident.component_impacts[0]"));
        assert!(
            message.ends_with(" more violations") && message.len() < 1100,
            "{message}"
        );
        let bytes = sent_header_bytes(status);
        assert!(bytes < ERROR_HEADERS_MAX_BYTES, "{bytes} bytes of headers");
    }

    #[test]
    fn huge_violations_are_shortened_until_they_fit() {
        // Twenty violations of 3 MB of four-byte characters each: far past the
        // budget even when each is clipped, so fewer and shorter are reported.
        let huge = "𝄞".repeat(1 << 20);
        let list: Vec<FieldViolation> = (0..25)
            .map(|_| FieldViolation {
                field: huge.clone(),
                description: huge.clone(),
            })
            .collect();
        let status: Status = Error::InvalidArgument(list).into();
        let details = status.get_error_details();
        assert_eq!(
            details.error_info().expect("ErrorInfo").reason,
            "FIELD_INVALID"
        );
        let bad = &details.bad_request().expect("BadRequest").field_violations;
        assert!(!bad.is_empty() && bad.len() < VIOLATIONS_MAX);
        assert!(bad.last().unwrap().description.contains("more violations"));
        let bytes = sent_header_bytes(status);
        assert!(bytes < ERROR_HEADERS_MAX_BYTES, "{bytes} bytes of headers");
    }

    #[test]
    fn every_error_fits_the_budget_whatever_it_holds() {
        let huge = "\u{7}é".repeat(1 << 20);
        let errors = vec![
            Error::PageTokenInvalid(huge.clone()),
            Error::AlreadyExists {
                meta: ("component_name", huge.clone()),
                message: huge.clone(),
            },
            Error::EtagMismatch {
                resource: "incident",
                id: huge.clone(),
            },
            Error::InvalidTransition {
                incident_id: None,
                subject: huge.clone(),
                description: huge.clone(),
            },
            Error::HasDependents {
                resource: "component",
                id: huge.clone(),
                description: huge.clone(),
            },
            Error::RequestIdReused(huge.clone()),
            Error::Unauthenticated(huge.clone()),
            Error::PermissionDenied(huge.clone()),
            Error::Timeout(huge.clone()),
            Error::MessageMalformed(huge.clone()),
            Error::Internal(huge.clone()),
        ];
        for err in errors {
            let reason = err.reason();
            let status: Status = err.into();
            let details = status.get_error_details();
            assert_eq!(details.error_info().expect("ErrorInfo").reason, reason);
            let bytes = sent_header_bytes(status);
            assert!(
                bytes < ERROR_HEADERS_MAX_BYTES,
                "{reason}: {bytes} bytes of headers"
            );
        }
    }

    #[test]
    fn a_malformed_message_is_invalid_argument() {
        let status: Status = Error::MessageMalformed("invalid wire type".into()).into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        assert_eq!(
            details.error_info().expect("ErrorInfo").reason,
            "MESSAGE_MALFORMED"
        );
    }
}

//! The one way the tests check a rejection: [`assert_rejected`] (and, for
//! tables of cases, [`Cases::reject`], which runs the same check and reports
//! every failing case at once).
//!
//! A rejected call must answer the expected gRPC code; an ErrorInfo of domain
//! `incidentd` with the expected reason and (at least) the expected metadata;
//! a BadRequest naming exactly the expected field paths; a
//! PreconditionFailure holding exactly the expected (type, subject)
//! violations; and leave every row of the database as it was.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::Future;

use incident_client::tonic::{Code, Status};
use tonic_types::StatusExt;

use super::db::WithDatabase;
use super::server::TestServer;

/// What a rejected call must answer.
#[derive(Clone, Debug)]
pub struct Rejection {
    pub code: Code,
    /// The ErrorInfo reason; `None` only for what tonic itself ends before
    /// the server's code answers ([`Rejection::by_transport`]).
    pub reason: Option<&'static str>,
    /// Exactly the field paths the BadRequest names.
    pub fields: BTreeSet<String>,
    /// Exactly the (type, subject) violations of the PreconditionFailure.
    pub preconditions: BTreeSet<(String, String)>,
    /// Entries the ErrorInfo metadata must hold (it may hold more).
    pub metadata: Vec<(&'static str, String)>,
}

impl Rejection {
    /// `code` with ErrorInfo `reason`, no BadRequest, no PreconditionFailure.
    pub fn new(code: Code, reason: &'static str) -> Rejection {
        Rejection {
            code,
            reason: Some(reason),
            fields: BTreeSet::new(),
            preconditions: BTreeSet::new(),
            metadata: Vec::new(),
        }
    }

    /// Ended by tonic itself (a client deadline passed), not by the
    /// server's code: there is no ErrorInfo to check, only the code (and no
    /// BadRequest or PreconditionFailure).
    pub fn by_transport(code: Code) -> Rejection {
        Rejection {
            reason: None,
            ..Rejection::new(code, "")
        }
    }

    /// INVALID_ARGUMENT FIELD_INVALID naming exactly these fields.
    pub fn invalid(fields: &[&str]) -> Rejection {
        Rejection::new(Code::InvalidArgument, "FIELD_INVALID").fields(fields)
    }

    /// INVALID_ARGUMENT PAGE_TOKEN_INVALID naming `page_token`.
    pub fn page_token() -> Rejection {
        Rejection::new(Code::InvalidArgument, "PAGE_TOKEN_INVALID").fields(&["page_token"])
    }

    /// NOT_FOUND naming the resource in metadata (`incident_id`, ...).
    pub fn not_found(key: &'static str, id: &str) -> Rejection {
        Rejection::new(Code::NotFound, "NOT_FOUND").meta(key, id)
    }

    /// ABORTED ETAG_MISMATCH naming the resource in metadata.
    pub fn stale_etag(key: &'static str, id: &str) -> Rejection {
        Rejection::new(Code::Aborted, "ETAG_MISMATCH").meta(key, id)
    }

    /// ALREADY_EXISTS naming the existing resource in metadata.
    pub fn already_exists(key: &'static str, id: &str) -> Rejection {
        Rejection::new(Code::AlreadyExists, "ALREADY_EXISTS").meta(key, id)
    }

    /// FAILED_PRECONDITION `reason` with this one PreconditionFailure violation.
    pub fn failed(reason: &'static str, kind: &str, subject: &str) -> Rejection {
        let mut r = Rejection::new(Code::FailedPrecondition, reason);
        r.preconditions
            .insert((kind.to_owned(), subject.to_owned()));
        r
    }

    /// A status of the wrong kind for the incident, at field `subject`.
    pub fn wrong_kind(subject: &str) -> Rejection {
        Rejection::failed("INVALID_TRANSITION", "STATUS_KIND", subject)
    }

    /// A write on a deleted incident.
    pub fn deleted(incident_id: &str) -> Rejection {
        Rejection::failed(
            "INCIDENT_DELETED",
            "INCIDENT_DELETED",
            &format!("incidents/{incident_id}"),
        )
        .meta("incident_id", incident_id)
    }

    /// A postmortem published while its incident is open.
    pub fn incident_open(incident_id: &str) -> Rejection {
        Rejection::failed(
            "INCIDENT_OPEN",
            "INCIDENT_OPEN",
            &format!("incidents/{incident_id}"),
        )
        .meta("incident_id", incident_id)
    }

    /// A postmortem published a second time.
    pub fn already_published(incident_id: &str) -> Rejection {
        Rejection::failed(
            "ALREADY_PUBLISHED",
            "ALREADY_PUBLISHED",
            &format!("incidents/{incident_id}/postmortem"),
        )
        .meta("incident_id", incident_id)
    }

    /// A component still used by an open incident or a live child.
    pub fn has_dependents(component_id: &str) -> Rejection {
        Rejection::failed(
            "HAS_DEPENDENTS",
            "HAS_DEPENDENTS",
            &format!("components/{component_id}"),
        )
        .meta("component_id", component_id)
    }

    /// A request_id already used by the caller for another request.
    pub fn request_id_reused(request_id: &str) -> Rejection {
        Rejection::failed(
            "REQUEST_ID_REUSED",
            "REQUEST_ID_REUSED",
            &format!("request_id/{request_id}"),
        )
        .meta("request_id", request_id)
    }

    /// These are exactly the fields the BadRequest must name.
    pub fn fields(mut self, fields: &[&str]) -> Rejection {
        self.fields = fields.iter().map(|f| (*f).to_owned()).collect();
        self
    }

    /// The ErrorInfo metadata must hold `key` = `value`.
    pub fn meta(mut self, key: &'static str, value: &str) -> Rejection {
        self.metadata.push((key, value.to_owned()));
        self
    }

    /// Compares a status with what is wanted; describes every difference.
    pub fn check(&self, status: &Status) -> Result<(), String> {
        let details = status.get_error_details();
        let info = details.error_info();
        let mut errs = Vec::new();
        if status.code() != self.code {
            errs.push(format!("code {:?}, want {:?}", status.code(), self.code));
        }
        if let Some(reason) = self.reason {
            match info {
                None => errs.push("no ErrorInfo".to_owned()),
                Some(i) => {
                    if i.domain != "incidentd" {
                        errs.push(format!(
                            "ErrorInfo domain {:?}, want \"incidentd\"",
                            i.domain
                        ));
                    }
                    if i.reason != reason {
                        errs.push(format!("reason {:?}, want {reason:?}", i.reason));
                    }
                    for (k, v) in &self.metadata {
                        if i.metadata.get(*k) != Some(v) {
                            errs.push(format!(
                                "metadata {k} = {:?}, want {v:?}",
                                i.metadata.get(*k)
                            ));
                        }
                    }
                }
            }
        }
        let fields: BTreeSet<String> = details
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        if fields != self.fields {
            errs.push(format!(
                "BadRequest names {fields:?}, want {:?}",
                self.fields
            ));
        }
        let preconditions: BTreeSet<(String, String)> = details
            .precondition_failure()
            .map(|p| {
                p.violations
                    .iter()
                    .map(|v| (v.r#type.clone(), v.subject.clone()))
                    .collect()
            })
            .unwrap_or_default();
        if preconditions != self.preconditions {
            errs.push(format!(
                "PreconditionFailure holds {preconditions:?}, want {:?}",
                self.preconditions
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} (message: {:?})",
                errs.join("; "),
                clip(status.message())
            ))
        }
    }
}

fn clip(s: &str) -> String {
    match s.char_indices().nth(300) {
        None => s.to_owned(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

/// Runs `call`, which must be rejected as `want` says and change no row of
/// the database; on success returns the status, else every difference.
pub async fn check_rejected<T: Debug>(
    srv: &impl WithDatabase,
    want: &Rejection,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<Status, String> {
    let before = srv.database().snapshot().await;
    let result = call.await;
    let after = srv.database().snapshot().await;
    let mut problems = Vec::new();
    let status = match result {
        Ok(r) => {
            problems.push(format!(
                "accepted, wanted {:?} {}: {}",
                want.code,
                want.reason.unwrap_or_default(),
                clip(&format!("{r:?}"))
            ));
            None
        }
        Err(s) => {
            if let Err(e) = want.check(&s) {
                problems.push(e);
            }
            Some(s)
        }
    };
    if let Some(diff) = before.diff(&after) {
        problems.push(format!("the database changed:\n{diff}"));
    }
    match status {
        Some(s) if problems.is_empty() => Ok(s),
        _ => Err(problems.join("; ")),
    }
}

/// Runs `call`, which must be rejected as `want` says and change no row of
/// the database; returns the status.
pub async fn assert_rejected<T: Debug>(
    srv: &impl WithDatabase,
    want: Rejection,
    call: impl Future<Output = Result<T, Status>>,
) -> Status {
    check_rejected(srv, &want, call)
        .await
        .unwrap_or_else(|e| panic!("not the rejection wanted ({want:?}): {e}"))
}

/// Named cases run against one server: every failing case is reported by
/// name, all of them at once, by [`Cases::finish`].
pub struct Cases<'a> {
    srv: &'a TestServer,
    suite: &'static str,
    run: usize,
    failures: Vec<String>,
}

impl<'a> Cases<'a> {
    pub fn new(srv: &'a TestServer, suite: &'static str) -> Self {
        Cases {
            srv,
            suite,
            run: 0,
            failures: Vec::new(),
        }
    }

    /// The call must be rejected as `want` says and change nothing.
    pub async fn reject<T: Debug>(
        &mut self,
        name: &str,
        want: Rejection,
        call: impl Future<Output = Result<T, Status>>,
    ) {
        self.run += 1;
        if let Err(e) = check_rejected(self.srv, &want, call).await {
            self.failures.push(format!("[{name}] {e}"));
        }
    }

    /// The call must succeed.
    pub async fn accept<T>(
        &mut self,
        name: &str,
        call: impl Future<Output = Result<incident_client::tonic::Response<T>, Status>>,
    ) -> Option<T> {
        self.run += 1;
        match call.await {
            Ok(r) => Some(r.into_inner()),
            Err(s) => {
                self.failures.push(format!(
                    "[{name}] rejected: {:?} {:?}",
                    s.code(),
                    clip(s.message())
                ));
                None
            }
        }
    }

    /// Records a failed side check.
    pub fn fail(&mut self, name: &str, what: String) {
        self.failures.push(format!("[{name}] {what}"));
    }

    pub fn finish(self) {
        println!("{}: {} cases", self.suite, self.run);
        assert!(
            self.failures.is_empty(),
            "{}: {} of {} cases failed:\n  {}",
            self.suite,
            self.failures.len(),
            self.run,
            self.failures.join("\n  ")
        );
    }
}

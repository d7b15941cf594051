//! The use cases: each write is a typed command, run by the writer with the
//! commands around it, that applies the domain rules in memory and appends its
//! events; reads go through the pool.

pub mod action_items;
pub mod components;
pub mod incidents;
pub mod timeline;

use crate::error::{Error, Result};
use crate::store::request_ids::RequestKey;
use crate::store::{Command, Store};

/// Who is calling: the actor on every event and the scope of request ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub actor: String,
    /// An admin token, or any caller in open mode (where every call may do
    /// everything): it may correct what others wrote.
    pub admin: bool,
}

impl Caller {
    /// The caller as the editor of a correction.
    pub fn editor(&self) -> crate::domain::correction::Editor {
        crate::domain::correction::Editor {
            name: self.actor.clone(),
            admin: self.admin,
        }
    }
}

/// Runs a command in the next group commit, once per request id: a retry with
/// the same request returns the first result and writes nothing; a different
/// request under the same id is REQUEST_ID_REUSED. The record commits with the
/// change it answers for.
pub async fn execute<C: Command>(
    store: &Store,
    key: Option<RequestKey>,
    command: C,
) -> Result<C::Output> {
    store.execute(key, command).await
}

/// Refuses a write whose etag is set and stale.
pub fn check_etag(
    given: Option<&str>,
    current: &str,
    resource: &'static str,
    id: String,
) -> Result<()> {
    match given {
        Some(etag) if etag != current => Err(Error::EtagMismatch { resource, id }),
        _ => Ok(()),
    }
}

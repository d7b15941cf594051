//! The use cases: each runs the domain rules against stored state inside one
//! writer transaction (or reads through the pool), and appends its events.

pub mod action_items;
pub mod components;
pub mod incidents;
pub mod timeline;

use serde::{Serialize, de::DeserializeOwned};

use crate::error::{Error, Result};
use crate::store::request_ids::{self, RequestKey};
use crate::store::{Command, Store, WriteCtx, WriteFuture};

/// Who is calling: the actor on every event and the scope of request ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub actor: String,
}

/// Runs a command in the next group commit, once per request id (a retry
/// with the same request returns the first result and writes nothing).
pub async fn execute<C: Command>(
    store: &Store,
    key: Option<RequestKey>,
    command: C,
) -> Result<C::Output> {
    store.execute(key, command).await
}

/// Runs a write once per request id: a retry with the same request returns the
/// first result and writes nothing; a different request under the same id is
/// REQUEST_ID_REUSED. The record commits with the change it answers for.
pub async fn write_once<T, F>(store: &Store, key: Option<RequestKey>, job: F) -> Result<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    F: for<'c> FnOnce(&'c mut WriteCtx) -> WriteFuture<'c, T> + Send + 'static,
{
    store
        .write(move |ctx| {
            Box::pin(async move {
                if let Some(key) = &key
                    && let Some((fingerprint, response)) =
                        request_ids::find(ctx.conn(), key).await?
                {
                    if fingerprint != key.fingerprint {
                        return Err(Error::RequestIdReused(key.request_id.clone()));
                    }
                    return Ok(serde_json::from_str(&response)?);
                }
                let out = job(&mut *ctx).await?;
                if let Some(key) = &key {
                    let now = ctx.now();
                    request_ids::record(ctx.conn(), key, &serde_json::to_string(&out)?, now)
                        .await?;
                }
                Ok(out)
            })
        })
        .await
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

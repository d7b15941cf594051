//! How much of the server a call may take: calls in progress server-wide and
//! per caller (a token's fair share), and subscriptions open server-wide and
//! per caller. Refusals are immediate (RESOURCE_EXHAUSTED), never a queue.
//!
//! Per-caller shares apply to authenticated callers, keyed by token name:
//! one quota per token of the tokens file, made at start, so admitting a call
//! takes no lock. Open mode trusts its loopback callers and applies only the
//! server-wide limits.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::{Identity, Tokens};
use crate::config::LimitArgs;
use crate::error::Error;

/// See the module docs.
#[derive(Clone)]
pub struct Quotas {
    inner: Arc<Inner>,
}

struct Inner {
    calls: Arc<Semaphore>,
    open_streams: Arc<Semaphore>,
    subscribers: Arc<Semaphore>,
    per_caller_calls: usize,
    /// By token name.
    callers: HashMap<String, CallerQuota>,
}

struct CallerQuota {
    calls: Arc<Semaphore>,
    subscribers: Arc<Semaphore>,
}

/// A place under the limits (a call's, or a stream's that needs no token),
/// released when dropped.
pub struct Permit {
    _server: OwnedSemaphorePermit,
    _caller: Option<OwnedSemaphorePermit>,
}

/// A subscription's place under the limits, held for the life of the stream.
pub struct SubscriberPermit {
    _held: Permit,
    /// The caller's call share, taken while the subscription reads the database.
    catch_up: Option<Arc<Semaphore>>,
}

impl SubscriberPermit {
    /// Waits for a place in the caller's share of calls, to hold while the
    /// subscription reads the database; a subscription delivering or idle
    /// holds none. Open mode: no wait.
    pub fn catching_up(
        &self,
    ) -> impl Future<Output = Option<OwnedSemaphorePermit>> + Send + 'static {
        let share = self.catch_up.clone();
        async move { share?.acquire_owned().await.ok() }
    }
}

/// One place of `semaphore`, or `refusal`.
fn take(
    semaphore: &Arc<Semaphore>,
    refusal: impl FnOnce() -> Error,
) -> Result<OwnedSemaphorePermit, Error> {
    semaphore.clone().try_acquire_owned().map_err(|_| refusal())
}

impl Quotas {
    /// The limits of `limits`, with a share for each token of `tokens`.
    pub fn new(limits: &LimitArgs, tokens: Option<&Tokens>) -> Quotas {
        let semaphore = |n: usize| Arc::new(Semaphore::new(n.max(1)));
        let callers = tokens
            .into_iter()
            .flat_map(Tokens::names)
            .map(|name| {
                let quota = CallerQuota {
                    calls: semaphore(limits.max_requests_per_caller),
                    subscribers: semaphore(limits.max_subscribers_per_caller),
                };
                (name.to_owned(), quota)
            })
            .collect();
        Quotas {
            inner: Arc::new(Inner {
                calls: semaphore(limits.max_concurrent_requests),
                open_streams: semaphore(limits.max_anonymous_streams),
                subscribers: semaphore(limits.max_subscribers),
                per_caller_calls: limits.max_requests_per_caller.max(1),
                callers,
            }),
        }
    }

    /// The quota of an authenticated caller; `None` in open mode.
    fn caller(&self, who: Option<&Identity>) -> Option<(&str, &CallerQuota)> {
        self.inner
            .callers
            .get_key_value(&who?.name)
            .map(|(name, q)| (name.as_str(), q))
    }

    /// Admits a call of `who` (`None`: open mode), or says why not.
    pub fn admit_call(&self, who: Option<&Identity>) -> Result<Permit, Error> {
        // The caller's share first: one caller at its share must not take
        // server-wide places from the others while it is refused.
        let caller = match self.caller(who) {
            None => None,
            Some((name, q)) => Some(take(&q.calls, || Error::FairShare {
                caller: name.to_owned(),
                limit: self.inner.per_caller_calls,
            })?),
        };
        Ok(Permit {
            _server: take(&self.inner.calls, || Error::Overloaded)?,
            _caller: caller,
        })
    }

    /// Admits a stream that needs no token (health Watch, reflection).
    pub fn admit_open_stream(&self) -> Result<Permit, Error> {
        Ok(Permit {
            _server: take(&self.inner.open_streams, || Error::SubscriberLimit)?,
            _caller: None,
        })
    }

    /// Admits a subscription of `who` (`None`: open mode), or says why not.
    pub fn admit_subscriber(&self, who: Option<&Identity>) -> Result<SubscriberPermit, Error> {
        let quota = self.caller(who).map(|(_, q)| q);
        let caller = match quota {
            None => None,
            Some(q) => Some(take(&q.subscribers, || Error::SubscriberLimit)?),
        };
        Ok(SubscriberPermit {
            _held: Permit {
                _server: take(&self.inner.subscribers, || Error::SubscriberLimit)?,
                _caller: caller,
            },
            catch_up: quota.map(|q| q.calls.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn who(name: &str) -> Identity {
        Identity {
            name: name.into(),
            role: Role::Viewer,
        }
    }

    /// Quotas for the tokens "a" and "b".
    fn quotas(limits: &LimitArgs) -> Quotas {
        let tokens = Tokens::parse(&format!(
            "[[token]]\nname = \"a\"\nrole = \"viewer\"\nsha256 = \"{}\"\n\n\
             [[token]]\nname = \"b\"\nrole = \"viewer\"\nsha256 = \"{}\"\n",
            crate::auth::token_digest("a"),
            crate::auth::token_digest("b")
        ))
        .unwrap();
        Quotas::new(limits, Some(&tokens))
    }

    fn limits(calls: usize, per_caller: usize) -> LimitArgs {
        LimitArgs {
            max_concurrent_requests: calls,
            max_requests_per_caller: per_caller,
            max_subscribers: 3,
            max_subscribers_per_caller: 2,
            ..LimitArgs::default()
        }
    }

    #[test]
    fn one_caller_cannot_take_the_whole_server() {
        let q = quotas(&limits(4, 2));
        let (a, b) = (who("a"), who("b"));
        let held: Vec<_> = (0..2).map(|_| q.admit_call(Some(&a)).unwrap()).collect();
        assert!(matches!(
            q.admit_call(Some(&a)),
            Err(Error::FairShare { limit: 2, .. })
        ));
        // The other caller still gets in, up to the server-wide limit.
        let b1 = q.admit_call(Some(&b)).unwrap();
        let _b2 = q.admit_call(Some(&b)).unwrap();
        assert!(q.admit_call(None).is_err(), "server-wide limit reached");
        drop(b1);
        assert!(q.admit_call(None).is_ok());
        drop(held);
        assert!(q.admit_call(Some(&a)).is_ok());
    }

    #[test]
    fn subscriptions_are_capped_per_caller_and_server_wide() {
        let q = quotas(&limits(4, 2));
        let (a, b) = (who("a"), who("b"));
        let _a1 = q.admit_subscriber(Some(&a)).unwrap();
        let _a2 = q.admit_subscriber(Some(&a)).unwrap();
        assert!(q.admit_subscriber(Some(&a)).is_err(), "caller cap");
        let _b1 = q.admit_subscriber(Some(&b)).unwrap();
        assert!(q.admit_subscriber(Some(&b)).is_err(), "server cap (3)");
    }

    #[tokio::test]
    async fn a_catching_up_subscription_counts_against_its_callers_share() {
        let q = quotas(&limits(4, 1));
        let a = who("a");
        let sub = q.admit_subscriber(Some(&a)).unwrap();
        let reading = sub.catching_up().await.expect("a share while reading");
        assert!(matches!(
            q.admit_call(Some(&a)),
            Err(Error::FairShare { .. })
        ));
        drop(reading);
        assert!(
            q.admit_call(Some(&a)).is_ok(),
            "idle live subscription holds no share"
        );
    }
}

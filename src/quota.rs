//! How much of the server a call may take: calls in progress server-wide and
//! per caller (a token's fair share), and subscriptions open server-wide and
//! per caller. Refusals are immediate (RESOURCE_EXHAUSTED), never a queue.
//!
//! Per-caller shares apply to authenticated callers, keyed by token name (a
//! bounded set: the tokens file). Open mode trusts its loopback callers and
//! applies only the server-wide limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::Identity;
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
    per_caller_subscribers: usize,
    callers: Mutex<HashMap<String, CallerQuota>>,
}

#[derive(Clone)]
struct CallerQuota {
    calls: Arc<Semaphore>,
    subscribers: Arc<Semaphore>,
}

/// A call's place under the limits, released when dropped.
pub struct CallPermit {
    _server: OwnedSemaphorePermit,
    _caller: Option<OwnedSemaphorePermit>,
}

/// A health Watch or reflection stream's place, held while it is open.
pub struct OpenStreamPermit {
    _permit: OwnedSemaphorePermit,
}

/// A subscription's place under the limits, held for the life of the stream.
pub struct SubscriberPermit {
    _server: OwnedSemaphorePermit,
    _caller: Option<OwnedSemaphorePermit>,
    /// The caller's call share, taken while the subscription reads the database.
    catch_up: Option<Arc<Semaphore>>,
}

impl SubscriberPermit {
    /// Waits for a place in the caller's share of calls, to hold while the
    /// subscription reads the database; a subscription delivering or idle
    /// holds none. Open mode: no wait.
    pub async fn catching_up(&self) -> Option<OwnedSemaphorePermit> {
        let share = self.catch_up.clone()?;
        share.acquire_owned().await.ok()
    }
}

impl Quotas {
    pub fn new(limits: &LimitArgs) -> Quotas {
        Quotas {
            inner: Arc::new(Inner {
                calls: Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1))),
                open_streams: Arc::new(Semaphore::new(limits.max_anonymous_streams.max(1))),
                subscribers: Arc::new(Semaphore::new(limits.max_subscribers.max(1))),
                per_caller_calls: limits.max_requests_per_caller.max(1),
                per_caller_subscribers: limits.max_subscribers_per_caller.max(1),
                callers: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn caller(&self, who: &Identity) -> CallerQuota {
        let mut callers = match self.inner.callers.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        callers
            .entry(who.name.clone())
            .or_insert_with(|| CallerQuota {
                calls: Arc::new(Semaphore::new(self.inner.per_caller_calls)),
                subscribers: Arc::new(Semaphore::new(self.inner.per_caller_subscribers)),
            })
            .clone()
    }

    /// Admits a call of `who` (`None`: open mode), or says why not.
    pub fn admit_call(&self, who: Option<&Identity>) -> Result<CallPermit, Error> {
        // The caller's share first: one caller at its share must not take
        // server-wide places from the others while it is refused.
        let caller =
            match who {
                None => None,
                Some(who) => Some(self.caller(who).calls.try_acquire_owned().map_err(|_| {
                    Error::FairShare {
                        caller: who.name.clone(),
                        limit: self.inner.per_caller_calls,
                    }
                })?),
            };
        let server = self
            .inner
            .calls
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Overloaded)?;
        Ok(CallPermit {
            _server: server,
            _caller: caller,
        })
    }

    /// Admits a stream that needs no token (health Watch, reflection).
    pub fn admit_open_stream(&self) -> Result<OpenStreamPermit, Error> {
        self.inner
            .open_streams
            .clone()
            .try_acquire_owned()
            .map(|p| OpenStreamPermit { _permit: p })
            .map_err(|_| Error::SubscriberLimit)
    }

    /// Admits a subscription of `who` (`None`: open mode), or says why not.
    pub fn admit_subscriber(&self, who: Option<&Identity>) -> Result<SubscriberPermit, Error> {
        let quota = who.map(|w| self.caller(w));
        let caller = match &quota {
            None => None,
            Some(q) => Some(
                q.subscribers
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| Error::SubscriberLimit)?,
            ),
        };
        let server = self
            .inner
            .subscribers
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::SubscriberLimit)?;
        Ok(SubscriberPermit {
            _server: server,
            _caller: caller,
            catch_up: quota.map(|q| q.calls),
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
        let q = Quotas::new(&limits(4, 2));
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
        let q = Quotas::new(&limits(4, 2));
        let (a, b) = (who("a"), who("b"));
        let _a1 = q.admit_subscriber(Some(&a)).unwrap();
        let _a2 = q.admit_subscriber(Some(&a)).unwrap();
        assert!(q.admit_subscriber(Some(&a)).is_err(), "caller cap");
        let _b1 = q.admit_subscriber(Some(&b)).unwrap();
        assert!(q.admit_subscriber(Some(&b)).is_err(), "server cap (3)");
    }

    #[tokio::test]
    async fn a_catching_up_subscription_counts_against_its_callers_share() {
        let q = Quotas::new(&limits(4, 1));
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

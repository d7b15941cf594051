//! Waiting for a condition instead of for a while: every wait is bounded by
//! [`PATIENCE`], generous enough for a loaded machine, so that a hang fails
//! the test instead of hanging it.

use std::future::Future;
use std::time::Duration;

/// How long any wait of the tests may take before it counts as a hang.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How often [`eventually`] asks again.
const POLL: Duration = Duration::from_millis(10);

/// Awaits `f`; panics naming `what` if it takes longer than [`PATIENCE`].
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(PATIENCE, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing after {PATIENCE:?}"))
}

/// Asks `probe` until it answers `Some`; panics naming `what` if that takes
/// longer than [`PATIENCE`].
pub async fn eventually<T, Fut>(what: &str, mut probe: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Option<T>>,
{
    within(what, async {
        loop {
            if let Some(t) = probe().await {
                return t;
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await
}

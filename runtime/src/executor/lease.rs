//! The first stage, taking the job's lease lock; the one routine that renews a held lease
//! (the watchdog and the busy-tick wait both use it); and the release at the end. Their
//! lines name the job: the busy-tick wait and the release of a skipped tick run outside
//! any execution's span.

use std::time::Duration;

use tokio::time::{Instant, sleep_until, timeout, timeout_at};

use super::{BACKEND_TIMEOUT, Skip, Tick, identity};
use crate::{
    job::LockPolicy,
    lock::{Acquired, Lease, LockBackend, LockError},
    metrics::{JobMetrics, SkipReason},
};

/// A lease this run holds.
pub(super) struct Held {
    pub(super) lease: Lease,
    pub(super) policy: LockPolicy,
    acquired: Instant,
    /// A ttl after the last successful acquisition or renewal was sent: the lease may
    /// expire from then on.
    valid_until: Instant,
    /// When to renew next: a third of the ttl after the last renewal, sooner after a failed
    /// try.
    next_renew: Instant,
}

/// The lease can no longer be proven held: another instance may take it.
pub(super) struct LeaseLost {
    /// Why, for the log.
    pub(super) why: &'static str,
    /// When the lease may have expired: the run must be gone by then.
    pub(super) valid_until: Instant,
}

impl Held {
    fn new(lease: Lease, policy: LockPolicy, sent: Instant) -> Self {
        Self {
            lease,
            policy,
            acquired: sent,
            valid_until: sent + policy.ttl,
            next_renew: sent + policy.ttl / 3,
        }
    }

    /// The instant after which the lease counts as lost: a third of the ttl before it may
    /// expire, so the run is gone before anyone else could take the lock.
    pub(super) fn lost_at(&self) -> Instant {
        self.valid_until - self.policy.ttl / 3
    }

    /// Waits until the next renewal is due and renews the lease once. A backend that fails
    /// or does not answer is tried again every ttl/15 until [`Held::lost_at`]; the lease is
    /// lost when the backend says another owner holds it (or it expired), or when no renewal
    /// got through by then. Every call is bounded by that instant, so a hung backend cannot
    /// hide the loss. Dropping the future between renewals is harmless.
    pub(super) async fn keep(&mut self, lock: &dyn LockBackend) -> Result<(), LeaseLost> {
        let lost_at = self.lost_at();
        let lost = |why| LeaseLost {
            why,
            valid_until: self.valid_until,
        };
        if Instant::now() >= lost_at {
            return Err(lost("the lease could not be renewed in time"));
        }
        tokio::select! {
            biased;
            () = sleep_until(lost_at) => return Err(lost("the lease could not be renewed in time")),
            () = sleep_until(self.next_renew) => {}
        }
        let ttl = self.policy.ttl;
        let sent = Instant::now();
        match timeout_at(lost_at, lock.extend(&self.lease, ttl)).await {
            Ok(Ok(true)) => {
                self.valid_until = sent + ttl;
                self.next_renew = sent + ttl / 3;
                tracing::trace!(job = %self.lease.name, "lease renewed");
                Ok(())
            }
            Ok(Ok(false)) => Err(lost("the lease expired or another owner holds it")),
            Ok(Err(e)) => {
                tracing::warn!(job = %self.lease.name, error = %e, "cannot renew the lease; retrying");
                self.next_renew = Instant::now() + (ttl / 15).max(Duration::from_millis(10));
                Ok(())
            }
            Err(_) => Err(lost("the lease renewal timed out")),
        }
    }
}

/// Stage 1: takes the job's lease, if the job has a lock. Skips the tick when another
/// instance holds it (`locked`: the holder, if the backend names it, is kept for the
/// ledger) or the backend cannot be reached (`unavailable`). The lease's owner names the
/// tick, so that an instance finding it held knows which tick the holder runs.
pub(super) async fn acquire(t: &mut Tick<'_>) -> Skip<()> {
    let Some(policy) = t.job().lock else {
        return Ok(());
    };
    let rt = t.rt;
    let sent = Instant::now();
    let owner = identity::lock_owner(&t.owner, t.at);
    let acquired = timeout(
        BACKEND_TIMEOUT,
        rt.lock.acquire(&t.job().name, &owner, policy.ttl),
    )
    .await
    .unwrap_or_else(|_| Err(LockError::new("timed out")));
    t.metrics()
        .lock_acquire
        .record(sent.elapsed().as_secs_f64());
    match acquired {
        Ok(Acquired::Lease(lease)) => {
            t.lease = Some(Held::new(lease, policy, sent));
            Ok(())
        }
        Ok(Acquired::Held { holder }) => {
            tracing::debug!(
                job = %t.job().name, tick = %t.at, holder = holder.as_deref(),
                "lock held elsewhere; tick not run here"
            );
            t.holder = holder;
            Err(SkipReason::Locked)
        }
        Err(e) => {
            tracing::warn!(
                job = %t.job().name, tick = %t.at, backend = %rt.lock.describe(), error = %e,
                "cannot reach the lock backend; tick skipped"
            );
            Err(SkipReason::Unavailable)
        }
    }
}

/// Releases the lease, holding it until `at_least` has passed since it was taken (unless
/// `hold_at_least` is false).
pub(super) async fn release(
    lock: &dyn LockBackend,
    m: &JobMetrics,
    held: Option<Held>,
    hold_at_least: bool,
) {
    let Some(held) = held else { return };
    let elapsed = held.acquired.elapsed();
    let hold_for = if hold_at_least {
        held.policy.at_least.saturating_sub(elapsed)
    } else {
        Duration::ZERO
    };
    let released = timeout(BACKEND_TIMEOUT, lock.release(&held.lease, hold_for))
        .await
        .unwrap_or_else(|_| Err(LockError::new("timed out")));
    match released {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            job = %held.lease.name,
            "lease was already gone at release (expired or taken over)"
        ),
        Err(e) => tracing::warn!(
            job = %held.lease.name, error = %e,
            "cannot release the lease; it expires by itself after its ttl"
        ),
    }
    m.lock_held.record((elapsed + hold_for).as_secs_f64());
}

//! `overlap = "cancel_other"`: a tick that finds the job still running an older tick asks
//! that execution to stop, on whatever instance it runs, waits for the job to be free, and
//! runs. The request goes through the store ([`ExecutionStore::request_cancel`], kind
//! [`CancelKind::Superseded`]): it makes the older execution final (recorded CANCELLED,
//! never resumed), and the control task of the instance that runs it stops it within a
//! second (at once on PostgreSQL, whose listeners are notified). A run of this instance is
//! told directly as well.
//!
//! Only an older tick is superseded: a job found busy with this very tick (another instance
//! runs it) or a newer one (this instance's clock lags) is left alone.
//!
//! [`ExecutionStore::request_cancel`]: crate::store::ExecutionStore::request_cancel

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::{Instant, sleep};

use super::{JobEntry, Runtime, Skip, Tick, bounded, identity, lease};
use crate::{
    job::Overlap,
    metrics::SkipReason,
    store::{CancelKind, CancelRequest, HistoryQuery, Status, StoreError},
};

/// How often a tick that superseded the running execution asks for the job's lease or claim
/// again, while it waits for that execution to end.
pub(super) const POLL: Duration = Duration::from_millis(100);

/// How long a superseding tick waits for the old execution to end beyond the cancel grace
/// its run gets: the request's delivery (a control-task poll at most) and its end's record.
const SLACK: Duration = Duration::from_secs(3);

/// How many of the job's running executions are read, at most (one, but for an owner that
/// died and is not proven gone yet).
const RUNNING: usize = 25;

/// Asks every execution of the job that is running for a tick before `tick` to stop,
/// because `tick` supersedes it; whether any was asked. A store that cannot answer is
/// logged, and nothing is asked.
pub(crate) async fn request(rt: &Runtime, entry: &JobEntry, tick: DateTime<Utc>) -> bool {
    let job = &entry.job.name;
    // The running ones only: pending and skipped ticks of the ledger, newer than the running
    // execution, must not push it out of the read.
    let running = HistoryQuery::new(job.as_str())
        .statuses([Status::Running])
        .limit(RUNNING);
    let running = match bounded(rt.store.history(&running)).await {
        Ok(page) => page.executions,
        Err(e) => {
            tracing::warn!(
                job = %job, %tick, error = %e,
                "cannot read the running execution to supersede (overlap = cancel_other)"
            );
            return false;
        }
    };
    let mut asked = false;
    for older in running.iter().filter(|r| r.scheduled_at < tick) {
        asked |= request_one(rt, entry, &older.id, tick).await;
    }
    asked
}

/// Asks the execution `id` of the job to stop because `tick` supersedes it; whether it was
/// asked (false once it ended, or if the store cannot answer).
pub(super) async fn request_one(
    rt: &Runtime,
    entry: &JobEntry,
    id: &str,
    tick: DateTime<Utc>,
) -> bool {
    let job = &entry.job.name;
    let note = format!("superseded by the tick of {tick} (overlap = cancel_other)");
    let by = &*rt.instance_id;
    let asked = bounded(
        rt.store
            .request_cancel(id, CancelKind::Superseded, &note, by),
    )
    .await;
    match asked {
        Ok(_) => {
            tracing::info!(
                job = %job, execution_id = %id, %tick,
                "a newer tick supersedes the running execution: asked it to stop"
            );
            // A run of this instance stops now, not at the control task's next look.
            let request = CancelRequest::new(id, job, CancelKind::Superseded, note, by, tick);
            entry.runs.deliver(&request);
            true
        }
        Err(StoreError::Refused { .. } | StoreError::NotFound { .. }) => false,
        Err(e) => {
            tracing::warn!(
                job = %job, execution_id = %id, %tick, error = %e,
                "cannot ask the running execution to stop (overlap = cancel_other)"
            );
            false
        }
    }
}

/// Whether `t`'s tick supersedes what keeps the job busy: the job's policy is
/// `cancel_other`, and the tick is the schedule's (a resumed or requested execution
/// supersedes nothing).
pub(super) fn supersedes(t: &Tick<'_>) -> bool {
    t.job().overlap_policy() == Overlap::CancelOther && !t.resuming && t.requested_by.is_none()
}

/// How long `t` waits for the superseded execution to end: its run's cancel grace and some
/// slack, but never into the job's next tick.
pub(super) fn deadline(t: &Tick<'_>) -> Instant {
    let mut wait = t.rt.cancel_grace + SLACK;
    if let Some(next) = t.job().schedule.next_after(t.at)
        && !t.job().schedule.is_fixed_delay()
    {
        let before_next = (next - t.rt.clock.now()).to_std().unwrap_or_default();
        wait = wait.min(before_next.saturating_sub(POLL));
    }
    Instant::now() + wait
}

/// Stage 1b: the lock is held (`reason`) under `cancel_other`. If the holder runs an older
/// tick (or does not say which), asks the job's running executions older than this tick to
/// stop and takes the lease once it is free. Skips with `reason` otherwise, or when the
/// lease is not freed by [`deadline`] (the tick then goes to the ledger like any locked
/// tick).
pub(super) async fn take_lease(t: &mut Tick<'_>, reason: SkipReason) -> Skip<()> {
    if reason != SkipReason::Locked || !supersedes(t) {
        return Err(reason);
    }
    let held_for = t.holder.as_deref().and_then(identity::held_for);
    if held_for.is_some_and(|held| held >= t.at) {
        return Err(reason);
    }
    // Whether or not an execution was asked (the older one may have ended already, its
    // lease being released), the lease is asked for again until the deadline: a lease held
    // for another reason (its `at_least`) is then given up on.
    request(t.rt, t.entry, t.at).await;
    let until = deadline(t);
    while Instant::now() < until {
        tokio::select! {
            biased;
            () = t.entry.firing.cancelled() => return Err(reason),
            () = sleep(POLL) => {}
        }
        if t.entry.pause.is_paused() {
            return Err(SkipReason::Paused);
        }
        match lease::acquire(t).await {
            Ok(()) => return Ok(()),
            Err(SkipReason::Locked) => {}
            Err(other) => return Err(other),
        }
        // Another instance took the lease for this tick (or a newer one) first: it runs it.
        let held_for = t.holder.as_deref().and_then(identity::held_for);
        if held_for.is_some_and(|held| held >= t.at) {
            return Err(reason);
        }
    }
    tracing::warn!(
        job = %t.job().name, tick = %t.at,
        "the superseded execution did not let the lock go in time; the tick is not run here"
    );
    Err(reason)
}

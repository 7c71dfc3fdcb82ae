//! The end of every pass through the pipeline, written once: a skipped tick is counted and
//! its lease released; a claimed execution's end is recorded in the store, counted,
//! its lease released, and reported to the failure hooks.

use std::time::Duration;

use tokio::time::{sleep, timeout};

use super::{
    BACKEND_TIMEOUT, Running, Runtime, Tick,
    end::RunEnd,
    hooks, identity, lease,
    lost::{Lost, report_lost},
};
use crate::{
    context::{CancelReason, Execution},
    job::{FailureReport, Job, Misfire},
    job_error::JobError,
    metrics::{Outcome, SkipReason},
    store::{Finish, LedgerTick, Status, StoreError},
};

/// Ends a pass that claimed nothing: counts the skip, leaves the tick to the ledger where
/// it must not be lost, and releases the lease, if one was taken. A resumption that cannot
/// go on now loses no tick (the recovery task finds it again) and is not counted; a store
/// or lock that could not be reached is counted by the job loop, which tries again. A tick
/// skipped as `overlap` is lost for good (except under `run_all`, whose ticks wait for the
/// job instead) and is reported.
pub(super) async fn skip(t: Tick<'_>, reason: SkipReason) {
    let (rt, entry) = (t.rt, t.entry);
    let m = &entry.metrics;
    if !t.resuming && reason != SkipReason::Unavailable {
        m.skipped(reason, 1);
        leave_to_ledger(&t, reason);
    }
    lease::release(&*rt.lock, m, t.lease, t.hold_at_least).await;
    if !t.resuming && reason == SkipReason::Overlap && entry.job.misfire != Misfire::RunAll {
        let lost = Lost {
            reason,
            ticks: 1,
            latest: t.at,
            detail: "another execution of the job was still in progress".to_owned(),
        };
        report_lost(rt, entry, lost).await;
    }
}

/// Notes a tick of an idempotent job that this pass did not run in the job's ledger:
/// - the lock is held for this very tick: the holder runs it; noted to be recorded a ttl
///   later, which changes nothing once the holder claimed it, and keeps the tick if the
///   holder died before its claim;
/// - the lock is held for another tick (or by a holder that does not say), or this pass
///   lost its lease waiting for the busy job: pending at once, for whoever holds the lock
///   next;
/// - another execution of the job is live and the job does not run every tick: recorded
///   as skipped (overlap).
fn leave_to_ledger(t: &Tick<'_>, reason: SkipReason) {
    let job = t.job();
    if job.key.is_none() {
        return;
    }
    let tick = LedgerTick::pending(&job.name, &t.execution_id, t.at, &t.owner);
    let after = match reason {
        SkipReason::Locked => {
            let held = t.holder.as_deref().and_then(identity::held_for);
            if held.is_some_and(|h| h.timestamp_millis() == t.at.timestamp_millis()) {
                job.lock.map_or(Duration::ZERO, |lock| lock.ttl)
            } else {
                tracing::info!(
                    job = %job.name, tick = %t.at, held_for = ?held,
                    "the lock is held for another tick; this tick waits in the ledger"
                );
                Duration::ZERO
            }
        }
        SkipReason::Overlap if t.deferred => Duration::ZERO,
        SkipReason::Overlap => {
            let reason = "overlap: another execution of the job was running";
            t.entry.ledger.note(tick.skipped(reason), Duration::ZERO);
            return;
        }
        _ => return,
    };
    t.entry.ledger.note(tick, after);
}

/// Ends a claimed execution: records its end (fenced), counts the outcome (and the run's
/// duration, when it ran: `ran_for`; it leaves the `running` gauge once its end is
/// recorded), releases the lease, and reports a failure.
pub(super) async fn conclude(
    t: Tick<'_>,
    exec: &Execution,
    end: RunEnd,
    ran_for: Option<Duration>,
    running: Option<Running<'_>>,
    span: &tracing::Span,
) {
    let (rt, entry) = (t.rt, t.entry);
    let m = &entry.metrics;
    let end = record(rt, exec, end).await;
    drop(running);
    span.record("attempts", end.attempts);
    span.record("outcome", end.outcome.as_str());
    if let Some(ran_for) = ran_for {
        span.record("duration_ms", ran_for.as_secs_f64() * 1000.0);
    }
    m.concluded(end.outcome, ran_for.map(|d| d.as_secs_f64()));
    if end.outcome == Outcome::Success {
        m.last_success
            .set(rt.clock.now().timestamp_millis() as f64 / 1000.0);
    }
    lease::release(&*rt.lock, m, t.lease, t.hold_at_least).await;
    report(rt, &entry.job, exec, &end, ran_for.unwrap_or_default()).await;
}

/// Writes the run's end to the store (fenced), retrying a store that cannot be reached.
async fn record(rt: &Runtime, exec: &Execution, mut end: RunEnd) -> RunEnd {
    if exec.reason.get() == Some(&CancelReason::Fenced) {
        // The store already refused this run; a finish would be refused too.
        return end;
    }
    let error = end.error.as_ref().map(|e| format!("{e:#}"));
    let finish = Finish::new(end.status, end.attempts, error.as_deref());
    let mut delay = Duration::from_millis(100);
    for left in (0..4).rev() {
        let finished = timeout(BACKEND_TIMEOUT, rt.store.finish(&exec.exec, &finish))
            .await
            .unwrap_or_else(|_| Err(StoreError::unavailable("timed out", None)));
        match finished {
            Ok(()) => {
                tracing::info!(
                    status = %end.status, attempts = end.attempts, error = error.as_deref(),
                    "execution finished"
                );
                return end;
            }
            Err(e) if e.is_fenced() => {
                let e = exec.store_error(e);
                end.status = Status::Cancelled;
                end.outcome = Outcome::Cancelled;
                end.error = Some(e);
                return end;
            }
            Err(e) if left > 0 => {
                tracing::warn!(error = %e, ?delay, "cannot record the execution's end; retrying");
                sleep(delay).await;
                delay *= 4;
            }
            Err(e) => {
                tracing::error!(
                    error = %e, status = %end.status,
                    "cannot record the execution's end; it stays RUNNING until its owner counts as gone"
                );
            }
        }
    }
    end
}

/// Calls the job's and the scheduler's failure hooks.
async fn report(rt: &Runtime, job: &Job, exec: &Execution, end: &RunEnd, duration: Duration) {
    let reported = match end.outcome {
        Outcome::Failure | Outcome::Timeout => true,
        Outcome::Cancelled => exec.reason() == Some(CancelReason::LockLost),
        Outcome::Success => false,
    };
    if !reported {
        return;
    }
    let report = FailureReport {
        job: job.name.clone(),
        execution_id: exec.exec.execution_id.clone(),
        scheduled_at: exec.scheduled_at,
        instance_id: rt.instance_id.to_string(),
        attempts: end.attempts,
        outcome: end.outcome.as_str(),
        error_chain: end
            .error
            .as_ref()
            .map(JobError::chain_messages)
            .unwrap_or_default(),
        duration,
        skip_reason: None,
        ticks_lost: 0,
    };
    tracing::error!(%report, "job failed");
    hooks::call(rt, job, &report).await;
}

//! The end of every pass through the pipeline, written once: a skipped tick is counted and
//! its lease released; a claimed execution's end is recorded in the store, counted,
//! its lease released, and reported to the failure hooks.

use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};

use super::{
    BACKEND_TIMEOUT, Running, Runtime, Tick, bounded, breaker,
    end::RunEnd,
    hooks, identity, lease,
    lost::{Lost, report_lost},
    pause_on_failure,
    unrecorded::Pending,
};
use crate::{
    context::{CancelReason, Execution, identity_unless_in_span},
    job::{FailureReport, Job, Overlap},
    job_error::JobError,
    metrics::{Outcome, SkipReason},
    store::{Finish, LedgerTick, Status, StoreError},
};

/// How long a run's end is retried against a store that cannot be reached (or answers too
/// slowly) before the run is left RUNNING; shutdown waits this long for ends being recorded.
pub(crate) const RECORD_BUDGET: Duration = Duration::from_secs(45);

/// The longest pause between two attempts to record an end.
const MAX_RECORD_DELAY: Duration = Duration::from_secs(5);

/// Ends a pass that claimed nothing: counts the skip, leaves the tick to the ledger where
/// it must not be lost, and releases the lease, if one was taken. A resumption that cannot
/// go on now loses no tick (the recovery task finds it again) and is not counted; a store
/// or lock that could not be reached is counted by the job loop, which tries again; a busy
/// tick whose wait lost its lease is not counted, since it runs from the ledger. A tick
/// skipped as `overlap` is lost for good (except under `run_all`, whose ticks wait for the
/// job instead) and is reported.
pub(super) async fn skip(t: Tick<'_>, reason: SkipReason) {
    let (rt, entry) = (t.rt, t.entry);
    let m = &entry.metrics;
    if !t.resuming && reason != SkipReason::Unavailable {
        // A tick left to the ledger because the wait lost its lease is not skipped: it
        // runs from there.
        if !t.deferred {
            m.skipped(reason, 1);
        }
        leave_to_ledger(&t, reason);
    }
    lease::release(&*rt.lock, m, t.lease, t.hold_at_least).await;
    if !t.resuming
        && !t.deferred
        && reason == SkipReason::Overlap
        && entry.job.overlap_policy() != Overlap::BufferAll
    {
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
///   as skipped (overlap), a liveness later.
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
            } else if held.is_some_and(|h| h < t.at) && job.overlap_policy() == Overlap::Skip {
                // The job runs an earlier tick (or its holder died doing so), which this one
                // overlaps: skipped, recorded a liveness later unless an instance that finds
                // the job free runs it meanwhile, and reported lost by the instance whose
                // record skipped it.
                let why = "overlap: the lock was held for an earlier tick's run";
                let detail = format!("{why} (overlap policy skip)");
                let skipped = tick.skipped(why);
                let ledger = &t.entry.ledger;
                ledger.skip_after(skipped, t.rt.liveness, SkipReason::Overlap, detail);
                return;
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
            // Recorded a liveness later: an instance that finds the job free meanwhile runs
            // the tick, and its claim keeps the tick's row.
            let reason = "overlap: another execution of the job was running";
            t.entry.ledger.note(tick.skipped(reason), t.rt.liveness);
            return;
        }
        _ => return,
    };
    t.entry.ledger.note(tick, after);
}

/// Ends a claimed execution: records its end (fenced), counts the outcome (and the run's
/// duration, when it ran: `ran_for`; it leaves the `running` gauge, and `pending` leaves
/// the executions shutdown waits for, once its end is recorded), releases the lease, and
/// reports a failure. The outcome comes from the status the store recorded.
pub(super) async fn conclude(
    t: Tick<'_>,
    exec: &Execution,
    end: RunEnd,
    (ran_for, running, pending): (Option<Duration>, Option<Running<'_>>, Pending<'_>),
    span: &tracing::Span,
) {
    let (rt, entry) = (t.rt, t.entry);
    let m = &entry.metrics;
    let (end, accepted) = record(rt, exec, end, ran_for).await;
    drop((running, pending));
    let outcome = end.outcome();
    m.concluded(outcome, ran_for.map(|d| d.as_secs_f64()));
    if outcome == Outcome::Success {
        m.last_success
            .set(rt.clock.now().timestamp_millis() as f64 / 1000.0);
    }
    lease::release(&*rt.lock, m, t.lease, t.hold_at_least).await;
    if accepted && end.status == Status::Cancelled && exec.reason() == Some(CancelReason::Shutdown)
    {
        hand_back(rt, &entry.job, t.requested_by.is_some()).await;
    }
    if accepted && end.status == Status::Cancelled && exec.stop_note().is_some() {
        stopped_on_request(rt).await;
    }
    report(rt, &entry.job, exec, &end, ran_for.unwrap_or_default()).await;
    if accepted {
        pause_on_failure::check(rt, entry, exec, &end).await;
        breaker::refresh(rt, entry).await;
    }
    // Last: the default fmt layer prints a span's recorded fields on every later line of
    // the span, and the `execution finished` line already says these.
    span.record("attempts", end.attempts);
    span.record("outcome", outcome.as_str());
    if let Some(ran_for) = ran_for {
        span.record("duration_ms", ran_for.as_secs_f64() * 1000.0);
    }
}

/// After a run that handed its execution back at shutdown was recorded CANCELLED and its
/// lease released: tells the other instances, through the store, to look now, so that one
/// of them resumes the execution (an idempotent job's, or a requested one) within moments.
/// A store that does not answer leaves it to their next scan for interrupted executions.
async fn hand_back(rt: &Runtime, job: &Job, requested: bool) {
    if job.key.is_none() && !requested {
        tracing::warn!(
            "stopped by shutdown; the job is not idempotent, so no other instance resumes \
             this execution"
        );
        return;
    }
    match bounded(rt.store.announce()).await {
        Ok(()) => tracing::info!(
            "handed back at shutdown: another instance resumes the execution from its last \
             checkpoint"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            "handed back at shutdown, but the other instances could not be told: one resumes \
             the execution at its next scan for interrupted executions"
        ),
    }
}

/// After a run stopped by a cancel request was recorded CANCELLED and its lease released:
/// tells the other instances, through the store, so that one waiting to run the job's next
/// tick (`overlap = "cancel_other"`) goes on at once. A store that does not answer leaves
/// it to their next look at the claim.
async fn stopped_on_request(rt: &Runtime) {
    if let Err(e) = bounded(rt.store.announce()).await {
        tracing::warn!(
            error = %e,
            "stopped on request, but the other instances could not be told; they see it at \
             their next claim"
        );
    }
}

/// Writes the run's end to the store (fenced), retrying a store that cannot be reached for
/// up to [`RECORD_BUDGET`], and logs it with how long the run took (`ran_for`, if it ran).
/// Returns the end as recorded (a finish the store refused, since another claim took the
/// execution over, is a CANCELLED run), and whether the store accepted this finish.
async fn record(
    rt: &Runtime,
    exec: &Execution,
    mut end: RunEnd,
    ran_for: Option<Duration>,
) -> (RunEnd, bool) {
    if exec.reason.get() == Some(&CancelReason::Fenced) {
        // The store already refused this run; a finish would be refused too.
        return (end, false);
    }
    let error = end.error.as_ref().map(|e| format!("{e:#}"));
    let finish = Finish::new(end.status, end.attempts, error.as_deref());
    let given_up_at = Instant::now() + RECORD_BUDGET;
    let mut delay = Duration::from_millis(100);
    loop {
        let left = given_up_at.saturating_duration_since(Instant::now());
        let finished = timeout(
            BACKEND_TIMEOUT.min(left),
            rt.store.finish(&exec.exec, &finish),
        )
        .await
        .unwrap_or_else(|_| Err(StoreError::unavailable("timed out", None)));
        match finished {
            Ok(()) => {
                recorded(exec, &end, error.as_deref(), ran_for);
                return (end, true);
            }
            Err(e) if e.is_fenced() => {
                end.error = Some(exec.store_error(e));
                end.status = Status::Cancelled;
                return (end, false);
            }
            Err(e) if Instant::now() + delay < given_up_at => {
                tracing::warn!(error = %e, ?delay, "cannot record the execution's end; retrying");
                sleep(delay).await;
                delay = (delay * 4).min(MAX_RECORD_DELAY);
            }
            Err(e) => {
                let (job, execution_id) = identity_unless_in_span(&exec.exec);
                tracing::error!(
                    error = %e, status = %end.status, job, execution_id, budget = ?RECORD_BUDGET,
                    "cannot record the execution's end; it stays RUNNING until its owner \
                     counts as gone, then an idempotent job's execution is resumed"
                );
                return (end, false);
            }
        }
    }
}

/// Logs an end the store accepted, with how long the run took (`ran_for`, if it ran). A run
/// stopped by a lost lease (or store) after its last step whose fenced finish was accepted
/// completed: the tick is done, the loss only warned.
fn recorded(exec: &Execution, end: &RunEnd, error: Option<&str>, ran_for: Option<Duration>) {
    let outcome = end.outcome().as_str();
    if let (
        Status::Completed,
        Some(reason @ (CancelReason::LockLost | CancelReason::StoreUnreachable)),
    ) = (end.status, exec.reason())
    {
        let (job, execution_id) = identity_unless_in_span(&exec.exec);
        tracing::warn!(
            job,
            execution_id,
            reason = reason.as_str(),
            "the run was stopped after the job's last step, but the store accepted its fenced \
             finish: the execution is COMPLETED"
        );
    }
    tracing::info!(
        outcome, status = %end.status, attempts = end.attempts,
        duration = ran_for.map(|d| tracing::field::display(Took(d))), error,
        "execution finished"
    );
}

/// Calls the job's and the scheduler's failure hooks.
async fn report(rt: &Runtime, job: &Job, exec: &Execution, end: &RunEnd, duration: Duration) {
    let outcome = end.outcome();
    let reported = match outcome {
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
        outcome: outcome.as_str(),
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

/// A run's duration for people: `850ms`, `1.24s`, `2m05s`, `1h02m`.
struct Took(Duration);

impl std::fmt::Display for Took {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.0;
        let secs = d.as_secs();
        if d < Duration::from_millis(1) {
            write!(f, "{}µs", d.as_micros())
        } else if d < Duration::from_secs(1) {
            write!(f, "{}ms", d.as_millis())
        } else if secs < 60 {
            write!(f, "{:.2}s", d.as_secs_f64())
        } else if secs < 3600 {
            write!(f, "{}m{:02}s", secs / 60, secs % 60)
        } else {
            write!(f, "{}h{:02}m", secs / 3600, secs % 3600 / 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        for (d, text) in [
            (Duration::from_micros(420), "420µs"),
            (Duration::from_millis(850), "850ms"),
            (Duration::from_millis(1_240), "1.24s"),
            (Duration::from_millis(59_994), "59.99s"),
            (Duration::from_secs(125), "2m05s"),
            (Duration::from_secs(3_720), "1h02m"),
        ] {
            assert_eq!(Took(d).to_string(), text);
        }
    }
}

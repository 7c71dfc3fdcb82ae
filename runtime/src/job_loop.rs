//! One job's loop: sleeps until its next tick on the wall clock, plans the due ticks with
//! [`crate::misfire`], and runs them one after the other in its own task.

use std::{panic::AssertUnwindSafe, pin::Pin, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use tokio::time::{Instant, sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::{
    clock::Clock,
    executor::{self, Executed, JobEntry, Runtime},
    metrics::SkipReason,
    misfire,
    retry::RetryPolicy,
    store::{LedgerTick, Status},
};

/// The longest a job sleeps before it re-reads the wall clock. Tokio's timers run on the
/// monotonic clock, which stands still while a machine is suspended; re-reading at least this
/// often bounds how late a tick can be noticed after a resume. At 10,000 jobs this is about
/// 170 wake-ups a second, each a few microseconds.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Why a job loop's sleep ended.
enum Wake {
    /// The wall clock reached the target.
    Due,
    /// Interrupted executions wait to be resumed.
    Resume,
    /// Firing stopped.
    Stopped,
}

/// Fires one job's ticks until shutdown. Runs execute in this task: a run in progress when
/// its next tick comes is therefore never started twice, and the ticks it overlapped are
/// counted as skipped once it ends.
pub(crate) async fn job_loop(
    rt: Arc<Runtime>,
    entry: Arc<JobEntry>,
    firing: CancellationToken,
    misfire_threshold: Duration,
) {
    let schedule = &entry.job.schedule;
    let policy = entry.job.misfire;
    let m = &entry.metrics;
    let stopped = firing.clone().cancelled_owned();
    tokio::pin!(stopped);
    let mut misfire_warnings = Throttle::default();
    let mut overlap_warnings = Throttle::default();
    // Ticks after the resume point count (with a persistent store, the latest tick any
    // instance claimed): those already due were missed while no instance ran, and follow the
    // misfire policy. `next` only moves forward, so no tick fires twice even when the wall
    // clock is set back.
    let now = rt.clock.now();
    let mut next = if schedule.is_fixed_delay() {
        schedule.next_after(now)
    } else {
        schedule.next_after(entry.resume_from.min(now))
    };
    loop {
        // Interrupted executions and pending ticks of the ledger first, every round: a job
        // always behind on its ticks (`run_all` catching up) still resumes them.
        for (execution_id, at, status) in entry.interrupted.take() {
            if firing.is_cancelled() {
                return;
            }
            if status == Status::Pending
                && let Some(why) =
                    misfire::pending_skip(schedule, policy, at, rt.clock.now(), misfire_threshold)
            {
                skip_pending(&rt, &entry, execution_id, at, why);
                continue;
            }
            let resume = Some(execution_id.as_str());
            if !run(&rt, &entry, at, false, &firing, resume, misfire_threshold).await {
                return;
            }
        }
        let Some(tick) = next else {
            tracing::info!(job = %entry.job.name, "schedule has no further fire time");
            return;
        };
        match sleep_until_wall(
            &rt.clock,
            tick,
            &firing,
            &mut stopped,
            &entry.interrupted.ready,
        )
        .await
        {
            Wake::Due => {}
            Wake::Stopped => return,
            Wake::Resume => continue,
        }
        let now = rt.clock.now();
        let plan = misfire::plan(schedule, tick, now, policy, misfire_threshold);
        count_misfires(&entry, &mut misfire_warnings, &plan);
        m.lateness.record(seconds_between(plan.latest, now));
        let batch = plan.run.len();
        for (i, tick) in plan.run.into_iter().enumerate() {
            // Catch-up runs go one after the other, oldest first, and stop at shutdown.
            let last_of_batch = i + 1 == batch;
            if (i > 0 && firing.is_cancelled())
                || !run(
                    &rt,
                    &entry,
                    tick,
                    last_of_batch,
                    &firing,
                    None,
                    misfire_threshold,
                )
                .await
            {
                let left = (batch - i) as u64;
                tracing::warn!(
                    job = %entry.job.name, left, "shutdown: due ticks left unrun"
                );
                m.skipped(SkipReason::Misfire, left);
                return;
            }
        }
        let after = misfire::after_run(schedule, plan.next, rt.clock.now(), policy);
        count_overlaps(&entry, &mut overlap_warnings, after.overlapped);
        next = after.next;
    }
}

/// Skips a pending tick of the ledger for good, by the job's misfire policy (`why`): the
/// ledger records it as skipped, and the skip is counted as a misfire.
fn skip_pending(
    rt: &Runtime,
    entry: &JobEntry,
    execution_id: String,
    tick: DateTime<Utc>,
    why: &'static str,
) {
    let job = &entry.job;
    tracing::warn!(
        job = %job.name, %execution_id, %tick, policy = ?job.misfire, why,
        "a pending tick is skipped"
    );
    let skipped = LedgerTick::pending(&job.name, execution_id, tick, &*rt.instance_id).skipped(why);
    entry.ledger.note(skipped, Duration::ZERO);
    entry.metrics.skipped(SkipReason::Misfire, 1);
}

/// Counts the ticks `plan` skips as misfires, and warns within `warnings`.
fn count_misfires(entry: &JobEntry, warnings: &mut Throttle, plan: &misfire::Plan) {
    if plan.skipped == 0 {
        return;
    }
    entry.metrics.skipped(SkipReason::Misfire, plan.skipped);
    let Some(warning) = warnings.count(Instant::now(), plan.skipped) else {
        return;
    };
    let (job, skipped, policy, latest) = (
        &entry.job.name,
        warning.ticks,
        entry.job.misfire,
        plan.latest,
    );
    if warning.first {
        tracing::warn!(
            %job, skipped, ?policy, %latest,
            "ticks were missed (process suspended, clock jump, or overload)"
        );
    } else {
        tracing::warn!(
            %job, skipped, ?policy, %latest,
            "ticks were missed since the last such warning (one a minute at most)"
        );
    }
}

/// Counts the ticks a run overlapped, and warns within `warnings`.
fn count_overlaps(entry: &JobEntry, warnings: &mut Throttle, overlapped: u64) {
    if overlapped == 0 {
        return;
    }
    entry.metrics.skipped(SkipReason::Overlap, overlapped);
    let Some(warning) = warnings.count(Instant::now(), overlapped) else {
        return;
    };
    let (job, overlapped) = (&entry.job.name, warning.ticks);
    if warning.first {
        tracing::warn!(
            %job, overlapped,
            "the run outlasted its next tick; overlapped ticks skipped"
        );
    } else {
        tracing::warn!(
            %job, overlapped,
            "runs outlasted their next ticks since the last such warning (one a minute at most); overlapped ticks skipped"
        );
    }
}

/// Sleeps until the wall clock reads `target`, interrupted executions of the job are queued,
/// or firing stops. `stopped` is the job loop's one registration with its shutdown token,
/// kept across sleeps.
async fn sleep_until_wall(
    clock: &Clock,
    target: DateTime<Utc>,
    firing: &CancellationToken,
    stopped: &mut Pin<&mut WaitForCancellationFutureOwned>,
    resume: &tokio::sync::Notify,
) -> Wake {
    loop {
        let now = clock.now();
        // Re-checked after every wake: a wall clock set back makes this sleep again instead
        // of firing early.
        let left = (target - now).to_std().unwrap_or_default();
        if left.is_zero() {
            return if firing.is_cancelled() {
                Wake::Stopped
            } else {
                Wake::Due
            };
        }
        tokio::select! {
            biased;
            () = stopped.as_mut() => return Wake::Stopped,
            () = resume.notified() => return Wake::Resume,
            () = sleep(left.min(MAX_SLEEP)) => {}
        }
    }
}

/// Runs one tick after the job's start jitter; `false` if shutdown began before it ran (the
/// tick is then not run). A tick that finds the lock backend or the store unreachable is
/// tried again with jittered backoff (replicas that all wait for a backend must not all
/// come back at once) until the backend answers or [`misfire::outage_deadline`]; a tick of
/// an idempotent job is then left to the ledger, any other is lost and counted.
async fn run(
    rt: &Runtime,
    entry: &JobEntry,
    tick: DateTime<Utc>,
    hold_at_least: bool,
    firing: &CancellationToken,
    resume: Option<&str>,
    misfire_threshold: Duration,
) -> bool {
    if let Some(jitter) = entry.job.jitter {
        tokio::select! {
            biased;
            () = firing.cancelled() => return false,
            () = sleep(jitter.mul_f64(fastrand::f64())) => {}
        }
    }
    let job = &entry.job;
    let execution_id = executor::tick_execution_id(job, tick);
    let idempotent = execution_id.is_some();
    let deadline = misfire::outage_deadline(
        &job.schedule,
        job.misfire,
        idempotent,
        tick,
        misfire_threshold,
    );
    for retry in 1.. {
        let executed = execute_guarded(rt, entry, tick, hold_at_least, resume).await;
        if resume.is_some() || !matches!(executed, Some(Executed::Skipped(SkipReason::Unavailable)))
        {
            return true;
        }
        let left = (deadline - rt.clock.now()).to_std().unwrap_or_default();
        if left.is_zero() {
            give_up_in_outage(rt, entry, tick, execution_id);
            return true;
        }
        tokio::select! {
            biased;
            () = firing.cancelled() => return false,
            () = sleep(OUTAGE_BACKOFF.jittered_delay(retry).min(left)) => {}
        }
    }
    true
}

/// Gives up a tick that kept finding a backend unreachable: a tick of an idempotent job
/// (`execution_id`) waits in the ledger for when the backend answers; any other is lost.
fn give_up_in_outage(
    rt: &Runtime,
    entry: &JobEntry,
    tick: DateTime<Utc>,
    execution_id: Option<String>,
) {
    let job = &entry.job;
    entry.metrics.skipped(SkipReason::Unavailable, 1);
    match execution_id {
        Some(execution_id) => {
            tracing::warn!(
                job = %job.name, %tick,
                "a backend is still unreachable; the tick waits in the ledger for when it answers"
            );
            let pending = LedgerTick::pending(&job.name, execution_id, tick, &*rt.instance_id);
            entry.ledger.note(pending, Duration::ZERO);
        }
        None => tracing::error!(
            job = %job.name, %tick, policy = ?job.misfire,
            "a backend stayed unreachable past the tick's time; the tick is lost"
        ),
    }
}

/// How a tick that finds a backend unreachable is tried again: from 250 ms, doubling up to
/// 4 s, each pause a random fraction of that (full jitter).
const OUTAGE_BACKOFF: RetryPolicy = RetryPolicy::attempts(u32::MAX)
    .backoff(Duration::from_millis(250))
    .max_delay(Duration::from_secs(4))
    .jitter(1.0);

/// Runs the pipeline once for `tick`; `None` if a backend panicked (logged).
async fn execute_guarded(
    rt: &Runtime,
    entry: &JobEntry,
    tick: DateTime<Utc>,
    hold_at_least: bool,
    resume: Option<&str>,
) -> Option<Executed> {
    let run = AssertUnwindSafe(Box::pin(executor::execute(
        rt,
        entry,
        tick,
        hold_at_least,
        resume,
    )));
    // The executor catches the job's panics; this catches a backend's (a third-party lock
    // or store), so that one bad call cannot stop the job's ticks for good.
    match run.catch_unwind().await {
        Ok(executed) => Some(executed),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(
                job = %entry.job.name, %tick, panic = %message,
                "a run panicked outside the job (in a backend?); the job keeps its schedule"
            );
            None
        }
    }
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).to_std().map_or(0.0, |d| d.as_secs_f64())
}

/// Keeps one kind of warning of one job to its first, then at most one per
/// [`Throttle::PERIOD`] that sums up the ticks counted since the last one: an overloaded
/// scheduler would otherwise log a line per job per tick. The skip metrics count every tick.
#[derive(Default)]
struct Throttle {
    /// When the last warning was logged.
    last: Option<Instant>,
    /// The ticks counted since then.
    held: u64,
}

/// A warning to log now.
#[derive(Debug, PartialEq, Eq)]
struct Warning {
    /// The ticks since the last warning, these included.
    ticks: u64,
    /// Whether it is the job's first warning of its kind.
    first: bool,
}

impl Throttle {
    /// The least time between two warnings of one kind for one job.
    const PERIOD: Duration = Duration::from_secs(60);

    /// Counts `ticks` at `now`; the warning to log, if one is due.
    fn count(&mut self, now: Instant, ticks: u64) -> Option<Warning> {
        self.held += ticks;
        let first = match self.last {
            Some(last) if now.saturating_duration_since(last) < Self::PERIOD => return None,
            Some(_) => false,
            None => true,
        };
        self.last = Some(now);
        Some(Warning {
            ticks: std::mem::take(&mut self.held),
            first,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_logs_the_first_then_one_summary_a_minute() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut throttle = Throttle::default();
        assert_eq!(
            throttle.count(at(0), 2),
            Some(Warning {
                ticks: 2,
                first: true
            })
        );
        for s in 1..60 {
            assert_eq!(throttle.count(at(s), 1), None, "at {s} s");
        }
        assert_eq!(
            throttle.count(at(60), 1),
            Some(Warning {
                ticks: 60,
                first: false
            })
        );
        assert_eq!(throttle.count(at(61), 3), None);
        assert_eq!(
            throttle.count(at(500), 1),
            Some(Warning {
                ticks: 4,
                first: false
            })
        );
    }
}

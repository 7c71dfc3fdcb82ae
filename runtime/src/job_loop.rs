//! One job's loop: sleeps until its next tick on the wall clock, plans the due ticks with
//! [`crate::misfire`], and runs them one after the other in its own task.

use std::{panic::AssertUnwindSafe, pin::Pin, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use tokio::time::sleep;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use tickguard_schedule::Schedule;

use crate::{
    clock::Clock,
    executor::{self, Executed, JobEntry, Lost, Queued, Runtime, report_lost},
    job::{Misfire, Overlap},
    metrics::SkipReason,
    misfire, overlap,
    retry::RetryPolicy,
    start_jitter,
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
    // Ticks after the resume point count (with a persistent store, the latest tick any
    // instance claimed): those already due were missed while no instance ran, and follow the
    // misfire policy. `next` only moves forward, so no tick fires twice even when the wall
    // clock is set back.
    let started = rt.clock.now();
    let now = started;
    let mut next = if schedule.is_fixed_delay() {
        schedule.next_after(now)
    } else {
        schedule.next_after(entry.resume_from.min(now))
    };
    publish_next(&entry, next);
    // When the loop last ran queued executions: ticks that came due meanwhile were late
    // because this instance was busy, not suspended.
    let mut busy = None;
    // Ticks that came due while a run was in progress and that the overlap policy runs now.
    let mut buffered = Vec::new();
    loop {
        // Interrupted executions and pending ticks of the ledger first, every round: a job
        // always behind on its ticks (`buffer_all` catching up) still resumes them.
        let before = rt.clock.now();
        if !resume_interrupted(&rt, &entry, &firing, misfire_threshold).await {
            return;
        }
        busy = Busy::extended(busy, before, rt.clock.now());
        let (ticks, latest, after) = if buffered.is_empty() {
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
            if entry.pause.is_paused() {
                next = skip_paused(&entry, &plan, now);
                continue;
            }
            count_misfires(&rt, &entry, &plan, started, busy.take()).await;
            m.lateness.record(seconds_between(plan.latest, now));
            (plan.run, plan.latest, plan.next)
        } else {
            let ticks = std::mem::take(&mut buffered);
            if entry.pause.is_paused() {
                // Paused while the run they waited for was in progress.
                m.skipped(SkipReason::Paused, ticks.len() as u64);
                continue;
            }
            let latest = ticks.last().copied().unwrap_or(started);
            (ticks, latest, next)
        };
        let fired = run_batch(&rt, &entry, ticks, latest, &firing, misfire_threshold).await;
        if fired == Fired::Stopped {
            return;
        }
        let settled = settle(&rt, &entry, fired, after).await;
        buffered = settled.buffered;
        next = settled.next;
        publish_next(&entry, next);
    }
}

/// Where the loop goes once a batch of runs ended, `after` being the first tick after the
/// ones it ran: the ticks that came due meanwhile were missed if a backend kept the batch
/// from running (the next round's plan applies the misfire policy to them), or else
/// overlapped, and the overlap policy skips them (counted and reported here) or buffers
/// them to run now.
async fn settle(
    rt: &Runtime,
    entry: &JobEntry,
    fired: Fired,
    after: Option<DateTime<Utc>>,
) -> overlap::AfterRun {
    let schedule = &entry.job.schedule;
    let ended = rt.clock.now();
    let settled = if fired == Fired::GaveUp {
        misfire::after_outage(schedule, after, ended)
    } else {
        overlap::after_run(schedule, after, ended, entry.job.overlap_policy())
    };
    let overlapped = Overlapped {
        count: settled.overlapped,
        first: after,
        buffered: settled.buffered.first().copied(),
        ended,
    };
    count_overlaps(rt, entry, overlapped).await;
    settled
}

/// Skips the due ticks of `plan` for a paused job: no lock, no claim, no ledger row, nothing
/// reported lost, and they are not run later; counted as `paused`. The next tick to wait for.
fn skip_paused(
    entry: &JobEntry,
    plan: &misfire::Plan,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let job = &entry.job;
    entry
        .metrics
        .skipped(SkipReason::Paused, plan.run.len() as u64 + plan.skipped);
    let next = overlap::after_run(&job.schedule, plan.next, now, Overlap::Skip).next;
    publish_next(entry, next);
    next
}

/// Runs the due ticks of a plan one after the other, oldest first (catch-up runs), and
/// stops at shutdown, leaving the ticks not run yet to the ledger (idempotent jobs: another
/// instance, or the next start, runs them) or counting them lost; how the last one ended.
async fn run_batch(
    rt: &Runtime,
    entry: &JobEntry,
    ticks: Vec<DateTime<Utc>>,
    latest: DateTime<Utc>,
    firing: &CancellationToken,
    misfire_threshold: Duration,
) -> Fired {
    let batch = ticks.len();
    let last = ticks.last().copied().unwrap_or(latest);
    let mut fired = Fired::Done;
    for (i, &tick) in ticks.iter().enumerate() {
        let last_of_batch = i + 1 == batch;
        if i > 0 && entry.pause.is_paused() {
            // Paused during a catch-up: the run in progress finished; the rest are skipped.
            entry
                .metrics
                .skipped(SkipReason::Paused, (batch - i) as u64);
            break;
        }
        // Checked before the first tick too: a batch of ticks a run overlapped starts right
        // after that run, which may have ended during shutdown's grace.
        fired = if firing.is_cancelled() {
            Fired::Stopped
        } else {
            let own = Own::Tick;
            run(
                rt,
                entry,
                tick,
                last_of_batch,
                firing,
                own,
                misfire_threshold,
            )
            .await
        };
        if fired == Fired::Stopped {
            if !leave_unrun(rt, entry, &ticks[i..]) {
                count_unrun(rt, entry, (batch - i) as u64, last).await;
            }
            break;
        }
    }
    fired
}

/// Leaves the due ticks shutdown keeps from running to the ledger, as pending; `false` for
/// a job that is not idempotent (it has no ledger).
fn leave_unrun(rt: &Runtime, entry: &JobEntry, ticks: &[DateTime<Utc>]) -> bool {
    let job = &entry.job;
    if job.key.is_none() {
        return false;
    }
    for pending in ticks
        .iter()
        .filter_map(|&tick| ledger_tick(rt, entry, tick))
    {
        entry.ledger.note(pending, Duration::ZERO);
    }
    tracing::info!(
        job = %job.name, ticks = ticks.len(),
        "shutdown: due ticks left to the ledger, for another instance or the next start"
    );
    true
}

/// Resumes the job's interrupted executions, runs (or skips, by the misfire policy, tightened
/// by the overlap policy) its pending ticks of the ledger, and runs the executions operators
/// asked for, oldest first; `false` if shutdown began. While the job is paused, only the
/// requested ones run: the others wait, queued, for the resume.
async fn resume_interrupted(
    rt: &Runtime,
    entry: &JobEntry,
    firing: &CancellationToken,
    misfire_threshold: Duration,
) -> bool {
    let schedule = &entry.job.schedule;
    // Ticks that waited in the ledger for a busy job keep to the overlap policy: all of
    // them run under `buffer_all`, and under `buffer_one` and `cancel_other` one that a
    // later tick followed gives way to it, whatever the misfire policy says of late ticks.
    let policy = match (entry.job.overlap_policy(), entry.job.misfire) {
        (Overlap::BufferAll, _) => Misfire::RunAll,
        (Overlap::BufferOne | Overlap::CancelOther, Misfire::RunAll) => Misfire::RunOnce,
        (_, misfire) => misfire,
    };
    for queued in entry.interrupted.take(entry.pause.is_paused()) {
        if firing.is_cancelled() {
            return false;
        }
        if !queued.is_requested() && entry.pause.is_paused() {
            // Paused meanwhile: it waits for the resume, queued.
            entry.interrupted.push(queued);
            continue;
        }
        let at = queued.tick;
        // A requested execution runs whatever the misfire policy says of its (late) tick.
        if queued.status == Status::Pending
            && !queued.is_requested()
            && let Some(why) =
                misfire::pending_skip(schedule, policy, at, rt.clock.now(), misfire_threshold)
        {
            skip_pending(rt, entry, queued.execution_id, at, why);
            continue;
        }
        let own = Own::Queued(&queued);
        if run(rt, entry, at, false, firing, own, misfire_threshold).await == Fired::Stopped {
            return false;
        }
    }
    true
}

/// Which execution a [`run`] is for.
#[derive(Clone, Copy)]
enum Own<'a> {
    /// The tick's own.
    Tick,
    /// A queued one: interrupted, pending in the ledger, or requested by an operator.
    Queued(&'a Queued),
}

/// How [`run`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fired {
    /// The tick went through the pipeline (run, or skipped for a reason the pipeline
    /// counted).
    Done,
    /// A backend stayed unreachable until the tick's deadline: the tick was given up (left
    /// to the ledger, or lost).
    GaveUp,
    /// Shutdown began before the tick ran.
    Stopped,
}

/// Skips a pending tick of the ledger for good, by the job's misfire policy (`why`): counted
/// here as a misfire; the ledger records it as skipped, and the instance whose record
/// skipped it reports it lost.
fn skip_pending(
    rt: &Runtime,
    entry: &JobEntry,
    execution_id: String,
    tick: DateTime<Utc>,
    why: &'static str,
) {
    let job = &entry.job;
    let skipped = LedgerTick::pending(&job.name, execution_id, tick, &*rt.instance_id).skipped(why);
    let detail = format!("a tick that waited in the ledger: {why}");
    entry.ledger.skip(skipped, detail);
    entry.metrics.skipped(SkipReason::Misfire, 1);
}

/// When the job loop ran queued executions (interrupted, pending in the ledger, or
/// requested by an operator), by the wall clock.
#[derive(Clone, Copy)]
struct Busy {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Busy {
    /// `busy` extended by a round of queued executions from `before` to `after` (if the
    /// round took any time).
    fn extended(busy: Option<Self>, before: DateTime<Utc>, after: DateTime<Utc>) -> Option<Self> {
        if after <= before {
            return busy;
        }
        let from = busy.map_or(before, |b| b.from);
        Some(Self { from, to: after })
    }
}

/// Counts and reports the ticks `plan` skips as misfires: lost for good. Ticks due before
/// the job loop `started` came due while no instance ran the job (the store's latest claim
/// is older); ticks due while the loop was `busy` running queued executions were late for
/// that; later ones were noticed late by this running process.
async fn count_misfires(
    rt: &Runtime,
    entry: &JobEntry,
    plan: &misfire::Plan,
    started: DateTime<Utc>,
    busy: Option<Busy>,
) {
    if plan.skipped == 0 {
        return;
    }
    entry.metrics.skipped(SkipReason::Misfire, plan.skipped);
    let schedule = &entry.job.schedule;
    // The ticks skipped are the due ones before the first that runs, or all of them.
    let latest = match plan.run.first() {
        Some(first) => tick_before(schedule, *first),
        None => plan.latest,
    };
    let policy = entry.job.misfire;
    let detail = if latest <= started {
        format!(
            "ticks came due while no instance was running the job (found at start from \
             the store, which has the job's ticks up to {}); misfire policy {policy:?}",
            entry.resume_from
        )
    } else if busy.is_some_and(|b| b.from <= latest && latest <= b.to) {
        format!(
            "the ticks came due while this instance was running queued executions of the \
             job (resumed, pending in the ledger, or requested by an operator); misfire \
             policy {policy:?}"
        )
    } else {
        format!(
            "this instance noticed ticks late (process suspended, clock jump, or overload); \
             misfire policy {policy:?}"
        )
    };
    let lost = Lost {
        reason: SkipReason::Misfire,
        ticks: plan.skipped,
        latest,
        detail,
    };
    report_lost(rt, entry, lost).await;
}

/// Counts and reports the `left` due ticks, the latest `last`, that shutdown leaves unrun:
/// lost for good.
async fn count_unrun(rt: &Runtime, entry: &JobEntry, left: u64, last: DateTime<Utc>) {
    entry.metrics.skipped(SkipReason::Misfire, left);
    let lost = Lost {
        reason: SkipReason::Misfire,
        ticks: left,
        latest: last,
        detail: "shutdown: due ticks left unrun".to_owned(),
    };
    report_lost(rt, entry, lost).await;
}

/// The ticks a run overlapped that its overlap policy skips.
struct Overlapped {
    /// How many.
    count: u64,
    /// The first tick that came due during the run.
    first: Option<DateTime<Utc>>,
    /// The first of the overlapped ticks that run now: the skipped ones are before it.
    buffered: Option<DateTime<Utc>>,
    /// When the run ended.
    ended: DateTime<Utc>,
}

/// Counts and reports the ticks a run overlapped and its policy skips: lost for good.
async fn count_overlaps(rt: &Runtime, entry: &JobEntry, overlapped: Overlapped) {
    if overlapped.count == 0 {
        return;
    }
    entry.metrics.skipped(SkipReason::Overlap, overlapped.count);
    let schedule = &entry.job.schedule;
    // The latest skipped tick: the one before the first that runs, or the latest due.
    let latest = match overlapped.buffered {
        Some(buffered) => tick_before(schedule, buffered),
        None => schedule
            .latest_at_or_before(overlapped.ended)
            .unwrap_or(overlapped.ended),
    };
    if let Some(first) = overlapped.first {
        record_overlapped(rt, entry, first, latest);
    }
    let policy = entry.job.overlap_policy();
    let detail = format!(
        "the run outlasted its next tick; overlapped ticks skipped (overlap policy {})",
        policy.as_str()
    );
    let lost = Lost {
        reason: SkipReason::Overlap,
        ticks: overlapped.count,
        latest,
        detail,
    };
    report_lost(rt, entry, lost).await;
}

/// Records the ticks from `first` to `last` that a run overlapped as skipped in the ledger
/// (idempotent jobs; at most as many as `buffer_all` would run, the first ones). The
/// record waits a liveness: an instance that was free runs such a tick meanwhile, and its
/// claim keeps the tick's row.
fn record_overlapped(rt: &Runtime, entry: &JobEntry, first: DateTime<Utc>, last: DateTime<Utc>) {
    let job = &entry.job;
    if job.key.is_none() {
        return;
    }
    let ticks = std::iter::once(first)
        .chain(job.schedule.upcoming(first))
        .take_while(|t| *t <= last)
        .take(Misfire::RUN_ALL_LIMIT);
    for tick in ticks.filter_map(|tick| ledger_tick(rt, entry, tick)) {
        let skipped = tick.skipped("overlap: the run before it outlasted it");
        entry.ledger.note(skipped, rt.liveness);
    }
}

/// The ledger's record of `tick` of the job, by this instance: pending until noted
/// otherwise; `None` for a job that is not idempotent (it has no ledger).
fn ledger_tick(rt: &Runtime, entry: &JobEntry, tick: DateTime<Utc>) -> Option<LedgerTick> {
    let job = &entry.job;
    let execution_id = executor::tick_execution_id(job, tick)?;
    Some(LedgerTick::pending(
        &job.name,
        execution_id,
        tick,
        &*rt.instance_id,
    ))
}

/// The fire time just before `t` (`t` itself if the schedule cannot say).
fn tick_before(schedule: &Schedule, t: DateTime<Utc>) -> DateTime<Utc> {
    t.checked_sub_signed(chrono::Duration::nanoseconds(1))
        .and_then(|before| schedule.latest_at_or_before(before))
        .unwrap_or(t)
}

/// Publishes the tick the job waits for next and the interval to the one after it (for a
/// fixed delay, the delay), in the `next_fire` and `period` gauges.
fn publish_next(entry: &JobEntry, next: Option<DateTime<Utc>>) {
    let period = next.and_then(|next| {
        let after = entry.job.schedule.next_after(next)?;
        (after - next).to_std().ok()
    });
    entry.metrics.next_fire(next, period);
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

/// Runs one tick after the job's start jitter (counted from the tick, on the wall clock); `false` if shutdown began before it ran (the
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
    own: Own<'_>,
    misfire_threshold: Duration,
) -> Fired {
    let (resume, requested_by) = match own {
        Own::Tick => (None, None),
        Own::Queued(q) => (Some(q.execution_id.as_str()), q.requested_by.as_deref()),
    };
    // A tick's own run starts at the same instant on every instance (see `start_jitter`);
    // a queued execution (resumed, pending, requested) starts at once.
    if resume.is_none() && entry.job.jitter.is_some() {
        let start = start_jitter::start_at(&entry.job, tick);
        let left = (start - rt.clock.now()).to_std().unwrap_or_default();
        tokio::select! {
            biased;
            () = firing.cancelled() => return Fired::Stopped,
            () = sleep(left) => {}
        }
    }
    let job = &entry.job;
    let idempotent = job.key.is_some();
    let deadline = misfire::outage_deadline(
        &job.schedule,
        job.misfire,
        idempotent,
        tick,
        misfire_threshold,
    );
    for retry in 1.. {
        if resume.is_none() && entry.pause.is_paused() {
            // Paused during the jitter or an outage: the tick is skipped like any tick of a
            // paused job.
            entry.metrics.skipped(SkipReason::Paused, 1);
            return Fired::Done;
        }
        let run = execute_guarded(rt, entry, tick, hold_at_least, resume, requested_by);
        let executed = if resume.is_none() && job.overlap_policy() == Overlap::CancelOther {
            superseded_at_next_tick(rt, entry, tick, run).await
        } else {
            run.await
        };
        if resume.is_some() || !matches!(executed, Some(Executed::Skipped(SkipReason::Unavailable)))
        {
            return Fired::Done;
        }
        let left = (deadline - rt.clock.now()).to_std().unwrap_or_default();
        if left.is_zero() {
            give_up_in_outage(rt, entry, tick).await;
            return Fired::GaveUp;
        }
        tokio::select! {
            biased;
            () = firing.cancelled() => return Fired::Stopped,
            () = sleep(OUTAGE_BACKOFF.jittered_delay(retry).min(left)) => {}
        }
    }
    Fired::GaveUp
}

/// Runs `run`, the pipeline for `tick` of a `cancel_other` job. If the job's next tick
/// comes due (after its start jitter) before the run ends, asks the run to stop, as every
/// instance that fires that tick does (a single instance has no other to do it), and waits
/// for its end: the loop then runs the next tick, which the run overlapped.
async fn superseded_at_next_tick(
    rt: &Runtime,
    entry: &JobEntry,
    tick: DateTime<Utc>,
    run: impl std::future::Future<Output = Option<Executed>>,
) -> Option<Executed> {
    let schedule = &entry.job.schedule;
    let Some(next) = schedule
        .next_after(tick)
        .filter(|_| !schedule.is_fixed_delay())
    else {
        return run.await;
    };
    let due = start_jitter::start_at(&entry.job, next);
    tokio::pin!(run);
    loop {
        let left = (due - rt.clock.now()).to_std().unwrap_or_default();
        if left.is_zero() {
            break;
        }
        tokio::select! {
            executed = &mut run => return executed,
            () = sleep(left.min(MAX_SLEEP)) => {}
        }
    }
    // A paused job's next tick does not run, and shutdown fires no tick: neither
    // supersedes the run.
    if !entry.pause.is_paused() && !entry.firing.is_cancelled() {
        executor::supersede(rt, entry, next).await;
    }
    run.await
}

/// Gives up a tick that kept finding a backend unreachable: a tick of an idempotent job
/// waits in the ledger for when the backend answers; any other is lost, and reported.
async fn give_up_in_outage(rt: &Runtime, entry: &JobEntry, tick: DateTime<Utc>) {
    let job = &entry.job;
    entry.metrics.skipped(SkipReason::Unavailable, 1);
    match ledger_tick(rt, entry, tick) {
        Some(pending) => {
            tracing::warn!(
                job = %job.name, %tick,
                "a backend is still unreachable; the tick waits in the ledger for when it answers"
            );
            entry.ledger.note(pending, Duration::ZERO);
        }
        None => {
            let lost = Lost {
                reason: SkipReason::Unavailable,
                ticks: 1,
                latest: tick,
                detail: "the lock backend or the store stayed unreachable past the tick's time"
                    .to_owned(),
            };
            report_lost(rt, entry, lost).await;
        }
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
    requested_by: Option<&str>,
) -> Option<Executed> {
    let run = AssertUnwindSafe(Box::pin(executor::execute(
        rt,
        entry,
        tick,
        hold_at_least,
        resume,
        requested_by,
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

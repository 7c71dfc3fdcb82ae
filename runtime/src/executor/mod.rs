//! One guarded execution, as a pipeline of stages:
//!
//! 1. [`breaker::check`]: skip the tick while the job's circuit breaker is open;
//! 2. [`lease::acquire`]: take the job's lease lock (if the job has one); under
//!    `overlap = "cancel_other"`, a lease held for an older tick is taken once that tick's
//!    run stopped ([`supersede::take_lease`]);
//! 3. [`claim::claim`]: claim the execution in the store, waiting out a busy tick (or, under
//!    `cancel_other`, asking the busy execution to stop);
//! 4. [`gate::gate`]: refuse to start a run that can no longer be proven safe or useful;
//! 5. [`watchdog::supervise`]: run the attempts ([`attempts::run`]) under the watchdog that
//!    renews the lease and heartbeats the store;
//!
//! then [`conclude`] records, counts, releases and reports, once, whichever stage ended the
//! pipeline. A stage goes on with what it produced, or stops the pipeline: a stage before
//! the claim with a skip ([`Skip`]: nothing was claimed, the tick is counted as skipped), a
//! stage after it with the execution's end ([`Conclude`]: the claimed execution is
//! recorded as ended).

mod attempts;
mod breaker;
mod claim;
mod conclude;
mod end;
mod gate;
mod hooks;
mod identity;
mod interrupts;
mod lease;
mod local_runs;
mod lost;
mod pause_on_failure;
mod supersede;
mod unrecorded;
mod watchdog;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::{breaker::Breaker, end::RunEnd, lease::Held};
pub(crate) use self::{
    breaker::share as share_breakers,
    conclude::RECORD_BUDGET,
    interrupts::{Interrupts, Queued},
    local_runs::{Delivered, LocalRuns},
    lost::{Lost, report_lost},
    pause_on_failure::PAUSED_BY_POLICY,
    supersede::request as supersede,
    unrecorded::Unrecorded,
};
use crate::{
    clock::Clock,
    context::Execution,
    control::PauseState,
    job::{FailureHook, Job},
    ledger::Ledger,
    lock::LockBackend,
    metrics::{JobMetrics, SkipReason},
    state::StateMap,
    store::{Claimed, ExecutionRef, ExecutionStore, StoreError},
    throttle::Throttles,
};

/// The longest a call to the lock backend or the store may take before the executor gives
/// up on it (a hung backend must not stall a job, or shutdown, forever).
pub(crate) const BACKEND_TIMEOUT: Duration = Duration::from_secs(10);

/// A store call bounded by [`BACKEND_TIMEOUT`]: one that does not answer in time is an
/// unreachable store.
pub(crate) async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(BACKEND_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| Err(StoreError::unavailable("timed out", None)))
}

/// How many runs beyond its retry budget an execution that keeps being interrupted (its
/// process crashes, say) gets before it is recorded as failed instead of resumed again.
pub(crate) const RESUME_ALLOWANCE: u32 = 3;

/// What every execution shares: backends, identity, settings.
pub(crate) struct Runtime {
    pub(crate) lock: Arc<dyn LockBackend>,
    pub(crate) store: Arc<dyn ExecutionStore>,
    pub(crate) instance_id: Arc<str>,
    pub(crate) clock: Clock,
    pub(crate) hooks: Vec<FailureHook>,
    /// How long a cancelled run may take to return before it is dropped.
    pub(crate) cancel_grace: Duration,
    /// How long an owner may go without a store heartbeat before it counts as gone.
    pub(crate) liveness: Duration,
    /// Whether the store records each job's next fire time (the SQL stores do).
    pub(crate) records_next_fire: bool,
    /// Fired when shutdown's grace period ran out: cancels every run in progress.
    pub(crate) stop_runs: CancellationToken,
    /// Whether claims ask the store to refuse ticks not due yet by its clock: a scheduler's
    /// do; a direct run (the test kit's, which runs any tick now) does not.
    pub(crate) refuse_early: bool,
    /// The executions whose ends are not recorded yet, for shutdown to wait for.
    pub(crate) unrecorded: Unrecorded,
    /// The application state the jobs' `State<T>` arguments take.
    pub(crate) state: Arc<StateMap>,
}

/// How long a cancelled run may take to return before it is dropped, unless configured.
pub(crate) const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(5);

impl Runtime {
    /// A runtime that runs executions directly, not from a scheduler (the test kit's `Run`,
    /// the guarded bench): no failure hooks, the system clock, the default cancel grace, no
    /// application state unless set after, and any tick may be claimed now (a test runs
    /// tomorrow's tick today).
    pub(crate) fn direct(
        lock: Arc<dyn LockBackend>,
        store: Arc<dyn ExecutionStore>,
        instance_id: Arc<str>,
        liveness: Duration,
    ) -> Self {
        Self {
            records_next_fire: records_next_fire(&*store),
            lock,
            store,
            instance_id,
            clock: Clock::default(),
            hooks: Vec::new(),
            cancel_grace: DEFAULT_CANCEL_GRACE,
            liveness,
            stop_runs: CancellationToken::new(),
            refuse_early: false,
            unrecorded: Unrecorded::default(),
            state: Arc::default(),
        }
    }
}

/// Whether `store` records each job's next fire time (the SQL stores do).
pub(crate) fn records_next_fire(store: &dyn ExecutionStore) -> bool {
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    return store.sql().is_some();
    #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
    {
        let _ = store;
        false
    }
}

/// A registered job and its per-job state.
pub(crate) struct JobEntry {
    pub(crate) job: Job,
    pub(crate) metrics: JobMetrics,
    /// Child of [`Runtime::stop_runs`]: the job's runs wait on it, so they share no waiter
    /// list with other jobs' runs.
    pub(crate) stop: Arc<CancellationToken>,
    /// Cancelled when shutdown begins: no new runs. The job's own token, for the same reason.
    pub(crate) firing: CancellationToken,
    /// Where the job loop starts: ticks after it that are already due were missed while no
    /// instance ran the job.
    pub(crate) resume_from: DateTime<Utc>,
    /// Interrupted executions of the job, found by the scheduler's recovery task, for the
    /// job loop to resume.
    pub(crate) interrupted: Interrupts,
    /// Ticks of the job this instance fired but did not run, for the recovery task to
    /// record in the store (idempotent jobs).
    pub(crate) ledger: Ledger,
    /// The throttles of the job's recurring warnings: lost ticks by reason, an early clock.
    pub(crate) warnings: Throttles,
    /// Whether the job is paused, as the control task last read the store.
    pub(crate) pause: PauseState,
    /// The job's executions running on this instance, for the control task to stop those
    /// asked to ([`ExecutionStore::request_cancel`]).
    pub(crate) runs: LocalRuns,
    /// The job's circuit breaker, if it has one, with the jobs that share it.
    pub(crate) breaker: Option<Breaker>,
}

/// A run counted in the `running` gauge until it is dropped: once its end is recorded, or
/// when a panic (in a third-party backend) unwinds through the pipeline.
struct Running<'a>(&'a metrics::Gauge);

impl<'a> Running<'a> {
    fn new(gauge: &'a metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

impl JobEntry {
    /// The entry of `job`, whose runs stop with `stop` and whose firing stops with `firing`;
    /// ticks after `resume_from` that are already due were missed.
    pub(crate) fn new(
        job: Job,
        stop: Arc<CancellationToken>,
        firing: CancellationToken,
        resume_from: DateTime<Utc>,
    ) -> Self {
        Self {
            metrics: JobMetrics::new(&job.name),
            stop,
            firing,
            resume_from,
            interrupted: Interrupts::default(),
            ledger: Ledger::default(),
            warnings: Throttles::default(),
            pause: PauseState::default(),
            runs: LocalRuns::default(),
            breaker: Breaker::of(&job),
            job,
        }
    }
}

/// The execution id of a tick of an idempotent job, the same on every instance; `None` for
/// a job that is not idempotent (its execution ids are unique per run).
pub(crate) fn tick_execution_id(job: &Job, tick: DateTime<Utc>) -> Option<String> {
    job.key.as_ref()?;
    Some(identity::execution_id(job, tick, ""))
}

/// What [`execute`] did with a tick.
#[cfg_attr(not(feature = "testing"), allow(dead_code))] // read by the testing kit
pub(crate) enum Executed {
    /// Not run: the lock was held, the tick done or busy, or a backend unreachable.
    Skipped(SkipReason),
    /// Claimed: the run went through (whatever its outcome) under this execution id.
    Ran { execution_id: String },
}

/// What a stage before the claim produced, or the reason the tick is skipped.
type Skip<T> = Result<T, SkipReason>;

/// What a stage after the claim produced, or how the claimed execution ends without
/// (further) running.
type Conclude<T> = Result<T, RunEnd>;

/// One pass through the pipeline: the tick, who runs it, and the lease once taken.
struct Tick<'a> {
    rt: &'a Runtime,
    entry: &'a JobEntry,
    /// The tick this run is for.
    at: DateTime<Utc>,
    /// Unique per run, whatever the configuration: see [`identity::owner`].
    owner: String,
    execution_id: String,
    /// Resuming an interrupted execution: one that cannot be resumed now (locked, busy,
    /// done) is left without a skip counted, since no tick is lost.
    resuming: bool,
    /// Who asked for this execution, for a requested one (a trigger or a re-run): it is
    /// claimed as idempotent whatever the job, since its id is unique per request.
    requested_by: Option<&'a str>,
    /// False for a catch-up run that another due tick follows at once: its own `at_least`
    /// must not lock out the next.
    hold_at_least: bool,
    lease: Option<Held>,
    /// Who holds the job's lock, when the acquire stage found it held and the backend said.
    holder: Option<String>,
    /// The tick is left to the ledger: this run waited for the busy job until it could no
    /// longer keep its lease.
    deferred: bool,
}

impl Tick<'_> {
    fn job(&self) -> &Job {
        &self.entry.job
    }

    fn metrics(&self) -> &JobMetrics {
        &self.entry.metrics
    }
}

/// Runs the pipeline for one tick of `entry`. Never panics on backend or job failures: they
/// are logged, counted, and the tick is either recorded or skipped. `hold_at_least` is false
/// for a catch-up run that another due tick follows at once. `resume` names an interrupted
/// (or requested) execution to resume instead of the tick's own; `requested_by`, who asked
/// for it when an operator did.
pub(crate) async fn execute(
    rt: &Runtime,
    entry: &JobEntry,
    tick: DateTime<Utc>,
    hold_at_least: bool,
    resume: Option<&str>,
    requested_by: Option<&str>,
) -> Executed {
    let owner = identity::owner(&rt.instance_id);
    let execution_id = match resume {
        Some(id) => id.to_owned(),
        None => identity::execution_id(&entry.job, tick, &owner),
    };
    let mut t = Tick {
        rt,
        entry,
        at: tick,
        owner,
        execution_id,
        resuming: resume.is_some(),
        requested_by,
        hold_at_least,
        lease: None,
        holder: None,
        deferred: false,
    };
    let acquired_and_claimed: Skip<Claimed> = async {
        breaker::check(&t).await?;
        if let Err(reason) = lease::acquire(&mut t).await {
            supersede::take_lease(&mut t, reason).await?;
        }
        claim::claim(&mut t).await
    }
    .await;
    let claimed = match acquired_and_claimed {
        Ok(claimed) => claimed,
        Err(reason) => {
            conclude::skip(t, reason).await;
            return Executed::Skipped(reason);
        }
    };
    let execution_id = t.execution_id.clone();
    let exec = claimed_execution(&t, &claimed);
    let span = execution_span(&entry.job, &t.execution_id);
    let recorded = span.clone();
    let pending = rt.unrecorded.track(&execution_id);
    // Until its pass ends: a cancel request read by the control task finds it here.
    let _local = entry.runs.register(&exec);
    async move {
        tracing::info!(
            job = %entry.job.name,
            scheduled_at = %tick,
            instance_id = %rt.instance_id,
            fence = claimed.fence,
            previous_attempts = claimed.previous_attempts,
            "execution started"
        );
        let (end, ran_for, running) = match gate::gate(&t, &claimed) {
            Err(end) => (end, None, None),
            Ok(()) => {
                let running = Running::new(&entry.metrics.running);
                let started = tokio::time::Instant::now();
                let end = watchdog::supervise(rt, entry, &exec, &mut t.lease).await;
                (end, Some(started.elapsed()), Some(running))
            }
        };
        conclude::conclude(t, &exec, end, (ran_for, running, pending), &recorded).await;
    }
    .instrument(span)
    .await;
    Executed::Ran { execution_id }
}

/// The execution `t` claimed, as its run's context sees it.
fn claimed_execution(t: &Tick<'_>, claimed: &Claimed) -> Arc<Execution> {
    let (rt, entry) = (t.rt, t.entry);
    Arc::new(Execution::new(
        ExecutionRef {
            job: entry.job.name.clone(),
            execution_id: t.execution_id.clone(),
            fence: claimed.fence,
        },
        t.at,
        claimed.previous_attempts,
        rt.instance_id.clone(),
        rt.store.clone(),
        rt.liveness,
        entry.stop.clone(),
        entry.firing.clone(),
        entry.metrics.fence_rejections.clone(),
    ))
}

/// The span of one execution, around every line its run logs: it names the execution
/// briefly, since the default `fmt` layer prints a span's fields on each of those lines. What
/// else identifies the execution (tick, instance, fence) is logged once, by the `execution
/// started` event. The id names the job when it starts with the job's name and `@`
/// (`{job}@{tick}..`, the default); otherwise (a custom key template such as
/// `archive-{date}`) the span names the job too. `attempts`, `outcome` and `duration_ms`
/// are recorded once the execution's end is logged (see [`conclude::conclude`]), for
/// OpenTelemetry and span-close events, and so appear on no line of the run.
fn execution_span(job: &Job, execution_id: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "tickguard.execution",
        job = tracing::field::Empty,
        execution_id = %execution_id,
        attempts = tracing::field::Empty,
        outcome = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    if !names_job(&job.name, execution_id) {
        span.record("job", tracing::field::display(&job.name));
    }
    span
}

/// Whether `execution_id` names job `job`: it is `{job}@..`. A job `a` with the key
/// `archive-{date}` has ids that start with `a` but do not name it.
fn names_job(job: &str, execution_id: &str) -> bool {
    execution_id
        .strip_prefix(job)
        .is_some_and(|rest| rest.starts_with('@'))
}

#[cfg(test)]
mod tests {
    use super::names_job;

    #[test]
    fn an_id_names_the_job_only_as_job_at() {
        assert!(names_job("a", "a@2026-01-01T00:00:00Z"));
        assert!(names_job("a", "a@2026-01-01T00:00:00Z#i-1#1-00ff"));
        assert!(!names_job("a", "archive-2026-01-01"));
        assert!(!names_job("a", "a-2026-01-01"));
        assert!(!names_job("archive", "a@2026-01-01T00:00:00Z"));
        assert!(!names_job("a", "b@2026-01-01T00:00:00Z"));
    }
}

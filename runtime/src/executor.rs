//! One guarded execution: lock, claim, run with retries under timeout, record, release.

use std::{
    any::Any,
    panic::AssertUnwindSafe,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Datelike, Timelike, Utc};
use futures_util::FutureExt;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    CancelReason, JobContext, JobError,
    clock::Clock,
    context::Execution,
    job::{FailureHook, FailureReport, Job, LockPolicy, Misfire},
    lock::{Lease, LockBackend, LockError},
    metrics::{JobMetrics, Outcome, SkipReason},
    store::{Claim, ClaimRequest, ExecutionRef, ExecutionStore, Finish, Status, StoreError},
};

/// The longest a call to the lock backend or the store may take before the executor gives
/// up on it (a hung backend must not stall a job, or shutdown, forever).
pub(crate) const BACKEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest pause between the tries of a claim the store could not answer: they wait
/// 100, 200, 400 and 800 ms.
const CLAIM_BACKOFF_MAX: Duration = Duration::from_millis(800);

/// The longest a failure hook may take.
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

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
    pub(crate) seq: AtomicU64,
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
}

/// A job's queue of interrupted executions to resume.
#[derive(Default)]
pub(crate) struct Interrupts {
    queue: std::sync::Mutex<Vec<(String, DateTime<Utc>)>>,
    /// Whether the queue may hold anything: the job loop reads it every round, so an empty
    /// queue costs one load, not a lock.
    pending: std::sync::atomic::AtomicBool,
    pub(crate) ready: tokio::sync::Notify,
}

impl Interrupts {
    /// Queues an execution unless it is queued already; `true` if it was added.
    pub(crate) fn push(&self, execution_id: String, tick: DateTime<Utc>) -> bool {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.iter().any(|(id, _)| *id == execution_id) {
            return false;
        }
        queue.push((execution_id, tick));
        self.pending.store(true, Ordering::Release);
        drop(queue);
        self.ready.notify_one();
        true
    }

    /// Takes every queued execution, oldest tick first.
    pub(crate) fn take(&self) -> Vec<(String, DateTime<Utc>)> {
        if !self.pending.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        let mut all = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
        all.sort_by_key(|(_, tick)| *tick);
        all
    }
}

/// How many runs beyond its retry budget an execution that keeps being interrupted (its
/// process crashes, say) gets before it is recorded as failed instead of resumed again.
pub(crate) const RESUME_ALLOWANCE: u32 = 3;

/// How a run ended, for the store, metrics and hooks.
struct RunEnd {
    status: Status,
    outcome: Outcome,
    attempts: u32,
    error: Option<JobError>,
}

/// Runs the pipeline for one tick of `entry`. Never panics on backend or job failures: they
/// are logged, counted, and the tick is either recorded or skipped. `hold_at_least` is false
/// for a catch-up run that another due tick follows at once: its own `at_least` must not
/// lock out the next. `resume` names an interrupted execution to resume instead of the
/// tick's own: one that cannot be resumed now (locked, busy, done) is left without a skip
/// counted, since no tick is lost.
pub(crate) async fn execute(
    rt: &Runtime,
    entry: &JobEntry,
    tick: DateTime<Utc>,
    hold_at_least: bool,
    resume: Option<&str>,
) -> Executed {
    let job = &entry.job;
    let m = &entry.metrics;
    let seq = rt.seq.fetch_add(1, Ordering::Relaxed);
    let owner = format!("{}#{seq}", rt.instance_id);
    let execution_id = match (resume, &job.key) {
        (Some(id), _) => id.to_owned(),
        (None, Some(key)) => key.render(&job.name, tick, job.schedule.zone()),
        (None, None) => format!("{}@{}#{owner}", job.name, Rfc3339(tick)),
    };
    let skipped = |reason: SkipReason| {
        if resume.is_none() {
            m.skipped(reason, 1);
        }
    };

    // Lock.
    let lease = match job.lock {
        None => None,
        Some(policy) => {
            let started = Instant::now();
            let acquired = timeout(
                BACKEND_TIMEOUT,
                rt.lock.acquire(&job.name, &owner, policy.ttl),
            )
            .await
            .unwrap_or_else(|_| Err(LockError::new("timed out")));
            m.lock_acquire.record(started.elapsed().as_secs_f64());
            match acquired {
                Ok(Some(lease)) => Some(Held {
                    lease,
                    acquired: started,
                    renewed: started,
                    policy,
                }),
                Ok(None) => {
                    tracing::debug!(job = %job.name, %tick, "lock held elsewhere; tick skipped");
                    skipped(SkipReason::Locked);
                    return Executed::Skipped(SkipReason::Locked);
                }
                Err(e) => {
                    tracing::warn!(
                        job = %job.name, %tick, backend = %rt.lock.describe(), error = %e,
                        "cannot reach the lock backend; tick skipped"
                    );
                    skipped(SkipReason::Unavailable);
                    return Executed::Skipped(SkipReason::Unavailable);
                }
            }
        }
    };

    // Claim.
    let next_fire = if rt.records_next_fire {
        job.schedule.next_after(tick)
    } else {
        None
    };
    let request = ClaimRequest::new(&job.name, &execution_id, tick, &owner)
        .idempotent(job.key.is_some())
        .liveness(rt.liveness)
        .next_fire(next_fire);
    // A store that cannot be reached is asked again with backoff for about a second and a
    // half (a database restarting, a failover): a blip does not cost the tick. All tries
    // together are bounded like one backend call.
    let claim = || async {
        let mut delay = Duration::from_millis(100);
        let deadline = Instant::now() + BACKEND_TIMEOUT;
        loop {
            let claimed = tokio::time::timeout_at(deadline, rt.store.claim(&request))
                .await
                .unwrap_or_else(|_| Err(StoreError::unavailable("the claim timed out", None)));
            match claimed {
                Err(e)
                    if !e.is_fenced()
                        && delay <= CLAIM_BACKOFF_MAX
                        && Instant::now() + delay < deadline =>
                {
                    tracing::warn!(
                        job = %job.name, %execution_id, error = %e, ?delay,
                        "cannot claim the execution; asking again"
                    );
                    tokio::select! {
                        () = sleep(delay) => delay *= 2,
                        () = entry.firing.cancelled() => return Err(e),
                    }
                }
                other => return other,
            }
        }
    };
    let mut claimed = claim().await;
    let mut lease = lease;
    if resume.is_none()
        && let Ok(Claim::Busy { execution_id: busy }) = &claimed
    {
        // The live execution may be a dead owner's that has not been silent for a whole
        // liveness yet. Wait that long (renewing this run's lease), then look: a dead owner
        // is now proven gone, its execution is abandoned (to be resumed) and this tick runs,
        // late; a live one has heartbeated meanwhile, and the tick overlaps it.
        let busy = busy.clone();
        let waited = wait_holding(rt, &mut lease, rt.liveness + rt.liveness / 10, entry).await;
        if waited {
            let interrupted = timeout(
                BACKEND_TIMEOUT,
                rt.store
                    .interrupted(std::slice::from_ref(&job.name), rt.liveness, 100),
            )
            .await
            .unwrap_or_else(|_| Err(StoreError::unavailable("timed out", None)));
            let dead = match interrupted {
                Ok(found) => found.iter().any(|i| i.execution_id == busy),
                Err(_) => false,
            };
            if dead {
                claimed = claim().await;
            }
            // An idempotent job that runs every tick waits for the job to be free; the
            // claims of the instances that waited together pick one to run it.
            while job.misfire == Misfire::RunAll
                && job.key.is_some()
                && matches!(claimed, Ok(Claim::Busy { .. }))
            {
                if !wait_holding(rt, &mut lease, rt.liveness / 3, entry).await {
                    break;
                }
                claimed = claim().await;
            }
        }
    }
    let claimed = match claimed {
        Ok(Claim::Acquired(claimed)) => claimed,
        Ok(other) => {
            let reason = match other {
                Claim::Done { .. } => SkipReason::Duplicate,
                _ => SkipReason::Overlap,
            };
            tracing::debug!(job = %job.name, %execution_id, reason = reason.as_str(), "tick skipped");
            skipped(reason);
            release(rt, m, lease, hold_at_least).await;
            return Executed::Skipped(reason);
        }
        Err(e) => {
            tracing::warn!(
                job = %job.name, %execution_id, store = %rt.store.describe(), error = %e,
                "cannot claim the execution; tick skipped (never run without a claim)"
            );
            skipped(SkipReason::Unavailable);
            release(rt, m, lease, hold_at_least).await;
            return Executed::Skipped(SkipReason::Unavailable);
        }
    };
    let claimed_id = execution_id.clone();

    let exec = Arc::new(Execution {
        exec: ExecutionRef {
            job: job.name.clone(),
            execution_id,
            fence: claimed.fence,
        },
        scheduled_at: tick,
        instance_id: rt.instance_id.clone(),
        cancel: CancellationToken::new(),
        stop: entry.stop.clone(),
        reason: OnceLock::new(),
        store: rt.store.clone(),
        fence_rejections: m.fence_rejections.clone(),
        attempts: AtomicU32::new(claimed.previous_attempts),
        liveness: rt.liveness,
    });
    let span = tracing::info_span!(
        "tickguard.execution",
        job = %job.name,
        execution_id = %exec.exec.execution_id,
        instance_id = %rt.instance_id,
        fence = claimed.fence,
        scheduled_at = %tick,
        attempts = tracing::field::Empty,
        outcome = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    let recorded = span.clone();
    async {
        tracing::debug!(resumed = claimed.resumed, "execution started");
        if let Some(h) = &lease
            && Instant::now() >= h.proven_until(h.renewed + h.policy.ttl)
        {
            // The claim took so long that the lease can no longer be proven held: do not
            // start. The execution is recorded as cancelled, so it can be resumed.
            tracing::warn!("the claim outlasted two thirds of the lease; not starting the run");
            skipped(SkipReason::Unavailable);
            let end = RunEnd::stopped(CancelReason::LockLost, claimed.previous_attempts);
            record(rt, &exec, end).await;
            release(rt, m, lease, hold_at_least).await;
            return;
        }
        if claimed.resumed
            && claimed.previous_attempts >= job.retry.max_attempts() + RESUME_ALLOWANCE
        {
            // Interrupted again and again (a job that crashes its process?): stop resuming.
            let end = RunEnd {
                status: Status::Failed,
                outcome: Outcome::Failure,
                attempts: claimed.previous_attempts,
                error: Some(JobError::permanent(format!(
                    "gave up: {} attempts across interrupted runs",
                    claimed.previous_attempts
                ))),
            };
            let end = record(rt, &exec, end).await;
            m.finished(end.outcome, 0.0);
            release(rt, m, lease, hold_at_least).await;
            report(rt, job, &exec, &end, Duration::ZERO).await;
            return;
        }
        if claimed.resumed {
            tracing::info!(
                attempts = claimed.previous_attempts,
                checkpoint = claimed.checkpoint.is_some(),
                "resuming an interrupted execution"
            );
        }
        m.running.increment(1.0);
        let started = Instant::now();
        // The watchdog runs in this task beside the job, not in a task of its own: one
        // spawn less per run, and it cannot outlive the run. When it reports the lease (or
        // the store) lost, the run is dropped at the deadline it gives, whatever grace the
        // run was otherwise given.
        let end = {
            let keeper = keep_alive(rt, entry, &exec, lease.as_ref());
            let run = run(rt, entry, &exec);
            tokio::pin!(keeper, run);
            let mut watching = true;
            let mut drop_at = None;
            // First poll: the job first, so that one that finishes at once never arms the
            // watchdog's timers (the lease was just proven valid). After that: the drop
            // deadline, then the watchdog, then the job, so that a process resumed after a
            // pause (SIGSTOP, a VM freeze) past its lease never polls the job again once the
            // watchdog can tell the lease is lost.
            let mut first = true;
            loop {
                if std::mem::take(&mut first) {
                    tokio::select! {
                        biased;
                        end = &mut run => break end,
                        deadline = &mut keeper => {
                            watching = false;
                            drop_at = deadline;
                        }
                    }
                    continue;
                }
                tokio::select! {
                    biased;
                    () = sleep_until_some(drop_at) => {
                        let reason = exec.reason().unwrap_or(CancelReason::LockLost);
                        break RunEnd::stopped(reason, exec.attempts.load(Ordering::Relaxed));
                    }
                    deadline = &mut keeper, if watching => {
                        watching = false;
                        drop_at = deadline;
                    }
                    end = &mut run => break end,
                }
            }
        };
        let duration = started.elapsed();
        let end = record(rt, &exec, end).await;
        recorded.record("attempts", end.attempts);
        recorded.record("outcome", end.outcome.as_str());
        recorded.record("duration_ms", duration.as_secs_f64() * 1000.0);
        m.running.decrement(1.0);
        m.finished(end.outcome, duration.as_secs_f64());
        if end.outcome == Outcome::Success {
            m.last_success
                .set(rt.clock.now().timestamp_millis() as f64 / 1000.0);
        }
        release(rt, m, lease, hold_at_least).await;
        report(rt, job, &exec, &end, duration).await;
    }
    .instrument(span)
    .await;
    Executed::Ran {
        execution_id: claimed_id,
    }
}

/// What [`execute`] did with a tick.
#[cfg_attr(not(feature = "testing"), allow(dead_code))] // read by the testing kit
pub(crate) enum Executed {
    /// Not run: the lock was held, the tick done or busy, or a backend unreachable.
    Skipped(SkipReason),
    /// Claimed: the run went through (whatever its outcome) under this execution id.
    Ran { execution_id: String },
}

/// Waits `wait` while renewing the lease (if any) every third of its ttl; `false` if the
/// lease could not be renewed (it is then no longer this run's to use) or firing stopped.
async fn wait_holding(
    rt: &Runtime,
    lease: &mut Option<Held>,
    wait: Duration,
    entry: &JobEntry,
) -> bool {
    let until = Instant::now() + wait;
    loop {
        let renew_at = lease.as_ref().map(|h| h.renewed + h.policy.ttl / 3);
        let wake = renew_at.map_or(until, |r| r.min(until));
        tokio::select! {
            () = sleep_until(wake) => {}
            () = entry.firing.cancelled() => return false,
        }
        if let Some(h) = lease.as_mut()
            && Instant::now() >= h.renewed + h.policy.ttl / 3
        {
            let sent = Instant::now();
            let left = h
                .proven_until(h.renewed + h.policy.ttl)
                .saturating_duration_since(sent);
            match timeout(left, rt.lock.extend(&h.lease, h.policy.ttl)).await {
                Ok(Ok(true)) => h.renewed = sent,
                _ => {
                    tracing::warn!(job = %h.lease.name, "lease lost while the job was busy elsewhere");
                    return false;
                }
            }
        }
        if Instant::now() >= until {
            return true;
        }
    }
}

/// A lease this run holds.
#[derive(Clone)]
struct Held {
    lease: Lease,
    acquired: Instant,
    /// When the last successful acquisition or renewal was sent: the lease is valid for a
    /// ttl from there.
    renewed: Instant,
    policy: LockPolicy,
}

impl Held {
    /// The instant after which a lease valid until `valid_until` counts as lost: ttl/3
    /// before it may expire, so the run is gone before anyone else could take the lock.
    fn proven_until(&self, valid_until: Instant) -> Instant {
        valid_until - self.policy.ttl / 3
    }
}

impl RunEnd {
    fn stopped(reason: CancelReason, attempts: u32) -> Self {
        let (status, outcome) = match reason {
            CancelReason::Timeout => (Status::TimedOut, Outcome::Timeout),
            _ => (Status::Cancelled, Outcome::Cancelled),
        };
        Self {
            status,
            outcome,
            attempts,
            error: Some(JobError::transient(format!(
                "run stopped: {}",
                reason.as_str()
            ))),
        }
    }
}

/// Runs the attempts under the timeout and cancellation; returns how the run ended.
async fn run(rt: &Runtime, entry: &JobEntry, exec: &Arc<Execution>) -> RunEnd {
    let job = &entry.job;
    let tries = async move {
        loop {
            let attempt = exec.attempts.fetch_add(1, Ordering::Relaxed) + 1;
            let ctx = JobContext {
                inner: exec.clone(),
                attempt,
            };
            let result = AssertUnwindSafe((job.handler)(ctx))
                .catch_unwind()
                .instrument(tracing::info_span!("tickguard.attempt", attempt))
                .await
                .unwrap_or_else(|panic| Err(JobError::panic(panic_message(&*panic))));
            let error = match result {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            // The budget counts the attempts of earlier owners of this execution too, so a
            // job that crashes its process is not retried forever across takeovers.
            if exec.is_cancelled() || !job.retry.should_retry(&error, attempt) {
                return Err(error);
            }
            let delay = job.retry.jittered_delay(attempt);
            entry.metrics.retries.increment(1);
            tracing::warn!(attempt, error = %format!("{error:#}"), ?delay, "attempt failed; retrying");
            tokio::select! {
                () = sleep(delay) => {}
                () = exec.cancelled() => return Err(error),
            }
        }
    };
    tokio::pin!(tries);
    let deadline = job.timeout.map(|t| Instant::now() + t);
    // The job first: one that finishes in its first poll never registers with the
    // cancellation tokens or arms the timeout's timer.
    let finished = tokio::select! {
        biased;
        result = &mut tries => Some(result),
        () = sleep_until_some(deadline) => {
            exec.cancel(CancelReason::Timeout);
            None
        }
        () = exec.cancelled() => None,
    };
    let result = match finished {
        Some(result) => Some(result),
        // Asked to stop: give the job a grace period to return, then drop it. (After a
        // lock loss the watchdog's deadline cuts this short.)
        None => timeout(rt.cancel_grace, &mut tries).await.ok(),
    };
    let attempts = exec.attempts.load(Ordering::Relaxed);
    match (exec.reason(), result) {
        (None, Some(Ok(()))) | (Some(CancelReason::Shutdown), Some(Ok(()))) => RunEnd {
            status: Status::Completed,
            outcome: Outcome::Success,
            attempts,
            error: None,
        },
        (None, Some(Err(error))) => RunEnd {
            status: Status::Failed,
            outcome: Outcome::Failure,
            attempts,
            error: Some(error),
        },
        (Some(CancelReason::Timeout), _) => RunEnd {
            status: Status::TimedOut,
            outcome: Outcome::Timeout,
            attempts,
            error: Some(JobError::transient(format!(
                "timed out after {:?}",
                job.timeout.unwrap_or_default()
            ))),
        },
        // The job finished its work although its lease (or the store) could not be proven
        // held: the run counts as cancelled, and is reported, but the execution is recorded
        // COMPLETED if the store still takes this run's fenced finish (no other claim took
        // it over), so that it is not resumed and run again.
        (
            Some(reason @ (CancelReason::LockLost | CancelReason::StoreUnreachable)),
            Some(Ok(())),
        ) => RunEnd {
            status: Status::Completed,
            outcome: Outcome::Cancelled,
            attempts,
            error: Some(JobError::transient(format!(
                "the job finished, but its run was stopped: {}",
                reason.as_str()
            ))),
        },
        // Without a reason the select above only ends with a result; `LockLost` keeps this
        // total.
        (reason, _) => RunEnd::stopped(reason.unwrap_or(CancelReason::LockLost), attempts),
    }
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

/// Releases the lease, holding it until `at_least` has passed since it was taken (unless
/// `hold_at_least` is false).
async fn release(rt: &Runtime, m: &JobMetrics, held: Option<Held>, hold_at_least: bool) {
    let Some(held) = held else { return };
    let elapsed = held.acquired.elapsed();
    let hold_for = if hold_at_least {
        held.policy.at_least.saturating_sub(elapsed)
    } else {
        Duration::ZERO
    };
    let released = timeout(BACKEND_TIMEOUT, rt.lock.release(&held.lease, hold_for))
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
    };
    tracing::error!(%report, "job failed");
    for hook in job.on_failure.iter().chain(&rt.hooks) {
        match timeout(
            HOOK_TIMEOUT,
            AssertUnwindSafe(hook(report.clone())).catch_unwind(),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(panic)) => {
                tracing::error!(panic = panic_message(&*panic), "failure hook panicked");
            }
            Err(_) => tracing::error!(timeout = ?HOOK_TIMEOUT, "failure hook timed out"),
        }
    }
}

/// Renews the lease every ttl/3 and heartbeats the store while the run lives, and returns
/// only when the run must stop: the lease cannot be proven held (it is cancelled ttl/3
/// before the lease could expire, and must be gone by the returned deadline, when it may
/// expire), the store's heartbeats failed for so long that another instance could soon count
/// the owner gone, or the store fenced the run out (no deadline: its grace applies). Every
/// backend call is bounded so that a hung backend cannot hide the loss.
async fn keep_alive(
    rt: &Runtime,
    entry: &JobEntry,
    exec: &Execution,
    held: Option<&Held>,
) -> Option<Instant> {
    let beat_every = rt.liveness / 3;
    let mut next_beat = Instant::now() + beat_every;
    let mut last_beat = Instant::now();
    let (mut next_renew, mut valid_until) = match held {
        Some(h) => (h.renewed + h.policy.ttl / 3, h.renewed + h.policy.ttl),
        None => (Instant::now(), Instant::now()),
    };
    let retry_every = |ttl: Duration| (ttl / 15).max(Duration::from_millis(10));
    loop {
        let lost_at = held.map(|h| h.proven_until(valid_until));
        // Another instance counts this owner gone `liveness` after its last heartbeat.
        let store_lost_at = last_beat + rt.liveness - beat_every;
        tokio::select! {
            biased;
            () = sleep_until_some(lost_at) => {
                lock_lost(entry, exec, "the lease could not be renewed in time");
                return Some(valid_until);
            }
            () = sleep_until(store_lost_at) => {
                tracing::error!(
                    job = %exec.exec.job,
                    execution_id = %exec.exec.execution_id,
                    "cannot heartbeat the execution store: another instance may take this \
                     execution over; cancelling this run"
                );
                exec.cancel(CancelReason::StoreUnreachable);
                return Some(last_beat + rt.liveness);
            }
            () = sleep_until_some(held.map(|_| next_renew)) => {
                let (Some(h), Some(lost_at)) = (held, lost_at) else { continue };
                let ttl = h.policy.ttl;
                let sent = Instant::now();
                let left = lost_at.saturating_duration_since(sent);
                match timeout(left, rt.lock.extend(&h.lease, ttl)).await {
                    Ok(Ok(true)) => {
                        valid_until = sent + ttl;
                        next_renew = sent + ttl / 3;
                        tracing::trace!("lease renewed");
                    }
                    Ok(Ok(false)) => {
                        lock_lost(entry, exec, "the lease expired or another owner holds it");
                        return Some(valid_until);
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot renew the lease; retrying");
                        next_renew = Instant::now() + retry_every(ttl);
                    }
                    // Timed out at `lost_at`: the next round reports the loss.
                    Err(_) => tracing::warn!("lease renewal timed out"),
                }
            }
            () = sleep_until(next_beat) => {
                let sent = Instant::now();
                next_beat = sent + beat_every;
                let mut left = store_lost_at.saturating_duration_since(sent);
                if let Some(lost_at) = lost_at {
                    left = left.min(lost_at.saturating_duration_since(sent));
                }
                match timeout(left, rt.store.heartbeat(&exec.exec)).await {
                    Ok(Ok(())) => last_beat = sent,
                    Ok(Err(e)) if e.is_fenced() => {
                        exec.store_error(e);
                        return None;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot heartbeat the execution store");
                    }
                    Err(_) => tracing::warn!("execution store heartbeat timed out"),
                }
            }
        }
    }
}

fn lock_lost(entry: &JobEntry, exec: &Execution, why: &str) {
    entry.metrics.lock_lost.increment(1);
    tracing::error!(
        job = %exec.exec.job,
        execution_id = %exec.exec.execution_id,
        why,
        "lock lost: another instance may hold it now; cancelling this run"
    );
    exec.cancel(CancelReason::LockLost);
}

/// A tick as RFC 3339 in UTC (`2026-11-29T02:00:00Z`, fractions only when present), written
/// straight into the id: chrono's general formatter costs more than the rest of the id.
struct Rfc3339(DateTime<Utc>);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )?;
        match t.nanosecond() {
            0 => {}
            n if n % 1_000_000 == 0 => write!(f, ".{:03}", n / 1_000_000)?,
            n if n % 1_000 == 0 => write!(f, ".{:06}", n / 1_000)?,
            n => write!(f, ".{n:09}")?,
        }
        f.write_str("Z")
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{SecondsFormat, TimeZone};

    use super::*;

    #[test]
    fn tick_text_is_rfc3339() {
        for nanos in [0, 5_000_000, 123_456_000, 123_456_789] {
            let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
                + chrono::Duration::nanoseconds(nanos);
            assert_eq!(
                Rfc3339(t).to_string(),
                t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            );
        }
    }
}

//! Helpers for testing jobs and their failure scenarios (feature `testing`): a wall clock
//! you drive, one execution run directly through the real pipeline, and backends that fail
//! on demand.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
//! use chrono::{TimeZone, Utc};
//! use tickguard::{Job, JobContext, JobError, RetryPolicy, Schedule, store::Status, testing::Run};
//!
//! // The API fails once, then answers.
//! let calls = Arc::new(AtomicU32::new(0));
//! let c = calls.clone();
//! let job = Job::new("sync", Schedule::every(std::time::Duration::from_secs(60)).unwrap(), move |_ctx: JobContext| {
//!     let call = c.fetch_add(1, Ordering::SeqCst);
//!     async move {
//!         if call == 0 { Err(JobError::transient("timeout")) } else { Ok(()) }
//!     }
//! })
//! .retry(RetryPolicy::attempts(3));
//!
//! let tick = Utc.with_ymd_and_hms(2026, 1, 1, 2, 0, 0).unwrap();
//! let run = Run::new(job, tick).run().await;
//! let record = run.record().unwrap();
//! assert_eq!(record.status, Status::Completed);
//! assert_eq!(record.attempts, 2); // failed once, retried once
//! # }
//! ```
//!
//! A whole scheduler runs under tokio's paused clock with a [`TestClock`]: sleeps return as
//! soon as every task waits, so an hour of ticks takes milliseconds, and the clock can jump
//! as an NTP correction or a suspended VM would make it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! use std::{sync::{Arc, Mutex}, time::Duration};
//! use chrono::{TimeZone, Utc};
//! use tickguard::{Job, JobContext, Schedule, Scheduler, testing::TestClock};
//!
//! let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
//! let fired = Arc::new(Mutex::new(Vec::new()));
//! let f = fired.clone();
//! let job = Job::new("every_10s", Schedule::every(Duration::from_secs(10)).unwrap(), move |ctx: JobContext| {
//!     f.lock().unwrap().push(ctx.scheduled_at());
//!     async { Ok(()) }
//! });
//! let scheduler = Scheduler::builder().discover(false).clock(clock.clone()).job(job).build().await.unwrap();
//! scheduler.run_until(tokio::time::sleep(Duration::from_secs(35))).await.unwrap();
//! let seconds: Vec<i64> = fired.lock().unwrap().iter().map(|t| t.timestamp() % 60).collect();
//! assert_eq!(seconds, [10, 20, 30]);
//! # }
//! ```

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use crate::clock::TestClock;
use crate::{
    executor::{self, Executed, JobEntry, Runtime},
    future::BoxFuture,
    job::Job,
    lock::{Acquired, InProcessLock, Lease, LockBackend, LockError},
    metrics::SkipReason,
    state::{GivenTo, StateMap, StateValue},
    store::{
        CancelKind, CancelRequest, Claim, ClaimRequest, ExecutionDetail, ExecutionRecord,
        ExecutionRef, ExecutionStore, Finish, HistoryPage, HistoryQuery, Interrupted, JobRecord,
        JobRegistration, JobSummary, LedgerTick, MemoryStore, OnceScope, OnceState, Pause,
        PruneReport, PruneRequest, Status, StoreError,
    },
};

/// One execution of a job, run directly (no scheduler, no waiting for the tick) through the
/// real pipeline: lock, claim, attempts with retries under the timeout, record, release. By
/// default on fresh in-memory backends; give it your own (a [`FaultyLock`], a
/// [`FaultyStore`], a shared [`MemoryStore`]) to test what a failure does, or to run the
/// same tick twice.
#[must_use = "call .run().await"]
pub struct Run {
    job: Job,
    tick: DateTime<Utc>,
    store: Arc<dyn ExecutionStore>,
    lock: Arc<dyn LockBackend>,
    earlier_attempts: u32,
    checkpoint: Option<String>,
    instance_id: String,
    liveness: Duration,
    state: StateMap,
}

impl Run {
    /// An execution of `job` for `tick`.
    pub fn new(job: impl Into<Job>, tick: DateTime<Utc>) -> Self {
        Self {
            job: job.into(),
            tick,
            store: Arc::new(MemoryStore::new()),
            lock: Arc::new(InProcessLock::new()),
            earlier_attempts: 0,
            checkpoint: None,
            instance_id: "test-instance".to_owned(),
            liveness: Duration::from_secs(30),
            state: StateMap::given_to(GivenTo::Run),
        }
    }

    /// Runs on `store` (pass an `Arc` to keep a handle and read it after). With
    /// [`Run::after_attempts`] or [`Run::checkpoint`], the earlier execution is recorded
    /// through this store first (a claim, a checkpoint, a finish): a [`FaultyStore`]'s armed
    /// faults apply to those calls too.
    pub fn store(mut self, store: impl ExecutionStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    /// Runs under `lock` (used if the job has `lock`).
    pub fn lock(mut self, lock: impl LockBackend) -> Self {
        self.lock = Arc::new(lock);
        self
    }

    /// Resumes the execution as if earlier owners (that crashed, say) made `attempts`
    /// attempts: the run's first attempt is `attempts + 1`, and the retry budget counts them.
    /// Idempotent jobs only (their execution id is the tick's).
    pub fn after_attempts(mut self, attempts: u32) -> Self {
        self.earlier_attempts = attempts;
        self
    }

    /// Resumes the execution from `state`, as if an earlier owner saved it with
    /// `ctx.checkpoint(..)` before it crashed (so at least one earlier attempt is counted).
    /// Idempotent jobs only.
    pub fn checkpoint<T: Serialize + ?Sized>(mut self, state: &T) -> Self {
        self.checkpoint = Some(serde_json::to_string(state).unwrap_or_else(|e| {
            panic!("the checkpoint does not serialize to JSON: {e}");
        }));
        self
    }

    /// Gives the job `value`, for its [`State<T>`](crate::State) arguments of that type, as
    /// [`SchedulerBuilder::state`](crate::SchedulerBuilder::state) does. The run does not
    /// check that every argument's value was given: an attempt whose state is missing fails
    /// with a permanent error that names the type.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use chrono::{TimeZone, Utc};
    /// use tickguard::{Job, Schedule, State, store::Status, testing::Run};
    ///
    /// struct Limit(u32);
    ///
    /// let job = Job::new("bounded", Schedule::cron("0 0 * * * *").unwrap(), |State(limit): State<Limit>| async move {
    ///     assert_eq!(limit.0, 10);
    ///     Ok(())
    /// });
    /// let tick = Utc.with_ymd_and_hms(2026, 1, 1, 2, 0, 0).unwrap();
    /// let run = Run::new(job, tick).state(Limit(10)).run().await;
    /// assert_eq!(run.record().unwrap().status, Status::Completed);
    /// # }
    /// ```
    pub fn state<T: StateValue>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// The instance id the run reports (default `test-instance`).
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = id.into();
        self
    }

    /// Runs the execution to its end (retries, backoff and timeouts take their time: under
    /// `tokio::time::pause`, they pass at once) and reports what the store recorded.
    ///
    /// Panics if `after_attempts` or `checkpoint` was set for a job that is not
    /// idempotent, or the store cannot be reached while setting them up.
    pub async fn run(self) -> RunReport {
        if self.earlier_attempts > 0 || self.checkpoint.is_some() {
            self.seed().await;
        }
        let mut rt = Runtime::direct(
            self.lock,
            self.store.clone(),
            self.instance_id.into(),
            self.liveness,
        );
        rt.state = Arc::new(self.state);
        let stop = Arc::new(CancellationToken::new());
        let entry = JobEntry::new(self.job, stop, CancellationToken::new(), self.tick);
        let executed = executor::execute(&rt, &entry, self.tick, true, None, None).await;
        let record = match &executed {
            Executed::Ran { execution_id } => {
                self.store.execution(execution_id).await.ok().flatten()
            }
            Executed::Skipped(_) => None,
        };
        RunReport {
            skipped: match executed {
                Executed::Skipped(reason) => Some(reason),
                Executed::Ran { .. } => None,
            },
            record,
        }
    }

    /// Records an interrupted execution of the tick with the earlier attempts and checkpoint.
    async fn seed(&self) {
        let Some(key) = &self.job.key else {
            panic!(
                "Run::after_attempts and Run::checkpoint resume an execution by its id: job `{}` \
                 must be idempotent",
                self.job.name
            );
        };
        let id = key.render(&self.job.name, self.tick, self.job.schedule.zone());
        let request = ClaimRequest::new(&self.job.name, &id, self.tick, "earlier-owner")
            .liveness(self.liveness);
        let fence = match self.store.claim(&request).await {
            Ok(Claim::Acquired(claimed)) => claimed.fence,
            other => panic!("cannot set up the earlier execution: {other:?}"),
        };
        let exec = ExecutionRef {
            job: self.job.name.clone(),
            execution_id: id,
            fence,
        };
        if let Some(state) = &self.checkpoint {
            self.store
                .checkpoint(&exec, state)
                .await
                .unwrap_or_else(|e| panic!("cannot set up the checkpoint: {e}"));
        }
        // An owner that saved a checkpoint made at least one attempt.
        let attempts = if self.checkpoint.is_some() {
            self.earlier_attempts.max(1)
        } else {
            self.earlier_attempts
        };
        let interrupted = Finish::new(
            Status::Cancelled,
            attempts,
            Some("earlier owner interrupted (testing::Run)"),
        );
        self.store
            .finish(&exec, &interrupted)
            .await
            .unwrap_or_else(|e| panic!("cannot set up the earlier execution: {e}"));
    }
}

/// What a [`Run`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RunReport {
    /// Why the tick was not run (the lock was held, the tick was done already, a backend was
    /// unreachable), if it was not.
    pub skipped: Option<SkipReason>,
    /// The execution as the store recorded it, if the tick was claimed.
    pub record: Option<ExecutionRecord>,
}

impl RunReport {
    /// The execution as the store recorded it; `None` if the tick was skipped.
    pub fn record(&self) -> Option<&ExecutionRecord> {
        self.record.as_ref()
    }
}

/// The faults a [`FaultyLock`] or [`FaultyStore`] injects: the next `n` operations fail, or
/// are delayed.
#[derive(Debug, Default)]
struct Faults {
    failing: AtomicU32,
    delayed: Mutex<Option<(u32, Duration)>>,
}

impl Faults {
    /// Takes one failure if any is armed.
    fn fail(&self) -> bool {
        self.failing
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Takes one delay if any is armed.
    fn delay(&self) -> Option<Duration> {
        let mut delayed = self.delayed.lock().unwrap_or_else(|p| p.into_inner());
        let (left, by) = (*delayed)?;
        *delayed = (left > 1).then_some((left - 1, by));
        Some(by)
    }
}

/// Runs `op` unless a fault is armed. `op` makes the operation's future only when it is to
/// run: a backend may do its work when its method is called (the in-memory ones do), and a
/// failed operation must change nothing.
async fn faulty<T, Fut: Future<Output = T>>(
    faults: &Faults,
    fail: impl FnOnce() -> T,
    op: impl FnOnce() -> Fut,
) -> T {
    if let Some(by) = faults.delay() {
        tokio::time::sleep(by).await;
    }
    if faults.fail() {
        return fail();
    }
    op().await
}

/// A lock backend that fails on demand, around a real one (default: [`InProcessLock`]), so a
/// test can check what its job does when the lock is unreachable, slow, or lost mid-run.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use std::sync::Arc;
/// use tickguard::testing::FaultyLock;
///
/// let lock = Arc::new(FaultyLock::in_process());
/// lock.fail_next(2); // the next two acquire/extend/release calls fail
/// lock.lose_lease(); // from now on, renewals report the lease gone
/// // Scheduler::builder().lock_backend(lock.clone()) ..
/// # }
/// ```
#[derive(Debug, Default)]
pub struct FaultyLock<L = InProcessLock> {
    inner: L,
    faults: Faults,
    lost: AtomicBool,
}

impl FaultyLock {
    /// Around a fresh [`InProcessLock`].
    pub fn in_process() -> Self {
        Self::default()
    }
}

impl<L: LockBackend> FaultyLock<L> {
    /// Wraps `inner`, with no fault armed.
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            faults: Faults::default(),
            lost: AtomicBool::new(false),
        }
    }

    /// The next `n` operations (acquire, extend, release) fail with an unreachable backend.
    pub fn fail_next(&self, n: u32) {
        self.faults.failing.store(n, Ordering::SeqCst);
    }

    /// The next `n` operations each take `by` longer.
    pub fn delay_next(&self, n: u32, by: Duration) {
        *self
            .faults
            .delayed
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = (n > 0).then_some((n, by));
    }

    /// From now on, every renewal reports the lease gone (as after an expiry, or another
    /// owner taking it), until [`FaultyLock::restore`].
    pub fn lose_lease(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Disarms every fault.
    pub fn restore(&self) {
        self.fail_next(0);
        self.delay_next(0, Duration::ZERO);
        self.lost.store(false, Ordering::SeqCst);
    }
}

fn lock_down() -> LockError {
    LockError::new("lock backend unreachable (FaultyLock)")
}

impl<L: LockBackend> LockBackend for FaultyLock<L> {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Acquired, LockError>> {
        Box::pin(faulty(
            &self.faults,
            || Err(lock_down()),
            move || self.inner.acquire(name, owner, ttl),
        ))
    }

    fn extend<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>> {
        Box::pin(async move {
            if self.lost.load(Ordering::SeqCst) {
                return Ok(false);
            }
            faulty(
                &self.faults,
                || Err(lock_down()),
                || self.inner.extend(lease, ttl),
            )
            .await
        })
    }

    fn release<'a>(
        &'a self,
        lease: &'a Lease,
        hold_for: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>> {
        Box::pin(faulty(
            &self.faults,
            || Err(lock_down()),
            move || self.inner.release(lease, hold_for),
        ))
    }

    fn describe(&self) -> String {
        format!("faulty({})", self.inner.describe())
    }

    fn is_process_local(&self) -> bool {
        self.inner.is_process_local()
    }
}

/// An execution store that fails on demand, around a real one (default: [`MemoryStore`]):
/// claims, or writes (heartbeat, checkpoint, `once`, finish), fail or are delayed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use std::sync::Arc;
/// use tickguard::testing::FaultyStore;
///
/// let store = Arc::new(FaultyStore::in_memory());
/// store.fail_next_writes(3); // e.g. the next checkpoints or the finish
/// // Scheduler::builder().store(store.clone()) .., or testing::Run::new(..).store(store.clone())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct FaultyStore<S = MemoryStore> {
    inner: S,
    claims: Faults,
    writes: Faults,
    announces: Faults,
    hang_heartbeats: AtomicBool,
}

impl FaultyStore {
    /// Around a fresh [`MemoryStore`].
    pub fn in_memory() -> Self {
        Self::default()
    }
}

impl<S: ExecutionStore> FaultyStore<S> {
    /// Wraps `inner`, with no fault armed.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            claims: Faults::default(),
            writes: Faults::default(),
            announces: Faults::default(),
            hang_heartbeats: AtomicBool::new(false),
        }
    }

    /// The next `n` claims fail with an unreachable store.
    pub fn fail_next_claims(&self, n: u32) {
        self.claims.failing.store(n, Ordering::SeqCst);
    }

    /// The next `n` claims each take `by` longer (a slow or overloaded database).
    pub fn delay_next_claims(&self, n: u32, by: Duration) {
        *self
            .claims
            .delayed
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = (n > 0).then_some((n, by));
    }

    /// The next `n` writes (heartbeat, checkpoint, `once`, finish) fail with an unreachable
    /// store.
    pub fn fail_next_writes(&self, n: u32) {
        self.writes.failing.store(n, Ordering::SeqCst);
    }

    /// The next `n` writes each take `by` longer.
    pub fn delay_next_writes(&self, n: u32, by: Duration) {
        *self
            .writes
            .delayed
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = (n > 0).then_some((n, by));
    }

    /// The next `n` announces (a hand-back at shutdown telling the other instances) fail
    /// with an unreachable store.
    pub fn fail_next_announces(&self, n: u32) {
        self.announces.failing.store(n, Ordering::SeqCst);
    }

    /// From now on, heartbeats never answer (a store that stopped responding mid-run), until
    /// [`FaultyStore::restore`].
    pub fn hang_heartbeats(&self) {
        self.hang_heartbeats.store(true, Ordering::SeqCst);
    }

    /// Disarms every fault.
    pub fn restore(&self) {
        self.fail_next_claims(0);
        self.delay_next_claims(0, Duration::ZERO);
        self.fail_next_writes(0);
        self.delay_next_writes(0, Duration::ZERO);
        self.fail_next_announces(0);
        self.hang_heartbeats.store(false, Ordering::SeqCst);
    }

    /// The store it wraps.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

fn store_down() -> StoreError {
    StoreError::unavailable("execution store unreachable (FaultyStore)", None)
}

impl<S: ExecutionStore> ExecutionStore for FaultyStore<S> {
    fn register<'a>(
        &'a self,
        job: &'a JobRegistration<'a>,
    ) -> BoxFuture<'a, Result<JobRecord, StoreError>> {
        self.inner.register(job)
    }

    fn register_all<'a>(
        &'a self,
        jobs: &'a [JobRegistration<'a>],
    ) -> BoxFuture<'a, Result<Vec<JobRecord>, StoreError>> {
        self.inner.register_all(jobs)
    }

    fn claim<'a>(
        &'a self,
        request: &'a ClaimRequest<'a>,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        Box::pin(faulty(
            &self.claims,
            || Err(store_down()),
            || self.inner.claim(request),
        ))
    }

    fn record_ticks<'a>(
        &'a self,
        ticks: &'a [LedgerTick],
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(faulty(
            &self.writes,
            || Err(store_down()),
            move || self.inner.record_ticks(ticks),
        ))
    }

    fn heartbeat<'a>(&'a self, exec: &'a ExecutionRef) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if self.hang_heartbeats.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            faulty(
                &self.writes,
                || Err(store_down()),
                || self.inner.heartbeat(exec),
            )
            .await
        })
    }

    fn checkpoint<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        state: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(faulty(
            &self.writes,
            || Err(store_down()),
            || self.inner.checkpoint(exec, state),
        ))
    }

    fn last_checkpoint<'a>(
        &'a self,
        exec: &'a ExecutionRef,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        self.inner.last_checkpoint(exec)
    }

    fn once_begin<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        key: &'a str,
        scope: OnceScope,
    ) -> BoxFuture<'a, Result<OnceState, StoreError>> {
        Box::pin(faulty(
            &self.writes,
            || Err(store_down()),
            move || self.inner.once_begin(exec, key, scope),
        ))
    }

    fn once_end<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        key: &'a str,
        scope: OnceScope,
        done: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(faulty(
            &self.writes,
            || Err(store_down()),
            move || self.inner.once_end(exec, key, scope, done),
        ))
    }

    fn finish<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        finish: &'a Finish<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(faulty(
            &self.writes,
            || Err(store_down()),
            || self.inner.finish(exec, finish),
        ))
    }

    fn executions<'a>(
        &'a self,
        job: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ExecutionRecord>, StoreError>> {
        self.inner.executions(job, limit)
    }

    fn execution<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ExecutionRecord>, StoreError>> {
        self.inner.execution(id)
    }

    fn dead_letters<'a>(
        &'a self,
        job: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ExecutionRecord>, StoreError>> {
        self.inner.dead_letters(job, limit)
    }

    fn jobs<'a>(&'a self) -> BoxFuture<'a, Result<Vec<JobSummary>, StoreError>> {
        self.inner.jobs()
    }

    fn job<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<JobSummary>, StoreError>> {
        self.inner.job(name)
    }

    fn history<'a>(
        &'a self,
        query: &'a HistoryQuery,
    ) -> BoxFuture<'a, Result<HistoryPage, StoreError>> {
        self.inner.history(query)
    }

    fn execution_detail<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ExecutionDetail>, StoreError>> {
        self.inner.execution_detail(id)
    }

    fn pause<'a>(
        &'a self,
        job: &'a str,
        note: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<JobSummary, StoreError>> {
        self.inner.pause(job, note, by)
    }

    fn resume<'a>(&'a self, job: &'a str) -> BoxFuture<'a, Result<JobSummary, StoreError>> {
        self.inner.resume(job)
    }

    fn trigger<'a>(
        &'a self,
        job: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>> {
        self.inner.trigger(job, by)
    }

    fn rerun<'a>(
        &'a self,
        id: &'a str,
        force: bool,
        by: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>> {
        self.inner.rerun(id, force, by)
    }

    fn prune<'a>(
        &'a self,
        request: &'a PruneRequest,
    ) -> BoxFuture<'a, Result<PruneReport, StoreError>> {
        Box::pin(faulty(
            &self.writes,
            || Err(store_down()),
            move || self.inner.prune(request),
        ))
    }

    fn paused<'a>(
        &'a self,
        jobs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<(String, Pause)>, StoreError>> {
        self.inner.paused(jobs)
    }

    fn request_cancel<'a>(
        &'a self,
        id: &'a str,
        kind: CancelKind,
        note: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>> {
        self.inner.request_cancel(id, kind, note, by)
    }

    fn cancel_requests<'a>(
        &'a self,
        jobs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<CancelRequest>, StoreError>> {
        self.inner.cancel_requests(jobs)
    }

    fn control_version<'a>(&'a self) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.inner.control_version()
    }
    fn announce<'a>(&'a self) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(faulty(
            &self.announces,
            || Err(store_down()),
            || self.inner.announce(),
        ))
    }

    fn interrupted<'a>(
        &'a self,
        jobs: &'a [String],
        liveness: Duration,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Interrupted>, StoreError>> {
        self.inner.interrupted(jobs, liveness, limit)
    }

    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    fn sql(&self) -> Option<crate::store::SqlStore> {
        self.inner.sql()
    }

    fn describe(&self) -> String {
        format!("faulty({})", self.inner.describe())
    }

    fn is_process_local(&self) -> bool {
        self.inner.is_process_local()
    }

    fn forget_once_steps<'a>(
        &'a self,
        jobs: &'a [String],
        older_than: Duration,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.inner.forget_once_steps(jobs, older_than)
    }
}

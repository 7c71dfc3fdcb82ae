//! [`JobContext`]: what a running job knows about its execution, and how it cooperates with
//! cancellation, checkpoints and exactly-once steps.

use std::{
    fmt,
    future::Future,
    sync::{Arc, OnceLock},
};

use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use tokio_util::sync::CancellationToken;

use crate::{
    job_error::{JobError, JobResult},
    metrics::ONCE_SKIPPED_TOTAL,
    state::{State, StateMap, StateValue},
    store::{CancelRequest, ExecutionRef, ExecutionStore, OnceScope, OnceState, StoreError},
};

/// Why a run was asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelReason {
    /// The scheduler is shutting down and the grace period ran out.
    Shutdown,
    /// The job's `timeout` passed.
    Timeout,
    /// The lease lock could no longer be proven held: another instance may hold it now.
    LockLost,
    /// The store refused a write: a newer claim took the execution over.
    Fenced,
    /// The store could not be reached for so long that another instance may soon count
    /// this run's owner as gone and take the execution over.
    StoreUnreachable,
    /// A newer tick of the job asked this run to stop (`overlap = "cancel_other"`), so that
    /// it runs instead.
    Superseded,
    /// An operator asked the run to stop (`tickguard cancel`,
    /// [`ExecutionStore::request_cancel`](crate::store::ExecutionStore::request_cancel)).
    Requested,
}

impl CancelReason {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shutdown => "shutdown",
            Self::Timeout => "timeout",
            Self::LockLost => "lock_lost",
            Self::Fenced => "fenced",
            Self::StoreUnreachable => "store_unreachable",
            Self::Superseded => "superseded",
            Self::Requested => "requested",
        }
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The job and execution id for an event about `exec`, or `None`s (fields left out) when
/// the current span is enabled: the execution's span, or an attempt's inside it, already
/// names the execution on every line. A subscriber that filters out INFO spans (one at
/// WARN) disables them, and then the event names the execution itself.
pub(crate) type Identity<'a> = (
    Option<tracing::field::DisplayValue<&'a str>>,
    Option<tracing::field::DisplayValue<&'a str>>,
);

/// See [`Identity`].
pub(crate) fn identity_unless_in_span(exec: &ExecutionRef) -> Identity<'_> {
    if tracing::Span::current().is_disabled() {
        (
            Some(tracing::field::display(exec.job.as_str())),
            Some(tracing::field::display(exec.execution_id.as_str())),
        )
    } else {
        (None, None)
    }
}

/// One execution's shared state; every attempt's context points at it.
pub(crate) struct Execution {
    pub(crate) exec: ExecutionRef,
    pub(crate) scheduled_at: DateTime<Utc>,
    pub(crate) instance_id: Arc<str>,
    /// This run's own cancellation: timeout, lock loss, fence rejection.
    pub(crate) cancel: CancellationToken,
    /// The scheduler's, shared by every run: fired when shutdown's grace period ran out.
    /// Kept apart from `cancel` (not a child token) so that starting a run takes no lock
    /// shared with every other run.
    pub(crate) stop: Arc<CancellationToken>,
    /// The job's firing token: cancelled as soon as shutdown begins, before the grace
    /// period; what [`JobContext::shutdown_requested`] waits on.
    pub(crate) draining: CancellationToken,
    pub(crate) reason: OnceLock<CancelReason>,
    /// What the run's end records as its error when a cancel request stopped it (see
    /// [`CancelRequest::describe`]).
    stop_note: OnceLock<String>,
    pub(crate) store: Arc<dyn ExecutionStore>,
    pub(crate) fence_rejections: metrics::Counter,
    /// Attempts made, counting those of earlier owners.
    pub(crate) attempts: std::sync::atomic::AtomicU32,
    /// How long the owner may go without a heartbeat before others count it gone.
    #[cfg_attr(not(any(feature = "postgres", feature = "sqlite")), allow(dead_code))]
    pub(crate) liveness: std::time::Duration,
}

impl Execution {
    /// The shared state of a claimed execution. One argument per field the run shares with
    /// the scheduler (its identity, store, liveness, stop token and fence counter): a struct
    /// to group them would only be built here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        exec: ExecutionRef,
        scheduled_at: DateTime<Utc>,
        previous_attempts: u32,
        instance_id: Arc<str>,
        store: Arc<dyn ExecutionStore>,
        liveness: std::time::Duration,
        stop: Arc<CancellationToken>,
        draining: CancellationToken,
        fence_rejections: metrics::Counter,
    ) -> Self {
        Self {
            draining,
            exec,
            scheduled_at,
            instance_id,
            cancel: CancellationToken::new(),
            stop,
            reason: OnceLock::new(),
            stop_note: OnceLock::new(),
            store,
            fence_rejections,
            attempts: std::sync::atomic::AtomicU32::new(previous_attempts),
            liveness,
        }
    }

    /// Asks the run to stop; the first reason given is the one kept.
    pub(crate) fn cancel(&self, reason: CancelReason) {
        let _ = self.reason.set(reason);
        self.cancel.cancel();
    }

    /// Asks the run to stop at `request` (an operator's, or a newer tick's): its reason is
    /// the request's, and its end records who asked. `false` if a request stopped it before.
    pub(crate) fn stop_requested(&self, request: &CancelRequest) -> bool {
        if self.stop_note.set(request.describe()).is_err() {
            return false;
        }
        self.cancel(request.kind.reason());
        true
    }

    /// What a cancel request that stopped the run said, as its end records it.
    pub(crate) fn stop_note(&self) -> Option<&str> {
        self.stop_note.get().map(String::as_str)
    }

    /// Why the run was asked to stop. A cancellation without a recorded reason came from
    /// the scheduler's token: shutdown.
    pub(crate) fn reason(&self) -> Option<CancelReason> {
        match self.reason.get() {
            Some(reason) => Some(*reason),
            None if self.stop.is_cancelled() => Some(CancelReason::Shutdown),
            None => None,
        }
    }

    /// Resolves when the run is asked to stop, for any reason.
    pub(crate) async fn cancelled(&self) {
        tokio::select! {
            () = self.cancel.cancelled() => {}
            () = self.stop.cancelled() => {}
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled() || self.stop.is_cancelled()
    }

    /// Whether the scheduler began to shut down: the run may finish within the grace, but
    /// is not retried here, and an error it returns hands its execution back.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Turns a store error into a job error; a fence rejection also stops the run.
    pub(crate) fn store_error(&self, error: StoreError) -> JobError {
        if error.is_fenced() {
            if self.reason() != Some(CancelReason::Fenced) {
                self.fence_rejections.increment(1);
                let (job, execution_id) = identity_unless_in_span(&self.exec);
                tracing::warn!(
                    job,
                    execution_id,
                    fence = self.exec.fence,
                    "fenced out: another claim took this execution over; stopping this run"
                );
            }
            self.cancel(CancelReason::Fenced);
            JobError::permanent(error)
        } else {
            JobError::transient(error)
        }
    }
}

/// What a running job knows about its execution.
///
/// Passed to every attempt of a `#[scheduled]` fn. Cheap to clone.
#[derive(Clone)]
pub struct JobContext {
    pub(crate) inner: Arc<Execution>,
    pub(crate) attempt: u32,
    /// The application state given to the scheduler (or the test kit's run).
    state: Arc<StateMap>,
}

impl JobContext {
    /// The context of attempt `attempt` of the execution, with the application `state`.
    pub(crate) fn new(inner: Arc<Execution>, attempt: u32, state: Arc<StateMap>) -> Self {
        Self {
            inner,
            attempt,
            state,
        }
    }

    /// The value of type `T` given to
    /// [`SchedulerBuilder::state`](crate::SchedulerBuilder::state), if one was.
    ///
    /// Prefer a [`State<T>`] argument: the builder checks that the state every job's
    /// arguments take was given, while a value asked for here may be missing at run time.
    /// This is for code that has the context at hand, such as a helper a job calls.
    ///
    /// ```no_run
    /// # struct Config { region: String }
    /// async fn region(ctx: &tickguard::JobContext) -> Result<String, tickguard::JobError> {
    ///     let config = ctx
    ///         .state::<Config>()
    ///         .ok_or_else(|| tickguard::JobError::permanent("no Config was given"))?;
    ///     Ok(config.region.clone())
    /// }
    /// ```
    pub fn state<T: StateValue>(&self) -> Option<State<T>> {
        self.state.get()
    }

    /// The application state given to the scheduler (or the test kit's run).
    pub(crate) fn states(&self) -> &StateMap {
        &self.state
    }

    /// The job's name.
    pub fn job(&self) -> &str {
        &self.inner.exec.job
    }

    /// The execution's id: `{job}@{tick}` (or the job's key template) for idempotent jobs,
    /// unique per run otherwise. Stable across retries and takeovers.
    pub fn execution_id(&self) -> &str {
        &self.inner.exec.execution_id
    }

    /// The tick this run is for: the scheduled instant, not when it started.
    pub fn scheduled_at(&self) -> DateTime<Utc> {
        self.inner.scheduled_at
    }

    /// The attempt, from 1. Counts attempts of earlier owners of the same execution.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The fencing token of this run's claim; strictly increasing per job.
    pub fn fence(&self) -> u64 {
        self.inner.exec.fence
    }

    /// The instance running the job.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// Resolves when the run should stop: lock loss, timeout, fence rejection or shutdown.
    /// A job that checks it (or `select!`s on it) stops cleanly; one that does not is dropped
    /// after a grace period.
    ///
    /// ```no_run
    /// # async fn step() {}
    /// # async fn job(ctx: tickguard::JobContext) -> tickguard::JobResult {
    /// for _ in 0..1000 {
    ///     tokio::select! {
    ///         _ = ctx.cancelled() => return Err(tickguard::JobError::transient("stopped")),
    ///         _ = step() => {}
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + '_ {
        self.inner.cancelled()
    }

    /// Resolves as soon as the scheduler begins to shut down (SIGTERM, say), while the run
    /// may still go on: it has the shutdown grace period to finish, or to
    /// [`hand_back`](Self::hand_back) its execution, which saves its progress for another
    /// instance to resume from. When the grace runs out, [`cancelled`](Self::cancelled)
    /// resolves too.
    ///
    /// ```no_run
    /// # async fn process(_: u64) {}
    /// # async fn job(ctx: tickguard::JobContext) -> tickguard::JobResult {
    /// let start: u64 = ctx.last_checkpoint().await?.unwrap_or(0);
    /// for record in start..1000 {
    ///     if ctx.is_shutdown_requested() {
    ///         return ctx.hand_back(&record).await; // another instance starts at `record`
    ///     }
    ///     process(record).await;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn shutdown_requested(&self) -> impl Future<Output = ()> + Send + '_ {
        self.inner.draining.cancelled()
    }

    /// Saves `progress` as the execution's checkpoint and returns the error that hands the
    /// execution back ([`JobError::handed_back`]): for a run that stops because the
    /// scheduler is shutting down (see [`shutdown_requested`](Self::shutdown_requested)).
    ///
    /// The run is then recorded CANCELLED ("handed back at shutdown"), not retried here, its
    /// lease released, and the other instances told through the store: one of them resumes
    /// the execution (an idempotent job's, or one an operator asked for) from `progress`
    /// within moments. The attempt it cut short does not count against the retry budget. If
    /// the checkpoint cannot be saved, the execution is handed back all the same, and
    /// resumes from the last checkpoint that was. A job that is not idempotent has no
    /// execution another instance could resume: its run is recorded CANCELLED, and a WARN
    /// says so. Outside a shutdown, the returned error fails the run (it is not retried).
    /// See [semantics](crate::docs::semantics#shutdown).
    pub async fn hand_back<T: Serialize + ?Sized>(&self, progress: &T) -> JobResult {
        match self.checkpoint(progress).await {
            Ok(()) => Err(JobError::handed_back("progress saved")),
            Err(e) => Err(JobError::handed_back(format!(
                "progress not saved ({e}); resumed from the last checkpoint saved"
            ))),
        }
    }

    /// Whether the scheduler has begun to shut down; see
    /// [`shutdown_requested`](Self::shutdown_requested).
    pub fn is_shutdown_requested(&self) -> bool {
        self.inner.draining.is_cancelled()
    }

    /// Whether the run has been asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    /// Why the run was asked to stop, if it was.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.inner.reason()
    }

    /// Saves progress, so that a run that takes this execution over (after a crash, or a
    /// retry) resumes from here. Fenced: a stale run gets an error and is stopped.
    pub async fn checkpoint<T: Serialize + ?Sized>(&self, state: &T) -> Result<(), JobError> {
        let json = serde_json::to_string(state).map_err(JobError::permanent)?;
        self.inner
            .store
            .checkpoint(&self.inner.exec, &json)
            .await
            .map_err(|e| self.inner.store_error(e))
    }

    /// The last progress saved for this execution, by this run or an earlier owner.
    pub async fn last_checkpoint<T: DeserializeOwned>(&self) -> Result<Option<T>, JobError> {
        let json = self
            .inner
            .store
            .last_checkpoint(&self.inner.exec)
            .await
            .map_err(|e| self.inner.store_error(e))?;
        json.map(|j| serde_json::from_str(&j).map_err(JobError::permanent))
            .transpose()
    }

    /// Runs `step` at most once per `key` **within this execution** (its attempts, its
    /// resumption after a shutdown, its takeover by another instance after a crash) and
    /// returns its output; `Ok(None)` if the step was already done in this execution, which
    /// is logged at INFO and counted in `tickguard_once_skipped_total{job}`. A step that
    /// fails may run again. The next execution of the job (the next tick) runs it again.
    ///
    /// The key is scoped like [`JobContext::idempotency_key`]: the store records it as
    /// `{execution_id}/{key}`, and forgets it once the execution ended longer ago than the
    /// scheduler's [`once_retention`](crate::SchedulerBuilder::once_retention). For a step
    /// meant to run once ever, across every execution, use [`JobContext::once_ever`].
    ///
    /// One limit is honest and inherent: if the process dies after the step's side effect
    /// and before the store records it, the step is in doubt and runs again. Pass
    /// [`JobContext::idempotency_key`] to APIs that deduplicate themselves (payment APIs do)
    /// to close that gap.
    ///
    /// A nightly job charges each batch every night; a retry or a takeover in the middle of
    /// a night does not charge the batches that night already charged:
    ///
    /// ```no_run
    /// # async fn charge(_: u64, _: &str) -> Result<(), tickguard::JobError> { Ok(()) }
    /// # async fn job(ctx: tickguard::JobContext) -> tickguard::JobResult {
    /// # let batches = [1_u64, 2, 3];
    /// for batch in batches {
    ///     ctx.once(&format!("charge-{batch}"), charge(batch, &ctx.idempotency_key(&batch)))
    ///         .await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn once<T, Fut>(&self, key: &str, step: Fut) -> Result<Option<T>, JobError>
    where
        Fut: Future<Output = Result<T, JobError>>,
    {
        self.step(key, OnceScope::Execution, step).await
    }

    /// Runs `step` at most once per `key` **ever**: across every execution of every job and
    /// every instance sharing the store, and returns its output; `Ok(None)` if the step was
    /// already done, by this or any earlier execution (logged and counted as for
    /// [`JobContext::once`]). A step that fails may run again. Its record is kept forever.
    ///
    /// Use it for what must happen once in the life of the data, whichever tick gets there
    /// first: a one-time backfill, a welcome message to a customer, a migration of a
    /// record. Everything done per tick belongs in [`JobContext::once`]. The same honest
    /// limit applies: a process that dies between the side effect and its record runs the
    /// step again.
    ///
    /// ```no_run
    /// # async fn backfill(_: &str) -> Result<(), tickguard::JobError> { Ok(()) }
    /// # async fn job(ctx: tickguard::JobContext) -> tickguard::JobResult {
    /// ctx.once_ever("backfill-invoice-totals-2026", backfill("invoices")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn once_ever<T, Fut>(&self, key: &str, step: Fut) -> Result<Option<T>, JobError>
    where
        Fut: Future<Output = Result<T, JobError>>,
    {
        self.step(key, OnceScope::Ever, step).await
    }

    /// Runs `step` at most once per `key` in `scope`: [`JobContext::once`] and
    /// [`JobContext::once_ever`].
    async fn step<T, Fut>(
        &self,
        key: &str,
        scope: OnceScope,
        step: Fut,
    ) -> Result<Option<T>, JobError>
    where
        Fut: Future<Output = Result<T, JobError>>,
    {
        let exec = &self.inner.exec;
        let store = &self.inner.store;
        match store
            .once_begin(exec, key, scope)
            .await
            .map_err(|e| self.inner.store_error(e))?
        {
            OnceState::Done => {
                let (job, execution_id) = identity_unless_in_span(exec);
                tracing::info!(
                    job,
                    execution_id,
                    key,
                    scope = ?scope,
                    "step already done; skipping it"
                );
                metrics::counter!(ONCE_SKIPPED_TOTAL, "job" => exec.job.clone()).increment(1);
                return Ok(None);
            }
            OnceState::Busy => {
                return Err(JobError::transient(format!(
                    "step `{key}` is being run by another live execution"
                )));
            }
            OnceState::Acquired => {}
        }
        let result = step.await;
        store
            .once_end(exec, key, scope, result.is_ok())
            .await
            .map_err(|e| self.inner.store_error(e))?;
        result.map(Some)
    }

    /// A transaction on the execution store's database that commits only if this run still
    /// holds its execution (feature `postgres` or `sqlite`, with a
    /// [`PostgresStore`](crate::store::PostgresStore) or
    /// [`SqliteStore`](crate::store::SqliteStore)).
    ///
    /// Effects the job writes to the same database through it happen exactly once per
    /// execution, even when the instance is paused or partitioned past its lease and another
    /// instance takes the execution over: the stale run's commit locks the execution's row,
    /// finds the fence moved on, rolls back and fails (and the run is stopped). On
    /// PostgreSQL, a transaction left idle longer than the scheduler's liveness is ended by
    /// the server; on SQLite it holds the database's write lock from its start.
    ///
    /// ```no_run
    /// # async fn job(ctx: tickguard::JobContext) -> tickguard::JobResult {
    /// use tickguard::ResultExt;
    ///
    /// let mut tx = ctx.transaction::<tickguard::sqlx::Postgres>().await?;
    /// tickguard::sqlx::query("INSERT INTO charges (order_id, tick) VALUES ($1, $2)")
    ///     .bind(17_i64)
    ///     .bind(ctx.scheduled_at())
    ///     .execute(&mut *tx)
    ///     .await
    ///     .transient()?;
    /// tx.commit().await?; // fails, writing nothing, if another instance took over
    /// # Ok(()) }
    /// ```
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    pub async fn transaction<DB: crate::store::FencedDatabase>(
        &self,
    ) -> Result<crate::store::FencedTransaction<DB>, JobError> {
        crate::store::FencedTransaction::begin(self).await
    }

    /// A key that is the same for every attempt and every instance that runs this
    /// execution: pass it to external APIs that deduplicate requests.
    pub fn idempotency_key(&self, part: impl fmt::Display) -> String {
        format!("{}/{}", self.inner.exec.execution_id, part)
    }
}

impl fmt::Debug for JobContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("job", &self.job())
            .field("execution_id", &self.execution_id())
            .field("scheduled_at", &self.scheduled_at())
            .field("attempt", &self.attempt)
            .field("fence", &self.fence())
            .field("instance_id", &self.instance_id())
            .finish()
    }
}

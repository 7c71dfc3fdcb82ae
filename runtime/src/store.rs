//! The execution store: the record of every run, and what makes each tick's effects happen
//! once.
//!
//! Before a run starts, the executor *claims* its execution in the store. A claim reports
//! that the tick already completed (skip), that another execution of the job is live (skip:
//! one execution of a job at a time), or it inserts the execution, or takes over the
//! execution of an owner that is gone, and bumps the job's **fence**. Every later write of
//! the run (heartbeat, checkpoint, `once`, finish) carries that fence and is refused with
//! [`StoreError::Fenced`] once a newer claim moved it on: a paused or partitioned instance can
//! never commit stale work.

pub(crate) mod claim;
mod memory;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod migrate;
mod once_scope;
mod operations;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::{error::Error as StdError, fmt, time::Duration};

use chrono::{DateTime, Utc};
pub use memory::{MEMORY_ONCE_RETAINED, MEMORY_STORE_RETAINED, MemoryStore};
pub use once_scope::OnceScope;
pub use operations::{
    BadCursor, Cursor, ExecutionDetail, HistoryPage, HistoryQuery, JobSummary, LastOutcome, Pause,
    PruneReport, PruneRequest, Retention, RunOutcome, RunRecord,
};

#[cfg(feature = "postgres")]
pub(crate) use self::postgres::CONTROL_CHANNEL;
#[cfg(feature = "postgres")]
pub use self::postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use self::sqlite::SqliteStore;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use crate::transaction::{FencedDatabase, FencedTransaction, SqlStore};

use crate::{circuit_breaker::CircuitBreaker, future::BoxFuture};

/// What the executor asks of [`ExecutionStore::claim`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClaimRequest<'a> {
    /// The job's name.
    pub job: &'a str,
    /// The execution's id: `{job}@{tick}` or the job's key template for idempotent jobs,
    /// unique per run otherwise.
    pub execution_id: &'a str,
    /// The tick this run is for.
    pub scheduled_at: DateTime<Utc>,
    /// Who runs it (instance and run), recorded in the execution.
    pub owner: &'a str,
    /// Whether an execution with this id that ran to its end means the tick is done.
    pub idempotent: bool,
    /// An owner whose last heartbeat is older than this is gone, judged by the store's clock.
    pub liveness: Duration,
    /// The job's next fire time after this tick, recorded for operators (persistent stores).
    pub next_fire: Option<DateTime<Utc>>,
    /// Whether a store with a clock of its own refuses the claim of a tick that is not due
    /// yet by that clock ([`Claim::Early`]). The scheduler asks it, so that an instance
    /// whose clock runs ahead does no early work; a claim made on purpose ahead of time
    /// (a test's) does not.
    pub refuse_early: bool,
}

impl<'a> ClaimRequest<'a> {
    /// A request to claim `execution_id` of `job` for the tick `scheduled_at`.
    pub fn new(
        job: &'a str,
        execution_id: &'a str,
        scheduled_at: DateTime<Utc>,
        owner: &'a str,
    ) -> Self {
        Self {
            job,
            execution_id,
            scheduled_at,
            owner,
            idempotent: true,
            liveness: Duration::from_secs(30),
            next_fire: None,
            refuse_early: false,
        }
    }

    /// Sets whether the store refuses the claim of a tick not due yet by its clock.
    pub fn refuse_early(mut self, refuse: bool) -> Self {
        self.refuse_early = refuse;
        self
    }

    /// Sets the job's next fire time after this tick.
    pub fn next_fire(mut self, next_fire: Option<DateTime<Utc>>) -> Self {
        self.next_fire = next_fire;
        self
    }

    /// Sets whether an execution of this id that ran to its end means the tick is done.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Sets how long an owner may go without a heartbeat before it counts as gone.
    pub fn liveness(mut self, liveness: Duration) -> Self {
        self.liveness = liveness;
        self
    }
}

/// The answer to a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// This run owns the execution now.
    Acquired(Claimed),
    /// The execution already ran to its end (completed, failed after its last attempt, or
    /// timed out): the tick is done, and is not run again by another instance. An execution
    /// that was cancelled (shutdown, lock loss) or whose owner died can be claimed again and
    /// resumes.
    Done {
        /// How it ended.
        status: Status,
    },
    /// Another execution of the job is live.
    Busy {
        /// The live execution.
        execution_id: String,
    },
    /// The tick is not due yet by the store's clock (the claiming instance's clock runs
    /// ahead): nothing was claimed. Stores whose clock is the instances' own (memory,
    /// SQLite) never answer this.
    Early,
    /// The execution has no record, and its tick is at or before the latest tick of the
    /// job whose record a prune deleted: it may have run, and its record is gone, so it is
    /// not run (pruning never lets a tick run twice). Nothing was claimed.
    Pruned,
}

/// A successful claim.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claimed {
    /// The job's fence, now this run's: every later write must carry it.
    pub fence: u64,
    /// Attempts that earlier owners of this execution recorded.
    pub previous_attempts: u32,
    /// The last checkpoint of an earlier owner of this execution.
    pub checkpoint: Option<String>,
    /// Whether the execution existed before (an earlier owner died or failed).
    pub resumed: bool,
}

/// Names a claimed execution in later, fenced writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionRef {
    /// The job's name.
    pub job: String,
    /// The execution's id.
    pub execution_id: String,
    /// The fence the claim returned.
    pub fence: u64,
}

/// The state of an execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// A tick some instance fired that no run has claimed yet: the job's lock or the job was
    /// busy with another tick, or a backend could not be reached. It waits in the ledger for
    /// whoever holds or next takes the lock (see the docs on the ledger of ticks).
    Pending,
    /// Claimed and not finished.
    Running,
    /// Finished successfully.
    Completed,
    /// Failed after its last attempt: a dead letter.
    Failed,
    /// Stopped by its timeout.
    TimedOut,
    /// Stopped by shutdown, lock loss or a fence rejection (resumed by a later claim), or at
    /// someone's request ([`ExecutionStore::request_cancel`]: final).
    Cancelled,
    /// A tick of the ledger that its job's misfire policy skipped for good (the reason is in
    /// the record's `error`). It is not claimed again.
    Skipped,
}

impl Status {
    /// Whether an execution in this state ran to its end: it is not claimed again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::TimedOut | Self::Skipped
        )
    }

    /// The name stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
            Self::Cancelled => "CANCELLED",
            Self::Skipped => "SKIPPED",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = UnknownStatus;

    /// The status named by [`Status::as_str`]; any other text is an error.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "PENDING" => Self::Pending,
            "RUNNING" => Self::Running,
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            "TIMED_OUT" => Self::TimedOut,
            "CANCELLED" => Self::Cancelled,
            "SKIPPED" => Self::Skipped,
            _ => return Err(UnknownStatus(text.to_owned())),
        })
    }
}

/// A text that names no [`Status`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown execution status `{0}`: expected PENDING, RUNNING, COMPLETED, FAILED, TIMED_OUT, CANCELLED or SKIPPED"
)]
pub struct UnknownStatus(pub String);

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended, for [`ExecutionStore::finish`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Finish<'a> {
    /// Any status but [`Status::Running`].
    pub status: Status,
    /// Attempts made, counting those of earlier owners.
    pub attempts: u32,
    /// The error chain, for failures.
    pub error: Option<&'a str>,
}

impl<'a> Finish<'a> {
    /// A finish record.
    pub fn new(status: Status, attempts: u32, error: Option<&'a str>) -> Self {
        Self {
            status,
            attempts,
            error,
        }
    }
}

/// The answer to [`ExecutionStore::once_begin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnceState {
    /// This execution may run the step now, and must end it with `once_end`.
    Acquired,
    /// The step was done before: within this execution for [`OnceScope::Execution`], by
    /// any execution for [`OnceScope::Ever`].
    Done,
    /// A live execution is running the step right now.
    Busy,
}

/// The most executions of one job that [`ExecutionStore::interrupted`] returns at once.
pub const INTERRUPTED_PER_JOB: usize = 25;

/// A tick for the ledger, for [`ExecutionStore::record_ticks`]: a tick of an idempotent job
/// that an instance fired but could not run (the job's lock or the job was busy with another
/// tick, or a backend could not be reached), or one its misfire policy skipped for good.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerTick {
    /// The job's name.
    pub job: String,
    /// The tick's execution id (the job's key for the tick).
    pub execution_id: String,
    /// The tick.
    pub scheduled_at: DateTime<Utc>,
    /// Who recorded it (an instance's run owner), for operators.
    pub owner: String,
    /// `None`: the tick is pending, to be run by whoever holds or next takes the lock.
    /// `Some(reason)`: the tick is skipped for good, and why.
    pub skipped: Option<String>,
}

impl LedgerTick {
    /// A pending tick of `job` with execution id `execution_id`, recorded by `owner`.
    pub fn pending(
        job: impl Into<String>,
        execution_id: impl Into<String>,
        scheduled_at: DateTime<Utc>,
        owner: impl Into<String>,
    ) -> Self {
        Self {
            job: job.into(),
            execution_id: execution_id.into(),
            scheduled_at,
            owner: owner.into(),
            skipped: None,
        }
    }

    /// The same tick, skipped for good for `reason`.
    pub fn skipped(mut self, reason: impl Into<String>) -> Self {
        self.skipped = Some(reason.into());
        self
    }
}

/// One execution, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecutionRecord {
    /// The execution's id.
    pub id: String,
    /// The job's name.
    pub job: String,
    /// The tick it ran for.
    pub scheduled_at: DateTime<Utc>,
    /// Its state.
    pub status: Status,
    /// The fence of its last claim.
    pub fence: u64,
    /// The owner of its last claim.
    pub owner: String,
    /// Attempts made.
    pub attempts: u32,
    /// When its last claim started it.
    pub started_at: DateTime<Utc>,
    /// Its owner's last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// The error chain of a failure.
    pub error: Option<String>,
    /// The last checkpoint, as JSON.
    pub checkpoint: Option<String>,
    /// Who asked for this execution by hand ([`ExecutionStore::trigger`] or
    /// [`ExecutionStore::rerun`]); `None` for a tick of the schedule.
    pub requested_by: Option<String>,
}

/// An execution whose run was interrupted: cancelled (shutdown, lock loss, a store that
/// could not be reached), or still `RUNNING` with an owner that stopped heartbeating; or a
/// tick of the ledger, pending and due. It is resumed (or run) by a new claim of the same id.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Interrupted {
    /// The job's name.
    pub job: String,
    /// The execution's id.
    pub execution_id: String,
    /// The tick it ran for.
    pub scheduled_at: DateTime<Utc>,
    /// [`Status::Cancelled`], [`Status::Running`] (a dead owner's) or [`Status::Pending`]
    /// (a tick of the ledger no run claimed yet).
    pub status: Status,
    /// Attempts its owners made.
    pub attempts: u32,
    /// Whether an operator asked for it ([`ExecutionStore::trigger`],
    /// [`ExecutionStore::rerun`]): it runs whatever the job's misfire policy says of late
    /// ticks, and is claimed as an idempotent execution (once), whatever the job.
    pub requested: bool,
}

/// A job as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobRecord {
    /// The job's name.
    pub name: String,
    /// The job's fence: bumped by every successful claim.
    pub fence: u64,
    /// When the job was first registered; misfires count only ticks after it.
    pub created_at: DateTime<Utc>,
    /// The latest tick any instance claimed (or the time the job was last resumed from a
    /// pause, if later: the ticks before it are accounted for), if the store remembers one.
    pub last_tick: Option<DateTime<Utc>>,
}

/// What [`ExecutionStore::register`] records about a job at startup.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct JobRegistration<'a> {
    /// The job's name.
    pub name: &'a str,
    /// Its trigger, as text (`cron "0 0 2 * * *" in Europe/Berlin`).
    pub trigger: String,
    /// Its zone.
    pub zone: String,
    /// Its next fire time.
    pub next_fire: Option<DateTime<Utc>>,
    /// The scheduler's clock when it registered the job: recorded as the job's
    /// `created_at` the first time.
    pub registered_at: DateTime<Utc>,
    /// Its circuit breaker's settings, recorded (replacing those of an earlier
    /// registration) so that the command line can show the breaker and compute its state.
    pub circuit_breaker: Option<CircuitBreaker>,
}

impl<'a> JobRegistration<'a> {
    /// A registration record.
    pub fn new(
        name: &'a str,
        trigger: String,
        zone: String,
        next_fire: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            name,
            trigger,
            zone,
            next_fire,
            registered_at: Utc::now(),
            circuit_breaker: None,
        }
    }

    /// Sets the job's circuit breaker, recorded with the job.
    pub fn circuit_breaker(mut self, breaker: Option<CircuitBreaker>) -> Self {
        self.circuit_breaker = breaker;
        self
    }

    /// Sets the instant recorded as the job's `created_at` if this is its first registration.
    pub fn registered_at(mut self, at: DateTime<Utc>) -> Self {
        self.registered_at = at;
        self
    }
}

/// Who asked a running execution to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelKind {
    /// An operator (`tickguard cancel`): the run sees
    /// [`CancelReason::Requested`](crate::CancelReason::Requested).
    Operator,
    /// A newer tick of the job under `overlap = "cancel_other"`: the run sees
    /// [`CancelReason::Superseded`](crate::CancelReason::Superseded).
    Superseded,
}

impl CancelKind {
    /// The name stored in the `cancel_kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "OPERATOR",
            Self::Superseded => "SUPERSEDED",
        }
    }

    /// The kind named by [`CancelKind::as_str`]; `None` for any other text.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "OPERATOR" => Some(Self::Operator),
            "SUPERSEDED" => Some(Self::Superseded),
            _ => None,
        }
    }

    /// The reason the run sees in [`JobContext::cancel_reason`](crate::JobContext::cancel_reason).
    pub fn reason(self) -> crate::CancelReason {
        match self {
            Self::Operator => crate::CancelReason::Requested,
            Self::Superseded => crate::CancelReason::Superseded,
        }
    }
}

impl fmt::Display for CancelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request that a running execution stop, as [`ExecutionStore::request_cancel`] recorded
/// it: what [`ExecutionStore::cancel_requests`] lists.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CancelRequest {
    /// The execution asked to stop.
    pub execution_id: String,
    /// Its job.
    pub job: String,
    /// Who asked: an operator, or a newer tick of the job.
    pub kind: CancelKind,
    /// The requester's note (for a newer tick, which tick).
    pub note: String,
    /// Who asked (free text: a user, a host, an instance).
    pub by: String,
    /// When, by the store's clock.
    pub at: DateTime<Utc>,
}

impl CancelRequest {
    /// A request record.
    pub fn new(
        execution_id: impl Into<String>,
        job: impl Into<String>,
        kind: CancelKind,
        note: impl Into<String>,
        by: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            execution_id: execution_id.into(),
            job: job.into(),
            kind,
            note: note.into(),
            by: by.into(),
            at,
        }
    }

    /// The error recorded on the execution it ends: `cancelled by {by}: {note}` for an
    /// operator's request, the requester's note (`superseded by tick ..`) for a newer
    /// tick's.
    pub fn describe(&self) -> String {
        describe_cancel(self.kind, &self.note, &self.by)
    }
}

/// The error recorded on an execution a cancel request of `kind` ended: see
/// [`CancelRequest::describe`].
pub(crate) fn describe_cancel(kind: CancelKind, note: &str, by: &str) -> String {
    match (kind, note.is_empty()) {
        (CancelKind::Operator, false) => format!("cancelled by {by}: {note}"),
        (CancelKind::Operator, true) => format!("cancelled by {by}"),
        (CancelKind::Superseded, false) => note.to_owned(),
        (CancelKind::Superseded, true) => format!("superseded by a newer tick (asked by {by})"),
    }
}

/// Where executions are recorded and claimed.
///
/// Every backend passes one conformance suite: one claim of a tick wins among many
/// concurrent claimers, a completed tick is not claimed again, a dead owner's execution is
/// taken over with a higher fence, and the old owner's writes are then refused.
pub trait ExecutionStore: Send + Sync + 'static {
    /// Records the job (or finds it), at startup.
    fn register<'a>(
        &'a self,
        job: &'a JobRegistration<'a>,
    ) -> BoxFuture<'a, Result<JobRecord, StoreError>>;

    /// Records the jobs (or finds them), at startup: the records in the order of `jobs`.
    /// The default registers them one by one; the SQL stores do it in one round trip, so
    /// thousands of jobs start as fast as a few.
    fn register_all<'a>(
        &'a self,
        jobs: &'a [JobRegistration<'a>],
    ) -> BoxFuture<'a, Result<Vec<JobRecord>, StoreError>> {
        Box::pin(async move {
            let mut records = Vec::with_capacity(jobs.len());
            for job in jobs {
                records.push(self.register(job).await?);
            }
            Ok(records)
        })
    }

    /// Claims an execution; see the module docs. A claim that does not win changes nothing.
    fn claim<'a>(
        &'a self,
        request: &'a ClaimRequest<'a>,
    ) -> BoxFuture<'a, Result<Claim, StoreError>>;

    /// Records ticks in the ledger, all in one round trip: a tick whose execution has no
    /// row gets one, [`Status::Pending`] (for whoever holds or next takes the job's lock to
    /// run: [`ExecutionStore::interrupted`] returns it once it is due) or
    /// [`Status::Skipped`] with its reason; a pending row becomes skipped; any other row
    /// (claimed, run, or skipped already) is left as it is. `ticks` names each execution
    /// once. Returns the execution ids this call recorded as skipped (inserted so, or changed
    /// from pending): of several instances that skip one pending tick, one reports it.
    fn record_ticks<'a>(
        &'a self,
        ticks: &'a [LedgerTick],
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>>;

    /// Records that the owner is alive. Fenced.
    fn heartbeat<'a>(&'a self, exec: &'a ExecutionRef) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Saves the run's progress (JSON). Fenced.
    fn checkpoint<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        state: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The execution's last checkpoint. Fenced.
    fn last_checkpoint<'a>(
        &'a self,
        exec: &'a ExecutionRef,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>>;

    /// Starts the step `key` of `scope`: it runs at most once within `exec`'s execution
    /// ([`OnceScope::Execution`]) or at most once ever ([`OnceScope::Ever`]). The store
    /// records it under [`OnceScope::stored_key`], with its scope. Fenced.
    fn once_begin<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        key: &'a str,
        scope: OnceScope,
    ) -> BoxFuture<'a, Result<OnceState, StoreError>>;

    /// Ends the step `key` of `scope`: `done` records it for good (for its scope),
    /// otherwise it may run again. Fenced.
    fn once_end<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        key: &'a str,
        scope: OnceScope,
        done: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Records how the run ended. Fenced.
    fn finish<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        finish: &'a Finish<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The job's most recent executions, newest first.
    fn executions<'a>(
        &'a self,
        job: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ExecutionRecord>, StoreError>>;

    /// The execution `id`, if the store has it: one row, read by its key, whatever the
    /// length of the job's history. (The memory store looks through the jobs it keeps.)
    fn execution<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ExecutionRecord>, StoreError>>;

    /// The dead letters: executions that failed after their last attempt (status
    /// [`Status::Failed`], with the error chain), of `job` or of every job, most recently
    /// finished first, at most `limit`.
    fn dead_letters<'a>(
        &'a self,
        job: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ExecutionRecord>, StoreError>>;

    /// Executions of `jobs` that an operator asked for (trigger, re-run: pending, or
    /// interrupted), then the others that were interrupted (see [`Interrupted`]), then
    /// pending ticks of the ledger that are due by the store's clock, each oldest tick first
    /// (a backlog of ticks never keeps a request waiting); at most
    /// [`INTERRUPTED_PER_JOB`] of one job (a job whose ticks cannot run now does not keep
    /// the others waiting) and `limit` in all. An owner whose last heartbeat is older than
    /// `liveness` (judged by the store's clock) is gone.
    fn interrupted<'a>(
        &'a self,
        jobs: &'a [String],
        liveness: Duration,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Interrupted>, StoreError>>;

    /// Every job the store knows, by name: trigger, zone, pause, last outcome, next fire.
    fn jobs<'a>(&'a self) -> BoxFuture<'a, Result<Vec<JobSummary>, StoreError>>;

    /// The job `name`, if the store knows it.
    fn job<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<JobSummary>, StoreError>>;

    /// One page of a job's executions, newest tick first, filtered by `query`.
    fn history<'a>(
        &'a self,
        query: &'a HistoryQuery,
    ) -> BoxFuture<'a, Result<HistoryPage, StoreError>>;

    /// The execution `id` with every run of it (each claim: owner, fence, start, end,
    /// outcome, error), so a crash and the takeover that followed are visible.
    fn execution_detail<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ExecutionDetail>, StoreError>>;

    /// Pauses the job for every instance, until [`ExecutionStore::resume`]: its ticks are
    /// skipped (manual triggers still run). Pausing a paused job replaces the note.
    /// [`StoreError::NotFound`] for a job the store does not know.
    fn pause<'a>(
        &'a self,
        job: &'a str,
        note: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<JobSummary, StoreError>>;

    /// Resumes a paused job (a job that is not paused stays as it is). Ticks skipped while
    /// it was paused are not run, nor counted as missed by a scheduler that starts later:
    /// the resume moves the job's `last_tick` to the store's now. The resume's time, by the
    /// store's clock, is the job's [`JobSummary::resumed_at`]: `pause_on_failure` counts
    /// only the failures after it. [`StoreError::NotFound`]
    /// for a job the store does not know.
    fn resume<'a>(&'a self, job: &'a str) -> BoxFuture<'a, Result<JobSummary, StoreError>>;

    /// Asks for a manual execution of the job now: a pending execution, with an id of its
    /// own (`{job}@manual-{unix ms}-{random}`) and the store's clock as its tick, that the
    /// job's instances claim like a tick. Returns it. [`StoreError::NotFound`] for a job the
    /// store does not know.
    fn trigger<'a>(
        &'a self,
        job: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>>;

    /// Asks for the execution `id` to run again, for the same tick: a FAILED, TIMED_OUT or
    /// CANCELLED one, or a COMPLETED (or SKIPPED) one when `force`d. It becomes pending,
    /// with its attempts counted from zero again and its runs kept in its detail; a forced
    /// re-run of a completed execution also starts without its checkpoint. `once` steps it
    /// finished stay finished (for a completed execution, until the scheduler's
    /// `once_retention` forgets them: see [`ExecutionStore::forget_once_steps`]). Returns
    /// it. [`StoreError::NotFound`] for an unknown id, [`StoreError::Refused`] for one that
    /// is pending or running, or completed and not forced.
    fn rerun<'a>(
        &'a self,
        id: &'a str,
        force: bool,
        by: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>>;

    /// Deletes executions that ended longer ago than the request's retention keeps their
    /// status (by the store's clock), with their runs, and never a pending or running one.
    /// For each job it pruned it records the latest tick whose record it deleted: a later
    /// claim of a tick at or before it that has no record is answered [`Claim::Pruned`],
    /// so pruning never lets a tick run twice.
    fn prune<'a>(
        &'a self,
        request: &'a PruneRequest,
    ) -> BoxFuture<'a, Result<PruneReport, StoreError>>;

    /// The jobs of `jobs` that are paused, with their pause.
    fn paused<'a>(
        &'a self,
        jobs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<(String, Pause)>, StoreError>>;

    /// Asks the execution `id` to stop: records the request (`kind`, `note`, `by`, the
    /// store's now) on the execution and moves the
    /// [`control_version`](Self::control_version) (PostgreSQL: `NOTIFY` too), so that the
    /// instance running it cancels its context within a second. A PENDING execution (a
    /// trigger or a ledger tick not run yet) is recorded CANCELLED at once, its error saying
    /// who asked ([`CancelRequest::describe`]). Returns the execution.
    ///
    /// An execution with a request is final: [`ExecutionStore::interrupted`] never returns
    /// it and a claim of it is answered [`Claim::Done`] (CANCELLED) once its run is over, so
    /// it is never resumed; a claim that finds its owner gone records it CANCELLED. Asking
    /// again replaces the note. [`ExecutionStore::rerun`] clears the request.
    ///
    /// An execution handed back at shutdown (CANCELLED, with no request yet: it waits for
    /// [`ExecutionStore::interrupted`] to resume it) can be asked too: the request makes it
    /// final, with the request as its error.
    ///
    /// [`StoreError::NotFound`] for an unknown id; [`StoreError::Refused`] (with a sentence
    /// why) for one that already ended.
    fn request_cancel<'a>(
        &'a self,
        id: &'a str,
        kind: CancelKind,
        note: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>>;

    /// The cancel requests on RUNNING executions of `jobs`: what the control task of each
    /// instance reads when the control version moved, to stop those it runs.
    fn cancel_requests<'a>(
        &'a self,
        jobs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<CancelRequest>, StoreError>>;

    /// A number that every pause, resume, trigger, re-run and cancel request makes larger: a running
    /// scheduler reads it about twice a second (one row, whatever the number of jobs) and
    /// reads the pauses and requests again only when it moved.
    fn control_version<'a>(&'a self) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Moves the [`control_version`](Self::control_version), changing nothing else, so that
    /// every running scheduler sharing the store looks at its pauses and interrupted
    /// executions at its next look (on PostgreSQL, at once: the listeners are notified). A
    /// scheduler calls it after it hands an execution back at shutdown, so that another
    /// instance resumes it within moments rather than at its next scan for interrupted
    /// executions (about a third of the liveness). The default does nothing: a store without
    /// it still has the execution resumed, at that next scan.
    fn announce<'a>(&'a self) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    /// The SQL database behind the store, for
    /// [`JobContext::transaction`](crate::JobContext::transaction); `None` for stores that
    /// keep executions elsewhere.
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    fn sql(&self) -> Option<SqlStore> {
        None
    }

    /// A short description for logs, such as `postgres://db/app`.
    fn describe(&self) -> String;

    /// Whether the store keeps its executions in this process only, so that other processes
    /// cannot see them and a restart loses them (`true` for [`MemoryStore`]): the scheduler
    /// then warns at start. `false` by default; a wrapper around another store answers for
    /// the store it wraps.
    fn is_process_local(&self) -> bool {
        false
    }

    /// Deletes the [`OnceScope::Execution`] steps of `jobs` whose execution completed (or
    /// was skipped) at least `older_than` ago, judged by the store's clock, or whose
    /// execution's record is gone; returns how many it deleted. Every other step is kept:
    /// those of executions that may still run, be resumed or be re-run without `force`
    /// (PENDING, RUNNING, CANCELLED, FAILED, TIMED_OUT: [`ExecutionStore::rerun`] promises
    /// that their finished steps stay finished; they go with the execution when
    /// [`ExecutionStore::prune`] deletes it), and every [`OnceScope::Ever`] step.
    ///
    /// The scheduler calls it at start and then every hour with its
    /// [`once_retention`](crate::SchedulerBuilder::once_retention). Every instance does, with
    /// no coordination: the steps it deletes belong to executions that completed and are
    /// claimed again only by a forced re-run, so two instances deleting the same rows delete
    /// each row once and leave the same table. Required of every store (no default): a store
    /// that kept these rows would grow by every step of every run.
    fn forget_once_steps<'a>(
        &'a self,
        jobs: &'a [String],
        older_than: Duration,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
}

impl<S: ExecutionStore + ?Sized> ExecutionStore for std::sync::Arc<S> {
    fn register<'a>(
        &'a self,
        job: &'a JobRegistration<'a>,
    ) -> BoxFuture<'a, Result<JobRecord, StoreError>> {
        (**self).register(job)
    }
    fn register_all<'a>(
        &'a self,
        jobs: &'a [JobRegistration<'a>],
    ) -> BoxFuture<'a, Result<Vec<JobRecord>, StoreError>> {
        (**self).register_all(jobs)
    }
    fn claim<'a>(
        &'a self,
        request: &'a ClaimRequest<'a>,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        (**self).claim(request)
    }
    fn record_ticks<'a>(
        &'a self,
        ticks: &'a [LedgerTick],
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        (**self).record_ticks(ticks)
    }
    fn heartbeat<'a>(&'a self, exec: &'a ExecutionRef) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).heartbeat(exec)
    }
    fn checkpoint<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        state: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).checkpoint(exec, state)
    }
    fn last_checkpoint<'a>(
        &'a self,
        exec: &'a ExecutionRef,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        (**self).last_checkpoint(exec)
    }
    fn once_begin<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        key: &'a str,
        scope: OnceScope,
    ) -> BoxFuture<'a, Result<OnceState, StoreError>> {
        (**self).once_begin(exec, key, scope)
    }
    fn once_end<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        key: &'a str,
        scope: OnceScope,
        done: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).once_end(exec, key, scope, done)
    }
    fn finish<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        finish: &'a Finish<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).finish(exec, finish)
    }
    fn executions<'a>(
        &'a self,
        job: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ExecutionRecord>, StoreError>> {
        (**self).executions(job, limit)
    }
    fn execution<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ExecutionRecord>, StoreError>> {
        (**self).execution(id)
    }
    fn dead_letters<'a>(
        &'a self,
        job: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ExecutionRecord>, StoreError>> {
        (**self).dead_letters(job, limit)
    }
    fn interrupted<'a>(
        &'a self,
        jobs: &'a [String],
        liveness: Duration,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Interrupted>, StoreError>> {
        (**self).interrupted(jobs, liveness, limit)
    }
    fn jobs<'a>(&'a self) -> BoxFuture<'a, Result<Vec<JobSummary>, StoreError>> {
        (**self).jobs()
    }
    fn job<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<JobSummary>, StoreError>> {
        (**self).job(name)
    }
    fn history<'a>(
        &'a self,
        query: &'a HistoryQuery,
    ) -> BoxFuture<'a, Result<HistoryPage, StoreError>> {
        (**self).history(query)
    }
    fn execution_detail<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ExecutionDetail>, StoreError>> {
        (**self).execution_detail(id)
    }
    fn pause<'a>(
        &'a self,
        job: &'a str,
        note: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<JobSummary, StoreError>> {
        (**self).pause(job, note, by)
    }
    fn resume<'a>(&'a self, job: &'a str) -> BoxFuture<'a, Result<JobSummary, StoreError>> {
        (**self).resume(job)
    }
    fn trigger<'a>(
        &'a self,
        job: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>> {
        (**self).trigger(job, by)
    }
    fn rerun<'a>(
        &'a self,
        id: &'a str,
        force: bool,
        by: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>> {
        (**self).rerun(id, force, by)
    }
    fn prune<'a>(
        &'a self,
        request: &'a PruneRequest,
    ) -> BoxFuture<'a, Result<PruneReport, StoreError>> {
        (**self).prune(request)
    }
    fn paused<'a>(
        &'a self,
        jobs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<(String, Pause)>, StoreError>> {
        (**self).paused(jobs)
    }
    fn request_cancel<'a>(
        &'a self,
        id: &'a str,
        kind: CancelKind,
        note: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>> {
        (**self).request_cancel(id, kind, note, by)
    }
    fn cancel_requests<'a>(
        &'a self,
        jobs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<CancelRequest>, StoreError>> {
        (**self).cancel_requests(jobs)
    }
    fn control_version<'a>(&'a self) -> BoxFuture<'a, Result<u64, StoreError>> {
        (**self).control_version()
    }
    fn announce<'a>(&'a self) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).announce()
    }
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    fn sql(&self) -> Option<SqlStore> {
        (**self).sql()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn is_process_local(&self) -> bool {
        (**self).is_process_local()
    }
    fn forget_once_steps<'a>(
        &'a self,
        jobs: &'a [String],
        older_than: Duration,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        (**self).forget_once_steps(jobs, older_than)
    }
}

/// An execution store operation failed. Its `Debug` form is its message followed by its
/// causes, as [`Error`](crate::Error)'s is.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The execution was claimed again since this run claimed it: the run is stale, must stop,
    /// and changed nothing.
    #[error(
        "execution `{execution_id}` is fenced out: its fence {fence} is stale, another claim took it over"
    )]
    Fenced {
        /// The execution.
        execution_id: String,
        /// The stale fence.
        fence: u64,
    },
    /// The store refused the request, and would refuse it again however often it is asked:
    /// a mistake of the caller's, such as a claim of an execution id that belongs to another
    /// job (the key templates of two jobs render alike).
    #[error("{message}")]
    Refused {
        /// What was refused and how to fix it.
        message: String,
    },
    /// What the request names does not exist: an unknown job or execution.
    #[error("{message}")]
    NotFound {
        /// What was not found.
        message: String,
    },
    /// The store could not be asked (unreachable, timed out, failed).
    #[error("{message}")]
    Unavailable {
        /// What failed and what to check.
        message: String,
        /// The cause.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync + 'static>>,
    },
}

impl fmt::Debug for StoreError {
    /// The message and its causes; with `{:#?}`, the variant and its fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return crate::error::with_causes(self, f);
        }
        match self {
            Self::Fenced {
                execution_id,
                fence,
            } => f
                .debug_struct("Fenced")
                .field("execution_id", execution_id)
                .field("fence", fence)
                .finish(),
            Self::Refused { message } => {
                f.debug_struct("Refused").field("message", message).finish()
            }
            Self::NotFound { message } => f
                .debug_struct("NotFound")
                .field("message", message)
                .finish(),
            Self::Unavailable { message, source } => f
                .debug_struct("Unavailable")
                .field("message", message)
                .field("source", source)
                .finish(),
        }
    }
}

impl StoreError {
    /// An unavailable store, with a message that says what failed and what to check.
    pub fn unavailable(
        message: impl fmt::Display,
        source: Option<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Self::Unavailable {
            message: message.to_string(),
            source,
        }
    }

    /// Whether this run lost its execution to a newer claim.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Self::Fenced { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip_and_unknown_ones_are_errors() {
        for status in [
            Status::Pending,
            Status::Running,
            Status::Completed,
            Status::Failed,
            Status::TimedOut,
            Status::Cancelled,
            Status::Skipped,
        ] {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
        }
        assert_eq!(
            "DONE".parse::<Status>(),
            Err(UnknownStatus("DONE".to_owned()))
        );
        assert!("cancelled".parse::<Status>().is_err());
    }
}

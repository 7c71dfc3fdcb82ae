//! What operators read and change through the store: jobs with their pause and last outcome,
//! a job's history page by page, one execution with every run of it, pause and resume,
//! manual triggers and re-runs, and the retention of the history.
//!
//! Every change goes through the store, so it is cluster-wide and survives restarts: a
//! running scheduler sees it within a second ([`ExecutionStore::control_version`]), and a
//! manual execution is a row of the ledger that the job's instances claim like a tick, under
//! the same lock, claim, fence and overlap rules.
//!
//! [`ExecutionStore::control_version`]: super::ExecutionStore::control_version

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{ExecutionRecord, Status, StoreError};
use crate::circuit_breaker::CircuitBreaker;

/// A job as operators see it: what [`ExecutionStore::jobs`](super::ExecutionStore::jobs)
/// lists.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobSummary {
    /// The job's name.
    pub name: String,
    /// Its trigger as registered, the [`Display`](std::fmt::Display) of its schedule
    /// (`cron "0 0 2 * * *" in Europe/Berlin`, `every 30s`).
    pub trigger: String,
    /// The zone of its schedule (an IANA name).
    pub zone: String,
    /// The job's fence: bumped by every claim.
    pub fence: u64,
    /// When the job was first registered.
    pub created_at: DateTime<Utc>,
    /// The latest tick any instance claimed, or the time the job was last resumed from a
    /// pause if that is later (the ticks skipped while paused count as accounted for).
    pub last_tick: Option<DateTime<Utc>>,
    /// Its next fire time, as the instances last recorded it.
    pub next_fire: Option<DateTime<Utc>>,
    /// Set while the job is paused.
    pub paused: Option<Pause>,
    /// Its most recent execution that ended (any status but pending, running and
    /// cancelled).
    pub last: Option<LastOutcome>,
    /// The latest tick whose record a prune deleted: the history before it is incomplete
    /// (and a tick up to it is never run again).
    pub pruned_through: Option<DateTime<Utc>>,
    /// When the job was last resumed from a pause, by the store's clock: `pause_on_failure`
    /// counts only the failures that ended after it.
    pub resumed_at: Option<DateTime<Utc>>,
    /// Its circuit breaker's settings, as the instances last registered them.
    pub circuit_breaker: Option<CircuitBreaker>,
}

/// Why, by whom and since when a job is paused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pause {
    /// The operator's note.
    pub note: String,
    /// Who paused it (free text: a user, a host, `tickguard` by default).
    pub by: String,
    /// When, by the store's clock.
    pub at: DateTime<Utc>,
}

impl Pause {
    /// A pause record.
    pub fn new(note: impl Into<String>, by: impl Into<String>, at: DateTime<Utc>) -> Self {
        Self {
            note: note.into(),
            by: by.into(),
            at,
        }
    }
}

/// How a job's most recent execution that ended, ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LastOutcome {
    /// The execution.
    pub execution_id: String,
    /// Its tick.
    pub scheduled_at: DateTime<Utc>,
    /// How it ended.
    pub status: Status,
    /// When.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Which executions of a job [`ExecutionStore::history`](super::ExecutionStore::history)
/// returns: newest tick first, filtered by status and by the tick's time, one page at a
/// time.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryQuery {
    /// The job.
    pub job: String,
    /// Only these statuses; empty for all.
    pub statuses: Vec<Status>,
    /// Only ticks at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only ticks before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Continue after this cursor: the [`HistoryPage::next`] of the page before.
    pub after: Option<Cursor>,
    /// At most this many executions (at least 1).
    pub limit: usize,
}

impl HistoryQuery {
    /// The newest 50 executions of `job`.
    pub fn new(job: impl Into<String>) -> Self {
        Self {
            job: job.into(),
            statuses: Vec::new(),
            since: None,
            until: None,
            after: None,
            limit: 50,
        }
    }

    /// Only executions in one of `statuses`.
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = Status>) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }

    /// Only ticks at or after `since`.
    pub fn since(mut self, since: DateTime<Utc>) -> Self {
        self.since = Some(since);
        self
    }

    /// Only ticks before `until`.
    pub fn until(mut self, until: DateTime<Utc>) -> Self {
        self.until = Some(until);
        self
    }

    /// The page after `cursor`.
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.after = cursor;
        self
    }

    /// At most `limit` executions per page.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    /// Whether `record` passes the filters (not the cursor).
    pub fn matches(&self, record: &ExecutionRecord) -> bool {
        record.job == self.job
            && (self.statuses.is_empty() || self.statuses.contains(&record.status))
            && self.since.is_none_or(|t| record.scheduled_at >= t)
            && self.until.is_none_or(|t| record.scheduled_at < t)
            && self
                .after
                .as_ref()
                .is_none_or(|c| (record.scheduled_at, record.id.as_str()) < (c.scheduled_at, &c.id))
    }
}

/// Where a page of history ended: the next page starts after it. Pages are ordered by tick,
/// then id, both descending, so rows written while an operator pages do not shift them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The last row's tick.
    pub scheduled_at: DateTime<Utc>,
    /// The last row's id.
    pub id: String,
}

impl std::fmt::Display for Cursor {
    /// `{tick in nanoseconds since the epoch}.{id}`: what a command line or a link carries
    /// to ask for the next page.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nanos = self.scheduled_at.timestamp_nanos_opt().unwrap_or(i64::MAX);
        write!(f, "{nanos}.{}", self.id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = BadCursor;

    /// The cursor whose [`Display`](std::fmt::Display) `text` is.
    ///
    /// ```
    /// use tickguard::store::Cursor;
    ///
    /// let cursor: Cursor = "1796436000000000000.nightly@2026-12-05T02:00:00Z".parse().unwrap();
    /// assert_eq!(cursor.id, "nightly@2026-12-05T02:00:00Z");
    /// assert_eq!(cursor.to_string().parse::<Cursor>().unwrap(), cursor);
    /// assert!("yesterday".parse::<Cursor>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self, BadCursor> {
        text.split_once('.')
            .and_then(|(nanos, id)| {
                Some(Self {
                    scheduled_at: DateTime::from_timestamp_nanos(nanos.parse().ok()?),
                    id: id.to_owned(),
                })
            })
            .filter(|c| !c.id.is_empty())
            .ok_or_else(|| BadCursor(text.to_owned()))
    }
}

/// A text that is not a [`Cursor`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a history cursor")]
pub struct BadCursor(pub String);

/// One page of a job's history.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryPage {
    /// The executions, newest tick first.
    pub executions: Vec<ExecutionRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl HistoryPage {
    /// A page of `executions` (at most `limit + 1` of them, newest first): the one past the
    /// limit only says that another page follows.
    pub fn from_rows(mut executions: Vec<ExecutionRecord>, limit: usize) -> Self {
        let next = if executions.len() > limit {
            executions.truncate(limit);
            executions.last().map(|r| Cursor {
                scheduled_at: r.scheduled_at,
                id: r.id.clone(),
            })
        } else {
            None
        };
        Self { executions, next }
    }
}

/// One execution with every run of it: [`ExecutionStore::execution_detail`](super::ExecutionStore::execution_detail).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecutionDetail {
    /// The execution's row.
    pub execution: ExecutionRecord,
    /// Its runs, oldest first: one per claim. A run whose owner died shows as
    /// [`RunOutcome::Abandoned`], followed by the run that took it over.
    pub runs: Vec<RunRecord>,
}

/// One claim of an execution, and how the run it started ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunRecord {
    /// The fence the claim returned: unique per run.
    pub fence: u64,
    /// Who ran it (`instance/run`).
    pub owner: String,
    /// When the claim started it, by the store's clock.
    pub started_at: DateTime<Utc>,
    /// When it ended: its finish, or for an abandoned run its owner's last heartbeat.
    pub ended_at: Option<DateTime<Utc>>,
    /// How it ended; `None` while it runs.
    pub outcome: Option<RunOutcome>,
    /// Attempts the execution had made when this run ended (counting earlier runs').
    pub attempts: u32,
    /// The error chain it ended with.
    pub error: Option<String>,
}

/// How one run of an execution ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunOutcome {
    /// The run recorded its end: completed, failed, timed out or cancelled.
    Finished(Status),
    /// Its owner stopped heartbeating (a crash, a freeze, a partition) and a later claim
    /// took the execution over.
    Abandoned,
}

impl RunOutcome {
    /// The name stored: a status's, or `ABANDONED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finished(status) => status.as_str(),
            Self::Abandoned => "ABANDONED",
        }
    }

    /// The outcome named by [`RunOutcome::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        if text == "ABANDONED" {
            Some(Self::Abandoned)
        } else {
            text.parse().ok().map(Self::Finished)
        }
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long the history keeps executions that ended, per status; `None` keeps them for
/// good. Executions that may still run (pending, running) are never pruned.
///
/// Keep each status at least an hour in production: a prune raises the job's watermark to
/// the latest tick it deleted, and a tick at or before it that has no record yet (an
/// instance far behind, a note of the ledger not written yet) is then never recorded nor
/// run. Shorter ones are accepted, for tests.
///
/// The defaults keep what went well for a week and what went wrong for a month:
///
/// ```
/// use std::time::Duration;
/// use tickguard::store::Retention;
///
/// let days = |n: u64| Duration::from_secs(n * 86_400);
/// let retention = Retention::default();
/// assert_eq!(retention.completed, Some(days(7)));
/// assert_eq!(retention.skipped, Some(days(7)));
/// assert_eq!(retention.failed, Some(days(30)));
/// let longer = retention.failed(Some(days(90)));
/// assert_eq!(longer.failed, Some(days(90)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// Completed executions.
    pub completed: Option<Duration>,
    /// Ticks the ledger skipped for good.
    pub skipped: Option<Duration>,
    /// Failed executions (dead letters).
    pub failed: Option<Duration>,
    /// Executions stopped by their timeout.
    pub timed_out: Option<Duration>,
    /// Cancelled executions that were never resumed (an idempotent job's cancelled
    /// execution is resumed within seconds; a cancelled run of a job that is not idempotent
    /// stays as it is).
    pub cancelled: Option<Duration>,
}

const DAY: Duration = Duration::from_secs(86_400);

impl Default for Retention {
    fn default() -> Self {
        Self {
            completed: Some(DAY * 7),
            skipped: Some(DAY * 7),
            failed: Some(DAY * 30),
            timed_out: Some(DAY * 30),
            cancelled: Some(DAY * 30),
        }
    }
}

impl Retention {
    /// Keeps every execution for good.
    pub const fn keep_forever() -> Self {
        Self {
            completed: None,
            skipped: None,
            failed: None,
            timed_out: None,
            cancelled: None,
        }
    }

    /// Sets how long completed executions are kept.
    pub fn completed(mut self, keep: Option<Duration>) -> Self {
        self.completed = keep;
        self
    }

    /// Sets how long skipped ticks are kept.
    pub fn skipped(mut self, keep: Option<Duration>) -> Self {
        self.skipped = keep;
        self
    }

    /// Sets how long failed executions are kept.
    pub fn failed(mut self, keep: Option<Duration>) -> Self {
        self.failed = keep;
        self
    }

    /// Sets how long timed-out executions are kept.
    pub fn timed_out(mut self, keep: Option<Duration>) -> Self {
        self.timed_out = keep;
        self
    }

    /// Sets how long cancelled executions are kept.
    pub fn cancelled(mut self, keep: Option<Duration>) -> Self {
        self.cancelled = keep;
        self
    }

    /// How long executions in `status` are kept: `None` for good, and always for those that
    /// may still run (pending, running).
    pub fn keep(&self, status: Status) -> Option<Duration> {
        match status {
            Status::Completed => self.completed,
            Status::Skipped => self.skipped,
            Status::Failed => self.failed,
            Status::TimedOut => self.timed_out,
            Status::Cancelled => self.cancelled,
            Status::Pending | Status::Running => None,
        }
    }

    /// The statuses this retention prunes, each with how long it keeps them.
    pub fn prunable(&self) -> Vec<(Status, Duration)> {
        [
            Status::Completed,
            Status::Skipped,
            Status::Failed,
            Status::TimedOut,
            Status::Cancelled,
        ]
        .into_iter()
        .filter_map(|s| self.keep(s).map(|d| (s, d)))
        .collect()
    }
}

/// What [`ExecutionStore::prune`](super::ExecutionStore::prune) deletes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneRequest {
    /// How long to keep each status.
    pub retention: Retention,
    /// Only these jobs' history; `None` for every job in the store.
    pub jobs: Option<Vec<String>>,
    /// Count what would be deleted, delete nothing.
    pub dry_run: bool,
    /// Per job: prune only the jobs that no prune worked on within this long (by the
    /// store's clock), and record this prune on each job it works on, so that instances
    /// that each prune on a timer take turns, one at a time per job. A dry run records
    /// nothing. `None` prunes every job now.
    pub at_most_every: Option<Duration>,
}

impl PruneRequest {
    /// Prunes every job's history by `retention`, now.
    pub fn new(retention: Retention) -> Self {
        Self {
            retention,
            jobs: None,
            dry_run: false,
            at_most_every: None,
        }
    }

    /// Only these jobs' history.
    pub fn jobs(mut self, jobs: Vec<String>) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// Counts, deletes nothing.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Prunes only the jobs that no prune worked on within `every`.
    pub fn at_most_every(mut self, every: Duration) -> Self {
        self.at_most_every = Some(every);
        self
    }
}

/// What a prune deleted (or, dry, would delete), per status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneReport {
    /// Whether it ran: `false` when another prune worked on every job it names within
    /// [`PruneRequest::at_most_every`].
    pub ran: bool,
    /// Executions deleted (or that would be), per status, in the order of
    /// [`Retention::prunable`].
    pub deleted: Vec<(Status, u64)>,
}

impl PruneReport {
    /// Executions deleted in all.
    pub fn total(&self) -> u64 {
        self.deleted.iter().map(|(_, n)| n).sum()
    }
}

/// The error of a request that names a job the store does not know.
pub(crate) fn no_job(job: &str) -> StoreError {
    StoreError::NotFound {
        message: format!("no job `{job}` in the store: `tickguard jobs` lists the jobs it knows"),
    }
}

/// The error of a request that names an execution the store does not have.
pub(crate) fn no_execution(id: &str) -> StoreError {
    StoreError::NotFound {
        message: format!(
            "no execution `{id}` in the store: `tickguard history JOB` lists a job's executions"
        ),
    }
}

/// Why a re-run of the execution `id`, in `status`, was refused (`None`: it was not).
pub(crate) fn rerun_refused(id: &str, status: Status, force: bool) -> Option<StoreError> {
    let message = match status {
        Status::Running => format!("execution `{id}` is running"),
        Status::Pending => format!("execution `{id}` is already waiting to run"),
        Status::Completed if !force => {
            format!("execution `{id}` completed; `tickguard rerun {id} --force` runs it again")
        }
        Status::Skipped if !force => {
            format!("execution `{id}` was skipped for good; `tickguard rerun {id} --force` runs it")
        }
        _ => return None,
    };
    Some(StoreError::Refused { message })
}

/// Why a cancel request on the execution `id`, in `status`, was refused (`None`: it was
/// not): a pending or running execution can be asked to stop, and so can one handed back at
/// shutdown (CANCELLED with no request yet: it waits to be resumed, and the request makes it
/// final); `requested` says whether it already has a request.
pub(crate) fn cancel_refused(id: &str, status: Status, requested: bool) -> Option<StoreError> {
    match status {
        Status::Pending | Status::Running => return None,
        Status::Cancelled if !requested => return None,
        _ => {}
    }
    Some(StoreError::Refused {
        message: format!(
            "execution `{id}` already ended ({status}); only a pending or running execution, \
             or one handed back at shutdown to be resumed, can be cancelled"
        ),
    })
}

/// The error of a running execution a claim abandoned: its owner stopped heartbeating.
pub(crate) const ABANDONED: &str = "owner stopped heartbeating; execution abandoned";

/// The error of a running execution a claim abandoned after someone asked it to stop: it is
/// final, never resumed.
pub(crate) const ABANDONED_ASKED_TO_STOP: &str =
    "owner stopped heartbeating after it was asked to stop; execution cancelled";

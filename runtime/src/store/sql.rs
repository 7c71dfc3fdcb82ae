//! What the SQL stores share: the conversions between rows and records, the claim and
//! `once_begin` transactions over each database's statements ([`dialect`]), the statements
//! of the operations API both run ([`OpStatements`]), and the store methods whose bodies are
//! the same on both databases ([`methods`]).

pub(crate) mod dialect;
pub(crate) mod methods;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::circuit_breaker::CircuitBreaker;
use crate::store::{
    ExecutionRecord, ExecutionRef, Interrupted, JobRecord, JobRegistration, JobSummary,
    LastOutcome, Pause, RunOutcome, RunRecord, Status, StoreError, UnknownStatus,
};

/// How many `once` rows one statement of `forget_once_steps` deletes at most: a first run
/// on a long history deletes in short statements, each holding its locks briefly.
pub(crate) const FORGET_BATCH: i64 = 10_000;

/// How long one of tickguard's statements may take before sqlx logs it at WARN: they take
/// milliseconds; one that takes a second waited for a lock, or for an overloaded server.
pub(crate) const SLOW_STATEMENT: Duration = Duration::from_secs(1);

/// `options` with sqlx's log of every statement at DEBUG, and of statements slower than
/// [`SLOW_STATEMENT`] at WARN. These are sqlx's defaults too; tickguard sets them explicitly
/// so that its claims, heartbeats and looks at the control version stay out of an INFO log
/// whatever sqlx's defaults become. Applied to every connection tickguard opens itself: the
/// stores and the Postgres lock connected from a URL, and the control listener's connection,
/// which is tickguard's own even when the store was built on a given pool (it is opened
/// with that pool's connect options, and this setting). The connections of a pool given to
/// tickguard keep the pool's own settings.
pub(crate) fn statement_logging<O: sqlx::ConnectOptions>(options: O) -> O {
    options
        .log_statements(log::LevelFilter::Debug)
        .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT)
}

/// A duration in whole milliseconds, rounded up, as SQL stores it.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX)
}

/// A fence as stored (`bigint`) back to the fence. Fences start at 1 and only grow.
pub(super) fn fence(stored: i64) -> u64 {
    stored.unsigned_abs()
}

/// A fence as stored.
pub(crate) fn db_fence(fence: u64) -> i64 {
    i64::try_from(fence).unwrap_or(i64::MAX)
}

/// A `status` column's value; a text that names no status is a decoding error.
pub(super) fn status(text: &str) -> Result<Status, sqlx::Error> {
    text.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The error of a write refused because `exec` lost its execution to a newer claim.
pub(crate) fn fenced(exec: &ExecutionRef) -> StoreError {
    StoreError::Fenced {
        execution_id: exec.execution_id.clone(),
        fence: exec.fence,
    }
}

/// An instant as a SQL store keeps it: `timestamptz` on PostgreSQL, Unix milliseconds on
/// SQLite. Everything else in a row maps the same on both.
pub(crate) trait DbInstant {
    /// The instant.
    fn instant(self) -> DateTime<Utc>;
}

impl DbInstant for DateTime<Utc> {
    fn instant(self) -> DateTime<Utc> {
        self
    }
}

impl DbInstant for i64 {
    fn instant(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self).unwrap_or_default()
    }
}

/// An execution row, as the stores' `SELECT id, job, scheduled_at, status, fence, owner,
/// attempt, started_at, heartbeat_at, finished_at, error, checkpoint, requested_by` returns
/// it, with the database's instant type `T` and attempt type `N`.
pub(crate) type ExecutionRow<T, N> = (
    String,
    String,
    T,
    String,
    i64,
    String,
    N,
    T,
    T,
    Option<T>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Attempts as stored: never negative.
pub(crate) fn attempts<N: TryInto<u32>>(stored: N) -> u32 {
    stored.try_into().unwrap_or(0)
}

/// An execution row as the record.
pub(crate) fn record<T: DbInstant, N: TryInto<u32>>(
    r: ExecutionRow<T, N>,
) -> Result<ExecutionRecord, sqlx::Error> {
    Ok(ExecutionRecord {
        id: r.0,
        job: r.1,
        scheduled_at: r.2.instant(),
        status: status(&r.3)?,
        fence: fence(r.4),
        owner: r.5,
        attempts: attempts(r.6),
        started_at: r.7.instant(),
        heartbeat_at: r.8.instant(),
        finished_at: r.9.map(DbInstant::instant),
        error: r.10,
        checkpoint: r.11,
        requested_by: r.12,
    })
}

/// Execution rows as records; a row that does not decode fails them all.
pub(crate) fn records<T: DbInstant, N: TryInto<u32>>(
    rows: Vec<ExecutionRow<T, N>>,
) -> Result<Vec<ExecutionRecord>, sqlx::Error> {
    rows.into_iter().map(record).collect()
}

/// An interrupted execution's row (`job, id, scheduled_at, status, attempt,
/// requested_by IS NOT NULL`).
pub(crate) type InterruptedRow<T, N> = (String, String, T, String, N, bool);

/// An interrupted execution's row as the record.
pub(crate) fn interrupted<T: DbInstant, N: TryInto<u32>>(
    (job, execution_id, scheduled_at, status_text, stored, requested): InterruptedRow<T, N>,
) -> Result<Interrupted, sqlx::Error> {
    Ok(Interrupted {
        job,
        execution_id,
        scheduled_at: scheduled_at.instant(),
        status: status(&status_text)?,
        attempts: attempts(stored),
        requested,
    })
}

/// A job's row as registration returns it (`fence, created_at, last_tick`).
pub(crate) fn job_record<T: DbInstant>(
    name: &str,
    (stored_fence, created_at, last_tick): (i64, T, Option<T>),
) -> JobRecord {
    JobRecord {
        name: name.to_owned(),
        fence: fence(stored_fence),
        created_at: created_at.instant(),
        last_tick: last_tick.map(DbInstant::instant),
    }
}

/// A job's row with its pause and its last execution that ended, as the stores' `jobs`
/// statement returns it: `job, trigger, zone, fence, created_at, last_tick, next_fire_at,
/// paused_at, paused_by, paused_note`, then the last execution's `id, scheduled_at, status,
/// finished_at`, then the job's `pruned_through` ([`SummaryColumns`]), then its
/// `resumed_at, circuit_breaker`.
pub(crate) struct JobSummaryRow<T>(SummaryColumns<T>, Option<T>, Option<String>);

/// The first sixteen columns of a [`JobSummaryRow`]: as many as a tuple decodes.
pub(crate) type SummaryColumns<T> = (
    String,
    String,
    String,
    i64,
    T,
    Option<T>,
    Option<T>,
    Option<T>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<T>,
    Option<String>,
    Option<T>,
    Option<T>,
);

impl<'r, R, T> sqlx::FromRow<'r, R> for JobSummaryRow<T>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    SummaryColumns<T>: sqlx::FromRow<'r, R>,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self(
            SummaryColumns::from_row(row)?,
            row.try_get(15)?,
            row.try_get(16)?,
        ))
    }
}

/// The circuit breaker's settings of a registration, as the jobs table stores them.
pub(crate) fn stored_breaker(job: &JobRegistration<'_>) -> Option<String> {
    job.circuit_breaker.as_ref().map(CircuitBreaker::to_stored)
}

/// A job's summary row as the summary.
pub(crate) fn job_summary<T: DbInstant>(
    JobSummaryRow(r, resumed_at, breaker): JobSummaryRow<T>,
) -> Result<JobSummary, sqlx::Error> {
    let circuit_breaker = breaker
        .map(|text| CircuitBreaker::from_stored(&text))
        .transpose()
        .map_err(|e| sqlx::Error::Decode(e.into()))?;
    let paused = r.7.map(|at| Pause {
        note: r.9.unwrap_or_default(),
        by: r.8.unwrap_or_default(),
        at: at.instant(),
    });
    let last = match (r.10, r.11, r.12) {
        (Some(execution_id), Some(scheduled_at), Some(status_text)) => Some(LastOutcome {
            execution_id,
            scheduled_at: scheduled_at.instant(),
            status: status(&status_text)?,
            finished_at: r.13.map(DbInstant::instant),
        }),
        _ => None,
    };
    Ok(JobSummary {
        name: r.0,
        trigger: r.1,
        zone: r.2,
        fence: fence(r.3),
        created_at: r.4.instant(),
        last_tick: r.5.map(DbInstant::instant),
        next_fire: r.6.map(DbInstant::instant),
        paused,
        last,
        pruned_through: r.14.map(DbInstant::instant),
        resumed_at: resumed_at.map(DbInstant::instant),
        circuit_breaker,
    })
}

/// A paused job's row: `job, paused_note, paused_by, paused_at`.
pub(crate) type PauseRow<T> = (String, Option<String>, Option<String>, T);

/// A paused job's row as the job's name and pause.
pub(crate) fn pause<T: DbInstant>((job, note, by, at): PauseRow<T>) -> (String, Pause) {
    (
        job,
        Pause {
            note: note.unwrap_or_default(),
            by: by.unwrap_or_default(),
            at: at.instant(),
        },
    )
}

/// A cancel request's row: `id, job, cancel_kind, cancel_note, cancel_by, cancel_at`.
pub(crate) type CancelRow<T> = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<T>,
);

/// A cancel request's row as the request; a kind that names nothing is a decoding error.
pub(crate) fn cancel_request<T: DbInstant>(
    (execution_id, job, kind, note, by, at): CancelRow<T>,
) -> Result<crate::store::CancelRequest, sqlx::Error> {
    let text = kind.unwrap_or_default();
    let kind = crate::store::CancelKind::parse(&text)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown cancel kind `{text}`").into()))?;
    Ok(crate::store::CancelRequest::new(
        execution_id,
        job,
        kind,
        note.unwrap_or_default(),
        by.unwrap_or_default(),
        at.map(DbInstant::instant).unwrap_or_default(),
    ))
}

/// The `SET` of a cancel request's `UPDATE` (`$2` kind, `$3` note, `$4` by, `$5` the error
/// of a pending or handed-back execution, `now` the store's clock): a pending execution ends
/// CANCELLED at once; a running one keeps running until its instance stops it; one handed
/// back at shutdown (CANCELLED) becomes final, with the request as its error.
pub(crate) fn cancel_set(now: &str) -> String {
    format!(
        "cancel_kind = $2, cancel_note = $3, cancel_by = $4, cancel_at = {now}, \
         error = CASE WHEN status IN ('PENDING', 'CANCELLED') THEN $5 ELSE error END, \
         finished_at = CASE WHEN status = 'PENDING' THEN {now} ELSE finished_at END, \
         status = CASE WHEN status = 'PENDING' THEN 'CANCELLED' ELSE status END"
    )
}

/// The executions a cancel request may change: pending, running, or handed back at
/// shutdown (CANCELLED with no request yet).
pub(crate) const CANCELLABLE: &str = "(status IN ('PENDING', 'RUNNING') \
     OR (status = 'CANCELLED' AND cancel_kind IS NULL))";

/// A run's row: `fence, owner, started_at, ended_at, outcome, attempts, error`.
pub(crate) type RunRow<T, N> = (i64, String, T, Option<T>, Option<String>, N, Option<String>);

/// A run's row as the record; an outcome that names nothing is a decoding error.
pub(crate) fn run<T: DbInstant, N: TryInto<u32>>(
    r: RunRow<T, N>,
) -> Result<RunRecord, sqlx::Error> {
    let outcome = match r.4 {
        None => None,
        Some(text) => Some(
            RunOutcome::parse(&text)
                .ok_or_else(|| sqlx::Error::Decode(Box::new(UnknownStatus(text.clone()))))?,
        ),
    };
    Ok(RunRecord {
        fence: fence(r.0),
        owner: r.1,
        started_at: r.2.instant(),
        ended_at: r.3.map(DbInstant::instant),
        outcome,
        attempts: attempts(r.5),
        error: r.6,
    })
}

/// The id of a manual execution of `job` asked for at `now`: unique per request.
pub(crate) fn manual_id(job: &str, now: DateTime<Utc>) -> String {
    format!(
        "{job}@manual-{}-{:04x}",
        now.timestamp_millis(),
        fastrand::u16(..)
    )
}

pub(crate) use super::operations::{
    ABANDONED, ABANDONED_ASKED_TO_STOP, cancel_refused, no_execution, no_job, rerun_refused,
};

/// How many executions one statement of a prune deletes at most: a first prune of a long
/// history deletes in short transactions, each holding its locks briefly.
pub(crate) const PRUNE_BATCH: i64 = 1_000;

/// The statements of the operations API that both SQL stores run, each in its database's
/// SQL; `E`, those that one of them runs alone.
pub(crate) struct OpStatements<E> {
    /// Job summaries (`$1` a job's name, or null for all): [`JobSummaryRow`]s.
    pub(crate) jobs: String,
    /// A page of a job's history: [`ExecutionRow`]s.
    pub(crate) history: String,
    /// An execution's runs (`$1` its id): [`RunRow`]s.
    pub(crate) runs: String,
    /// Pauses a job (`$1` job, `$2` note, `$3` by).
    pub(crate) pause: String,
    /// Resumes a job (`$1`).
    pub(crate) resume: String,
    /// Inserts a manual execution (`$1` job, `$2` its id, `$3` by).
    pub(crate) trigger: String,
    /// Sets an execution pending again (`$1` id, `$2` force, `$3` by).
    pub(crate) rerun: String,
    /// Records a cancel request on a pending or running execution (`$1` id, `$2` kind,
    /// `$3` note, `$4` by, `$5` the error of a pending one, which it ends).
    pub(crate) cancel: String,
    /// The cancel requests on running executions of a list of jobs (`$1`): [`CancelRow`]s.
    pub(crate) cancel_requests: String,
    /// The paused jobs among a list (`$1`): [`PauseRow`]s.
    pub(crate) paused: String,
    /// The control version.
    pub(crate) control_version: String,
    /// Moves the control version, changing nothing else.
    pub(crate) announce: String,
    /// Every job's name.
    pub(crate) all_jobs: String,
    /// Takes a prune's turn at a job (`$1`), if it is due.
    pub(crate) prune_turn: String,
    /// The jobs among a list (`$1`) whose prune is due.
    pub(crate) prune_due: String,
    /// How many executions of a job (`$1`) in a status (`$2`) a prune would delete.
    pub(crate) prune_count: String,
    /// The statements of one database alone.
    pub(crate) own: E,
}

/// The `jobs` statement over the tables `jobs` and `ex`, `name` the first parameter as
/// the database types it: the last execution that ended, per job, by the
/// `(job, scheduled_at DESC)` index (a few rows read per job).
pub(crate) fn jobs_statement(jobs: &str, ex: &str, name: &str) -> String {
    format!(
        "SELECT j.job, j.trigger, j.zone, j.fence, j.created_at, j.last_tick, \
             j.next_fire_at, j.paused_at, j.paused_by, j.paused_note, \
             l.id, l.scheduled_at, l.status, l.finished_at, j.pruned_through, \
             j.resumed_at, j.circuit_breaker \
         FROM {jobs} j LEFT JOIN {ex} l ON l.id = (\
             SELECT e.id FROM {ex} e WHERE e.job = j.job \
                 AND e.status IN ('COMPLETED', 'FAILED', 'TIMED_OUT', 'SKIPPED') \
             ORDER BY e.scheduled_at DESC LIMIT 1) \
         WHERE {name} IS NULL OR j.job = $1 ORDER BY j.job"
    )
}

/// The re-run's `UPDATE` of the executions table `ex` (`$1` id, `$2` force, `$3` by): a
/// failed, timed-out or cancelled execution, or with force a completed or skipped one, set
/// pending again (a completed or skipped one without its checkpoint).
pub(crate) fn rerun_update(ex: &str) -> String {
    format!(
        "UPDATE {ex} SET status = 'PENDING', attempt = 0, error = NULL, \
             finished_at = NULL, requested_by = $3, cancel_kind = NULL, cancel_note = NULL, \
             cancel_by = NULL, cancel_at = NULL, \
             checkpoint = CASE WHEN status IN ('COMPLETED', 'SKIPPED') \
                 THEN NULL ELSE checkpoint END \
         WHERE id = $1 AND (status IN ('FAILED', 'TIMED_OUT', 'CANCELLED') \
             OR ($2 AND status IN ('COMPLETED', 'SKIPPED')))"
    )
}

/// A query on database `DB`, its parameters bound one by one.
pub(crate) type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>;

/// The instant a control change is stamped with where the store's clock stamps it
/// (SQLite); `None` where the change takes no instant.
pub(crate) type Stamp = Option<DateTime<Utc>>;

//! What the SQL stores share: the conversions between rows and records, the claim and
//! `once_begin` transactions over each database's statements ([`dialect`]), and the store
//! methods whose bodies are the same on both databases ([`methods`]).

pub(crate) mod dialect;
pub(crate) mod methods;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::{ExecutionRecord, ExecutionRef, Interrupted, JobRecord, Status, StoreError};

/// How many `once` rows one statement of `forget_once_steps` deletes at most: a first run
/// on a long history deletes in short statements, each holding its locks briefly.
pub(crate) const FORGET_BATCH: i64 = 10_000;

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
/// attempt, started_at, heartbeat_at, finished_at, error, checkpoint` returns it, with the
/// database's instant type `T` and attempt type `N`.
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
        requested_by: None,
    })
}

/// Execution rows as records; a row that does not decode fails them all.
pub(crate) fn records<T: DbInstant, N: TryInto<u32>>(
    rows: Vec<ExecutionRow<T, N>>,
) -> Result<Vec<ExecutionRecord>, sqlx::Error> {
    rows.into_iter().map(record).collect()
}

/// An interrupted execution's row (`job, id, scheduled_at, status, attempt`).
pub(crate) type InterruptedRow<T, N> = (String, String, T, String, N);

/// An interrupted execution's row as the record.
pub(crate) fn interrupted<T: DbInstant, N: TryInto<u32>>(
    (job, execution_id, scheduled_at, status_text, stored): InterruptedRow<T, N>,
) -> Result<Interrupted, sqlx::Error> {
    Ok(Interrupted {
        job,
        execution_id,
        scheduled_at: scheduled_at.instant(),
        status: status(&status_text)?,
        attempts: attempts(stored),
        requested: false,
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

//! The operators' side of the PostgreSQL store: the statements of the operations API, and
//! what of it differs from SQLite (each control change announced by `NOTIFY`, a prune's
//! clock read by the database). The rest is shared: `sql::methods::operations_methods` and
//! `sql::methods::operations_helpers`.

use std::time::Duration;

use sqlx::{AssertSqlSafe, Postgres};

use super::{CONTROL_CHANNEL, Instant, PostgresStore};
use crate::store::sql;
use crate::store::{Status, StoreError};

/// The statements of the operations API (jobs, history, detail, pause, resume, trigger,
/// re-run, prune, control), with the schema quoted in.
pub(super) type OpStatements = sql::OpStatements<Own>;

/// The statements of the operations API that PostgreSQL runs alone.
pub(super) struct Own {
    prune_batch: String,
}

impl OpStatements {
    /// The statements for tables in `s` (quoted). Long, but only SQL text.
    pub(super) fn new(s: &str) -> Self {
        let jobs = format!("{s}.tickguard_jobs");
        let ex = format!("{s}.tickguard_executions");
        let runs = format!("{s}.tickguard_runs");
        let once = format!("{s}.tickguard_once");
        let ms = "* interval '1 millisecond'";
        let columns = "id, job, scheduled_at, status, fence, owner, attempt, started_at, \
                       heartbeat_at, finished_at, error, checkpoint::text, requested_by";
        // Every change bumps the control version in its own statement, and tells the
        // listening schedulers (`$n`: the raw schema) when it commits; no row back when
        // `changed` changed nothing.
        let control = |n: u8| {
            format!(
                "bumped AS (UPDATE {s}.tickguard_control SET version = version + 1 \
                     WHERE id = 1 AND EXISTS (SELECT 1 FROM changed) RETURNING version) \
                 SELECT version, pg_notify('{CONTROL_CHANNEL}', ${n})::text FROM bumped"
            )
        };
        Self {
            jobs: sql::jobs_statement(&jobs, &ex, "$1::text"),
            history: format!(
                "SELECT {columns} FROM {ex} \
                 WHERE job = $1 AND (cardinality($2::text[]) = 0 OR status = ANY($2)) \
                     AND ($3::timestamptz IS NULL OR scheduled_at >= $3) \
                     AND ($4::timestamptz IS NULL OR scheduled_at < $4) \
                     AND ($5::timestamptz IS NULL OR (scheduled_at, id) < ($5, $6::text)) \
                 ORDER BY scheduled_at DESC, id DESC LIMIT $7"
            ),
            runs: format!(
                "SELECT fence, owner, started_at, ended_at, outcome, attempts, error \
                 FROM {runs} WHERE execution_id = $1 ORDER BY fence"
            ),
            pause: format!(
                "WITH changed AS (UPDATE {jobs} SET \
                     paused_at = coalesce(paused_at, clock_timestamp()), paused_by = $3, \
                     paused_note = $2 WHERE job = $1 RETURNING job), {}",
                control(4)
            ),
            // A resume accounts for the ticks skipped while paused (`last_tick`): a
            // scheduler that starts later does not count them as missed.
            resume: format!(
                "WITH changed AS (UPDATE {jobs} SET paused_at = NULL, paused_by = NULL, \
                     paused_note = NULL, last_tick = CASE WHEN paused_at IS NULL THEN last_tick \
                         ELSE GREATEST(last_tick, clock_timestamp()) END, \
                     resumed_at = CASE WHEN paused_at IS NULL THEN resumed_at \
                         ELSE clock_timestamp() END \
                     WHERE job = $1 RETURNING job), {}",
                control(2)
            ),
            trigger: format!(
                "WITH changed AS (\
                     INSERT INTO {ex} (id, job, scheduled_at, status, fence, owner, attempt, \
                         started_at, heartbeat_at, liveness_ms, requested_by) \
                     SELECT $2, job, clock_timestamp(), 'PENDING', 0, $3, 0, \
                         clock_timestamp(), clock_timestamp(), 0, $3 \
                     FROM {jobs} WHERE job = $1 RETURNING id), {}",
                control(4)
            ),
            rerun: format!(
                "WITH changed AS ({} RETURNING id), {}",
                sql::rerun_update(&ex),
                control(4)
            ),
            paused: format!(
                "SELECT job, paused_note, paused_by, paused_at FROM {jobs} \
                 WHERE job = ANY($1) AND paused_at IS NOT NULL ORDER BY job"
            ),
            cancel: format!(
                "WITH changed AS (UPDATE {ex} SET {} \
                     WHERE id = $1 AND {} RETURNING id), {}",
                sql::cancel_set("clock_timestamp()"),
                sql::CANCELLABLE,
                control(6)
            ),
            cancel_requests: format!(
                "SELECT id, job, cancel_kind, cancel_note, cancel_by, cancel_at FROM {ex} \
                 WHERE job = ANY($1) AND status = 'RUNNING' AND cancel_kind IS NOT NULL \
                 ORDER BY id"
            ),
            control_version: format!("SELECT version FROM {s}.tickguard_control WHERE id = 1"),
            announce: format!("WITH changed AS (SELECT 1), {}", control(1)),
            all_jobs: format!("SELECT job FROM {jobs} ORDER BY job"),
            // A prune's turn at a job: one instance at a time per `$2` ms.
            prune_turn: format!(
                "UPDATE {jobs} SET pruned_at = clock_timestamp() \
                 WHERE job = $1 AND (pruned_at IS NULL \
                     OR pruned_at <= clock_timestamp() - $2 {ms}) \
                 RETURNING job"
            ),
            prune_due: format!(
                "SELECT job FROM {jobs} WHERE job = ANY($1) AND (pruned_at IS NULL \
                     OR pruned_at <= clock_timestamp() - $2 {ms}) ORDER BY job"
            ),
            prune_count: format!(
                "SELECT count(*) FROM {ex} WHERE job = $1 AND status = $2 \
                     AND finished_at <= clock_timestamp() - $3 {ms}"
            ),
            own: Own {
                // Up to `$4` executions of job `$1` in status `$2` that ended `$3` ms ago or
                // more, with their runs and per-execution steps, in one transaction that raises
                // the job's pruned watermark. The job's row is locked first (the one-time filter
                // runs before the executions are read), the order claims take them in.
                prune_batch: format!(
                    "WITH j AS MATERIALIZED (SELECT 1 FROM {jobs} WHERE job = $1 FOR UPDATE), \
                     doomed AS MATERIALIZED (\
                         SELECT id FROM {ex} WHERE job = $1 AND status = $2 \
                             AND finished_at <= clock_timestamp() - $3 {ms} \
                             AND (SELECT count(*) FROM j) >= 0 \
                         LIMIT $4 FOR UPDATE), \
                     gone AS (DELETE FROM {ex} e USING doomed d WHERE e.id = d.id \
                         RETURNING e.id, e.scheduled_at), \
                     runs_gone AS (DELETE FROM {runs} \
                         WHERE execution_id IN (SELECT id FROM gone)), \
                     steps_gone AS (DELETE FROM {once} \
                         WHERE per_execution AND execution_id IN (SELECT id FROM gone)), \
                     raised AS (UPDATE {jobs} SET pruned_through = \
                             GREATEST(pruned_through, (SELECT max(scheduled_at) FROM gone)) \
                         WHERE job = $1 AND EXISTS (SELECT 1 FROM gone)) \
                     SELECT count(*) FROM gone"
                ),
            },
        }
    }
}

impl PostgresStore {
    sql::methods::operations_helpers!(Postgres);

    /// A list of names as PostgreSQL binds one: a `text[]`.
    pub(super) fn name_list<S: AsRef<str>>(names: &[S]) -> Vec<&str> {
        names.iter().map(AsRef::as_ref).collect()
    }

    /// The window a prune's turn is bound with: `at_most_every` in milliseconds (the
    /// database reads its own clock).
    fn prune_window(every: Duration) -> i64 {
        sql::millis(every)
    }

    /// The age, in milliseconds, an execution kept `keep` is pruned at (the database reads
    /// its own clock).
    fn prune_cutoff(keep: Duration) -> i64 {
        sql::millis(keep)
    }

    /// Runs a control change, its parameters bound, then the raw schema: whether it changed
    /// a row. Sent once: a change is not resent on a dead connection. The database stamps
    /// the change itself.
    async fn control_run<'q>(
        &'q self,
        change: sql::Query<'q, Postgres>,
        _: sql::Stamp,
    ) -> sqlx::Result<bool> {
        let row = change
            .bind(self.sql.raw_schema.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Of the jobs `named`, those no prune worked on within the window.
    async fn prune_due(&self, named: &[String], every_ms: i64) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar(AssertSqlSafe(self.ops.prune_due.as_str()))
            .bind(named)
            .bind(every_ms)
            .fetch_all(&self.pool)
            .await
    }

    /// Takes a prune's turn at `job` unless another prune took it within the window.
    async fn prune_turn(&self, job: &str, every_ms: i64) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar(AssertSqlSafe(self.ops.prune_turn.as_str()))
            .bind(job)
            .bind(every_ms)
            .fetch_optional(&self.pool)
            .await
    }

    /// Deletes one batch of `job`'s executions in `status` that ended `age_ms` ago or
    /// before, in one statement; how many it deleted.
    async fn prune_batch(&self, job: &str, status: Status, age_ms: i64) -> sqlx::Result<u64> {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(self.ops.own.prune_batch.as_str()))
            .bind(job)
            .bind(status.as_str())
            .bind(age_ms)
            .bind(sql::PRUNE_BATCH)
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unsigned_abs())
    }
}

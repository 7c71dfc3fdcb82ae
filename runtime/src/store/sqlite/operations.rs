//! The operators' side of the SQLite store: the statements of the operations API, and what
//! of it differs from PostgreSQL (lists of names as JSON arrays, each control change and
//! each prune batch in a transaction of its own, instants read from the store's clock).
//! The rest is shared: `sql::methods::operations_methods` and
//! `sql::methods::operations_helpers`.

use std::time::Duration;

use sqlx::{AssertSqlSafe, Sqlite};

use super::{Instant, SqliteStore, at, now_ms};
use crate::store::sql;
use crate::store::{Status, StoreError};

/// The statements of the operations API (jobs, history, detail, pause, resume, trigger,
/// re-run, prune, control). Lists of names travel as JSON arrays; "now" is bound.
pub(super) type OpStatements = sql::OpStatements<Own>;

/// The statements of the operations API that SQLite runs alone.
pub(super) struct Own {
    bump_control: String,
    prune_pick: String,
    prune_runs: String,
    prune_steps: String,
    prune_executions: String,
    prune_raise: String,
}

impl OpStatements {
    /// The statements. Long, but only SQL text.
    pub(super) fn new() -> Self {
        let ex = "tickguard_executions";
        let jobs = "tickguard_jobs";
        let columns = "id, job, scheduled_at, status, fence, owner, attempt, started_at, \
                       heartbeat_at, finished_at, error, checkpoint, requested_by";
        let ids = "(SELECT value FROM json_each($1))";
        Self {
            jobs: sql::jobs_statement(jobs, ex, "$1"),
            history: format!(
                "SELECT {columns} FROM {ex} \
                 WHERE job = $1 AND (json_array_length($2) = 0 \
                         OR status IN (SELECT value FROM json_each($2))) \
                     AND ($3 IS NULL OR scheduled_at >= $3) \
                     AND ($4 IS NULL OR scheduled_at < $4) \
                     AND ($5 IS NULL OR (scheduled_at, id) < ($5, $6)) \
                 ORDER BY scheduled_at DESC, id DESC LIMIT $7"
            ),
            runs: "SELECT fence, owner, started_at, ended_at, outcome, attempts, error \
                   FROM tickguard_runs WHERE execution_id = $1 ORDER BY fence"
                .into(),
            pause: format!(
                "UPDATE {jobs} SET paused_at = coalesce(paused_at, $4), paused_by = $3, \
                     paused_note = $2 WHERE job = $1"
            ),
            // A resume accounts for the ticks skipped while paused (`last_tick`): a
            // scheduler that starts later does not count them as missed; and it is recorded
            // (`resumed_at`: `pause_on_failure` counts the failures after it). `$2`: now.
            resume: format!(
                "UPDATE {jobs} SET paused_at = NULL, paused_by = NULL, paused_note = NULL, \
                     last_tick = CASE WHEN paused_at IS NULL THEN last_tick \
                         ELSE max(coalesce(last_tick, $2), $2) END, \
                     resumed_at = CASE WHEN paused_at IS NULL THEN resumed_at ELSE $2 END \
                 WHERE job = $1"
            ),
            trigger: format!(
                "INSERT INTO {ex} (id, job, scheduled_at, status, fence, owner, attempt, \
                     started_at, heartbeat_at, liveness_ms, requested_by) \
                 SELECT $2, job, $4, 'PENDING', 0, $3, 0, $4, $4, 0, $3 \
                 FROM {jobs} WHERE job = $1"
            ),
            rerun: sql::rerun_update(ex),
            // `$6`: now.
            cancel: format!(
                "UPDATE {ex} SET {} WHERE id = $1 AND {}",
                sql::cancel_set("$6"),
                sql::CANCELLABLE
            ),
            cancel_requests: format!(
                "SELECT id, job, cancel_kind, cancel_note, cancel_by, cancel_at FROM {ex} \
                 WHERE job IN {ids} AND status = 'RUNNING' AND cancel_kind IS NOT NULL \
                 ORDER BY id"
            ),
            paused: format!(
                "SELECT job, paused_note, paused_by, paused_at FROM {jobs} \
                 WHERE job IN {ids} AND paused_at IS NOT NULL ORDER BY job"
            ),
            control_version: "SELECT version FROM tickguard_control WHERE id = 1".into(),
            // The change is the bump's own row, touched: `control_run` then moves the version.
            announce: "UPDATE tickguard_control SET version = version WHERE id = 1".into(),
            all_jobs: format!("SELECT job FROM {jobs} ORDER BY job"),
            // `$2` now, `$3` the instant a prune before it must be older than.
            prune_turn: format!(
                "UPDATE {jobs} SET pruned_at = $2 \
                 WHERE job = $1 AND (pruned_at IS NULL OR pruned_at <= $3) RETURNING job"
            ),
            prune_due: format!(
                "SELECT job FROM {jobs} WHERE job IN {ids} \
                     AND (pruned_at IS NULL OR pruned_at <= $2) ORDER BY job"
            ),
            prune_count: format!(
                "SELECT count(*) FROM {ex} WHERE job = $1 AND status = $2 AND finished_at <= $3"
            ),
            own: Own {
                bump_control: "UPDATE tickguard_control SET version = version + 1 WHERE id = 1"
                    .into(),
                prune_pick: format!(
                    "SELECT id, scheduled_at FROM {ex} \
                     WHERE job = $1 AND status = $2 AND finished_at <= $3 LIMIT $4"
                ),
                prune_runs: format!("DELETE FROM tickguard_runs WHERE execution_id IN {ids}"),
                prune_steps: format!(
                    "DELETE FROM tickguard_once WHERE per_execution = 1 AND execution_id IN {ids}"
                ),
                prune_executions: format!("DELETE FROM {ex} WHERE id IN {ids}"),
                prune_raise: format!(
                    "UPDATE {jobs} SET pruned_through = max(coalesce(pruned_through, $2), $2) \
                     WHERE job = $1"
                ),
            },
        }
    }
}

impl SqliteStore {
    sql::methods::operations_helpers!(Sqlite);

    /// A list of names as SQLite binds one: a JSON array.
    pub(super) fn name_list<S: AsRef<str>>(names: &[S]) -> String {
        let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
        serde_json::to_string(&names).unwrap_or_else(|_| "[]".to_owned())
    }

    /// The instants a prune's turn is bound with, read once: now, and the instant a prune
    /// before it must be older than.
    fn prune_window(every: Duration) -> (i64, i64) {
        let now = now_ms();
        (now, now.saturating_sub(sql::millis(every)))
    }

    /// The instant an execution kept `keep` must have ended by to be pruned, read once.
    fn prune_cutoff(keep: Duration) -> i64 {
        now_ms().saturating_sub(sql::millis(keep))
    }

    /// Runs a control change, its parameters bound, then `stamp` where given, in a
    /// transaction that bumps the control version when it changed a row; whether it did.
    async fn control_run<'q>(
        &'q self,
        change: sql::Query<'q, Sqlite>,
        stamp: sql::Stamp,
    ) -> sqlx::Result<bool> {
        let change = match stamp {
            Some(stamp) => change.bind(at(stamp)),
            None => change,
        };
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if change.execute(&mut *tx).await?.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(AssertSqlSafe(self.ops.own.bump_control.as_str()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Of the jobs `named`, those no prune worked on since `before`.
    async fn prune_due(
        &self,
        named: &[String],
        (_, before): (i64, i64),
    ) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar(AssertSqlSafe(self.ops.prune_due.as_str()))
            .bind(Self::name_list(named))
            .bind(before)
            .fetch_all(&self.pool)
            .await
    }

    /// Takes a prune's turn at `job` (stamping it `now`) unless another prune took it after
    /// `before`.
    async fn prune_turn(
        &self,
        job: &str,
        (now, before): (i64, i64),
    ) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar(AssertSqlSafe(self.ops.prune_turn.as_str()))
            .bind(job)
            .bind(now)
            .bind(before)
            .fetch_optional(&self.pool)
            .await
    }

    /// Deletes one batch of a job's executions in `status` that ended at `ended_by` or
    /// before, with their runs and per-execution steps, and raises the job's pruned
    /// watermark, in one transaction; how many it deleted.
    async fn prune_batch(&self, job: &str, status: Status, ended_by: i64) -> sqlx::Result<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let doomed: Vec<(String, i64)> =
            sqlx::query_as(AssertSqlSafe(self.ops.own.prune_pick.as_str()))
                .bind(job)
                .bind(status.as_str())
                .bind(ended_by)
                .bind(sql::PRUNE_BATCH)
                .fetch_all(&mut *tx)
                .await?;
        let Some(latest) = doomed.iter().map(|(_, at)| *at).max() else {
            tx.rollback().await?;
            return Ok(0);
        };
        let ids: Vec<&str> = doomed.iter().map(|(id, _)| id.as_str()).collect();
        let ids = Self::name_list(&ids);
        for statement in [
            &self.ops.own.prune_runs,
            &self.ops.own.prune_steps,
            &self.ops.own.prune_executions,
        ] {
            sqlx::query(AssertSqlSafe(statement.as_str()))
                .bind(&ids)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(AssertSqlSafe(self.ops.own.prune_raise.as_str()))
            .bind(job)
            .bind(latest)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(doomed.len() as u64)
    }
}

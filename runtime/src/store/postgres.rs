use std::{fmt, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::{
    AssertSqlSafe, Connection, Error as SqlxError, Postgres,
    postgres::{PgConnection, PgPool, PgPoolOptions},
};

use crate::future::BoxFuture;
use crate::postgres::{
    ACQUIRE_TIMEOUT, Failure, address, already_exists, cannot_reach, connect, connection_lost,
    describe, hint, parse_url, quote, reason,
};
use crate::store::migrate::{self, Migrate, MigrateError, Migration};
use crate::store::sql;
use crate::store::sql::dialect::{self, Holder, OnceRow, OpenRow, Refused, SqlDialect, Taken, Tx};
use crate::store::{
    Claim, ClaimRequest, Claimed, ExecutionRecord, ExecutionRef, ExecutionStore, Finish,
    INTERRUPTED_PER_JOB, Interrupted, JobRecord, JobRegistration, LedgerTick, OnceScope, OnceState,
    StoreError, claim::EARLY_TOLERANCE,
};
use crate::transaction::SqlStore;

mod operations;

use operations::OpStatements;

/// The channel on which every pause, resume, trigger and re-run is announced (`NOTIFY`),
/// with the raw schema name as payload: schedulers listening on it read the control version
/// at once rather than at their next poll.
pub(crate) const CONTROL_CHANNEL: &str = "tickguard_control";

/// How long the store's own transactions may sit idle before the server ends them.
const STORE_IDLE_IN_TRANSACTION: Duration = Duration::from_secs(5);

/// Connections in the pool [`PostgresStore::connect`] opens: the store's own statements and
/// the jobs' [`JobContext::transaction`](crate::JobContext::transaction)s share them.
const MAX_CONNECTIONS: u32 = 10;

/// The key of the transaction-scoped advisory lock that serialises migrations across
/// instances starting at once (the ASCII of `tgmigrat`).
const MIGRATION_LOCK_KEY: i64 = 0x7467_6d69_6772_6174;

/// The schema, oldest first. `{schema}` is replaced by the quoted schema name.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "jobs, executions and once",
        sql: "
CREATE TABLE {schema}.tickguard_jobs (
    job text PRIMARY KEY,
    fence bigint NOT NULL DEFAULT 0,
    trigger text NOT NULL DEFAULT '',
    zone text NOT NULL DEFAULT 'UTC',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    next_fire_at timestamptz,
    last_tick timestamptz
);
CREATE TABLE {schema}.tickguard_executions (
    id text PRIMARY KEY,
    job text NOT NULL,
    scheduled_at timestamptz NOT NULL,
    status text NOT NULL
        CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED', 'TIMED_OUT', 'CANCELLED')),
    fence bigint NOT NULL,
    owner text NOT NULL,
    attempt integer NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    liveness_ms bigint NOT NULL,
    finished_at timestamptz,
    error text,
    checkpoint json
);
CREATE INDEX tickguard_executions_by_job
    ON {schema}.tickguard_executions (job, scheduled_at DESC);
CREATE INDEX tickguard_executions_open
    ON {schema}.tickguard_executions (job) WHERE status IN ('RUNNING', 'CANCELLED');
CREATE INDEX tickguard_executions_dead_letters
    ON {schema}.tickguard_executions (finished_at DESC) WHERE status = 'FAILED';
CREATE TABLE {schema}.tickguard_once (
    key text PRIMARY KEY,
    job text NOT NULL,
    execution_id text NOT NULL,
    fence bigint NOT NULL,
    started_at timestamptz NOT NULL,
    done_at timestamptz
);
",
    },
    Migration {
        version: 2,
        description: "the job's running execution on the job's row",
        sql: "
ALTER TABLE {schema}.tickguard_jobs ADD COLUMN running_id text;
UPDATE {schema}.tickguard_jobs j SET running_id = (
    SELECT e.id FROM {schema}.tickguard_executions e
    WHERE e.job = j.job AND e.status = 'RUNNING'
    ORDER BY e.started_at DESC LIMIT 1);
",
    },
    Migration {
        version: 3,
        description: "the ledger of ticks (PENDING and SKIPPED) and once steps per execution",
        sql: "
ALTER TABLE {schema}.tickguard_executions DROP CONSTRAINT tickguard_executions_status_check;
ALTER TABLE {schema}.tickguard_executions ADD CONSTRAINT tickguard_executions_status_check
    CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'TIMED_OUT', 'CANCELLED',
        'SKIPPED'));
DROP INDEX {schema}.tickguard_executions_open;
CREATE INDEX tickguard_executions_open ON {schema}.tickguard_executions (job, scheduled_at)
    WHERE status IN ('PENDING', 'RUNNING', 'CANCELLED');
ALTER TABLE {schema}.tickguard_once ADD COLUMN per_execution boolean NOT NULL DEFAULT false;
",
    },
    Migration {
        version: 4,
        description: "pauses, manual requests, runs of executions, the control version and \
                      the pruned watermark",
        sql: "
ALTER TABLE {schema}.tickguard_jobs
    ADD COLUMN paused_at timestamptz,
    ADD COLUMN paused_by text,
    ADD COLUMN paused_note text,
    ADD COLUMN pruned_through timestamptz,
    ADD COLUMN pruned_at timestamptz;
ALTER TABLE {schema}.tickguard_executions ADD COLUMN requested_by text;
CREATE TABLE {schema}.tickguard_runs (
    execution_id text NOT NULL,
    fence bigint NOT NULL,
    job text NOT NULL,
    owner text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    outcome text,
    attempts integer NOT NULL DEFAULT 0,
    error text,
    PRIMARY KEY (execution_id, fence)
);
CREATE TABLE {schema}.tickguard_control (
    id integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL DEFAULT 0
);
INSERT INTO {schema}.tickguard_control (id, version) VALUES (1, 0);
CREATE INDEX tickguard_executions_ended
    ON {schema}.tickguard_executions (job, status, finished_at);
",
    },
    Migration {
        version: 5,
        description: "cancel requests on executions",
        sql: "
ALTER TABLE {schema}.tickguard_executions
    ADD COLUMN cancel_kind text,
    ADD COLUMN cancel_note text,
    ADD COLUMN cancel_by text,
    ADD COLUMN cancel_at timestamptz;
CREATE INDEX tickguard_executions_cancel ON {schema}.tickguard_executions (job)
    WHERE status = 'RUNNING' AND cancel_kind IS NOT NULL;
",
    },
    Migration {
        version: 6,
        description: "the job's last resume and its circuit breaker's settings",
        sql: "
ALTER TABLE {schema}.tickguard_jobs
    ADD COLUMN resumed_at timestamptz,
    ADD COLUMN circuit_breaker text;
",
    },
];

/// Executions kept in PostgreSQL (feature `postgres`): claims, fences, checkpoints and `once`
/// steps that every instance sharing the database agrees on, and history that outlives the
/// processes.
///
/// The tables (`tickguard_jobs`, `tickguard_executions`, `tickguard_once`, `tickguard_runs`,
/// `tickguard_control`, and `tickguard_migrations`, which records the schema's version) live in one schema, `public`
/// unless [`PostgresStore::connect_with_schema`] names another. They are created and
/// migrated at startup under a transaction-scoped advisory lock, so many instances may start
/// at once. Every instant the store judges by (heartbeats, liveness) is the **database's**
/// clock, never an instance's.
///
/// - A **claim** is one transaction that first locks the job's row (`SELECT .. FOR UPDATE`),
///   so claims of one job queue up; it reports the tick done or another execution live, or
///   it bumps the job's fence, marks abandoned executions `CANCELLED`, and inserts (or takes
///   over) the execution row stamped with the new fence. A claim that does not win rolls
///   back and changes nothing.
/// - Every claim that wins records its run (`tickguard_runs`: owner, fence, start) in the
///   claim's own statement, and a takeover closes the run of the owner it replaces as
///   abandoned; `finish` closes the run in its statement. Runs cost no round trip.
/// - Every later write (`heartbeat`, `checkpoint`, `once`, `finish`) is one statement whose
///   `WHERE` names the execution, its fence and `status = 'RUNNING'`; a newer claim always
///   rewrites that row, so a write that touches no row is a stale run's, and is refused.
/// - [`JobContext::transaction`](crate::JobContext::transaction) commits only after locking
///   the execution's row and finding it still this run's.
///
/// ```no_run
/// # async fn f() -> Result<(), tickguard::Error> {
/// use tickguard::{Scheduler, store::PostgresStore};
///
/// let store = PostgresStore::connect("postgres://app@10.0.0.7/app").await?;
/// let scheduler = Scheduler::builder().store(store).build().await?;
/// # let _ = scheduler; Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    schema: String,
    sql: Arc<Statements>,
    ops: Arc<OpStatements>,
    description: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("server", &self.description)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// The schema of the tables unless [`PostgresStore::connect_with_schema`] names another.
    pub const DEFAULT_SCHEMA: &'static str = "public";

    /// Connects to the PostgreSQL server at `url`
    /// (`postgres://[user[:password]@]host[:port]/database[?param=value&..]`) and creates
    /// or migrates the tables in schema `public`.
    ///
    /// Fails with an error naming the address and what to check when the URL is malformed,
    /// the server cannot be reached within 5 s, it refuses the credentials or the database,
    /// or the tables cannot be created. The pool holds at most 10 connections, named
    /// `tickguard` in `pg_stat_activity` unless the URL sets `application_name`; an operation
    /// waits at most 3 s for one.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_schema(url, Self::DEFAULT_SCHEMA).await
    }

    /// [`PostgresStore::connect`] with the tables in `schema` (created if missing). The name
    /// is used verbatim, as a quoted identifier. Instances that share jobs must share it.
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        let options = parse_url(url).map_err(|message| StoreError::unavailable(message, None))?;
        let addr = address(&options);
        let mut conn = connect(&options).await?;
        let sql = Statements::new(schema);
        let migrated = migrate(&mut conn, &sql).await;
        let _ = conn.close().await;
        migrated.map_err(|e| setup_error(&addr, schema, e))?;
        Ok(Self::with_pool(&options, schema, sql))
    }

    /// Opens the store whose tables an instance already created in `schema`, for tools
    /// that read and change it (the `tickguard` command): it never creates nor migrates
    /// anything.
    ///
    /// Fails with an error naming the address (never the password) and what to check when
    /// the URL is malformed, the server cannot be reached, there are no tickguard tables in
    /// the schema, or they are at another version than this build's.
    pub async fn connect_existing(url: &str, schema: &str) -> Result<Self, StoreError> {
        let options = parse_url(url).map_err(|message| StoreError::unavailable(message, None))?;
        let addr = address(&options);
        let mut conn = connect(&options).await?;
        let sql = Statements::new(schema);
        let found = current_version(&mut conn, &sql).await;
        let _ = conn.close().await;
        let found = found.map_err(|e| {
            StoreError::unavailable(
                format!(
                    "PostgreSQL at {addr}: cannot read the version of the tickguard tables in \
                     schema `{schema}`: {}; may this user read the schema?",
                    reason(&e)
                ),
                Some(Box::new(e)),
            )
        })?;
        let needs = MIGRATIONS.last().map_or(0, |m| m.version);
        match found {
            None | Some(0) => {
                return Err(StoreError::unavailable(
                    format!(
                        "no tickguard tables in schema `{schema}` at {addr}: start a scheduler \
                         on this store once to create them, or check --schema"
                    ),
                    None,
                ));
            }
            Some(found) if found != needs => {
                let what = if found < needs {
                    "start an instance of this version to migrate them"
                } else {
                    "use a tickguard command of the version that migrated them"
                };
                return Err(StoreError::unavailable(
                    format!(
                        "the tickguard tables in schema `{schema}` at {addr} are at version \
                         {found}, this build needs {needs}: {what}"
                    ),
                    None,
                ));
            }
            Some(_) => {}
        }
        Ok(Self::with_pool(&options, schema, sql))
    }

    /// The store over a new pool to the server of `options`, on tables that are ready.
    fn with_pool(
        options: &sqlx::postgres::PgConnectOptions,
        schema: &str,
        sql: Statements,
    ) -> Self {
        // The store's own transactions take a few round trips: one left idle (its process
        // stopped or frozen mid-claim) would hold the job's row lock and stall every claim of
        // the job, so the server ends it. Jobs' transactions set their own limit.
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // No ping before each statement: a dead connection fails its statement, which
            // `run` sends once more on a fresh one.
            .test_before_acquire(false)
            .connect_lazy_with(options.clone().options([(
                "idle_in_transaction_session_timeout",
                STORE_IDLE_IN_TRANSACTION.as_millis(),
            )]));
        Self {
            pool,
            schema: schema.to_owned(),
            ops: Arc::new(OpStatements::new(&sql.schema)),
            sql: Arc::new(sql),
            description: describe(options),
        }
    }

    /// Uses a ready pool (the application's own, say) with the tables in `schema`, and
    /// creates or migrates them now. The pool's own settings apply: give its connections an
    /// `idle_in_transaction_session_timeout` (a few seconds) as [`PostgresStore::connect`]
    /// does, so that a process frozen in the middle of a claim cannot stall the job's claims
    /// on other instances. The control listener's connection (see
    /// [`SchedulerBuilder::control_listen`](crate::SchedulerBuilder::control_listen)) is
    /// opened by tickguard with the pool's connect options and logs its statements at DEBUG
    /// like tickguard's other connections.
    pub async fn from_pool(pool: PgPool, schema: &str) -> Result<Self, StoreError> {
        let options = pool.connect_options();
        let addr = address(&options);
        let sql = Statements::new(schema);
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| StoreError::from(cannot_reach(&addr, e)))?;
        migrate(&mut conn, &sql)
            .await
            .map_err(|e| setup_error(&addr, schema, e))?;
        drop(conn);
        Ok(Self {
            description: describe(&options),
            pool,
            schema: schema.to_owned(),
            ops: Arc::new(OpStatements::new(&sql.schema)),
            sql: Arc::new(sql),
        })
    }

    sql::methods::accessors!(PgPool);

    sql::methods::fenced_write!(Postgres);

    /// The schema of the tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Runs an operation, and once more if its connection turned out to be dead (the server
    /// restarted, or an administrator terminated the backend): the pool then hands out a
    /// fresh connection. `retried` tells the second run that the first may have been applied.
    async fn run<T, Fut>(&self, op: impl Fn(bool) -> Fut) -> Result<T, SqlxError>
    where
        Fut: Future<Output = Result<T, SqlxError>>,
    {
        match op(false).await {
            Err(e) if connection_lost(&e) => op(true).await,
            other => other,
        }
    }

    fn error(&self, what: &str, e: SqlxError) -> StoreError {
        let hint = hint(
            &e,
            "the store's tables are gone: restart the instance to create them again",
            "the tickguard tables",
        );
        let why = match &e {
            SqlxError::PoolTimedOut => format!("no connection within {ACQUIRE_TIMEOUT:?}"),
            e => reason(e),
        };
        StoreError::unavailable(
            format!(
                "PostgreSQL at {}: {what} failed: {why}{hint}",
                self.description
            ),
            Some(Box::new(e)),
        )
    }

    /// One try of a claim (`retried` when an earlier try of it may have committed): in one
    /// statement when the job has no running execution (the
    /// common case), otherwise (or when that statement cannot decide) in a transaction that
    /// reads the rows and lets [`decide`] judge them.
    async fn claim_once(
        &self,
        req: &ClaimRequest<'_>,
        retried: bool,
    ) -> Result<Result<Claim, Refused>, SqlxError> {
        if let Some(claimed) = self.claim_free(req).await? {
            return Ok(Ok(Claim::Acquired(claimed)));
        }
        dialect::claim(self, req, retried).await
    }

    /// The claim of a job that no execution holds, in one statement (one round trip instead
    /// of five). It takes the job's row only where the row names no running execution (a
    /// finish clears the name), so two claims of a free job are decided by the row lock: the
    /// second finds the first's name and changes nothing. It inserts the execution, or takes
    /// over one that is not running and, for an idempotent job, did not run to its end.
    /// `None` when it changed nothing; the caller then decides in a transaction. (When the
    /// job's row was taken but the execution then refused, which a finish racing this
    /// statement can cause, the row names an execution that is not running: the next claim's
    /// transaction sees through it.)
    async fn claim_free(&self, req: &ClaimRequest<'_>) -> Result<Option<Claimed>, SqlxError> {
        let taken: Option<(i64, Attempt, Option<String>, bool)> =
            sqlx::query_as(AssertSqlSafe(self.sql.take_free.as_str()))
                .bind(req.job)
                .bind(req.execution_id)
                .bind(req.scheduled_at)
                .bind(req.owner)
                .bind(sql::millis(req.liveness))
                .bind(req.next_fire)
                .bind(req.idempotent)
                .bind(sql::millis(EARLY_TOLERANCE))
                .bind(req.refuse_early)
                .fetch_optional(&self.pool)
                .await?;
        Ok(taken.map(|(fence, attempts, checkpoint, resumed)| {
            dialect::claimed(Taken::new(fence, attempts, checkpoint), resumed)
        }))
    }

    /// Records the run's end on its execution's row (fenced).
    async fn finish_row(&self, exec: &ExecutionRef, finish: &Finish<'_>) -> Result<(), StoreError> {
        let (rows, retried) = self
            .run(|retried| async move {
                let done: i64 = sqlx::query_scalar(AssertSqlSafe(self.sql.finish.as_str()))
                    .bind(&exec.execution_id)
                    .bind(sql::db_fence(exec.fence))
                    .bind(finish.status.as_str())
                    .bind(i32::try_from(finish.attempts).unwrap_or(i32::MAX))
                    .bind(finish.error)
                    .bind(&exec.job)
                    .fetch_one(&self.pool)
                    .await?;
                Ok((done, retried))
            })
            .await
            .map_err(|e| self.error("recording the execution's end", e))?;
        if rows == 1 {
            return Ok(());
        }
        if retried {
            // The first try may have been applied before its connection died.
            let row: Option<(String, i64, String)> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT status, fence, owner FROM {}.tickguard_executions WHERE id = $1",
                self.sql.schema
            )))
            .bind(&exec.execution_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.error("recording the execution's end", e))?;
            if row.is_some_and(|(status, fence, _)| {
                sql::fence(fence) == exec.fence && sql::status(&status).ok() == Some(finish.status)
            }) {
                return Ok(());
            }
        }
        Err(sql::fenced(exec))
    }

    /// Whether `exec` still holds its execution: after a retried write that touched no row,
    /// this tells a first try that was applied from a stale run.
    async fn still_owned(&self, exec: &ExecutionRef) -> Result<bool, SqlxError> {
        let row: Option<i32> = sqlx::query_scalar(AssertSqlSafe(self.sql.owned.as_str()))
            .bind(&exec.execution_id)
            .bind(sql::db_fence(exec.fence))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The rows of the jobs' executions that were cancelled or whose owner stopped
    /// heartbeating `liveness` ago, by the database's clock.
    async fn interrupted_rows(
        &self,
        jobs: &[String],
        liveness: Duration,
        limit: usize,
    ) -> sqlx::Result<Vec<InterruptedRow>> {
        sqlx::query_as(AssertSqlSafe(self.sql.interrupted.as_str()))
            .bind(jobs)
            .bind(sql::millis(liveness))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(sql::millis(EARLY_TOLERANCE))
            .bind(INTERRUPTED_PER_JOB as i64)
            .fetch_all(&self.pool)
            .await
    }
}

/// A transaction's statements on PostgreSQL: "now" is the server's `clock_timestamp()`,
/// and the rows a transaction judges are locked as it reads them.
impl SqlDialect for PostgresStore {
    type Db = Postgres;
    type Now = ();

    sql::dialect::shared_dialect_methods!();

    fn now() {}

    async fn begin(&self) -> sqlx::Result<Tx<Self>> {
        self.pool.begin().await
    }

    async fn lock_job(
        &self,
        tx: &mut Tx<Self>,
        req: &ClaimRequest<'_>,
        (): (),
    ) -> sqlx::Result<(Option<String>, bool, Option<DateTime<Utc>>)> {
        // Claims of one job queue up on the job's row, which this inserts or locks; it names
        // the job's running execution, if any (at most one: a claim that takes an execution
        // abandons the others), and says whether the tick is due by the server's clock.
        sqlx::query_as(AssertSqlSafe(self.sql.lock_job.as_str()))
            .bind(req.job)
            .bind(req.scheduled_at)
            .bind(sql::millis(EARLY_TOLERANCE))
            .bind(req.refuse_early)
            .fetch_one(&mut **tx)
            .await
    }

    async fn open_rows(
        &self,
        tx: &mut Tx<Self>,
        req: &ClaimRequest<'_>,
        running: Option<&str>,
        (): (),
    ) -> sqlx::Result<Vec<OpenRow>> {
        // A statement of its own, after the lock: it sees what the claims before it wrote.
        // It reads by key (this execution and the running one), so its cost does not grow
        // with the job's history, and locks the rows it reads, so that a finish racing this
        // claim is either seen (the tick is done) or waits for it (it then finds the
        // execution taken over).
        sqlx::query_as(AssertSqlSafe(self.sql.open_rows.as_str()))
            .bind(req.job)
            .bind(req.execution_id)
            .bind(sql::millis(req.liveness))
            .bind(running)
            .fetch_all(&mut **tx)
            .await
    }

    async fn take(
        &self,
        tx: &mut Tx<Self>,
        req: &ClaimRequest<'_>,
        running: Option<&str>,
        (): (),
    ) -> sqlx::Result<Option<Taken>> {
        let taken: Option<(i64, Attempt, Option<String>)> =
            sqlx::query_as(AssertSqlSafe(self.sql.take.as_str()))
                .bind(req.job)
                .bind(req.execution_id)
                .bind(req.scheduled_at)
                .bind(req.owner)
                .bind(sql::millis(req.liveness))
                .bind(req.next_fire)
                .bind(running)
                .fetch_optional(&mut **tx)
                .await?;
        Ok(taken.map(|(fence, attempts, checkpoint)| Taken::new(fence, attempts, checkpoint)))
    }

    async fn once_row(
        &self,
        tx: &mut Tx<Self>,
        exec: &ExecutionRef,
        key: &str,
        per_execution: bool,
    ) -> sqlx::Result<Option<OnceRow>> {
        // A step row is inserted, or the existing one locked and judged. A row deleted in
        // between (its holder's step failed) is inserted on the next round.
        loop {
            let inserted = sqlx::query(AssertSqlSafe(self.sql.once_insert.as_str()))
                .bind(key)
                .bind(&exec.job)
                .bind(&exec.execution_id)
                .bind(sql::db_fence(exec.fence))
                .bind(per_execution)
                .execute(&mut **tx)
                .await?;
            if inserted.rows_affected() == 1 {
                return Ok(None);
            }
            let row: Option<OnceRow> = sqlx::query_as(AssertSqlSafe(self.sql.once_row.as_str()))
                .bind(key)
                .fetch_optional(&mut **tx)
                .await?;
            if row.is_some() {
                return Ok(row);
            }
        }
    }

    async fn holder_live(&self, tx: &mut Tx<Self>, holder: &str, fence: i64) -> sqlx::Result<bool> {
        sqlx::query_scalar(AssertSqlSafe(self.sql.holder_live.as_str()))
            .bind(holder)
            .bind(fence)
            .fetch_one(&mut **tx)
            .await
    }

    async fn once_put(
        &self,
        tx: &mut Tx<Self>,
        exec: &ExecutionRef,
        key: &str,
        _per_execution: bool,
        holder: Holder,
    ) -> sqlx::Result<()> {
        // `once_row` inserted this run's row where there was none.
        if holder != Holder::Gone {
            return Ok(());
        }
        sqlx::query(AssertSqlSafe(self.sql.once_take.as_str()))
            .bind(key)
            .bind(&exec.job)
            .bind(&exec.execution_id)
            .bind(sql::db_fence(exec.fence))
            .execute(&mut **tx)
            .await
            .map(drop)
    }
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        let source = failure
            .source
            .map(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync + 'static>);
        Self::unavailable(failure.message, source)
    }
}

/// The startup error: connected, but the tables could not be created or migrated.
fn setup_error(addr: &str, schema: &str, e: MigrateError) -> StoreError {
    let e = match e {
        MigrateError::Newer { found, known } => {
            return StoreError::unavailable(
                format!(
                    "PostgreSQL at {addr}: the tickguard tables in schema `{schema}` are at \
                     version {found}, newer than this build knows ({known}): upgrade this \
                     instance"
                ),
                None,
            );
        }
        MigrateError::Db(e) => e,
    };
    let check = match &e {
        SqlxError::Database(db) => match db.code().as_deref() {
            Some("42501") => {
                "grant this user CREATE on the schema (and on the database, if the schema is \
                 missing), or create the tables beforehand (their statements: \
                 https://docs.rs/tickguard/latest/tickguard/docs/stores/index.html#tables)"
            }
            _ => {
                "check the tables against \
                 https://docs.rs/tickguard/latest/tickguard/docs/stores/index.html#tables"
            }
        },
        _ => "is postgres running and reachable?",
    };
    StoreError::unavailable(
        format!(
            "PostgreSQL at {addr}: cannot set up the tickguard tables in schema `{schema}`: \
             {}; {check}",
            reason(&e)
        ),
        Some(Box::new(e)),
    )
}

/// Creates or migrates the tables.
async fn migrate(conn: &mut PgConnection, sql: &Statements) -> Result<(), MigrateError> {
    // Before the migrations' transaction: see `create_schema`.
    crate::postgres::create_schema(conn, &sql.schema).await?;
    migrate::run(&mut PgMigrator { conn, sql }, MIGRATIONS).await
}

/// The Postgres side of the migration loop: a session advisory lock so that concurrent
/// startups apply each migration once, and a transaction that begins after the lock is
/// granted (one that began before another instance created the tables could still see
/// them missing in its catalog caches).
struct PgMigrator<'a> {
    conn: &'a mut PgConnection,
    sql: &'a Statements,
}

impl Migrate for PgMigrator<'_> {
    async fn version_unlocked(&mut self) -> Result<Option<i32>, SqlxError> {
        // The common case, with no lock: every instance after the first finds the tables
        // ready.
        current_version(self.conn, self.sql).await
    }

    async fn lock(&mut self) -> Result<(), SqlxError> {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *self.conn)
            .await?;
        match sqlx::raw_sql("BEGIN").execute(&mut *self.conn).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = self.unlock_session().await;
                Err(e)
            }
        }
    }

    async fn ensure_migrations_table(&mut self) -> Result<(), SqlxError> {
        if current_version(self.conn, self.sql).await?.is_some() {
            return Ok(());
        }
        // The schema was created before the transaction began (see `migrate`).
        let schema = &self.sql.schema;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {schema}.tickguard_migrations (\
             version integer PRIMARY KEY, \
             description text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )))
        .execute(&mut *self.conn)
        .await
        .map(drop)
        .or_else(already_exists)
    }

    async fn version(&mut self) -> Result<i32, SqlxError> {
        Ok(current_version(self.conn, self.sql).await?.unwrap_or(0))
    }

    async fn apply(&mut self, m: &Migration) -> Result<(), SqlxError> {
        let schema = &self.sql.schema;
        sqlx::raw_sql(AssertSqlSafe(m.sql.replace("{schema}", schema)))
            .execute(&mut *self.conn)
            .await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {schema}.tickguard_migrations (version, description) VALUES ($1, $2)"
        )))
        .bind(m.version)
        .bind(m.description)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn unlock(&mut self, commit: bool) -> Result<(), SqlxError> {
        let end = if commit { "COMMIT" } else { "ROLLBACK" };
        let ended = sqlx::raw_sql(end).execute(&mut *self.conn).await;
        let unlocked = self.unlock_session().await;
        ended?;
        unlocked
    }
}

impl PgMigrator<'_> {
    async fn unlock_session(&mut self) -> Result<(), SqlxError> {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *self.conn)
            .await
            .map(drop)
    }
}

/// The schema's version, or `None` before the first migration.
async fn current_version(
    conn: &mut PgConnection,
    sql: &Statements,
) -> Result<Option<i32>, SqlxError> {
    // A scan of the catalog, not `to_regclass`, whose caches may lag another session's
    // commit.
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = 'tickguard_migrations')",
    )
    .bind(&sql.raw_schema)
    .fetch_one(&mut *conn)
    .await?;
    if !exists {
        return Ok(None);
    }
    let version: Option<i32> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT max(version) FROM {}.tickguard_migrations",
        sql.schema
    )))
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(version.unwrap_or(0)))
}

/// The statements, with the schema quoted in.
struct Statements {
    /// `"schema"`
    schema: String,
    /// `schema`, as given.
    raw_schema: String,
    lock_job: String,
    register: String,
    open_rows: String,
    own_row: String,
    take: String,
    take_free: String,
    owned: String,
    holds: String,
    heartbeat: String,
    checkpoint: String,
    last_checkpoint: String,
    finish: String,
    once_insert: String,
    once_row: String,
    holder_live: String,
    once_take: String,
    once_done: String,
    once_forget: String,
    forget_once_steps: String,
    executions: String,
    execution: String,
    register_all: String,
    record_ticks: String,
    dead_letters: String,
    interrupted: String,
    fence_check: Arc<str>,
}

impl Statements {
    /// The statements for tables in `schema`. Long, but only SQL text: one statement each,
    /// with the comments that say why it is written so.
    fn new(schema: &str) -> Self {
        let s = quote(schema);
        let jobs = format!("{s}.tickguard_jobs");
        let ex = format!("{s}.tickguard_executions");
        let once = format!("{s}.tickguard_once");
        let runs = format!("{s}.tickguard_runs");
        // The run a claim starts, inserted from what the claim's insert returned (`taken`):
        // a claim that does not win writes none.
        let run = format!(
            "run AS (INSERT INTO {runs} (execution_id, fence, job, owner, started_at, attempts) \
                 SELECT $2, fence, $1, $4, started_at, attempt FROM taken)"
        );
        // A takeover closes the open runs of this execution and of the job's running one it
        // abandons: their owners are gone, and ended at their last heartbeat (`before`, as
        // the statement's snapshot saw the rows).
        let closed = format!(
            "closed AS (UPDATE {runs} r SET ended_at = b.heartbeat_at, outcome = 'ABANDONED', \
                 attempts = b.attempt \
             FROM before b WHERE r.execution_id = b.id AND r.ended_at IS NULL \
                 AND EXISTS (SELECT 1 FROM taken))"
        );
        // `$1` and `$2` of every fenced statement are the execution's id and fence.
        let mine = "id = $1 AND fence = $2 AND status = 'RUNNING'";
        let ms = "* interval '1 millisecond'";
        // The statuses of an execution that ran to its end (or was skipped for good): an
        // idempotent claim finds its tick done.
        let final_statuses = "'COMPLETED', 'FAILED', 'TIMED_OUT', 'SKIPPED'";
        let (abandoned, abandoned_asked) = (sql::ABANDONED, sql::ABANDONED_ASKED_TO_STOP);
        Self {
            lock_job: format!(
                "INSERT INTO {jobs} (job) VALUES ($1) \
                 ON CONFLICT (job) DO UPDATE SET job = EXCLUDED.job \
                 RETURNING running_id, NOT $4 OR $2::timestamptz <= clock_timestamp() + $3 {ms}, \
                     pruned_through"
            ),
            register: format!(
                "INSERT INTO {jobs} AS j (job, trigger, zone, next_fire_at, created_at, \
                     circuit_breaker) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (job) DO UPDATE SET trigger = EXCLUDED.trigger, \
                     zone = EXCLUDED.zone, next_fire_at = EXCLUDED.next_fire_at, \
                     circuit_breaker = EXCLUDED.circuit_breaker \
                 RETURNING fence, created_at, last_tick"
            ),
            open_rows: format!(
                "SELECT id, status, \
                     status = 'RUNNING' AND heartbeat_at > clock_timestamp() - $3 {ms}, owner, \
                     cancel_kind IS NOT NULL \
                 FROM {ex} WHERE job = $1 AND id IN ($2, $4) FOR UPDATE"
            ),
            own_row: format!("SELECT fence, attempt - 1, checkpoint::text FROM {ex} WHERE id = $1"),
            // Bumps the fence and records this execution as the job's running one, abandons
            // the job's other running execution (`$7`: its owner is gone, it was not live),
            // and inserts or takes over this one, counting the attempt it starts (so an
            // owner that dies mid-run is counted). The `WHERE` of the update refuses an id
            // that another job's execution has.
            take: format!(
                "WITH bumped AS (\
                     UPDATE {jobs} SET fence = fence + 1, last_tick = GREATEST(last_tick, $3), \
                         next_fire_at = GREATEST($6, next_fire_at), running_id = $2 \
                     WHERE job = $1 RETURNING fence), \
                 abandoned AS (\
                     UPDATE {ex} SET status = 'CANCELLED', finished_at = clock_timestamp(), \
                         error = CASE WHEN cancel_kind IS NULL THEN '{abandoned}' \
                             ELSE '{abandoned_asked}' END \
                     WHERE id = $7 AND job = $1 AND status = 'RUNNING' AND id <> $2 \
                     RETURNING id), \
                 before AS (SELECT id, heartbeat_at, attempt FROM {ex} WHERE id IN ($2, $7)), \
                 taken AS (\
                     INSERT INTO {ex} AS e (id, job, scheduled_at, status, fence, owner, attempt, \
                         started_at, heartbeat_at, liveness_ms) \
                     SELECT $2, $1, $3, 'RUNNING', bumped.fence, $4, 1, clock_timestamp(), \
                         clock_timestamp(), $5 FROM bumped \
                     ON CONFLICT (id) DO UPDATE SET status = 'RUNNING', fence = EXCLUDED.fence, \
                         attempt = e.attempt + 1, owner = EXCLUDED.owner, \
                         scheduled_at = EXCLUDED.scheduled_at, started_at = EXCLUDED.started_at, \
                         heartbeat_at = EXCLUDED.heartbeat_at, liveness_ms = EXCLUDED.liveness_ms, \
                         finished_at = NULL, error = NULL \
                     WHERE e.job = EXCLUDED.job \
                     RETURNING fence, attempt, checkpoint, started_at), \
                 {closed}, \
                 {run} \
                 SELECT fence, attempt - 1, checkpoint::text FROM taken"
            ),
            // The claim of a free job in one statement; see `PostgresStore::claim_free`. The
            // job's row is updated only where it names no running execution and this id is
            // neither another job's, nor running, nor (`$7`, idempotent) run to its end; the
            // insert re-checks the row it conflicts with at its latest version. A tick at or
            // before the job's pruned watermark always goes to the transaction, which reads
            // the execution's row after the job's lock: a prune that committed while this
            // statement waited for that lock may have deleted a row its snapshot still sees.
            take_free: format!(
                "WITH bumped AS (\
                     UPDATE {jobs} SET fence = fence + 1, last_tick = GREATEST(last_tick, $3), \
                         next_fire_at = GREATEST($6, next_fire_at), running_id = $2 \
                     WHERE job = $1 AND running_id IS NULL \
                         AND (NOT $9 OR $3 <= clock_timestamp() + $8 {ms}) \
                         AND (pruned_through IS NULL OR $3 > pruned_through) \
                         AND NOT EXISTS (\
                         SELECT 1 FROM {ex} WHERE id = $2 AND (job <> $1 OR status = 'RUNNING' \
                             OR cancel_kind IS NOT NULL \
                             OR ($7 AND status IN ({final_statuses})))) \
                     RETURNING fence), \
                 taken AS (\
                     INSERT INTO {ex} AS e (id, job, scheduled_at, status, fence, owner, attempt, \
                         started_at, heartbeat_at, liveness_ms) \
                     SELECT $2, $1, $3, 'RUNNING', bumped.fence, $4, 1, clock_timestamp(), \
                         clock_timestamp(), $5 FROM bumped \
                     ON CONFLICT (id) DO UPDATE SET status = 'RUNNING', fence = EXCLUDED.fence, \
                         attempt = e.attempt + 1, owner = EXCLUDED.owner, \
                         scheduled_at = EXCLUDED.scheduled_at, started_at = EXCLUDED.started_at, \
                         heartbeat_at = EXCLUDED.heartbeat_at, liveness_ms = EXCLUDED.liveness_ms, \
                         finished_at = NULL, error = NULL \
                     WHERE e.job = EXCLUDED.job AND e.status <> 'RUNNING' \
                         AND e.cancel_kind IS NULL \
                         AND NOT ($7 AND e.status IN ({final_statuses})) \
                     RETURNING fence, attempt, checkpoint, started_at, \
                         xmax <> 0 AND attempt > 1 AS resumed), \
                 {run} \
                 SELECT fence, attempt - 1, checkpoint::text, resumed FROM taken"
            ),
            owned: format!("SELECT 1 FROM {ex} WHERE {mine}"),
            holds: format!("SELECT 1 FROM {ex} WHERE {mine} FOR SHARE"),
            heartbeat: format!("UPDATE {ex} SET heartbeat_at = clock_timestamp() WHERE {mine}"),
            checkpoint: format!("UPDATE {ex} SET checkpoint = $3::json WHERE {mine}"),
            last_checkpoint: format!("SELECT checkpoint::text FROM {ex} WHERE {mine}"),
            // Records the run's end and, unless a claim moved the job's fence since, clears
            // the job's running execution, so that the job's next claim is one statement.
            // The job's row is locked first (the one-time filter runs before the execution's
            // row is read), the order every claim takes them in.
            finish: format!(
                "WITH job AS MATERIALIZED (SELECT 1 FROM {jobs} WHERE job = $6 FOR UPDATE), \
                 finished AS (\
                     UPDATE {ex} SET status = $3, attempt = $4, error = $5, \
                         finished_at = clock_timestamp() \
                     WHERE {mine} AND (SELECT count(*) FROM job) >= 0 \
                     RETURNING id, finished_at), \
                 ended AS (\
                     UPDATE {runs} r SET ended_at = f.finished_at, outcome = $3, attempts = $4, \
                         error = $5 \
                     FROM finished f WHERE r.execution_id = $1 AND r.fence = $2), \
                 freed AS (\
                     UPDATE {jobs} SET running_id = NULL \
                     WHERE job = $6 AND running_id = $1 AND fence = $2 \
                         AND EXISTS (SELECT 1 FROM finished)) \
                 SELECT count(*) FROM finished"
            ),
            once_insert: format!(
                "INSERT INTO {once} (key, job, execution_id, fence, started_at, per_execution) \
                 VALUES ($1, $2, $3, $4, clock_timestamp(), $5) ON CONFLICT (key) DO NOTHING"
            ),
            once_row: format!(
                "SELECT execution_id, fence, done_at IS NOT NULL FROM {once} \
                 WHERE key = $1 FOR UPDATE"
            ),
            holder_live: format!(
                "SELECT EXISTS (SELECT 1 FROM {ex} WHERE {mine} \
                     AND heartbeat_at > clock_timestamp() - liveness_ms {ms})"
            ),
            once_take: format!(
                "UPDATE {once} SET job = $2, execution_id = $3, fence = $4, \
                     started_at = clock_timestamp() \
                 WHERE key = $1"
            ),
            // The share lock on the execution's row orders these after (or before) any claim
            // that takes the execution over.
            once_done: format!(
                "WITH owned AS (SELECT 1 FROM {ex} WHERE {mine} FOR SHARE) \
                 UPDATE {once} SET done_at = clock_timestamp() \
                 WHERE key = $3 AND execution_id = $1 AND fence = $2 \
                   AND EXISTS (SELECT 1 FROM owned)"
            ),
            once_forget: format!(
                "WITH owned AS (SELECT 1 FROM {ex} WHERE {mine} FOR SHARE) \
                 DELETE FROM {once} \
                 WHERE key = $3 AND execution_id = $1 AND fence = $2 \
                   AND EXISTS (SELECT 1 FROM owned)"
            ),
            execution: format!(
                "SELECT id, job, scheduled_at, status, fence, owner, attempt, started_at, \
                     heartbeat_at, finished_at, error, checkpoint::text, requested_by \
                 FROM {ex} WHERE id = $1"
            ),
            // Up to `$3` per-execution steps of the jobs `$1` whose execution ran to its end
            // `$2` ms ago or more (or is gone: deleted with the history). Rows another
            // instance is deleting right now are skipped, not waited for. An execution that
            // ran to its end is claimed again only by a job that is not idempotent, under its
            // own id, and those are unique per run: the execution read here cannot reopen.
            forget_once_steps: format!(
                "DELETE FROM {once} WHERE key IN (\
                     SELECT o.key FROM {once} o \
                     WHERE o.per_execution AND o.job = ANY($1) AND NOT EXISTS (\
                         SELECT 1 FROM {ex} e WHERE e.id = o.execution_id \
                         AND (e.status NOT IN ('COMPLETED', 'SKIPPED') \
                             OR e.finished_at IS NULL \
                             OR e.finished_at > clock_timestamp() - $2 {ms})) \
                     LIMIT $3 FOR UPDATE OF o SKIP LOCKED)"
            ),
            // One statement for every job of an instance; `DISTINCT ON` keeps the first
            // registration of a name given twice.
            // The ledger's ticks, in one statement: a pending or skipped row where the
            // execution has none, and a pending row skipped (never a claimed one). A tick at
            // or before the latest one a prune deleted is not recorded (it may have run),
            // though a pending row it names is still skipped: the job's row is read with a
            // share lock, so a prune in progress is waited for and its watermark seen.
            record_ticks: format!(
                "INSERT INTO {ex} AS e (id, job, scheduled_at, status, fence, owner, attempt, \
                     started_at, heartbeat_at, liveness_ms, finished_at, error) \
                 SELECT t.id, t.job, t.at, \
                     CASE WHEN t.reason IS NULL THEN 'PENDING' ELSE 'SKIPPED' END, 0, t.owner, 0, \
                     clock_timestamp(), clock_timestamp(), 0, \
                     CASE WHEN t.reason IS NULL THEN NULL ELSE clock_timestamp() END, t.reason \
                 FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[]) \
                     AS t(id, job, at, owner, reason) \
                 WHERE NOT EXISTS (SELECT 1 FROM (\
                     SELECT j.pruned_through FROM {jobs} j WHERE j.job = t.job FOR SHARE) p \
                     WHERE p.pruned_through >= t.at) \
                     OR EXISTS (SELECT 1 FROM {ex} x WHERE x.id = t.id) \
                 ON CONFLICT (id) DO UPDATE SET status = 'SKIPPED', error = EXCLUDED.error, \
                     finished_at = clock_timestamp() \
                 WHERE e.status = 'PENDING' AND EXCLUDED.status = 'SKIPPED' \
                     AND e.job = EXCLUDED.job \
                 RETURNING id, status = 'SKIPPED'"
            ),
            register_all: format!(
                "INSERT INTO {jobs} AS j (job, trigger, zone, next_fire_at, created_at, \
                     circuit_breaker) \
                 SELECT DISTINCT ON (job) job, trigger, zone, next_fire_at, created_at, \
                     circuit_breaker \
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], \
                     $5::timestamptz[], $6::text[]) WITH ORDINALITY \
                     AS r(job, trigger, zone, next_fire_at, created_at, circuit_breaker, n) \
                 ORDER BY job, n \
                 ON CONFLICT (job) DO UPDATE SET trigger = EXCLUDED.trigger, \
                     zone = EXCLUDED.zone, next_fire_at = EXCLUDED.next_fire_at, \
                     circuit_breaker = EXCLUDED.circuit_breaker \
                 RETURNING job, fence, created_at, last_tick"
            ),
            executions: format!(
                "SELECT id, job, scheduled_at, status, fence, owner, attempt, started_at, \
                     heartbeat_at, finished_at, error, checkpoint::text, requested_by \
                 FROM {ex} WHERE job = $1 \
                 ORDER BY scheduled_at DESC, started_at DESC LIMIT $2"
            ),
            dead_letters: format!(
                "SELECT id, job, scheduled_at, status, fence, owner, attempt, started_at, \
                     heartbeat_at, finished_at, error, checkpoint::text, requested_by \
                 FROM {ex} WHERE status = 'FAILED' AND ($1::text IS NULL OR job = $1) \
                 ORDER BY finished_at DESC LIMIT $2"
            ),
            // Requested executions first, then interrupted ones, then pending ticks, each
            // oldest first (a backlog never keeps a request waiting), and at most `$5` of
            // one job: a job whose ticks cannot run now does not keep the others waiting.
            interrupted: format!(
                "SELECT job, id, scheduled_at, status, attempt, requested FROM (\
                     SELECT job, id, scheduled_at, status, attempt, \
                         requested_by IS NOT NULL AS requested, row_number() OVER (\
                         PARTITION BY job ORDER BY requested_by IS NULL, status = 'PENDING', scheduled_at) AS n \
                     FROM {ex} \
                     WHERE job = ANY($1) AND cancel_kind IS NULL \
                         AND (status = 'CANCELLED' OR (status = 'RUNNING' \
                         AND heartbeat_at <= clock_timestamp() - $2 {ms}) OR (status = 'PENDING' \
                         AND scheduled_at <= clock_timestamp() + $4 {ms}))) open \
                 WHERE n <= $5 ORDER BY NOT requested, status = 'PENDING', scheduled_at LIMIT $3"
            ),
            fence_check: format!("SELECT 1 FROM {ex} WHERE {mine} FOR SHARE").into(),
            raw_schema: schema.to_owned(),
            schema: s,
        }
    }
}

/// An instant as PostgreSQL stores it (`timestamptz`).
type Instant = DateTime<Utc>;

/// An instant as bound.
fn at(t: DateTime<Utc>) -> Instant {
    t
}

/// Attempts as PostgreSQL stores them (`integer`).
type Attempt = i32;

type ExecutionRow = sql::ExecutionRow<Instant, Attempt>;

type InterruptedRow = sql::InterruptedRow<Instant, Attempt>;

/// A job's row as registration returns it: name, fence, created_at, last_tick.
type JobRow = (String, i64, DateTime<Utc>, Option<DateTime<Utc>>);

impl ExecutionStore for PostgresStore {
    sql::methods::operations_methods!();

    sql::methods::execution_store_methods!();

    fn register_all<'a>(
        &'a self,
        jobs: &'a [JobRegistration<'a>],
    ) -> BoxFuture<'a, Result<Vec<JobRecord>, StoreError>> {
        Box::pin(async move {
            let names: Vec<&str> = jobs.iter().map(|j| j.name).collect();
            let triggers: Vec<&str> = jobs.iter().map(|j| j.trigger.as_str()).collect();
            let zones: Vec<&str> = jobs.iter().map(|j| j.zone.as_str()).collect();
            let next: Vec<Option<DateTime<Utc>>> = jobs.iter().map(|j| j.next_fire).collect();
            let at: Vec<DateTime<Utc>> = jobs.iter().map(|j| j.registered_at).collect();
            let breakers: Vec<Option<String>> = jobs.iter().map(sql::stored_breaker).collect();
            let rows: Vec<JobRow> = self
                .run(|_| {
                    sqlx::query_as(AssertSqlSafe(self.sql.register_all.as_str()))
                        .bind(&names)
                        .bind(&triggers)
                        .bind(&zones)
                        .bind(&next)
                        .bind(&at)
                        .bind(&breakers)
                        .fetch_all(&self.pool)
                })
                .await
                .map_err(|e| self.error(&format!("registering {} jobs", jobs.len()), e))?;
            let by_name: std::collections::HashMap<String, JobRecord> = rows
                .into_iter()
                .map(|(name, fence, created_at, last_tick)| {
                    let record = sql::job_record(&name, (fence, created_at, last_tick));
                    (name, record)
                })
                .collect();
            jobs.iter()
                .map(|j| {
                    by_name.get(j.name).cloned().ok_or_else(|| {
                        StoreError::unavailable(
                            format!("PostgreSQL did not register job `{}`", j.name),
                            None,
                        )
                    })
                })
                .collect()
        })
    }

    fn record_ticks<'a>(
        &'a self,
        ticks: &'a [LedgerTick],
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            if ticks.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<&str> = ticks.iter().map(|t| t.execution_id.as_str()).collect();
            let jobs: Vec<&str> = ticks.iter().map(|t| t.job.as_str()).collect();
            let at: Vec<DateTime<Utc>> = ticks.iter().map(|t| t.scheduled_at).collect();
            let owners: Vec<&str> = ticks.iter().map(|t| t.owner.as_str()).collect();
            let reasons: Vec<Option<&str>> = ticks.iter().map(|t| t.skipped.as_deref()).collect();
            // The rows this statement inserted or changed: those it made skipped are this
            // call's.
            let changed: Vec<(String, bool)> = self
                .run(|_| {
                    sqlx::query_as(AssertSqlSafe(self.sql.record_ticks.as_str()))
                        .bind(&ids)
                        .bind(&jobs)
                        .bind(&at)
                        .bind(&owners)
                        .bind(&reasons)
                        .fetch_all(&self.pool)
                })
                .await
                .map_err(|e| self.error(&format!("recording {} ticks", ticks.len()), e))?;
            Ok(changed
                .into_iter()
                .filter_map(|(id, skipped)| skipped.then_some(id))
                .collect())
        })
    }

    fn heartbeat<'a>(&'a self, exec: &'a ExecutionRef) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.fenced_write("a heartbeat", exec, &self.sql.heartbeat, |q| q))
    }

    fn once_end<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        key: &'a str,
        scope: OnceScope,
        done: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let stored = scope.stored_key(exec, key);
            let stored = stored.as_ref();
            let statement = if done {
                &self.sql.once_done
            } else {
                &self.sql.once_forget
            };
            let (rows, retried) = self
                .run(|retried| async move {
                    let done = sqlx::query(AssertSqlSafe(statement.as_str()))
                        .bind(&exec.execution_id)
                        .bind(sql::db_fence(exec.fence))
                        .bind(stored)
                        .execute(&self.pool)
                        .await?;
                    Ok((done.rows_affected(), retried))
                })
                .await
                .map_err(|e| self.error(&format!("ending step `{key}`"), e))?;
            // A forget whose first try was applied finds no row the second time.
            if rows == 1
                || (retried
                    && !done
                    && self
                        .still_owned(exec)
                        .await
                        .map_err(|e| self.error("ending a step", e))?)
            {
                Ok(())
            } else {
                Err(sql::fenced(exec))
            }
        })
    }

    fn finish<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        finish: &'a Finish<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.finish_row(exec, finish).await })
    }

    fn sql(&self) -> Option<SqlStore> {
        Some(SqlStore::Postgres(self.clone()))
    }

    fn describe(&self) -> String {
        format!("{} (schema {})", self.description, self.sql.schema)
    }

    fn forget_once_steps<'a>(
        &'a self,
        jobs: &'a [String],
        older_than: Duration,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut forgot = 0;
            loop {
                let deleted = self
                    .run(|_| {
                        sqlx::query(AssertSqlSafe(self.sql.forget_once_steps.as_str()))
                            .bind(jobs)
                            .bind(sql::millis(older_than))
                            .bind(sql::FORGET_BATCH)
                            .execute(&self.pool)
                    })
                    .await
                    .map_err(|e| self.error("forgetting the steps of ended executions", e))?
                    .rows_affected();
                forgot += deleted;
                if deleted < sql::FORGET_BATCH.unsigned_abs() {
                    return Ok(forgot);
                }
            }
        })
    }
}

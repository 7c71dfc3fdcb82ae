use std::{fmt, str::FromStr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::{
    AssertSqlSafe, Error as SqlxError, Sqlite,
    sqlite::{
        SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
        SqliteSynchronous,
    },
};

use crate::future::BoxFuture;
use crate::store::migrate::{self, Migrate, MigrateError, Migration};
use crate::store::sql;
use crate::store::sql::dialect::{self, Holder, OnceRow, OpenRow, Refused, SqlDialect, Taken, Tx};
use crate::store::{
    Claim, ClaimRequest, ExecutionRecord, ExecutionRef, ExecutionStore, Finish,
    INTERRUPTED_PER_JOB, Interrupted, JobRecord, JobRegistration, LedgerTick, OnceScope, OnceState,
    StoreError,
};
use crate::transaction::SqlStore;

mod operations;

use operations::OpStatements;

/// How long a statement waits for another connection's write lock (another instance's
/// claim, a job's transaction) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the pool: writers queue on SQLite's one write lock, readers do not.
const MAX_CONNECTIONS: u32 = 4;

/// The schema, oldest first. Instants are Unix milliseconds (`INTEGER`), so that liveness
/// is plain arithmetic; `checkpoint` is JSON text.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "jobs, executions and once",
        sql: "
CREATE TABLE tickguard_jobs (
    job TEXT PRIMARY KEY NOT NULL,
    fence INTEGER NOT NULL DEFAULT 0,
    trigger TEXT NOT NULL DEFAULT '',
    zone TEXT NOT NULL DEFAULT 'UTC',
    created_at INTEGER NOT NULL,
    next_fire_at INTEGER,
    last_tick INTEGER
);
CREATE TABLE tickguard_executions (
    id TEXT PRIMARY KEY NOT NULL,
    job TEXT NOT NULL,
    scheduled_at INTEGER NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED', 'TIMED_OUT', 'CANCELLED')),
    fence INTEGER NOT NULL,
    owner TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    liveness_ms INTEGER NOT NULL,
    finished_at INTEGER,
    error TEXT,
    checkpoint TEXT
);
CREATE INDEX tickguard_executions_by_job ON tickguard_executions (job, scheduled_at DESC);
CREATE INDEX tickguard_executions_open ON tickguard_executions (job)
    WHERE status IN ('RUNNING', 'CANCELLED');
CREATE INDEX tickguard_executions_dead_letters ON tickguard_executions (finished_at DESC)
    WHERE status = 'FAILED';
CREATE TABLE tickguard_once (
    key TEXT PRIMARY KEY NOT NULL,
    job TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    fence INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    done_at INTEGER
);
",
    },
    Migration {
        version: 2,
        description: "the job's running execution on the job's row",
        sql: "
ALTER TABLE tickguard_jobs ADD COLUMN running_id TEXT;
UPDATE tickguard_jobs SET running_id = (
    SELECT e.id FROM tickguard_executions e
    WHERE e.job = tickguard_jobs.job AND e.status = 'RUNNING'
    ORDER BY e.started_at DESC LIMIT 1);
",
    },
    Migration {
        version: 3,
        description: "the ledger of ticks (PENDING and SKIPPED) and once steps per execution",
        // SQLite cannot change a CHECK constraint: the table is rebuilt.
        sql: "
CREATE TABLE tickguard_executions_v3 (
    id TEXT PRIMARY KEY NOT NULL,
    job TEXT NOT NULL,
    scheduled_at INTEGER NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'TIMED_OUT',
            'CANCELLED', 'SKIPPED')),
    fence INTEGER NOT NULL,
    owner TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    liveness_ms INTEGER NOT NULL,
    finished_at INTEGER,
    error TEXT,
    checkpoint TEXT
);
INSERT INTO tickguard_executions_v3 (id, job, scheduled_at, status, fence, owner, attempt,
        started_at, heartbeat_at, liveness_ms, finished_at, error, checkpoint)
    SELECT id, job, scheduled_at, status, fence, owner, attempt, started_at, heartbeat_at,
        liveness_ms, finished_at, error, checkpoint
    FROM tickguard_executions;
DROP TABLE tickguard_executions;
ALTER TABLE tickguard_executions_v3 RENAME TO tickguard_executions;
CREATE INDEX tickguard_executions_by_job ON tickguard_executions (job, scheduled_at DESC);
CREATE INDEX tickguard_executions_open ON tickguard_executions (job, scheduled_at)
    WHERE status IN ('PENDING', 'RUNNING', 'CANCELLED');
CREATE INDEX tickguard_executions_dead_letters ON tickguard_executions (finished_at DESC)
    WHERE status = 'FAILED';
ALTER TABLE tickguard_once ADD COLUMN per_execution INTEGER NOT NULL DEFAULT 0;
",
    },
    Migration {
        version: 4,
        description: "pauses, manual requests, runs of executions, the control version and \
                      the pruned watermark",
        sql: "
ALTER TABLE tickguard_jobs ADD COLUMN paused_at INTEGER;
ALTER TABLE tickguard_jobs ADD COLUMN paused_by TEXT;
ALTER TABLE tickguard_jobs ADD COLUMN paused_note TEXT;
ALTER TABLE tickguard_jobs ADD COLUMN pruned_through INTEGER;
ALTER TABLE tickguard_jobs ADD COLUMN pruned_at INTEGER;
ALTER TABLE tickguard_executions ADD COLUMN requested_by TEXT;
CREATE TABLE tickguard_runs (
    execution_id TEXT NOT NULL,
    fence INTEGER NOT NULL,
    job TEXT NOT NULL,
    owner TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    outcome TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    PRIMARY KEY (execution_id, fence)
);
CREATE TABLE tickguard_control (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    version INTEGER NOT NULL DEFAULT 0
);
INSERT INTO tickguard_control (id, version) VALUES (1, 0);
CREATE INDEX tickguard_executions_ended ON tickguard_executions (job, status, finished_at);
",
    },
    Migration {
        version: 5,
        description: "cancel requests on executions",
        sql: "
ALTER TABLE tickguard_executions ADD COLUMN cancel_kind TEXT;
ALTER TABLE tickguard_executions ADD COLUMN cancel_note TEXT;
ALTER TABLE tickguard_executions ADD COLUMN cancel_by TEXT;
ALTER TABLE tickguard_executions ADD COLUMN cancel_at INTEGER;
CREATE INDEX tickguard_executions_cancel ON tickguard_executions (job)
    WHERE status = 'RUNNING' AND cancel_kind IS NOT NULL;
",
    },
    Migration {
        version: 6,
        description: "the job's last resume and its circuit breaker's settings",
        sql: "
ALTER TABLE tickguard_jobs ADD COLUMN resumed_at INTEGER;
ALTER TABLE tickguard_jobs ADD COLUMN circuit_breaker TEXT;
",
    },
];

/// Executions kept in a SQLite database file (feature `sqlite`): the embedded persistent
/// store, with no server. History, checkpoints, `once` steps and the last tick survive
/// restarts, so ticks missed while the process was down follow the job's misfire policy.
///
/// Several processes on one host may share the file; every write runs under SQLite's one
/// write lock (`BEGIN IMMEDIATE` for claims), in WAL mode, waiting up to 5 s for it. The
/// clock that judges liveness is the host's. Across hosts, use
/// [`PostgresStore`](super::PostgresStore): SQLite over a network filesystem does not lock
/// reliably.
///
/// ```no_run
/// # async fn f() -> Result<(), tickguard::Error> {
/// use tickguard::{Scheduler, store::SqliteStore};
///
/// let store = SqliteStore::connect("sqlite://tickguard.db").await?;
/// let scheduler = Scheduler::builder().store(store).build().await?;
/// # let _ = scheduler; Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    sql: Arc<Statements>,
    ops: Arc<OpStatements>,
    description: String,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("file", &self.description)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// An instant as SQLite stores it (Unix milliseconds).
type Instant = i64;

/// An instant as bound.
fn at(t: DateTime<Utc>) -> Instant {
    t.timestamp_millis()
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `url` (`sqlite://path/to/file.db`, or
    /// `sqlite:file.db`; a relative path is relative to the working directory) and creates
    /// or migrates the tables.
    ///
    /// Fails with an error naming the file and what to check when the URL is malformed,
    /// the file cannot be opened or created, or the tables cannot be set up. An in-memory
    /// database is refused: [`MemoryStore`](super::MemoryStore) is the in-memory store.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let (options, file) = Self::options(url)?;
        let pool = Self::open_pool(options.create_if_missing(true), &file).await?;
        migrate(&pool).await.map_err(|e| match e {
            MigrateError::Newer { found, known } => StoreError::unavailable(
                format!(
                    "the tickguard tables in `{file}` are at version {found}, newer than this \
                     build knows ({known}): upgrade this instance"
                ),
                None,
            ),
            MigrateError::Db(e) => StoreError::unavailable(
                format!("cannot set up the tickguard tables in `{file}`: {e}"),
                Some(Box::new(e)),
            ),
        })?;
        Ok(Self {
            pool,
            sql: Arc::new(Statements::new()),
            ops: Arc::new(OpStatements::new()),
            description: format!("sqlite:{file}"),
        })
    }

    /// Opens the database at `url` whose tables an instance already created, for tools that
    /// read and change the store (the `tickguard` command): it never creates the file, nor
    /// creates or migrates tables.
    ///
    /// Fails with an error naming the file and what to check when the URL is malformed, the
    /// file does not exist or cannot be opened, it has no tickguard tables, or they are at
    /// another version than this build's.
    pub async fn open_existing(url: &str) -> Result<Self, StoreError> {
        let (options, file) = Self::options(url)?;
        if !std::path::Path::new(&file).exists() {
            return Err(StoreError::unavailable(
                format!(
                    "no SQLite database `{file}`: start a scheduler on this store once to \
                     create it, or check the path"
                ),
                None,
            ));
        }
        let pool = Self::open_pool(options.create_if_missing(false), &file).await?;
        let found: Result<Option<i32>, SqlxError> =
            sqlx::query_scalar("SELECT max(version) FROM tickguard_migrations")
                .fetch_one(&pool)
                .await;
        let needs = MIGRATIONS.last().map_or(0, |m| m.version);
        let problem = match found {
            Ok(Some(found)) if found == needs => None,
            Ok(None) => Some(format!(
                "no tickguard tables in `{file}`: start a scheduler on this store once to \
                 create them, or check the path"
            )),
            Err(SqlxError::Database(db)) if db.message().contains("no such table") => {
                Some(format!(
                    "no tickguard tables in `{file}`: start a scheduler on this store once to \
                     create them, or check the path"
                ))
            }
            Err(e) => {
                pool.close().await;
                return Err(StoreError::unavailable(
                    format!("cannot read the SQLite database `{file}`: {e}"),
                    Some(Box::new(e)),
                ));
            }
            Ok(Some(found)) if found < needs => Some(format!(
                "the tickguard tables in `{file}` are at version {found}, this build needs \
                 {needs}: start an instance of this version to migrate them"
            )),
            Ok(Some(found)) => Some(format!(
                "the tickguard tables in `{file}` are at version {found}, this build needs \
                 {needs}: use a tickguard command of the version that migrated them"
            )),
        };
        if let Some(message) = problem {
            pool.close().await;
            return Err(StoreError::unavailable(message, None));
        }
        Ok(Self {
            pool,
            sql: Arc::new(Statements::new()),
            ops: Arc::new(OpStatements::new()),
            description: format!("sqlite:{file}"),
        })
    }

    /// The connection options of `url`, and the file it names; in-memory databases are
    /// refused.
    fn options(url: &str) -> Result<(SqliteConnectOptions, String), StoreError> {
        let options = SqliteConnectOptions::from_str(url).map_err(|e| {
            StoreError::unavailable(
                format!("invalid SQLite URL `{url}`: {e}; expected sqlite://path/to/file.db"),
                None,
            )
        })?;
        let file = options.get_filename().display().to_string();
        if url.contains(":memory:") || url.contains("mode=memory") || file.is_empty() {
            return Err(StoreError::unavailable(
                format!(
                    "SQLite URL `{url}` names an in-memory database, which each connection \
                     would see empty; use MemoryStore (the default) for an in-memory store, \
                     or a file path"
                ),
                None,
            ));
        }
        Ok((options, file))
    }

    /// A pool on the database file `file`, in WAL mode.
    async fn open_pool(
        options: SqliteConnectOptions,
        file: &str,
    ) -> Result<SqlitePool, StoreError> {
        let options = sql::statement_logging(options)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        // A new file is switched to WAL by its first connection; others opening it at that
        // moment may be told it is locked, without SQLite's busy wait: try again.
        let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            let opened = SqlitePoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .acquire_timeout(BUSY_TIMEOUT)
                .connect_with(options.clone())
                .await;
            match opened {
                Err(SqlxError::Database(db))
                    if db.message().contains("locked")
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(10..50))).await;
                }
                other => break other,
            }
        }
        .map_err(|e| {
            StoreError::unavailable(
                format!(
                    "cannot open the SQLite database `{file}`: {e}; does its directory \
                         exist, and may this process write there?"
                ),
                Some(Box::new(e)),
            )
        })
    }

    sql::methods::accessors!(SqlitePool);

    sql::methods::fenced_write!(Sqlite);

    fn error(&self, what: &str, e: SqlxError) -> StoreError {
        let hint = match &e {
            SqlxError::PoolTimedOut => format!("no connection within {BUSY_TIMEOUT:?}"),
            SqlxError::Database(db) if db.message().contains("locked") => format!(
                "{}; another connection held the write lock for over {BUSY_TIMEOUT:?}",
                db.message()
            ),
            e => e.to_string(),
        };
        StoreError::unavailable(
            format!("{}: {what} failed: {hint}", self.description),
            Some(Box::new(e)),
        )
    }

    /// Runs an operation once: the `run` of the shared store methods, which on SQLite
    /// never resends (`retried` is always `false`).
    async fn run<T, Fut>(&self, op: impl Fn(bool) -> Fut) -> Result<T, SqlxError>
    where
        Fut: Future<Output = Result<T, SqlxError>>,
    {
        op(false).await
    }

    /// One try of a claim: a transaction that reads the rows and lets
    /// [`decide`](crate::store::claim::decide) judge them. A claim here is never retried:
    /// it cannot find a row of its own.
    async fn claim_once(
        &self,
        req: &ClaimRequest<'_>,
        retried: bool,
    ) -> Result<Result<Claim, Refused>, SqlxError> {
        dialect::claim(self, req, retried).await
    }

    /// The rows of the jobs' executions that were cancelled or whose owner stopped
    /// heartbeating `liveness` ago, by the host's clock.
    async fn interrupted_rows(
        &self,
        jobs: &[String],
        liveness: Duration,
        limit: usize,
    ) -> sqlx::Result<Vec<InterruptedRow>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        // SQLite has no arrays: the names travel as one JSON array.
        let names = serde_json::to_string(jobs).unwrap_or_else(|_| "[]".to_owned());
        sqlx::query_as(AssertSqlSafe(self.sql.interrupted.as_str()))
            .bind(names)
            .bind(now_ms() - sql::millis(liveness))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(INTERRUPTED_PER_JOB as i64)
            .fetch_all(&self.pool)
            .await
    }
}

/// A transaction's statements on SQLite: every transaction holds the database's one write
/// lock from its start, and "now" is the host's clock in Unix milliseconds, bound.
impl SqlDialect for SqliteStore {
    type Db = Sqlite;
    type Now = i64;

    sql::dialect::shared_dialect_methods!();

    fn now() -> i64 {
        now_ms()
    }

    async fn begin(&self) -> sqlx::Result<Tx<Self>> {
        // The write lock from the start: claims of every job queue up here.
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn lock_job(
        &self,
        tx: &mut Tx<Self>,
        req: &ClaimRequest<'_>,
        now: i64,
    ) -> sqlx::Result<(Option<String>, bool, Option<DateTime<Utc>>)> {
        // The job's row, inserted if new, names its running execution (at most one). The
        // clock is the host's, which every instance sharing the file reads: always due.
        let (running, pruned_through): (Option<String>, Option<i64>) =
            sqlx::query_as(AssertSqlSafe(self.sql.insert_job.as_str()))
                .bind(req.job)
                .bind(now)
                .fetch_one(&mut **tx)
                .await?;
        Ok((running, true, pruned_through.map(sql::DbInstant::instant)))
    }

    async fn open_rows(
        &self,
        tx: &mut Tx<Self>,
        req: &ClaimRequest<'_>,
        running: Option<&str>,
        now: i64,
    ) -> sqlx::Result<Vec<OpenRow>> {
        // By key: this execution and the running one, whatever the job's history.
        sqlx::query_as(AssertSqlSafe(self.sql.open_rows.as_str()))
            .bind(req.job)
            .bind(req.execution_id)
            .bind(now - sql::millis(req.liveness))
            .bind(running)
            .fetch_all(&mut **tx)
            .await
    }

    async fn take(
        &self,
        tx: &mut Tx<Self>,
        req: &ClaimRequest<'_>,
        running: Option<&str>,
        now: i64,
    ) -> sqlx::Result<Option<Taken>> {
        let fence: i64 = sqlx::query_scalar(AssertSqlSafe(self.sql.bump.as_str()))
            .bind(req.job)
            .bind(at(req.scheduled_at))
            .bind(req.next_fire.map(at))
            .bind(req.execution_id)
            .fetch_one(&mut **tx)
            .await?;
        // The open runs of this execution and of the one it abandons: their owners are
        // gone, and ended at their last heartbeat.
        sqlx::query(AssertSqlSafe(self.sql.close_runs.as_str()))
            .bind(req.execution_id)
            .bind(running)
            .execute(&mut **tx)
            .await?;
        sqlx::query(AssertSqlSafe(self.sql.abandon.as_str()))
            .bind(req.job)
            .bind(req.execution_id)
            .bind(now)
            .bind(running)
            .execute(&mut **tx)
            .await?;
        let taken: Option<(i64, Option<String>)> =
            sqlx::query_as(AssertSqlSafe(self.sql.take.as_str()))
                .bind(req.execution_id)
                .bind(req.job)
                .bind(at(req.scheduled_at))
                .bind(fence)
                .bind(req.owner)
                .bind(now)
                .bind(sql::millis(req.liveness))
                .fetch_optional(&mut **tx)
                .await?;
        if let Some((previous, _)) = &taken {
            sqlx::query(AssertSqlSafe(self.sql.start_run.as_str()))
                .bind(req.execution_id)
                .bind(fence)
                .bind(req.job)
                .bind(req.owner)
                .bind(now)
                .bind(previous + 1)
                .execute(&mut **tx)
                .await?;
        }
        Ok(taken.map(|(attempts, checkpoint)| Taken::new(fence, attempts, checkpoint)))
    }

    async fn once_row(
        &self,
        tx: &mut Tx<Self>,
        _exec: &ExecutionRef,
        key: &str,
        _per_execution: bool,
    ) -> sqlx::Result<Option<OnceRow>> {
        sqlx::query_as(AssertSqlSafe(self.sql.once_row.as_str()))
            .bind(key)
            .fetch_optional(&mut **tx)
            .await
    }

    async fn holder_live(&self, tx: &mut Tx<Self>, holder: &str, fence: i64) -> sqlx::Result<bool> {
        sqlx::query_scalar(AssertSqlSafe(self.sql.holder_live.as_str()))
            .bind(holder)
            .bind(fence)
            .bind(now_ms())
            .fetch_one(&mut **tx)
            .await
    }

    async fn once_put(
        &self,
        tx: &mut Tx<Self>,
        exec: &ExecutionRef,
        key: &str,
        per_execution: bool,
        _holder: Holder,
    ) -> sqlx::Result<()> {
        // One upsert, whoever held the step: the write lock keeps the row as it was read.
        sqlx::query(AssertSqlSafe(self.sql.once_put.as_str()))
            .bind(key)
            .bind(&exec.job)
            .bind(&exec.execution_id)
            .bind(sql::db_fence(exec.fence))
            .bind(now_ms())
            .bind(per_execution)
            .execute(&mut **tx)
            .await
            .map(drop)
    }
}

/// Creates or migrates the tables.
async fn migrate(pool: &SqlitePool) -> Result<(), MigrateError> {
    let mut conn = pool.acquire().await?;
    migrate::run(&mut SqliteMigrator { conn: &mut conn }, MIGRATIONS).await
}

/// The SQLite side of the migration loop: one `BEGIN IMMEDIATE` transaction, so concurrent
/// startups (other processes on the file) queue on the write lock and apply each migration
/// once.
struct SqliteMigrator<'a> {
    conn: &'a mut SqliteConnection,
}

impl Migrate for SqliteMigrator<'_> {
    async fn version_unlocked(&mut self) -> Result<Option<i32>, SqlxError> {
        // Every start takes the write lock: it is local and short.
        Ok(None)
    }

    async fn lock(&mut self) -> Result<(), SqlxError> {
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *self.conn)
            .await
            .map(drop)
    }

    async fn ensure_migrations_table(&mut self) -> Result<(), SqlxError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS tickguard_migrations (\
             version INTEGER PRIMARY KEY NOT NULL, \
             description TEXT NOT NULL, \
             applied_at INTEGER NOT NULL)",
        )
        .execute(&mut *self.conn)
        .await
        .map(drop)
    }

    async fn version(&mut self) -> Result<i32, SqlxError> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT max(version) FROM tickguard_migrations")
                .fetch_one(&mut *self.conn)
                .await?;
        Ok(found.unwrap_or(0))
    }

    async fn apply(&mut self, m: &Migration) -> Result<(), SqlxError> {
        sqlx::raw_sql(AssertSqlSafe(m.sql))
            .execute(&mut *self.conn)
            .await?;
        sqlx::query(
            "INSERT INTO tickguard_migrations (version, description, applied_at) \
             VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.description)
        .bind(now_ms())
        .execute(&mut *self.conn)
        .await
        .map(drop)
    }

    async fn unlock(&mut self, commit: bool) -> Result<(), SqlxError> {
        let end = if commit { "COMMIT" } else { "ROLLBACK" };
        sqlx::raw_sql(end).execute(&mut *self.conn).await.map(drop)
    }
}

/// The statements.
struct Statements {
    insert_job: String,
    register: String,
    open_rows: String,
    own_row: String,
    bump: String,
    abandon: String,
    close_runs: String,
    start_run: String,
    end_run: String,
    take: String,
    holds: String,
    heartbeat: String,
    checkpoint: String,
    last_checkpoint: String,
    finish: String,
    once_row: String,
    holder_live: String,
    once_put: String,
    once_done: String,
    once_forget: String,
    forget_once_steps: String,
    executions: String,
    execution: String,
    dead_letters: String,
    interrupted: String,
    record_tick: String,
    fence_check: Arc<str>,
}

impl Statements {
    /// The statements. Long, but only SQL text: one statement each.
    fn new() -> Self {
        let ex = "tickguard_executions";
        let mine = "id = $1 AND fence = $2 AND status = 'RUNNING'";
        let owned = format!("EXISTS (SELECT 1 FROM {ex} WHERE {mine})");
        let (abandoned, abandoned_asked) = (sql::ABANDONED, sql::ABANDONED_ASKED_TO_STOP);
        Self {
            insert_job: "INSERT INTO tickguard_jobs (job, created_at) VALUES ($1, $2) \
                         ON CONFLICT (job) DO UPDATE SET job = excluded.job \
                         RETURNING running_id, pruned_through"
                .into(),
            register: "INSERT INTO tickguard_jobs AS j (job, trigger, zone, next_fire_at, \
                           created_at, circuit_breaker) \
                       VALUES ($1, $2, $3, $4, $5, $6) \
                       ON CONFLICT (job) DO UPDATE SET trigger = excluded.trigger, \
                           zone = excluded.zone, next_fire_at = excluded.next_fire_at, \
                           circuit_breaker = excluded.circuit_breaker \
                       RETURNING fence, created_at, last_tick"
                .into(),
            open_rows: format!(
                "SELECT id, status, status = 'RUNNING' AND heartbeat_at > $3, owner, \
                     cancel_kind IS NOT NULL \
                 FROM {ex} WHERE job = $1 AND id IN ($2, $4)"
            ),
            own_row: format!("SELECT fence, attempt - 1, checkpoint FROM {ex} WHERE id = $1"),
            bump: "UPDATE tickguard_jobs SET fence = fence + 1, \
                       last_tick = max(coalesce(last_tick, $2), $2), \
                       next_fire_at = max(coalesce($3, next_fire_at), coalesce(next_fire_at, $3)), \
                       running_id = $4 \
                   WHERE job = $1 RETURNING fence"
                .into(),
            abandon: format!(
                "UPDATE {ex} SET status = 'CANCELLED', finished_at = $3, \
                     error = CASE WHEN cancel_kind IS NULL THEN '{abandoned}' \
                         ELSE '{abandoned_asked}' END \
                 WHERE id = $4 AND job = $1 AND status = 'RUNNING' AND id <> $2"
            ),
            close_runs: format!(
                "UPDATE tickguard_runs SET outcome = 'ABANDONED', \
                     ended_at = (SELECT e.heartbeat_at FROM {ex} e \
                         WHERE e.id = tickguard_runs.execution_id), \
                     attempts = (SELECT e.attempt FROM {ex} e \
                         WHERE e.id = tickguard_runs.execution_id) \
                 WHERE ended_at IS NULL AND execution_id IN ($1, $2)"
            ),
            start_run: "INSERT INTO tickguard_runs (execution_id, fence, job, owner, started_at, \
                            attempts) \
                        VALUES ($1, $2, $3, $4, $5, $6)"
                .into(),
            end_run: "UPDATE tickguard_runs SET ended_at = $3, outcome = $4, attempts = $5, \
                          error = $6 \
                      WHERE execution_id = $1 AND fence = $2"
                .into(),
            take: format!(
                "INSERT INTO {ex} AS e (id, job, scheduled_at, status, fence, owner, attempt, \
                     started_at, heartbeat_at, liveness_ms) \
                 VALUES ($1, $2, $3, 'RUNNING', $4, $5, 1, $6, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET status = 'RUNNING', fence = excluded.fence, \
                     attempt = e.attempt + 1, owner = excluded.owner, scheduled_at = excluded.scheduled_at, \
                     started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
                     liveness_ms = excluded.liveness_ms, finished_at = NULL, error = NULL \
                 WHERE e.job = excluded.job \
                 RETURNING attempt - 1, checkpoint"
            ),
            holds: format!("SELECT 1 FROM {ex} WHERE {mine}"),
            heartbeat: format!("UPDATE {ex} SET heartbeat_at = $3 WHERE {mine}"),
            checkpoint: format!("UPDATE {ex} SET checkpoint = $3 WHERE {mine}"),
            last_checkpoint: format!("SELECT checkpoint FROM {ex} WHERE {mine}"),
            finish: format!(
                "UPDATE {ex} SET status = $3, attempt = $4, error = $5, finished_at = $6 \
                 WHERE {mine}"
            ),
            once_row: "SELECT execution_id, fence, done_at IS NOT NULL FROM tickguard_once \
                       WHERE key = $1"
                .into(),
            holder_live: format!(
                "SELECT EXISTS (SELECT 1 FROM {ex} WHERE {mine} \
                     AND heartbeat_at + liveness_ms > $3)"
            ),
            once_put: "INSERT INTO tickguard_once (key, job, execution_id, fence, started_at, \
                           per_execution) \
                       VALUES ($1, $2, $3, $4, $5, $6) \
                       ON CONFLICT (key) DO UPDATE SET job = excluded.job, \
                           execution_id = excluded.execution_id, fence = excluded.fence, \
                           started_at = excluded.started_at"
                .into(),
            // One statement each, so atomic under SQLite's write lock.
            once_done: format!(
                "UPDATE tickguard_once SET done_at = $4 \
                 WHERE key = $3 AND execution_id = $1 AND fence = $2 AND {owned}"
            ),
            once_forget: format!(
                "DELETE FROM tickguard_once \
                 WHERE key = $3 AND execution_id = $1 AND fence = $2 AND {owned}"
            ),
            execution: format!(
                "SELECT id, job, scheduled_at, status, fence, owner, attempt, started_at, \
                     heartbeat_at, finished_at, error, checkpoint, requested_by \
                 FROM {ex} WHERE id = $1"
            ),
            // Up to `$3` per-execution steps of the jobs `$1` (a JSON array) whose execution
            // ran to its end at `$2` (Unix ms) or before, or is gone (deleted with the
            // history). One statement, under the write lock.
            forget_once_steps: format!(
                "DELETE FROM tickguard_once WHERE key IN (\
                     SELECT o.key FROM tickguard_once o \
                     WHERE o.per_execution = 1 \
                       AND o.job IN (SELECT value FROM json_each($1)) AND NOT EXISTS (\
                         SELECT 1 FROM {ex} e WHERE e.id = o.execution_id \
                         AND (e.status NOT IN ('COMPLETED', 'SKIPPED') \
                             OR e.finished_at IS NULL OR e.finished_at > $2)) \
                     LIMIT $3)"
            ),
            executions: format!(
                "SELECT id, job, scheduled_at, status, fence, owner, attempt, started_at, \
                     heartbeat_at, finished_at, error, checkpoint, requested_by \
                 FROM {ex} WHERE job = $1 \
                 ORDER BY scheduled_at DESC, started_at DESC LIMIT $2"
            ),
            dead_letters: format!(
                "SELECT id, job, scheduled_at, status, fence, owner, attempt, started_at, \
                     heartbeat_at, finished_at, error, checkpoint, requested_by \
                 FROM {ex} WHERE status = 'FAILED' AND ($1 IS NULL OR job = $1) \
                 ORDER BY finished_at DESC LIMIT $2"
            ),
            // One tick of the ledger: a pending or skipped row where the execution has none,
            // and a pending row skipped (never a claimed one); a tick at or before the latest
            // one a prune deleted gets no row (it may have run), though a pending row it
            // names is still skipped. `$6` is now.
            record_tick: format!(
                "INSERT INTO {ex} AS e (id, job, scheduled_at, status, fence, owner, attempt, \
                     started_at, heartbeat_at, liveness_ms, finished_at, error) \
                 SELECT $1, $2, $3, CASE WHEN $5 IS NULL THEN 'PENDING' ELSE 'SKIPPED' END, \
                     0, $4, 0, $6, $6, 0, CASE WHEN $5 IS NULL THEN NULL ELSE $6 END, $5 \
                 WHERE NOT EXISTS (\
                     SELECT 1 FROM tickguard_jobs WHERE job = $2 AND pruned_through >= $3) \
                     OR EXISTS (SELECT 1 FROM {ex} WHERE id = $1) \
                 ON CONFLICT (id) DO UPDATE SET status = 'SKIPPED', error = excluded.error, \
                     finished_at = excluded.finished_at \
                 WHERE e.status = 'PENDING' AND excluded.status = 'SKIPPED' \
                     AND e.job = excluded.job \
                 RETURNING status = 'SKIPPED'"
            ),
            // Requested executions first, then interrupted ones, then pending ticks, each
            // oldest first (a backlog never keeps a request waiting), and at most `$4` of
            // one job: a job whose ticks cannot run now does not keep the others waiting.
            interrupted: format!(
                "SELECT job, id, scheduled_at, status, attempt, requested FROM (\
                     SELECT job, id, scheduled_at, status, attempt, \
                         requested_by IS NOT NULL AS requested, row_number() OVER (\
                         PARTITION BY job ORDER BY requested_by IS NULL, status = 'PENDING', scheduled_at) AS n \
                     FROM {ex} \
                     WHERE job IN (SELECT value FROM json_each($1)) AND cancel_kind IS NULL \
                       AND (status IN ('CANCELLED', 'PENDING') \
                           OR (status = 'RUNNING' AND heartbeat_at <= $2))) \
                 WHERE n <= $4 ORDER BY NOT requested, status = 'PENDING', scheduled_at LIMIT $3"
            ),
            fence_check: format!("SELECT 1 FROM {ex} WHERE {mine}").into(),
        }
    }
}

/// Attempts as SQLite stores them (`INTEGER`).
type Attempt = i64;

type ExecutionRow = sql::ExecutionRow<Instant, Attempt>;

type InterruptedRow = sql::InterruptedRow<Instant, Attempt>;

impl ExecutionStore for SqliteStore {
    sql::methods::operations_methods!();

    sql::methods::execution_store_methods!();

    fn register_all<'a>(
        &'a self,
        jobs: &'a [JobRegistration<'a>],
    ) -> BoxFuture<'a, Result<Vec<JobRecord>, StoreError>> {
        Box::pin(async move {
            // One transaction: one wait for the write lock and one sync, not one per job.
            let registered = async {
                let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                let mut records = Vec::with_capacity(jobs.len());
                for job in jobs {
                    let row: (i64, i64, Option<i64>) =
                        sqlx::query_as(AssertSqlSafe(self.sql.register.as_str()))
                            .bind(job.name)
                            .bind(&job.trigger)
                            .bind(&job.zone)
                            .bind(job.next_fire.map(at))
                            .bind(at(job.registered_at))
                            .bind(sql::stored_breaker(job))
                            .fetch_one(&mut *tx)
                            .await?;
                    records.push(sql::job_record(job.name, row));
                }
                tx.commit().await?;
                Ok(records)
            };
            registered
                .await
                .map_err(|e| self.error(&format!("registering {} jobs", jobs.len()), e))
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
            // One transaction: one wait for the write lock and one sync for all the ticks.
            let recorded = async {
                let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                let now = now_ms();
                let mut skipped = Vec::new();
                for tick in ticks {
                    // A row comes back if this statement inserted or changed it.
                    let changed: Option<bool> =
                        sqlx::query_scalar(AssertSqlSafe(self.sql.record_tick.as_str()))
                            .bind(&tick.execution_id)
                            .bind(&tick.job)
                            .bind(at(tick.scheduled_at))
                            .bind(&tick.owner)
                            .bind(tick.skipped.as_deref())
                            .bind(now)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if changed == Some(true) {
                        skipped.push(tick.execution_id.clone());
                    }
                }
                tx.commit().await?;
                Ok(skipped)
            };
            recorded
                .await
                .map_err(|e| self.error(&format!("recording {} ticks", ticks.len()), e))
        })
    }

    fn heartbeat<'a>(&'a self, exec: &'a ExecutionRef) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(
            self.fenced_write("a heartbeat", exec, &self.sql.heartbeat, |q| {
                q.bind(now_ms())
            }),
        )
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
            if done {
                self.fenced_write("ending a step", exec, &self.sql.once_done, move |q| {
                    q.bind(stored).bind(now_ms())
                })
                .await
            } else {
                self.fenced_write("ending a step", exec, &self.sql.once_forget, move |q| {
                    q.bind(stored)
                })
                .await
            }
        })
    }

    fn finish<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        finish: &'a Finish<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            // The execution's end and its run's, in one transaction.
            let ended = async {
                let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                let now = now_ms();
                let done = sqlx::query(AssertSqlSafe(self.sql.finish.as_str()))
                    .bind(&exec.execution_id)
                    .bind(sql::db_fence(exec.fence))
                    .bind(finish.status.as_str())
                    .bind(i64::from(finish.attempts))
                    .bind(finish.error)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(AssertSqlSafe(self.sql.end_run.as_str()))
                    .bind(&exec.execution_id)
                    .bind(sql::db_fence(exec.fence))
                    .bind(now)
                    .bind(finish.status.as_str())
                    .bind(i64::from(finish.attempts))
                    .bind(finish.error)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            };
            match ended.await {
                Ok(true) => Ok(()),
                Ok(false) => Err(sql::fenced(exec)),
                Err(e) => Err(self.error("recording the execution's end", e)),
            }
        })
    }

    fn sql(&self) -> Option<SqlStore> {
        Some(SqlStore::Sqlite(self.clone()))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn forget_once_steps<'a>(
        &'a self,
        jobs: &'a [String],
        older_than: Duration,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            // SQLite has no arrays: the names travel as one JSON array.
            let names = serde_json::to_string(jobs).unwrap_or_else(|_| "[]".to_owned());
            let ended_by = now_ms().saturating_sub(sql::millis(older_than));
            let mut forgot = 0;
            loop {
                let deleted = sqlx::query(AssertSqlSafe(self.sql.forget_once_steps.as_str()))
                    .bind(&names)
                    .bind(ended_by)
                    .bind(sql::FORGET_BATCH)
                    .execute(&self.pool)
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

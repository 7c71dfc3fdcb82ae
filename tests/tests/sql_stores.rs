//! The SQL execution stores with real databases under the scheduler: concurrent migrations,
//! fenced transactions, misfires across a restart of every instance, resumption of an
//! interrupted execution, and Postgres backends terminated under claims.
//!
//! Needs PostgreSQL at `TICKGUARD_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`); `bash scripts/services` starts it. Without it
//! the tests fail: they never skip. Each test keeps its tables in a schema (or a SQLite file)
//! of its own.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use tickguard::{
    CancelReason, Job, JobContext, JobError, Misfire, ResultExt, Schedule, Scheduler,
    metrics as names,
    sqlx::{self, AssertSqlSafe, Executor as _},
    store::{
        Claim, ClaimRequest, ExecutionStore, FencedDatabase, PostgresStore, SqlStore, SqliteStore,
        Status,
    },
};
use tickguard_tests::{metrics, no_postgres, postgres_url, sqlite_url, unique_name};

/// Which store a test runs on: a fresh schema or file each time.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Postgres,
    Sqlite,
}

/// A store, and how to reopen it (as another instance would).
struct Db {
    backend: Backend,
    /// The schema (Postgres) or the URL (SQLite).
    place: String,
}

impl Db {
    fn new(backend: Backend, case: &str) -> Self {
        let place = match backend {
            Backend::Postgres => unique_name(&format!("tg_{case}")),
            Backend::Sqlite => sqlite_url(&format!("tg_{case}")),
        };
        Self { backend, place }
    }

    async fn open(&self) -> Arc<dyn ExecutionStore> {
        match self.backend {
            Backend::Postgres => Arc::new(self.postgres().await),
            Backend::Sqlite => Arc::new(self.sqlite().await),
        }
    }

    async fn postgres(&self) -> PostgresStore {
        PostgresStore::connect_with_schema(&postgres_url(), &self.place)
            .await
            .unwrap_or_else(|e| no_postgres(e))
    }

    async fn sqlite(&self) -> SqliteStore {
        SqliteStore::connect(&self.place)
            .await
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.place))
    }
}

fn every(ms: u64) -> Schedule {
    Schedule::every(Duration::from_millis(ms)).unwrap()
}

// ---------------------------------------------------------------------------------------
// Migrations

async fn migrations_run_concurrently(backend: Backend) {
    let db = Db::new(backend, "migrate");
    // Eight instances start at once on an empty schema (or a new file).
    let opened = join_all((0..8).map(|_| db.open())).await;
    let job = "migrated";
    for store in &opened {
        let registration =
            tickguard::store::JobRegistration::new(job, "every 1s".into(), "UTC".into(), None);
        store.register(&registration).await.unwrap();
    }
    // And once more, on tables that exist.
    let again = db.open().await;
    let id = format!("{job}@1");
    let request = ClaimRequest::new(job, &id, Utc::now(), "o");
    assert!(matches!(
        again.claim(&request).await.unwrap(),
        Claim::Acquired(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_migrations_run_concurrently() {
    migrations_run_concurrently(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_migrations_run_concurrently() {
    migrations_run_concurrently(Backend::Sqlite).await;
}

// ---------------------------------------------------------------------------------------
// Fenced transactions

/// What the job of a stale-transaction test reports.
#[derive(Debug)]
enum Step {
    Started {
        execution_id: String,
        tick: DateTime<Utc>,
        fence: u64,
    },
    Committed(Result<(), String>, Option<CancelReason>),
}

impl Db {
    /// A table of the test's own, in its schema or file.
    fn table(&self, name: &str) -> String {
        match self.backend {
            Backend::Postgres => format!("\"{}\".{name}", self.place),
            Backend::Sqlite => name.to_owned(),
        }
    }

    /// Runs one statement on the store's database.
    async fn execute(&self, store: &dyn ExecutionStore, statement: String) {
        match store.sql().unwrap() {
            SqlStore::Postgres(s) => s.pool().execute(AssertSqlSafe(statement)).await.map(drop),
            SqlStore::Sqlite(s) => s.pool().execute(AssertSqlSafe(statement)).await.map(drop),
            _ => unreachable!(),
        }
        .unwrap()
    }

    /// Runs a query that returns one number.
    async fn count(&self, store: &dyn ExecutionStore, statement: String) -> i64 {
        match store.sql().unwrap() {
            SqlStore::Postgres(s) => sqlx::query_scalar(AssertSqlSafe(statement))
                .fetch_one(s.pool())
                .await
                .unwrap(),
            SqlStore::Sqlite(s) => sqlx::query_scalar(AssertSqlSafe(statement))
                .fetch_one(s.pool())
                .await
                .unwrap(),
            _ => unreachable!(),
        }
    }
}

/// A run writes through `ctx.transaction()`; before it commits, another instance takes its
/// execution over (it counts the run's owner gone). The commit fails, nothing it wrote is
/// left, and the run is stopped as fenced. On PostgreSQL the transaction is open (with its
/// row written) while the takeover happens; on SQLite, whose transactions hold the write
/// lock that a claim needs, it begins after it.
async fn stale_transaction_commits_nothing<DB>(backend: Backend, open_first: bool)
where
    DB: FencedDatabase,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
{
    let db = Db::new(backend, "stale_tx");
    let store = db.open().await;
    let effects = db.table("effects");
    db.execute(
        &*store,
        format!("CREATE TABLE {effects} (fence BIGINT NOT NULL)"),
    )
    .await;
    let insert: Arc<str> = format!("INSERT INTO {effects} (fence) VALUES ($1)").into();

    let (tx_steps, mut steps) = tokio::sync::mpsc::unbounded_channel();
    let go = Arc::new(tokio::sync::Notify::new());
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (g, f) = (go.clone(), first.clone());
    let job = Job::new("charge", every(500), move |ctx: JobContext| {
        let (steps, go, first, insert) = (tx_steps.clone(), g.clone(), f.clone(), insert.clone());
        async move {
            if !first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                return Ok(());
            }
            let write = |ctx: JobContext, insert: Arc<str>| async move {
                let mut t = ctx.transaction::<DB>().await?;
                sqlx::query(AssertSqlSafe(insert))
                    .bind(ctx.fence() as i64)
                    .execute(&mut *t)
                    .await
                    .transient()?;
                Ok::<_, JobError>(t)
            };
            let early = if open_first {
                Some(write(ctx.clone(), insert.clone()).await?)
            } else {
                None
            };
            steps
                .send(Step::Started {
                    execution_id: ctx.execution_id().to_owned(),
                    tick: ctx.scheduled_at(),
                    fence: ctx.fence(),
                })
                .unwrap();
            go.notified().await;
            let t = match early {
                Some(t) => t,
                None => write(ctx.clone(), insert).await?,
            };
            let committed = t.commit().await.map_err(|e| format!("{e:#}"));
            steps
                .send(Step::Committed(committed.clone(), ctx.cancel_reason()))
                .unwrap();
            committed.map_err(JobError::permanent)
        }
    })
    .idempotent();
    let scheduler = Scheduler::builder()
        .discover(false)
        .store(store.clone())
        .liveness(Duration::from_secs(30))
        .job(job)
        .build()
        .await
        .unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let s2 = stop.clone();
    let running = tokio::spawn(scheduler.run_until(async move { s2.notified().await }));

    let Some(Step::Started {
        execution_id,
        tick,
        fence,
    }) = steps.recv().await
    else {
        panic!("the job did not start");
    };
    // Another instance counts the owner gone (a 1 ms liveness) and takes over.
    let thief = ClaimRequest::new("charge", &execution_id, tick, "thief")
        .liveness(Duration::from_millis(1));
    let Claim::Acquired(stolen) = store.claim(&thief).await.unwrap() else {
        panic!("the takeover failed");
    };
    assert!(stolen.fence > fence);
    go.notify_one();
    let Some(Step::Committed(committed, reason)) = steps.recv().await else {
        panic!("the job did not commit");
    };
    let error = committed.expect_err("a stale run's commit must fail");
    assert!(error.contains("fenced out"), "{error}");
    assert_eq!(reason, Some(CancelReason::Fenced));
    let rows = db
        .count(&*store, format!("SELECT count(*) FROM {effects}"))
        .await;
    assert_eq!(rows, 0, "the stale transaction must leave nothing");
    stop.notify_one();
    running.await.unwrap().unwrap();
    // The execution is the thief's: the stale run's end was not recorded over it.
    let record = store
        .executions("charge", 10)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id == execution_id)
        .unwrap();
    assert_eq!(
        (record.owner.as_str(), record.status),
        ("thief", Status::Running)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stale_transaction_commits_nothing() {
    stale_transaction_commits_nothing::<sqlx::Postgres>(Backend::Postgres, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_stale_transaction_commits_nothing() {
    stale_transaction_commits_nothing::<sqlx::Sqlite>(Backend::Sqlite, false).await;
}

// ---------------------------------------------------------------------------------------
// Misfires across a restart of every instance

type Runs = Arc<Mutex<Vec<DateTime<Utc>>>>;

fn recording_job(name: &str, period_ms: u64, misfire: Misfire, runs: Runs) -> Job {
    Job::new(name, every(period_ms), move |ctx: JobContext| {
        runs.lock().unwrap().push(ctx.scheduled_at());
        async { Ok(()) }
    })
    .idempotent()
    .misfire(misfire)
}

async fn sleep_until(at: DateTime<Utc>) {
    if let Ok(left) = (at - Utc::now()).to_std() {
        tokio::time::sleep(left).await;
    }
}

/// The only instance runs a tick, stops; three ticks pass with no instance; an instance
/// starts on the same database. The missed ticks follow the job's policy.
async fn misfires_after_every_instance_was_down(backend: Backend, misfire: Misfire) {
    let db = Db::new(backend, "misfire");
    let name = format!("nightly_{misfire:?}_{backend:?}").to_lowercase();
    let recorded = metrics();
    let scheduler = |runs: Runs| {
        let job = recording_job(&name, 1_000, misfire, runs);
        let db = &db;
        async move {
            Scheduler::builder()
                .discover(false)
                .store(db.open().await)
                .misfire_threshold(Duration::from_millis(200))
                .job(job)
                .build()
                .await
                .unwrap()
        }
    };
    // Before: one tick runs.
    let before: Runs = Arc::default();
    let first = scheduler(before.clone()).await;
    let b = before.clone();
    first
        .run_until(async move {
            while b.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap();
    let last = *before.lock().unwrap().last().unwrap();
    // Down across three ticks, up again 300 ms after the third.
    sleep_until(last + chrono::Duration::milliseconds(3_300)).await;
    let after: Runs = Arc::default();
    let second = scheduler(after.clone()).await;
    second
        .run_until(tokio::time::sleep(Duration::from_millis(400)))
        .await
        .unwrap();
    let ran = after.lock().unwrap().clone();
    let missed: Vec<DateTime<Utc>> = (1..=3)
        .map(|n| last + chrono::Duration::seconds(n))
        .collect();
    let (expected, skipped) = match misfire {
        Misfire::Skip => (vec![], 3),
        Misfire::RunOnce => (vec![missed[2]], 2),
        _ => (missed.clone(), 0),
    };
    assert_eq!(
        ran, expected,
        "{misfire:?} after ticks {missed:?} were missed"
    );
    assert_eq!(
        recorded.counter(
            names::SKIPS_TOTAL,
            &[("job", name.as_str()), ("reason", "misfire")]
        ),
        skipped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_misfire_skip_after_restart() {
    misfires_after_every_instance_was_down(Backend::Postgres, Misfire::Skip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_misfire_run_once_after_restart() {
    misfires_after_every_instance_was_down(Backend::Postgres, Misfire::RunOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_misfire_run_all_after_restart() {
    misfires_after_every_instance_was_down(Backend::Postgres, Misfire::RunAll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_misfire_skip_after_restart() {
    misfires_after_every_instance_was_down(Backend::Sqlite, Misfire::Skip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_misfire_run_once_after_restart() {
    misfires_after_every_instance_was_down(Backend::Sqlite, Misfire::RunOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_misfire_run_all_after_restart() {
    misfires_after_every_instance_was_down(Backend::Sqlite, Misfire::RunAll).await;
}

// ---------------------------------------------------------------------------------------
// Resuming an interrupted execution

#[derive(Clone, Debug)]
struct Resumed {
    instance: String,
    execution_id: String,
    fence: u64,
    from: u32,
    at: DateTime<Utc>,
    tick: DateTime<Utc>,
}

/// Ten steps with a checkpoint after each; instance `a` dies (its whole runtime stops, as a
/// killed process's would) after step 5.
fn stepping_job(instance: &'static str, seen: Arc<Mutex<Vec<Resumed>>>) -> Job {
    Job::new("steps", every(2_000), move |ctx: JobContext| {
        let seen = seen.clone();
        async move {
            let from = ctx.last_checkpoint::<u32>().await?.unwrap_or(0);
            seen.lock().unwrap().push(Resumed {
                instance: instance.to_owned(),
                execution_id: ctx.execution_id().to_owned(),
                fence: ctx.fence(),
                from,
                at: Utc::now(),
                tick: ctx.scheduled_at(),
            });
            for step in from..10 {
                ctx.checkpoint(&(step + 1)).await?;
                if instance == "a" && step + 1 == 5 {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(())
        }
    })
    .idempotent()
}

async fn resumes_an_interrupted_execution_before_the_next_tick(backend: Backend) {
    let db = Arc::new(Db::new(backend, "resume"));
    let seen: Arc<Mutex<Vec<Resumed>>> = Arc::default();
    let liveness = Duration::from_millis(600);
    // Instance `a` on a runtime of its own, which the test shuts down mid-run.
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (d, s) = (db.clone(), seen.clone());
    doomed.spawn(async move {
        let scheduler = Scheduler::builder()
            .discover(false)
            .instance_id("a")
            .store(d.open().await)
            .liveness(liveness)
            .job(stepping_job("a", s))
            .build()
            .await
            .unwrap();
        scheduler.run_until(std::future::pending::<()>()).await
    });
    let first = loop {
        if let Some(first) = seen.lock().unwrap().first().cloned() {
            break first;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let store = db.open().await;
    // Wait for step 5's checkpoint, then kill `a`.
    loop {
        let records = store.executions("steps", 1).await.unwrap();
        if records[0].checkpoint.as_deref() == Some("5") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    doomed.shutdown_background();

    let b = Scheduler::builder()
        .discover(false)
        .instance_id("b")
        .store(store.clone())
        .liveness(liveness)
        .job(stepping_job("b", seen.clone()))
        .build()
        .await
        .unwrap();
    let s = seen.clone();
    b.run_until(async move {
        while s.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Let the resumed run finish.
        tokio::time::sleep(Duration::from_millis(300)).await;
    })
    .await
    .unwrap();
    let seen = seen.lock().unwrap().clone();
    let resumed = &seen[1];
    assert_eq!(resumed.instance, "b");
    assert_eq!(
        resumed.execution_id, first.execution_id,
        "the same execution"
    );
    assert_eq!(resumed.tick, first.tick);
    assert!(resumed.fence > first.fence);
    assert_eq!(resumed.from, 5, "resumed from the last checkpoint");
    assert!(
        resumed.at < first.tick + chrono::Duration::seconds(2),
        "resumed at {} for tick {}: not before the next tick",
        resumed.at,
        first.tick
    );
    let record = store
        .executions("steps", 10)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id == first.execution_id)
        .unwrap();
    assert_eq!(record.status, Status::Completed);
    assert_eq!(record.attempts, 2, "one attempt by each owner");
    assert_eq!(record.checkpoint.as_deref(), Some("10"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_resumes_an_interrupted_execution_before_the_next_tick() {
    resumes_an_interrupted_execution_before_the_next_tick(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_resumes_an_interrupted_execution_before_the_next_tick() {
    resumes_an_interrupted_execution_before_the_next_tick(Backend::Sqlite).await;
}

// ---------------------------------------------------------------------------------------
// Postgres backends terminated under claims

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminated_backends_never_leave_a_half_written_claim() {
    let db = Db::new(Backend::Postgres, "terminated");
    let app = db.place.clone();
    let url = format!("{}?application_name={app}", postgres_url());
    let store = PostgresStore::connect_with_schema(&url, &db.place)
        .await
        .unwrap_or_else(|e| no_postgres(e));
    let admin = PostgresStore::connect_with_schema(&postgres_url(), &db.place)
        .await
        .unwrap_or_else(|e| no_postgres(e));
    let runs: FencedRuns = Arc::default();
    let r = runs.clone();
    let job = Job::new("steady", every(100), move |ctx: JobContext| {
        r.lock().unwrap().push((ctx.scheduled_at(), ctx.fence()));
        async { Ok(()) }
    })
    .idempotent();
    let scheduler = Scheduler::builder()
        .discover(false)
        .store(store.clone())
        .liveness(Duration::from_secs(2))
        .job(job)
        .build()
        .await
        .unwrap();
    let killing = Duration::from_secs(3);
    let killer = {
        let pool = admin.pool().clone();
        let app = app.clone();
        tokio::spawn(async move {
            let until = tokio::time::Instant::now() + killing;
            let mut killed = 0_i64;
            while tokio::time::Instant::now() < until {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE application_name = $1",
                )
                .bind(&app)
                .fetch_one(&pool)
                .await
                .unwrap();
                killed += n;
                tokio::time::sleep(Duration::from_millis(fastrand_ms())).await;
            }
            killed
        })
    };
    let started = Utc::now();
    scheduler
        .run_until(tokio::time::sleep(killing + Duration::from_secs(2)))
        .await
        .unwrap();
    let killed = killer.await.unwrap();
    assert!(killed > 10, "only {killed} backends were terminated");

    let runs = runs.lock().unwrap().clone();
    let ticks_run: BTreeMap<DateTime<Utc>, usize> =
        runs.iter().fold(BTreeMap::new(), |mut m, (t, _)| {
            *m.entry(*t).or_default() += 1;
            m
        });
    let records = admin.executions("steady", 10_000).await.unwrap();
    let by_id: BTreeMap<&str, _> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    let job_fence: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT fence FROM \"{}\".tickguard_jobs WHERE job = 'steady'",
        db.place
    )))
    .fetch_one(admin.pool())
    .await
    .unwrap();
    // Every run had a claim: its execution row exists, with this run's fence or a later one.
    for (tick, fence) in &runs {
        let id = format!(
            "steady@{}",
            tick.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        );
        let record = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("run of {tick} without an execution row"));
        assert!(record.fence >= *fence && *fence <= job_fence as u64);
    }
    // Fences are unique: no two claims won with one fence.
    let mut fences: Vec<u64> = runs.iter().map(|(_, f)| *f).collect();
    fences.sort_unstable();
    let before = fences.len();
    fences.dedup();
    assert_eq!(fences.len(), before, "two runs had one fence");
    // Every row is whole: a final status has its end time, a running one has none.
    for r in &records {
        assert_eq!(
            r.finished_at.is_some(),
            r.status != Status::Running,
            "half-written row: {r:?}"
        );
        assert!(
            r.fence <= job_fence as u64,
            "row fenced past the job: {r:?}"
        );
    }
    // Once the terminations stopped, the ticks ran again, each once.
    let calm = started
        + chrono::Duration::from_std(killing).unwrap()
        + chrono::Duration::milliseconds(500);
    let after: Vec<_> = ticks_run.iter().filter(|(t, _)| **t > calm).collect();
    assert!(
        after.len() >= 8,
        "too few ticks ran after the terminations: {after:?}"
    );
    assert!(after.iter().all(|(_, n)| **n == 1), "{after:?}");
}

/// Each run's tick and fence.
type FencedRuns = Arc<Mutex<Vec<(DateTime<Utc>, u64)>>>;

/// A pause between terminations, 10 to 40 ms, so they land at every step of a claim.
fn fastrand_ms() -> u64 {
    10 + u64::from(std::process::id() ^ Utc::now().timestamp_subsec_nanos()) % 31
}

// ---------------------------------------------------------------------------------------
// Progress saved in the job's transaction

/// An attempt's number and the checkpoint it found.
type AttemptSaw = (u32, Option<i64>);

/// The first attempt commits one row with checkpoint 1, then writes a second row with
/// checkpoint 2 and fails before committing; the retry finds checkpoint 1 and one row: the
/// progress and the rows were committed together, or not at all.
async fn a_transaction_checkpoint_commits_with_its_rows<DB>(backend: Backend)
where
    DB: FencedDatabase,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
{
    let db = Db::new(backend, "tx_checkpoint");
    let store = db.open().await;
    let rows = db.table("rows");
    db.execute(&*store, format!("CREATE TABLE {rows} (n BIGINT NOT NULL)"))
        .await;
    let insert: Arc<str> = format!("INSERT INTO {rows} (n) VALUES ($1)").into();
    let seen: Arc<Mutex<Vec<AttemptSaw>>> = Arc::default();
    let s = seen.clone();
    let job = Job::new("batches", every(500), move |ctx: JobContext| {
        let (seen, insert) = (s.clone(), insert.clone());
        async move {
            let from = ctx.last_checkpoint::<i64>().await?;
            seen.lock().unwrap().push((ctx.attempt(), from));
            if ctx.attempt() > 1 {
                return Ok(());
            }
            for n in 1..=2_i64 {
                let mut tx = ctx.transaction::<DB>().await?;
                sqlx::query(AssertSqlSafe(insert.clone()))
                    .bind(n)
                    .execute(&mut *tx)
                    .await
                    .transient()?;
                tx.checkpoint(&n).await?;
                if n == 2 {
                    // Fails before the commit: the row and the checkpoint roll back.
                    return Err(JobError::transient("crashed mid-batch"));
                }
                tx.commit().await?;
            }
            Ok(())
        }
    })
    .idempotent()
    .retry(tickguard::RetryPolicy::attempts(2).backoff(Duration::from_millis(10)));
    let scheduler = Scheduler::builder()
        .discover(false)
        .store(store.clone())
        .job(job)
        .build()
        .await
        .unwrap();
    let s = seen.clone();
    scheduler
        .run_until(async move {
            while s.lock().unwrap().len() < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[..2], [(1, None), (2, Some(1))]);
    let count = db
        .count(&*store, format!("SELECT count(*) FROM {rows}"))
        .await;
    assert_eq!(count, 1, "only the committed batch's row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_transaction_checkpoint_commits_with_its_rows() {
    a_transaction_checkpoint_commits_with_its_rows::<sqlx::Postgres>(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_a_transaction_checkpoint_commits_with_its_rows() {
    a_transaction_checkpoint_commits_with_its_rows::<sqlx::Sqlite>(Backend::Sqlite).await;
}

// ---------------------------------------------------------------------------------------
// Tables migrated by a newer build

/// An instance of an older build refuses tables a newer one migrated, with an error that
/// says so, instead of writing to a schema it does not know.
async fn tables_of_a_newer_build_are_refused(backend: Backend) {
    let db = Db::new(backend, "newer");
    let store = db.open().await;
    let migrations = db.table("tickguard_migrations");
    let applied = match backend {
        Backend::Postgres => "clock_timestamp()",
        Backend::Sqlite => "0",
    };
    db.execute(
        &*store,
        format!(
            "INSERT INTO {migrations} (version, description, applied_at) \
             VALUES (99, 'from the future', {applied})"
        ),
    )
    .await;
    let e = match backend {
        Backend::Postgres => PostgresStore::connect_with_schema(&postgres_url(), &db.place)
            .await
            .err(),
        Backend::Sqlite => SqliteStore::connect(&db.place).await.err(),
    }
    .expect("tables at version 99 must be refused");
    let message = e.to_string();
    assert!(
        message.contains("version 99, newer than this build knows (6): upgrade this instance"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_tables_of_a_newer_build_are_refused() {
    tables_of_a_newer_build_are_refused(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_tables_of_a_newer_build_are_refused() {
    tables_of_a_newer_build_are_refused(Backend::Sqlite).await;
}

// ---------------------------------------------------------------------------------------
// One tick run twice at once

/// Two `testing::Run`s of one idempotent tick at once on one Postgres store, with the same
/// (default) instance id: the body runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_runs_of_one_tick_run_the_body_once() {
    let db = Db::new(Backend::Postgres, "two_runs");
    let store = Arc::new(db.postgres().await);
    let ran = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let job = {
        let ran = ran.clone();
        Job::new("twice", every(60_000), move |_ctx: JobContext| {
            ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(())
            }
        })
        .idempotent()
    };
    let tick = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
    let runs = (0..2).map(|_| {
        tickguard::testing::Run::new(job.clone(), tick)
            .store(store.clone())
            .run()
    });
    let reports = join_all(runs).await;
    assert_eq!(
        ran.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the body ran more than once: {reports:?}"
    );
    let recorded = reports.iter().filter(|r| r.record().is_some()).count();
    assert_eq!(recorded, 1, "{reports:?}");
}

// ---------------------------------------------------------------------------------------
// The job's running execution, recorded on the job's row

/// Tables of version 1 with a running execution: migration 2 records it on the job's row,
/// so a claim of another tick still finds the job busy.
async fn migration_2_records_the_running_execution(backend: Backend) {
    let db = Db::new(backend, "running_id");
    let store = db.open().await;
    let at = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
    let first = ClaimRequest::new("job", "job@1", at, "owner-1");
    assert!(matches!(
        store.claim(&first).await.unwrap(),
        Claim::Acquired(_)
    ));
    // Back to version 1, as an older build left the tables (migration 3's other changes
    // apply again as they are).
    let (jobs, migrations) = (db.table("tickguard_jobs"), db.table("tickguard_migrations"));
    let once = db.table("tickguard_once");
    undo_migration_4(&db, &*store).await;
    db.execute(
        &*store,
        format!("ALTER TABLE {jobs} DROP COLUMN running_id"),
    )
    .await;
    db.execute(
        &*store,
        format!("ALTER TABLE {once} DROP COLUMN per_execution"),
    )
    .await;
    db.execute(
        &*store,
        format!("DELETE FROM {migrations} WHERE version >= 2"),
    )
    .await;
    let store = db.open().await;
    let second = ClaimRequest::new("job", "job@2", at, "owner-2");
    assert_eq!(
        store.claim(&second).await.unwrap(),
        Claim::Busy {
            execution_id: "job@1".to_owned()
        }
    );
}

/// Takes the tables of the store back from version 6 to version 5: a job's last resume and
/// its circuit breaker.
async fn undo_migration_6(db: &Db, store: &dyn ExecutionStore) {
    let jobs = db.table("tickguard_jobs");
    for column in ["resumed_at", "circuit_breaker"] {
        db.execute(store, format!("ALTER TABLE {jobs} DROP COLUMN {column}"))
            .await;
    }
    let migrations = db.table("tickguard_migrations");
    db.execute(
        store,
        format!("DELETE FROM {migrations} WHERE version >= 6"),
    )
    .await;
}

/// Takes the tables of the store back from version 6 to version 4: the cancel requests.
async fn undo_migration_5(db: &Db, store: &dyn ExecutionStore) {
    undo_migration_6(db, store).await;
    let ex = db.table("tickguard_executions");
    let index = match db.backend {
        Backend::Postgres => format!("\"{}\".tickguard_executions_cancel", db.place),
        Backend::Sqlite => "tickguard_executions_cancel".to_owned(),
    };
    db.execute(store, format!("DROP INDEX {index}")).await;
    for column in ["cancel_kind", "cancel_note", "cancel_by", "cancel_at"] {
        db.execute(store, format!("ALTER TABLE {ex} DROP COLUMN {column}"))
            .await;
    }
    let migrations = db.table("tickguard_migrations");
    db.execute(
        store,
        format!("DELETE FROM {migrations} WHERE version >= 5"),
    )
    .await;
}

/// Takes the tables of the store back from version 6 to version 3, as a build of version 3
/// left them.
async fn undo_migration_4(db: &Db, store: &dyn ExecutionStore) {
    undo_migration_5(db, store).await;
    let (jobs, ex) = (db.table("tickguard_jobs"), db.table("tickguard_executions"));
    for column in [
        "paused_at",
        "paused_by",
        "paused_note",
        "pruned_through",
        "pruned_at",
    ] {
        db.execute(store, format!("ALTER TABLE {jobs} DROP COLUMN {column}"))
            .await;
    }
    let index = match db.backend {
        Backend::Postgres => format!("\"{}\".tickguard_executions_ended", db.place),
        Backend::Sqlite => "tickguard_executions_ended".to_owned(),
    };
    db.execute(store, format!("DROP INDEX {index}")).await;
    db.execute(store, format!("ALTER TABLE {ex} DROP COLUMN requested_by"))
        .await;
    for table in ["tickguard_runs", "tickguard_control"] {
        db.execute(store, format!("DROP TABLE {}", db.table(table)))
            .await;
    }
    let migrations = db.table("tickguard_migrations");
    db.execute(
        store,
        format!("DELETE FROM {migrations} WHERE version >= 4"),
    )
    .await;
}

/// Tables of version 3 with history: migration 4 keeps every row, and the executions it
/// kept read back with no requester, their runs empty, the jobs unpaused.
async fn migration_4_keeps_the_history(backend: Backend) {
    let db = Db::new(backend, "v4");
    let store = db.open().await;
    let at = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
    let registration =
        tickguard::store::JobRegistration::new("kept", "every 1s".into(), "UTC".into(), None);
    store.register(&registration).await.unwrap();
    let request = ClaimRequest::new("kept", "kept@1", at, "owner-1");
    let Claim::Acquired(claimed) = store.claim(&request).await.unwrap() else {
        panic!("the first claim must win");
    };
    let exec = tickguard::store::ExecutionRef {
        job: "kept".to_owned(),
        execution_id: "kept@1".to_owned(),
        fence: claimed.fence,
    };
    store
        .finish(
            &exec,
            &tickguard::store::Finish::new(Status::Failed, 1, Some("boom")),
        )
        .await
        .unwrap();
    undo_migration_4(&db, &*store).await;
    let version = db.table("tickguard_migrations");
    assert_eq!(
        db.count(
            &*store,
            format!("SELECT CAST(max(version) AS BIGINT) FROM {version}")
        )
        .await,
        3
    );
    let store = db.open().await;
    let record = store.execution("kept@1").await.unwrap().unwrap();
    assert_eq!(record.status, Status::Failed);
    assert_eq!(record.error.as_deref(), Some("boom"));
    assert_eq!(record.requested_by, None);
    let detail = store.execution_detail("kept@1").await.unwrap().unwrap();
    assert!(detail.runs.is_empty(), "{detail:?}");
    let job = store.job("kept").await.unwrap().unwrap();
    assert_eq!(job.paused, None);
    assert_eq!(job.last.map(|l| l.status), Some(Status::Failed));
    assert_eq!(store.control_version().await.unwrap(), 0);
    // And the upgraded tables take claims and runs as new ones do.
    let again = ClaimRequest::new("kept", "kept@2", at, "owner-2");
    assert!(matches!(
        store.claim(&again).await.unwrap(),
        Claim::Acquired(_)
    ));
    let detail = store.execution_detail("kept@2").await.unwrap().unwrap();
    assert_eq!(detail.runs.len(), 1, "{detail:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_migration_4_keeps_the_history() {
    migration_4_keeps_the_history(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_migration_4_keeps_the_history() {
    migration_4_keeps_the_history(Backend::Sqlite).await;
}

/// A prune deletes, with the executions, their runs and their per-execution steps (never a
/// `once_ever` step), and records how far it deleted on the job's row.
async fn prune_deletes_runs_and_steps_with_the_executions(backend: Backend) {
    let db = Db::new(backend, "prune");
    let store = db.open().await;
    let at = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
    let request = ClaimRequest::new("pruned", "pruned@1", at, "owner-1");
    let Claim::Acquired(claimed) = store.claim(&request).await.unwrap() else {
        panic!("the first claim must win");
    };
    let exec = tickguard::store::ExecutionRef {
        job: "pruned".to_owned(),
        execution_id: "pruned@1".to_owned(),
        fence: claimed.fence,
    };
    for (key, scope) in [
        ("step", tickguard::store::OnceScope::Execution),
        ("forever", tickguard::store::OnceScope::Ever),
    ] {
        store.once_begin(&exec, key, scope).await.unwrap();
        store.once_end(&exec, key, scope, true).await.unwrap();
    }
    store
        .finish(
            &exec,
            &tickguard::store::Finish::new(Status::Completed, 1, None),
        )
        .await
        .unwrap();
    let (runs, once, jobs) = (
        db.table("tickguard_runs"),
        db.table("tickguard_once"),
        db.table("tickguard_jobs"),
    );
    let count = |statement: String| {
        let (db, store) = (&db, &store);
        async move { db.count(&**store, statement).await }
    };
    assert_eq!(count(format!("SELECT count(*) FROM {runs}")).await, 1);
    assert_eq!(count(format!("SELECT count(*) FROM {once}")).await, 2);
    let retention = tickguard::store::Retention::keep_forever().completed(Some(Duration::ZERO));
    let prune = tickguard::store::PruneRequest::new(retention).jobs(vec!["pruned".to_owned()]);
    assert_eq!(store.prune(&prune).await.unwrap().total(), 1);
    assert_eq!(count(format!("SELECT count(*) FROM {runs}")).await, 0);
    assert_eq!(
        count(format!("SELECT count(*) FROM {once} WHERE per_execution")).await,
        0
    );
    assert_eq!(
        count(format!("SELECT count(*) FROM {once} WHERE key = 'forever'")).await,
        1
    );
    let through = match backend {
        Backend::Postgres => format!(
            "SELECT count(*) FROM {jobs} WHERE pruned_through = '{}'::timestamptz",
            at.to_rfc3339()
        ),
        Backend::Sqlite => format!(
            "SELECT count(*) FROM {jobs} WHERE pruned_through = {}",
            at.timestamp_millis()
        ),
    };
    assert_eq!(count(through).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_prune_deletes_runs_and_steps_with_the_executions() {
    prune_deletes_runs_and_steps_with_the_executions(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_prune_deletes_runs_and_steps_with_the_executions() {
    prune_deletes_runs_and_steps_with_the_executions(Backend::Sqlite).await;
}

/// Every change an operator makes is announced on the control channel, with the schema's
/// name, once it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_changes_are_announced_on_the_control_channel() {
    let db = Db::new(Backend::Postgres, "notify");
    let store = db.postgres().await;
    let registration =
        tickguard::store::JobRegistration::new("noisy", "every 1s".into(), "UTC".into(), None);
    store.register(&registration).await.unwrap();
    let mut listener = sqlx::postgres::PgListener::connect(&postgres_url())
        .await
        .unwrap_or_else(|e| no_postgres(e));
    listener.listen("tickguard_control").await.unwrap();
    let mut heard = Vec::new();
    let before = store.control_version().await.unwrap();
    store.pause("noisy", "deploy", "alice").await.unwrap();
    store.resume("noisy").await.unwrap();
    let manual = store.trigger("noisy", "alice").await.unwrap();
    assert!(store.pause("missing", "x", "y").await.is_err());
    assert_eq!(store.control_version().await.unwrap(), before + 3);
    // Other tests' schemas announce on the same channel: only this schema's count.
    while heard.len() < 3 {
        let note = tokio::time::timeout(Duration::from_secs(10), listener.recv())
            .await
            .expect("no announcement within 10 s")
            .unwrap();
        if note.payload() == db.place {
            heard.push(note.payload().to_owned());
        }
    }
    assert_eq!(manual.requested_by.as_deref(), Some("alice"));
}

/// Opens the store as the `tickguard` command does.
async fn open_existing(backend: Backend, url: &str, place: &str) -> Result<(), String> {
    match backend {
        Backend::Postgres => PostgresStore::connect_existing(url, place)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Backend::Sqlite => SqliteStore::open_existing(place)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
    }
}

/// Opening an existing store creates nothing: missing tables and tables at another version
/// are refused with what to do, and no message shows the password.
async fn opening_an_existing_store_creates_nothing(backend: Backend) {
    let db = Db::new(backend, "existing");
    let url = postgres_url().replacen("postgres://postgres@", "postgres://postgres:s3cret@", 1);
    let missing = open_existing(backend, &url, &db.place).await.unwrap_err();
    match backend {
        Backend::Postgres => assert!(
            missing.contains(&format!("no tickguard tables in schema `{}` at ", db.place))
                && missing.contains("start a scheduler on this store once to create them"),
            "{missing}"
        ),
        Backend::Sqlite => assert!(missing.contains("no SQLite database"), "{missing}"),
    }
    assert!(!missing.contains("s3cret"), "{missing}");
    // Still nothing: the failed open created no tables.
    let again = open_existing(backend, &url, &db.place).await.unwrap_err();
    assert_eq!(again, missing);
    let store = db.open().await;
    open_existing(backend, &url, &db.place).await.unwrap();
    let migrations = db.table("tickguard_migrations");
    db.execute(
        &*store,
        format!("DELETE FROM {migrations} WHERE version = 6"),
    )
    .await;
    let older = open_existing(backend, &url, &db.place).await.unwrap_err();
    assert!(
        older.contains("are at version 5, this build needs 6: start an instance of this version to migrate them"),
        "{older}"
    );
    assert!(!older.contains("s3cret"), "{older}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_opening_an_existing_store_creates_nothing() {
    opening_an_existing_store_creates_nothing(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_opening_an_existing_store_creates_nothing() {
    opening_an_existing_store_creates_nothing(Backend::Sqlite).await;
}

/// An unreachable server is refused with its address and what to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_opening_an_unreachable_store_says_where() {
    let port = tickguard_tests::free_port();
    let url = format!("postgres://postgres:s3cret@127.0.0.1:{port}/test");
    let e = open_existing(Backend::Postgres, &url, "public")
        .await
        .unwrap_err();
    assert!(
        e.contains(&format!("cannot reach PostgreSQL at 127.0.0.1:{port}/test")),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_migration_2_records_the_running_execution() {
    migration_2_records_the_running_execution(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_migration_2_records_the_running_execution() {
    migration_2_records_the_running_execution(Backend::Sqlite).await;
}

// ---------------------------------------------------------------------------------------
// The claim of a free job in one statement

/// A claim whose statement began before the tick was completed elsewhere (it took its
/// snapshot, then waited for the job's row) still finds the tick done: the row it conflicts
/// with is judged at its latest version, not as its snapshot saw it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_claim_that_waited_out_a_completion_finds_the_tick_done() {
    let db = Db::new(Backend::Postgres, "late_claim");
    let store = Arc::new(db.postgres().await);
    let at = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
    let (jobs, executions) = (db.table("tickguard_jobs"), db.table("tickguard_executions"));
    db.execute(&*store, format!("INSERT INTO {jobs} (job) VALUES ('late')"))
        .await;
    // Another session holds the job's row while the claim starts.
    let mut holder = store.pool().begin().await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "SELECT 1 FROM {jobs} WHERE job = 'late' FOR UPDATE"
    )))
    .execute(&mut *holder)
    .await
    .unwrap();
    let claimer = {
        let store = store.clone();
        tokio::spawn(async move {
            let request = ClaimRequest::new("late", "late@1", at, "claimer#1");
            store.claim(&request).await.unwrap()
        })
    };
    // Once the claim waits for the row, its snapshot is taken: the tick completes now.
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
         AND query LIKE '%{jobs}%' AND pid <> pg_backend_pid()"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while db.count(&*store, waiting.clone()).await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the claim never waited"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {executions} (id, job, scheduled_at, status, fence, owner, attempt, \
             started_at, heartbeat_at, liveness_ms, finished_at) \
         VALUES ('late@1', 'late', $1, 'COMPLETED', 1, 'elsewhere#1', 1, now(), now(), 30000, now())"
    )))
    .bind(at)
    .execute(&mut *holder)
    .await
    .unwrap();
    holder.commit().await.unwrap();
    let claimed = claimer.await.unwrap();
    assert_eq!(
        claimed,
        Claim::Done {
            status: Status::Completed
        }
    );
}

/// A claim names its execution on the job's row and the finish clears the name, so the
/// job's next claim is the one statement of a free job; a finish that a newer claim fenced
/// out clears nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_finish_frees_the_job_for_its_next_claim() {
    let db = Db::new(Backend::Postgres, "freed");
    let store = Arc::new(db.postgres().await);
    let at = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
    let jobs = db.table("tickguard_jobs");
    let named = |id: &str| {
        format!("SELECT count(*) FROM {jobs} WHERE job = 'free' AND running_id = '{id}'")
    };
    let claim = |id: &'static str, owner: &'static str| {
        let store = store.clone();
        async move {
            let request =
                ClaimRequest::new("free", id, at, owner).liveness(Duration::from_millis(50));
            match store.claim(&request).await.unwrap() {
                Claim::Acquired(c) => tickguard::store::ExecutionRef {
                    job: "free".into(),
                    execution_id: id.into(),
                    fence: c.fence,
                },
                other => panic!("{other:?}"),
            }
        }
    };
    let first = claim("free@1", "a#1").await;
    assert_eq!(db.count(&*store, named("free@1")).await, 1);
    let done = tickguard::store::Finish::new(Status::Completed, 1, None);
    store.finish(&first, &done).await.unwrap();
    let free = format!("SELECT count(*) FROM {jobs} WHERE job = 'free' AND running_id IS NULL");
    assert_eq!(
        db.count(&*store, free.clone()).await,
        1,
        "the finish frees the job"
    );
    // A run whose owner went silent is taken over; its late finish is refused and frees
    // nothing: the job's row keeps naming the new run.
    let stale = claim("free@2", "b#1").await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    let _taken = claim("free@3", "c#1").await;
    assert!(store.finish(&stale, &done).await.unwrap_err().is_fenced());
    assert_eq!(db.count(&*store, named("free@3")).await, 1);
}

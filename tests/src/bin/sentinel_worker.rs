//! A worker process for the lease-loss test of `tests/tests/redis_sentinel.rs`: one
//! scheduler instance locking through Redis Sentinel, on a PostgreSQL store, with one
//! idempotent job, `steps`, that fires once a day at a second the test chooses and writes
//! its tick's effect in steps. Each step is a row of `effects`, committed in a
//! `ctx.transaction()` together with the checkpoint that counts it done, so a run that takes
//! the execution over resumes after the last step committed: no step is written twice by
//! the job itself, only a second run of the same step could.
//!
//! ```text
//! sentinel_worker <instance> <ready-file>
//!   TICKGUARD_TEST_POSTGRES  the database
//!   SENTINEL_SCHEMA          the store's schema; the tables "<schema>".effects and
//!                            "<schema>".runs
//!   SENTINEL_LOCK            <master>:<sentinel-url>,<sentinel-url>,..
//!   SENTINEL_AT              a file: once the worker is connected and has created
//!                            `<ready-file>`, it waits for this file, which holds when the
//!                            job fires, in Unix seconds (once a day at that time, UTC)
//!   SENTINEL_TTL_MS          the lease's ttl
//!   SENTINEL_STEPS           how many steps a tick's effect has
//!   SENTINEL_STEP_MS         how long one step takes
//! ```
//!
//! An effect row is `(tick, step, fence, worker, at)`. A run row is `(execution_id, tick,
//! fence, worker, from_step, started, ended, how)`, written as the run starts and ends:
//! `how` is `completed`, `cancelled:<reason>` (the run saw `ctx.cancelled()` and stopped)
//! or `failed:<error>`. `at`, `started` and `ended` are the database's clock, in Unix
//! milliseconds. The worker logs to stderr (`RUST_LOG`), creates `<ready-file>` once
//! connected and `<ready-file>.built` once its scheduler is built, and stops on SIGTERM.

#![allow(clippy::print_stderr)]

use std::time::Duration;
use tickguard_tests::worker_env as env;

use chrono::Timelike;
use tickguard::{
    Job, JobContext, JobError, LockPolicy, Misfire, ResultExt, Schedule, Scheduler,
    sqlx::{self, AssertSqlSafe, PgPool, Postgres},
    store::PostgresStore,
};

/// The database's clock in Unix milliseconds, in SQL.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

fn number(name: &str) -> u64 {
    env(name)
        .parse()
        .unwrap_or_else(|e| panic!("sentinel_worker: {name}: {e}"))
}

/// The job: its tables and pace.
#[derive(Clone)]
struct Steps {
    pool: PgPool,
    schema: String,
    steps: u32,
    step: Duration,
}

impl Steps {
    /// One run: records its start, writes the steps after the last checkpoint, records how
    /// it ended. A run that stops when asked says so: returning `Ok` would record it
    /// completed.
    async fn run(self, ctx: JobContext) -> Result<(), JobError> {
        let from: u32 = ctx.last_checkpoint().await?.unwrap_or(0);
        let (id,): (i64,) = sqlx::query_as(AssertSqlSafe(format!(
            "INSERT INTO \"{}\".runs (execution_id, tick, fence, worker, from_step, started) \
             VALUES ($1, $2, $3, $4, $5, {NOW_MS}) RETURNING id",
            self.schema
        )))
        .bind(ctx.execution_id())
        .bind(ctx.scheduled_at().timestamp_millis())
        .bind(ctx.fence() as i64)
        .bind(ctx.instance_id())
        .bind(i64::from(from))
        .fetch_one(&self.pool)
        .await
        .transient()?;
        let ended = self.steps_from(&ctx, from).await;
        let how = match &ended {
            Ok(None) => "completed".to_owned(),
            Ok(Some(reason)) => format!("cancelled:{reason}"),
            Err(e) => format!("failed:{e}"),
        };
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE \"{}\".runs SET ended = {NOW_MS}, how = $2 WHERE id = $1",
            self.schema
        )))
        .bind(id)
        .bind(how)
        .execute(&self.pool)
        .await
        .transient()?;
        match ended? {
            Some(reason) => Err(JobError::permanent(format!("stopped: {reason}"))),
            None => Ok(()),
        }
    }

    /// Writes steps `from..` one by one, each after its pause; stops at the first pause in
    /// which the run is cancelled, with the reason.
    async fn steps_from(&self, ctx: &JobContext, from: u32) -> Result<Option<String>, JobError> {
        for step in from..self.steps {
            tokio::select! {
                () = ctx.cancelled() => {
                    let reason = ctx.cancel_reason().map_or("?", |r| r.as_str());
                    return Ok(Some(reason.to_owned()));
                }
                () = tokio::time::sleep(self.step) => {}
            }
            let mut tx = ctx.transaction::<Postgres>().await?;
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO \"{}\".effects (tick, step, fence, worker, at) \
                 VALUES ($1, $2, $3, $4, {NOW_MS})",
                self.schema
            )))
            .bind(ctx.scheduled_at().timestamp_millis())
            .bind(i64::from(step))
            .bind(ctx.fence() as i64)
            .bind(ctx.instance_id())
            .execute(&mut *tx)
            .await
            .transient()?;
            tx.checkpoint(&(step + 1)).await?;
            tx.commit().await?;
        }
        Ok(None)
    }
}

/// Resolves on SIGTERM.
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::terminate())
        .unwrap_or_else(|e| panic!("sentinel_worker: {e}"))
        .recv()
        .await;
}

#[tokio::main]
async fn main() {
    tickguard_tests::worker_logs_to_stderr();
    let args: Vec<String> = std::env::args().collect();
    let (Some(instance), Some(ready)) = (args.get(1), args.get(2)) else {
        panic!("sentinel_worker <instance> <ready-file>");
    };
    let schema = env("SENTINEL_SCHEMA");
    let store = PostgresStore::connect_with_schema(&tickguard_tests::postgres_url(), &schema)
        .await
        .unwrap_or_else(|e| panic!("sentinel_worker: {e}"));
    let steps = Steps {
        pool: store.pool().clone(),
        schema,
        steps: u32::try_from(number("SENTINEL_STEPS")).unwrap_or(u32::MAX),
        step: Duration::from_millis(number("SENTINEL_STEP_MS")),
    };
    let lock = env("SENTINEL_LOCK");
    let Some((master, urls)) = lock.split_once(':') else {
        panic!("sentinel_worker: SENTINEL_LOCK `{lock}`: <master>:<sentinel-url>,..");
    };
    std::fs::write(ready, "ready").unwrap_or_else(|e| panic!("sentinel_worker: {e}"));
    let at = tickguard_tests::fire_at(&env("SENTINEL_AT")).await;
    let cron = format!("{} {} {} * * *", at.second(), at.minute(), at.hour());
    let job = Job::new(
        "steps",
        Schedule::cron(&cron).unwrap_or_else(|e| panic!("sentinel_worker: {e}")),
        move |ctx: JobContext| steps.clone().run(ctx),
    )
    .idempotent()
    .misfire(Misfire::RunAll)
    .lock(LockPolicy::new(Duration::from_millis(number(
        "SENTINEL_TTL_MS",
    ))));
    let scheduler = Scheduler::builder()
        .discover(false)
        .instance_id(instance.clone())
        .liveness(Duration::from_millis(1_500))
        .store(store)
        .redis_sentinel(urls.split(','), master)
        .job(job)
        .build()
        .await
        .unwrap_or_else(|e| panic!("sentinel_worker: {e}"));
    std::fs::write(format!("{ready}.built"), "built")
        .unwrap_or_else(|e| panic!("sentinel_worker: {e}"));
    if let Err(e) = scheduler.run_until(terminated()).await {
        panic!("sentinel_worker: {e}");
    }
}

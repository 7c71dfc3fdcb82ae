//! A worker process for the ledger tests (`tests/tests/ledger.rs`): one scheduler instance
//! on a Redis lock and a Postgres store, with idempotent jobs that write one effect row per
//! tick in a fenced transaction.
//!
//! ```text
//! ledger_worker <instance> <ready-file>
//!   TICKGUARD_TEST_POSTGRES  the database
//!   LEDGER_SCHEMA            the store's schema; the effects go in "<schema>".effects
//!   LEDGER_REDIS             the Redis URL of the lock
//!   LEDGER_JOBS              name=schedule=policy, comma-separated; schedule is a cron
//!                            expression or `every:<ms>`, policy skip, run_once or run_all
//!   LEDGER_LIVENESS_MS       the scheduler's liveness (default 3000)
//! ```
//!
//! An effect row is `(job, tick, worker, fence, at)`; `at` is the database's clock when the
//! effect was written. The worker creates `<ready-file>` once its scheduler is built, with
//! its wall clock (Unix milliseconds) as the content, and stops on SIGINT or SIGTERM.

use std::time::Duration;
use tickguard_tests::worker_env as env;

use tickguard::{
    Job, JobContext, JobError, LockPolicy, Misfire, ResultExt, Schedule, Scheduler,
    lock::RedisLock,
    sqlx::{self, AssertSqlSafe, Postgres},
    store::PostgresStore,
};

fn schedule(text: &str) -> Schedule {
    let parsed = match text.strip_prefix("every:") {
        Some(ms) => Schedule::every(Duration::from_millis(ms.parse().unwrap_or(1_000))),
        None => Schedule::cron(text),
    };
    parsed.unwrap_or_else(|e| panic!("ledger_worker: schedule `{text}`: {e}"))
}

fn policy(text: &str) -> Misfire {
    match text {
        "skip" => Misfire::Skip,
        "run_once" => Misfire::RunOnce,
        "run_all" => Misfire::RunAll,
        other => panic!("ledger_worker: misfire `{other}`"),
    }
}

/// Writes the tick's effect unless it is there, in a fenced transaction.
async fn effect(table: &str, ctx: &JobContext) -> Result<(), JobError> {
    let tick = ctx.scheduled_at().timestamp_millis();
    let mut tx = ctx.transaction::<Postgres>().await?;
    let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {table} WHERE job = $1 AND tick = $2"
    )))
    .bind(ctx.job())
    .bind(tick)
    .fetch_one(&mut *tx)
    .await
    .transient()?;
    if n == 0 {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} (job, tick, worker, fence, at) \
             VALUES ($1, $2, $3, $4, clock_timestamp())"
        )))
        .bind(ctx.job())
        .bind(tick)
        .bind(ctx.instance_id())
        .bind(ctx.fence() as i64)
        .execute(&mut *tx)
        .await
        .transient()?;
    }
    tx.commit().await
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(instance), Some(ready)) = (args.get(1), args.get(2)) else {
        panic!("ledger_worker <instance> <ready-file>");
    };
    let schema = env("LEDGER_SCHEMA");
    let liveness = std::env::var("LEDGER_LIVENESS_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(3), Duration::from_millis);
    let store = PostgresStore::connect_with_schema(&tickguard_tests::postgres_url(), &schema)
        .await
        .unwrap_or_else(|e| panic!("ledger_worker: {e}"));
    let lock = RedisLock::connect(&env("LEDGER_REDIS"))
        .await
        .unwrap_or_else(|e| panic!("ledger_worker: {e}"));
    let mut builder = Scheduler::builder()
        .discover(false)
        .instance_id(instance.clone())
        .liveness(liveness)
        .store(store)
        .lock_backend(lock);
    let table = format!("\"{schema}\".effects");
    for spec in env("LEDGER_JOBS").split(',') {
        let parts: Vec<&str> = spec.split('=').collect();
        let [name, every, misfire] = parts[..] else {
            panic!("ledger_worker: job `{spec}`: name=schedule=policy");
        };
        let table = table.clone();
        let job = Job::new(name, schedule(every), move |ctx: JobContext| {
            let table = table.clone();
            async move { effect(&table, &ctx).await }
        })
        .idempotent()
        .misfire(policy(misfire))
        .lock(LockPolicy::new(liveness));
        builder = builder.job(job);
    }
    let scheduler = builder
        .build()
        .await
        .unwrap_or_else(|e| panic!("ledger_worker: {e}"));
    let now = chrono::Utc::now().timestamp_millis().to_string();
    std::fs::write(ready, now).unwrap_or_else(|e| panic!("ledger_worker: {e}"));
    let _ = scheduler
        .run_until(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .unwrap_or_else(|e| panic!("ledger_worker: {e}"));
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await;
}

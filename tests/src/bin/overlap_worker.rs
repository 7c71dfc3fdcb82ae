//! A worker process for the overlap tests (`tests/tests/overlap.rs`): one scheduler instance
//! on a Postgres store (and a Redis lock, if given) with one idempotent job under an overlap
//! policy, whose every run records when it started and how and when it ended.
//!
//! ```text
//! overlap_worker <instance> <ready-file>
//!   TICKGUARD_TEST_POSTGRES  the database
//!   OVERLAP_SCHEMA           the store's schema; the runs go in "<schema>".runs
//!   OVERLAP_JOB              the job's name
//!   OVERLAP_POLICY           skip, buffer_one, buffer_all or cancel_other
//!   OVERLAP_EVERY_MS         the job's period
//!   OVERLAP_RUN_MS           how long a tick's run lasts, unless it is cancelled first
//!   OVERLAP_MANUAL_RUN_MS    how long a triggered run lasts (default: as a tick's)
//!   OVERLAP_REDIS            the lock's Redis URL (optional: no lock without it)
//!   OVERLAP_IDEMPOTENT       `0` for a job that is not idempotent (default: idempotent)
//! ```
//!
//! A run row is `(job, tick, execution_id, worker, started, ended, how)`: `tick` in Unix
//! milliseconds, `started` and `ended` the database's clock, `how` `completed` or
//! `cancelled:<reason>`. The worker creates `<ready-file>` once its scheduler is built, and
//! stops on SIGINT or SIGTERM.

use std::time::Duration;
use tickguard_tests::worker_env as env;

use tickguard::{
    Job, JobContext, JobError, LockPolicy, Overlap, ResultExt, Schedule, Scheduler,
    sqlx::{self, AssertSqlSafe, PgPool},
    store::PostgresStore,
};

fn millis(name: &str) -> Duration {
    Duration::from_millis(
        env(name)
            .parse()
            .unwrap_or_else(|e| panic!("overlap_worker: {name}: {e}")),
    )
}

fn policy(name: &str) -> Overlap {
    match name {
        "skip" => Overlap::Skip,
        "buffer_one" => Overlap::BufferOne,
        "buffer_all" => Overlap::BufferAll,
        "cancel_other" => Overlap::CancelOther,
        other => panic!("overlap_worker: policy `{other}`"),
    }
}

/// Runs for `run_for` or until cancelled, recording both ends of the run.
async fn run(
    pool: PgPool,
    table: String,
    run_for: Duration,
    ctx: JobContext,
) -> Result<(), JobError> {
    let (id,): (i64,) = sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO {table} (job, tick, execution_id, worker, started) \
         VALUES ($1, $2, $3, $4, clock_timestamp()) RETURNING id"
    )))
    .bind(ctx.job())
    .bind(ctx.scheduled_at().timestamp_millis())
    .bind(ctx.execution_id())
    .bind(ctx.instance_id())
    .fetch_one(&pool)
    .await
    .transient()?;
    let reason = tokio::select! {
        () = tokio::time::sleep(run_for) => None,
        () = ctx.cancelled() => Some(ctx.cancel_reason().map_or("?", |r| r.as_str())),
    };
    let how = reason.map_or("completed".to_owned(), |r| format!("cancelled:{r}"));
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {table} SET ended = clock_timestamp(), how = $2 WHERE id = $1"
    )))
    .bind(id)
    .bind(how)
    .execute(&pool)
    .await
    .transient()?;
    // A run that stops when asked says so: returning `Ok` would record it completed.
    match reason {
        Some(reason) => Err(JobError::permanent(format!("stopped: {reason}"))),
        None => Ok(()),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(instance), Some(ready)) = (args.get(1), args.get(2)) else {
        panic!("overlap_worker <instance> <ready-file>");
    };
    let schema = env("OVERLAP_SCHEMA");
    let store = PostgresStore::connect_with_schema(&tickguard_tests::postgres_url(), &schema)
        .await
        .unwrap_or_else(|e| panic!("overlap_worker: {e}"));
    let pool = store.pool().clone();
    let table = format!("\"{schema}\".runs");
    let run_for = millis("OVERLAP_RUN_MS");
    let manual_run_for =
        std::env::var("OVERLAP_MANUAL_RUN_MS").map_or(run_for, |_| millis("OVERLAP_MANUAL_RUN_MS"));
    let every = Schedule::every(millis("OVERLAP_EVERY_MS"))
        .unwrap_or_else(|e| panic!("overlap_worker: {e}"));
    let mut job = Job::new(env("OVERLAP_JOB"), every, move |ctx: JobContext| {
        let manual = ctx.execution_id().contains("@manual-");
        let run_for = if manual { manual_run_for } else { run_for };
        run(pool.clone(), table.clone(), run_for, ctx)
    })
    .overlap(policy(&env("OVERLAP_POLICY")));
    if std::env::var("OVERLAP_IDEMPOTENT").as_deref() != Ok("0") {
        job = job.idempotent();
    }
    let mut builder = Scheduler::builder()
        .discover(false)
        .instance_id(instance.clone())
        .liveness(Duration::from_secs(3))
        .store(store);
    if let Ok(redis) = std::env::var("OVERLAP_REDIS") {
        job = job.lock(LockPolicy::new(Duration::from_secs(3)));
        builder = builder.redis(redis);
    }
    let scheduler = builder
        .job(job)
        .build()
        .await
        .unwrap_or_else(|e| panic!("overlap_worker: {e}"));
    std::fs::write(ready, "ready").unwrap_or_else(|e| panic!("overlap_worker: {e}"));
    let _ = scheduler.run().await;
}

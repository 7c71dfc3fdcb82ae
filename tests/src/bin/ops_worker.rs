//! A worker process for the operations tests (`tests/tests/operations.rs`): one scheduler
//! instance on a Postgres store, with jobs whose every run writes an effect row as it
//! starts, so that the test sees every run of every instance.
//!
//! ```text
//! ops_worker <instance> <ready-file>
//!   TICKGUARD_TEST_POSTGRES  the database
//!   OPS_SCHEMA               the store's schema; the effects go in "<schema>".effects
//!   OPS_JOBS                 name=schedule=kind, comma-separated; schedule is a cron
//!                            expression or `every:<ms>`; kind is `ok` (a job that is not
//!                            idempotent), `idem` (idempotent), `fail` (fails, not retried)
//!                            `slow:<ms>` (runs that long, not idempotent) or `long:<ms>`
//!                            (idempotent: runs that long unless asked to stop, then
//!                            writes how it ended and fails)
//!   OPS_METRICS_PORT         serve /metrics on 127.0.0.1:<port> (optional)
//!   OPS_LISTEN               `0` to poll the store only, without LISTEN (default on)
//!   OPS_CONTROL_EVERY_MS     how often the control task polls (default 500)
//! ```
//!
//! An effect row is `(job, tick, execution_id, worker, at)`: `tick` in Unix milliseconds,
//! `at` the database's clock as the run started. A `long` run also writes an ending row
//! `(execution_id, worker, reason, at)` in `"<schema>".endings`: `reason` is its context's
//! cancel reason (`finished` when it ran its time), `at` the database's clock as it saw it.
//! The worker creates `<ready-file>` once its scheduler is built, and stops on SIGINT or
//! SIGTERM.

use std::time::Duration;
use tickguard_tests::worker_env as env;

use tickguard::{
    Job, JobContext, JobError, ResultExt, Schedule, Scheduler,
    sqlx::{self, AssertSqlSafe, PgPool},
    store::PostgresStore,
};

fn schedule(text: &str) -> Schedule {
    let parsed = match text.strip_prefix("every:") {
        Some(ms) => Schedule::every(Duration::from_millis(ms.parse().unwrap_or(1_000))),
        None => Schedule::cron(text),
    };
    parsed.unwrap_or_else(|e| panic!("ops_worker: schedule `{text}`: {e}"))
}

/// Writes the run's effect row.
async fn effect(pool: &PgPool, table: &str, ctx: &JobContext) -> Result<(), JobError> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} (job, tick, execution_id, worker, at) \
         VALUES ($1, $2, $3, $4, clock_timestamp())"
    )))
    .bind(ctx.job())
    .bind(ctx.scheduled_at().timestamp_millis())
    .bind(ctx.execution_id())
    .bind(ctx.instance_id())
    .execute(pool)
    .await
    .transient()?;
    Ok(())
}

/// A run that lasts `ms` unless asked to stop: writes how it ended in the endings table
/// (next to `table`), then fails if it was stopped, so that it is recorded as stopped.
async fn long(pool: &PgPool, table: &str, ctx: &JobContext, ms: u64) -> Result<(), JobError> {
    tokio::select! {
        () = ctx.cancelled() => {}
        () = tokio::time::sleep(Duration::from_millis(ms)) => {}
    }
    let reason = ctx.cancel_reason();
    let endings = table.replace(".effects", ".endings");
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {endings} (execution_id, worker, reason, at) \
         VALUES ($1, $2, $3, clock_timestamp())"
    )))
    .bind(ctx.execution_id())
    .bind(ctx.instance_id())
    .bind(reason.map_or("finished", |r| r.as_str()))
    .execute(pool)
    .await
    .transient()?;
    match reason {
        None => Ok(()),
        Some(reason) => Err(JobError::permanent(format!("stopped: {reason}"))),
    }
}

fn job(name: &str, every: &str, kind: &str, pool: &PgPool, table: &str) -> Job {
    let (pool, table, kind_) = (pool.clone(), table.to_owned(), kind.to_owned());
    let job = Job::new(name, schedule(every), move |ctx: JobContext| {
        let (pool, table, kind) = (pool.clone(), table.clone(), kind_.clone());
        async move {
            effect(&pool, &table, &ctx).await?;
            if let Some(ms) = kind.strip_prefix("slow:") {
                tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(1_000))).await;
            }
            if let Some(ms) = kind.strip_prefix("long:") {
                return long(&pool, &table, &ctx, ms.parse().unwrap_or(1_000)).await;
            }
            if kind == "fail" {
                return Err(JobError::permanent("this job always fails"));
            }
            Ok(())
        }
    });
    match kind {
        "idem" => job.idempotent(),
        "ok" | "fail" => job,
        slow if slow.starts_with("slow:") => job,
        long if long.starts_with("long:") => job.idempotent(),
        other => panic!("ops_worker: kind `{other}`"),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(instance), Some(ready)) = (args.get(1), args.get(2)) else {
        panic!("ops_worker <instance> <ready-file>");
    };
    let schema = env("OPS_SCHEMA");
    let store = PostgresStore::connect_with_schema(&tickguard_tests::postgres_url(), &schema)
        .await
        .unwrap_or_else(|e| panic!("ops_worker: {e}"));
    let pool = store.pool().clone();
    let mut builder = Scheduler::builder()
        .discover(false)
        .instance_id(instance.clone())
        .liveness(Duration::from_secs(3))
        .control_listen(std::env::var("OPS_LISTEN").as_deref() != Ok("0"))
        .control_every(Duration::from_millis(
            std::env::var("OPS_CONTROL_EVERY_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(500),
        ))
        .store(store);
    if let Ok(port) = std::env::var("OPS_METRICS_PORT") {
        builder = builder.prometheus(format!("127.0.0.1:{port}"));
    }
    let table = format!("\"{schema}\".effects");
    for spec in env("OPS_JOBS").split(',') {
        let parts: Vec<&str> = spec.split('=').collect();
        let [name, every, kind] = parts[..] else {
            panic!("ops_worker: job `{spec}`: name=schedule=kind");
        };
        builder = builder.job(job(name, every, kind, &pool, &table));
    }
    let scheduler = builder
        .build()
        .await
        .unwrap_or_else(|e| panic!("ops_worker: {e}"));
    std::fs::write(ready, "ready").unwrap_or_else(|e| panic!("ops_worker: {e}"));
    let _ = scheduler
        .run_until(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .unwrap_or_else(|e| panic!("ops_worker: {e}"));
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await;
}

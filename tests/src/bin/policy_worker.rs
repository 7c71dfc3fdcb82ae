//! A worker process for the policy tests (`tests/tests/policies.rs`): one scheduler instance
//! on a Postgres store, with idempotent jobs whose runs fail or succeed as a row of a test
//! table says, and each run's effect row written as it ends.
//!
//! ```text
//! policy_worker <instance> <ready-file>
//!   TICKGUARD_TEST_POSTGRES  the database
//!   POLICY_SCHEMA            the store's schema; the tables "<schema>".effects and
//!                            "<schema>".switch
//!   POLICY_JOBS              name=<ms>=policy, comma-separated: the job runs every <ms>, not
//!                            retried, with `breaker:<name|->:<rate>:<window>:<min_runs>:<open_for ms>`
//!                            or `pause:<n>` (pause_on_failure)
//!   POLICY_METRICS_PORT      serve /metrics on 127.0.0.1:<port>
//! ```
//!
//! A run reads its job's row of `switch (job, fail, sleep_ms)`: it sleeps `sleep_ms`, then
//! fails if `fail`. Its effect row is `(job, execution_id, worker, failed, at)`, `at` the
//! database's clock as the run ends. The worker creates `<ready-file>` once its scheduler is
//! built, and stops on SIGINT or SIGTERM.

use std::time::Duration;
use tickguard_tests::worker_env as env;

use tickguard::{
    CircuitBreaker, Job, JobContext, JobError, ResultExt, RetryPolicy, Schedule, Scheduler,
    sqlx::{self, AssertSqlSafe, PgPool},
    store::PostgresStore,
};

/// One run: sleeps and fails as the job's switch says, and records its effect.
async fn run(pool: &PgPool, schema: &str, ctx: &JobContext) -> Result<(), JobError> {
    let (fail, sleep_ms): (bool, i64) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT fail, sleep_ms FROM \"{schema}\".switch WHERE job = $1"
    )))
    .bind(ctx.job())
    .fetch_optional(pool)
    .await
    .transient()?
    .unwrap_or((false, 0));
    tokio::time::sleep(Duration::from_millis(sleep_ms.max(0) as u64)).await;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO \"{schema}\".effects (job, execution_id, worker, failed, at) \
         VALUES ($1, $2, $3, $4, clock_timestamp())"
    )))
    .bind(ctx.job())
    .bind(ctx.execution_id())
    .bind(ctx.instance_id())
    .bind(fail)
    .execute(pool)
    .await
    .transient()?;
    if fail {
        return Err(JobError::permanent("the switch says fail\nsecond line"));
    }
    Ok(())
}

fn job(spec: &str, pool: &PgPool, schema: &str) -> Job {
    let parts: Vec<&str> = spec.split('=').collect();
    let [name, every, policy] = parts[..] else {
        panic!("policy_worker: job `{spec}`: name=ms=policy");
    };
    let every = Duration::from_millis(every.parse().expect("policy_worker: period in ms"));
    let (pool, schema) = (pool.clone(), schema.to_owned());
    let job = Job::new(
        name,
        Schedule::every(every).expect("policy_worker: schedule"),
        move |ctx: JobContext| {
            let (pool, schema) = (pool.clone(), schema.clone());
            async move { run(&pool, &schema, &ctx).await }
        },
    )
    .idempotent()
    .retry(RetryPolicy::none());
    let fields: Vec<&str> = policy.split(':').collect();
    match fields[..] {
        ["breaker", shared, rate, window, min_runs, open_for] => {
            let mut breaker = CircuitBreaker::new()
                .failure_rate(rate.parse().expect("rate"))
                .window(window.parse().expect("window"))
                .min_runs(min_runs.parse().expect("min_runs"))
                .open_for(Duration::from_millis(open_for.parse().expect("open_for")));
            if shared != "-" {
                breaker = breaker.name(shared);
            }
            job.circuit_breaker(breaker)
        }
        ["pause", n] => job.pause_on_failure(n.parse().expect("pause_on_failure")),
        _ => panic!("policy_worker: policy `{policy}`"),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(instance), Some(ready)) = (args.get(1), args.get(2)) else {
        panic!("policy_worker <instance> <ready-file>");
    };
    let schema = env("POLICY_SCHEMA");
    let store = PostgresStore::connect_with_schema(&tickguard_tests::postgres_url(), &schema)
        .await
        .unwrap_or_else(|e| panic!("policy_worker: {e}"));
    let pool = store.pool().clone();
    let mut builder = Scheduler::builder()
        .discover(false)
        .instance_id(instance.clone())
        .liveness(Duration::from_secs(3))
        .store(store)
        .prometheus(format!("127.0.0.1:{}", env("POLICY_METRICS_PORT")));
    for spec in env("POLICY_JOBS").split(',') {
        builder = builder.job(job(spec, &pool, &schema));
    }
    let scheduler = builder
        .build()
        .await
        .unwrap_or_else(|e| panic!("policy_worker: {e}"));
    std::fs::write(ready, "ready").unwrap_or_else(|e| panic!("policy_worker: {e}"));
    let _ = scheduler
        .run_until(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .unwrap_or_else(|e| panic!("policy_worker: {e}"));
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await;
}

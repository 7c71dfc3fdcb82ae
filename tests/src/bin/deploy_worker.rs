//! A worker process for the rolling-deploy test (`tests/tests/rolling_deploy.rs`): one
//! scheduler instance on a Postgres store and lock, with one long idempotent job that works
//! through numbered records, commits each one's effect in a fenced transaction, saves its
//! progress every 50 records and again when it stops, and resumes from the last checkpoint.
//! It runs with `Scheduler::run()`, so SIGTERM and SIGINT stop it the way they stop a
//! user's service.
//!
//! ```text
//! deploy_worker <instance> <ready-file>
//!   TICKGUARD_TEST_POSTGRES  the database
//!   DEPLOY_SCHEMA            the store's and lock's schema; the effects go in
//!                            "<schema>".processed (record, worker) and each run's start in
//!                            "<schema>".starts (worker, from_record, at)
//!   DEPLOY_AT                a file: once the worker is connected and has created
//!                            `<ready-file>`, it waits for this file, which holds when the job
//!                            fires, in Unix seconds (once a day at that time, UTC)
//!   DEPLOY_RECORDS           how many records (default 300)
//!   DEPLOY_STEP_MS           how long one record takes (default 10)
//!   DEPLOY_STOP_ON           `shutdown` (default): the job saves its progress and returns as
//!                            soon as shutdown is requested; `cancel`: it goes on until the
//!                            grace period runs out and it is cancelled, then does the same
//!   DEPLOY_GRACE_MS          the shutdown grace (default: the scheduler's)
//!   DEPLOY_CONTROL_EVERY_MS  how often the control task polls the store (default 500)
//! ```
//!
//! The worker creates `<ready-file>` once connected, and `<ready-file>.built` once its
//! scheduler is built.

use std::time::Duration;
use tickguard_tests::worker_env as env;

use chrono::Timelike;
use tickguard::{
    Job, JobContext, JobError, LockPolicy, ResultExt, Schedule, Scheduler,
    lock::PostgresLock,
    sqlx::{self, AssertSqlSafe, Postgres},
    store::PostgresStore,
};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the job needs to know.
#[derive(Clone)]
struct Export {
    schema: String,
    records: u64,
    step: Duration,
    /// Stop when shutdown is requested (or only when cancelled).
    on_shutdown: bool,
}

impl Export {
    /// Whether the run must stop now, by the worker's rule.
    async fn stop(&self, ctx: &JobContext) {
        if self.on_shutdown {
            ctx.shutdown_requested().await;
        } else {
            ctx.cancelled().await;
        }
    }

    async fn run(self, ctx: JobContext) -> Result<(), JobError> {
        let from: u64 = ctx.last_checkpoint().await?.unwrap_or(0);
        let mut tx = ctx.transaction::<Postgres>().await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO \"{}\".starts (worker, from_record, at) \
             VALUES ($1, $2, clock_timestamp())",
            self.schema
        )))
        .bind(ctx.instance_id())
        .bind(i64::try_from(from).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .transient()?;
        tx.commit().await?;
        for record in from..self.records {
            tokio::select! {
                () = self.stop(&ctx) => return ctx.hand_back(&record).await,
                () = tokio::time::sleep(self.step) => {}
            }
            let mut tx = ctx.transaction::<Postgres>().await?;
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO \"{}\".processed (record, worker) VALUES ($1, $2)",
                self.schema
            )))
            .bind(i64::try_from(record).unwrap_or(i64::MAX))
            .bind(ctx.instance_id())
            .execute(&mut *tx)
            .await
            .transient()?;
            tx.commit().await?;
            if record % 50 == 49 {
                ctx.checkpoint(&(record + 1)).await?;
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(instance), Some(ready)) = (args.get(1), args.get(2)) else {
        panic!("deploy_worker <instance> <ready-file>");
    };
    let url = tickguard_tests::postgres_url();
    let schema = env("DEPLOY_SCHEMA");
    let export = Export {
        schema: schema.clone(),
        records: env_or("DEPLOY_RECORDS", 300),
        step: Duration::from_millis(env_or("DEPLOY_STEP_MS", 10)),
        on_shutdown: std::env::var("DEPLOY_STOP_ON").as_deref() != Ok("cancel"),
    };
    let store = PostgresStore::connect_with_schema(&url, &schema)
        .await
        .unwrap_or_else(|e| panic!("deploy_worker: {e}"));
    let lock = PostgresLock::connect_with_schema(&url, &schema)
        .await
        .unwrap_or_else(|e| panic!("deploy_worker: {e}"));
    std::fs::write(ready, "ready").unwrap_or_else(|e| panic!("deploy_worker: {e}"));
    let at = tickguard_tests::fire_at(&env("DEPLOY_AT")).await;
    let cron = format!("{} {} {} * * *", at.second(), at.minute(), at.hour());
    let job = Job::new(
        "export",
        Schedule::cron(&cron).unwrap_or_else(|e| panic!("deploy_worker: {e}")),
        move |ctx: JobContext| export.clone().run(ctx),
    )
    .idempotent()
    .lock(LockPolicy::new(Duration::from_secs(10)));
    let mut builder = Scheduler::builder()
        .discover(false)
        .instance_id(instance.clone())
        .liveness(Duration::from_secs(30))
        .store(store)
        .lock_backend(lock)
        .job(job);
    if let Ok(ms) = std::env::var("DEPLOY_CONTROL_EVERY_MS") {
        builder = builder.control_every(Duration::from_millis(ms.parse().unwrap_or(500)));
    }
    if let Ok(ms) = std::env::var("DEPLOY_GRACE_MS") {
        builder = builder.shutdown_grace(Duration::from_millis(ms.parse().unwrap_or(20_000)));
    }
    let scheduler = builder
        .build()
        .await
        .unwrap_or_else(|e| panic!("deploy_worker: {e}"));
    std::fs::write(format!("{ready}.built"), "built")
        .unwrap_or_else(|e| panic!("deploy_worker: {e}"));
    if let Err(e) = scheduler.run().await {
        panic!("deploy_worker: {e}");
    }
}

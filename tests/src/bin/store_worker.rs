//! A worker process for the multi-process store tests (`tests/store_failures.rs`): one
//! scheduler instance on a Postgres execution store (no lock: the store alone keeps one
//! execution per job at a time), with one idempotent job that "charges" orders through
//! fenced transactions. Tests kill, stop and restart it, then read the tables.
//!
//! ```text
//! store_worker <postgres-url> <schema> <instance> <liveness-ms> <mode>
//! ```
//!
//! Modes:
//! - `charge`: job `charge`, every second, `misfire = run_all` (every tick runs): for each of
//!   orders 0, 1 and 2 of the tick, in a `ctx.transaction()`, charges the order unless it is
//!   charged already (a row in `{schema}.charges`), with random pauses inside and between
//!   the transactions.
//! - `slow-commit`: job `pay`, every second: charges order 0 of the tick in a
//!   `ctx.transaction()` and commits; on the instance named `slow`, it records `in_tx` in
//!   `{schema}.events` and waits 3 s before it commits. Records `committed` or
//!   `commit_failed` after.
//!
//! - `finish-in-shutdown`: job `finish`, every second, a shutdown grace of 0.5 s and a cancel
//!   grace of 1 s: its run records `started`, waits until shutdown cancels it, and returns
//!   `Ok`, so its end is recorded while the process shuts down.
//!
//! `{schema}.events(instance, kind, tick, fence, detail)` also gets `ready` once the
//! scheduler is built.

#![allow(clippy::print_stderr)]

use std::time::Duration;

use tickguard::{
    Job, JobContext, JobError, Misfire, ResultExt, Schedule, Scheduler,
    sqlx::{self, AssertSqlSafe, PgPool, Postgres},
    store::PostgresStore,
};

fn arg(args: &[String], i: usize, what: &str) -> String {
    args.get(i)
        .cloned()
        .unwrap_or_else(|| panic!("store_worker: missing argument {i} ({what})"))
}

#[derive(Clone)]
struct Tables {
    pool: PgPool,
    schema: String,
    instance: String,
}

impl Tables {
    fn charges(&self) -> String {
        format!("\"{}\".charges", self.schema)
    }

    async fn event(&self, kind: &str, ctx: Option<&JobContext>, detail: &str) {
        let (tick, fence) = ctx.map_or((None, None), |c| {
            (Some(c.scheduled_at()), Some(c.fence() as i64))
        });
        let sql = format!(
            "INSERT INTO \"{}\".events (instance, kind, tick, fence, detail) \
             VALUES ($1, $2, $3, $4, $5)",
            self.schema
        );
        if let Err(e) = sqlx::query(AssertSqlSafe(sql))
            .bind(&self.instance)
            .bind(kind)
            .bind(tick)
            .bind(fence)
            .bind(detail)
            .execute(&self.pool)
            .await
        {
            eprintln!("store_worker: cannot record `{kind}`: {e}");
        }
    }
}

/// Charges `order` of the run's tick unless it is charged already, inside `tx`.
async fn charge(
    tables: &Tables,
    ctx: &JobContext,
    tx: &mut tickguard::store::FencedTransaction<Postgres>,
    order: i32,
) -> Result<bool, JobError> {
    let charges = tables.charges();
    let charged: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {charges} WHERE tick = $1 AND order_no = $2"
    )))
    .bind(ctx.scheduled_at())
    .bind(order)
    .fetch_one(&mut **tx)
    .await
    .transient()?;
    if charged > 0 {
        return Ok(false);
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {charges} (tick, order_no, worker, fence, charged_at) \
         VALUES ($1, $2, $3, $4, clock_timestamp())"
    )))
    .bind(ctx.scheduled_at())
    .bind(order)
    .bind(ctx.instance_id())
    .bind(ctx.fence() as i64)
    .execute(&mut **tx)
    .await
    .transient()?;
    Ok(true)
}

fn pause(max_ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=max_ms)))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, schema) = (arg(&args, 1, "postgres url"), arg(&args, 2, "schema"));
    let instance = arg(&args, 3, "instance");
    let liveness = Duration::from_millis(
        arg(&args, 4, "liveness ms")
            .parse()
            .unwrap_or_else(|e| panic!("store_worker: liveness: {e}")),
    );
    let mode = arg(&args, 5, "mode");

    let store = PostgresStore::connect_with_schema(&url, &schema)
        .await
        .unwrap_or_else(|e| panic!("store_worker: {e}"));
    let tables = Tables {
        pool: store.pool().clone(),
        schema: schema.clone(),
        instance: instance.clone(),
    };
    let second = Schedule::every(Duration::from_secs(1)).unwrap_or_else(|e| panic!("{e}"));
    let job = match mode.as_str() {
        "charge" => {
            let tables = tables.clone();
            Job::new("charge", second, move |ctx: JobContext| {
                let tables = tables.clone();
                async move {
                    for order in 0..3 {
                        let mut tx = ctx.transaction::<Postgres>().await?;
                        pause(80).await;
                        charge(&tables, &ctx, &mut tx, order).await?;
                        pause(80).await;
                        tx.commit().await?;
                        pause(50).await;
                    }
                    Ok(())
                }
            })
            .misfire(Misfire::RunAll)
        }
        "slow-commit" => {
            let tables = tables.clone();
            let slow = instance == "slow";
            Job::new("pay", second, move |ctx: JobContext| {
                let tables = tables.clone();
                async move {
                    let mut tx = ctx.transaction::<Postgres>().await?;
                    charge(&tables, &ctx, &mut tx, 0).await?;
                    if slow {
                        tables.event("in_tx", Some(&ctx), "").await;
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                    match tx.commit().await {
                        Ok(()) => {
                            tables.event("committed", Some(&ctx), "").await;
                            Ok(())
                        }
                        Err(e) => {
                            tables
                                .event("commit_failed", Some(&ctx), &format!("{e:#}"))
                                .await;
                            Err(e)
                        }
                    }
                }
            })
        }
        "finish-in-shutdown" => {
            let tables = tables.clone();
            Job::new("finish", second, move |ctx: JobContext| {
                let tables = tables.clone();
                async move {
                    tables.event("started", Some(&ctx), "").await;
                    ctx.cancelled().await;
                    Ok(())
                }
            })
        }
        other => panic!("store_worker: unknown mode `{other}`"),
    }
    .idempotent();
    let mut builder = Scheduler::builder();
    if mode == "finish-in-shutdown" {
        builder = builder
            .shutdown_grace(Duration::from_millis(500))
            .cancel_grace(Duration::from_secs(1));
    }
    let scheduler = builder
        .discover(false)
        .instance_id(instance)
        .store(store)
        .liveness(liveness)
        .job(job)
        .build()
        .await
        .unwrap_or_else(|e| panic!("store_worker: {e}"));
    tables.event("ready", None, "").await;
    let _ = scheduler
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
}

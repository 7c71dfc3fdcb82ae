//! A worker process for the chaos harness (`tests/tests/chaos.rs`) and the Redis Sentinel
//! failover test (`tests/tests/redis_sentinel.rs`): one scheduler instance
//! with two idempotent jobs due every second (`misfire = run_all`, a failed attempt retried
//! up to 5 times), each writing one effect row per tick into `effects` in the store's
//! database. With `RUST_LOG` set (not `off`), it logs to stderr.
//!
//! ```text
//! chaos_worker <store> <lock> <instance> <ready-file> <metrics-port>
//!   store: postgres:<schema> | sqlite:<path>
//!   lock:  redis:<url> | sentinel:<master>:<sentinel-url>,<sentinel-url>,.. |
//!          postgres:<schema> | none
//! ```
//!
//! - job `tx`: in a `ctx.transaction()`, inserts the tick's effect unless it is there (a
//!   check inside the transaction: the fence at commit keeps a stale run from adding a
//!   second one), with a random pause inside;
//! - job `once`: in `ctx.once(..)`, inserts the tick's effect keyed by
//!   `ctx.idempotency_key(..)`, which the table deduplicates, as a payment API would.
//!
//! An effect row is `(job, tick, fence, worker, started, finished, idem)`; `started` is when
//! the run started, `finished` when the effect was written. The worker serves its metrics on
//! `127.0.0.1:<metrics-port>` and creates `<ready-file>` once its scheduler is built, holding
//! its wall clock (`Utc::now()` in milliseconds). SIGTERM or SIGINT stops it gracefully.

#![allow(clippy::print_stderr)]

use std::time::Duration;

use tickguard::{
    Job, JobContext, JobError, LockPolicy, Misfire, ResultExt, RetryPolicy, Schedule, Scheduler,
    lock::{PostgresLock, RedisLock},
    sqlx::{self, AssertSqlSafe, Postgres, Sqlite},
    store::{ExecutionStore, PostgresStore, SqlStore, SqliteStore},
};

/// Lease ttl of the locked variants, and the liveness of every variant.
const TTL: Duration = Duration::from_millis(1_500);
const LIVENESS: Duration = Duration::from_millis(1_500);
/// How long a stopping worker lets its runs finish (SIGTERM, SIGINT).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn arg(args: &[String], i: usize, what: &str) -> String {
    args.get(i)
        .cloned()
        .unwrap_or_else(|| panic!("chaos_worker: missing argument {i} ({what})"))
}

fn pause(max_ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=max_ms)))
}

/// The effect statements for the store's database.
#[derive(Clone)]
struct Effects {
    store: SqlStore,
    table: String,
}

impl Effects {
    fn exists(&self) -> String {
        format!(
            "SELECT count(*) FROM {} WHERE job = $1 AND tick = $2",
            self.table
        )
    }

    fn insert(&self) -> String {
        format!(
            "INSERT INTO {} (job, tick, fence, worker, started, finished, idem) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idem) DO NOTHING",
            self.table
        )
    }
}

/// `ctx.scheduled_at()` and the run's start, as the effect table stores them (milliseconds).
fn millis(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

async fn tx_effect(effects: &Effects, ctx: &JobContext, started: i64) -> Result<(), JobError> {
    let tick = millis(ctx.scheduled_at());
    let worker = ctx.instance_id().to_owned();
    let fence = ctx.fence() as i64;
    match &effects.store {
        SqlStore::Postgres(_) => {
            let mut tx = ctx.transaction::<Postgres>().await?;
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(effects.exists()))
                .bind("tx")
                .bind(tick)
                .fetch_one(&mut *tx)
                .await
                .transient()?;
            pause(150).await;
            if n == 0 {
                sqlx::query(AssertSqlSafe(effects.insert()))
                    .bind("tx")
                    .bind(tick)
                    .bind(fence)
                    .bind(worker)
                    .bind(started)
                    .bind(millis(chrono::Utc::now()))
                    .bind(Option::<String>::None)
                    .execute(&mut *tx)
                    .await
                    .transient()?;
            }
            pause(150).await;
            tx.commit().await
        }
        SqlStore::Sqlite(_) => {
            let mut tx = ctx.transaction::<Sqlite>().await?;
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(effects.exists()))
                .bind("tx")
                .bind(tick)
                .fetch_one(&mut *tx)
                .await
                .transient()?;
            if n == 0 {
                sqlx::query(AssertSqlSafe(effects.insert()))
                    .bind("tx")
                    .bind(tick)
                    .bind(fence)
                    .bind(worker)
                    .bind(started)
                    .bind(millis(chrono::Utc::now()))
                    .bind(Option::<String>::None)
                    .execute(&mut *tx)
                    .await
                    .transient()?;
            }
            tx.commit().await
        }
        _ => Err(JobError::permanent("unknown store")),
    }
}

async fn once_effect(effects: &Effects, ctx: &JobContext, started: i64) -> Result<(), JobError> {
    let tick = millis(ctx.scheduled_at());
    let key = format!("effect-{tick}");
    let idem = ctx.idempotency_key(&key);
    let worker = ctx.instance_id().to_owned();
    let fence = ctx.fence() as i64;
    ctx.once(&key, async {
        pause(150).await;
        let insert = AssertSqlSafe(effects.insert());
        let done = match &effects.store {
            SqlStore::Postgres(s) => sqlx::query(insert)
                .bind("once")
                .bind(tick)
                .bind(fence)
                .bind(&worker)
                .bind(started)
                .bind(millis(chrono::Utc::now()))
                .bind(&idem)
                .execute(s.pool())
                .await
                .map(drop),
            SqlStore::Sqlite(s) => sqlx::query(insert)
                .bind("once")
                .bind(tick)
                .bind(fence)
                .bind(&worker)
                .bind(started)
                .bind(millis(chrono::Utc::now()))
                .bind(&idem)
                .execute(s.pool())
                .await
                .map(drop),
            _ => Ok(()),
        };
        done.transient()
    })
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    if std::env::var("RUST_LOG").is_ok_and(|filter| filter != "off") {
        tickguard_tests::worker_logs_to_stderr();
    }
    let args: Vec<String> = std::env::args().collect();
    let (store_arg, lock_arg) = (arg(&args, 1, "store"), arg(&args, 2, "lock"));
    let instance = arg(&args, 3, "instance");
    let ready = arg(&args, 4, "ready file");
    let metrics_port = arg(&args, 5, "metrics port");
    let pg = tickguard_tests::postgres_url();

    let (store, effects): (std::sync::Arc<dyn ExecutionStore>, Effects) =
        match store_arg.split_once(':') {
            Some(("postgres", schema)) => {
                let store = PostgresStore::connect_with_schema(&pg, schema)
                    .await
                    .unwrap_or_else(|e| panic!("chaos_worker: {e}"));
                let effects = Effects {
                    store: SqlStore::Postgres(store.clone()),
                    table: format!("\"{schema}\".effects"),
                };
                (std::sync::Arc::new(store), effects)
            }
            Some(("sqlite", path)) => {
                let store = SqliteStore::connect(&format!("sqlite://{path}"))
                    .await
                    .unwrap_or_else(|e| panic!("chaos_worker: {e}"));
                let effects = Effects {
                    store: SqlStore::Sqlite(store.clone()),
                    table: "effects".to_owned(),
                };
                (std::sync::Arc::new(store), effects)
            }
            _ => panic!("chaos_worker: store `{store_arg}`: postgres:<schema> or sqlite:<path>"),
        };
    let mut builder = Scheduler::builder()
        .discover(false)
        .instance_id(instance)
        .liveness(LIVENESS)
        .shutdown_grace(SHUTDOWN_GRACE)
        .prometheus(format!("127.0.0.1:{metrics_port}"))
        .store(store);
    let locked = lock_arg != "none";
    match lock_arg.split_once(':') {
        Some(("redis", url)) => {
            let lock = RedisLock::connect(url)
                .await
                .unwrap_or_else(|e| panic!("chaos_worker: {e}"));
            builder = builder.lock_backend(lock);
        }
        Some(("sentinel", sentinels)) => {
            let (master, urls) = sentinels
                .split_once(':')
                .unwrap_or_else(|| panic!("chaos_worker: lock `{lock_arg}`: no master name"));
            builder = builder.redis_sentinel(urls.split(','), master);
        }
        Some(("postgres", schema)) => {
            let lock = PostgresLock::connect_with_schema(&pg, schema)
                .await
                .unwrap_or_else(|e| panic!("chaos_worker: {e}"));
            builder = builder.lock_backend(lock);
        }
        _ => {}
    }
    let second = Schedule::every(Duration::from_secs(1)).unwrap_or_else(|e| panic!("{e}"));
    for name in ["tx", "once"] {
        let effects = effects.clone();
        let mut job = Job::new(name, second.clone(), move |ctx: JobContext| {
            let effects = effects.clone();
            async move {
                let started = millis(chrono::Utc::now());
                if ctx.job() == "tx" {
                    tx_effect(&effects, &ctx, started).await
                } else {
                    once_effect(&effects, &ctx, started).await
                }
            }
        })
        .idempotent()
        .misfire(Misfire::RunAll)
        // A database that blinks (a terminated backend, a restart) fails an attempt; a job
        // that must not fail then retries, as these do.
        .retry(RetryPolicy::attempts(5).backoff(Duration::from_millis(200)));
        if locked {
            job = job.lock(LockPolicy::new(TTL));
        }
        builder = builder.job(job);
    }
    let scheduler = builder
        .build()
        .await
        .unwrap_or_else(|e| panic!("chaos_worker: {e}"));
    write_ready(&ready);
    let _ = scheduler.run_until(stop_signal()).await;
}

/// Creates the ready file, holding this process's `Utc::now()` in milliseconds (written
/// aside, then renamed: the file never appears empty). The file's modification time is the
/// kernel's clock, so the harness reads this process's clock offset from the two.
fn write_ready(ready: &str) {
    let aside = format!("{ready}.tmp");
    let now = millis(chrono::Utc::now()).to_string();
    std::fs::write(&aside, now).unwrap_or_else(|e| panic!("chaos_worker: {e}"));
    std::fs::rename(&aside, ready).unwrap_or_else(|e| panic!("chaos_worker: {e}"));
}

/// Resolves on SIGINT or SIGTERM, the signals a process manager stops a worker with.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).unwrap_or_else(|e| panic!("chaos_worker: {e}"));
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

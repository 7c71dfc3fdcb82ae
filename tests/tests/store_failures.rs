//! Failures injected for real into worker processes (`src/bin/store_worker.rs`) that share a
//! Postgres execution store: workers killed with SIGKILL at random points for a minute while
//! they charge orders, a worker stopped with SIGSTOP inside a fenced transaction, and a
//! worker shut down while a proxy holds up its store's traffic.
//!
//! Needs PostgreSQL at `TICKGUARD_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`); `bash scripts/services` starts it. The tests
//! fail without it, never skip. `TICKGUARD_CHARGE_SECONDS` (default 62) sets how long the
//! workers are killed and restarted; `TICKGUARD_CHARGE_SEED` replays a run's fault schedule
//! (each run prints its seed).

#![allow(clippy::unwrap_used, clippy::print_stderr)] // a failed unwrap is a failed test

use std::{
    collections::BTreeMap,
    process::{Command, Stdio},
    time::Duration,
};

use chrono::{DateTime, DurationRound, Utc};
use tickguard::{
    sqlx::{self, AssertSqlSafe, PgPool},
    store::PostgresStore,
};
use tickguard_tests::{
    Worker, no_postgres, postgres_url,
    proxy::{Proxy, Traffic, through_local_port},
    unique_name,
};

/// How long an owner may go without a heartbeat before others count it gone.
const LIVENESS_MS: u64 = 1_000;

/// A test's schema, with the tables the workers write to.
struct Scene {
    schema: String,
    pool: PgPool,
}

impl Scene {
    async fn new(case: &str) -> Self {
        let schema = unique_name(case);
        // Creates the schema and the store's tables, as the workers will find them.
        let store = PostgresStore::connect_with_schema(&postgres_url(), &schema)
            .await
            .unwrap_or_else(|e| no_postgres(e));
        let pool = store.pool().clone();
        for table in [
            "charges (tick timestamptz NOT NULL, order_no integer NOT NULL, worker text NOT \
             NULL, fence bigint NOT NULL, charged_at timestamptz NOT NULL)",
            "events (instance text NOT NULL, kind text NOT NULL, tick timestamptz, fence \
             bigint, detail text, at timestamptz NOT NULL DEFAULT clock_timestamp())",
        ] {
            sqlx::query(AssertSqlSafe(format!("CREATE TABLE \"{schema}\".{table}")))
                .execute(&pool)
                .await
                .unwrap();
        }
        Self { schema, pool }
    }

    fn worker(&self, instance: &str, mode: &str) -> Worker {
        let child = Command::new(env!("CARGO_BIN_EXE_store_worker"))
            .args([
                &postgres_url(),
                &self.schema,
                instance,
                &LIVENESS_MS.to_string(),
                mode,
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start store_worker: {e}"));
        Worker(child)
    }

    /// Waits until `instance` has recorded an event of `kind`.
    async fn wait_for(&self, instance: &str, kind: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT count(*) FROM \"{}\".events WHERE instance = $1 AND kind = $2",
                self.schema
            )))
            .bind(instance)
            .bind(kind)
            .fetch_one(&self.pool)
            .await
            .unwrap();
            if n > 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{instance} recorded no `{kind}` within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn charges(&self) -> Vec<(DateTime<Utc>, i32, String, i64)> {
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT tick, order_no, worker, fence FROM \"{}\".charges ORDER BY charged_at",
            self.schema
        )))
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }
}

/// An order: its tick and its number.
type Order = (DateTime<Utc>, i32);

fn seconds_env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The double charge (a payment job that dies after charging but before recording it, and
/// charges again when the tick is retried), for real: three workers charge each tick's three orders
/// through fenced transactions, every tick, while workers are killed at random moments (in
/// a claim, mid-transaction, between orders, at commit) and restarted. At the end, every
/// order of every tick due while the workers ran is charged exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_never_charge_twice_and_leave_no_tick_behind() {
    let scene = Scene::new("tg_charge").await;
    let seed = std::env::var("TICKGUARD_CHARGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let run_for = Duration::from_secs(seconds_env("TICKGUARD_CHARGE_SECONDS", 62));
    eprintln!("charge test: seed {seed} (TICKGUARD_CHARGE_SEED={seed} replays it), {run_for:?}");
    let mut rng = fastrand::Rng::with_seed(seed);

    let mut workers: Vec<Worker> = Vec::new();
    for i in 0..3 {
        let name = format!("w{i}-0");
        workers.push(scene.worker(&name, "charge"));
        scene
            .wait_for(&name, "ready", Duration::from_secs(20))
            .await;
    }
    let first_tick = Utc::now()
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap()
        + chrono::Duration::seconds(1);
    let until = tokio::time::Instant::now() + run_for;
    let mut kills = 0;
    let mut generation = 0;
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(rng.u64(700..=2_500))).await;
        let victim = rng.usize(0..workers.len());
        // SIGKILL: no shutdown, no finish, connections cut mid-statement.
        workers[victim].signal("KILL");
        let _ = workers[victim].0.wait();
        kills += 1;
        tokio::time::sleep(Duration::from_millis(rng.u64(0..=1_500))).await;
        generation += 1;
        let name = format!("w{victim}-{generation}");
        workers[victim] = scene.worker(&name, "charge");
    }
    let last_tick = Utc::now()
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap();
    // Interrupted executions are resumed within a liveness or two; let them finish.
    tokio::time::sleep(Duration::from_millis(6 * LIVENESS_MS)).await;
    drop(workers);

    let charges = scene.charges().await;
    let mut per_order: BTreeMap<Order, Vec<(String, i64)>> = BTreeMap::new();
    for (tick, order, worker, fence) in &charges {
        per_order
            .entry((*tick, *order))
            .or_default()
            .push((worker.clone(), *fence));
    }
    let twice: Vec<_> = per_order.iter().filter(|(_, by)| by.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "seed {seed}: orders charged more than once: {twice:#?}"
    );
    let mut missing = Vec::new();
    let mut tick = first_tick;
    let mut ticks = 0;
    while tick <= last_tick {
        ticks += 1;
        for order in 0..3 {
            if !per_order.contains_key(&(tick, order)) {
                missing.push((tick, order));
            }
        }
        tick += chrono::Duration::seconds(1);
    }
    assert!(
        missing.is_empty(),
        "seed {seed}: orders of ticks due while workers ran were never charged: {missing:?}"
    );
    assert!(
        ticks + 2 >= run_for.as_secs(),
        "only {ticks} ticks in {run_for:?}"
    );
    // Fences only grow in the order charges were made.
    let fences: Vec<i64> = charges.iter().map(|c| c.3).collect();
    assert!(
        fences.windows(2).all(|w| w[0] <= w[1]),
        "seed {seed}: a charge was committed under an older fence than one before it"
    );
    eprintln!(
        "charge test: {ticks} ticks, {kills} workers killed, {} charges, none twice, none missing",
        charges.len()
    );
}

/// A worker stopped with SIGSTOP inside a fenced transaction, past its liveness: another
/// worker resumes the execution and charges the order; the stopped worker, continued, never
/// commits its charge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_inside_its_transaction_commits_nothing_after_takeover() {
    let scene = Scene::new("tg_paused").await;
    let slow = scene.worker("slow", "slow-commit");
    scene
        .wait_for("slow", "ready", Duration::from_secs(20))
        .await;
    scene
        .wait_for("slow", "in_tx", Duration::from_secs(10))
        .await;
    slow.signal("STOP");
    let (tick, fence): (DateTime<Utc>, i64) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT tick, fence FROM \"{}\".events WHERE instance = 'slow' AND kind = 'in_tx'",
        scene.schema
    )))
    .fetch_one(&scene.pool)
    .await
    .unwrap();

    let other = scene.worker("other", "slow-commit");
    // The other worker resumes the same execution (same tick) with a newer fence.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let other_fence = loop {
        let resumed: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT fence FROM \"{}\".events \
             WHERE instance = 'other' AND kind = 'committed' AND tick = $1",
            scene.schema
        )))
        .bind(tick)
        .fetch_optional(&scene.pool)
        .await
        .unwrap();
        if let Some(fence) = resumed {
            break fence;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other worker did not resume tick {tick}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(other_fence > fence);

    slow.signal("CONT");
    // Past the stopped worker's 3 s wait: it would have committed by now.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let charges = scene.charges().await;
    let of_tick: Vec<_> = charges.iter().filter(|c| c.0 == tick).collect();
    assert_eq!(of_tick.len(), 1, "one charge for the tick: {charges:#?}");
    assert_eq!(of_tick[0].2, "other");
    let committed_by_slow: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".events WHERE instance = 'slow' AND kind = 'committed' \
         AND tick = $1",
        scene.schema
    )))
    .bind(tick)
    .fetch_one(&scene.pool)
    .await
    .unwrap();
    assert_eq!(committed_by_slow, 0, "the stopped worker must not commit");
    assert!(
        charges.iter().all(|c| c.2 != "slow"),
        "the stopped worker charged: {charges:#?}"
    );
    drop(other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_ends_during_shutdown_is_recorded_even_when_the_store_is_slow() {
    let scene = Scene::new("tg_slow_shutdown").await;
    let (_, host, port) = through_local_port(&postgres_url(), 0);
    let proxy = Proxy::start(&host, port).await;
    let (url, _, _) = through_local_port(&postgres_url(), proxy.port());
    let child = Command::new(env!("CARGO_BIN_EXE_store_worker"))
        .args([&url, &scene.schema, "w", "30000", "finish-in-shutdown"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start store_worker: {e}"));
    let mut worker = Worker(child);
    scene
        .wait_for("w", "started", Duration::from_secs(15))
        .await;
    // Shutdown: after its 0.5 s grace the run is cancelled and returns `Ok`; its finish
    // reaches the store only when the hold ends, 8.5 s in (each try may take 10 s). The
    // process used to exit 6.5 s in (cancel grace + 5 s), leaving the run RUNNING.
    worker.signal("INT");
    proxy.set(Traffic::Blackhole);
    let held = proxy.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(8_500)).await;
        held.set(Traffic::Pass);
    });
    let exited = tokio::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let status = worker.0.wait();
        (worker, status)
    })
    .await
    .unwrap()
    .1
    .unwrap();
    assert!(status.success(), "store_worker: {status}");
    let took = exited.elapsed();
    let rows: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT x.id, x.status FROM \"{0}\".tickguard_executions x \
         JOIN \"{0}\".events e ON e.tick = x.scheduled_at \
         WHERE x.job = 'finish' AND e.kind = 'started'",
        scene.schema
    )))
    .fetch_all(&scene.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, "COMPLETED", "{rows:?} (shutdown took {took:?})");
    assert!(
        took >= Duration::from_secs(8),
        "the finish cannot have been recorded before the hold ended: {took:?}"
    );
}

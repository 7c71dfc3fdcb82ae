//! Every tick accounted for, with three worker processes (`src/bin/ledger_worker.rs`) on a
//! Redis lock and a Postgres store, each running idempotent jobs that write one effect per
//! tick in a fenced transaction:
//!
//! - one worker's clock runs 2 s behind (libfaketime): it fires every tick late and often
//!   finds the lock held for a later tick; under `run_all` no tick is lost;
//! - Redis is down for 12 s across ticks: the ticks wait in the ledger and run once Redis is
//!   back (`run_all`: each; `run_once`: the latest), or are recorded as skipped (`skip`);
//! - one worker's clock runs 22 s ahead: the store refuses its early claims, and no effect is
//!   written before its tick by the database's clock.
//!
//! Each test prints its figures: ticks fired, run, skipped (recorded), lost. Needs
//! PostgreSQL (`TICKGUARD_TEST_POSTGRES`), `redis-server` and Debian's `faketime`; `bash
//! scripts/services` provides them. Without them it fails; it never skips.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // a failed unwrap is a failed test

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use tickguard::{
    sqlx::{self, AssertSqlSafe},
    store::PostgresStore,
};
use tickguard_tests::{RedisServer, Worker, free_port, scratch_schema};

/// One test's schema, Redis and workers.
struct Cluster {
    schema: String,
    dir: PathBuf,
    store: PostgresStore,
    redis_port: u16,
    redis: Option<RedisServer>,
    workers: Vec<Worker>,
}

impl Cluster {
    async fn new(case: &str) -> Self {
        let (schema, dir, store) = scratch_schema(
            &format!("tg_ledger_{case}"),
            &[
                "effects (id bigserial PRIMARY KEY, job text NOT NULL, tick bigint NOT NULL, \
               worker text NOT NULL, fence bigint NOT NULL, at timestamptz NOT NULL)",
            ],
        )
        .await;
        let redis_port = free_port();
        let redis = Some(RedisServer::start(redis_port).await);
        Self {
            schema,
            dir,
            store,
            redis_port,
            redis,
            workers: Vec::new(),
        }
    }

    /// Starts a worker with `jobs` (`name=schedule=policy,..`), its wall clock offset by
    /// `offset` (libfaketime's syntax, e.g. `-2`), and waits until it is ready; returns its
    /// wall clock minus the test's, in milliseconds, as the worker read it.
    async fn spawn(&mut self, name: &str, jobs: &str, offset: Option<&str>) -> i64 {
        let ready = self.dir.join(format!("{name}.ready"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_ledger_worker"));
        command
            .args([name, &ready.display().to_string()])
            .env("LEDGER_SCHEMA", &self.schema)
            .env(
                "LEDGER_REDIS",
                format!("redis://127.0.0.1:{}", self.redis_port),
            )
            .env("LEDGER_JOBS", jobs)
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(offset) = offset {
            command
                .env("LD_PRELOAD", tickguard_tests::faketime_library())
                .env("FAKETIME", offset)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .env("FAKETIME_NO_CACHE", "1");
        }
        let before = now_ms();
        self.workers.push(Worker(command.spawn().unwrap()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready)
                && let Ok(theirs) = text.parse::<i64>()
            {
                return theirs - before;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "worker {name} not ready in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every worker (SIGTERM, then waits for it).
    fn stop(&mut self) {
        for worker in &self.workers {
            worker.signal("TERM");
        }
        for mut worker in self.workers.drain(..) {
            let _ = worker.0.wait();
        }
    }

    /// The effects of `job`: tick (ms) to the workers that wrote one and the database's
    /// clock when they did (ms).
    async fn effects(&self, job: &str) -> BTreeMap<i64, Vec<(String, i64)>> {
        let rows: Vec<(i64, String, f64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT tick, worker, extract(epoch FROM at)::float8 * 1000 FROM \"{}\".effects \
             WHERE job = $1 ORDER BY id",
            self.schema
        )))
        .bind(job)
        .fetch_all(self.store.pool())
        .await
        .unwrap();
        let mut by_tick: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
        for (tick, worker, at) in rows {
            by_tick.entry(tick).or_default().push((worker, at as i64));
        }
        by_tick
    }

    /// The ledger's rows of `job`: tick (ms) to status.
    async fn ledger(&self, job: &str) -> BTreeMap<i64, String> {
        let rows: Vec<(f64, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT extract(epoch FROM scheduled_at)::float8 * 1000, status \
             FROM \"{}\".tickguard_executions WHERE job = $1",
            self.schema
        )))
        .bind(job)
        .fetch_all(self.store.pool())
        .await
        .unwrap();
        rows.into_iter()
            .map(|(at, status)| (at.round() as i64, status))
            .collect()
    }

    /// Checks `job`'s ticks every `period_ms` in `[first, last]`: none has two effects;
    /// each has an effect or (unless `run_all`) a SKIPPED row. Prints and returns the
    /// figures: (fired, run, skipped).
    async fn account(
        &self,
        job: &str,
        period_ms: i64,
        first: i64,
        last: i64,
        run_all: bool,
    ) -> (i64, i64, i64) {
        let effects = self.effects(job).await;
        let twice: Vec<_> = effects.iter().filter(|(_, e)| e.len() > 1).collect();
        assert!(
            twice.is_empty(),
            "`{job}`: ticks with two effects: {twice:?}"
        );
        let ledger = self.ledger(job).await;
        let (mut fired, mut run, mut skipped) = (0, 0, 0);
        let mut lost = Vec::new();
        let mut tick = first.div_euclid(period_ms) * period_ms + period_ms;
        while tick <= last {
            fired += 1;
            if effects.contains_key(&tick) {
                run += 1;
            } else if !run_all && ledger.get(&tick).is_some_and(|s| s == "SKIPPED") {
                skipped += 1;
            } else {
                lost.push((tick, ledger.get(&tick).cloned()));
            }
            tick += period_ms;
        }
        eprintln!(
            "ledger `{job}`: {fired} ticks fired, {run} run, {skipped} skipped (recorded), {} lost",
            lost.len()
        );
        assert!(
            lost.is_empty(),
            "`{job}`: ticks neither run nor recorded as skipped (tick, ledger row): {lost:?}"
        );
        (fired, run, skipped)
    }

    async fn drop_schema(self) {
        let _ = sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.schema
        )))
        .execute(self.store.pool())
        .await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Sleeps until the wall clock reads `at` (ms).
async fn until(at: i64) {
    let left = u64::try_from(at - now_ms()).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(left)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_clock_loses_no_tick_of_a_run_all_job() {
    let mut cluster = Cluster::new("lag").await;
    let jobs = "all=every:1000=run_all,once=every:1000=run_once";
    cluster.spawn("true-1", jobs, None).await;
    cluster.spawn("true-2", jobs, None).await;
    let offset = cluster.spawn("behind", jobs, Some("-2")).await;
    assert!(
        (-2_600..=-1_400).contains(&offset),
        "the worker's clock should run 2 s behind, it ran {offset} ms off"
    );
    let first = now_ms() + 1_000;
    until(first + 20_000).await;
    // Ticks up to here, then time for the pending ones to run before the workers stop.
    let last = now_ms() - 3_000;
    tokio::time::sleep(Duration::from_secs(6)).await;
    cluster.stop();
    let (_, _, skipped) = cluster.account("all", 1_000, first, last, true).await;
    assert_eq!(skipped, 0);
    cluster.account("once", 1_000, first, last, false).await;
    cluster.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_during_a_redis_outage_run_once_it_is_back_by_the_misfire_policy() {
    let mut cluster = Cluster::new("outage").await;
    let jobs = "all=*/5 * * * * *=run_all,once=*/5 * * * * *=run_once,skip=*/5 * * * * *=skip";
    for name in ["a", "b", "c"] {
        cluster.spawn(name, jobs, None).await;
    }
    // Redis goes away 1 s after a tick and stays away 12 s: ticks +4 s and +9 s fall inside.
    let first = now_ms();
    let tick = (first / 5_000 + 1) * 5_000;
    until(tick + 1_000).await;
    drop(cluster.redis.take());
    let down = now_ms();
    until(down + 12_000).await;
    cluster.redis = Some(RedisServer::start(cluster.redis_port).await);
    let back = now_ms();
    eprintln!("redis down from {down} to {back} ({} ms)", back - down);
    // Long enough for the ledger to be recorded and the pending ticks run (liveness 3 s).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let last = now_ms() - 2_000;
    cluster.stop();
    let outage: Vec<i64> = (down / 5_000 + 1..=back / 5_000)
        .map(|t| t * 5_000)
        .collect();
    assert_eq!(
        outage.len(),
        2,
        "two ticks fall inside the outage: {outage:?}"
    );
    let (_, run, skipped) = cluster.account("all", 5_000, first, last, true).await;
    assert_eq!(skipped, 0);
    assert!(run >= 4, "run_all ran {run} ticks");
    cluster.account("once", 5_000, first, last, false).await;
    let once = cluster.effects("once").await;
    assert!(
        once.contains_key(&outage[1]),
        "run_once ran the latest tick of the outage ({}): {once:?}",
        outage[1]
    );
    cluster.account("skip", 5_000, first, last, false).await;
    // Under `skip`, a tick that was more than the misfire threshold (5 s) late when Redis
    // came back is recorded as skipped; a later one ran.
    let skip = cluster.ledger("skip").await;
    for tick in &outage {
        let expected = if back - tick > 5_000 {
            "SKIPPED"
        } else {
            "COMPLETED"
        };
        assert_eq!(
            skip.get(tick).map(String::as_str),
            Some(expected),
            "skip: tick {tick} of the outage (Redis back at {back})"
        );
    }
    cluster.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_clock_does_no_early_work() {
    let mut cluster = Cluster::new("fast").await;
    let jobs = "all=every:1000=run_all";
    cluster.spawn("true-1", jobs, None).await;
    cluster.spawn("true-2", jobs, None).await;
    let offset = cluster.spawn("ahead", jobs, Some("+22")).await;
    assert!(
        (21_400..=22_600).contains(&offset),
        "the worker's clock should run 22 s ahead, it ran {offset} ms off"
    );
    let first = now_ms() + 1_000;
    until(first + 15_000).await;
    let last = now_ms() - 3_000;
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.stop();
    cluster.account("all", 1_000, first, last, true).await;
    // No effect before its tick by the database's clock (a claim may be a second early).
    let early: Vec<_> = cluster
        .effects("all")
        .await
        .into_iter()
        .filter(|(tick, e)| e.iter().any(|(_, at)| *at < tick - 1_000))
        .collect();
    assert!(
        early.is_empty(),
        "effects written before their tick: {early:?}"
    );
    cluster.drop_schema().await;
}

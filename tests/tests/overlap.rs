//! The overlap policies across instances: worker processes (`src/bin/overlap_worker.rs`) on
//! one Postgres schema run an idempotent job every second whose runs last 2.5 s, so every
//! run overlaps the next ticks, and each run records when it started and ended:
//!
//! - `skip` (without a lock: the claim finds the job busy): the run after one is the first
//!   tick after it ended;
//! - `buffer_one` (Redis lock): the latest tick that came due during a run starts right
//!   after it, the older ones are skipped;
//! - `buffer_all` (Redis lock; and without a lock, for a job that is not idempotent): every
//!   tick runs, once, one after the other;
//! - `cancel_other` (Redis lock, runs that would last a minute): each tick stops the run of
//!   the one before within a second and runs once; a triggered run on one instance is stopped
//!   by the tick the other instances fire, through the store.
//!
//! Runs never overlap, and no tick runs twice. Needs PostgreSQL and Redis (`bash
//! scripts/services`); without them it fails, it never skips.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // a failed unwrap is a failed test

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use chrono::{DateTime, Utc};
use tickguard::{
    sqlx::{self, AssertSqlSafe},
    store::{ExecutionStore, PostgresStore, Status},
};
use tickguard_tests::{Worker, scratch_schema, unique_name};
use tokio::time::{Instant, sleep};

const PERIOD_MS: i64 = 1_000;
const REDIS: &str = "redis://127.0.0.1:6379";

/// A row of the runs table: tick, execution id, worker, started, ended, how.
type RunRow = (
    i64,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<String>,
);

/// One test's schema and workers.
struct Cluster {
    schema: String,
    dir: PathBuf,
    store: PostgresStore,
    job: String,
    workers: Vec<Worker>,
}

/// One run, as its row tells it.
#[derive(Clone, Debug)]
struct Run {
    tick: i64,
    execution_id: String,
    worker: String,
    started: DateTime<Utc>,
    ended: Option<DateTime<Utc>>,
    how: Option<String>,
}

impl Run {
    fn started_ms(&self) -> i64 {
        self.started.timestamp_millis()
    }

    fn ended_ms(&self) -> i64 {
        self.ended.unwrap().timestamp_millis()
    }
}

impl Cluster {
    async fn new(case: &str) -> Self {
        let (schema, dir, store) = scratch_schema(
            &format!("tg_overlap_{case}"),
            &[
                "runs (id bigserial PRIMARY KEY, job text NOT NULL, tick bigint NOT NULL, \
               execution_id text NOT NULL, worker text NOT NULL, started timestamptz NOT NULL, \
               ended timestamptz, how text)",
            ],
        )
        .await;
        Self {
            schema,
            dir,
            store,
            job: unique_name(case),
            workers: Vec::new(),
        }
    }

    /// Starts `n` workers running the job under `policy` with `env`, and waits until their
    /// schedulers are built.
    async fn spawn(&mut self, n: usize, policy: &str, env: &[(&str, &str)]) {
        let mut readies = Vec::new();
        for i in 0..n {
            let name = format!("w{i}");
            let ready = self.dir.join(format!("{name}.ready"));
            let mut command = Command::new(env!("CARGO_BIN_EXE_overlap_worker"));
            command
                .args([&name, &ready.display().to_string()])
                .env("OVERLAP_SCHEMA", &self.schema)
                .env("OVERLAP_JOB", &self.job)
                .env("OVERLAP_POLICY", policy)
                .env("OVERLAP_EVERY_MS", PERIOD_MS.to_string())
                .env("RUST_LOG", "off")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            for (k, v) in env {
                command.env(k, v);
            }
            self.workers.push(Worker(command.spawn().unwrap()));
            readies.push(ready);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !readies.iter().all(|r| r.exists()) {
            assert!(Instant::now() < deadline, "workers not ready in 60 s");
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every run of the job, in the order they started.
    async fn runs(&self) -> Vec<Run> {
        let rows: Vec<RunRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT tick, execution_id, worker, started, ended, how FROM \"{}\".runs \
                 WHERE job = $1 ORDER BY started",
            self.schema
        )))
        .bind(&self.job)
        .fetch_all(self.store.pool())
        .await
        .unwrap();
        rows.into_iter()
            .map(|(tick, execution_id, worker, started, ended, how)| Run {
                tick,
                execution_id,
                worker,
                started,
                ended,
                how,
            })
            .collect()
    }

    /// The runs once `n` of them ended (or after 30 s), then stops the workers.
    async fn ended_runs(&mut self, n: usize) -> Vec<Run> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let runs = loop {
            let runs = self.runs().await;
            if runs.iter().filter(|r| r.ended.is_some()).count() >= n || Instant::now() >= deadline
            {
                break runs;
            }
            sleep(Duration::from_millis(100)).await;
        };
        for worker in &self.workers {
            worker.signal("TERM");
        }
        for mut worker in self.workers.drain(..) {
            let _ = worker.0.wait();
        }
        eprintln!("{}", table(&runs));
        runs
    }
}

/// The runs as a table, for the test's output.
fn table(runs: &[Run]) -> String {
    let first = runs.first().map_or(0, |r| r.tick);
    let mut out = String::from("tick(ms) worker started(ms) ended(ms) how\n");
    for r in runs {
        out += &format!(
            "{:>8} {:>6} {:>11} {:>9} {}\n",
            r.tick - first,
            r.worker,
            r.started_ms() - first,
            r.ended
                .map_or("-".to_owned(), |_| (r.ended_ms() - first).to_string()),
            r.how.as_deref().unwrap_or("-"),
        );
    }
    out
}

/// What every policy keeps: one run at a time, across the instances, and no tick twice.
fn one_at_a_time_and_each_tick_once(runs: &[Run]) {
    for pair in runs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            a.ended.is_some_and(|ended| ended <= b.started),
            "runs overlap: {a:?} and {b:?}\n{}",
            table(runs)
        );
        assert!(
            a.tick < b.tick,
            "ticks run out of order or twice\n{}",
            table(runs)
        );
    }
}

/// How much later than the run's own record of its end the scheduler may see it end (its
/// end recorded in the store, its lease released), and how soon a run may start after the
/// one before it ended, on a loaded 2-core machine.
const SLACK_MS: i64 = 750;

/// The tick at or before `ms`.
fn tick_at_or_before(ms: i64) -> i64 {
    ms.div_euclid(PERIOD_MS) * PERIOD_MS
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_runs_the_first_tick_after_the_run_ended() {
    let mut cluster = Cluster::new("skip").await;
    cluster
        .spawn(2, "skip", &[("OVERLAP_RUN_MS", "2500")])
        .await;
    let runs = cluster.ended_runs(4).await;
    let runs: Vec<Run> = runs.into_iter().filter(|r| r.ended.is_some()).collect();
    assert!(runs.len() >= 4, "{}", table(&runs));
    one_at_a_time_and_each_tick_once(&runs);
    for pair in runs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        // The overlapped ticks (at least two of each run's 2.5 s) were skipped: the next
        // run is for the first tick after the run ended.
        let first_after = tick_at_or_before(a.ended_ms()) + PERIOD_MS;
        assert!(
            b.tick == first_after
                || (b.tick == first_after + PERIOD_MS && a.ended_ms() + SLACK_MS >= first_after),
            "after a run that ended at {}, the tick of {} ran\n{}",
            a.ended_ms(),
            b.tick,
            table(&runs)
        );
        assert!(b.tick >= a.tick + 3 * PERIOD_MS, "{}", table(&runs));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn buffer_one_runs_the_latest_overlapped_tick_right_after_the_run() {
    let mut cluster = Cluster::new("buffer_one").await;
    let env = [("OVERLAP_RUN_MS", "2500"), ("OVERLAP_REDIS", REDIS)];
    cluster.spawn(2, "buffer_one", &env).await;
    let runs = cluster.ended_runs(4).await;
    let runs: Vec<Run> = runs.into_iter().filter(|r| r.ended.is_some()).collect();
    assert!(runs.len() >= 4, "{}", table(&runs));
    one_at_a_time_and_each_tick_once(&runs);
    for pair in runs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        // The latest tick that came due during the run (the older ones are skipped), right
        // after it.
        let latest = tick_at_or_before(a.ended_ms());
        assert!(
            b.tick == latest || (b.tick == latest + PERIOD_MS && a.ended_ms() + SLACK_MS >= b.tick),
            "after a run that ended at {}, the tick of {} ran\n{}",
            a.ended_ms(),
            b.tick,
            table(&runs)
        );
        assert!(
            b.tick > a.tick + PERIOD_MS,
            "an older tick ran\n{}",
            table(&runs)
        );
        assert!(
            b.started_ms() - a.ended_ms() < SLACK_MS,
            "the buffered tick did not start right after the run\n{}",
            table(&runs)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn buffer_all_runs_every_tick_one_after_the_other() {
    let mut cluster = Cluster::new("buffer_all").await;
    let env = [("OVERLAP_RUN_MS", "2500"), ("OVERLAP_REDIS", REDIS)];
    cluster.spawn(2, "buffer_all", &env).await;
    let runs = cluster.ended_runs(4).await;
    let runs: Vec<Run> = runs.into_iter().filter(|r| r.ended.is_some()).collect();
    assert!(runs.len() >= 4, "{}", table(&runs));
    one_at_a_time_and_each_tick_once(&runs);
    for pair in runs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert_eq!(
            b.tick,
            a.tick + PERIOD_MS,
            "a tick was skipped\n{}",
            table(&runs)
        );
        assert!(
            b.started_ms() - a.ended_ms() < SLACK_MS,
            "the next tick did not start right after the run\n{}",
            table(&runs)
        );
    }
}

/// A job that is not idempotent has a new execution id per run, so only the claim's
/// one-run-at-a-time rule and the check of which tick the busy run is for keep a tick that
/// waited from running a second time once the job is free.
#[tokio::test(flavor = "multi_thread")]
async fn buffer_all_without_a_lock_runs_each_tick_once_for_a_job_that_is_not_idempotent() {
    let mut cluster = Cluster::new("buffer_all_plain").await;
    let env = [("OVERLAP_RUN_MS", "2500"), ("OVERLAP_IDEMPOTENT", "0")];
    cluster.spawn(2, "buffer_all", &env).await;
    let runs = cluster.ended_runs(4).await;
    let ended: Vec<Run> = runs.iter().filter(|r| r.ended.is_some()).cloned().collect();
    assert!(ended.len() >= 4, "{}", table(&runs));
    // Every run, ended or not: a tick run twice would show as two rows.
    one_at_a_time_and_each_tick_once(&ended);
    let mut ticks: Vec<i64> = runs.iter().map(|r| r.tick).collect();
    ticks.dedup();
    assert_eq!(
        ticks.len(),
        runs.len(),
        "a tick ran twice\n{}",
        table(&runs)
    );
    for pair in ended.windows(2) {
        assert_eq!(
            pair[1].tick,
            pair[0].tick + PERIOD_MS,
            "a tick was skipped\n{}",
            table(&runs)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_other_stops_the_running_tick_within_a_second_and_runs_the_new_one_once() {
    let mut cluster = Cluster::new("cancel_other").await;
    let env = [("OVERLAP_RUN_MS", "60000"), ("OVERLAP_REDIS", REDIS)];
    cluster.spawn(3, "cancel_other", &env).await;
    let runs = cluster.ended_runs(4).await;
    let ended: Vec<Run> = runs.iter().filter(|r| r.ended.is_some()).cloned().collect();
    assert!(ended.len() >= 4, "{}", table(&runs));
    one_at_a_time_and_each_tick_once(&ended);
    let mut stops = Vec::new();
    for pair in ended.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert_eq!(
            a.how.as_deref(),
            Some("cancelled:superseded"),
            "{}",
            table(&runs)
        );
        assert_eq!(b.tick, a.tick + PERIOD_MS, "{}", table(&runs));
        // Stopped by the next tick, within a second of it.
        let stop = a.ended_ms() - b.tick;
        assert!(
            (0..1_000).contains(&stop),
            "stopped {stop} ms after the next tick\n{}",
            table(&runs)
        );
        stops.push(stop);
    }
    eprintln!("cancel_other: runs stopped {stops:?} ms after the tick that superseded them");
    // Superseded executions are final: recorded CANCELLED with the reason, never resumed.
    for run in &ended {
        let record = cluster
            .store
            .execution(&run.execution_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.status, Status::Cancelled, "{record:?}");
        let error = record.error.unwrap_or_default();
        assert!(error.contains("superseded by the tick of"), "{error}");
    }
}

/// A triggered run on one instance (its own job loop is busy with it, so it does not fire
/// the next tick) is stopped by the tick the other instances fire: the request goes through
/// the store to the instance that runs it.
#[tokio::test(flavor = "multi_thread")]
async fn cancel_other_stops_a_run_on_another_instance_through_the_store() {
    let mut cluster = Cluster::new("cancel_remote").await;
    let env = [
        ("OVERLAP_RUN_MS", "100"),
        ("OVERLAP_MANUAL_RUN_MS", "60000"),
        ("OVERLAP_REDIS", REDIS),
    ];
    cluster.spawn(3, "cancel_other", &env).await;
    // Just after a tick's short run: the trigger runs before the next tick.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let runs = cluster.runs().await;
        let now = Utc::now().timestamp_millis();
        if runs.iter().any(|r| r.ended.is_some()) && now % PERIOD_MS > 200 && now % PERIOD_MS < 400
        {
            break;
        }
        assert!(Instant::now() < deadline, "no tick ran\n{}", table(&runs));
        sleep(Duration::from_millis(10)).await;
    }
    let manual = cluster.store.trigger(&cluster.job, "test").await.unwrap();
    let runs = loop {
        let runs = cluster.runs().await;
        if runs
            .iter()
            .any(|r| r.execution_id == manual.id && r.ended.is_some())
        {
            sleep(Duration::from_millis(500)).await;
            break cluster.runs().await;
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(10),
            "{}",
            table(&runs)
        );
        sleep(Duration::from_millis(20)).await;
    };
    let _ = cluster.ended_runs(0).await;
    let run = runs.iter().find(|r| r.execution_id == manual.id).unwrap();
    assert_eq!(
        run.how.as_deref(),
        Some("cancelled:superseded"),
        "{}",
        table(&runs)
    );
    let next_tick = tick_at_or_before(run.started_ms()) + PERIOD_MS;
    let stop = run.ended_ms() - next_tick;
    eprintln!(
        "the triggered run on {} was stopped {stop} ms after the next tick",
        run.worker
    );
    assert!(
        (0..1_000).contains(&stop),
        "stopped {stop} ms after the next tick\n{}",
        table(&runs)
    );
    // That tick then ran once, on an instance that did not run the triggered run or on it.
    let tick_runs: Vec<&Run> = runs.iter().filter(|r| r.tick == next_tick).collect();
    assert_eq!(tick_runs.len(), 1, "{}", table(&runs));
    assert!(
        tick_runs[0].started >= run.ended.unwrap(),
        "{}",
        table(&runs)
    );
}

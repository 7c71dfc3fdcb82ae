//! Operators' changes reach running schedulers, with worker processes
//! (`src/bin/ops_worker.rs`) on one Postgres schema and the changes made through the store
//! from the test process:
//!
//! - a trigger runs once across two instances within a second, polling only and with
//!   LISTEN/NOTIFY;
//! - a pause stops both instances' ticks within a second (counted as `paused` skips), a
//!   resume restores them within a second, and a pause survives a restart of both;
//! - a re-run of a failed execution runs once across three instances;
//! - a cancel request stops a run on whichever instance runs it within a second, polling
//!   only and with LISTEN/NOTIFY: the run sees `Requested`, is recorded CANCELLED with the
//!   note, is never resumed, and the job's next tick runs normally;
//! - a prune keeps the running execution of a live process, and a tick whose record it
//!   deleted is not run again by an instance whose clock lags.
//!
//! Needs PostgreSQL (`TICKGUARD_TEST_POSTGRES`) and Debian's `faketime`; `bash
//! scripts/services` provides them. Without them it fails; it never skips.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // a failed unwrap is a failed test

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use chrono::{DateTime, Utc};
use tickguard::{
    sqlx::{self, AssertSqlSafe},
    store::{CancelKind, ExecutionStore, PostgresStore, PruneRequest, Retention, Status},
};
use tickguard_tests::{Worker, free_port, http_get, scratch_schema};
use tokio::time::{Instant, sleep};

/// A cron expression that fires once a year: the job runs only when asked.
const YEARLY: &str = "0 0 0 1 1 *";

/// One test's schema and workers.
struct Cluster {
    schema: String,
    dir: PathBuf,
    store: PostgresStore,
    workers: Vec<(String, Worker)>,
}

/// One run, as its effect row tells it.
#[derive(Clone, Debug)]
struct Effect {
    tick: i64,
    execution_id: String,
    worker: String,
    /// The database's clock as the run started.
    at: DateTime<Utc>,
}

impl Cluster {
    async fn new(case: &str) -> Self {
        let (schema, dir, store) = scratch_schema(
            &format!("tg_ops_{case}"),
            &[
                "effects (id bigserial PRIMARY KEY, job text NOT NULL, tick bigint NOT NULL, \
               execution_id text NOT NULL, worker text NOT NULL, at timestamptz NOT NULL)",
                "endings (execution_id text NOT NULL, worker text NOT NULL, \
                 reason text NOT NULL, at timestamptz NOT NULL)",
            ],
        )
        .await;
        Self {
            schema,
            dir,
            store,
            workers: Vec::new(),
        }
    }

    /// Starts a worker with `jobs` (`name=schedule=kind,..`) and `env`, and waits until its
    /// scheduler is built.
    async fn spawn(&mut self, name: &str, jobs: &str, env: &[(&str, String)]) {
        let ready = self.dir.join(format!("{name}.ready"));
        let _ = std::fs::remove_file(&ready);
        let mut command = Command::new(env!("CARGO_BIN_EXE_ops_worker"));
        command
            .args([name, &ready.display().to_string()])
            .env("OPS_SCHEMA", &self.schema)
            .env("OPS_JOBS", jobs)
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        self.workers
            .push((name.to_owned(), Worker(command.spawn().unwrap())));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "worker {name} not ready in 60 s");
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every worker (SIGTERM, then waits for it).
    fn stop(&mut self) {
        for (_, worker) in &self.workers {
            worker.signal("TERM");
        }
        for (_, mut worker) in self.workers.drain(..) {
            let _ = worker.0.wait();
        }
    }

    /// Every run of `job`, in the order they started.
    async fn effects(&self, job: &str) -> Vec<Effect> {
        let rows: Vec<(i64, String, String, DateTime<Utc>)> =
            sqlx::query_as(AssertSqlSafe(format!(
                "SELECT tick, execution_id, worker, at FROM \"{}\".effects WHERE job = $1 \
                 ORDER BY at",
                self.schema
            )))
            .bind(job)
            .fetch_all(self.store.pool())
            .await
            .unwrap();
        rows.into_iter()
            .map(|(tick, execution_id, worker, at)| Effect {
                tick,
                execution_id,
                worker,
                at,
            })
            .collect()
    }

    /// The runs of execution `id`, once `until` says they are complete (or after 10 s).
    async fn runs_of(&self, job: &str, id: &str, until: impl Fn(usize) -> bool) -> Vec<Effect> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let runs: Vec<Effect> = self
                .effects(job)
                .await
                .into_iter()
                .filter(|e| e.execution_id == id)
                .collect();
            if until(runs.len()) || Instant::now() >= deadline {
                return runs;
            }
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// The database's clock.
    async fn db_now(&self) -> DateTime<Utc> {
        sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    /// Waits until the execution `id` is in a final state (or 15 s passed); its status.
    async fn settled(&self, id: &str) -> Status {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let status = self.store.execution(id).await.unwrap().unwrap().status;
            if status.is_final() || Instant::now() >= deadline {
                return status;
            }
            sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `tickguard_skips_total{job, reason}` as the worker serving `/metrics` on `port` counts it.
fn skips(port: u16, job: &str, reason: &str) -> u64 {
    let text = http_get(port, "/metrics").unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("tickguard_skips_total{")
                && l.contains(&format!("job=\"{job}\""))
                && l.contains(&format!("reason=\"{reason}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn ms(d: chrono::TimeDelta) -> i64 {
    d.num_milliseconds()
}

async fn trigger_runs_once_within_a_second(listen: bool) {
    let case = if listen {
        "trigger_listen"
    } else {
        "trigger_poll"
    };
    let mut cluster = Cluster::new(case).await;
    // With LISTEN, the workers poll only every 30 s: a trigger that starts within a second
    // was heard.
    let every = if listen { "30000" } else { "500" };
    let env = [
        ("OPS_LISTEN", if listen { "1" } else { "0" }.to_owned()),
        ("OPS_CONTROL_EVERY_MS", every.to_owned()),
    ];
    for name in ["a", "b"] {
        cluster
            .spawn(name, &format!("manual={YEARLY}=ok"), &env)
            .await;
    }
    for round in 0..3 {
        if listen && round == 2 {
            // The listeners' connections are terminated: they listen again.
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND query LIKE 'LISTEN %'",
            )
            .execute(cluster.store.pool())
            .await
            .unwrap();
            sleep(Duration::from_millis(500)).await;
        }
        let requested = cluster.store.trigger("manual", "test").await.unwrap();
        let runs = cluster.runs_of("manual", &requested.id, |n| n >= 1).await;
        assert_eq!(runs.len(), 1, "round {round}: {runs:?}");
        let latency = ms(runs[0].at - requested.scheduled_at);
        eprintln!("{case}: round {round}: started {latency} ms after the trigger");
        assert!(latency <= 1_000, "started {latency} ms after the trigger");
        assert_eq!(cluster.settled(&requested.id).await, Status::Completed);
    }
    // Long enough for a second instance's claim, had it run the request too.
    sleep(Duration::from_secs(2)).await;
    let all = cluster.effects("manual").await;
    assert_eq!(all.len(), 3, "{all:?}");
    let record = cluster.store.executions("manual", 10).await.unwrap();
    assert!(
        record
            .iter()
            .all(|r| r.requested_by.as_deref() == Some("test"))
    );
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_runs_once_within_a_second_polling() {
    trigger_runs_once_within_a_second(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_runs_once_within_a_second_with_listen() {
    trigger_runs_once_within_a_second(true).await;
}

/// How a `long` run ended, as its ending row tells it.
#[derive(Clone, Debug)]
struct Ending {
    worker: String,
    reason: String,
    /// The database's clock as the run saw how it ended.
    at: DateTime<Utc>,
}

impl Cluster {
    /// How the `long` run of execution `id` ended, once it wrote it (or `None` after 10 s).
    async fn ending(&self, id: &str) -> Option<Ending> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let row: Option<(String, String, DateTime<Utc>)> =
                sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT worker, reason, at FROM \"{}\".endings WHERE execution_id = $1",
                    self.schema
                )))
                .bind(id)
                .fetch_optional(self.store.pool())
                .await
                .unwrap();
            if let Some((worker, reason, at)) = row {
                return Some(Ending { worker, reason, at });
            }
            if Instant::now() >= deadline {
                return None;
            }
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// The first run of `job` whose execution is not one of `seen` (or `None` after 15 s).
    async fn next_run(&self, job: &str, seen: &[&str]) -> Option<Effect> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let runs = self.effects(job).await;
            if let Some(run) = runs
                .into_iter()
                .find(|e| !seen.contains(&e.execution_id.as_str()))
            {
                return Some(run);
            }
            if Instant::now() >= deadline {
                return None;
            }
            sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Two instances run an idempotent job whose runs last 4 s unless asked to stop; the test
/// process asks the running one to stop through the store, as `tickguard cancel` does.
async fn cancel_stops_a_run_within_a_second(listen: bool) {
    let case = if listen {
        "cancel_listen"
    } else {
        "cancel_poll"
    };
    let mut cluster = Cluster::new(case).await;
    // With LISTEN, the workers poll only every 30 s: a run stopped within a second heard
    // the request.
    let every = if listen { "30000" } else { "500" };
    let env = [
        ("OPS_LISTEN", if listen { "1" } else { "0" }.to_owned()),
        ("OPS_CONTROL_EVERY_MS", every.to_owned()),
    ];
    for name in ["a", "b"] {
        cluster.spawn(name, "long=every:2000=long:4000", &env).await;
    }
    let first = cluster.next_run("long", &[]).await.expect("a first run");
    let asked_at = cluster.db_now().await;
    let asked = cluster
        .store
        .request_cancel(
            &first.execution_id,
            CancelKind::Operator,
            "wrong input",
            "ops",
        )
        .await
        .unwrap();
    assert_eq!(asked.status, Status::Running, "{asked:?}");
    let ending = cluster
        .ending(&first.execution_id)
        .await
        .expect("the run wrote how it ended");
    assert_eq!(
        (ending.reason.as_str(), ending.worker.as_str()),
        ("requested", first.worker.as_str()),
        "{ending:?}"
    );
    let latency = ms(ending.at - asked_at);
    eprintln!(
        "{case}: the run on {} saw the request {latency} ms after it was made",
        first.worker
    );
    assert!(latency <= 1_000, "stopped {latency} ms after the request");

    // Recorded CANCELLED with the note, and announced.
    let deadline = Instant::now() + Duration::from_secs(10);
    let record = loop {
        let record = cluster
            .store
            .execution(&first.execution_id)
            .await
            .unwrap()
            .unwrap();
        if record.status != Status::Running || Instant::now() >= deadline {
            break record;
        }
        sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(record.status, Status::Cancelled, "{record:?}");
    let error = record.error.unwrap_or_default();
    assert!(
        error.starts_with("cancelled by ops: wrong input"),
        "{error}"
    );

    // The job's next tick runs normally, on either instance, and completes; meanwhile
    // (4 s, four scans for interrupted executions at a third of the 3 s liveness) the
    // cancelled execution is not resumed.
    let next = cluster
        .next_run("long", &[first.execution_id.as_str()])
        .await
        .expect("the next tick runs");
    let ending = cluster.ending(&next.execution_id).await.expect("it ends");
    assert_eq!(ending.reason, "finished", "{ending:?}");
    assert_eq!(cluster.settled(&next.execution_id).await, Status::Completed);
    let again: Vec<Effect> = cluster
        .effects("long")
        .await
        .into_iter()
        .filter(|e| e.execution_id == first.execution_id)
        .collect();
    assert_eq!(
        again.len(),
        1,
        "the cancelled execution ran again: {again:?}"
    );
    let record = cluster
        .store
        .execution(&first.execution_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, Status::Cancelled, "{record:?}");
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_stops_a_run_within_a_second_polling() {
    cancel_stops_a_run_within_a_second(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_stops_a_run_within_a_second_with_listen() {
    cancel_stops_a_run_within_a_second(true).await;
}

/// Waits until `job` has run at least `n` times since `since` (or 10 s passed).
async fn runs_since(cluster: &Cluster, job: &str, since: DateTime<Utc>, n: usize) -> Vec<Effect> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let runs: Vec<Effect> = cluster
            .effects(job)
            .await
            .into_iter()
            .filter(|e| e.at > since)
            .collect();
        if runs.len() >= n || Instant::now() >= deadline {
            return runs;
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// Pauses `pulse`, and checks over 3 s that no run starts more than 1 s after the pause
/// and that each worker counted paused skips.
async fn pause_holds(cluster: &Cluster, ports: &[u16], what: &str) -> DateTime<Utc> {
    let paused = cluster
        .store
        .pause("pulse", "maintenance", "test")
        .await
        .unwrap();
    let at = paused.paused.unwrap().at;
    sleep(Duration::from_secs(3)).await;
    let late: Vec<Effect> = runs_since(cluster, "pulse", at, usize::MAX)
        .await
        .into_iter()
        .filter(|e| ms(e.at - at) > 1_000)
        .collect();
    assert!(late.is_empty(), "{what}: runs after the pause: {late:?}");
    for port in ports {
        let n = skips(*port, "pulse", "paused");
        assert!(n >= 1, "{what}: no paused skip counted on :{port}");
    }
    at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_stops_every_instance_within_a_second_and_survives_a_restart() {
    let mut cluster = Cluster::new("pause").await;
    let ports = [free_port(), free_port()];
    for (name, port) in ["a", "b"].into_iter().zip(ports) {
        let env = [("OPS_METRICS_PORT", port.to_string())];
        cluster.spawn(name, "pulse=every:1000=ok", &env).await;
    }
    let t0 = cluster.db_now().await;
    let before = runs_since(&cluster, "pulse", t0, 4).await;
    assert!(before.len() >= 4, "not firing: {before:?}");
    pause_holds(&cluster, &ports, "running").await;

    cluster.store.resume("pulse").await.unwrap();
    let resumed = cluster.db_now().await;
    let after = runs_since(&cluster, "pulse", resumed, 2).await;
    assert!(after.len() >= 2, "not resumed: {after:?}");
    // The first tick a second or more after the resume runs: the resume took effect
    // within a second.
    let due = (resumed.timestamp_millis() + 1_000 + 999).div_euclid(1_000) * 1_000;
    let ticks: Vec<i64> = runs_since(&cluster, "pulse", resumed, 6)
        .await
        .iter()
        .map(|e| e.tick)
        .collect();
    assert!(
        ticks.contains(&due),
        "the tick {} ms after the resume did not run: {ticks:?}",
        due - resumed.timestamp_millis()
    );

    // Paused again, then both processes restart: the pause holds from their start.
    let paused = pause_holds(&cluster, &ports, "paused again").await;
    cluster.stop();
    for (name, port) in ["a2", "b2"].into_iter().zip(ports) {
        let env = [("OPS_METRICS_PORT", port.to_string())];
        cluster.spawn(name, "pulse=every:1000=ok", &env).await;
    }
    sleep(Duration::from_secs(3)).await;
    let late: Vec<Effect> = runs_since(&cluster, "pulse", paused, usize::MAX)
        .await
        .into_iter()
        .filter(|e| ms(e.at - paused) > 1_000)
        .collect();
    assert!(late.is_empty(), "runs after the restart: {late:?}");
    for port in ports {
        assert!(skips(port, "pulse", "paused") >= 2, "restarted :{port}");
    }
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_of_a_failed_execution_runs_once_across_three_instances() {
    let mut cluster = Cluster::new("rerun").await;
    for name in ["a", "b", "c"] {
        cluster
            .spawn(name, &format!("boom={YEARLY}=fail"), &[])
            .await;
    }
    let requested = cluster.store.trigger("boom", "test").await.unwrap();
    assert_eq!(cluster.settled(&requested.id).await, Status::Failed);
    assert_eq!(
        cluster.runs_of("boom", &requested.id, |_| true).await.len(),
        1
    );
    for round in 1..=2 {
        let again = cluster
            .store
            .rerun(&requested.id, false, "ops")
            .await
            .unwrap();
        assert_eq!(again.status, Status::Pending);
        let runs = cluster.runs_of("boom", &requested.id, |n| n > round).await;
        assert_eq!(runs.len(), round + 1, "round {round}: {runs:?}");
        assert_eq!(cluster.settled(&requested.id).await, Status::Failed);
    }
    sleep(Duration::from_secs(2)).await;
    let runs = cluster.runs_of("boom", &requested.id, |_| true).await;
    assert_eq!(runs.len(), 3, "each re-run ran once: {runs:?}");
    let record = cluster
        .store
        .execution(&requested.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.requested_by.as_deref(), Some("ops"));
    assert_eq!(record.scheduled_at, requested.scheduled_at);
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_keeps_a_live_run_and_never_lets_a_pruned_tick_run_again() {
    let mut cluster = Cluster::new("prune").await;
    let jobs = format!("tick=every:1000=idem,slow={YEARLY}=slow:6000");
    cluster.spawn("on_time", &jobs, &[]).await;
    // This one fires every tick 1.5 s late: it claims ticks whose records the prunes below
    // deleted by then (half way between two ticks, so that its claims do not meet the other
    // instance's run of a later tick, which would make them overlaps).
    let lagging = [
        (
            "LD_PRELOAD",
            tickguard_tests::faketime_library().display().to_string(),
        ),
        ("FAKETIME", "-1.5".to_owned()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
        ("FAKETIME_NO_CACHE", "1".to_owned()),
    ];
    let port = free_port();
    let mut lagging = lagging.to_vec();
    lagging.push(("OPS_METRICS_PORT", port.to_string()));
    cluster.spawn("lagging", &jobs, &lagging).await;
    let slow = cluster.store.trigger("slow", "test").await.unwrap();
    cluster.runs_of("slow", &slow.id, |n| n >= 1).await;
    let everything = Retention::keep_forever()
        .completed(Some(Duration::ZERO))
        .skipped(Some(Duration::ZERO))
        .failed(Some(Duration::ZERO))
        .timed_out(Some(Duration::ZERO))
        .cancelled(Some(Duration::ZERO));
    let prune = PruneRequest::new(everything).jobs(vec!["tick".into(), "slow".into()]);
    // `slow` runs 6 s: for 5 s it is RUNNING, and every prune keeps it; once it ended, a
    // prune deletes it.
    let started = Instant::now();
    let mut deleted = 0;
    let mut last = None;
    while started.elapsed() < Duration::from_secs(9) {
        let report = cluster.store.prune(&prune).await.unwrap();
        deleted += report.total();
        last = cluster.store.execution(&slow.id).await.unwrap();
        if started.elapsed() < Duration::from_secs(5) {
            let live = last.as_ref().expect("the running execution was pruned");
            assert_eq!(live.status, Status::Running, "{live:?}");
        }
        sleep(Duration::from_millis(200)).await;
    }
    assert!(deleted >= 4, "the prunes deleted {deleted} executions");
    // The lagging instance did claim ticks whose records were pruned by then, and ran none.
    let refused = skips(port, "tick", "duplicate");
    assert!(
        refused >= 3,
        "the lagging instance was refused {refused} ticks"
    );
    assert!(
        last.as_ref().is_none_or(|r| r.status == Status::Completed),
        "the slow run did not complete: {last:?}"
    );
    let slow_runs = cluster.runs_of("slow", &slow.id, |_| true).await;
    assert_eq!(slow_runs.len(), 1, "{slow_runs:?}");
    cluster.stop();
    let mut per_tick: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for e in cluster.effects("tick").await {
        per_tick.entry(e.tick).or_default().push(e.worker);
    }
    let twice: Vec<_> = per_tick.iter().filter(|(_, w)| w.len() > 1).collect();
    eprintln!(
        "prune: {} ticks run, {deleted} executions pruned",
        per_tick.len()
    );
    assert!(per_tick.len() >= 6, "{per_tick:?}");
    assert!(twice.is_empty(), "ticks run twice: {twice:?}");
}

//! The circuit breaker and `pause_on_failure` across instances, with worker processes
//! (`src/bin/policy_worker.rs`) on one Postgres schema, whose runs fail or succeed as a row
//! of a test table says:
//!
//! - failures on two instances together open a breaker that neither instance's own
//!   failures would (each ran fewer than `min_runs`); while open, no run happens and both
//!   skip their ticks as `circuit_open`; after `open_for`, one probe runs, and its success
//!   closes the breaker;
//! - the failures of one job open the breaker it shares with another, for both;
//! - a job whose last 3 executions failed, across two instances, is paused for every
//!   instance with a note that says why; after a resume the count starts again.
//!
//! Which instance runs is pinned by stopping the other (SIGSTOP), so that each instance's
//! own failures stay below the threshold. Needs PostgreSQL (`TICKGUARD_TEST_POSTGRES`);
//! without it, it fails; it never skips.

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
use tickguard_tests::{Worker, free_port, http_get, scratch_schema};
use tokio::time::{Instant, sleep};

/// One test's schema and workers.
struct Cluster {
    schema: String,
    dir: PathBuf,
    store: PostgresStore,
    workers: Vec<(String, u16, Worker)>,
}

/// One run, as its effect row tells it.
#[derive(Clone, Debug)]
struct Effect {
    execution_id: String,
    worker: String,
    failed: bool,
    /// The database's clock as the run ended.
    at: DateTime<Utc>,
}

impl Cluster {
    async fn new(case: &str) -> Self {
        let (schema, dir, store) = scratch_schema(
            &format!("tg_policy_{case}"),
            &[
                "effects (id bigserial PRIMARY KEY, job text NOT NULL, \
                 execution_id text NOT NULL, worker text NOT NULL, failed boolean NOT NULL, \
                 at timestamptz NOT NULL)",
                "switch (job text PRIMARY KEY, fail boolean NOT NULL, \
                 sleep_ms bigint NOT NULL DEFAULT 0)",
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

    /// Sets whether `job`'s runs fail, and how long they take.
    async fn switch(&self, job: &str, fail: bool, sleep_ms: i64) {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO \"{}\".switch (job, fail, sleep_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (job) DO UPDATE SET fail = $2, sleep_ms = $3",
            self.schema
        )))
        .bind(job)
        .bind(fail)
        .bind(sleep_ms)
        .execute(self.store.pool())
        .await
        .unwrap();
    }

    /// Starts a worker with `jobs` (`name=ms=policy,..`), serving its metrics, and waits
    /// until its scheduler is built.
    async fn spawn(&mut self, name: &str, jobs: &str) {
        let ready = self.dir.join(format!("{name}.ready"));
        let _ = std::fs::remove_file(&ready);
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_policy_worker"));
        command
            .args([name, &ready.display().to_string()])
            .env("POLICY_SCHEMA", &self.schema)
            .env("POLICY_JOBS", jobs)
            .env("POLICY_METRICS_PORT", port.to_string())
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.workers
            .push((name.to_owned(), port, Worker(command.spawn().unwrap())));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "worker {name} not ready in 60 s");
            sleep(Duration::from_millis(20)).await;
        }
    }

    fn worker(&self, name: &str) -> (&Worker, u16) {
        let (_, port, worker) = self.workers.iter().find(|w| w.0 == name).unwrap();
        (worker, *port)
    }

    /// Sends `signal` (`STOP`, `CONT`) to the worker `name`.
    fn signal(&self, name: &str, signal: &str) {
        self.worker(name).0.signal(signal);
    }

    /// The value of metric `name` with `labels` on the worker `worker`, 0 if absent.
    fn metric(&self, worker: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = http_get(self.worker(worker).1, "/metrics").unwrap();
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Every run of `job`, in the order they ended.
    async fn effects(&self, job: &str) -> Vec<Effect> {
        let rows: Vec<(String, String, bool, DateTime<Utc>)> =
            sqlx::query_as(AssertSqlSafe(format!(
                "SELECT execution_id, worker, failed, at FROM \"{}\".effects WHERE job = $1 \
                 ORDER BY at",
                self.schema
            )))
            .bind(job)
            .fetch_all(self.store.pool())
            .await
            .unwrap();
        rows.into_iter()
            .map(|(execution_id, worker, failed, at)| Effect {
                execution_id,
                worker,
                failed,
                at,
            })
            .collect()
    }

    /// The runs of `job` once there are at least `n` (or a failed test after `within`), and
    /// their executions' ends recorded.
    async fn runs(&self, job: &str, n: usize, within: Duration) -> Vec<Effect> {
        let deadline = Instant::now() + within;
        loop {
            let effects = self.effects(job).await;
            if effects.len() >= n {
                for e in &effects {
                    self.ended(&e.execution_id).await;
                }
                return effects;
            }
            assert!(
                Instant::now() < deadline,
                "{job}: {} runs, not {n}, within {within:?}: {effects:?}",
                effects.len()
            );
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the execution `id`'s end is recorded (at most 10 s).
    async fn ended(&self, id: &str) -> Status {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self.store.execution(id).await.unwrap().map(|e| e.status);
            match status {
                Some(status) if status.is_final() => return status,
                _ if Instant::now() >= deadline => panic!("{id} did not end: {status:?}"),
                _ => sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Waits until `what` holds (at most `within`).
    async fn until(&self, what: &str, within: Duration, mut holds: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + within;
        while !holds(self) {
            assert!(Instant::now() < deadline, "not within {within:?}: {what}");
            sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Failures on two instances open the breaker together (a opens nothing alone: 2 of
/// `min_runs` 4; nor does b); both then skip, no run happens until `open_for` is over; one
/// probe runs, and its success closes the breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_on_two_instances_open_the_breaker_for_both() {
    let mut cluster = Cluster::new("breaker").await;
    let open_for = chrono::Duration::seconds(6);
    cluster.switch("pay", true, 0).await;
    let jobs = "pay=600=breaker:-:1.0:4:4:6000";
    // b is held while a fails twice, then a while b fails twice.
    cluster.spawn("b", jobs).await;
    cluster.signal("b", "STOP");
    cluster.spawn("a", jobs).await;
    let first = cluster.runs("pay", 2, Duration::from_secs(10)).await;
    cluster.signal("a", "STOP");
    cluster.signal("b", "CONT");
    assert!(
        first.iter().all(|e| e.worker == "a" && e.failed),
        "{first:?}"
    );
    let failed = cluster.runs("pay", 4, Duration::from_secs(10)).await;
    cluster.signal("a", "CONT");
    let by_a = failed.iter().filter(|e| e.worker == "a").count();
    assert!(failed.iter().all(|e| e.failed), "{failed:?}");
    assert!(by_a <= 2 && failed.len() - by_a <= 2, "{failed:?}");
    let opened = failed[3].at;

    // Open: both instances skip their ticks, and show the breaker open.
    cluster
        .until("both skip as circuit_open", Duration::from_secs(3), |c| {
            ["a", "b"].iter().all(|w| {
                c.metric(
                    w,
                    "tickguard_skips_total",
                    &[("job", "pay"), ("reason", "circuit_open")],
                ) >= 1.0
            })
        })
        .await;
    for w in ["a", "b"] {
        assert_eq!(
            cluster.metric(w, "tickguard_circuit_state", &[("breaker", "pay")]),
            2.0,
            "{w}"
        );
    }
    // The dependency is back; the probe takes longer than a period, so the ticks during it
    // skip too.
    cluster.switch("pay", false, 1500).await;
    let runs = cluster.runs("pay", 5, Duration::from_secs(20)).await;
    let probe = &runs[4];
    assert!(
        !probe.failed,
        "the 5th run is the probe, after the switch: {runs:?}"
    );
    let probe_record = cluster
        .store
        .execution(&probe.execution_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        probe_record.started_at >= opened + open_for,
        "the probe started at {}, before the breaker opened at {opened} was over",
        probe_record.started_at
    );
    let history = cluster.store.executions("pay", 100).await.unwrap();
    let during: Vec<_> = history
        .iter()
        .filter(|e| e.started_at > opened && e.id != probe.execution_id)
        .filter(|e| e.started_at < probe_record.finished_at.unwrap())
        .collect();
    assert!(during.is_empty(), "runs while open or probing: {during:?}");
    // Closed again: runs resume.
    cluster.switch("pay", false, 0).await;
    let resumed = cluster.runs("pay", 8, Duration::from_secs(10)).await;
    assert!(resumed[4..].iter().all(|e| !e.failed), "{resumed:?}");
    cluster
        .until("the breaker shows closed", Duration::from_secs(3), |c| {
            ["a", "b"]
                .iter()
                .any(|w| c.metric(w, "tickguard_circuit_state", &[("breaker", "pay")]) == 0.0)
        })
        .await;
}

/// Two jobs share the breaker `payments`: the failures of `card` open it, and `bank`, whose
/// runs succeed, skips its ticks too while it is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failures_of_one_job_open_a_shared_breaker_for_the_other() {
    let mut cluster = Cluster::new("shared").await;
    cluster.switch("card", true, 0).await;
    cluster.switch("bank", false, 0).await;
    let breaker = "breaker:payments:0.5:4:4:3000";
    let jobs = format!("card=400={breaker},bank=500={breaker}");
    for w in ["a", "b"] {
        cluster.spawn(w, &jobs).await;
    }
    cluster
        .until("the shared breaker opens", Duration::from_secs(15), |c| {
            ["a", "b"]
                .iter()
                .any(|w| c.metric(w, "tickguard_circuit_state", &[("breaker", "payments")]) == 2.0)
        })
        .await;
    let seen_open = Utc::now();
    cluster
        .until("bank skips as circuit_open", Duration::from_secs(3), |c| {
            ["a", "b"].iter().any(|w| {
                c.metric(
                    w,
                    "tickguard_skips_total",
                    &[("job", "bank"), ("reason", "circuit_open")],
                ) >= 1.0
            })
        })
        .await;
    // No run of either job starts while it is open (runs in flight when it opened end
    // within moments).
    let history: Vec<_> = [
        cluster.store.executions("bank", 100).await.unwrap(),
        cluster.store.executions("card", 100).await.unwrap(),
    ]
    .concat();
    let grace = chrono::Duration::milliseconds(200);
    let started: Vec<_> = history
        .iter()
        .filter(|e| {
            e.started_at > seen_open + grace
                && e.started_at < seen_open + chrono::Duration::seconds(1)
        })
        .collect();
    assert!(started.is_empty(), "runs started while open: {started:?}");
    assert!(
        !cluster.effects("bank").await.is_empty() && !cluster.effects("card").await.is_empty(),
        "both jobs ran before it opened"
    );
}

/// `pause_on_failure = 3` with failures on two instances (2 on a, 1 on b): the job is paused
/// for both, with a note, and does not run; after a resume, it runs again, and 3 more
/// failures (not 1: those before the resume no longer count) pause it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_failures_across_two_instances_pause_the_job_until_a_resume() {
    let mut cluster = Cluster::new("pause").await;
    cluster.switch("boom", true, 0).await;
    let jobs = "boom=500=pause:3";
    cluster.spawn("b", jobs).await;
    cluster.signal("b", "STOP");
    cluster.spawn("a", jobs).await;
    cluster.runs("boom", 2, Duration::from_secs(10)).await;
    cluster.signal("a", "STOP");
    cluster.signal("b", "CONT");
    let runs = cluster.runs("boom", 3, Duration::from_secs(10)).await;
    let last = runs[2].clone();
    cluster.signal("a", "CONT");
    assert_eq!(
        runs.iter().map(|e| e.worker.as_str()).collect::<Vec<_>>(),
        ["a", "a", "b"],
        "{runs:?}"
    );
    let pause = paused(&cluster, "boom").await;
    assert_eq!(
        pause.note,
        format!(
            "paused after 3 consecutive failed executions; the last, {}, failed: the switch \
             says fail",
            last.execution_id
        )
    );
    assert_eq!(pause.by, "tickguard pause_on_failure on b");
    cluster
        .until("b counts the pause", Duration::from_secs(3), |c| {
            c.metric("b", "tickguard_paused_on_failure_total", &[("job", "boom")]) == 1.0
        })
        .await;
    // Both instances skip its ticks as paused, a few periods each, and none runs.
    cluster
        .until("both skip as paused", Duration::from_secs(5), |c| {
            ["a", "b"].iter().all(|w| {
                c.metric(
                    w,
                    "tickguard_skips_total",
                    &[("job", "boom"), ("reason", "paused")],
                ) >= 3.0
            })
        })
        .await;
    assert_eq!(cluster.effects("boom").await.len(), 3, "a run while paused");

    cluster.store.resume("boom").await.unwrap();
    let again = cluster.runs("boom", 6, Duration::from_secs(10)).await;
    let pause = paused(&cluster, "boom").await;
    assert!(
        pause.note.contains(&again[5].execution_id),
        "paused again after the 6th run: {}",
        pause.note
    );
    cluster
        .until("both skip again", Duration::from_secs(5), |c| {
            ["a", "b"].iter().all(|w| {
                c.metric(
                    w,
                    "tickguard_skips_total",
                    &[("job", "boom"), ("reason", "paused")],
                ) >= 6.0
            })
        })
        .await;
    assert_eq!(
        cluster.effects("boom").await.len(),
        6,
        "a run while paused again"
    );
}

/// The job's pause, once the store has it (at most 5 s).
async fn paused(cluster: &Cluster, job: &str) -> tickguard::store::Pause {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(pause) = cluster.store.job(job).await.unwrap().unwrap().paused {
            return pause;
        }
        assert!(Instant::now() < deadline, "{job} is not paused");
        sleep(Duration::from_millis(20)).await;
    }
}

/// Jobs that share a breaker by name must declare the same settings: the scheduler refuses
/// to start otherwise, naming both jobs.
#[tokio::test]
async fn jobs_sharing_a_breaker_with_different_settings_are_refused() {
    let job = |name: &str, rate: f64| {
        tickguard::Job::new(
            name,
            tickguard::Schedule::every(Duration::from_secs(60)).expect("a valid period"),
            |_: tickguard::JobContext| async { Ok(()) },
        )
        .circuit_breaker(
            tickguard::CircuitBreaker::new()
                .name("payments")
                .failure_rate(rate),
        )
    };
    let built = tickguard::Scheduler::builder()
        .discover(false)
        .store(tickguard::store::MemoryStore::new())
        .job(job("card", 0.5))
        .job(job("bank", 0.25))
        .build()
        .await;
    let Err(err) = built else {
        panic!("a scheduler with two settings for one breaker was built");
    };
    let err = err.to_string();
    assert!(
        err.contains("job `bank`") && err.contains("`card`") && err.contains("payments"),
        "{err}"
    );
    let same = tickguard::Scheduler::builder()
        .discover(false)
        .store(tickguard::store::MemoryStore::new())
        .job(job("card", 0.5))
        .job(job("bank", 0.5))
        .build()
        .await;
    assert!(same.is_ok(), "{:?}", same.err());
}

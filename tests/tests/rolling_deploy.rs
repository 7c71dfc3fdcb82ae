//! A rolling deploy while a long job runs, with real processes (`src/bin/deploy_worker.rs`)
//! on a PostgreSQL store and lock: two instances, the one running the job gets SIGTERM.
//!
//! - A job that listens for the shutdown hands its execution back at once: its instance
//!   exits within a second, and the other instance (polling the store only every 30 s)
//!   resumes from the checkpoint within a second, told through the store (`NOTIFY`).
//! - A job that only honours cancellation runs on through the shutdown grace (2 s here),
//!   is cancelled, saves its progress, and is resumed the same way.
//!
//! In both, every record's effect is committed exactly once, and the execution completes.
//! And SIGINT (Ctrl-C) stops an instance gracefully as SIGTERM does.
//! The figures are printed, and `docs/deploy.md` quotes them.
//!
//! Needs PostgreSQL (`TICKGUARD_TEST_POSTGRES`); without it the test fails, never skips.

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
use tickguard_tests::{Worker, scratch_schema};
use tokio::time::{Instant, sleep};

const RECORDS: i64 = 300;

/// One scenario's schema and its two workers.
struct Deploy {
    schema: String,
    dir: PathBuf,
    store: PostgresStore,
    workers: Vec<(String, Worker)>,
}

/// What a scenario measured.
#[derive(Debug)]
struct Figures {
    /// From SIGTERM to the stopped instance's exit.
    exited: Duration,
    /// From SIGTERM to the other instance's run starting from the checkpoint.
    resumed: Duration,
    /// Records committed by the stopped instance, then by the other one.
    split: (i64, i64),
}

impl Deploy {
    async fn new(case: &str) -> Self {
        let (schema, dir, store) = scratch_schema(
            &format!("tg_deploy_{case}"),
            &[
                "processed (id bigserial PRIMARY KEY, record bigint NOT NULL, worker text NOT NULL)",
                "starts (worker text NOT NULL, from_record bigint NOT NULL, at timestamptz NOT NULL)",
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

    /// Starts two workers, and once both are connected, has their job fire 2 s later.
    async fn start(&mut self, env: &[(&str, &str)]) {
        let at_file = self.dir.join("at");
        let mut ready_files = Vec::new();
        for name in ["blue", "green"] {
            let ready = self.dir.join(format!("{name}.ready"));
            let mut command = Command::new(env!("CARGO_BIN_EXE_deploy_worker"));
            command
                .args([name, &ready.display().to_string()])
                .env("DEPLOY_SCHEMA", &self.schema)
                .env("DEPLOY_AT", &at_file)
                .env("DEPLOY_RECORDS", RECORDS.to_string())
                .env("RUST_LOG", "off")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            for (k, v) in env {
                command.env(k, v);
            }
            self.workers
                .push((name.to_owned(), Worker(command.spawn().unwrap())));
            ready_files.push(ready);
        }
        wait_for_files(&ready_files).await;
        // A whole second at least 2 s ahead: the schedulers are built meanwhile.
        let at = (Utc::now() + chrono::Duration::seconds(3)).timestamp();
        std::fs::write(&at_file, at.to_string()).unwrap();
        let built: Vec<PathBuf> = ready_files
            .iter()
            .map(|r| PathBuf::from(format!("{}.built", r.display())))
            .collect();
        wait_for_files(&built).await;
        assert!(
            Utc::now().timestamp() < at,
            "the workers were built after the job's fire time"
        );
    }

    async fn query_i64(&self, sql: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(
            sql.replace("{s}", &format!("\"{}\"", self.schema)),
        ))
        .fetch_one(self.store.pool())
        .await
        .unwrap()
    }

    /// The runs' starts so far: (worker, record it started from, when), oldest first.
    async fn starts(&self) -> Vec<(String, i64, DateTime<Utc>)> {
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT worker, from_record, at FROM \"{}\".starts ORDER BY at",
            self.schema
        )))
        .fetch_all(self.store.pool())
        .await
        .unwrap()
    }

    /// Waits until `n` runs started (within `within`).
    async fn wait_for_starts(
        &self,
        n: usize,
        within: Duration,
    ) -> Vec<(String, i64, DateTime<Utc>)> {
        let deadline = Instant::now() + within;
        loop {
            let starts = self.starts().await;
            if starts.len() >= n {
                return starts;
            }
            assert!(
                Instant::now() < deadline,
                "{n} runs did not start: {starts:?}"
            );
            sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends SIGTERM to the worker running the job once it committed 100 records, and
    /// measures what follows.
    async fn deploy_mid_run(&mut self, grace: Duration) -> Figures {
        let first = self
            .wait_for_starts(1, Duration::from_secs(30))
            .await
            .remove(0);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.query_i64("SELECT count(*) FROM {s}.processed").await < 100 {
            assert!(Instant::now() < deadline, "the job made no progress");
            sleep(Duration::from_millis(5)).await;
        }
        let i = self
            .workers
            .iter()
            .position(|(n, _)| *n == first.0)
            .unwrap();
        let (name, mut worker) = self.workers.remove(i);
        let signalled: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(self.store.pool())
            .await
            .unwrap();
        let sent = Instant::now();
        worker.signal("TERM");
        let status = loop {
            if let Some(status) = worker.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                sent.elapsed() < grace + Duration::from_secs(10),
                "{name} did not exit after SIGTERM"
            );
            sleep(Duration::from_millis(5)).await;
        };
        let exited = sent.elapsed();
        assert!(status.success(), "{name} exited with {status}");
        let resumed = self
            .wait_for_starts(2, Duration::from_secs(30))
            .await
            .remove(1);
        let by_first = self
            .query_i64(&format!(
                "SELECT count(*) FROM {{s}}.processed WHERE worker = '{name}'"
            ))
            .await;
        assert_ne!(resumed.0, name, "the other instance resumed");
        assert_eq!(
            resumed.1, by_first,
            "resumed from the record after the last one {name} committed"
        );
        let resumed_after = (resumed.2 - signalled).to_std().unwrap_or_default();
        self.wait_for_completion().await;
        let (count, distinct) = (
            self.query_i64("SELECT count(*) FROM {s}.processed").await,
            self.query_i64("SELECT count(DISTINCT record) FROM {s}.processed")
                .await,
        );
        assert_eq!((count, distinct), (RECORDS, RECORDS), "each record once");
        Figures {
            exited,
            resumed: resumed_after,
            split: (by_first, RECORDS - by_first),
        }
    }

    async fn wait_for_completion(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let executions = self.store.executions("export", 10).await.unwrap();
            if executions.iter().any(|e| e.status == Status::Completed) {
                let runs = self
                    .store
                    .execution_detail(&executions[0].id)
                    .await
                    .unwrap()
                    .unwrap()
                    .runs;
                assert_eq!(runs.len(), 2, "one run per instance: {runs:?}");
                assert_eq!(
                    runs[0]
                        .error
                        .as_deref()
                        .map(|e| e.starts_with("handed back at shutdown")),
                    Some(true),
                    "{runs:?}"
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the execution did not complete: {executions:?}"
            );
            sleep(Duration::from_millis(50)).await;
        }
    }

    async fn drop_schema(mut self) {
        self.workers.clear();
        sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA \"{}\" CASCADE",
            self.schema
        )))
        .execute(self.store.pool())
        .await
        .unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until every file in `files` exists (60 s at most).
async fn wait_for_files(files: &[PathBuf]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !files.iter().all(|f| f.exists()) {
        assert!(
            Instant::now() < deadline,
            "workers not ready in 60 s: {files:?}"
        );
        sleep(Duration::from_millis(10)).await;
    }
}

fn print(case: &str, f: &Figures) {
    eprintln!(
        "rolling deploy, {case}: SIGTERM -> exit {} ms; SIGTERM -> resumed elsewhere {} ms; \
         records {} + {}",
        f.exited.as_millis(),
        f.resumed.as_millis(),
        f.split.0,
        f.split.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_listens_for_shutdown_is_resumed_elsewhere_from_its_checkpoint_within_a_second()
{
    let mut deploy = Deploy::new("listens").await;
    // Polling every 30 s: a resumption within a second is the hand-back's NOTIFY.
    deploy.start(&[("DEPLOY_CONTROL_EVERY_MS", "30000")]).await;
    let figures = deploy.deploy_mid_run(Duration::from_secs(20)).await;
    print("the job hands back when told", &figures);
    assert!(figures.exited < Duration::from_secs(1), "{figures:?}");
    assert!(figures.resumed < Duration::from_secs(1), "{figures:?}");
    deploy.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_waits_for_cancellation_is_stopped_at_the_grace_and_resumed_at_once() {
    let mut deploy = Deploy::new("cancel").await;
    deploy
        .start(&[
            ("DEPLOY_STOP_ON", "cancel"),
            ("DEPLOY_GRACE_MS", "2000"),
            // Long enough that the run outlasts the grace.
            ("DEPLOY_STEP_MS", "20"),
        ])
        .await;
    let figures = deploy.deploy_mid_run(Duration::from_secs(2)).await;
    print("the job hands back when cancelled (grace 2 s)", &figures);
    assert!(
        figures.exited >= Duration::from_secs(2) && figures.exited < Duration::from_secs(3),
        "{figures:?}"
    );
    assert!(
        figures.resumed >= Duration::from_secs(2) && figures.resumed < Duration::from_secs(3),
        "{figures:?}"
    );
    deploy.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_an_instance_gracefully_as_sigterm_does() {
    let mut deploy = Deploy::new("sigint").await;
    deploy.start(&[]).await;
    let (name, mut worker) = deploy.workers.remove(0);
    let sent = Instant::now();
    worker.signal("INT");
    let status = loop {
        if let Some(status) = worker.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "{name} ignored SIGINT"
        );
        sleep(Duration::from_millis(5)).await;
    };
    // Killed by the signal's default action, it would have no exit code.
    assert!(status.success(), "{name} exited with {status}");
    deploy.drop_schema().await;
}

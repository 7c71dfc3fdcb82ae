//! What the command's tests share: stores seeded through the store API, the binary run
//! against them, and what it printed.

#![allow(dead_code, unreachable_pub)]

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tickguard::Schedule;
use tickguard::store::{
    Claim, ClaimRequest, ExecutionRef, ExecutionStore, Finish, JobRegistration, LedgerTick,
    PostgresStore, SqliteStore, Status,
};

pub use tickguard_tests::{postgres_url, unique_name};

/// Which store a test runs against.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh schema of the test PostgreSQL.
    Postgres,
}

/// A store with its tables, as the command reaches it.
pub struct Store {
    /// `--store`.
    pub url: String,
    /// `--schema`.
    pub schema: String,
    /// The same store, for seeding and checking.
    pub api: Arc<dyn ExecutionStore>,
}

impl Store {
    /// A fresh store with its tables created.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{}.db", unique_name("tg_cli")));
                let url = format!("sqlite://{}", path.display());
                let api = SqliteStore::connect(&url)
                    .await
                    .unwrap_or_else(|e| panic!("create {url}: {e}"));
                Self {
                    url,
                    schema: "public".to_owned(),
                    api: Arc::new(api),
                }
            }
            Backend::Postgres => {
                let url = postgres_url();
                let schema = unique_name("tg_cli");
                let api = PostgresStore::connect_with_schema(&url, &schema)
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "this test needs PostgreSQL at {url} (set TICKGUARD_TEST_POSTGRES \
                             to use another; `bash scripts/services` starts one): {e}"
                        )
                    });
                Self {
                    url,
                    schema,
                    api: Arc::new(api),
                }
            }
        }
    }

    /// Runs `tickguard ARGS` against this store (given through the environment).
    pub fn run(&self, args: &[&str]) -> Run {
        run_with(
            args,
            &[
                ("TICKGUARD_STORE", self.url.as_str()),
                ("TICKGUARD_SCHEMA", self.schema.as_str()),
            ],
        )
    }

    /// Registers `job` with `schedule` (in `zone`), first registered at `created_at`.
    pub async fn register(
        &self,
        job: &str,
        schedule: &Schedule,
        zone: &str,
        created_at: DateTime<Utc>,
    ) {
        let registration = JobRegistration::new(
            job,
            schedule.to_string(),
            zone.to_owned(),
            schedule.next_after(Utc::now()),
        )
        .registered_at(created_at);
        self.api
            .register(&registration)
            .await
            .unwrap_or_else(|e| panic!("register `{job}`: {e}"));
    }

    /// Runs the tick `tick` of `job` to `status` (one claim, one finish); returns its id.
    pub async fn ran(
        &self,
        job: &str,
        tick: DateTime<Utc>,
        status: Status,
        attempts: u32,
        error: Option<&str>,
    ) -> String {
        let id = tick_id(job, tick);
        let request = ClaimRequest::new(job, &id, tick, "host-a/run-1");
        let fence = match self.api.claim(&request).await {
            Ok(Claim::Acquired(claimed)) => claimed.fence,
            other => panic!("claim `{id}`: {other:?}"),
        };
        let exec = ExecutionRef {
            job: job.to_owned(),
            execution_id: id.clone(),
            fence,
        };
        self.api
            .finish(&exec, &Finish::new(status, attempts, error))
            .await
            .unwrap_or_else(|e| panic!("finish `{id}`: {e}"));
        id
    }

    /// Records the tick `tick` of `job` as skipped for `reason`; returns its id.
    pub async fn skipped(&self, job: &str, tick: DateTime<Utc>, reason: &str) -> String {
        let id = tick_id(job, tick);
        let ledger = [LedgerTick::pending(job, &id, tick, "host-a/run-1").skipped(reason)];
        self.api
            .record_ticks(&ledger)
            .await
            .unwrap_or_else(|e| panic!("record_ticks `{id}`: {e}"));
        id
    }
}

/// The id the scheduler gives tick `tick` of an idempotent job.
pub fn tick_id(job: &str, tick: DateTime<Utc>) -> String {
    format!(
        "{job}@{}",
        tick.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    )
}

/// What one run of the command did.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts that it succeeded, and returns its output.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        assert!(self.stderr.is_empty(), "stderr of a success: {self:#?}");
        &self.stdout
    }

    /// Asserts that it failed with `code`, and returns its standard error.
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "expected exit code {code}: {self:#?}");
        assert!(self.stdout.is_empty(), "stdout of a failure: {self:#?}");
        &self.stderr
    }

    /// Asserts that it failed with `code` and a message that starts with `start`.
    pub fn fails_with(&self, code: i32, start: &str) {
        let err = self.fails(code);
        assert!(err.starts_with(start), "expected `{start}`: {self:#?}");
    }

    /// Its output parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `tickguard ARGS` with only `env` of the store variables set.
pub fn run_with(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tickguard"));
    command
        .args(args)
        .env_remove("TICKGUARD_STORE")
        .env_remove("TICKGUARD_SCHEMA")
        .env("USER", "ops")
        .env("HOSTNAME", "bastion");
    for (key, value) in env {
        command.env(key, value);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command
        .output()
        .unwrap_or_else(|e| panic!("run tickguard: {e}"));
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// An hour, for schedules.
pub const HOUR: Duration = Duration::from_secs(3_600);

/// A whole hour `n` hours before the current one.
pub fn hours_ago(n: i64) -> DateTime<Utc> {
    let now = Utc::now().timestamp();
    let hour = now - now.rem_euclid(3_600);
    DateTime::from_timestamp(hour - n * 3_600, 0).expect("a valid timestamp")
}

//! Runnable templates for tickguard: see the `examples` directory, one service per failure
//! scenario. This library is the plumbing they share: the command line every example takes,
//! logging, and a run that stops on a timer, SIGTERM or Ctrl-C.
//!
//! Every example runs on embedded defaults (a SQLite file for executions, the in-process
//! lock) and takes the same options for real servers:
//!
//! ```text
//! cargo run -p tickguard-examples --example NAME -- [SECONDS] \
//!     [--postgres URL] [--redis URL] [--namespace NAME] [--metrics ADDR]
//! ```
//!
//! `--postgres` (or `TICKGUARD_POSTGRES_URL`) keeps executions in PostgreSQL, `--redis` (or
//! `TICKGUARD_REDIS_URL`) takes the lease lock in Redis; with `--postgres` and no `--redis`,
//! the lock is a PostgreSQL lease. `--namespace` (or `TICKGUARD_NAMESPACE`) keeps the
//! example's tables (a PostgreSQL schema) and lock keys apart from other services' on shared
//! servers. `--metrics` serves Prometheus metrics. `TICKGUARD_LOG=json`
//! logs JSON lines.

use std::time::Duration;

use clap::Parser;
use tickguard::{Error, Scheduler, SchedulerBuilder};

/// The command line every example takes.
#[derive(Debug, Clone, Parser)]
#[command(about = None, long_about = None)]
pub struct Options {
    /// Stop after this many seconds (a graceful stop, as on SIGTERM); run until SIGTERM or
    /// Ctrl-C without it.
    pub seconds: Option<u64>,
    /// Keep executions in this PostgreSQL database instead of the example's SQLite file.
    #[arg(long, env = "TICKGUARD_POSTGRES_URL")]
    pub postgres: Option<String>,
    /// Take the lease lock in this Redis server.
    #[arg(long, env = "TICKGUARD_REDIS_URL")]
    pub redis: Option<String>,
    /// Keep this service's tables and lock keys apart on shared servers: the PostgreSQL schema
    /// and Redis key prefix (see `SchedulerBuilder::namespace`).
    #[arg(long, env = "TICKGUARD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Serve Prometheus metrics at this address (`127.0.0.1:9464`).
    #[arg(long)]
    pub metrics: Option<String>,
}

impl Options {
    /// Reads the options from the command line and the environment; exits with a usage
    /// message on a bad argument.
    pub fn from_args() -> Self {
        Self::parse()
    }

    /// A scheduler builder on these options: executions in PostgreSQL with `--postgres`,
    /// else in the SQLite file `sqlite_file`; the lock in Redis with `--redis`, else in
    /// PostgreSQL with `--postgres`, else in-process; in the namespace given, if one is.
    pub fn builder(&self, sqlite_file: &str) -> SchedulerBuilder {
        let mut builder = Scheduler::builder();
        if let Some(namespace) = &self.namespace {
            builder = builder.namespace(namespace);
        }
        builder = match &self.postgres {
            Some(url) => builder.postgres(url),
            None => builder.sqlite(format!("sqlite://{sqlite_file}")),
        };
        builder = match (&self.redis, &self.postgres) {
            (Some(url), _) => builder.redis(url),
            (None, Some(url)) => builder.postgres_lock(url),
            (None, None) => builder,
        };
        if let Some(addr) = &self.metrics {
            tracing::info!("metrics at http://{addr}/metrics");
            builder = builder.prometheus(addr);
        }
        builder
    }

    /// The name to give the application's table `table` in SQL: in the namespace's schema
    /// (`"billing".orders`) with `--namespace`, beside tickguard's tables; else unqualified.
    /// The scheduler's build refuses a namespace other than lower-case letters, digits and
    /// `_`: run SQL with the name only once the scheduler is built.
    pub fn table(&self, table: &str) -> String {
        match &self.namespace {
            Some(namespace) => format!("\"{namespace}\".{table}"),
            None => table.to_owned(),
        }
    }

    /// Runs `scheduler` for the given seconds, or until SIGTERM or Ctrl-C.
    pub async fn run(&self, scheduler: Scheduler) -> Result<(), Error> {
        match self.seconds {
            None => scheduler.run().await,
            Some(s) => {
                scheduler
                    .run_until(timer_or_signal(Duration::from_secs(s)))
                    .await
            }
        }
    }
}

/// Logs at `info` (or as `RUST_LOG` says) to standard output, as JSON lines when
/// `TICKGUARD_LOG=json`.
pub fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let json = std::env::var("TICKGUARD_LOG").as_deref() == Ok("json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Completes after `duration`, or on SIGTERM or Ctrl-C if one comes first.
pub async fn timer_or_signal(duration: Duration) {
    #[cfg(unix)]
    let mut sigterm =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        #[cfg(unix)]
        if let Some(sigterm) = sigterm.as_mut() {
            sigterm.recv().await;
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}

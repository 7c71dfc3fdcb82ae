//! tickguard on embedded defaults: no server, one command.
//!
//! ```text
//! cargo run -p tickguard-examples --example quickstart          # until Ctrl-C or SIGTERM
//! cargo run -p tickguard-examples --example quickstart -- 20    # for 20 s, or until then
//! cargo run -p tickguard-examples --example quickstart -- --metrics 127.0.0.1:9464
//!     # and open http://127.0.0.1:9464/metrics
//! TICKGUARD_LOG=json cargo run -p tickguard-examples --example quickstart   # JSON logs
//! cargo run -p tickguard-examples --example quickstart -- \
//!     --postgres postgres://postgres@127.0.0.1/test --redis redis://127.0.0.1:6379
//!     # executions in PostgreSQL, the lock in Redis: start it twice to see two instances
//! ```
//!
//! Three jobs: a heartbeat every two seconds, a sync that fails transiently and succeeds
//! on retry, and an idempotent report that checkpoints its progress. Executions are kept in
//! the SQLite file `tickguard-quickstart.db` in the working directory (SQLite is compiled
//! in): stop the quickstart mid-report and start it again, and the interrupted report is
//! resumed from its checkpoint; stop it for a minute, and the missed report ticks follow
//! the job's misfire policy.
//!
//! Copying it: replace the three jobs with yours, each with its real schedule (`cron = "0 0
//! 2 * * *"`, `zone = ".."`); give a job that calls another service a `retry(..)` and a
//! `timeout`, and one that must not run twice for a tick `idempotent` and a `lock(ttl = ..)`
//! a few renewals long; put the alert your team reads in `on_failure`; and for more than
//! one instance, pass `--postgres` (and `--redis`) so that they share the store and the
//! lock.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use tickguard::{JobContext, JobError, JobResult, scheduled};
use tickguard_examples::{Options, init_logging};

/// Runs every two seconds.
#[scheduled(every = "2s")]
async fn heartbeat(ctx: JobContext) -> JobResult {
    tracing::info!(tick = %ctx.scheduled_at().format("%H:%M:%S"), "heartbeat");
    Ok(())
}

static SYNC_CALLS: AtomicU32 = AtomicU32::new(0);

/// Every five seconds; the first attempt of every other run hits a "network error", which
/// is transient, so the retry policy tries again after 500 ms.
#[scheduled(every = "5s", retry(attempts = 3, backoff = "500ms"), timeout = "4s")]
async fn sync_inventory(ctx: JobContext) -> JobResult {
    let call = SYNC_CALLS.fetch_add(1, Ordering::SeqCst);
    if call.is_multiple_of(4) {
        tracing::warn!(attempt = ctx.attempt(), "inventory API timed out");
        return Err(JobError::transient("inventory API timed out"));
    }
    tracing::info!(attempt = ctx.attempt(), "inventory synced");
    Ok(())
}

/// At seconds 0, 10, 20, ... of every minute. `idempotent`: one completed run per tick, even
/// with several instances sharing a store; the checkpoint lets a run that takes over a
/// crashed one resume where it stopped.
#[scheduled(cron = "*/10 * * * * *", idempotent, lock(ttl = "30s"))]
async fn daily_report(ctx: JobContext) -> JobResult {
    let start: u32 = ctx.last_checkpoint().await?.unwrap_or(0);
    for batch in start..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ctx.checkpoint(&(batch + 1)).await?;
    }
    tracing::info!(execution_id = ctx.execution_id(), "report written");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), tickguard::Error> {
    init_logging();
    let options = Options::from_args();
    let scheduler = options
        .builder("tickguard-quickstart.db")
        .on_failure(|report| async move { tracing::error!(%report, "alert: job failed") })
        .build()
        .await?;
    options.run(scheduler).await
}

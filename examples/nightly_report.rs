//! A report over 1000 records that survives its node: the lease lock, its watchdog, the
//! timeout and checkpoints.
//!
//! ```text
//! cargo run -p tickguard-examples --example nightly_report -- 20
//! cargo run -p tickguard-examples --example nightly_report -- \
//!     --postgres postgres://postgres@127.0.0.1/test      # in two terminals: two instances
//! ```
//!
//! What can go wrong, and what tickguard does about it:
//!
//! - **The node running the report dies** (SIGKILL, power loss, an evicted pod) while it
//!   holds the lock. Nobody releases the lock, so it is a lease: it expires `ttl` after its
//!   last renewal. The execution's heartbeat stops too; once it is older than the
//!   scheduler's `liveness`, another instance takes the execution over (same execution id,
//!   a higher fence) and resumes from the last checkpoint: a report killed after record 800
//!   of 1000 carries on at record 800, not at 0. Start two instances on PostgreSQL and kill
//!   the one that logs `checkpoint saved` to see it.
//! - **The report runs longer than the lock's ttl** (4 s of work here, a 2 s ttl). The
//!   watchdog renews the lease every ttl/3 while the run lives, so the other instance's
//!   next tick finds the lock held and skips; no second copy starts. Were renewal to fail,
//!   the run would be cancelled before its lease could expire.
//! - **A step hangs** (a storage service that accepts the connection and never answers).
//!   `timeout` bounds the whole run: the context is cancelled, the job stops, and the
//!   execution is recorded `TIMED_OUT` for an alert. The upload job below hangs on its
//!   first call in every process.
//!
//! Copying it: set the real schedule (`cron = "0 0 2 * * *"`, `zone = ".."`), a ttl that
//! is a few renewals long (30 s is usual: a crashed node's lock then frees within 30 s),
//! keep the default `liveness` (30 s; it is 3 s here so that a takeover shows within
//! seconds), a timeout well above the report's normal length, and checkpoint after units
//! of work that are cheap to redo: the records after the last checkpoint run again on
//! takeover.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use tickguard::{JobContext, JobError, JobResult, scheduled};
use tickguard_examples::{Options, init_logging};

/// Records in one report.
const RECORDS: u64 = 1000;
/// Records between two checkpoints.
const BATCH: u64 = 100;

/// Every 3 s here (a nightly report in production), one completed run per tick across every
/// instance (`idempotent`), under a 2 s lease that the watchdog renews while the 4 s run
/// lives. The next tick comes while the run still holds the lease: every instance skips it
/// (logged and reported as a lost tick), none runs it beside the first.
#[scheduled(every = "3s", lock(ttl = "2s"), idempotent, timeout = "30s")]
async fn nightly_report(ctx: &JobContext) -> JobResult {
    let start: u64 = ctx.last_checkpoint().await?.unwrap_or(0);
    let execution_id = ctx.execution_id();
    if start > 0 {
        tracing::info!(
            execution_id,
            record = start,
            of = RECORDS,
            "resuming the report from its checkpoint"
        );
    } else {
        tracing::info!(execution_id, of = RECORDS, "report started");
    }
    for batch in (start..RECORDS).step_by(BATCH as usize) {
        for record in batch..batch + BATCH {
            summarize(record).await;
        }
        ctx.checkpoint(&(batch + BATCH)).await?;
        tracing::info!(
            execution_id,
            record = batch + BATCH,
            of = RECORDS,
            "checkpoint saved"
        );
    }
    tracing::info!(execution_id, "report written");
    Ok(())
}

/// One record's share of the report: 4 ms of work.
async fn summarize(_record: u64) {
    tokio::time::sleep(Duration::from_millis(4)).await;
}

static UPLOADS: AtomicU32 = AtomicU32::new(0);

/// Every 4 s, uploads the latest report to a storage service that hangs on the first call
/// in every process. The 1 s timeout cancels the context; the job stops at once.
#[scheduled(every = "4s", lock(ttl = "2s"), timeout = "1s")]
async fn upload_report(ctx: &JobContext) -> JobResult {
    tokio::select! {
        () = ctx.cancelled() => {
            tracing::warn!(execution_id = ctx.execution_id(), reason = ?ctx.cancel_reason(), "upload abandoned");
            Err(JobError::transient("upload abandoned"))
        }
        () = upload() => {
            tracing::info!(execution_id = ctx.execution_id(), "report uploaded");
            Ok(())
        }
    }
}

/// The storage service: never answers the first call in a process.
async fn upload() {
    if UPLOADS.fetch_add(1, Ordering::SeqCst) == 0 {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::main]
async fn main() -> Result<(), tickguard::Error> {
    init_logging();
    let options = Options::from_args();
    let scheduler = options
        .builder("tickguard-nightly_report.db")
        // An instance counts as gone 3 s after its last heartbeat (30 s by default).
        .liveness(Duration::from_secs(3))
        .on_failure(|report| async move { tracing::error!(%report, "alert: job failed") })
        .build()
        .await?;
    options.run(scheduler).await
}

//! Discovery: a binary with `#[scheduled]` fns runs them with no registration.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test
use std::sync::atomic::{AtomicU32, Ordering};

use tickguard::{JobContext, JobResult, scheduled};

static RUNS: AtomicU32 = AtomicU32::new(0);

#[scheduled(
    every = "1s",
    lock(ttl = "10s"),
    retry(attempts = 2),
    idempotent,
    timeout = "5s"
)]
async fn tick(ctx: JobContext) -> JobResult {
    let _ = ctx.execution_id();
    RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[scheduled(cron = "*/2 * * * * *", zone = "Europe/Berlin")]
async fn no_arg() -> JobResult {
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_discovered_jobs() {
    let scheduler = tickguard::Scheduler::builder().build().await.unwrap();
    assert_eq!(scheduler.jobs().count(), 2);
    scheduler
        .run_until(tokio::time::sleep(std::time::Duration::from_millis(2500)))
        .await
        .unwrap();
    let runs = RUNS.load(Ordering::SeqCst);
    assert!((2..=3).contains(&runs), "{runs}");
}

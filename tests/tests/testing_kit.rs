//! `tickguard::testing`: one execution run directly, resumed with earlier attempts and a
//! checkpoint, on backends that fail on demand.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, TimeZone, Utc};
use tickguard::{
    Job, JobContext, JobError, RetryPolicy, Schedule,
    metrics::SkipReason,
    store::Status,
    testing::{FaultyStore, Run},
};

fn tick() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 4, 0, 0).unwrap()
}

fn hourly() -> Schedule {
    Schedule::cron("0 0 * * * *").unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_resumed_execution_starts_after_its_earlier_attempts_and_from_its_checkpoint() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let job = Job::new("resumed", hourly(), move |ctx: JobContext| {
        let s = s.clone();
        async move {
            let from: Option<u32> = ctx.last_checkpoint().await?;
            s.lock().unwrap().push((ctx.attempt(), from));
            Err(JobError::transient("still failing"))
        }
    })
    .retry(RetryPolicy::attempts(3).backoff(Duration::from_millis(10)))
    .idempotent();
    let report = Run::new(job, tick())
        .after_attempts(2)
        .checkpoint(&40_u32)
        .run()
        .await;
    // One attempt of the budget of 3 was left; it saw the checkpoint.
    assert_eq!(*seen.lock().unwrap(), [(3, Some(40))]);
    let record = report.record().unwrap();
    assert_eq!((record.status, record.attempts), (Status::Failed, 3));
    assert_eq!(record.error.as_deref(), Some("still failing"));
}

#[tokio::test(start_paused = true)]
async fn a_store_that_refuses_claims_skips_the_tick_and_never_runs_it() {
    let store = Arc::new(FaultyStore::in_memory());
    store.fail_next_claims(10);
    let ran = Arc::new(AtomicU32::new(0));
    let r = ran.clone();
    let job = Job::new("unclaimed", hourly(), move |_ctx: JobContext| {
        r.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }
    });
    let report = Run::new(job, tick()).store(store.clone()).run().await;
    assert_eq!(report.skipped, Some(SkipReason::Unavailable));
    assert!(report.record().is_none());
    assert_eq!(ran.load(Ordering::SeqCst), 0, "never run without a claim");
}

#[tokio::test(start_paused = true)]
async fn a_failed_checkpoint_write_is_a_transient_error_that_the_retry_survives() {
    let store = Arc::new(FaultyStore::in_memory());
    let job = Job::new("checkpointing", hourly(), |ctx: JobContext| async move {
        ctx.checkpoint(&ctx.attempt()).await?;
        Ok(())
    })
    .retry(RetryPolicy::attempts(2).backoff(Duration::from_millis(10)))
    .idempotent();
    store.fail_next_writes(1);
    let report = Run::new(job, tick()).store(store.clone()).run().await;
    let record = report.record().unwrap();
    assert_eq!((record.status, record.attempts), (Status::Completed, 2));
    assert_eq!(record.checkpoint.as_deref(), Some("2"));
}

#[tokio::test(start_paused = true)]
async fn a_store_whose_heartbeats_hang_stops_the_run_before_its_owner_counts_as_gone() {
    let store = Arc::new(FaultyStore::in_memory());
    store.hang_heartbeats();
    let job = Job::new("hung", hourly(), |ctx: JobContext| async move {
        ctx.cancelled().await;
        Err(JobError::transient("stopped"))
    })
    .idempotent();
    let report = Run::new(job, tick()).store(store.clone()).run().await;
    let record = report.record().unwrap();
    assert_eq!(record.status, Status::Cancelled);
    // The stop first, the job's own error (its last attempt's) kept as the cause.
    assert_eq!(
        record.error.as_deref(),
        Some("run stopped: store_unreachable: stopped")
    );
}

//! The execution pipeline's edges: how an execution that ends before or while it runs is
//! recorded, counted and reported.

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
    Job, JobContext, JobError, LockPolicy, RetryPolicy, Schedule,
    metrics::{EXECUTION_DURATION, EXECUTIONS_TOTAL, SKIPS_TOTAL},
    store::Status,
    testing::{FaultyStore, Run},
};

fn tick() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 4, 0, 0).unwrap()
}

fn hourly() -> Schedule {
    Schedule::cron("0 0 * * * *").unwrap()
}

/// A job that counts its attempts and succeeds.
fn counting(name: &str, runs: &Arc<AtomicU32>) -> Job {
    let runs = runs.clone();
    Job::new(name, hourly(), move |_ctx: JobContext| {
        runs.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }
    })
}

#[tokio::test(start_paused = true)]
async fn a_claim_that_outlasts_its_lease_is_recorded_cancelled_not_counted_as_a_skip() {
    let m = tickguard_tests::metrics();
    let store = Arc::new(FaultyStore::in_memory());
    // Two thirds of a 3 s lease is gone when the claim answers after 2.5 s.
    store.delay_next_claims(1, Duration::from_millis(2500));
    let runs = Arc::new(AtomicU32::new(0));
    let job = counting("slow-claim", &runs)
        .lock(LockPolicy::new(Duration::from_secs(3)))
        .idempotent();
    let report = Run::new(job, tick()).store(store.clone()).run().await;
    assert_eq!(runs.load(Ordering::SeqCst), 0, "the run must not start");
    assert_eq!(report.skipped, None);
    let record = report.record().unwrap();
    assert_eq!(record.status, Status::Cancelled, "{record:?}");
    assert_eq!(record.error.as_deref(), Some("run stopped: lock_lost"));
    let job = ("job", "slow-claim");
    assert_eq!(m.counter(SKIPS_TOTAL, &[job]), 0, "recorded, so not a skip");
    assert_eq!(
        m.counter(EXECUTIONS_TOTAL, &[job, ("outcome", "cancelled")]),
        1
    );
    assert_eq!(
        m.histogram_count(EXECUTION_DURATION, &[job]),
        0,
        "it never ran"
    );
}

#[tokio::test(start_paused = true)]
async fn an_execution_given_up_records_no_run_duration() {
    let m = tickguard_tests::metrics();
    let runs = Arc::new(AtomicU32::new(0));
    let job = counting("given-up", &runs)
        .retry(RetryPolicy::attempts(2))
        .idempotent();
    // 2 attempts + 3 interrupted runs beyond them: this resumption gives up.
    let report = Run::new(job, tick()).after_attempts(5).run().await;
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let record = report.record().unwrap();
    assert_eq!(record.status, Status::Failed);
    assert_eq!(
        record.error.as_deref(),
        Some("gave up: 5 attempts across interrupted runs")
    );
    let job = ("job", "given-up");
    assert_eq!(
        m.counter(EXECUTIONS_TOTAL, &[job, ("outcome", "failure")]),
        1
    );
    assert_eq!(m.histogram_count(EXECUTION_DURATION, &[job]), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stop_keeps_the_jobs_own_error_as_its_cause() {
    let job = Job::new("slow-and-failing", hourly(), |ctx: JobContext| async move {
        ctx.cancelled().await;
        Err(JobError::transient("upstream answered 503"))
    })
    .timeout(Duration::from_secs(1))
    .idempotent();
    let report = Run::new(job, tick()).run().await;
    let record = report.record().unwrap();
    assert_eq!(record.status, Status::TimedOut);
    assert_eq!(
        record.error.as_deref(),
        Some("timed out after 1s: upstream answered 503")
    );
}

#[tokio::test]
async fn an_execution_id_of_another_job_is_refused_at_once_not_asked_again() {
    let captured = tickguard_tests::Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let url = tickguard_tests::sqlite_url("tg_foreign_id");
    let store = Arc::new(tickguard::store::SqliteStore::connect(&url).await.unwrap());
    let runs = Arc::new(AtomicU32::new(0));
    // Both jobs render the same execution id for a tick: the template lacks `{job}`.
    let first = counting("orders-a", &runs)
        .idempotent_key("orders-{date}")
        .unwrap();
    let second = counting("orders-b", &runs)
        .idempotent_key("orders-{date}")
        .unwrap();
    let report = Run::new(first, tick()).store(store.clone()).run().await;
    assert_eq!(report.record().unwrap().status, Status::Completed);
    let report = Run::new(second, tick()).store(store.clone()).run().await;
    assert_eq!(
        report.skipped,
        Some(tickguard::metrics::SkipReason::Unavailable)
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the second job must not run"
    );
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        !logs.contains("asking again"),
        "a refused claim was asked again:\n{logs}"
    );
    assert!(
        logs.contains("belongs to another job") && logs.contains("the store refused the claim"),
        "{logs}"
    );
}

/// A lock whose renewals panic (a bug in a third-party backend).
struct PanickingRenewals(tickguard::lock::InProcessLock);

impl tickguard::lock::LockBackend for PanickingRenewals {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> tickguard::BoxFuture<'a, Result<tickguard::lock::Acquired, tickguard::lock::LockError>>
    {
        self.0.acquire(name, owner, ttl)
    }

    fn extend<'a>(
        &'a self,
        _lease: &'a tickguard::lock::Lease,
        _ttl: Duration,
    ) -> tickguard::BoxFuture<'a, Result<bool, tickguard::lock::LockError>> {
        Box::pin(async { panic!("a bug in the lock backend") })
    }

    fn release<'a>(
        &'a self,
        lease: &'a tickguard::lock::Lease,
        hold_for: Duration,
    ) -> tickguard::BoxFuture<'a, Result<bool, tickguard::lock::LockError>> {
        self.0.release(lease, hold_for)
    }

    fn describe(&self) -> String {
        "panicking renewals".into()
    }
}

#[tokio::test(start_paused = true)]
async fn a_backend_that_panics_mid_run_leaves_the_running_gauge_balanced() {
    use futures_util::FutureExt;
    let m = tickguard_tests::metrics();
    let job = Job::new("panicking-backend", hourly(), |_ctx: JobContext| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok(())
    })
    .lock(LockPolicy::new(Duration::from_secs(3)));
    let run = Run::new(job, tick())
        .lock(PanickingRenewals(tickguard::lock::InProcessLock::new()))
        .run();
    let panicked = std::panic::AssertUnwindSafe(run).catch_unwind().await;
    assert!(panicked.is_err(), "the renewal panics");
    let job = ("job", "panicking-backend");
    assert_eq!(m.gauge(tickguard::metrics::RUNNING, &[job]), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_busy_tick_keeps_its_lease_through_failed_renewals_and_runs_once_the_owner_is_gone() {
    use tickguard::{
        store::{ClaimRequest, ExecutionStore, MemoryStore},
        testing::FaultyLock,
    };
    let store = Arc::new(MemoryStore::new());
    // An owner that died holding another tick's execution: the job is busy until its
    // silence passes the liveness (30 s, the test kit's).
    let earlier = tick() - chrono::Duration::hours(1);
    let ghost = ClaimRequest::new("busy-wait", "busy-wait@ghost", earlier, "ghost#1")
        .liveness(Duration::from_secs(30));
    assert!(matches!(
        store.claim(&ghost).await.unwrap(),
        tickguard::store::Claim::Acquired(_)
    ));
    let lock = Arc::new(FaultyLock::in_process());
    let runs = Arc::new(AtomicU32::new(0));
    let job = counting("busy-wait", &runs)
        .lock(LockPolicy::new(Duration::from_secs(3)))
        .idempotent();
    // Once the lease is taken, its next two renewals (during the wait) fail.
    let faults = lock.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        faults.fail_next(2);
    });
    let report = Run::new(job, tick())
        .store(store.clone())
        .lock(lock.clone())
        .run()
        .await;
    assert_eq!(report.skipped, None, "the busy tick gave up its lease");
    assert_eq!(report.record().unwrap().status, Status::Completed);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

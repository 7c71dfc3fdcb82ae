//! `lock`, `retry` and `idempotent`, bare and with every inner argument, and `on_failure`.

use tickguard::{FailureReport, JobContext, JobError, JobResult, scheduled};

/// Retries only errors whose message mentions a timeout.
fn only_timeouts(error: &JobError) -> bool {
    error.to_string().contains("timeout")
}

async fn page_someone(report: FailureReport) {
    let _ = report.to_string();
}

#[scheduled(every = "10s", lock, retry, idempotent)]
async fn bare_policies(_ctx: JobContext) -> JobResult {
    Ok(())
}

#[scheduled(
    cron = "0 0 2 * * *",
    lock(ttl = "5m", at_least = "1m"),
    retry(attempts = 5, backoff = "2s", factor = 3.0, max_delay = "1m", jitter = 0.5, when = only_timeouts),
    idempotent(key = "orders-{date}"),
    on_failure = page_someone,
)]
async fn nightly_orders(ctx: JobContext) -> JobResult {
    let _ = ctx.attempt();
    Ok(())
}

#[scheduled(every = "1m", lock(ttl = "45s"), retry(attempts = 1, factor = 2), on_failure = self::page_someone)]
async fn partial_policies() -> JobResult {
    Ok(())
}

#[tokio::main]
async fn main() {
    let scheduler = tickguard::Scheduler::builder().build().await.unwrap();
    assert_eq!(scheduler.jobs().count(), 3);
    for job in scheduler.jobs() {
        let debug = format!("{job:?}");
        assert!(debug.contains("lock: Some("), "{debug}");
    }
    let nightly = format!(
        "{:?}",
        scheduler
            .jobs()
            .find(|j| j.name() == "nightly_orders")
            .unwrap()
    );
    assert!(nightly.contains("attempts: 5"), "{nightly}");
    assert!(nightly.contains("idempotent: true"), "{nightly}");
    let bare = format!(
        "{:?}",
        scheduler
            .jobs()
            .find(|j| j.name() == "bare_policies")
            .unwrap()
    );
    assert!(bare.contains("attempts: 3"), "{bare}");
    assert!(bare.contains("ttl: 30s"), "{bare}");
}

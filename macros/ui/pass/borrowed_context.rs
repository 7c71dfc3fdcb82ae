//! A job may borrow its context: `&JobContext` lives as long as the run's future.

use tickguard::{JobContext, JobResult, scheduled};

#[scheduled(every = "1m")]
async fn job(ctx: &JobContext) -> JobResult {
    tokio::task::yield_now().await;
    let _ = ctx.instance_id();
    if ctx.is_cancelled() {
        ctx.cancelled().await;
    }
    Ok(())
}

#[scheduled(every = "1m")]
async fn ignored(_: &JobContext) -> JobResult {
    Ok(())
}

#[tokio::main]
async fn main() {
    let scheduler = tickguard::Scheduler::builder()
        .discover(false)
        .job(tickguard::job!(job))
        .job(tickguard::job!(ignored))
        .build()
        .await
        .unwrap();
    assert_eq!(scheduler.jobs().count(), 2);
}

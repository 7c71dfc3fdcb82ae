//! A job takes the context and application state together, in any order.

use tickguard::{JobContext, JobResult, State, scheduled};

#[scheduled(every = "1m")]
async fn job(ctx: JobContext, State(batch): State<usize>) -> JobResult {
    let _ = (ctx.job(), *batch);
    Ok(())
}

#[scheduled(every = "1m")]
async fn reversed(batch: State<usize>, _ctx: JobContext) -> JobResult {
    let _ = *batch + 1;
    Ok(())
}

#[tokio::main]
async fn main() {
    let scheduler = tickguard::Scheduler::builder()
        .discover(false)
        .job(tickguard::job!(job))
        .job(tickguard::job!(reversed))
        .state(100_usize)
        .build()
        .await
        .unwrap();
    assert_eq!(scheduler.jobs().count(), 2);
}

//! `every` and `after`, with `name`, `jitter`, `timeout` and each `misfire` policy.

use std::time::Duration;

use tickguard::{JobContext, JobResult, Misfire, scheduled};

#[scheduled(every = "30s", name = "heartbeat", jitter = "2s", misfire = "skip")]
async fn beat(_ctx: JobContext) -> JobResult {
    Ok(())
}

#[scheduled(after = "1m 30s", timeout = "250ms", misfire = "run_once")]
async fn drain_queue() -> JobResult {
    Ok(())
}

#[scheduled(every = "1h", misfire = "run_all", timeout = "10m", jitter = "500ms")]
async fn hourly_rollup(ctx: JobContext) -> JobResult {
    if ctx.is_cancelled() {
        return Ok(());
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let scheduler = tickguard::Scheduler::builder().build().await.unwrap();
    let job = |name: &str| scheduler.jobs().find(|j| j.name() == name).unwrap().clone();
    assert_eq!(scheduler.jobs().count(), 3);

    let beat = job("heartbeat");
    assert!(!beat.schedule().is_fixed_delay());
    let drain = job("drain_queue");
    assert!(drain.schedule().is_fixed_delay());

    let debug = format!("{:?}", job("hourly_rollup"));
    assert!(debug.contains("RunAll"), "{debug}");
    assert!(
        debug.contains(&format!("{:?}", Some(Duration::from_secs(600)))),
        "{debug}"
    );
    assert!(format!("{beat:?}").contains(&format!("{:?}", Misfire::Skip)));
    assert!(format!("{drain:?}").contains(&format!("{:?}", Misfire::RunOnce)));
}

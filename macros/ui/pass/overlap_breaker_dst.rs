//! `overlap`, `circuit_breaker` (bare, and with every inner argument), `pause_on_failure`,
//! `dst_gap` and `dst_overlap`: each reaches the job.

use tickguard::{DstGap, DstOverlap, JobContext, JobResult, Overlap, scheduled};

#[scheduled(every = "10s", overlap = "buffer_one", circuit_breaker, pause_on_failure = 3)]
async fn bare_breaker(_ctx: JobContext) -> JobResult {
    Ok(())
}

#[scheduled(
    cron = "0 30 2 * * *",
    zone = "Europe/Amsterdam",
    dst_gap = "skip",
    dst_overlap = "both",
    overlap = "cancel_other",
    circuit_breaker(name = "payments", failure_rate = 0.25, window = 20, min_runs = 4, open_for = "10m"),
)]
async fn charge() -> JobResult {
    Ok(())
}

#[scheduled(every = "1m", misfire = "run_all")]
async fn every_tick() -> JobResult {
    Ok(())
}

#[tokio::main]
async fn main() {
    let scheduler = tickguard::Scheduler::builder().build().await.unwrap();
    let job = |name: &str| scheduler.jobs().find(|j| j.name() == name).unwrap();
    assert_eq!(job("bare_breaker").overlap_policy(), Overlap::BufferOne);
    let bare = format!("{:?}", job("bare_breaker"));
    assert!(bare.contains("failure_rate: 0.5"), "{bare}");
    assert!(bare.contains("pause_on_failure: Some(3)"), "{bare}");
    let charge = job("charge");
    assert_eq!(charge.overlap_policy(), Overlap::CancelOther);
    assert_eq!(charge.schedule().gap_policy(), DstGap::Skip);
    assert_eq!(charge.schedule().overlap_policy(), DstOverlap::Both);
    let debug = format!("{charge:?}");
    assert!(debug.contains("Some(\"payments\")"), "{debug}");
    assert!(debug.contains("window: 20"), "{debug}");
    assert!(debug.contains("open_for: 600s"), "{debug}");
    assert_eq!(job("every_tick").overlap_policy(), Overlap::BufferAll);
}

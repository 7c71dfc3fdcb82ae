//! The DST policies of `#[scheduled]` reach the scheduler: through a night whose clocks go
//! back, a fixed time under `dst_overlap = "both"` runs at both occurrences while the default
//! runs at the first only; through a night whose clocks go forward, one under
//! `dst_gap = "skip"` does not run while the default runs after the gap. A process that
//! sleeps through the overlap (the wall clock jumps past it) catches up on the ticks the
//! policy has there, and no others. The scheduler runs on a test clock under tokio's paused
//! time.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tickguard::{
    Job, JobContext, JobResult, Scheduler, State, scheduled, store::MemoryStore, testing::TestClock,
};
use tokio::{sync::mpsc, time::sleep};

/// Where the jobs report their runs: (job, tick).
struct Probe(mpsc::UnboundedSender<(String, DateTime<Utc>)>);

async fn report(ctx: &JobContext, probe: &Probe) -> JobResult {
    probe
        .0
        .send((ctx.job().to_owned(), ctx.scheduled_at()))
        .unwrap();
    Ok(())
}

#[scheduled(cron = "0 30 2 * * *", zone = "Europe/Amsterdam", dst_overlap = "both")]
async fn overlap_both(ctx: &JobContext, probe: State<Probe>) -> JobResult {
    report(ctx, &probe).await
}

#[scheduled(cron = "0 30 2 * * *", zone = "Europe/Amsterdam")]
async fn overlap_default(ctx: &JobContext, probe: State<Probe>) -> JobResult {
    report(ctx, &probe).await
}

#[scheduled(
    cron = "0 30 2 * * *",
    zone = "Europe/Amsterdam",
    dst_overlap = "both",
    misfire = "run_all"
)]
async fn catch_up_both(ctx: &JobContext, probe: State<Probe>) -> JobResult {
    report(ctx, &probe).await
}

#[scheduled(cron = "0 30 2 * * *", zone = "Europe/Amsterdam", misfire = "run_all")]
async fn catch_up_default(ctx: &JobContext, probe: State<Probe>) -> JobResult {
    report(ctx, &probe).await
}

#[scheduled(cron = "0 30 2 * * *", zone = "Europe/Amsterdam", dst_gap = "skip")]
async fn gap_skip(ctx: &JobContext, probe: State<Probe>) -> JobResult {
    report(ctx, &probe).await
}

#[scheduled(cron = "0 30 2 * * *", zone = "Europe/Amsterdam")]
async fn gap_default(ctx: &JobContext, probe: State<Probe>) -> JobResult {
    report(ctx, &probe).await
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// Runs a scheduler with `jobs` on `clock` until `scenario` (sleeps and clock jumps) is
/// over, and returns the runs reported, in order.
async fn runs(
    jobs: [Job; 2],
    clock: &TestClock,
    scenario: impl Future,
) -> Vec<(String, DateTime<Utc>)> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let [a, b] = jobs;
    Scheduler::builder()
        .discover(false)
        .clock(clock.clone())
        .store(MemoryStore::new())
        .instance_id("test")
        .state(Probe(tx))
        .job(a)
        .job(b)
        .build()
        .await
        .unwrap()
        .run_until(scenario)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Ok(run) = rx.try_recv() {
        seen.push(run);
    }
    seen.sort_by_key(|(job, tick)| (*tick, job.clone()));
    seen
}

fn run(job: &str, tick: DateTime<Utc>) -> (String, DateTime<Utc>) {
    (job.to_owned(), tick)
}

#[tokio::test(start_paused = true)]
async fn dst_overlap_both_runs_twice_on_the_night_clocks_go_back() {
    // 27 October 2024, Amsterdam: 03:00 CEST becomes 02:00 CET, so 02:30 happens at 00:30 UTC
    // and again at 01:30 UTC. From 23:00 UTC the day before to 02:00 UTC.
    let clock = TestClock::new(utc(2024, 10, 26, 23, 0));
    let seen = runs(
        [
            tickguard::job!(overlap_both),
            tickguard::job!(overlap_default),
        ],
        &clock,
        sleep(Duration::from_secs(3 * 3600)),
    )
    .await;
    assert_eq!(
        seen,
        [
            run("overlap_both", utc(2024, 10, 27, 0, 30)),
            run("overlap_default", utc(2024, 10, 27, 0, 30)),
            run("overlap_both", utc(2024, 10, 27, 1, 30)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn dst_gap_skip_does_not_run_on_the_night_clocks_go_forward() {
    // 31 March 2024, Amsterdam: 02:00 CET becomes 03:00 CEST, so 02:30 does not exist; the
    // default runs at 03:00 CEST (01:00 UTC). From 23:00 UTC the day before until just after
    // the next day's 02:30 CEST (00:30 UTC on 1 April), when both run again.
    let clock = TestClock::new(utc(2024, 3, 30, 23, 0));
    let seen = runs(
        [tickguard::job!(gap_skip), tickguard::job!(gap_default)],
        &clock,
        sleep(Duration::from_secs(25 * 3600 + 31 * 60)),
    )
    .await;
    assert_eq!(
        seen,
        [
            run("gap_default", utc(2024, 3, 31, 1, 0)),
            run("gap_default", utc(2024, 4, 1, 0, 30)),
            run("gap_skip", utc(2024, 4, 1, 0, 30)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_catch_up_across_the_overlap_runs_the_ticks_of_the_policy() {
    // The process sleeps from 23:55 UTC, before the first 02:30 (00:30 UTC), until after the
    // second (01:30 UTC): on waking, `run_all` runs every missed tick. The backward search
    // that finds them follows the policy as the forward one does.
    let clock = TestClock::new(utc(2024, 10, 26, 23, 55));
    let c = clock.clone();
    let seen = runs(
        [
            tickguard::job!(catch_up_both),
            tickguard::job!(catch_up_default),
        ],
        &clock,
        async move {
            sleep(Duration::from_secs(60)).await;
            c.jump(chrono::Duration::hours(3));
            sleep(Duration::from_secs(5 * 60)).await;
        },
    )
    .await;
    assert_eq!(
        seen,
        [
            run("catch_up_both", utc(2024, 10, 27, 0, 30)),
            run("catch_up_default", utc(2024, 10, 27, 0, 30)),
            run("catch_up_both", utc(2024, 10, 27, 1, 30)),
        ]
    );
}

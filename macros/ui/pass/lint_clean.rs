//! The expansion is clean under strict lints: nothing in it warns in the user's crate.
#![deny(
    warnings,
    unused_qualifications,
    missing_docs,
    unused_results,
    rust_2018_idioms
)]

use tickguard::{FailureReport, JobContext, JobError, JobResult, State, scheduled};

/// Never retries.
pub fn never(_error: &JobError) -> bool {
    false
}

/// Does nothing with the report.
pub async fn ignore(_report: FailureReport) {}

/// A public job, with every argument.
#[scheduled(
    cron = "0 0 3 * * MON",
    zone = "Europe/Paris",
    name = "weekly_report",
    jitter = "1s",
    lock(ttl = "1m", at_least = "10s"),
    retry(attempts = 2, backoff = "1s", factor = 1.5, max_delay = "10s", jitter = 0.1, when = never),
    idempotent(key = "{job}-{date}"),
    timeout = "30s",
    misfire = "skip",
    on_failure = ignore,
    crate = "::tickguard"
)]
pub async fn weekly(ctx: JobContext) -> JobResult {
    let _ = ctx.job();
    Ok(())
}

/// A public job without an argument.
#[scheduled(every = "5s")]
pub async fn no_arg() -> JobResult {
    Ok(())
}

#[scheduled(after = "5s", lock, retry, idempotent)]
async fn private_job() -> JobResult {
    Ok(())
}

/// Application state.
pub struct Limit(pub u32);

/// A public job with a borrowed context and state.
#[scheduled(every = "5s")]
pub async fn with_state(ctx: &JobContext, State(limit): State<Limit>, _again: State<Limit>) -> JobResult {
    let _ = (ctx.job(), limit.0);
    Ok(())
}

/// A module of jobs.
pub mod jobs {
    /// A job in a module.
    #[tickguard::scheduled(every = "1m")]
    pub async fn in_module(_ctx: tickguard::JobContext) -> tickguard::JobResult {
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let scheduler = tickguard::Scheduler::builder()
        .state(Limit(3))
        .build()
        .await
        .expect("the jobs are valid");
    assert_eq!(scheduler.jobs().count(), 5);
}

//! A job whose arguments are in error, named elsewhere with `job!`: one error, on the
//! argument, and none at the `job!`.

use tickguard::{JobResult, scheduled};

#[scheduled(every = "soon", lock(ttl = "1m"))]
async fn job() -> JobResult {
    Ok(())
}

#[tokio::main]
async fn main() {
    let _ = tickguard::Scheduler::builder()
        .discover(false)
        .job(tickguard::job!(job));
}

use tickguard::{FailureReport, JobResult, scheduled};

fn alert(report: FailureReport) {
    let _ = report;
}

#[scheduled(every = "1m", on_failure = alert)]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

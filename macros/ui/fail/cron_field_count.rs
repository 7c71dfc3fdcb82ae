use tickguard::{JobResult, scheduled};

#[scheduled(cron = "0 0 * * * * 2026")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

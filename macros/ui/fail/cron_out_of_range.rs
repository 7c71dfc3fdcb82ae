use tickguard::{JobResult, scheduled};

#[scheduled(cron = "0 61 * * * *")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

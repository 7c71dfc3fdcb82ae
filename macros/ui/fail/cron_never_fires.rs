use tickguard::{JobResult, scheduled};

#[scheduled(cron = "0 0 0 30 2 *")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

use tickguard::{JobResult, scheduled};

#[scheduled(cron = "0 0 1 * * *", idempotent(key = "orders-{day}"))]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

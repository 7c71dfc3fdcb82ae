use tickguard::{JobResult, scheduled};

#[scheduled(cron = "0 * * * * *", every = "1m")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

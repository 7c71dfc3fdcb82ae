use tickguard::{JobResult, scheduled};

#[scheduled(cron = "0 0 9 * * *", zone = "Europe/Berln")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

use tickguard::{JobResult, scheduled};

#[scheduled(every = "1h", zone = "Europe/Berlin")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", lock = "30s")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

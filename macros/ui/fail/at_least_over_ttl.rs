use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", lock(ttl = "10s", at_least = "1m"))]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

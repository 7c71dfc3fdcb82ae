use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", lock(ttl = "1m", lease = "30s"))]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

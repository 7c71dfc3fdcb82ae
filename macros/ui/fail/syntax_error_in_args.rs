use tickguard::{JobResult, scheduled};

#[scheduled(lock(ttl = "1m" at_least = "10s"), every = "1m")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

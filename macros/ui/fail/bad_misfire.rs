use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", misfire = "catch_up")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

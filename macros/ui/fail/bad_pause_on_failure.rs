use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", pause_on_failure = 0)]
async fn zero() -> JobResult {
    Ok(())
}

#[scheduled(every = "1m", pause_on_failure = "3")]
async fn a_string() -> JobResult {
    Ok(())
}

fn main() {}

use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", retry(factor = 0.5, jitter = 1.5))]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

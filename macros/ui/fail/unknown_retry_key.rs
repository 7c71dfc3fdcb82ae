use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", retry(attempts = 3, delay = "1s"))]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", retry(attempts = 0))]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

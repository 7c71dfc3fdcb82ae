use tickguard::{JobResult, scheduled};

fn retry_all(attempt: u32) -> bool {
    attempt < 3
}

#[scheduled(every = "1m", retry(when = retry_all))]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

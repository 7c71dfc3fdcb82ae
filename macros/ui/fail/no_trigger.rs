use tickguard::{JobResult, scheduled};

#[scheduled(lock, retry)]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

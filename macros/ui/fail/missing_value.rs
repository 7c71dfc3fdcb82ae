use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", timeout)]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

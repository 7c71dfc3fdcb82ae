use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", timeout = "10s", timeout = "20s")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

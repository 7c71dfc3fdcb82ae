use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", interval = "1m")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

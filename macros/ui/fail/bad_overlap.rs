use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", overlap = "queue")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

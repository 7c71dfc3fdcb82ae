use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", name = " ", timeout = "0s")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

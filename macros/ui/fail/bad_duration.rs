use tickguard::{JobResult, scheduled};

#[scheduled(every = "5 minutes and a bit")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

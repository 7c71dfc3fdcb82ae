use tickguard::{JobResult, scheduled};

#[scheduled(every = 60)]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

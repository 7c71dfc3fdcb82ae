use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m")]
async fn job(ctx tickguard::JobContext) -> JobResult {
    Ok(())
}

fn main() {}

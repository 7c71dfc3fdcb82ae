use tickguard::{JobContext, JobResult, scheduled};

#[scheduled(every = "1m")]
async fn job(ctx: &JobContext, batch: String) -> JobResult {
    let _ = (ctx, batch);
    Ok(())
}

fn main() {}

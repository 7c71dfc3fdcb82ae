use tickguard::{JobContext, JobResult, scheduled};

#[scheduled(every = "1m")]
async fn job(ctx: JobContext, batch: usize) -> JobResult {
    let _ = (ctx, batch);
    Ok(())
}

fn main() {}

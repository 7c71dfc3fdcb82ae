use tickguard::{JobContext, JobResult, scheduled};

#[scheduled(every = "1m")]
async fn named<'a>(ctx: &'a JobContext) -> JobResult {
    let _ = ctx;
    Ok(())
}

#[scheduled(every = "1m")]
async fn forever(ctx: &'static JobContext) -> JobResult {
    let _ = ctx;
    Ok(())
}

fn main() {}

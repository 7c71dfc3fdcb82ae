use std::rc::Rc;

use tickguard::{JobContext, JobResult, scheduled};

#[scheduled(every = "1m")]
async fn job(ctx: JobContext) -> JobResult {
    let shared = Rc::new(1);
    ctx.cancelled().await;
    let _ = shared;
    Ok(())
}

fn main() {}

use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m")]
async fn job(ctx: u32) -> JobResult {
    let _ = ctx + 1;
    Ok(())
}

fn main() {}

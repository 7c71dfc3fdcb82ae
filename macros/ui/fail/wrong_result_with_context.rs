use tickguard::{JobContext, scheduled};

#[scheduled(every = "1m")]
async fn job(ctx: JobContext) -> Result<(), String> {
    let _ = ctx;
    Ok(())
}

fn main() {}

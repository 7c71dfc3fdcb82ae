use tickguard::{JobResult, State, scheduled};

#[scheduled(every = "1m")]
async fn borrowed(ctx: &impl Sync) -> JobResult {
    let _ = ctx;
    Ok(())
}

#[scheduled(every = "1m")]
async fn state(config: State<impl Send + Sync>) -> JobResult {
    let _ = config;
    Ok(())
}

fn main() {}

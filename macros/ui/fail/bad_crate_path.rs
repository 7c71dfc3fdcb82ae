use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", crate = "tick guard")]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m")]
fn job() -> JobResult {
    Ok(())
}

fn main() {}

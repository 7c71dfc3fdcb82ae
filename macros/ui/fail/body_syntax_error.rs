use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m")]
async fn job() -> JobResult {
    let batch = ;
    Ok(())
}

fn main() {}

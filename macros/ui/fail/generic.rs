use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m")]
async fn job<T: Default>() -> JobResult {
    let _ = T::default();
    Ok(())
}

fn main() {}

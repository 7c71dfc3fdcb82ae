use tickguard::{State, scheduled};

#[scheduled(every = "1m")]
async fn job(State(limit): State<u32>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _ = limit;
    Ok(())
}

fn main() {}

use tickguard::{JobResult, scheduled};

async fn alert(message: String) {
    let _ = message;
}

#[scheduled(every = "1m", on_failure = alert)]
async fn job() -> JobResult {
    Ok(())
}

fn main() {}

use tickguard::JobResult;

async fn plain() -> JobResult {
    Ok(())
}

#[tokio::main]
async fn main() {
    let _ = plain;
    let _ = tickguard::Scheduler::builder()
        .discover(false)
        .job(tickguard::job!(plain));
}

use tickguard::{JobResult, scheduled};

#[scheduled(cron = "0 30 2 * * *", zone = "Europe/Amsterdam", dst_gap = "later", dst_overlap = "second")]
async fn unknown_policies() -> JobResult {
    Ok(())
}

#[scheduled(every = "1h", dst_gap = "skip", dst_overlap = "both")]
async fn not_cron() -> JobResult {
    Ok(())
}

fn main() {}

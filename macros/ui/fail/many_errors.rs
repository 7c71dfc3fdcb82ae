use tickguard::{JobResult, scheduled};

#[scheduled(
    cron = "0 61 * * * *",
    zone = "Mars/Olympus_Mons",
    timeout = "soon",
    retry(attempts = 0, delay = "1s"),
    misfire = "later",
    colour = "blue"
)]
fn job() -> JobResult {
    Ok(())
}

fn main() {}

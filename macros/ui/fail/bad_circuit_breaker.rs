use tickguard::{JobResult, scheduled};

#[scheduled(every = "1m", circuit_breaker(failure_rate = 1.5, window = 0, open_for = "0s"))]
async fn out_of_range() -> JobResult {
    Ok(())
}

#[scheduled(every = "1m", circuit_breaker(window = 3, min_runs = 5, name = " "))]
async fn never_opens() -> JobResult {
    Ok(())
}

#[scheduled(every = "1m", circuit_breaker(rate = 0.5))]
async fn unknown_key() -> JobResult {
    Ok(())
}

#[scheduled(every = "1m", circuit_breaker = "payments")]
async fn not_a_list() -> JobResult {
    Ok(())
}

fn main() {}

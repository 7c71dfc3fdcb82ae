use tickguard::{JobResult, scheduled};

struct Service;

impl Service {
    #[scheduled(every = "1m")]
    async fn job(&self) -> JobResult {
        Ok(())
    }
}

fn main() {
    let _ = Service.job();
}

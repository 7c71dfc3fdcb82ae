use tickguard::scheduled;

#[scheduled(every = "1m")]
async fn job() -> Option<Vec<u32>> {
    None
}

fn main() {}

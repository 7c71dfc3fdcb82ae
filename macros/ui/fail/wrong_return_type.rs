use tickguard::scheduled;

#[scheduled(every = "1m")]
async fn job() -> u32 {
    42
}

fn main() {}

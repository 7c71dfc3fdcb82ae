use tickguard::scheduled;

#[scheduled(every = "1m")]
async fn job() {
    println!("tick");
}

fn main() {}

use tickguard::scheduled;

#[scheduled(every = "1m")]
struct Job;

fn main() {}

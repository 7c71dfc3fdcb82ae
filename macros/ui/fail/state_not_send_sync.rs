use std::rc::Rc;

use tickguard::{JobResult, State, scheduled};

#[scheduled(every = "1m")]
async fn job(counter: State<Rc<u32>>) -> JobResult {
    let _ = **counter;
    Ok(())
}

fn main() {}

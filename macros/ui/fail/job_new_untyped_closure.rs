use std::time::Duration;

use tickguard::{Job, Schedule};

fn main() {
    let every = Schedule::every(Duration::from_secs(60)).unwrap();
    let _ = Job::new("untyped", every, |ctx| async move {
        let _ = ctx;
        Ok(())
    });
}

use std::time::Duration;

use tickguard::{Job, JobContext, Schedule};

fn main() {
    let every = Schedule::every(Duration::from_secs(60)).unwrap();
    let _ = Job::new("borrowed", every, |ctx: &JobContext| {
        let _ = ctx.job();
        async { Ok(()) }
    });
}

use std::time::Duration;

use tickguard::{Job, JobContext, Schedule};

fn main() {
    let every = Schedule::every(Duration::from_secs(60)).unwrap();
    let _ = Job::new("typed", every.clone(), |ctx: JobContext, batch: usize| async move {
        let _ = (ctx, batch);
        Ok(())
    });
}

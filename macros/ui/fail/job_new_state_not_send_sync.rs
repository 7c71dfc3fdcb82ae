use std::{cell::RefCell, time::Duration};

use tickguard::{Job, Schedule, State};

fn main() {
    let every = Schedule::every(Duration::from_secs(60)).unwrap();
    let _ = Job::new("counted", every, |counter: State<RefCell<u32>>| async move {
        *counter.borrow_mut() += 1;
        Ok(())
    });
}

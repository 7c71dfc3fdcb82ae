//! A discovered `#[scheduled]` fn whose application state was not given is refused at
//! build, as one given with `.job(..)` is. In a test binary of its own: discovery finds
//! every `#[scheduled]` fn linked into the binary.

use tickguard::{Error, JobResult, Scheduler, State, scheduled};

/// A value of application state no test gives.
struct Warehouse;

#[scheduled(every = "1m")]
async fn restock(warehouse: State<Warehouse>) -> JobResult {
    let _ = &*warehouse;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn build_refuses_a_discovered_job_whose_state_was_not_given() {
    let message = match Scheduler::builder().build().await {
        Err(Error::Config(message)) => message,
        Err(other) => panic!("expected a configuration error, got {other}"),
        Ok(_) => panic!("expected a configuration error, got a scheduler"),
    };
    assert_eq!(
        message,
        "job `restock` takes `State<state_discovered::Warehouse>`, but no value of type \
         `state_discovered::Warehouse` was given to the builder: add `.state(value)`"
    );
}

#[tokio::test(start_paused = true)]
async fn build_takes_a_discovered_job_whose_state_was_given() {
    let scheduler = Scheduler::builder().state(Warehouse).build().await.unwrap();
    assert_eq!(
        scheduler.jobs().map(|job| job.name()).collect::<Vec<_>>(),
        ["restock"]
    );
}

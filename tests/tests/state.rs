//! Application state: the values given to the builder reach the jobs' `State<T>` arguments,
//! in `#[scheduled]` fns and `Job::new` handlers; a job whose state was not given is refused
//! at build, naming every job and type missing at once (and a value given in an `Arc` for
//! what it is); the test kit gives state to a direct run, and a run whose state is missing
//! fails, permanently, saying what is missing.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use tickguard::{
    Error, Job, JobContext, JobResult, RetryPolicy, Schedule, Scheduler, SchedulerBuilder, State,
    scheduled,
    store::{MemoryStore, Status},
    testing::{Run, TestClock},
};
use tokio::sync::mpsc;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn every_second() -> Schedule {
    Schedule::every(Duration::from_secs(1)).unwrap()
}

/// A scheduler on a test clock and a memory store, with only the jobs given.
fn builder() -> SchedulerBuilder {
    Scheduler::builder()
        .discover(false)
        .clock(TestClock::new(t0()))
        .store(MemoryStore::new())
        .instance_id("test")
}

/// What a job saw of its run and its state, sent to the test.
#[derive(Debug, PartialEq)]
struct Seen {
    job: String,
    limit: u32,
    region: &'static str,
}

/// Where jobs report what they saw: itself application state.
struct Probe(mpsc::UnboundedSender<Seen>);

impl Probe {
    fn report(&self, seen: Seen) {
        self.0.send(seen).unwrap();
    }
}

/// A value of application state.
struct Limit(u32);

/// Another.
struct Config {
    region: &'static str,
}

#[scheduled(every = "1s")]
async fn reports_its_state(
    ctx: &JobContext,
    State(limit): State<Limit>,
    probe: State<Probe>,
    State(config): State<Config>,
) -> JobResult {
    tokio::task::yield_now().await; // the borrowed context lives across an await
    let seen = Seen {
        job: ctx.job().to_owned(),
        limit: limit.0,
        region: config.region,
    };
    probe.report(seen);
    Ok(())
}

/// Runs `builder` until a job reports, and returns its report; panics if none reports
/// within a minute (the jobs run every second).
async fn first_report(builder: SchedulerBuilder, mut seen: mpsc::UnboundedReceiver<Seen>) -> Seen {
    let scheduler = builder.build().await.unwrap();
    let mut report = None;
    scheduler
        .run_until(async {
            report = tokio::time::timeout(Duration::from_secs(60), seen.recv())
                .await
                .ok()
                .flatten();
        })
        .await
        .unwrap();
    report.expect("no job reported within a minute")
}

#[tokio::test(start_paused = true)]
async fn a_scheduled_fn_takes_the_builders_values_and_a_borrowed_context() {
    let (tx, rx) = mpsc::unbounded_channel();
    let builder = builder()
        .job(tickguard::job!(reports_its_state))
        .state(Probe(tx))
        .state(Limit(1))
        .state(Config {
            region: "eu-west-1",
        })
        // A second value of a type replaces the first.
        .state(Limit(25));
    let seen = first_report(builder, rx).await;
    assert_eq!(
        seen,
        Seen {
            job: "reports_its_state".into(),
            limit: 25,
            region: "eu-west-1",
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_new_closure_takes_two_extractors_in_any_order() {
    let (tx, rx) = mpsc::unbounded_channel();
    let job = Job::new(
        "closure_job",
        every_second(),
        |State(limit): State<Limit>, ctx: JobContext, probe: State<Probe>| async move {
            let region = ctx.state::<Config>().map_or("none", |c| c.region);
            probe.report(Seen {
                job: ctx.job().to_owned(),
                limit: limit.0,
                region,
            });
            Ok(())
        },
    );
    let builder = builder().job(job).state(Limit(7)).state(Probe(tx));
    let seen = first_report(builder, rx).await;
    assert_eq!(
        seen,
        Seen {
            job: "closure_job".into(),
            limit: 7,
            // Not given: `JobContext::state` is `None`, and the build does not check it.
            region: "none",
        }
    );
}

/// The configuration error `build()` gives.
async fn config_error(builder: SchedulerBuilder) -> String {
    match builder.build().await {
        Err(Error::Config(message)) => message,
        Err(other) => panic!("expected a configuration error, got {other}"),
        Ok(_) => panic!("expected a configuration error, got a scheduler"),
    }
}

#[tokio::test(start_paused = true)]
async fn build_refuses_a_scheduled_fn_whose_state_was_not_given_naming_the_job_and_the_type() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let builder = builder()
        .job(tickguard::job!(reports_its_state))
        .state(Probe(tx))
        .state(Limit(1));
    assert_eq!(
        config_error(builder).await,
        "job `reports_its_state` takes `State<state::Config>`, but no value of type \
         `state::Config` was given to the builder: add `.state(value)`"
    );
}

#[tokio::test(start_paused = true)]
async fn build_refuses_a_job_new_handler_whose_state_was_not_given() {
    let job = Job::new(
        "nightly_report",
        every_second(),
        |_ctx: JobContext, _limit: State<Limit>| async { Ok(()) },
    );
    let message = config_error(builder().job(job)).await;
    assert_eq!(
        message,
        "job `nightly_report` takes `State<state::Limit>`, but no value of type `state::Limit` \
         was given to the builder: add `.state(value)`"
    );
}

#[tokio::test(start_paused = true)]
async fn build_names_every_job_and_type_whose_state_is_missing_at_once() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let closure = Job::new(
        "nightly_report",
        every_second(),
        |_limit: State<Limit>, _names: State<Vec<String>>| async { Ok(()) },
    );
    let builder = builder()
        .job(tickguard::job!(reports_its_state))
        .job(closure)
        .state(Probe(tx));
    assert_eq!(
        config_error(builder).await,
        "jobs take application state that was not given:\n\
         job `reports_its_state` takes `State<state::Limit>`, but no value of type \
         `state::Limit` was given to the builder: add `.state(value)`\n\
         job `reports_its_state` takes `State<state::Config>`, but no value of type \
         `state::Config` was given to the builder: add `.state(value)`\n\
         job `nightly_report` takes `State<state::Limit>`, but no value of type \
         `state::Limit` was given to the builder: add `.state(value)`\n\
         job `nightly_report` takes `State<std::vec::Vec<std::string::String>>`, but no value \
         of type `std::vec::Vec<std::string::String>` was given to the builder: add \
         `.state(value)`"
    );
}

#[tokio::test(start_paused = true)]
async fn build_says_that_a_value_given_in_an_arc_is_keyed_by_the_arc() {
    let job = Job::new(
        "nightly_report",
        every_second(),
        |_limit: State<Limit>| async { Ok(()) },
    );
    let given_an_arc = builder().job(job).state(Arc::new(Limit(1)));
    assert_eq!(
        config_error(given_an_arc).await,
        "job `nightly_report` takes `State<state::Limit>`, but the value given to the builder \
         is an `std::sync::Arc<state::Limit>`, and values are found by their exact type: give \
         the `state::Limit` itself (`.state(value)`, not `.state(Arc::new(value))`), as \
         `State<state::Limit>` holds it behind an `Arc` already"
    );

    let job = Job::new(
        "nightly_report",
        every_second(),
        |_limit: State<Arc<Limit>>| async { Ok(()) },
    );
    let taking_an_arc = builder().job(job).state(Limit(1));
    assert_eq!(
        config_error(taking_an_arc).await,
        "job `nightly_report` takes `State<std::sync::Arc<state::Limit>>`, but the value given \
         to the builder is a `state::Limit`, and values are found by their exact type: take \
         `State<state::Limit>`, which holds the value behind an `Arc` already"
    );
}

#[tokio::test(start_paused = true)]
async fn the_test_kit_gives_state_to_a_direct_run() {
    let job = Job::new(
        "bounded",
        every_second(),
        |State(limit): State<Limit>| async move {
            if limit.0 == 10 {
                Ok(())
            } else {
                Err(tickguard::JobError::permanent("wrong limit"))
            }
        },
    );
    let run = Run::new(job, t0()).state(Limit(10)).run().await;
    assert_eq!(run.record().unwrap().status, Status::Completed);
}

#[tokio::test(start_paused = true)]
async fn the_test_kit_gives_state_to_a_scheduled_fn() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let run = Run::new(tickguard::job!(reports_its_state), t0())
        .state(Probe(tx))
        .state(Limit(3))
        .state(Config {
            region: "us-east-2",
        })
        .run()
        .await;
    assert_eq!(run.record().unwrap().status, Status::Completed);
    assert_eq!(
        rx.try_recv().unwrap(),
        Seen {
            job: "reports_its_state".into(),
            limit: 3,
            region: "us-east-2",
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_direct_run_without_its_state_fails_permanently_saying_what_is_missing() {
    let closure = Job::new(
        "closure_without_state",
        every_second(),
        |_limit: State<Limit>| async { Ok(()) },
    )
    .retry(RetryPolicy::attempts(3));
    let run = Run::new(closure, t0()).run().await;
    let record = run.record().unwrap();
    assert_eq!(record.status, Status::Failed);
    assert_eq!(record.attempts, 1, "a missing value is not retried");
    assert_eq!(
        record.error.as_deref(),
        Some(
            "job `closure_without_state` takes `State<state::Limit>`, but no value of type \
             `state::Limit` was given to the run (`Run::state`)"
        )
    );

    let (tx, _rx) = mpsc::unbounded_channel();
    let scheduled = Run::new(tickguard::job!(reports_its_state), t0())
        .state(Probe(tx))
        .state(Limit(1))
        .run()
        .await;
    let record = scheduled.record().unwrap();
    assert_eq!(record.status, Status::Failed);
    assert!(
        record
            .error
            .as_deref()
            .unwrap()
            .contains("takes `State<state::Config>`, but no value of type `state::Config` was given to the run (`Run::state`)"),
        "{:?}",
        record.error
    );
}

//! Graceful shutdown on the embedded backends, under tokio's paused clock: a running job is
//! told at once, an execution it hands back is resumed by another instance within moments
//! from its checkpoint, a failure during shutdown is not retried here, and the default
//! grace periods end a shutdown inside Kubernetes' 30 s.
//!
//! The same with real processes, SIGTERM and PostgreSQL: `rolling_deploy.rs`.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, TimeZone, Utc};
use tickguard::{
    Job, JobContext, JobError, LockPolicy, RetryPolicy, Schedule, Scheduler,
    lock::InProcessLock,
    store::{ExecutionRecord, ExecutionStore, MemoryStore, RunOutcome, Status},
    testing::TestClock,
};
use tokio::{
    sync::oneshot,
    task::JoinHandle,
    time::{Instant, sleep},
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// What each run of the long job saw as it started: the instance, the record it started
/// from, its attempt, and when (tokio's clock).
#[derive(Clone, Debug)]
struct Start {
    instance: String,
    from: u64,
    attempt: u32,
    at: Instant,
}

#[derive(Clone, Default)]
struct Starts(Arc<Mutex<Vec<Start>>>);

impl Starts {
    fn get(&self) -> Vec<Start> {
        self.0.lock().unwrap().clone()
    }

    /// Waits (in tokio's paused time) until `n` runs started.
    async fn wait_for(&self, n: usize) -> Vec<Start> {
        let deadline = Instant::now() + secs(4_000);
        loop {
            let starts = self.get();
            if starts.len() >= n {
                return starts;
            }
            assert!(
                Instant::now() < deadline,
                "{n} runs did not start: {starts:?}"
            );
            sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A job of 100 one-second records that saves its progress every ten, and at once when
/// shutdown is requested, then hands its execution back.
fn long_job(starts: &Starts) -> Job {
    let starts = starts.clone();
    Job::new(
        "export",
        Schedule::every(secs(3600)).unwrap(),
        move |ctx: JobContext| {
            let starts = starts.clone();
            async move {
                let from: u64 = ctx.last_checkpoint().await?.unwrap_or(0);
                starts.0.lock().unwrap().push(Start {
                    instance: ctx.instance_id().to_owned(),
                    from,
                    attempt: ctx.attempt(),
                    at: Instant::now(),
                });
                for record in from..100 {
                    tokio::select! {
                        () = ctx.shutdown_requested() => {
                            ctx.checkpoint(&record).await?;
                            return Err(JobError::transient("shutting down; handed back"));
                        }
                        () = sleep(secs(1)) => {}
                    }
                    if record % 10 == 9 {
                        ctx.checkpoint(&(record + 1)).await?;
                    }
                }
                Ok(())
            }
        },
    )
    .idempotent()
    .lock(LockPolicy::new(secs(30)))
    .retry(RetryPolicy::attempts(3))
}

async fn execution(store: &MemoryStore, id: &str) -> ExecutionRecord {
    store.execution(id).await.unwrap().unwrap()
}

/// One scheduler instance, run in a task until its stop signal is sent.
struct Instance {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Instance {
    async fn start(
        id: &str,
        job: Job,
        store: &Arc<MemoryStore>,
        lock: &Arc<InProcessLock>,
    ) -> Self {
        let scheduler = Scheduler::builder()
            .discover(false)
            .clock(TestClock::new(t0()))
            .instance_id(id)
            // Recovery scans every ~20 s: a resumption within a second is the hand-back's.
            .liveness(secs(60))
            .job(job)
            .store(store.clone())
            .lock_backend(lock.clone())
            .build()
            .await
            .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            scheduler
                .run_until(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            stop: Some(stop),
            task,
        }
    }

    /// Sends the stop signal; how long the scheduler took to return.
    async fn shut_down(mut self) -> Duration {
        let signalled = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
        signalled.elapsed()
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_told_of_shutdown_hands_back_and_another_instance_resumes_it_from_its_checkpoint() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(InProcessLock::new());
    let starts = Starts::default();
    let mut instances = Vec::new();
    for id in ["a", "b"] {
        instances.push(Instance::start(id, long_job(&starts), &store, &lock).await);
    }
    let first = starts.wait_for(1).await.remove(0);
    // 25 records in, the instance that runs the job is told to stop.
    sleep(Duration::from_millis(25_500)).await;
    let stopping = usize::from(first.instance == "b");
    let signalled = Instant::now();
    let took = instances.remove(stopping).shut_down().await;
    assert!(
        took < Duration::from_millis(100),
        "the stopped instance returned {took:?} after its signal"
    );
    let resumed = starts.wait_for(2).await.remove(1);
    let delay = resumed.at - signalled;
    assert_ne!(resumed.instance, first.instance);
    assert_eq!(
        resumed.from, 25,
        "resumed from the checkpoint saved at shutdown"
    );
    assert_eq!(
        resumed.attempt, 1,
        "the attempt shutdown cut short does not count"
    );
    assert!(
        delay < Duration::from_millis(700),
        "resumed {delay:?} after the signal: the control task's look, not the ~20 s scan"
    );
    sleep(secs(80)).await;
    let id = "export@2026-01-01T01:00:00Z";
    let detail = store.execution_detail(id).await.unwrap().unwrap();
    assert_eq!(detail.execution.status, Status::Completed);
    let outcomes: Vec<(String, Option<RunOutcome>)> = detail
        .runs
        .iter()
        .map(|r| (r.owner.clone(), r.outcome))
        .collect();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(outcomes[0].0.starts_with(&first.instance));
    assert_eq!(outcomes[0].1, Some(RunOutcome::Finished(Status::Cancelled)));
    assert_eq!(
        detail.runs[0].error.as_deref(),
        Some("handed back at shutdown: shutting down; handed back")
    );
    assert_eq!(outcomes[1].1, Some(RunOutcome::Finished(Status::Completed)));
    assert_eq!(starts.get().len(), 2, "one run per instance");
    instances.remove(0).shut_down().await;
}

/// A job that fails the way `fail` says once shutdown is requested, under a retry policy
/// of five attempts.
fn failing_at_shutdown(name: &str, fail: fn() -> JobError, tries: Arc<Mutex<u32>>) -> Job {
    Job::new(
        name,
        Schedule::every(secs(10)).unwrap(),
        move |ctx: JobContext| {
            let tries = tries.clone();
            async move {
                *tries.lock().unwrap() += 1;
                ctx.shutdown_requested().await;
                Err(fail())
            }
        },
    )
    .idempotent()
    .retry(RetryPolicy::attempts(5).backoff(secs(1)))
}

#[tokio::test(start_paused = true)]
async fn a_failure_after_shutdown_began_is_not_retried_here_and_only_a_transient_one_hands_back() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(InProcessLock::new());
    let (transient, permanent) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0)));
    let mut instance = Instance::start(
        "a",
        failing_at_shutdown(
            "transient",
            || JobError::transient("blip"),
            transient.clone(),
        ),
        &store,
        &lock,
    )
    .await;
    let other = Instance::start(
        "b",
        failing_at_shutdown(
            "permanent",
            || JobError::permanent("bad row"),
            permanent.clone(),
        ),
        &store,
        &lock,
    )
    .await;
    sleep(secs(11)).await;
    let took = other.shut_down().await;
    assert!(took < Duration::from_millis(100), "{took:?}");
    let _ = instance.stop.take().unwrap().send(());
    instance.task.await.unwrap();
    assert_eq!(*transient.lock().unwrap(), 1, "not retried during shutdown");
    assert_eq!(*permanent.lock().unwrap(), 1);
    let handed = execution(&store, "transient@2026-01-01T00:00:10Z").await;
    assert_eq!(handed.status, Status::Cancelled);
    assert_eq!(handed.attempts, 0, "the attempt cut short is given back");
    let failed = execution(&store, "permanent@2026-01-01T00:00:10Z").await;
    assert_eq!(failed.status, Status::Failed);
    assert_eq!(failed.attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_retry_waiting_for_its_backoff_is_handed_back_at_once() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(InProcessLock::new());
    let tries = Arc::new(Mutex::new(0));
    let counted = tries.clone();
    let job = Job::new(
        "flaky",
        Schedule::every(secs(10)).unwrap(),
        move |_ctx: JobContext| {
            *counted.lock().unwrap() += 1;
            async { Err(JobError::transient("upstream 503")) }
        },
    )
    .idempotent()
    .retry(RetryPolicy::attempts(5).backoff(secs(60)));
    let instance = Instance::start("a", job, &store, &lock).await;
    sleep(secs(11)).await;
    let took = instance.shut_down().await;
    assert!(took < Duration::from_millis(100), "{took:?}");
    assert_eq!(*tries.lock().unwrap(), 1);
    let run = execution(&store, "flaky@2026-01-01T00:00:10Z").await;
    assert_eq!(run.status, Status::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn with_the_default_grace_a_job_that_ignores_shutdown_is_cut_off_inside_30_seconds() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(InProcessLock::new());
    let job = Job::new(
        "stubborn",
        Schedule::every(secs(10)).unwrap(),
        |_ctx: JobContext| async {
            sleep(secs(3600)).await;
            Ok(())
        },
    )
    .idempotent();
    let instance = Instance::start("a", job, &store, &lock).await;
    sleep(secs(11)).await;
    let took = instance.shut_down().await;
    // 20 s of shutdown grace, then 5 s of cancel grace before the run is dropped.
    assert_eq!(took, secs(25));
    let run = execution(&store, "stubborn@2026-01-01T00:00:10Z").await;
    assert_eq!(run.status, Status::Cancelled);
    assert_eq!(run.attempts, 0);
}

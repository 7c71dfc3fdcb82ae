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
    Job, JobContext, JobError, LockPolicy, RetryPolicy, Schedule, Scheduler, SchedulerBuilder,
    lock::InProcessLock,
    store::{ExecutionRecord, ExecutionStore, MemoryStore, RunOutcome, Status},
    testing::{FaultyStore, TestClock},
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

/// A job of 100 one-second records that saves its progress every ten, and hands its
/// execution back when shutdown is requested: idempotent, with a lock, by default.
fn long_job(starts: &Starts) -> Job {
    long_job_on(hourly(), starts)
        .idempotent()
        .lock(LockPolicy::new(secs(30)))
}

fn hourly() -> Schedule {
    Schedule::every(secs(3600)).unwrap()
}

/// The long job, on `schedule`, neither idempotent nor locked.
fn long_job_on(schedule: Schedule, starts: &Starts) -> Job {
    let starts = starts.clone();
    Job::new("export", schedule, move |ctx: JobContext| {
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
                    () = ctx.shutdown_requested() => return ctx.hand_back(&record).await,
                    () = sleep(secs(1)) => {}
                }
                if record % 10 == 9 {
                    ctx.checkpoint(&(record + 1)).await?;
                }
            }
            Ok(())
        }
    })
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
    async fn start<S: ExecutionStore>(
        id: &str,
        job: Job,
        store: &Arc<S>,
        lock: &Arc<InProcessLock>,
    ) -> Self {
        Self::start_with(id, job, store, lock, |b| b).await
    }

    /// An instance whose builder `configure` adjusts.
    async fn start_with<S: ExecutionStore>(
        id: &str,
        job: Job,
        store: &Arc<S>,
        lock: &Arc<InProcessLock>,
        configure: impl FnOnce(SchedulerBuilder) -> SchedulerBuilder,
    ) -> Self {
        let builder = Scheduler::builder()
            .discover(false)
            .clock(TestClock::new(t0()))
            .instance_id(id)
            // Recovery scans every ~20 s: a resumption within a second is the hand-back's.
            .liveness(secs(60))
            .job(job)
            .store(store.clone())
            .lock_backend(lock.clone());
        let scheduler = configure(builder).build().await.unwrap();
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

/// What a hand-back scenario saw.
struct HandedBack {
    first: Start,
    resumed: Start,
    /// From the stop signal to the other instance's run starting.
    delay: Duration,
    store: Arc<MemoryStore>,
}

/// Two instances run `job` (built by `make`); 25 records into the first run (started by
/// the schedule, or by `trigger` when given), the instance running it is stopped; waits
/// for the other instance to resume it.
async fn hand_back(make: impl Fn(&Starts) -> Job, trigger: Option<&str>) -> HandedBack {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(InProcessLock::new());
    let starts = Starts::default();
    let mut instances = Vec::new();
    for id in ["a", "b"] {
        instances.push(Instance::start(id, make(&starts), &store, &lock).await);
    }
    if let Some(job) = trigger {
        store.trigger(job, "ops").await.unwrap();
    }
    let first = starts.wait_for(1).await.remove(0);
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
        "the attempt the hand-back cut short does not count"
    );
    sleep(secs(80)).await;
    assert_eq!(starts.get().len(), 2, "one run per instance");
    instances.remove(0).shut_down().await;
    HandedBack {
        first,
        resumed,
        delay,
        store,
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_told_of_shutdown_hands_back_and_another_instance_resumes_it_from_its_checkpoint() {
    let seen = hand_back(long_job, None).await;
    assert!(
        seen.delay < Duration::from_millis(700),
        "resumed {:?} after the signal: the control task's look, not the ~20 s scan",
        seen.delay
    );
    let id = "export@2026-01-01T01:00:00Z";
    let detail = seen.store.execution_detail(id).await.unwrap().unwrap();
    assert_eq!(detail.execution.status, Status::Completed);
    let outcomes: Vec<(String, Option<RunOutcome>)> = detail
        .runs
        .iter()
        .map(|r| (r.owner.clone(), r.outcome))
        .collect();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(outcomes[0].0.starts_with(&seen.first.instance));
    assert!(outcomes[1].0.starts_with(&seen.resumed.instance));
    assert_eq!(outcomes[0].1, Some(RunOutcome::Finished(Status::Cancelled)));
    assert_eq!(
        detail.runs[0].error.as_deref(),
        Some("handed back at shutdown: progress saved")
    );
    assert_eq!(outcomes[1].1, Some(RunOutcome::Finished(Status::Completed)));
}

/// A store that cannot take the announce: the execution is handed back all the same, and
/// another instance resumes it at its next scan for interrupted executions (every ~20 s
/// here) instead of within a look.
#[tokio::test(start_paused = true)]
async fn a_hand_back_the_store_cannot_announce_is_resumed_at_the_next_scan() {
    let (logs, _guard) =
        tickguard_tests::Captured::start(tracing_subscriber::filter::LevelFilter::WARN);
    let store = Arc::new(FaultyStore::in_memory());
    let lock = Arc::new(InProcessLock::new());
    let starts = Starts::default();
    let mut instances = Vec::new();
    for id in ["a", "b"] {
        instances.push(Instance::start(id, long_job(&starts), &store, &lock).await);
    }
    let first = starts.wait_for(1).await.remove(0);
    sleep(secs(5)).await;
    store.fail_next_announces(1);
    let signalled = Instant::now();
    let stopping = usize::from(first.instance == "b");
    instances.remove(stopping).shut_down().await;
    let resumed = starts.wait_for(2).await.remove(1);
    let delay = resumed.at - signalled;
    assert_ne!(resumed.instance, first.instance);
    assert_eq!(
        resumed.from, 5,
        "resumed from the checkpoint the hand-back saved"
    );
    assert!(
        delay <= secs(26),
        "resumed {delay:?} after the signal: by the recovery scan at the latest"
    );
    assert!(
        logs.text()
            .contains("handed back at shutdown, but the other instances could not be told"),
        "{}",
        logs.text()
    );
    instances.remove(0).shut_down().await;
}

#[tokio::test(start_paused = true)]
async fn without_a_lock_the_instance_waiting_for_the_busy_tick_resumes_it_at_once() {
    // The other instance fired the same tick, found it busy, and waits out a liveness
    // before it looks again: the hand-back wakes it.
    let seen = hand_back(|starts| long_job_on(hourly(), starts).idempotent(), None).await;
    assert!(seen.delay < Duration::from_millis(700), "{:?}", seen.delay);
}

#[tokio::test(start_paused = true)]
async fn a_requested_execution_of_a_job_that_is_not_idempotent_is_handed_back_too() {
    // Fires once a year: only the trigger runs it.
    let yearly = || Schedule::cron("0 0 0 1 1 *").unwrap();
    let seen = hand_back(|starts| long_job_on(yearly(), starts), Some("export")).await;
    assert!(seen.delay < Duration::from_millis(700), "{:?}", seen.delay);
}

#[tokio::test(start_paused = true)]
async fn a_tick_of_a_job_that_is_not_idempotent_handed_back_is_cancelled_and_not_resumed() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(InProcessLock::new());
    let starts = Starts::default();
    let a = Instance::start("a", long_job_on(hourly(), &starts), &store, &lock).await;
    starts.wait_for(1).await;
    sleep(secs(5)).await;
    a.shut_down().await;
    let b = Instance::start("b", long_job_on(hourly(), &starts), &store, &lock).await;
    sleep(secs(120)).await;
    assert_eq!(starts.get().len(), 1, "{:?}", starts.get());
    let ran = store.executions("export", 10).await.unwrap();
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0].status, Status::Cancelled);
    b.shut_down().await;
}

/// A job that returns what `fail` makes once shutdown is requested, under a retry policy of
/// five attempts a second apart; counts its attempts.
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
    .retry(RetryPolicy::attempts(5).backoff(secs(1)).max_delay(secs(1)))
}

#[tokio::test(start_paused = true)]
async fn without_a_hand_back_a_failure_during_shutdown_is_handled_as_at_any_time() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(InProcessLock::new());
    let counts: Vec<Arc<Mutex<u32>>> = (0..3).map(|_| Arc::default()).collect();
    let jobs = [
        failing_at_shutdown(
            "transient",
            || JobError::transient("blip"),
            counts[0].clone(),
        ),
        failing_at_shutdown(
            "permanent",
            || JobError::permanent("bad row"),
            counts[1].clone(),
        ),
        // A hand-back when no shutdown began is a failure, not retried.
        Job::new("early", Schedule::every(secs(10)).unwrap(), {
            let tries = counts[2].clone();
            move |ctx: JobContext| {
                let tries = tries.clone();
                async move {
                    *tries.lock().unwrap() += 1;
                    ctx.hand_back(&1).await
                }
            }
        })
        .idempotent()
        .retry(RetryPolicy::attempts(5)),
    ];
    let mut instances = Vec::new();
    for (i, job) in jobs.into_iter().enumerate() {
        instances.push(Instance::start(&format!("i{i}"), job, &store, &lock).await);
    }
    sleep(secs(11)).await;
    for instance in instances {
        let took = instance.shut_down().await;
        assert!(took < secs(20), "{took:?}");
    }
    let tries: Vec<u32> = counts.iter().map(|c| *c.lock().unwrap()).collect();
    assert_eq!(tries, [5, 1, 1], "retried during the grace as at any time");
    for (id, status, attempts) in [
        ("transient@2026-01-01T00:00:10Z", Status::Failed, 5),
        ("permanent@2026-01-01T00:00:10Z", Status::Failed, 1),
        ("early@2026-01-01T00:00:10Z", Status::Failed, 1),
    ] {
        let record = execution(&store, id).await;
        assert_eq!((record.status, record.attempts), (status, attempts), "{id}");
    }
}

/// A job that ignores shutdown: only the cancel grace's end drops it.
fn stubborn(starts: &Starts) -> Job {
    let starts = starts.clone();
    Job::new("stubborn", hourly(), move |ctx: JobContext| {
        starts.0.lock().unwrap().push(Start {
            instance: ctx.instance_id().to_owned(),
            from: 0,
            attempt: ctx.attempt(),
            at: Instant::now(),
        });
        async {
            sleep(secs(100_000)).await;
            Ok(())
        }
    })
    .idempotent()
}

#[tokio::test(start_paused = true)]
async fn with_the_default_grace_a_job_that_ignores_shutdown_is_cut_off_inside_30_seconds() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(InProcessLock::new());
    let starts = Starts::default();
    let instance = Instance::start("a", stubborn(&starts), &store, &lock).await;
    starts.wait_for(1).await;
    let took = instance.shut_down().await;
    // 20 s of shutdown grace, then 5 s of cancel grace before the run is dropped.
    assert_eq!(took, secs(25));
    let run = execution(&store, "stubborn@2026-01-01T01:00:00Z").await;
    assert_eq!(run.status, Status::Cancelled);
    assert_eq!(
        run.attempts, 1,
        "a run that did not hand back counts its attempt"
    );
}

#[tokio::test(start_paused = true)]
async fn an_execution_that_keeps_outlasting_shutdowns_fails_after_the_resume_allowance() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(InProcessLock::new());
    let starts = Starts::default();
    let id = "stubborn@2026-01-01T01:00:00Z";
    // One attempt, no retry: three resumptions are allowed, then it fails.
    for round in 1..=4 {
        let instance = Instance::start_with(
            &format!("i{round}"),
            stubborn(&starts),
            &store,
            &lock,
            |b| b.shutdown_grace(secs(1)).cancel_grace(secs(1)),
        )
        .await;
        starts.wait_for(round).await;
        instance.shut_down().await;
        assert_eq!(
            execution(&store, id).await.attempts,
            u32::try_from(round).unwrap()
        );
    }
    let last = Instance::start("i5", stubborn(&starts), &store, &lock).await;
    let deadline = Instant::now() + secs(60);
    while execution(&store, id).await.status != Status::Failed {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            execution(&store, id).await
        );
        sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(starts.get().len(), 4, "not run a fifth time");
    last.shut_down().await;
}

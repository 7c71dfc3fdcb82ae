//! The scheduler and executor on the embedded backends, under tokio's paused clock: ticks,
//! retries, timeouts, panics, overlap, misfires, clock jumps, shutdown, idempotency,
//! checkpoints, the watchdog and metrics.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicUsize, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, TimeZone, Utc};
use tickguard::{
    BoxFuture, CancelReason, Error, FailureReport, Job, JobContext, JobError, LockPolicy, Misfire,
    Overlap, RetryPolicy, Schedule, Scheduler, SchedulerBuilder,
    lock::{Acquired, InProcessLock, Lease, LockBackend, LockError},
    metrics as names,
    store::{ExecutionStore, JobRegistration, MemoryStore, Retention, Status},
    testing::{FaultyLock, FaultyStore, TestClock},
};
use tickguard_tests::Reports;
use tokio::time::{Instant, sleep};

/// Midnight, 1 January 2026: a multiple of every period the tests use, so `every(n)` ticks
/// fall at `t0 + k * n` (fixed rates are aligned on the Unix epoch).
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn every(s: u64) -> Schedule {
    Schedule::every(secs(s)).unwrap()
}

/// A scheduler on a test clock that starts at `t0`, with only the given jobs.
fn builder(clock: &TestClock) -> SchedulerBuilder {
    Scheduler::builder()
        .discover(false)
        .clock(clock.clone())
        .instance_id("test")
}

/// Runs the scheduler until `scenario` (sleeps and clock jumps) is over.
async fn run_scenario(builder: SchedulerBuilder, scenario: impl std::future::Future) {
    builder
        .build()
        .await
        .unwrap()
        .run_until(scenario)
        .await
        .unwrap();
}

async fn run_for(builder: SchedulerBuilder, d: Duration) {
    run_scenario(builder, sleep(d)).await;
}

/// Records the tick of every run, in order.
#[derive(Clone, Default)]
struct Ticks(Arc<Mutex<Vec<DateTime<Utc>>>>);

impl Ticks {
    fn push(&self, t: DateTime<Utc>) {
        self.0.lock().unwrap().push(t);
    }
    fn get(&self) -> Vec<DateTime<Utc>> {
        self.0.lock().unwrap().clone()
    }
}

fn seconds_after_t0(ticks: &[DateTime<Utc>]) -> Vec<i64> {
    ticks.iter().map(|t| (*t - t0()).num_seconds()).collect()
}

#[tokio::test(start_paused = true)]
async fn fires_every_tick_once_at_its_instant() {
    let clock = TestClock::new(t0());
    let ticks = Ticks::default();
    let seen = ticks.clone();
    let late = Arc::new(Mutex::new(Vec::new()));
    let (late2, clock2) = (late.clone(), clock.clone());
    let job = Job::new("every_second", every(1), move |ctx: JobContext| {
        seen.push(ctx.scheduled_at());
        late2
            .lock()
            .unwrap()
            .push(clock2.now() - ctx.scheduled_at());
        async { Ok(()) }
    });
    run_for(builder(&clock).job(job), Duration::from_millis(10_500)).await;
    assert_eq!(seconds_after_t0(&ticks.get()), (1..=10).collect::<Vec<_>>());
    for l in late.lock().unwrap().iter() {
        assert!(l.num_milliseconds() < 5, "started {l} late");
    }
}

#[tokio::test(start_paused = true)]
async fn cron_in_a_zone_fires_on_the_zone_wall_clock() {
    // 00:00:00 UTC is 01:00 in Berlin; "0 30 1 * * *" in Berlin is 00:30 UTC.
    let clock = TestClock::new(t0());
    let ticks = Ticks::default();
    let seen = ticks.clone();
    let schedule = Schedule::cron("0 30 1 * * *")
        .unwrap()
        .in_zone("Europe/Berlin")
        .unwrap();
    let job = Job::new("berlin", schedule, move |ctx: JobContext| {
        seen.push(ctx.scheduled_at());
        async { Ok(()) }
    });
    run_for(builder(&clock).job(job), secs(3600)).await;
    assert_eq!(
        ticks.get(),
        [Utc.with_ymd_and_hms(2026, 1, 1, 0, 30, 0).unwrap()]
    );
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_with_exponential_backoff() {
    let m = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let seen = attempts.clone();
    let started = Instant::now();
    let job = Job::new("retry_backoff", every(100), move |ctx: JobContext| {
        seen.lock()
            .unwrap()
            .push((ctx.attempt(), started.elapsed().as_secs()));
        let attempt = ctx.attempt();
        async move {
            if attempt < 4 {
                Err(std::io::Error::other("connection reset"))?;
            }
            Ok(())
        }
    })
    .retry(
        RetryPolicy::attempts(5)
            .backoff(secs(1))
            .factor(2.0)
            .max_delay(secs(3)),
    );
    run_for(builder(&clock).job(job), secs(150)).await;
    // Fired at 100 s; retries after 1 s, 2 s, then 3 s (capped).
    assert_eq!(
        *attempts.lock().unwrap(),
        [(1, 100), (2, 101), (3, 103), (4, 106)]
    );
    let job = [("job", "retry_backoff")];
    assert_eq!(m.counter(names::RETRIES_TOTAL, &job), 3);
    assert_eq!(
        m.counter(
            names::EXECUTIONS_TOTAL,
            &[("job", "retry_backoff"), ("outcome", "success")]
        ),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried_and_reach_the_failure_hooks() {
    let clock = TestClock::new(t0());
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let (job_reports, global_reports) = (Reports::default(), Reports::default());
    let job = Job::new("permanent", every(10), move |_ctx: JobContext| {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            let parsed: Result<u32, _> = "x".parse::<u32>();
            parsed.map_err(JobError::permanent)?;
            Ok(())
        }
    })
    .retry(RetryPolicy::attempts(5))
    .on_failure(job_reports.hook());
    let hook = global_reports.hook();
    let b = builder(&clock).job(job).on_failure(hook);
    run_for(b, secs(15)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    for reports in [job_reports.get(), global_reports.get()] {
        let [report] = reports.as_slice() else {
            panic!("one report expected: {reports:?}")
        };
        assert_eq!(report.job, "permanent");
        assert_eq!(report.attempts, 1);
        assert_eq!(report.outcome, "failure");
        assert_eq!(report.scheduled_at, t0() + chrono::Duration::seconds(10));
        assert_eq!(report.error_chain, ["invalid digit found in string"]);
    }
}

#[tokio::test(start_paused = true)]
async fn retry_predicate_decides_for_transient_errors() {
    fn only_timeouts(e: &JobError) -> bool {
        e.to_string().contains("timeout")
    }
    let clock = TestClock::new(t0());
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let job = Job::new("predicate", every(10), move |_ctx: JobContext| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            Err(JobError::transient(if n == 0 {
                "timeout talking to the API"
            } else {
                "HTTP 401"
            }))
        }
    })
    .retry(RetryPolicy::attempts(5).when(only_timeouts));
    run_for(builder(&clock).job(job), secs(15)).await;
    // The timeout was retried, the 401 was not.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn timeout_cancels_through_the_context_and_is_recorded() {
    let m = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let job = Job::new("times_out", every(100), move |ctx: JobContext| {
        let seen = seen.clone();
        async move {
            ctx.cancelled().await;
            seen.lock().unwrap().push(ctx.cancel_reason());
            Err(JobError::transient("stopped"))
        }
    })
    .timeout(secs(5))
    .retry(RetryPolicy::attempts(3));
    run_for(builder(&clock).job(job).store(store.clone()), secs(150)).await;
    assert_eq!(*reasons.lock().unwrap(), [Some(CancelReason::Timeout)]);
    let runs = store.executions("times_out", 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, Status::TimedOut);
    assert_eq!(runs[0].attempts, 1, "no retry after the timeout");
    assert_eq!(
        m.counter(
            names::EXECUTIONS_TOTAL,
            &[("job", "times_out"), ("outcome", "timeout")]
        ),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_that_ignores_cancellation_is_dropped_after_the_grace_period() {
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let finished = Arc::new(AtomicU32::new(0));
    let done = finished.clone();
    let job = Job::new("stubborn", every(100), move |_ctx: JobContext| {
        let done = done.clone();
        async move {
            sleep(secs(3600)).await;
            done.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    })
    .timeout(secs(5));
    let reports = Reports::default();
    let b = builder(&clock)
        .job(job.on_failure(reports.hook()))
        .store(store.clone())
        .cancel_grace(secs(2));
    let scheduler = b.build().await.unwrap();
    let (store2, reports2) = (store.clone(), reports.clone());
    let check = async move {
        sleep(secs(100 + 5 + 2 + 1)).await;
        let runs = store2.executions("stubborn", 10).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, Status::TimedOut);
        let r = reports2.get();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].outcome, "timeout");
        assert_eq!(r[0].duration, secs(7), "timeout 5 s + grace 2 s");
    };
    scheduler.run_until(check).await.unwrap();
    assert_eq!(finished.load(Ordering::SeqCst), 0, "the future was dropped");
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_a_recorded_failure_and_the_scheduler_keeps_running() {
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let job = Job::new("panics", every(10), move |_ctx: JobContext| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                panic!("index out of bounds in batch 7");
            }
            Ok(())
        }
    })
    .retry(RetryPolicy::attempts(3));
    run_for(builder(&clock).job(job).store(store.clone()), secs(25)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "not retried; next tick ran"
    );
    let runs = store.executions("panics", 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].status, Status::Completed);
    assert_eq!(runs[1].status, Status::Failed);
    assert_eq!(
        runs[1].error.as_deref(),
        Some("job panicked: index out of bounds in batch 7")
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_still_in_progress_is_not_started_twice() {
    let m = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let starts = Arc::new(AtomicUsize::new(0));
    let (r, mx, st) = (running.clone(), most.clone(), starts.clone());
    let job = Job::new("slow", every(1), move |_ctx: JobContext| {
        let (r, mx) = (r.clone(), mx.clone());
        st.fetch_add(1, Ordering::SeqCst);
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            mx.fetch_max(now, Ordering::SeqCst);
            sleep(Duration::from_millis(2500)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    });
    run_for(builder(&clock).job(job), Duration::from_millis(9_500)).await;
    assert_eq!(most.load(Ordering::SeqCst), 1);
    // Ticks 1..=9: runs start at 1, 4, 7; the six ticks between are skipped.
    assert_eq!(starts.load(Ordering::SeqCst), 3);
    assert_eq!(
        m.counter(
            names::SKIPS_TOTAL,
            &[("job", "slow"), ("reason", "overlap")]
        ),
        6
    );
}

#[tokio::test(start_paused = true)]
async fn under_run_all_the_ticks_a_run_outlasted_run_next() {
    let clock = TestClock::new(t0());
    let ticks = Ticks::default();
    let t = ticks.clone();
    let job = Job::new("slow_all", every(1), move |ctx: JobContext| {
        let first = t.get().is_empty();
        t.push(ctx.scheduled_at());
        async move {
            if first {
                sleep(Duration::from_millis(2_500)).await;
            }
            Ok(())
        }
    })
    .misfire(Misfire::RunAll);
    run_for(builder(&clock).job(job), Duration::from_millis(5_500)).await;
    // Tick 1 runs until 3.5 s; ticks 2 and 3, which it outlasted, run right after, in order.
    assert_eq!(seconds_after_t0(&ticks.get()), [1, 2, 3, 4, 5]);
}

/// A run's tick, fence and start.
type Run = (DateTime<Utc>, u64, Instant);

/// An owner died 2 s before tick 10, right after it claimed tick 1 (late). Tick 10 finds the
/// job busy, asks again after one liveness, when the owner is proven gone, and runs (late);
/// the dead owner's execution is then resumed by the recovery task.
#[tokio::test(start_paused = true)]
async fn a_dead_owner_delays_the_next_tick_by_one_liveness_and_is_resumed() {
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let liveness = Duration::from_secs(3);
    let tick1 = t0() + chrono::Duration::seconds(1);
    let ghost_id = format!(
        "resumed@{}",
        tick1.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    let runs: Arc<Mutex<Vec<Run>>> = Arc::default();
    let r = runs.clone();
    let job = Job::new("resumed", every(10), move |ctx: JobContext| {
        r.lock()
            .unwrap()
            .push((ctx.scheduled_at(), ctx.fence(), Instant::now()));
        async { Ok(()) }
    })
    .idempotent();
    let started = Instant::now();
    let (s, c) = (store.clone(), clock.clone());
    let scenario = async move {
        sleep(Duration::from_secs(8)).await;
        // The ghost claims tick 1 with the deployment's liveness, then is never heard of.
        let request = tickguard::store::ClaimRequest::new("resumed", &ghost_id, tick1, "ghost")
            .liveness(liveness);
        assert!(matches!(
            s.claim(&request).await.unwrap(),
            tickguard::store::Claim::Acquired(_)
        ));
        let _ = c;
        sleep(Duration::from_secs(8)).await;
    };
    run_scenario(
        builder(&clock)
            .store(store.clone())
            .liveness(liveness)
            .job(job),
        scenario,
    )
    .await;
    let runs = runs.lock().unwrap().clone();
    let ticks: Vec<i64> = runs
        .iter()
        .map(|(t, _, _)| (*t - t0()).num_seconds())
        .collect();
    // Tick 10 waits until the ghost's liveness ran out (3 s after its claim at 8 s), as
    // found by the recovery or control task's next look, and at most 1.1 liveness (3.3 s);
    // tick 1 is resumed soon after.
    assert_eq!(ticks, [10, 1], "{runs:?}");
    let late = runs[0].2 - started;
    assert!(
        late >= Duration::from_millis(11_000) && late < Duration::from_millis(13_400),
        "tick 10 ran {late:?} after start"
    );
    let records = store.executions("resumed", 10).await.unwrap();
    assert!(
        records.iter().all(|r| r.status == Status::Completed),
        "{records:#?}"
    );
}

/// Runs a job on `every(1)` for 3.5 s, suspends the wall clock's view by jumping it
/// 10 s forward (as after a laptop sleep or SIGSTOP), and runs 2 s more.
async fn misfire_run(name: &'static str, policy: Misfire) -> (Vec<i64>, u64) {
    let m = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let ticks = Ticks::default();
    let seen = ticks.clone();
    let job = Job::new(name, every(1), move |ctx: JobContext| {
        seen.push(ctx.scheduled_at());
        async { Ok(()) }
    })
    .misfire(policy);
    let jump = clock.clone();
    let scenario = async move {
        sleep(Duration::from_millis(3_500)).await;
        jump.jump(chrono::Duration::seconds(10));
        sleep(secs(2)).await;
    };
    run_scenario(
        builder(&clock)
            .job(job)
            .misfire_threshold(Duration::from_millis(500)),
        scenario,
    )
    .await;
    let skips = m.counter(names::SKIPS_TOTAL, &[("job", name), ("reason", "misfire")]);
    (seconds_after_t0(&ticks.get()), skips)
}

#[tokio::test(start_paused = true)]
async fn missed_ticks_follow_the_misfire_policy() {
    // Wall clock: runs at 1, 2, 3; at 3.5 it jumps to 13.5; the wake-up meant for 4 sees
    // 14.0, so ticks 4..=13 were missed and 14 is on time; then 15.
    let (ticks, skips) = misfire_run("misfire_run_once", Misfire::RunOnce).await;
    assert_eq!(ticks, [1, 2, 3, 14, 15]);
    assert_eq!(skips, 10);

    let (ticks, skips) = misfire_run("misfire_skip", Misfire::Skip).await;
    assert_eq!(ticks, [1, 2, 3, 14, 15]);
    assert_eq!(skips, 10);

    let (ticks, skips) = misfire_run("misfire_run_all", Misfire::RunAll).await;
    assert_eq!(ticks, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    assert_eq!(skips, 0);
}

#[tokio::test(start_paused = true)]
async fn a_late_tick_is_run_once_or_skipped_by_policy() {
    // A daily job whose process was suspended across its tick by 2 hours: run_once runs
    // it late, skip does not.
    for (name, policy, expected) in [
        ("late_run_once", Misfire::RunOnce, 1),
        ("late_skip", Misfire::Skip, 0),
    ] {
        let clock = TestClock::new(t0() + chrono::Duration::hours(23));
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let job = Job::new(
            name,
            Schedule::cron("@daily").unwrap(),
            move |_ctx: JobContext| {
                counted.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            },
        )
        .misfire(policy);
        let jump = clock.clone();
        let scenario = async move {
            sleep(secs(1800)).await;
            jump.jump(chrono::Duration::hours(2)); // now 01:30 the next day
            sleep(secs(120)).await;
        };
        run_scenario(builder(&clock).job(job), scenario).await;
        assert_eq!(runs.load(Ordering::SeqCst), expected, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_clock_set_back_neither_fires_early_nor_fires_twice() {
    let clock = TestClock::new(t0());
    let ticks = Ticks::default();
    let seen = ticks.clone();
    let job = Job::new("clock_back", every(1), move |ctx: JobContext| {
        seen.push(ctx.scheduled_at());
        async { Ok(()) }
    });
    let jump = clock.clone();
    let scenario = async move {
        sleep(Duration::from_millis(5_500)).await;
        jump.jump(chrono::Duration::seconds(-3)); // wall clock reads 2.5 s again
        sleep(secs(6)).await;
    };
    run_scenario(builder(&clock).job(job), scenario).await;
    // 1..=5 before the jump; the wall clock then re-reads 3, 4, 5 (already fired) and
    // fires 6, 7, 8 when it reaches them: no tick twice, none early.
    assert_eq!(seconds_after_t0(&ticks.get()), [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_firing_and_waits_for_running_jobs() {
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let job = Job::new("drains", every(1), |_ctx: JobContext| async {
        sleep(secs(3)).await;
        Ok(())
    });
    let started = Instant::now();
    builder(&clock)
        .job(job)
        .store(store.clone())
        .run_until_for(Duration::from_millis(1_500))
        .await;
    // Stopped firing at 1.5 s; the run started at 1 s finished at 4 s.
    assert_eq!(started.elapsed(), secs(4));
    let runs = store.executions("drains", 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, Status::Completed);
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_runs_that_outlast_the_grace_period() {
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let job = Job::new("outlasts", every(1), move |ctx: JobContext| {
        let seen = seen.clone();
        async move {
            tokio::select! {
                () = ctx.cancelled() => {
                    seen.lock().unwrap().push(ctx.cancel_reason());
                    Err(JobError::transient("interrupted"))
                }
                () = sleep(secs(3600)) => Ok(()),
            }
        }
    });
    let started = Instant::now();
    builder(&clock)
        .job(job)
        .store(store.clone())
        .shutdown_grace(secs(2))
        .run_until_for(Duration::from_millis(1_500))
        .await;
    assert_eq!(started.elapsed(), Duration::from_millis(3_500));
    assert_eq!(*reasons.lock().unwrap(), [Some(CancelReason::Shutdown)]);
    let runs = store.executions("outlasts", 10).await.unwrap();
    assert_eq!(runs[0].status, Status::Cancelled);
}

trait RunFor {
    async fn run_until_for(self, d: Duration);
}

impl RunFor for SchedulerBuilder {
    async fn run_until_for(self, d: Duration) {
        run_for(self, d).await;
    }
}

#[tokio::test(start_paused = true)]
async fn idempotent_ticks_complete_once_across_instances() {
    let m = tickguard_tests::metrics();
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(InProcessLock::new());
    let effects = Arc::new(Mutex::new(Vec::new()));
    let mut instances = Vec::new();
    for i in 0..3 {
        let clock = TestClock::new(t0());
        let seen = effects.clone();
        let job = Job::new("charge", every(1), move |ctx: JobContext| {
            seen.lock().unwrap().push(ctx.scheduled_at());
            async { Ok(()) }
        })
        .idempotent();
        // Instance 0 runs without the lock: the store alone must keep ticks single.
        let b = builder(&clock)
            .instance_id(format!("instance-{i}"))
            .job(job)
            .store(store.clone())
            .lock_backend(lock.clone());
        instances.push(b.run_until_for(Duration::from_millis(5_500)));
    }
    futures_join_concurrently(instances).await;
    let mut ticks = effects.lock().unwrap().clone();
    ticks.sort();
    assert_eq!(
        seconds_after_t0(&ticks),
        [1, 2, 3, 4, 5],
        "one effect per tick"
    );
    let skipped = m.counter(
        names::SKIPS_TOTAL,
        &[("job", "charge"), ("reason", "duplicate")],
    ) + m.counter(
        names::SKIPS_TOTAL,
        &[("job", "charge"), ("reason", "overlap")],
    );
    assert_eq!(skipped, 10, "two skips per tick");
}

#[tokio::test(start_paused = true)]
async fn a_lock_keeps_a_tick_to_one_instance() {
    let m = tickguard_tests::metrics();
    let lock = Arc::new(InProcessLock::new());
    let runs = Arc::new(AtomicU32::new(0));
    let mut instances = Vec::new();
    for i in 0..3 {
        let clock = TestClock::new(t0());
        let counted = runs.clone();
        let job = Job::new("locked", every(10), move |_ctx: JobContext| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .lock(LockPolicy::new(secs(30)).at_least(secs(5)));
        instances.push(
            builder(&clock)
                .instance_id(format!("instance-{i}"))
                .job(job)
                .lock_backend(lock.clone())
                .run_until_for(secs(35)),
        );
    }
    futures_join_concurrently(instances).await;
    assert_eq!(runs.load(Ordering::SeqCst), 3, "ticks 10, 20, 30 once each");
    assert_eq!(
        m.counter(
            names::SKIPS_TOTAL,
            &[("job", "locked"), ("reason", "locked")]
        ),
        6
    );
}

async fn futures_join_concurrently<F>(all: Vec<F>)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let handles: Vec<_> = all.into_iter().map(tokio::spawn).collect();
    for h in handles {
        h.await.unwrap();
    }
}

/// Wraps a lock backend and makes renewals fail (unreachable) after the first `ok` ones.
struct FlakyRenewals {
    inner: InProcessLock,
    ok: u32,
    extends: AtomicU32,
    /// After the first `ok` renewals, hang instead of failing (a partitioned backend).
    hang: bool,
}

impl LockBackend for FlakyRenewals {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Acquired, LockError>> {
        self.inner.acquire(name, owner, ttl)
    }
    fn extend<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>> {
        if self.extends.fetch_add(1, Ordering::SeqCst) < self.ok {
            self.inner.extend(lease, ttl)
        } else if self.hang {
            Box::pin(std::future::pending())
        } else {
            Box::pin(async { Err(LockError::new("connection refused")) })
        }
    }
    fn release<'a>(
        &'a self,
        lease: &'a Lease,
        hold_for: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>> {
        self.inner.release(lease, hold_for)
    }
    fn describe(&self) -> String {
        "flaky".to_owned()
    }
}

#[tokio::test(start_paused = true)]
async fn the_watchdog_renews_the_lease_while_a_long_job_runs() {
    let clock = TestClock::new(t0());
    let lock = Arc::new(FlakyRenewals {
        inner: InProcessLock::new(),
        ok: u32::MAX,
        extends: AtomicU32::new(0),
        hang: false,
    });
    let store = Arc::new(MemoryStore::new());
    let job = Job::new("long", every(400), |_ctx: JobContext| async {
        sleep(secs(85)).await; // nearly three times the ttl, off the renewal instants
        Ok(())
    })
    .lock(LockPolicy::new(secs(30)));
    let other = lock.clone();
    let probe = async move {
        sleep(secs(400 + 80)).await;
        // Another owner is refused 80 s into a job whose lease is 30 s.
        let refused = other
            .acquire("long", "intruder", secs(30))
            .await
            .unwrap()
            .lease();
        assert!(refused.is_none());
        sleep(secs(20)).await;
    };
    run_scenario(
        builder(&clock)
            .job(job)
            .store(store.clone())
            .lock_backend(lock.clone()),
        probe,
    )
    .await;
    // Renewed every 10 s while it ran: at 10, 20, ..., 80 s.
    assert_eq!(lock.extends.load(Ordering::SeqCst), 8);
    let runs = store.executions("long", 10).await.unwrap();
    assert_eq!(runs[0].status, Status::Completed);
}

#[tokio::test(start_paused = true)]
async fn a_lease_that_cannot_be_renewed_cancels_the_run_before_it_expires() {
    let m = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let lock = Arc::new(FlakyRenewals {
        inner: InProcessLock::new(),
        ok: 1,
        extends: AtomicU32::new(0),
        hang: false,
    });
    let store = Arc::new(MemoryStore::new());
    let reports = Reports::default();
    let stopped_at = Arc::new(Mutex::new(None));
    let seen = stopped_at.clone();
    let job = Job::new("loses_lock", every(400), move |ctx: JobContext| {
        let seen = seen.clone();
        async move {
            let start = Instant::now();
            // Ignores cancellation: the executor must drop it anyway.
            let _ = ctx;
            sleep(secs(600)).await;
            *seen.lock().unwrap() = Some(start.elapsed());
            Ok(())
        }
    })
    .lock(LockPolicy::new(secs(30)))
    .on_failure(reports.hook());
    let other = lock.clone();
    let probe = async move {
        sleep(secs(400 + 60)).await;
        // The lease expired at 40 s (renewed once at 10 s): another instance can take it.
        let taken = other
            .inner
            .acquire("loses_lock", "intruder", secs(30))
            .await
            .unwrap()
            .lease();
        assert!(taken.is_some());
    };
    run_scenario(
        builder(&clock)
            .job(job)
            .store(store.clone())
            .lock_backend(lock.clone())
            .cancel_grace(secs(30)),
        probe,
    )
    .await;
    assert_eq!(*stopped_at.lock().unwrap(), None, "the job never finished");
    let runs = store.executions("loses_lock", 10).await.unwrap();
    assert_eq!(runs[0].status, Status::Cancelled);
    assert_eq!(
        m.counter(names::LOCK_LOST_TOTAL, &[("job", "loses_lock")]),
        1
    );
    let r = reports.get();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].outcome, "cancelled");
    // Last proven renewal at 10 s, valid until 40 s: cancelled at 30 s, dropped at the
    // latest 10 s later, when the lease expires, never after, although the cancel grace
    // is 30 s.
    assert_eq!(
        r[0].duration,
        secs(40),
        "ran while the lease could not be proven"
    );
}

#[tokio::test(start_paused = true)]
async fn checkpoints_carry_progress_across_attempts_and_once_runs_a_step_once() {
    let clock = TestClock::new(t0());
    let charges = Arc::new(Mutex::new(Vec::new()));
    let resumed_from = Arc::new(Mutex::new(Vec::new()));
    let (c, r) = (charges.clone(), resumed_from.clone());
    let job = Job::new("batch", every(100), move |ctx: JobContext| {
        let (charges, resumed_from) = (c.clone(), r.clone());
        async move {
            let start: u32 = ctx.last_checkpoint().await?.unwrap_or(0);
            resumed_from.lock().unwrap().push(start);
            for record in start..10 {
                let key = format!("charge-{record}");
                ctx.once(&key, async {
                    charges.lock().unwrap().push(record);
                    Ok(())
                })
                .await?;
                // Crash at record 8 on the first attempt, after its charge but before its
                // checkpoint: the retry resumes at 8 and `once` does not charge it again.
                if record == 8 && ctx.attempt() == 1 {
                    return Err(JobError::transient("connection lost at record 8"));
                }
                ctx.checkpoint(&(record + 1)).await?;
            }
            Ok(())
        }
    })
    .idempotent()
    .retry(RetryPolicy::attempts(2).backoff(secs(1)));
    run_for(builder(&clock).job(job), secs(150)).await;
    assert_eq!(*resumed_from.lock().unwrap(), [0, 8]);
    assert_eq!(*charges.lock().unwrap(), (0..10).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn context_reports_its_execution() {
    let clock = TestClock::new(t0());
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    let job = Job::new("introspect", every(10), move |ctx: JobContext| {
        *s.lock().unwrap() = Some((
            ctx.job().to_owned(),
            ctx.execution_id().to_owned(),
            ctx.attempt(),
            ctx.fence(),
            ctx.instance_id().to_owned(),
            ctx.idempotency_key("order-7"),
        ));
        async { Ok(()) }
    })
    .idempotent_key("introspect-{datetime}")
    .unwrap();
    run_for(builder(&clock).job(job), secs(15)).await;
    let (job, id, attempt, fence, instance, key) = seen.lock().unwrap().clone().unwrap();
    assert_eq!(job, "introspect");
    assert_eq!(id, "introspect-2026-01-01T00:00:10+00:00");
    assert_eq!(attempt, 1);
    assert_eq!(fence, 1);
    assert_eq!(instance, "test");
    assert_eq!(key, "introspect-2026-01-01T00:00:10+00:00/order-7");
}

#[tokio::test]
async fn invalid_jobs_and_duplicate_names_fail_at_build() {
    let ok = |_ctx: JobContext| async { Ok(()) };
    let e = Scheduler::builder()
        .discover(false)
        .job(Job::new("a", every(1), ok).lock(LockPolicy::new(secs(10)).at_least(secs(20))))
        .build()
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::InvalidJob { .. }), "{e}");
    assert!(e.to_string().contains("at_least"), "{e}");

    let e = Scheduler::builder()
        .discover(false)
        .job(Job::new("twice", every(1), ok))
        .job(Job::new("twice", every(2), ok))
        .build()
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::DuplicateJob { .. }), "{e}");

    let e = Scheduler::builder()
        .discover(false)
        .job(Job::new("zero", every(1), ok).retry(RetryPolicy::attempts(0)))
        .build()
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("attempts"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn metrics_cover_every_step() {
    let m = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let job = Job::new("observed", every(1), |_ctx: JobContext| async { Ok(()) })
        .lock(LockPolicy::new(secs(10)));
    run_for(builder(&clock).job(job), Duration::from_millis(3_500)).await;
    let job = [("job", "observed")];
    assert_eq!(
        m.counter(
            names::EXECUTIONS_TOTAL,
            &[("job", "observed"), ("outcome", "success")]
        ),
        3
    );
    assert_eq!(m.histogram_count(names::EXECUTION_DURATION, &job), 3);
    assert_eq!(m.histogram_count(names::LOCK_ACQUIRE_DURATION, &job), 3);
    assert_eq!(m.histogram_count(names::LOCK_HELD_DURATION, &job), 3);
    assert_eq!(m.histogram_count(names::FIRE_LATENESS, &job), 3);
}

#[tokio::test(start_paused = true)]
async fn jitter_delays_each_run_within_its_bound() {
    let clock = TestClock::new(t0());
    let delays = Arc::new(Mutex::new(Vec::new()));
    let (seen, now) = (delays.clone(), clock.clone());
    let job = Job::new("jittered", every(10), move |ctx: JobContext| {
        seen.lock().unwrap().push(now.now() - ctx.scheduled_at());
        async { Ok(()) }
    })
    .jitter(secs(5));
    run_for(builder(&clock).job(job), secs(205)).await;
    let delays = delays.lock().unwrap().clone();
    assert_eq!(delays.len(), 20);
    assert!(
        delays
            .iter()
            .all(|d| *d >= chrono::Duration::zero() && *d < chrono::Duration::seconds(5)),
        "{delays:?}"
    );
    let distinct: std::collections::HashSet<_> = delays.iter().collect();
    assert!(distinct.len() > 10, "delays vary by tick: {delays:?}");
}

/// Records when each instance asked for a lease (the owner names the instance), in front of
/// an in-process lock.
struct AcquireTimes {
    inner: InProcessLock,
    clock: TestClock,
    asked: Mutex<Vec<(String, chrono::DateTime<chrono::Utc>)>>,
}

impl LockBackend for AcquireTimes {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Acquired, LockError>> {
        let instance = owner.split('#').next().unwrap_or(owner).to_owned();
        self.asked
            .lock()
            .unwrap()
            .push((instance, self.clock.now()));
        self.inner.acquire(name, owner, ttl)
    }
    fn extend<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>> {
        self.inner.extend(lease, ttl)
    }
    fn release<'a>(
        &'a self,
        lease: &'a Lease,
        hold_for: Duration,
    ) -> BoxFuture<'a, Result<bool, LockError>> {
        self.inner.release(lease, hold_for)
    }
    fn describe(&self) -> String {
        "acquire-times".to_owned()
    }
}

/// Three instances of a jittered job ask for its lock at the same instant for each tick (the
/// delay comes from the job and the tick, not from each process's randomness), one runs it,
/// and the instant moves from tick to tick within the jitter.
#[tokio::test(start_paused = true)]
async fn instances_compute_the_same_jitter_and_reach_the_lock_together() {
    let clock = TestClock::new(t0());
    let lock = Arc::new(AcquireTimes {
        inner: InProcessLock::new(),
        clock: clock.clone(),
        asked: Mutex::new(Vec::new()),
    });
    let store = Arc::new(MemoryStore::new());
    let ticks = Ticks::default();
    let mut instances = Vec::new();
    for i in 0..3 {
        let seen = ticks.clone();
        let job = Job::new("jittered_cluster", every(10), move |ctx: JobContext| {
            seen.push(ctx.scheduled_at());
            async { Ok(()) }
        })
        .idempotent()
        .lock(LockPolicy::new(secs(30)))
        .jitter(secs(8));
        instances.push(
            builder(&clock)
                .instance_id(format!("instance-{i}"))
                .job(job)
                .store(store.clone())
                .lock_backend(lock.clone())
                .run_until_for(secs(109)),
        );
    }
    futures_join_concurrently(instances).await;
    assert_eq!(
        seconds_after_t0(&ticks.get()),
        [10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
        "each tick once"
    );
    let asked = lock.asked.lock().unwrap().clone();
    let mut by_tick: std::collections::BTreeMap<i64, Vec<(String, chrono::Duration)>> =
        Default::default();
    for (instance, at) in asked {
        let offset = at - t0();
        let tick = offset.num_seconds() / 10 * 10;
        by_tick
            .entry(tick)
            .or_default()
            .push((instance, offset - chrono::Duration::seconds(tick)));
    }
    assert_eq!(by_tick.len(), 10, "{by_tick:?}");
    let mut delays = std::collections::HashSet::new();
    for (tick, asks) in &by_tick {
        let instances: std::collections::HashSet<_> = asks.iter().map(|(i, _)| i).collect();
        assert_eq!(instances.len(), 3, "tick {tick}: {asks:?}");
        assert!(
            asks.iter().all(|(_, delay)| *delay == asks[0].1),
            "tick {tick}: the instances asked at different instants: {asks:?}"
        );
        assert!(asks[0].1 < chrono::Duration::seconds(8), "{asks:?}");
        delays.insert(asks[0].1);
    }
    assert!(delays.len() > 5, "the delay varies by tick: {delays:?}");
}

/// Runs a job that ignores cancellation under a lease whose renewals fail after the first;
/// returns how long the run lasted (from its failure report).
async fn lease_loss_run(
    name: &'static str,
    hang: bool,
    timeout: Option<Duration>,
    cancel_grace: Duration,
) -> (FailureReport, Duration) {
    let clock = TestClock::new(t0());
    let told = Arc::new(Mutex::new(None));
    let told2 = told.clone();
    let lock = Arc::new(FlakyRenewals {
        inner: InProcessLock::new(),
        ok: 1,
        extends: AtomicU32::new(0),
        hang,
    });
    let reports = Reports::default();
    let mut job = Job::new(name, every(400), move |ctx: JobContext| {
        let told = told2.clone();
        async move {
            let start = Instant::now();
            ctx.cancelled().await;
            *told.lock().unwrap() = Some(start.elapsed());
            // Then ignores it: the executor must drop the run in time anyway.
            sleep(secs(600)).await;
            Ok(())
        }
    })
    .lock(LockPolicy::new(secs(30)))
    .on_failure(reports.hook());
    if let Some(t) = timeout {
        job = job.timeout(t);
    }
    builder(&clock)
        .job(job)
        .lock_backend(lock)
        .cancel_grace(cancel_grace)
        .run_until_for(secs(400 + 200))
        .await;
    let r = reports.get();
    assert_eq!(r.len(), 1, "{r:?}");
    let told = told
        .lock()
        .unwrap()
        .expect("the run was never told to stop");
    (r[0].clone(), told)
}

#[tokio::test(start_paused = true)]
async fn a_hung_renewal_still_stops_the_run_before_the_lease_expires() {
    // Renewed at 10 s (valid until 40 s); the next renewal hangs. The watchdog must not wait
    // for it: cancelled at 30 s, dropped by 40 s.
    let (r, told) = lease_loss_run("hung_renewal", true, None, secs(60)).await;
    assert_eq!(r.outcome, "cancelled");
    assert_eq!(
        told,
        secs(30),
        "told to stop when the lease could no longer be proven"
    );
    assert!(
        r.duration <= secs(40),
        "ran {:?} on a lease valid for 40 s",
        r.duration
    );
}

#[tokio::test(start_paused = true)]
async fn a_lock_lost_after_a_timeout_still_bounds_the_grace_period() {
    // Timed out at 1 s with a 60 s cancel grace; the lease, renewed once, is valid until
    // 40 s: the run must be gone by then, not at 61 s.
    let (r, told) = lease_loss_run("timeout_then_lock_lost", false, Some(secs(1)), secs(60)).await;
    assert_eq!(told, secs(1), "told to stop by the timeout");
    assert!(
        r.duration <= secs(40),
        "ran {:?} on a lease valid for 40 s",
        r.duration
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_whose_store_stops_answering_is_stopped_before_its_owner_counts_as_gone() {
    let clock = TestClock::new(t0());
    let store = Arc::new(FaultyStore::in_memory());
    store.hang_heartbeats();
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let started = Arc::new(Mutex::new(None));
    let (st, clock2) = (started.clone(), clock.clone());
    let job = Job::new("store_gone", every(400), move |ctx: JobContext| {
        let seen = seen.clone();
        *st.lock().unwrap() = Some(clock2.now());
        async move {
            ctx.cancelled().await;
            seen.lock()
                .unwrap()
                .push((ctx.cancel_reason(), Instant::now()));
            Err(JobError::transient("stopped"))
        }
    });
    let t_start = Instant::now();
    builder(&clock)
        .job(job)
        .store(store.clone())
        .liveness(secs(30))
        .run_until_for(secs(400 + 100))
        .await;
    let reasons = reasons.lock().unwrap().clone();
    assert_eq!(reasons.len(), 1);
    assert_eq!(reasons[0].0, Some(CancelReason::StoreUnreachable));
    // Claimed at 400 s; another instance counts the owner gone at 430 s; the run was told
    // at 420 s.
    assert_eq!(reasons[0].1 - t_start, secs(420));
}

#[tokio::test(start_paused = true)]
async fn a_failed_tick_is_not_run_again_by_other_instances() {
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(InProcessLock::new());
    let runs = Arc::new(AtomicU32::new(0));
    let mut instances = Vec::new();
    for i in 0..3 {
        let clock = TestClock::new(t0());
        let counted = runs.clone();
        let job = Job::new("fails_once_per_tick", every(10), move |_ctx: JobContext| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Err(JobError::permanent("bad input")) }
        })
        .idempotent()
        .lock(LockPolicy::new(secs(30)))
        .jitter(Duration::from_millis(500));
        instances.push(
            builder(&clock)
                .instance_id(format!("instance-{i}"))
                .job(job)
                .store(store.clone())
                .lock_backend(lock.clone())
                .run_until_for(secs(35)),
        );
    }
    futures_join_concurrently(instances).await;
    assert_eq!(runs.load(Ordering::SeqCst), 3, "ticks 10, 20, 30 once each");
}

#[tokio::test(start_paused = true)]
async fn catch_up_runs_are_not_locked_out_by_their_own_at_least() {
    let clock = TestClock::new(t0());
    let ticks = Ticks::default();
    let seen = ticks.clone();
    let job = Job::new("catch_up_at_least", every(10), move |ctx: JobContext| {
        seen.push(ctx.scheduled_at());
        async { Ok(()) }
    })
    .lock(LockPolicy::new(secs(30)).at_least(secs(5)))
    .misfire(Misfire::RunAll);
    let jump = clock.clone();
    let scenario = async move {
        sleep(secs(5)).await;
        jump.jump(chrono::Duration::seconds(50)); // wall clock 55 s: ticks 10..=50 due
        sleep(secs(10)).await;
    };
    run_scenario(builder(&clock).job(job), scenario).await;
    assert_eq!(seconds_after_t0(&ticks.get()), [10, 20, 30, 40, 50, 60]);
}

#[tokio::test(start_paused = true)]
async fn jitter_does_not_start_a_run_after_shutdown_began() {
    let clock = TestClock::new(t0());
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let job = Job::new("jitter_shutdown", every(10), move |_ctx: JobContext| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }
    })
    .jitter(secs(1000));
    builder(&clock)
        .job(job)
        .run_until_for(Duration::from_millis(10_001))
        .await;
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn absurd_durations_are_refused_at_build() {
    let ok = |_ctx: JobContext| async { Ok(()) };
    let e = Scheduler::builder()
        .discover(false)
        .job(Job::new("forever", every(1), ok).timeout(Duration::MAX))
        .build()
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("timeout"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_claim_the_store_refuses_briefly_is_asked_again_and_the_tick_runs() {
    let m = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let store = Arc::new(FaultyStore::in_memory());
    store.fail_next_claims(3);
    let ticks = Ticks::default();
    let t = ticks.clone();
    let job = Job::new("blip", every(5), move |ctx: JobContext| {
        t.push(ctx.scheduled_at());
        async { Ok(()) }
    })
    .idempotent();
    run_for(
        builder(&clock).store(store.clone()).job(job),
        Duration::from_millis(5_900),
    )
    .await;
    // Three refusals (100 + 200 + 400 ms of backoff), then the claim of tick 5 is made.
    assert_eq!(seconds_after_t0(&ticks.get()), [5]);
    let unavailable = m.counter(
        names::SKIPS_TOTAL,
        &[("job", "blip"), ("reason", "unavailable")],
    );
    assert_eq!(unavailable, 0);
    // A store down for longer than the claim's own backoff: the tick is tried again (with
    // jittered backoff) and runs, late, once the store answers; nothing is counted lost.
    store.fail_next_claims(10);
    let ticks = Ticks::default();
    let t = ticks.clone();
    let job = Job::new("longer", every(5), move |ctx: JobContext| {
        t.push(ctx.scheduled_at());
        async { Ok(()) }
    })
    .idempotent();
    run_for(
        builder(&clock).store(store.clone()).job(job),
        Duration::from_millis(9_000),
    )
    .await;
    assert_eq!(seconds_after_t0(&ticks.get()), [10]);
    let skipped = |job: &str| {
        m.counter(
            names::SKIPS_TOTAL,
            &[("job", job), ("reason", "unavailable")],
        )
    };
    assert_eq!(skipped("longer"), 0);
    // A store down past the tick's deadline (the next tick): the tick is given up, counted,
    // never run without a claim; it waits in the ledger for when the store answers.
    store.fail_next_claims(1_000);
    let ticks = Ticks::default();
    let t = ticks.clone();
    let job = Job::new("outage", every(5), move |ctx: JobContext| {
        t.push(ctx.scheduled_at());
        async { Ok(()) }
    })
    .idempotent();
    run_for(
        builder(&clock).store(store.clone()).job(job),
        Duration::from_millis(6_000),
    )
    .await;
    assert!(ticks.get().is_empty(), "{:?}", ticks.get());
    assert_eq!(skipped("outage"), 1);
}

/// One instance alone, `cancel_other`: no other instance fires the next tick, so the loop
/// running the old one stops it itself when the next tick comes due, then runs that tick.
/// Each superseded execution is recorded CANCELLED with the new tick in its error.
#[tokio::test(start_paused = true)]
async fn cancel_other_alone_stops_its_own_run_at_the_next_tick() {
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let stopped = Arc::new(Mutex::new(Vec::new()));
    let (seen, now) = (stopped.clone(), clock.clone());
    let job = Job::new("superseded_alone", every(10), move |ctx: JobContext| {
        let (seen, now) = (seen.clone(), now.clone());
        async move {
            ctx.cancelled().await;
            seen.lock()
                .unwrap()
                .push((ctx.scheduled_at(), now.now(), ctx.cancel_reason()));
            Err(JobError::permanent("stopped"))
        }
    })
    .idempotent()
    .overlap(Overlap::CancelOther);
    run_for(builder(&clock).store(store.clone()).job(job), secs(45)).await;
    let stopped = stopped.lock().unwrap().clone();
    let ticks: Vec<i64> = stopped
        .iter()
        .map(|(t, _, _)| (*t - t0()).num_seconds())
        .collect();
    assert_eq!(ticks[..3], [10, 20, 30], "{stopped:?}");
    for (tick, at, reason) in &stopped[..3] {
        assert_eq!(*reason, Some(CancelReason::Superseded));
        let after_next = *at - (*tick + chrono::Duration::seconds(10));
        assert!(
            after_next >= chrono::Duration::zero() && after_next < chrono::Duration::seconds(1),
            "stopped {after_next} after the next tick"
        );
    }
    let records = store.executions("superseded_alone", 10).await.unwrap();
    let cancelled = records
        .iter()
        .filter(|r| r.status == Status::Cancelled)
        .filter(|r| {
            r.error
                .as_deref()
                .unwrap_or("")
                .contains("superseded by the tick of")
        })
        .count();
    assert!(cancelled >= 3, "{records:?}");
}

/// Two instances, no lock, a job that is not idempotent (unique execution ids): the instance
/// that finds the job busy waits a liveness, sees the other's run was alive (it finished
/// meanwhile) and was for this very tick, and skips the tick as a duplicate, instead of
/// running it a second time.
#[tokio::test(start_paused = true)]
async fn a_busy_tick_of_a_live_run_is_skipped_not_run_again() {
    let m = tickguard_tests::metrics();
    let store = Arc::new(MemoryStore::new());
    let ticks = Ticks::default();
    let mut instances = Vec::new();
    for i in 0..2 {
        let clock = TestClock::new(t0());
        let t = ticks.clone();
        let job = Job::new("not_idempotent", every(10), move |ctx: JobContext| {
            t.push(ctx.scheduled_at());
            async {
                sleep(Duration::from_millis(500)).await;
                Ok(())
            }
        });
        let b = builder(&clock)
            .instance_id(format!("instance-{i}"))
            .liveness(secs(1))
            .store(store.clone())
            .job(job);
        instances.push(b.run_until_for(Duration::from_millis(13_000)));
    }
    futures_join_concurrently(instances).await;
    assert_eq!(seconds_after_t0(&ticks.get()), [10], "one run of tick 10");
    // The other instance's claim found tick 10 running: its own tick, run once, not lost.
    let skips = |reason| {
        m.counter(
            names::SKIPS_TOTAL,
            &[("job", "not_idempotent"), ("reason", reason)],
        )
    };
    assert_eq!(skips("duplicate"), 1);
    assert_eq!(skips("overlap"), 0);
}

#[tokio::test(start_paused = true)]
async fn each_execution_is_one_span_with_its_id_and_outcome() {
    let captured = tickguard_tests::Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let clock = TestClock::new(t0());
    let job = Job::new("traced", every(1), |ctx: JobContext| async move {
        if ctx.attempt() == 1 {
            return Err(JobError::transient("first attempt fails"));
        }
        Ok(())
    })
    .retry(RetryPolicy::attempts(2).backoff(Duration::from_millis(10)))
    .idempotent();
    run_for(
        builder(&clock).instance_id("tracer").job(job),
        Duration::from_millis(1_500),
    )
    .await;
    let text = captured.text();
    let closed = text
        .lines()
        .find(|l| {
            l.contains("tickguard.execution{") && l.contains(" close ") && !l.contains("attempt{")
        })
        .unwrap_or_else(|| panic!("no execution span closed:\n{text}"));
    for field in [
        "execution_id=traced@2026-01-01T00:00:01Z",
        "attempts=2",
        "outcome=\"success\"",
        "duration_ms=",
    ] {
        assert!(closed.contains(field), "`{field}` missing from: {closed}");
    }
    // The rest of the execution's identity is logged once, as it starts.
    let started = text
        .lines()
        .find(|l| l.contains("execution started"))
        .unwrap_or_else(|| panic!("no execution started:\n{text}"));
    for field in ["job=traced", "instance_id=tracer", "fence=1"] {
        assert!(started.contains(field), "`{field}` missing from: {started}");
    }
    assert!(
        text.contains("tickguard.attempt{attempt=2}"),
        "attempt spans:\n{text}"
    );
}

/// The WARN lines a scenario logged about `job`, under a capturing subscriber.
async fn warnings_of(job: &str, scenario: impl std::future::Future) -> Vec<String> {
    let (captured, _guard) =
        tickguard_tests::Captured::start(tracing_subscriber::filter::LevelFilter::WARN);
    scenario.await;
    let text = captured.text();
    text.lines()
        .filter(|l| l.contains("WARN") && l.contains(&format!("job={job}")))
        .map(str::to_owned)
        .collect()
}

/// The value of `field=` in a log line.
fn field(line: &str, field: &str) -> u64 {
    let at = line
        .find(&format!(" {field}="))
        .unwrap_or_else(|| panic!("no {field} in {line}"));
    line[at + field.len() + 2..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn overlap_warnings_are_one_then_one_a_minute_while_the_metric_counts_every_tick() {
    let m = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    // Every run takes 1.5 s: runs at 1, 3, 5, … each overlap one tick, from 2.5 s on.
    let job = Job::new("overloaded", every(1), |_ctx: JobContext| async {
        sleep(Duration::from_millis(1_500)).await;
        Ok(())
    });
    let warnings = warnings_of(
        "overloaded",
        run_for(builder(&clock).job(job), Duration::from_millis(200_200)),
    )
    .await;
    let overlapped = m.counter(
        names::SKIPS_TOTAL,
        &[("job", "overloaded"), ("reason", "overlap")],
    );
    // Logged at 2.5 s (the first), then 62.5, 122.5 and 182.5 s, each summing up the 30
    // overlaps since the one before.
    let counts: Vec<u64> = warnings.iter().map(|l| field(l, "ticks")).collect();
    assert_eq!(
        counts,
        [1, 30, 30, 30],
        "warnings:\n{}",
        warnings.join("\n")
    );
    assert!(warnings[0].contains("the run outlasted its next tick"));
    assert!(warnings[1].contains("since the last such warning"));
    assert!(overlapped >= 100, "{overlapped} overlaps counted");
}

#[tokio::test(start_paused = true)]
async fn misfire_warnings_are_one_then_one_a_minute_while_the_metric_counts_every_tick() {
    let m = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let job =
        Job::new("jumpy", every(1), |_ctx: JobContext| async { Ok(()) }).misfire(Misfire::Skip);
    let jumps = clock.clone();
    // Every 10 s the wall clock jumps 10 s ahead: the ticks jumped over are missed.
    let scenario = async move {
        for _ in 0..20 {
            sleep(Duration::from_millis(10_000)).await;
            jumps.jump(chrono::Duration::seconds(10));
        }
        sleep(Duration::from_millis(500)).await;
    };
    let warnings = warnings_of("jumpy", run_scenario(builder(&clock).job(job), scenario)).await;
    let skipped = m.counter(
        names::SKIPS_TOTAL,
        &[("job", "jumpy"), ("reason", "misfire")],
    );
    let counts: Vec<u64> = warnings.iter().map(|l| field(l, "ticks")).collect();
    assert_eq!(counts.len(), 4, "warnings:\n{}", warnings.join("\n"));
    assert!(warnings[0].contains("this instance noticed ticks late (process suspended"));
    assert!(
        skipped > counts.iter().sum::<u64>(),
        "{skipped} misfires counted, {counts:?} logged"
    );
    assert!(skipped >= 20 * 10, "{skipped} misfires counted");
}

/// The configuration error `build()` returns for `builder`.
async fn config_error(builder: SchedulerBuilder) -> String {
    match builder.discover(false).build().await {
        Err(Error::Config(message)) => message,
        Err(e) => panic!("not a configuration error: {e:?}"),
        Ok(_) => panic!("built"),
    }
}

#[tokio::test]
async fn two_or_more_backends_of_a_kind_are_refused_naming_the_methods() {
    assert_eq!(
        config_error(
            Scheduler::builder()
                .store(MemoryStore::new())
                .sqlite("sqlite://never-opened.db")
        )
        .await,
        "both .store(..) and .sqlite(..) name an execution store; keep one"
    );
    assert_eq!(
        config_error(
            Scheduler::builder()
                .postgres("postgres://127.0.0.1:1/never")
                .sqlite("sqlite://never-opened.db")
                .store(MemoryStore::new())
        )
        .await,
        ".postgres(..), .sqlite(..) and .store(..) name an execution store; keep one"
    );
    assert_eq!(
        config_error(
            Scheduler::builder()
                .lock_backend(InProcessLock::new())
                .redis("redis://127.0.0.1:1")
                .postgres_lock("postgres://127.0.0.1:1/never")
        )
        .await,
        ".lock_backend(..), .redis(..) and .postgres_lock(..) name a lock backend; keep one"
    );
}

#[tokio::test]
async fn a_backend_method_called_again_replaces_its_earlier_choice() {
    let clock = TestClock::new(t0());
    let kept = Arc::new(MemoryStore::new());
    let job = Job::new("replaced", every(60), |_ctx: JobContext| async { Ok(()) });
    builder(&clock)
        .job(job)
        .lock_backend(InProcessLock::new())
        .lock_backend(InProcessLock::new())
        .store(MemoryStore::new())
        .store(kept.clone())
        .build()
        .await
        .unwrap();
    // The job was registered, at t0, in the store named last.
    let later = JobRegistration::new("replaced", "every 60s".into(), "UTC".into(), None)
        .registered_at(t0() + chrono::Duration::hours(1));
    let created = kept.register(&later).await.unwrap().created_at;
    assert!(
        created < t0() + chrono::Duration::minutes(1),
        "created {created}"
    );
}

/// What a scenario logged at INFO and above, span closings included, under a capturing
/// subscriber.
async fn logs_of(scenario: impl std::future::Future) -> String {
    let captured = tickguard_tests::Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    scenario.await;
    captured.text()
}

/// The line that closed the execution span of `job`.
fn closed_span<'a>(text: &'a str, job: &str) -> &'a str {
    text.lines()
        .find(|l| {
            l.contains(&format!("tickguard.execution{{execution_id={job}@"))
                && l.contains(" close ")
                && !l.contains("attempt{")
        })
        .unwrap_or_else(|| panic!("no execution span of {job} closed:\n{text}"))
}

#[tokio::test(start_paused = true)]
async fn a_lease_lost_after_the_last_step_is_one_completed_run_everywhere() {
    let m = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let lock = Arc::new(FaultyLock::in_process());
    let store = Arc::new(MemoryStore::new());
    let reports = Reports::default();
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let (lease, seen) = (lock.clone(), reasons.clone());
    let job = Job::new("late_loss", every(400), move |ctx: JobContext| {
        let (lease, seen) = (lease.clone(), seen.clone());
        async move {
            // The job's last step is done; the lease is lost right after it, and the job
            // returns as soon as it is told.
            lease.lose_lease();
            ctx.cancelled().await;
            seen.lock().unwrap().push(ctx.cancel_reason());
            Ok(())
        }
    })
    .lock(LockPolicy::new(secs(30)))
    .idempotent()
    .on_failure(reports.hook());
    let scenario = builder(&clock)
        .job(job)
        .lock_backend(lock)
        .store(store.clone())
        .run_until_for(secs(400 + 100));
    let text = logs_of(scenario).await;
    assert_eq!(*reasons.lock().unwrap(), [Some(CancelReason::LockLost)]);
    let runs = store.executions("late_loss", 10).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].status, Status::Completed, "{runs:?}");
    assert_eq!(runs[0].error, None, "{runs:?}");
    let job = ("job", "late_loss");
    for (outcome, n) in [("success", 1), ("cancelled", 0), ("failure", 0)] {
        let counted = m.counter(names::EXECUTIONS_TOTAL, &[job, ("outcome", outcome)]);
        assert_eq!(counted, n, "outcome {outcome}");
    }
    assert_eq!(m.counter(names::LOCK_LOST_TOTAL, &[job]), 1);
    assert!(reports.get().is_empty(), "reported: {:?}", reports.get());
    let closed = closed_span(&text, "late_loss");
    assert!(closed.contains("outcome=\"success\""), "{closed}");
    let finished = text
        .lines()
        .find(|l| l.contains("execution finished") && l.contains("execution_id=late_loss@"))
        .unwrap_or_else(|| panic!("no `execution finished`:\n{text}"));
    assert!(finished.contains("outcome=\"success\""), "{finished}");
    assert!(
        text.lines().any(|l| l.contains(" WARN ")
            && l.contains("tickguard.execution{execution_id=late_loss@")
            && !l.contains("job=")
            && l.contains("the execution is COMPLETED")),
        "no warning of the late loss:\n{text}"
    );
    assert!(!text.contains("job failed"), "{text}");
}

#[test]
fn a_job_that_blocks_its_thread_past_its_timeout_is_a_reported_timeout() {
    let captured = tickguard_tests::Captured::default();
    let writer = captured.clone();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish(),
    );
    let _guard = tracing::dispatcher::set_default(&dispatch);
    // A multi-thread runtime whose workers log to the capture too (they live as long as it).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&dispatch)))
        .build()
        .unwrap();
    runtime.block_on(blocking_job_scenario());
    drop(runtime);
    let text = captured.text();
    // At WARN the execution's INFO span is off: the line names the execution itself.
    assert!(
        text.lines().any(|l| l.contains(" WARN ")
            && !l.contains("tickguard.execution")
            && l.contains("job=blocks_thread execution_id=blocks_thread@")
            && l.contains("blocked its thread")
            && l.contains("tokio::task::spawn_blocking")),
        "no warning about the blocked thread:\n{text}"
    );
}

/// A job whose first run blocks its thread for 600 ms under a 200 ms timeout: recorded,
/// counted and reported as a timeout.
async fn blocking_job_scenario() {
    let m = tickguard_tests::metrics();
    let store = Arc::new(MemoryStore::new());
    let reports = Reports::default();
    let reported = Arc::new(tokio::sync::Notify::new());
    let (told, hook) = (reported.clone(), reports.hook());
    let runs = Arc::new(AtomicU32::new(0));
    let ran = runs.clone();
    let job = Job::new("blocks_thread", every(1), move |_ctx: JobContext| {
        let first = ran.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                // Blocking work on the runtime's thread: no timer can fire meanwhile.
                std::thread::sleep(Duration::from_millis(600));
            }
            Ok(())
        }
    })
    .timeout(Duration::from_millis(200))
    .on_failure(move |r| {
        told.notify_one();
        hook(r)
    });
    let scheduler = Scheduler::builder()
        .discover(false)
        .instance_id("blocking")
        .job(job)
        .store(store.clone())
        .build()
        .await
        .unwrap();
    // Until the first run is reported; without a report, the assertions below fail.
    let reported = tokio::time::timeout(secs(10), reported.notified());
    scheduler.run_until(reported).await.unwrap();
    assert!(runs.load(Ordering::SeqCst) >= 1);
    let recorded = store.executions("blocks_thread", 10).await.unwrap();
    let timed_out: Vec<_> = recorded
        .iter()
        .filter(|r| r.status == Status::TimedOut)
        .collect();
    assert_eq!(timed_out.len(), 1, "{recorded:?}");
    assert_eq!(
        timed_out[0].error.as_deref(),
        Some("timed out after 200ms"),
        "{recorded:?}"
    );
    let job = ("job", "blocks_thread");
    assert_eq!(
        m.counter(names::EXECUTIONS_TOTAL, &[job, ("outcome", "timeout")]),
        1
    );
    let r = reports.get();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].outcome, "timeout");
}

#[tokio::test(start_paused = true)]
async fn an_end_the_store_never_takes_during_shutdown_is_logged_with_its_id_within_the_budget() {
    let clock = TestClock::new(t0());
    let store = Arc::new(FaultyStore::in_memory());
    let failing = store.clone();
    let job = Job::new("unrecordable", every(400), move |ctx: JobContext| {
        let failing = failing.clone();
        async move {
            ctx.cancelled().await;
            // The store goes away as the run ends: no finish gets through.
            failing.fail_next_writes(u32::MAX);
            Ok(())
        }
    })
    .idempotent();
    let started = Instant::now();
    let scenario = builder(&clock)
        .job(job)
        .store(store.clone())
        .shutdown_grace(secs(1))
        .cancel_grace(secs(1))
        .run_until_for(secs(401));
    let text = logs_of(scenario).await;
    // Signal at 401 s, cancelled at 402 s; the end is retried (every 5 s at most) within
    // the 45 s record budget.
    let took = started.elapsed();
    assert!(took >= secs(402 + 40), "gave up after {took:?}");
    assert!(took <= secs(402 + 50), "shutdown took {took:?}");
    let id = "unrecordable@2026-01-01T00:06:40Z";
    assert!(
        text.lines().any(|l| l.contains(" ERROR ")
            && l.contains(&format!("tickguard.execution{{execution_id={id}}}"))
            && l.matches("execution_id=").count() == 1
            && l.contains("cannot record the execution's end")),
        "no ERROR naming {id}:\n{text}"
    );
    store.restore();
    let runs = store.executions("unrecordable", 10).await.unwrap();
    assert_eq!(runs[0].status, Status::Running, "{runs:?}");
}

/// A nightly job charges three batches through `ctx.once(&format!("charge-{batch}"), ..)`:
/// every tick charges every batch (the keys are the execution's, not global), and an attempt
/// killed after batch 2 and retried does not charge batches 1 and 2 again within its
/// execution: the skips are logged with the job, execution and key, and counted.
#[tokio::test(start_paused = true)]
async fn once_charges_every_batch_on_every_tick_and_a_retry_skips_what_its_execution_did() {
    let (captured, _guard) =
        tickguard_tests::Captured::start(tracing_subscriber::filter::LevelFilter::INFO);
    let m = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let charges = Arc::new(Mutex::new(Vec::new()));
    let c = charges.clone();
    let job = Job::new("nightly_charges", every(10), move |ctx: JobContext| {
        let charges = c.clone();
        async move {
            let tick = (ctx.scheduled_at() - t0()).num_seconds();
            for batch in 1..=3 {
                let charge = async {
                    let key = ctx.idempotency_key(batch);
                    charges.lock().unwrap().push((tick, batch, key));
                    Ok(())
                };
                ctx.once(&format!("charge-{batch}"), charge).await?;
                if tick == 10 && batch == 2 && ctx.attempt() == 1 {
                    return Err(JobError::transient("killed after batch 2"));
                }
            }
            Ok(())
        }
    })
    .idempotent()
    .retry(RetryPolicy::attempts(2).backoff(secs(1)));
    run_for(builder(&clock).job(job), secs(35)).await;
    let charged: Vec<(i64, i32)> = charges.lock().unwrap().iter().map(|c| (c.0, c.1)).collect();
    let every_batch_every_tick: Vec<(i64, i32)> = [10, 20, 30]
        .into_iter()
        .flat_map(|tick| (1..=3).map(move |batch| (tick, batch)))
        .collect();
    assert_eq!(charged, every_batch_every_tick);
    let keys: Vec<String> = charges
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.2.clone())
        .collect();
    assert_eq!(keys[0], "nightly_charges@2026-01-01T00:00:10Z/1");
    assert_eq!(keys[3], "nightly_charges@2026-01-01T00:00:20Z/1");
    assert_eq!(
        m.counter(names::ONCE_SKIPPED_TOTAL, &[("job", "nightly_charges")]),
        2
    );
    let text = captured.text();
    let skips: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("step already done"))
        .collect();
    assert_eq!(skips.len(), 2, "{text}");
    for (line, key) in skips.iter().zip(["charge-1", "charge-2"]) {
        assert!(line.contains(" INFO "), "{line}");
        for field in [
            "tickguard.execution{execution_id=nightly_charges@2026-01-01T00:00:10Z}",
            &format!("key=\"{key}\""),
        ] {
            assert!(line.contains(field), "`{field}` missing from: {line}");
        }
        // The span names the execution; the event does not repeat it.
        assert_eq!(line.matches("execution_id=").count(), 1, "{line}");
        assert!(!line.contains("job="), "{line}");
    }
}

/// The scheduler deletes the per-execution steps of executions that ended longer ago than
/// `once_retention` (at start, then every hour) and keeps the newer ones and every
/// `once_ever` step: the backfill below runs once in three ticks that span the deletions.
#[tokio::test(start_paused = true)]
async fn the_scheduler_forgets_steps_past_the_retention_and_keeps_once_ever_steps() {
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let backfills = Arc::new(AtomicU32::new(0));
    let b = backfills.clone();
    // Ticks at 45, 90 and 135 minutes; deletions at start, 60 and 120 minutes.
    let job = Job::new("retained", every(2700), move |ctx: JobContext| {
        let backfills = b.clone();
        async move {
            ctx.once("step", async { Ok(()) }).await?;
            ctx.once_ever("backfill", async {
                backfills.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .await?;
            Ok(())
        }
    })
    .idempotent();
    run_for(
        builder(&clock)
            .job(job)
            .store(store.clone())
            .once_retention(secs(2000)),
        secs(8200),
    )
    .await;
    assert_eq!(backfills.load(Ordering::SeqCst), 1);
    let runs = store.executions("retained", 10).await.unwrap();
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r.status == Status::Completed));
    // At 120 minutes the step of the tick at 45 (ended 75 minutes before) was deleted; those
    // of the ticks at 90 (ended 30 minutes before) and 135 (after the deletion) are left.
    let jobs = ["retained".to_owned()];
    let left = store
        .forget_once_steps(&jobs, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(left, 2);
}

#[tokio::test]
async fn a_zero_once_retention_fails_at_build() {
    let e = Scheduler::builder()
        .discover(false)
        .once_retention(Duration::ZERO)
        .build()
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::Config(message) if message.contains("once_retention is zero")),
        "{e}"
    );
}

/// A busy tick that loses its lease while it waits for the job (the execution in the way
/// belongs to an owner that died; the lock stops renewing) is not skipped as an overlap: it
/// waits in the ledger, as a claim that outlasts its lease leaves its execution to be
/// resumed, and runs once the dead owner is proven gone.
#[tokio::test(start_paused = true)]
async fn a_busy_tick_that_loses_its_lease_while_it_waits_runs_from_the_ledger() {
    use tickguard::store::{Claim, ClaimRequest};
    let m = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let lock = Arc::new(FaultyLock::in_process());
    let ran: Arc<Mutex<Vec<DateTime<Utc>>>> = Arc::default();
    let seen = ran.clone();
    let job = Job::new("busy_lost", every(60), move |ctx: JobContext| {
        seen.lock().unwrap().push(ctx.scheduled_at());
        async { Ok(()) }
    })
    .lock(LockPolicy::new(secs(3)))
    .idempotent()
    .misfire(Misfire::RunAll);
    let (faults, ghosts) = (lock.clone(), store.clone());
    let scenario = async move {
        // An owner that dies just before 00:01:00 holding the execution of the tick at `t0`:
        // the job stays busy until its silence passes the liveness (30 s).
        sleep(secs(59)).await;
        let ghost =
            ClaimRequest::new("busy_lost", "busy_lost@ghost", t0(), "ghost#1").liveness(secs(30));
        assert!(matches!(
            ghosts.claim(&ghost).await.unwrap(),
            Claim::Acquired(_)
        ));
        // The tick at 00:01:00 takes the lease and finds the job busy; its first renewal,
        // a second later, finds the lease gone.
        sleep(Duration::from_millis(1_200)).await;
        faults.lose_lease();
        sleep(secs(5)).await;
        faults.restore();
        sleep(secs(50)).await;
    };
    run_scenario(
        builder(&clock)
            .job(job)
            .lock_backend(lock)
            .store(store.clone()),
        scenario,
    )
    .await;
    let minute = t0() + chrono::Duration::minutes(1);
    let mut ran = ran.lock().unwrap().clone();
    ran.sort();
    assert_eq!(
        ran,
        [t0(), minute],
        "the dead owner's execution was resumed, and the busy tick ran once, from the ledger"
    );
    let record = store
        .execution("busy_lost@2026-01-01T00:01:00Z")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, Status::Completed);
    let job = ("job", "busy_lost");
    assert_eq!(
        m.counter(names::SKIPS_TOTAL, &[job, ("reason", "overlap")]),
        0
    );
    assert_eq!(
        m.counter(names::TICKS_LOST_TOTAL, &[job, ("reason", "overlap")]),
        0
    );
}

/// A job paused through the store skips its ticks on a running scheduler (counted as
/// `paused`, the `tickguard_paused` gauge set), and fires again once resumed; the ticks it
/// skipped are not run later.
#[tokio::test(start_paused = true)]
async fn a_paused_job_skips_its_ticks_until_it_is_resumed() {
    let m = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let ticks = Ticks::default();
    let seen = ticks.clone();
    let job = Job::new("paused_then_resumed", every(1), move |ctx: JobContext| {
        seen.push(ctx.scheduled_at());
        async { Ok(()) }
    });
    let labels = [("job", "paused_then_resumed")];
    let (control, m2) = (store.clone(), m.clone());
    let scenario = async move {
        sleep(Duration::from_millis(2_500)).await;
        control
            .pause("paused_then_resumed", "maintenance", "ops")
            .await
            .unwrap();
        sleep(secs(3)).await;
        assert_eq!(m2.gauge_set(names::PAUSED, &labels), Some(1.0));
        control.resume("paused_then_resumed").await.unwrap();
        sleep(secs(3)).await;
    };
    run_scenario(builder(&clock).store(store.clone()).job(job), scenario).await;
    let ran = seconds_after_t0(&ticks.get());
    assert!(ran.starts_with(&[1, 2]), "{ran:?}");
    assert!(
        !ran.contains(&4) && !ran.contains(&5),
        "ran while paused: {ran:?}"
    );
    assert!(ran.contains(&7) && ran.contains(&8), "not resumed: {ran:?}");
    let skipped = m.counter(
        names::SKIPS_TOTAL,
        &[("job", "paused_then_resumed"), ("reason", "paused")],
    );
    assert!((2..=4).contains(&skipped), "paused skips: {skipped}");
    assert_eq!(ran.len() as u64 + skipped, 8, "{ran:?}, {skipped} skipped");
}

/// A manual execution runs even while its job is paused, and whatever the job's misfire
/// policy says of its tick (here an hour late by the scheduler's clock, under `skip`); a
/// job that is not idempotent runs it once.
#[tokio::test(start_paused = true)]
async fn a_trigger_runs_past_the_pause_and_the_misfire_policy() {
    let clock = TestClock::new(Utc::now() + chrono::Duration::hours(1));
    let store = Arc::new(MemoryStore::new());
    let ticks = Ticks::default();
    let seen = ticks.clone();
    let job = Job::new("triggered_late", every(3600), move |ctx: JobContext| {
        seen.push(ctx.scheduled_at());
        async { Ok(()) }
    })
    .misfire(Misfire::Skip);
    let scheduler = builder(&clock)
        .store(store.clone())
        .misfire_threshold(secs(1))
        .job(job)
        .build()
        .await
        .unwrap();
    store
        .pause("triggered_late", "frozen", "ops")
        .await
        .unwrap();
    let control = store.clone();
    let scenario = async move {
        let requested = control.trigger("triggered_late", "alice").await.unwrap();
        sleep(secs(3)).await;
        requested
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    scheduler
        .run_until(async move {
            let _ = tx.send(scenario.await);
        })
        .await
        .unwrap();
    let requested = rx.await.unwrap();
    assert_eq!(ticks.get(), vec![requested.scheduled_at]);
    let record = store.execution(&requested.id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Completed);
    assert_eq!(record.requested_by.as_deref(), Some("alice"));
}

/// The scheduler prunes its jobs' history by its retention, at start and then every
/// `retention_every`: with a retention of zero, the completed executions are gone after the
/// next round, and the ticks still ran once each.
#[tokio::test(start_paused = true)]
async fn the_retention_task_prunes_ended_executions_every_interval() {
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let ticks = Ticks::default();
    let seen = ticks.clone();
    let job = Job::new("pruned_history", every(1), move |ctx: JobContext| {
        seen.push(ctx.scheduled_at());
        async { Ok(()) }
    });
    let zero = Some(Duration::ZERO);
    let retention = Retention::keep_forever()
        .completed(zero)
        .skipped(zero)
        .failed(zero)
        .timed_out(zero)
        .cancelled(zero);
    let builder = builder(&clock)
        .store(store.clone())
        .retention(retention)
        .retention_every(secs(4))
        .job(job);
    let (control, kept) = (store.clone(), Arc::new(Mutex::new(Vec::new())));
    let kept2 = kept.clone();
    let scenario = async move {
        for _ in 0..9 {
            sleep(Duration::from_millis(1_000)).await;
            let n = control
                .executions("pruned_history", 100)
                .await
                .unwrap()
                .len();
            kept2.lock().unwrap().push(n);
        }
        sleep(Duration::from_millis(500)).await;
    };
    run_scenario(builder, scenario).await;
    // Read at 1..9 s, each before that second's tick runs; prunes at 0, 4 and 8 s.
    let kept = kept.lock().unwrap().clone();
    assert_eq!(seconds_after_t0(&ticks.get()), (1..=9).collect::<Vec<_>>());
    assert_eq!(
        kept[3], 3,
        "before the first prune that finds any: {kept:?}"
    );
    assert!(
        kept[4] <= 1,
        "the prune at 4 s deleted the ended ones: {kept:?}"
    );
    assert!(
        kept[8] <= 1,
        "the prune at 8 s deleted the ended ones: {kept:?}"
    );
    let recent = store.executions("pruned_history", 100).await.unwrap();
    assert!(
        recent.iter().all(|r| r.status == Status::Completed),
        "{recent:?}"
    );
}

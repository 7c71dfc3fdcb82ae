//! Ticks lost for good reach the failure hooks and `tickguard_ticks_lost_total`: a tick a
//! run overlapped, a misfire the `skip` policy drops, a tick another instance's live run
//! overlapped; a tick another instance runs (`locked`) is not lost and reports nothing. And
//! the gauges an overdue alert reads: the next fire time and the period.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, TimeZone, Utc};
use tickguard::{
    FailureReport, Job, JobContext, LockPolicy, Misfire, Schedule, Scheduler, SchedulerBuilder,
    lock::InProcessLock,
    metrics::{self as names, SkipReason},
    store::{ExecutionStore, MemoryStore, Status},
    testing::{FaultyStore, TestClock},
};
use tickguard_tests::Reports;
use tokio::time::sleep;

/// Midnight, 1 January 2026 (a Thursday): a multiple of every period the tests use.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(seconds)
}

fn every(s: u64) -> Schedule {
    Schedule::every(Duration::from_secs(s)).unwrap()
}

fn builder(clock: &TestClock) -> SchedulerBuilder {
    Scheduler::builder()
        .discover(false)
        .clock(clock.clone())
        .instance_id("test")
}

fn lost(job: &str, reason: &str) -> u64 {
    tickguard_tests::metrics().counter(names::TICKS_LOST_TOTAL, &[("job", job), ("reason", reason)])
}

/// A `skip` job due every second whose first run takes 1.5 s: tick 2 comes while it runs.
#[tokio::test(start_paused = true)]
async fn a_tick_a_run_overlapped_is_reported_and_counted_as_lost() {
    let m = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let (job_reports, global_reports) = (Reports::default(), Reports::default());
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let job = Job::new("overlapping", every(1), move |_ctx: JobContext| {
        let slow = first.swap(false, std::sync::atomic::Ordering::SeqCst);
        async move {
            if slow {
                sleep(Duration::from_millis(1_500)).await;
            }
            Ok(())
        }
    })
    .misfire(Misfire::Skip)
    .on_failure(job_reports.hook());
    let b = builder(&clock).job(job).on_failure(global_reports.hook());
    b.build()
        .await
        .unwrap()
        .run_until(sleep(Duration::from_millis(3_200)))
        .await
        .unwrap();
    for reports in [job_reports.get(), global_reports.get()] {
        let [report] = reports.as_slice() else {
            panic!("one report expected: {reports:?}")
        };
        assert_eq!(report.job, "overlapping");
        assert_eq!(report.outcome, "skipped");
        assert_eq!(report.skip_reason, Some(SkipReason::Overlap));
        assert_eq!(report.ticks_lost, 1);
        assert_eq!(report.scheduled_at, at(2));
        assert_eq!(
            report.execution_id, "",
            "not idempotent: no id for the tick"
        );
        assert_eq!(report.instance_id, "test");
        assert_eq!(report.attempts, 0);
        assert_eq!(
            report.to_string(),
            "job `overlapping` lost 1 tick(s), the latest 2026-01-01 00:00:02 UTC: overlap: \
             the run outlasted its next tick; overlapped ticks skipped (overlap policy skip)"
        );
    }
    assert_eq!(lost("overlapping", "overlap"), 1);
    assert_eq!(
        m.counter(
            names::SKIPS_TOTAL,
            &[("job", "overlapping"), ("reason", "overlap")]
        ),
        1
    );
}

/// The wall clock jumps 10 s ahead at 3.5 s: ticks 4..=13 were missed, and the `skip`
/// policy drops them; 14 is on time and runs.
#[tokio::test(start_paused = true)]
async fn a_misfire_the_skip_policy_drops_is_reported_and_counted_as_lost() {
    // Installed before the scheduler registers its handles.
    let _recorder = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let reports = Reports::default();
    let runs = Arc::new(Mutex::new(Vec::new()));
    let ran = runs.clone();
    let job = Job::new("jumped", every(1), move |ctx: JobContext| {
        ran.lock().unwrap().push(ctx.scheduled_at());
        async { Ok(()) }
    })
    .misfire(Misfire::Skip)
    .idempotent()
    .on_failure(reports.hook());
    let jump = clock.clone();
    let scenario = async move {
        sleep(Duration::from_millis(3_500)).await;
        jump.jump(chrono::Duration::seconds(10));
        sleep(Duration::from_millis(1_000)).await;
    };
    builder(&clock)
        .job(job)
        .misfire_threshold(Duration::from_millis(500))
        .build()
        .await
        .unwrap()
        .run_until(scenario)
        .await
        .unwrap();
    assert_eq!(*runs.lock().unwrap(), [at(1), at(2), at(3), at(14)]);
    let reports = reports.get();
    let [report] = reports.as_slice() else {
        panic!("one report expected: {reports:?}")
    };
    assert_eq!(report.outcome, "skipped");
    assert_eq!(report.skip_reason, Some(SkipReason::Misfire));
    assert_eq!(report.ticks_lost, 10);
    assert_eq!(report.scheduled_at, at(13), "the latest tick lost");
    assert_eq!(
        report.execution_id, "jumped@2026-01-01T00:00:13Z",
        "idempotent: the id every instance gives the tick"
    );
    assert!(
        report.error_chain[0].starts_with("this instance noticed ticks late (process suspended"),
        "{report}"
    );
    assert_eq!(lost("jumped", "misfire"), 10);
    assert_eq!(lost("jumped", "overlap"), 0);
}

/// The ticks each run was for.
type Runs = Arc<Mutex<Vec<DateTime<Utc>>>>;

/// Runs one scheduler instance of a `skip` job `name`, due every second, on `store` for
/// `runs_for` ms: its runs' ticks go to `runs`, its failure reports to `reports`.
async fn run_skip_job(
    name: &str,
    clock: &TestClock,
    store: &Arc<MemoryStore>,
    runs: &Runs,
    reports: &Reports,
    runs_for: u64,
) {
    let ran = runs.clone();
    let job = Job::new(name, every(1), move |ctx: JobContext| {
        ran.lock().unwrap().push(ctx.scheduled_at());
        async { Ok(()) }
    })
    .misfire(Misfire::Skip)
    .on_failure(reports.hook());
    builder(clock)
        .store(store.clone())
        .misfire_threshold(Duration::from_millis(200))
        .job(job)
        .build()
        .await
        .unwrap()
        .run_until(sleep(Duration::from_millis(runs_for)))
        .await
        .unwrap();
}

/// A `skip` job runs ticks 1 and 2, its only instance stops, and the next starts 10 s
/// later on the same store: ticks 3..=12 came due while no instance ran, and the report
/// says so (not that this process noticed them late).
#[tokio::test(start_paused = true)]
async fn ticks_missed_while_no_instance_ran_are_reported_as_such() {
    let _recorder = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let (reports, runs) = (Reports::default(), Runs::default());
    for (stopped_for, runs_for) in [(0, 2_500), (10, 1_000)] {
        clock.jump(chrono::Duration::seconds(stopped_for));
        run_skip_job("restarted", &clock, &store, &runs, &reports, runs_for).await;
    }
    assert_eq!(*runs.lock().unwrap(), [at(1), at(2), at(13)]);
    let reports = reports.get();
    let [report] = reports.as_slice() else {
        panic!("one report expected: {reports:?}")
    };
    assert_eq!(report.ticks_lost, 10);
    assert_eq!(report.scheduled_at, at(12), "the latest tick lost");
    assert!(
        report.error_chain[0].starts_with(
            "ticks came due while no instance was running the job (found at start from the \
             store, which has the job's ticks up to 2026-01-01 00:00:02 UTC)"
        ),
        "{report}"
    );
}

/// Ticks skipped while the job was paused are not missed ones: a scheduler that starts after
/// the resume (no tick claimed since) reports nothing lost, and runs the next tick.
#[tokio::test(start_paused = true)]
async fn ticks_skipped_while_paused_are_not_reported_missed_after_a_restart() {
    let _recorder = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let (reports, runs) = (Reports::default(), Runs::default());
    for (step, runs_for) in [("run", 2_500), ("pause", 5_000), ("resume", 1_000)] {
        match step {
            "pause" => {
                store
                    .pause("paused_then_resumed", "incident", "ops")
                    .await
                    .unwrap();
            }
            "resume" => {
                store.resume("paused_then_resumed").await.unwrap();
            }
            _ => {}
        }
        run_skip_job(
            "paused_then_resumed",
            &clock,
            &store,
            &runs,
            &reports,
            runs_for,
        )
        .await;
    }
    assert_eq!(*runs.lock().unwrap(), [at(1), at(2), at(8)]);
    assert!(reports.get().is_empty(), "{:?}", reports.get());
}

/// A manual execution that runs 5 s holds the job loop: the ticks due meanwhile are lost
/// under `skip`, and the report says the instance was busy with it (not suspended).
#[tokio::test(start_paused = true)]
async fn ticks_missed_while_running_a_manual_execution_say_so() {
    let _recorder = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let reports = Reports::default();
    let job = Job::new("triggered", every(1), |ctx: JobContext| async move {
        if ctx.execution_id().contains("@manual-") {
            sleep(Duration::from_secs(5)).await;
        }
        Ok(())
    })
    .misfire(Misfire::Skip)
    .on_failure(reports.hook());
    let trigger = {
        let store = store.clone();
        async move {
            sleep(Duration::from_millis(1_500)).await;
            store.trigger("triggered", "ops").await.unwrap();
            sleep(Duration::from_secs(8)).await;
        }
    };
    builder(&clock)
        .store(store.clone())
        .misfire_threshold(Duration::from_millis(200))
        .job(job)
        .build()
        .await
        .unwrap()
        .run_until(trigger)
        .await
        .unwrap();
    let reports = reports.get();
    let [report] = reports.as_slice() else {
        panic!("one report expected: {reports:?}")
    };
    assert!(report.ticks_lost >= 4, "{report}");
    assert!(
        report.error_chain[0].starts_with(
            "the ticks came due while this instance was running queued executions of the job"
        ),
        "{report}"
    );
}

/// A `run_all` job named `name` (idempotent or not), on `store`, catching up on 11 missed
/// ticks (4..=14, each run 0.5 s) when shutdown begins during its third catch-up run, with
/// `at_shutdown` done just before; the reports its failure hook got.
async fn catch_up_cut_by_shutdown(
    name: &'static str,
    idempotent: bool,
    store: Arc<dyn ExecutionStore>,
    at_shutdown: impl FnOnce() + Send + 'static,
) -> Vec<FailureReport> {
    let clock = TestClock::new(t0());
    let reports = Reports::default();
    let mut job = Job::new(name, every(1), |_ctx: JobContext| async {
        sleep(Duration::from_millis(500)).await;
        Ok(())
    })
    .misfire(Misfire::RunAll)
    .on_failure(reports.hook());
    if idempotent {
        job = job.idempotent();
    }
    let jump = clock.clone();
    let scenario = async move {
        sleep(Duration::from_millis(3_600)).await;
        jump.jump(chrono::Duration::seconds(10));
        sleep(Duration::from_millis(1_600)).await;
        at_shutdown();
    };
    builder(&clock)
        .job(job)
        .store(store)
        .build()
        .await
        .unwrap()
        .run_until(scenario)
        .await
        .unwrap();
    reports.get()
}

/// The catch-up of a job that is not idempotent: the 8 ticks not yet run are lost, and
/// reported.
#[tokio::test(start_paused = true)]
async fn due_ticks_left_unrun_at_shutdown_are_reported_as_lost() {
    // Installed before the scheduler registers its handles.
    let _recorder = tickguard_tests::metrics();
    let store = Arc::new(MemoryStore::new());
    let reports = catch_up_cut_by_shutdown("catching_up", false, store, || {}).await;
    let [report] = reports.as_slice() else {
        panic!("one report expected: {reports:?}")
    };
    assert_eq!(report.skip_reason, Some(SkipReason::Misfire));
    assert_eq!(report.ticks_lost, 8, "{report}");
    assert_eq!(report.scheduled_at, at(14));
    assert_eq!(report.error_chain, ["shutdown: due ticks left unrun"]);
    assert_eq!(lost("catching_up", "misfire"), 8);
}

/// The same catch-up for an idempotent job: the ticks not yet run are left to the ledger
/// (pending in the store, for another instance or the next start), not lost.
#[tokio::test(start_paused = true)]
async fn due_ticks_of_an_idempotent_job_left_unrun_at_shutdown_wait_in_the_ledger() {
    let _recorder = tickguard_tests::metrics();
    let store = Arc::new(MemoryStore::new());
    let reports = catch_up_cut_by_shutdown("leaving", true, store.clone(), || {}).await;
    assert!(reports.is_empty(), "{reports:?}");
    assert_eq!(lost("leaving", "misfire"), 0);
    let mut pending: Vec<DateTime<Utc>> = store
        .executions("leaving", 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.status == Status::Pending)
        .map(|e| e.scheduled_at)
        .collect();
    pending.sort();
    assert_eq!(pending, (7..=14).map(at).collect::<Vec<_>>());
}

/// The same, with a store that stops taking writes as shutdown begins: the ticks left to
/// the ledger cannot be recorded, and are reported lost instead of vanishing.
#[tokio::test(start_paused = true)]
async fn ticks_the_store_cannot_record_at_shutdown_are_reported_as_lost() {
    let _recorder = tickguard_tests::metrics();
    let store = Arc::new(FaultyStore::in_memory());
    let down = store.clone();
    let reports = catch_up_cut_by_shutdown("unrecorded", true, store.clone(), move || {
        down.fail_next_writes(u32::MAX);
    })
    .await;
    let lost_reports: Vec<&FailureReport> = reports
        .iter()
        .filter(|r| r.skip_reason == Some(SkipReason::Unavailable))
        .collect();
    let [report] = lost_reports.as_slice() else {
        panic!("one lost-tick report expected: {reports:?}")
    };
    assert_eq!(report.ticks_lost, 8, "{report}");
    assert_eq!(report.scheduled_at, at(14));
    assert_eq!(lost("unrecorded", "unavailable"), 8);
    store.restore();
    let pending = store
        .executions("unrecorded", 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.status == Status::Pending)
        .count();
    assert_eq!(pending, 0);
}

/// Two instances share a store and no lock. The run of tick 10 lasts 15 s: the other
/// instance's tick 20 finds it live, waits a liveness, sees it alive, and skips the tick
/// (`overlap`); the instance that runs it skips tick 20 too when its run ends. Each reports
/// the loss it saw. A tick run by one instance is not a loss on the other: tick 10 and
/// tick 30 are skipped there as `duplicate`, and reported by no one.
#[tokio::test(start_paused = true)]
async fn a_tick_skipped_at_its_claim_as_overlapped_is_reported_as_lost() {
    // Installed before the scheduler registers its handles.
    let _recorder = tickguard_tests::metrics();
    let store = Arc::new(MemoryStore::new());
    let reports = Reports::default();
    let mut instances = Vec::new();
    for i in 0..2 {
        let clock = TestClock::new(t0());
        let job = Job::new("busy_elsewhere", every(10), |ctx: JobContext| async move {
            let long = ctx.scheduled_at() == at(10);
            sleep(Duration::from_millis(if long { 15_000 } else { 500 })).await;
            Ok(())
        })
        .on_failure(reports.hook());
        let scheduler = builder(&clock)
            .instance_id(format!("instance-{i}"))
            .liveness(Duration::from_secs(1))
            .store(store.clone())
            .job(job)
            .build()
            .await
            .unwrap();
        instances.push(scheduler.run_until(sleep(Duration::from_millis(33_000))));
    }
    for result in futures_util::future::join_all(instances).await {
        result.unwrap();
    }
    let reports = reports.get();
    let [first, second] = reports.as_slice() else {
        panic!("one report per instance expected: {reports:?}")
    };
    for report in [first, second] {
        assert_eq!(report.skip_reason, Some(SkipReason::Overlap), "{report}");
        assert_eq!(report.ticks_lost, 1, "{report}");
        assert_eq!(report.scheduled_at, at(20), "{report}");
    }
    assert_ne!(first.instance_id, second.instance_id);
    assert_eq!(lost("busy_elsewhere", "overlap"), 2);
}

/// Three instances share a lock: every tick runs on one of them and the others skip it as
/// `locked`. Nothing is lost, so nothing is reported.
#[tokio::test(start_paused = true)]
async fn a_locked_skip_loses_nothing_and_reports_nothing() {
    let m = tickguard_tests::metrics();
    let lock = Arc::new(InProcessLock::new());
    let reports = Reports::default();
    let mut instances = Vec::new();
    for i in 0..3 {
        let clock = TestClock::new(t0());
        let job = Job::new("locked_out", every(10), |_ctx: JobContext| async { Ok(()) })
            .lock(LockPolicy::new(Duration::from_secs(30)).at_least(Duration::from_secs(5)));
        let scheduler = builder(&clock)
            .instance_id(format!("instance-{i}"))
            .job(job)
            .lock_backend(lock.clone())
            .on_failure(reports.hook())
            .build()
            .await
            .unwrap();
        instances.push(scheduler.run_until(sleep(Duration::from_secs(25))));
    }
    for result in futures_util::future::join_all(instances).await {
        result.unwrap();
    }
    assert_eq!(
        m.counter(
            names::SKIPS_TOTAL,
            &[("job", "locked_out"), ("reason", "locked")]
        ),
        4,
        "ticks 10 and 20, skipped by two instances each"
    );
    assert_eq!(reports.get().len(), 0, "{:?}", reports.get());
    assert_eq!(
        m.counter(names::TICKS_LOST_TOTAL, &[("job", "locked_out")]),
        0
    );
}

/// The next fire time and the period of `job`, as the gauges show them.
fn next_and_period(job: &str) -> (Option<f64>, Option<f64>) {
    let m = tickguard_tests::metrics();
    (
        m.gauge_set(names::NEXT_FIRE, &[("job", job)]),
        m.gauge_set(names::PERIOD, &[("job", job)]),
    )
}

fn unix(t: DateTime<Utc>) -> Option<f64> {
    Some(t.timestamp() as f64)
}

#[tokio::test(start_paused = true)]
async fn the_gauges_show_the_next_fire_time_and_the_interval_to_the_one_after() {
    // Installed before the scheduler registers its handles.
    let _recorder = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let ok = |_ctx: JobContext| async { Ok(()) };
    // Minutes 0 and 45 of each hour: from midnight, 00:45 comes next, then 01:00.
    let cron = Job::new("gauged_cron", Schedule::cron("0 0,45 * * * *").unwrap(), ok);
    let rate = Job::new("gauged_rate", every(7), ok);
    let delay = Job::new(
        "gauged_delay",
        Schedule::after(Duration::from_secs(3)).unwrap(),
        ok,
    );
    let scenario = async {
        sleep(Duration::from_millis(100)).await;
        assert_eq!(
            next_and_period("gauged_cron"),
            (unix(at(45 * 60)), Some(15.0 * 60.0))
        );
        assert_eq!(next_and_period("gauged_rate"), (unix(at(7)), Some(7.0)));
        assert_eq!(next_and_period("gauged_delay"), (unix(at(3)), Some(3.0)));
        // After the 00:45 run: 01:00 next, then 01:45.
        sleep(Duration::from_secs(46 * 60)).await;
        assert_eq!(
            next_and_period("gauged_cron"),
            (unix(at(60 * 60)), Some(45.0 * 60.0))
        );
        let (next, period) = next_and_period("gauged_rate");
        assert_eq!(
            next,
            unix(at(46 * 60 + 5)),
            "the first multiple of 7 s after"
        );
        assert_eq!(period, Some(7.0));
    };
    builder(&clock)
        .job(cron)
        .job(rate)
        .job(delay)
        .build()
        .await
        .unwrap()
        .run_until(scenario)
        .await
        .unwrap();
}

/// Two instances take up the same pending tick of the ledger, late past the misfire
/// threshold of a `skip` job: both skip it, and it is reported lost once, by the instance
/// whose record skipped it.
#[tokio::test(start_paused = true)]
async fn a_pending_tick_skipped_by_two_instances_is_reported_once() {
    let _recorder = tickguard_tests::metrics();
    let clock = TestClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let late = t0() - chrono::Duration::minutes(1);
    let id = format!(
        "late_pending@{}",
        late.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let tick = tickguard::store::LedgerTick::pending("late_pending", &id, late, "elsewhere");
    store.record_ticks(&[tick]).await.unwrap();
    let reports = Reports::default();
    let instance = |name: &'static str| {
        let job = Job::new("late_pending", every(3600), |_ctx: JobContext| async {
            Ok(())
        })
        .idempotent()
        .misfire(Misfire::Skip);
        builder(&clock)
            .instance_id(name)
            .job(job)
            .store(store.clone())
            .on_failure(reports.hook())
    };
    let run = |builder: SchedulerBuilder| async move {
        builder
            .build()
            .await
            .unwrap()
            .run_until(sleep(Duration::from_secs(15)))
            .await
            .unwrap();
    };
    tokio::join!(run(instance("one")), run(instance("two")));
    let row = store.execution(&id).await.unwrap().unwrap();
    assert_eq!(row.status, Status::Skipped, "{row:?}");
    let reports = reports.get();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].skip_reason, Some(SkipReason::Misfire));
    assert_eq!(lost("late_pending", "misfire"), 1);
}

//! What the scheduler logs, read as the default `fmt` layer renders it: the startup lines
//! (backends, each job's next fire time in its zone, a warning for process-local backends),
//! and an execution's lines, whose span names the execution briefly while the `execution
//! started` and `execution finished` events carry the rest once.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tickguard::{
    BoxFuture, Job, JobContext, JobError, RetryPolicy, Schedule, Scheduler, SchedulerBuilder,
    testing::TestClock,
};
use tokio::time::sleep;

/// The log lines a scenario wrote at INFO and above, as the default fmt layer renders them.
async fn logs_of(scenario: impl std::future::Future) -> Vec<String> {
    let (captured, _guard) =
        tickguard_tests::Captured::start(tracing_subscriber::filter::LevelFilter::INFO);
    scenario.await;
    let text = captured.text();
    text.lines().map(str::to_owned).collect()
}

fn builder(clock: &TestClock) -> SchedulerBuilder {
    Scheduler::builder()
        .discover(false)
        .clock(clock.clone())
        .instance_id("logs")
}

/// The one line containing every one of `parts`.
fn line_with<'a>(lines: &'a [String], parts: &[&str]) -> &'a str {
    let found: Vec<&String> = lines
        .iter()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .collect();
    match found.as_slice() {
        [one] => one,
        _ => panic!(
            "{} lines with {parts:?}:\n{}",
            found.len(),
            lines.join("\n")
        ),
    }
}

#[tokio::test(start_paused = true)]
async fn startup_names_the_backends_and_each_jobs_next_fire_in_its_zone_and_warns_of_local_ones() {
    let noon: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
    let clock = TestClock::new(noon);
    let nightly = Schedule::cron("0 0 2 * * *")
        .unwrap()
        .in_zone("Europe/Paris")
        .unwrap();
    let every = Schedule::every(Duration::from_secs(300)).unwrap();
    let b = builder(&clock)
        .job(Job::new("nightly", nightly, |_ctx: JobContext| async {
            Ok(())
        }))
        .job(Job::new("poll", every, |_ctx: JobContext| async { Ok(()) }));
    let lines = logs_of(async {
        let scheduler = b.build().await.unwrap();
        scheduler
            .run_until(sleep(Duration::from_millis(10)))
            .await
            .unwrap();
    })
    .await;
    let started = line_with(&lines, &["INFO", "scheduler started"]);
    assert!(
        started
            .ends_with("scheduler started instance_id=logs jobs=2 lock=in-process store=in-memory"),
        "{started}"
    );
    let nightly = line_with(&lines, &["INFO", "job registered job=nightly"]);
    assert!(
        nightly.ends_with(
            "job registered job=nightly schedule=\"0 0 2 * * *\" zone=Europe/Paris \
             next_fire=\"2026-12-06 02:00:00 CET\""
        ),
        "{nightly}"
    );
    let poll = line_with(&lines, &["INFO", "job registered job=poll"]);
    assert!(
        poll.ends_with(
            "job registered job=poll schedule=\"every 5m\" zone=UTC \
             next_fire=\"2026-12-05 12:05:00 UTC\""
        ),
        "{poll}"
    );
    let warning = line_with(&lines, &["WARN"]);
    assert!(
        warning.contains(
            "the lock is in-process and the store in-memory: they work within this one \
             process only; with several replicas, every replica runs every tick, and \
             history, checkpoints, resumption and fencing are per process and lost at \
             restart. For replicas, configure a shared lock: .redis(url) or \
             .postgres_lock(url), and a shared store: .postgres(url)"
        ),
        "{warning}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_namespace_that_applies_to_no_backend_is_warned_of() {
    let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    let lines = logs_of(async {
        let scheduler = builder(&clock).namespace("billing").build().await.unwrap();
        scheduler.run_until(async {}).await.unwrap();
    })
    .await;
    let started = line_with(&lines, &["INFO", "scheduler started"]);
    assert!(
        started.ends_with("namespace=\"billing\" (no backend)"),
        "{started}"
    );
    let warning = line_with(&lines, &["WARN", "namespace"]);
    assert!(
        warning.contains(
            "namespace \"billing\" applies to no backend: it applies only to the backends \
             the builder connects itself"
        ),
        "{warning}"
    );
}

/// The WARN lines of a scheduler built from `b` as it starts.
async fn warnings_of(b: SchedulerBuilder) -> Vec<String> {
    let lines = logs_of(async {
        let scheduler = b.build().await.unwrap();
        scheduler.run_until(async {}).await.unwrap();
    })
    .await;
    lines.into_iter().filter(|l| l.contains(" WARN ")).collect()
}

#[tokio::test]
async fn process_local_backends_are_known_through_wrappers_and_each_warned_of_for_its_cost() {
    use tickguard::{
        lock::InProcessLock,
        store::MemoryStore,
        testing::{FaultyLock, FaultyStore},
    };
    let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    // A wrapped in-process lock, and a store that is not in-memory: only the lock's cost.
    let dir = std::env::temp_dir().join(format!("tickguard-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = format!("sqlite://{}", dir.join("local.db").display());
    let lock_only = warnings_of(
        builder(&clock)
            .lock_backend(FaultyLock::new(InProcessLock::new()))
            .sqlite(sqlite),
    )
    .await;
    assert!(
        matches!(lock_only.as_slice(), [w] if w.contains("the lock is in-process: it works \
            within this one process only; with several replicas, every replica runs every tick")
            && !w.contains("history")),
        "{lock_only:#?}"
    );
    // A wrapped in-memory store beside a lock that is not process-local: only the store's
    // cost.
    let store_only = warnings_of(
        builder(&clock)
            .lock_backend(NotLocal(InProcessLock::new()))
            .store(FaultyStore::new(MemoryStore::new())),
    )
    .await;
    assert!(
        matches!(store_only.as_slice(), [w] if w.contains("the store is in-memory: history, \
            checkpoints, resumption and fencing are per process and lost at restart")
            && !w.contains("every replica runs every tick")),
        "{store_only:#?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A lock that does not say it is process-local (as a shared backend would not).
struct NotLocal(tickguard::lock::InProcessLock);

impl tickguard::lock::LockBackend for NotLocal {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<tickguard::lock::Acquired, tickguard::lock::LockError>> {
        self.0.acquire(name, owner, ttl)
    }
    fn extend<'a>(
        &'a self,
        lease: &'a tickguard::lock::Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, tickguard::lock::LockError>> {
        self.0.extend(lease, ttl)
    }
    fn release<'a>(
        &'a self,
        lease: &'a tickguard::lock::Lease,
        hold_for: Duration,
    ) -> BoxFuture<'a, Result<bool, tickguard::lock::LockError>> {
        self.0.release(lease, hold_for)
    }
    fn describe(&self) -> String {
        "shared".to_owned()
    }
}

#[tokio::test(start_paused = true)]
async fn an_explicit_in_process_lock_is_warned_of_too() {
    let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    let b = builder(&clock)
        .lock_backend(tickguard::lock::InProcessLock::new())
        .store(tickguard::store::MemoryStore::new());
    let lines = logs_of(async {
        let scheduler = b.build().await.unwrap();
        scheduler.run_until(async {}).await.unwrap();
    })
    .await;
    let warning = line_with(&lines, &["WARN"]);
    assert!(
        warning.contains("the lock is in-process and the store in-memory"),
        "{warning}"
    );
}

/// The longest line a run of the test job may log: a timestamp, the level, the short span
/// and the event's own fields.
const LONGEST_LINE: usize = 240;

#[tokio::test(start_paused = true)]
async fn an_execution_says_who_it_is_once_and_its_lines_stay_short() {
    let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    let every = Schedule::every(Duration::from_secs(5)).unwrap();
    let job = Job::new("logged", every, |ctx: JobContext| async move {
        tracing::info!("exporting");
        if ctx.attempt() == 1 {
            return Err(JobError::transient("first attempt fails"));
        }
        sleep(Duration::from_millis(1_230)).await;
        Ok(())
    })
    .retry(RetryPolicy::attempts(2).backoff(Duration::from_millis(10)))
    .idempotent();
    let b = builder(&clock).job(job);
    let lines = logs_of(async {
        let scheduler = b.build().await.unwrap();
        scheduler
            .run_until(sleep(Duration::from_millis(7_000)))
            .await
            .unwrap();
    })
    .await;
    let span = "tickguard.execution{execution_id=logged@2026-01-01T00:00:05Z}";
    let in_run: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("tickguard.execution"))
        .collect();
    assert!(
        in_run.len() >= 5,
        "too few lines in the run:\n{}",
        lines.join("\n")
    );
    for line in &in_run {
        assert!(line.contains(span), "the span is not `{span}`: {line}");
        assert!(line.len() <= LONGEST_LINE, "{} chars: {line}", line.len());
    }
    let started = line_with(&lines, &["INFO", "execution started"]);
    assert!(
        started.ends_with(
            "execution started job=logged scheduled_at=2026-01-01 00:00:05 UTC \
             instance_id=logs fence=1 previous_attempts=0"
        ),
        "{started}"
    );
    for identity in ["instance_id=", "fence=", "scheduled_at="] {
        let repeated: Vec<&&String> = in_run.iter().filter(|l| l.contains(identity)).collect();
        assert_eq!(
            repeated.len(),
            1,
            "`{identity}` on every line: {repeated:#?}"
        );
    }
    assert_eq!(
        in_run.iter().filter(|l| l.contains("exporting")).count(),
        2,
        "the job's own lines, one per attempt"
    );
    let finished = line_with(&lines, &["INFO", "execution finished"]);
    let duration = finished
        .split("duration=")
        .nth(1)
        .and_then(|rest| rest.split(['s', ' ']).next())
        .and_then(|secs| secs.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no duration in seconds: {finished}"));
    assert!((1.23..1.3).contains(&duration), "{finished}");
    assert!(
        finished.contains("execution finished outcome=\"success\" status=COMPLETED attempts=2"),
        "{finished}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_key_that_does_not_name_the_job_puts_the_job_in_the_span() {
    let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    let every = Schedule::every(Duration::from_secs(5)).unwrap();
    // The key starts with the job's name, `a`, but does not name it.
    let job = Job::new("a", every, |_ctx: JobContext| async {
        tracing::info!("archiving");
        Ok(())
    })
    .idempotent_key("archive-{date}")
    .unwrap();
    let b = builder(&clock).job(job);
    let lines = logs_of(async {
        let scheduler = b.build().await.unwrap();
        scheduler
            .run_until(sleep(Duration::from_millis(6_000)))
            .await
            .unwrap();
    })
    .await;
    let archiving = line_with(&lines, &["INFO", "archiving"]);
    assert!(
        archiving.contains("tickguard.execution{execution_id=archive-2026-01-01 job=a}"),
        "{archiving}"
    );
}

//! Runs every command of docs/operations.md, in order, against a live scheduler on
//! PostgreSQL whose store holds the scenarios the runbook describes: a crashed owner's run
//! taken over, a dead letter, a completed run with a checkpoint, a skipped tick, a run in
//! progress on another instance (which the runbook stops). Each
//! command must succeed as written; the re-run and the trigger must then have run, once,
//! on the live scheduler.

mod common;

use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tickguard::store::{
    Claim, ClaimRequest, ExecutionRecord, ExecutionRef, ExecutionStore, Finish, HistoryQuery,
    LedgerTick, Status,
};
use tickguard::{Job, JobContext, Schedule, Scheduler};

use common::{Backend, Store};

const RUNBOOK: &str = include_str!("../../docs/operations.md");

/// The commands of the runbook's console blocks, in order.
fn commands() -> Vec<&'static str> {
    let mut in_console = false;
    let mut commands = Vec::new();
    for line in RUNBOOK.lines() {
        match line.trim() {
            "```console" => in_console = true,
            "```" => in_console = false,
            command if in_console => {
                if let Some(command) = command.strip_prefix("$ ") {
                    commands.push(command);
                }
            }
            _ => {}
        }
    }
    commands
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Claims `id` (tick `tick`) of `job` for `owner`, judging other owners gone after
/// `liveness`.
async fn claim(
    store: &dyn ExecutionStore,
    job: &str,
    id: &str,
    tick: DateTime<Utc>,
    owner: &str,
    liveness: Duration,
) -> ExecutionRef {
    let request = ClaimRequest::new(job, id, tick, owner).liveness(liveness);
    match store.claim(&request).await {
        Ok(Claim::Acquired(claimed)) => ExecutionRef {
            job: job.to_owned(),
            execution_id: id.to_owned(),
            fence: claimed.fence,
        },
        other => panic!("claim `{id}`: {other:?}"),
    }
}

/// The scenarios the runbook's commands look at.
async fn seed(store: &dyn ExecutionStore) {
    let job = "nightly-report";
    // A crash: the first owner's run is taken over, and the takeover's run fails for good.
    let tick = at("2026-12-04T01:00:00Z");
    let id = "nightly-report@2026-12-04T01:00:00Z";
    claim(
        store,
        job,
        id,
        tick,
        "web-1#1-crashed",
        Duration::from_secs(30),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let exec = claim(
        store,
        job,
        id,
        tick,
        "web-2#1-took-over",
        Duration::from_millis(10),
    )
    .await;
    let error = "cannot write the report: connection refused (report-db:5432)";
    store
        .finish(&exec, &Finish::new(Status::Failed, 3, Some(error)))
        .await
        .expect("finish the failed run");
    // Partial progress, completed.
    let tick = at("2026-12-02T01:00:00Z");
    let id = "nightly-report@2026-12-02T01:00:00Z";
    let exec = claim(store, job, id, tick, "web-1#2", Duration::from_secs(30)).await;
    store
        .checkpoint(&exec, r#"{"record":1000}"#)
        .await
        .expect("checkpoint");
    store
        .finish(&exec, &Finish::new(Status::Completed, 1, None))
        .await
        .expect("finish the completed run");
    // A tick the misfire policy skipped.
    let skipped = [LedgerTick::pending(
        job,
        "nightly-report@2026-12-03T01:00:00Z",
        at("2026-12-03T01:00:00Z"),
        "web-1#3",
    )
    .skipped("late past the misfire threshold (skip)")];
    store.record_ticks(&skipped).await.expect("record a skip");
    // A run in progress on an instance of its own, for the runbook to stop.
    claim(
        store,
        "sync-orders",
        "sync-orders@2026-12-05T18:00:00Z",
        at("2026-12-05T18:00:00Z"),
        "web-3#1-running",
        Duration::from_secs(300),
    )
    .await;
}

/// The live scheduler: `nightly-report` and `sync-orders`, each counting its runs.
async fn scheduler(store: Arc<dyn ExecutionStore>, runs: &Arc<AtomicU32>) -> Scheduler {
    let counted = |runs: &Arc<AtomicU32>| {
        let runs = runs.clone();
        move |_ctx: JobContext| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<(), tickguard::JobError>(())
            }
        }
    };
    let nightly = Schedule::cron("0 0 2 * * *")
        .and_then(|s| s.in_zone("Europe/Berlin"))
        .expect("a valid schedule");
    let every_minute = Schedule::every(Duration::from_secs(60)).expect("a valid schedule");
    Scheduler::builder()
        .store(store)
        .job(Job::new("nightly-report", nightly, counted(runs)).idempotent())
        .job(
            Job::new(
                "sync-orders",
                every_minute,
                counted(&Arc::new(AtomicU32::new(0))),
            )
            .idempotent(),
        )
        .build()
        .await
        .expect("build the scheduler")
}

/// The execution `id`, once it satisfies `done` (within `within`).
async fn wait_for(
    store: &dyn ExecutionStore,
    id: &str,
    within: Duration,
    done: impl Fn(&ExecutionRecord) -> bool,
) -> ExecutionRecord {
    let start = Instant::now();
    loop {
        let record = store.execution(id).await.expect("read the execution");
        match record {
            Some(record) if done(&record) => return record,
            other if start.elapsed() > within => {
                panic!("`{id}` not done within {within:?}: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_of_the_runbook_works_against_a_live_scheduler() {
    let store = Store::new(Backend::Postgres).await;
    let runs = Arc::new(AtomicU32::new(0));
    let live = scheduler(store.api.clone(), &runs).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(live.run_until(async {
        let _ = stopped.await;
    }));
    seed(&*store.api).await;

    let commands = commands();
    assert!(
        commands.len() >= 15,
        "the runbook's console blocks hold {} commands",
        commands.len()
    );
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_tickguard"))
        .parent()
        .expect("the binary's folder")
        .to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for command in commands {
        if command.starts_with("export TICKGUARD_STORE=") {
            // The test's own store stands in for the example's.
            continue;
        }
        assert!(
            command.starts_with("tickguard "),
            "a runbook command that is not tickguard's: {command}"
        );
        let output = tokio::process::Command::new("sh")
            .args(["-c", command])
            .env("PATH", &path)
            .env("TICKGUARD_STORE", &store.url)
            .env("TICKGUARD_SCHEMA", &store.schema)
            .output()
            .await
            .expect("run sh");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stderr.is_empty() && !stdout.trim().is_empty(),
            "`{command}` failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
    }

    // The live scheduler ran the re-run of the dead letter, and the forced re-run of the
    // completed tick, once each.
    let within = Duration::from_secs(10);
    for id in [
        "nightly-report@2026-12-04T01:00:00Z",
        "nightly-report@2026-12-02T01:00:00Z",
    ] {
        let record = wait_for(&*store.api, id, within, |r| r.status == Status::Completed).await;
        assert!(record.requested_by.is_some(), "{record:?}");
    }
    // And the trigger: one manual execution of nightly-report, completed.
    let page = store
        .api
        .history(&HistoryQuery::new("nightly-report").limit(100))
        .await
        .expect("history");
    let manual: Vec<&ExecutionRecord> = page
        .executions
        .iter()
        .filter(|r| r.id.contains("@manual-"))
        .collect();
    assert_eq!(manual.len(), 1, "{manual:?}");
    wait_for(&*store.api, &manual[0].id.clone(), within, |r| {
        r.status == Status::Completed
    })
    .await;
    // Three runs of the job body: the re-run, the forced re-run, the trigger.
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    // The stopped run carries its cancel request: final, never resumed.
    let asked = store
        .api
        .cancel_requests(&["sync-orders".to_owned()])
        .await
        .expect("cancel requests");
    assert!(
        asked
            .iter()
            .any(|r| r.execution_id == "sync-orders@2026-12-05T18:00:00Z"
                && r.note == "wrong input file, INC-2301"),
        "{asked:?}"
    );
    // The pause was lifted at the end of its section.
    let job = store.api.job("sync-orders").await.expect("read the job");
    assert_eq!(job.and_then(|j| j.paused), None);

    let _ = stop.send(());
    running
        .await
        .expect("the scheduler task")
        .expect("the scheduler stops cleanly");
}

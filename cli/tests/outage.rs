//! `tickguard gaps` finds the ticks of a job that no instance ran because every instance was
//! down: a live scheduler runs a job every second, stops, stays down for a few ticks, starts
//! again; the gaps are exactly the ticks it was down for.

mod common;

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU32, Ordering},
};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tickguard::{Job, JobContext, Misfire, Schedule, Scheduler, store::ExecutionStore};

use common::{Backend, Store};

/// Runs a scheduler with `job` (every second, idempotent, skipping missed ticks) on
/// `store` until it has run `runs` more times; returns the ticks it ran.
async fn run_for(store: Arc<dyn ExecutionStore>, job: &str, runs: u32) -> Vec<DateTime<Utc>> {
    let ticks = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicU32::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let handler = {
        let (ticks, count, done) = (ticks.clone(), count.clone(), done.clone());
        move |ctx: JobContext| {
            let (ticks, count, done) = (ticks.clone(), count.clone(), done.clone());
            async move {
                ticks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(ctx.scheduled_at());
                if count.fetch_add(1, Ordering::SeqCst) + 1 >= runs {
                    done.notify_one();
                }
                Ok::<(), tickguard::JobError>(())
            }
        }
    };
    let schedule = Schedule::every(Duration::from_secs(1)).expect("a valid schedule");
    let scheduler = Scheduler::builder()
        .store(store)
        .job(
            Job::new(job, schedule, handler)
                .idempotent()
                .misfire(Misfire::Skip),
        )
        .build()
        .await
        .expect("build the scheduler");
    let waited = done.clone();
    tokio::time::timeout(
        Duration::from_secs(30),
        scheduler.run_until(async move { waited.notified().await }),
    )
    .await
    .expect("the runs within 30 s")
    .expect("the scheduler stops cleanly");
    let ran = ticks.lock().unwrap_or_else(|p| p.into_inner()).clone();
    ran
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_shows_the_ticks_missed_while_every_instance_was_down() {
    let store = Store::new(Backend::Postgres).await;
    let job = "heartbeat-export";
    let before = run_for(store.api.clone(), job, 2).await;
    // Every instance is down for a few ticks.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let after = run_for(store.api.clone(), job, 2).await;

    let (last_before, first_after) = (before[before.len() - 1], after[0]);
    let down: Vec<DateTime<Utc>> = Schedule::every(Duration::from_secs(1))
        .expect("a valid schedule")
        .upcoming(last_before)
        .take_while(|t| *t < first_after)
        .collect();
    assert!(down.len() >= 3, "down for {down:?}");

    let json = store.run(&["gaps", job, "--since", "1m", "--json"]).json();
    let gaps: Vec<DateTime<Utc>> = json["gaps"]
        .as_array()
        .expect("a list of gaps")
        .iter()
        .map(|g| {
            g["tick"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("a gap's tick: {g}"))
        })
        .filter(|t| *t < first_after)
        .collect();
    assert_eq!(gaps, down, "{json:#}");

    let table = store.run(&["gaps", job, "--since", "1m"]);
    let out = table.ok();
    assert!(out.contains(&down.len().to_string()), "{out}");
}

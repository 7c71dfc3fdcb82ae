//! The `state_and_shutdown` example on its SQLite file: SIGTERM in the middle of the long
//! job saves its place and exits 0 with `scheduler stopped`; the next process resumes the
//! execution at that very item; the job ran with the state `main` gave it.
//!
//! ```text
//! cargo build -p tickguard-examples --example state_and_shutdown
//! cargo test -p tickguard-examples --test state_and_shutdown
//! ```

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

use std::time::Duration;

use support::{Example, temp_dir};

const NAME: &str = "state_and_shutdown";

#[test]
fn sigterm_hands_the_reindex_back_and_the_next_process_resumes_it_where_it_stopped() {
    let dir = temp_dir(NAME);
    // The items one by one at DEBUG, to stop the run mid-way between two checkpoints.
    let env = [
        ("CATALOG_REGION", "eu-test"),
        ("RUST_LOG", "info,state_and_shutdown=debug"),
    ];
    let mut first = Example::start(NAME, "first process", &dir, &["60"], &env);
    let started = first.wait_for("reindex started", Duration::from_secs(8), |l| {
        l.message() == "reindex started"
    });
    assert_eq!(
        started.field("region").as_deref(),
        Some("eu-test"),
        "the job's state: {started:?}"
    );
    let execution = started.field("execution_id").unwrap();
    // Past the checkpoint at item 10, before the next.
    first.wait_for("item 14 reindexed", Duration::from_secs(3), |l| {
        l.message() == "item reindexed" && l.json["fields"]["item"] == 14
    });
    first.signal("TERM");
    let handed_back = first.wait_for(
        "shutting down: handing the reindex back",
        Duration::from_secs(3),
        |l| l.message() == "shutting down: handing the reindex back",
    );
    assert_eq!(handed_back.field("execution_id"), Some(execution.clone()));
    let item = handed_back.json["fields"]["item"].as_u64().unwrap();
    assert!(
        (15..40).contains(&item),
        "stopped at item {item}, not after item 14"
    );
    first.wait_for("scheduler stopped", Duration::from_secs(5), |l| {
        l.message() == "scheduler stopped"
    });
    let status = first.exit(Duration::from_secs(5));
    assert!(status.success(), "SIGTERM: exit {status}");

    let mut second = Example::start(NAME, "second process", &dir, &["60"], &env);
    let resumed = second.wait_for("resuming the reindex", Duration::from_secs(10), |l| {
        l.message() == "resuming the reindex"
    });
    assert_eq!(
        resumed.field("execution_id"),
        Some(execution.clone()),
        "{resumed:?}"
    );
    assert_eq!(
        resumed.json["fields"]["item"], item,
        "resumed where it was handed back"
    );
    assert_eq!(resumed.field("region").as_deref(), Some("eu-test"));
    let finished = second.wait_for(
        "the resumed reindex finished",
        Duration::from_secs(6),
        |l| l.message() == "reindex finished" && l.field("execution_id") == Some(execution.clone()),
    );
    // The client given as state made the calls: the items left, in this process.
    assert_eq!(finished.json["fields"]["calls"], 40 - item, "{finished:?}");
    second.signal("TERM");
    assert!(second.exit(Duration::from_secs(10)).success());
    let _ = std::fs::remove_dir_all(dir);
}

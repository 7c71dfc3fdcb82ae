//! The `state_and_shutdown` example on its SQLite file: SIGTERM in the middle of the long
//! job saves its place and exits 0 with `scheduler stopped`; the next process resumes the
//! execution at that very item; the job ran with the state `main` gave it.
//!
//! ```text
//! cargo build -p tickguard-examples --example state_and_shutdown
//! cargo test -p tickguard-examples --test state_and_shutdown
//! ```

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support_async;

use std::time::Duration;

use support_async::{Example, temp_dir};

const NAME: &str = "state_and_shutdown";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_the_reindex_back_and_the_next_process_resumes_it_where_it_stopped() {
    let dir = temp_dir(NAME);
    // The items one by one at DEBUG, to stop the run mid-way between two checkpoints.
    let env = [
        ("CATALOG_REGION", "eu-test"),
        ("RUST_LOG", "info,state_and_shutdown=debug"),
    ];
    let mut first = Example::start_with(NAME, "first process", &dir, &["60"], &env);
    let started = first
        .wait_for("reindex started", Duration::from_secs(8))
        .await;
    assert_eq!(
        started["fields"]["region"], "eu-test",
        "the job's state: {started}"
    );
    let execution = started["fields"]["execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Past the checkpoint at item 10, before the next.
    first
        .wait_until(Duration::from_secs(3), |l| {
            l["fields"]["message"] == "item reindexed" && l["fields"]["item"] == 14
        })
        .await
        .unwrap_or_else(|| first.fail("item 14 was not reindexed"));
    first.signal("TERM");
    let handed_back = first
        .wait_for(
            "shutting down: handing the reindex back",
            Duration::from_secs(3),
        )
        .await;
    assert_eq!(handed_back["fields"]["execution_id"], execution.as_str());
    let item = handed_back["fields"]["item"].as_u64().unwrap();
    assert!(
        (15..40).contains(&item),
        "stopped at item {item}, not after item 14"
    );
    first
        .wait_for("scheduler stopped", Duration::from_secs(5))
        .await;
    let status = first.exit(Duration::from_secs(5)).await;
    assert!(status.success(), "SIGTERM: exit {status}");

    let mut second = Example::start_with(NAME, "second process", &dir, &["60"], &env);
    let resumed = second
        .wait_for("resuming the reindex", Duration::from_secs(10))
        .await;
    assert_eq!(
        resumed["fields"]["execution_id"],
        execution.as_str(),
        "{resumed}"
    );
    assert_eq!(
        resumed["fields"]["item"], item,
        "resumed where it was handed back"
    );
    assert_eq!(resumed["fields"]["region"], "eu-test");
    let finished = second
        .wait_until(Duration::from_secs(6), |l| {
            l["fields"]["message"] == "reindex finished"
                && l["fields"]["execution_id"] == execution.as_str()
        })
        .await
        .unwrap_or_else(|| second.fail("the resumed reindex did not finish"));
    // The client given as state made the calls: the items left, in this process.
    assert_eq!(finished["fields"]["calls"], 40 - item, "{finished}");
    second.signal("TERM");
    assert!(second.exit(Duration::from_secs(10)).await.success());
    let _ = std::fs::remove_dir_all(dir);
}

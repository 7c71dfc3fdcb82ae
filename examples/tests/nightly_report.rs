//! The `nightly_report` example, two real instances on one PostgreSQL schema: the one
//! running the report is SIGKILLed at record 800 of 1000, and the other takes the execution
//! over once the lease and the heartbeat expire, resuming at record 800; the 4 s run under
//! a 2 s lease still holds it past the ttl (the watchdog renewed it) and is never run
//! twice; the upload that hangs is stopped by its timeout.
//!
//! ```text
//! cargo build -p tickguard-examples --example nightly_report
//! cargo test -p tickguard-examples --test nightly_report
//! ```

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

use std::time::Duration;

use support::Example;
use tickguard::sqlx::{self, AssertSqlSafe};
use tickguard_tests::{postgres_url, scratch_schema};

/// When a log line was written.
fn instant(line: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    line["timestamp"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_report_is_resumed_elsewhere_at_record_800_and_never_runs_twice() {
    let (schema, dir, store) = scratch_schema("nightly_report", &[]).await;
    let url = postgres_url();
    let args = ["60", "--postgres", &url, "--namespace", &schema];
    let mut a = Example::start("nightly_report", "instance A", &dir, &args);
    let started = a.wait_for("report started", Duration::from_secs(8)).await;
    let execution = started["fields"]["execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut b = Example::start("nightly_report", "instance B", &dir, &args);
    b.wait_for("scheduler started", Duration::from_secs(5))
        .await;

    // A's run outlives its 2 s lease: the watchdog renewed it.
    let at_800 = a
        .wait_until(Duration::from_secs(8), |l| {
            l["fields"]["message"] == "checkpoint saved" && l["fields"]["record"] == 800
        })
        .await
        .unwrap_or_else(|| a.fail("no checkpoint at record 800"));
    let lease: (f64,) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT extract(epoch FROM expires_at - now())::float8 FROM \"{schema}\".tickguard_locks \
         WHERE name LIKE '%nightly_report'"
    )))
    .fetch_one(store.pool())
    .await
    .unwrap();
    let running = instant(&at_800) - instant(&started);
    assert!(
        running > chrono::Duration::seconds(2),
        "the run took {running}: not past its ttl"
    );
    assert!(
        lease.0 > 0.0,
        "the lease expired {} s ago, {running} into the run",
        -lease.0
    );
    a.signal("KILL");
    assert_eq!(at_800["fields"]["execution_id"], execution.as_str());
    a.exit(Duration::from_secs(5)).await; // reads what A logged before it died

    let resumed = b
        .wait_until(Duration::from_secs(12), |l| {
            l["fields"]["message"] == "resuming the report from its checkpoint"
                && l["fields"]["execution_id"] == execution.as_str()
        })
        .await
        .unwrap_or_else(|| b.fail(&format!("{execution} was not resumed")));
    assert_eq!(resumed["fields"]["record"], 800, "{resumed}");
    b.wait_until(Duration::from_secs(5), |l| {
        l["fields"]["message"] == "report written"
            && l["fields"]["execution_id"] == execution.as_str()
    })
    .await
    .unwrap_or_else(|| b.fail(&format!("{execution} was not finished")));

    let query = |sql: String| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_as::<_, (String, String, i64)>(AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
                .unwrap()
        }
    };
    // Every run of the report: the killed one (A, still RUNNING in its own eyes) and B's.
    let runs = query(format!(
        "SELECT execution_id, owner, fence FROM \"{schema}\".tickguard_runs \
         WHERE job = 'nightly_report' ORDER BY execution_id, fence"
    ))
    .await;
    let of_execution: Vec<_> = runs.iter().filter(|r| r.0 == execution).collect();
    assert_eq!(of_execution.len(), 2, "one run by A, one by B: {runs:?}");
    assert_ne!(of_execution[0].1, of_execution[1].1, "{runs:?}");
    assert!(
        of_execution[0].2 < of_execution[1].2,
        "B's claim has the higher fence: {runs:?}"
    );
    // No tick's report started twice while its first run was alive: the only execution with
    // two runs is the killed one.
    let mut ids: Vec<_> = runs.iter().map(|r| &r.0).collect();
    ids.dedup();
    assert_eq!(ids.len() + 1, runs.len(), "{runs:?}");
    // B's ticks while A's run outlived its lease found the lock held, and said nothing.
    assert!(
        b.seen("report started")
            .iter()
            .all(|l| l["fields"]["execution_id"] != execution.as_str())
    );

    // The upload that hung (the first in each process) was stopped by its 1 s timeout and
    // recorded TIMED_OUT: A's, unless A died first, else B's.
    let timed_out = format!(
        "SELECT id, status, attempt::int8 FROM \"{schema}\".tickguard_executions \
         WHERE job = 'upload_report' AND status = 'TIMED_OUT'"
    );
    if query(timed_out.clone()).await.is_empty() {
        b.wait_for("upload abandoned", Duration::from_secs(8)).await;
    }
    b.signal("TERM");
    assert!(b.exit(Duration::from_secs(10)).await.success());
    let abandoned: Vec<_> = [a.seen("upload abandoned"), b.seen("upload abandoned")].concat();
    assert!(
        abandoned
            .iter()
            .any(|l| l["fields"]["reason"] == "Some(Timeout)"),
        "the hung upload saw no timeout: {abandoned:?}"
    );
    assert!(
        !query(timed_out).await.is_empty(),
        "no upload recorded TIMED_OUT"
    );

    drop(a);
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .execute(store.pool())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

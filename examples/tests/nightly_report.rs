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

use support::{Example, Line, drop_scratch, runtime};
use tickguard::sqlx::{self, AssertSqlSafe, PgPool};
use tickguard_tests::{postgres_url, scratch_schema};

#[test]
fn a_killed_report_is_resumed_elsewhere_at_record_800_and_never_runs_twice() {
    let runtime = runtime();
    let (schema, dir, store) = runtime.block_on(scratch_schema("nightly_report", &[]));
    let url = postgres_url();
    let args = ["60", "--postgres", &url, "--namespace", &schema];
    let mut a = Example::start("nightly_report", "instance A", &dir, &args, &[]);
    let started = a.wait_for("report started", Duration::from_secs(8), |l| {
        l.message() == "report started"
    });
    let execution = started.field("execution_id").unwrap();
    let b = Example::start("nightly_report", "instance B", &dir, &args, &[]);
    b.wait_for("scheduler started", Duration::from_secs(5), |l| {
        l.message() == "scheduler started"
    });

    // A's run outlives its 2 s lease: the watchdog renewed it.
    let at_800 = a.wait_for("checkpoint at record 800", Duration::from_secs(8), |l| {
        l.message() == "checkpoint saved" && l.json["fields"]["record"] == 800
    });
    runtime.block_on(assert_lease_renewed(
        store.pool(),
        &schema,
        &started,
        &at_800,
    ));
    a.signal("KILL");
    assert_eq!(at_800.field("execution_id"), Some(execution.clone()));
    a.exit(Duration::from_secs(5)); // reads what A logged before it died

    let resumed = b.wait_for(
        &format!("resumption of {execution}"),
        Duration::from_secs(12),
        |l| {
            l.message() == "resuming the report from its checkpoint"
                && l.field("execution_id") == Some(execution.clone())
        },
    );
    assert_eq!(resumed.json["fields"]["record"], 800, "{resumed:?}");
    b.wait_for(
        &format!("end of {execution}"),
        Duration::from_secs(5),
        |l| l.message() == "report written" && l.field("execution_id") == Some(execution.clone()),
    );

    // B's ticks while A's run outlived its lease found the lock held, and said nothing.
    assert!(
        b.seen("report started")
            .iter()
            .all(|l| l.field("execution_id") != Some(execution.clone()))
    );
    runtime.block_on(assert_no_tick_ran_twice(store.pool(), &schema, &execution));
    assert_the_hung_upload_timed_out(&runtime, &a, b, store.pool(), &schema);
    drop(a);
    runtime.block_on(drop_scratch(&schema, &dir, store.pool()));
}

/// The lease is still held `at_800`, more than its 2 s ttl after the run `started`: the
/// watchdog renewed it.
async fn assert_lease_renewed(pool: &PgPool, schema: &str, started: &Line, at_800: &Line) {
    let (left,): (f64,) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT extract(epoch FROM expires_at - now())::float8 FROM \"{schema}\".tickguard_locks \
         WHERE name LIKE '%nightly_report'"
    )))
    .fetch_one(pool)
    .await
    .unwrap();
    let running = at_800.at - started.at;
    assert!(
        running > chrono::Duration::seconds(2),
        "the run took {running}: not past its ttl"
    );
    assert!(
        left > 0.0,
        "the lease expired {} s ago, {running} into the run",
        -left
    );
}

/// Every run of the report: the killed one, by A, and B's of the same execution with a
/// higher fence; no other tick's report ran twice.
async fn assert_no_tick_ran_twice(pool: &PgPool, schema: &str, execution: &str) {
    let runs: Vec<(String, String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT execution_id, owner, fence FROM \"{schema}\".tickguard_runs \
         WHERE job = 'nightly_report' ORDER BY execution_id, fence"
    )))
    .fetch_all(pool)
    .await
    .unwrap();
    let of_execution: Vec<_> = runs.iter().filter(|r| r.0 == execution).collect();
    assert_eq!(of_execution.len(), 2, "one run by A, one by B: {runs:?}");
    assert_ne!(of_execution[0].1, of_execution[1].1, "{runs:?}");
    assert!(
        of_execution[0].2 < of_execution[1].2,
        "B's claim has the higher fence: {runs:?}"
    );
    let mut ids: Vec<_> = runs.iter().map(|r| &r.0).collect();
    ids.dedup();
    assert_eq!(
        ids.len() + 1,
        runs.len(),
        "only {execution} ran twice: {runs:?}"
    );
}

/// The upload that hung (the first in each process) was stopped by its 1 s timeout and
/// recorded TIMED_OUT: A's, unless A died first, else B's. Stops B.
fn assert_the_hung_upload_timed_out(
    runtime: &tokio::runtime::Runtime,
    a: &Example,
    mut b: Example,
    pool: &PgPool,
    schema: &str,
) {
    let timed_out = || {
        let ids: Vec<(String,)> = runtime
            .block_on(
                sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT id FROM \"{schema}\".tickguard_executions \
                     WHERE job = 'upload_report' AND status = 'TIMED_OUT'"
                )))
                .fetch_all(pool),
            )
            .unwrap();
        ids
    };
    if timed_out().is_empty() {
        b.wait_for("upload abandoned", Duration::from_secs(8), |l| {
            l.message() == "upload abandoned"
        });
    }
    b.signal("TERM");
    assert!(b.exit(Duration::from_secs(10)).success());
    let abandoned: Vec<_> = [a.seen("upload abandoned"), b.seen("upload abandoned")].concat();
    assert!(
        abandoned
            .iter()
            .any(|l| l.field("reason").as_deref() == Some("Some(Timeout)")),
        "the hung upload saw no timeout: {abandoned:?}"
    );
    assert!(!timed_out().is_empty(), "no upload recorded TIMED_OUT");
}

//! The `optimistic_version` example, two real instances on one PostgreSQL schema: their
//! jobs race on the same versioned rows, and one instance is frozen (SIGSTOP) in the middle
//! of an update, past its lease, until the other has taken its execution over, then thawed
//! (SIGCONT). The stale run is fenced out and commits nothing, no update is lost, none is
//! applied twice, and every account's version counts its updates.
//!
//! ```text
//! cargo build -p tickguard-examples --example optimistic_version
//! cargo test -p tickguard-examples --test optimistic_version
//! ```

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

use std::time::Duration;

use support::{Example, drop_scratch, runtime};
use tickguard::sqlx::{self, AssertSqlSafe, PgPool};
use tickguard_tests::{postgres_url, scratch_schema};

const NAME: &str = "optimistic_version";

#[test]
fn racing_instances_and_a_stale_run_lose_no_update_and_apply_none_twice() {
    let runtime = runtime();
    let (schema, dir, store) = runtime.block_on(scratch_schema(NAME, &[]));
    let url = postgres_url();
    let args = ["60", "--postgres", &url, "--namespace", &schema];
    let mut a = Example::start(NAME, "instance A", &dir, &args, &[]);
    a.wait_for("account updated", Duration::from_secs(8), |l| {
        l.message() == "account updated"
    });
    let mut b = Example::start(NAME, "instance B", &dir, &args, &[]);
    b.wait_for("scheduler started", Duration::from_secs(5), |l| {
        l.message() == "scheduler started"
    });

    // Freeze A between its read and its write (250 ms apart): on a read it logs from now on.
    let read = a.wait_next("account read", Duration::from_secs(10), |l| {
        l.message() == "account read"
    });
    a.signal("STOP");
    let fields = &read.json["fields"];
    let execution = fields["execution_id"].as_str().unwrap().to_owned();
    let (stale_fence, account) = (
        fields["fence"].as_i64().unwrap(),
        fields["account"].as_i64().unwrap(),
    );

    // B takes the execution over once A's lease and heartbeat are stale, and updates the
    // account A was updating.
    b.wait_for(
        &format!("takeover of {execution}"),
        Duration::from_secs(12),
        |l| {
            let f = &l.json["fields"];
            f["message"] == "account updated"
                && f["execution_id"] == execution.as_str()
                && f["account"] == account
                && f["fence"].as_i64() > Some(stale_fence)
        },
    );
    a.signal("CONT");
    // Thawed, A's run of that execution is refused by the fence and stopped.
    a.wait_for(
        &format!("the stale run of {execution} fenced out"),
        Duration::from_secs(5),
        |l| {
            l.message() == "fenced out: another claim took this execution over; stopping this run"
                && l.json["span"]["execution_id"] == execution.as_str()
        },
    );
    // A goes on as an instance like any other: it updates accounts in later executions.
    a.wait_next("an update after SIGCONT", Duration::from_secs(8), |l| {
        l.message() == "account updated" && l.json["fields"]["execution_id"] != execution.as_str()
    });

    a.signal("TERM");
    b.signal("TERM");
    assert!(a.exit(Duration::from_secs(10)).success());
    assert!(b.exit(Duration::from_secs(10)).success());
    let conflicts = a.seen("version changed under us; reading again").len()
        + b.seen("version changed under us; reading again").len();

    assert!(conflicts > 0, "the jobs never collided on a version");
    let stale = Stale {
        execution: &execution,
        fence: stale_fence,
        account,
    };
    runtime.block_on(assert_no_update_lost_or_doubled(
        store.pool(),
        &schema,
        &stale,
    ));
    runtime.block_on(drop_scratch(&schema, &dir, store.pool()));
}

/// The run frozen mid-update: its execution, fence, and the account it was updating.
struct Stale<'a> {
    execution: &'a str,
    fence: i64,
    account: i64,
}

/// The ledger and the accounts agree: the stale run's update committed nothing, no execution
/// updated an account twice, each balance is the opening one plus every entry, each version
/// counts the entries, and the entries' versions are 1, 2, 3, ... with no gap or repeat.
async fn assert_no_update_lost_or_doubled(pool: &PgPool, schema: &str, stale: &Stale<'_>) {
    let rows = |sql: String| async move {
        sqlx::query_as::<_, (i64, i64, i64)>(AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .unwrap()
    };
    let Stale {
        execution,
        fence: stale_fence,
        account,
    } = stale;
    let updates = rows(format!(
        "SELECT account_id, fence, amount FROM \"{schema}\".account_entries \
         WHERE execution_id = '{execution}' AND account_id = {account}"
    ))
    .await;
    assert_eq!(
        updates.len(),
        1,
        "one update of account {account} by {execution}: {updates:?}"
    );
    assert!(
        updates[0].1 > *stale_fence,
        "the stale run (fence {stale_fence}) committed: {updates:?}"
    );
    let twice = rows(format!(
        "SELECT account_id, count(*), 0::int8 FROM \"{schema}\".account_entries \
         GROUP BY execution_id, account_id HAVING count(*) > 1"
    ))
    .await;
    assert!(twice.is_empty(), "updates applied twice: {twice:?}");
    let accounts = rows(format!(
        "SELECT a.id, (a.balance - 1000 - sum(e.amount))::int8, a.version - count(*) \
         FROM \"{schema}\".accounts a JOIN \"{schema}\".account_entries e ON e.account_id = a.id \
         GROUP BY a.id, a.balance, a.version ORDER BY a.id"
    ))
    .await;
    assert_eq!(
        accounts,
        vec![(1, 0, 0), (2, 0, 0), (3, 0, 0)],
        "(account, balance off by, version off by)"
    );
    let versions = rows(format!(
        "SELECT account_id, count(DISTINCT version), max(version) \
         FROM \"{schema}\".account_entries GROUP BY account_id ORDER BY account_id"
    ))
    .await;
    for (account, distinct, max) in &versions {
        assert_eq!(distinct, max, "account {account}'s versions: {versions:?}");
    }
    assert!(
        versions.len() == 3 && versions.iter().all(|v| v.1 >= 2),
        "too few updates: {versions:?}"
    );
}

//! The `report_with_recovery` example, run for real on a SQLite file in a directory of its
//! own: a report whose first two calls time out is retried 1 s, then 2 s later and completes
//! on its third attempt; a 400 is not retried: the execution is a dead letter
//! (`tickguard failed`), the failure hook and the alert webhook get it; once the cause is
//! gone, `tickguard rerun ID` runs the same execution again and it completes.
//!
//! (A run whose five attempts all fail takes 15 s of backoff; it is the same retry policy, and
//! its dead letter is the same as the 400's, so the test leaves it to the example's users.)
//!
//! ```text
//! cargo build -p tickguard-cli && cargo test -p tickguard-examples --test report_with_recovery
//! ```

mod support;

use std::time::Duration;

use support::{Example, Line, seconds, temp_dir, tickguard, tickguard_json};

const NAME: &str = "report_with_recovery";

fn finished(line: &Line, status: &str) -> bool {
    line.message() == "execution finished" && line.field("status").as_deref() == Some(status)
}

#[test]
fn transient_errors_are_retried_a_permanent_one_is_a_dead_letter_that_a_rerun_completes() {
    let dir = temp_dir("tg_example_report");
    let store = format!(
        "sqlite://{}",
        dir.join("tickguard-report_with_recovery.db").display()
    );
    let example = Example::start(NAME, "the example", &dir, &["60"], &[]);

    // 1. The first report: two timeouts, retried after 1 s and 2 s, then delivered.
    let done = example.wait_for("completed report", Duration::from_secs(12), |l| {
        finished(l, "COMPLETED")
    });
    let id = done.field("execution_id").expect("the execution's id");
    let calls = example.lines(|l| l.is("calling the reporting API", &id));
    assert_eq!(calls.len(), 3, "{calls:?}");
    let retries = example.lines(|l| l.is("attempt failed; retrying", &id));
    let delays: Vec<_> = retries.iter().filter_map(|l| l.field("delay")).collect();
    assert_eq!(delays, ["1s", "2s"], "the backoff doubles from 1 s");
    for (i, expected) in [(0, 1.0), (1, 2.0)] {
        let spacing = seconds(&calls[i], &calls[i + 1]);
        assert!(
            (expected..expected + 1.0).contains(&spacing),
            "attempt {} came {spacing:.2} s after attempt {}, expected {expected} s",
            i + 2,
            i + 1
        );
    }
    assert_eq!(done.field("attempts").as_deref(), Some("3"));

    // 2. The API rejects the request: one attempt, not retried.
    std::fs::write(dir.join("report-api.reject"), "").expect("break the API");
    let failed = example.wait_for("failed report", Duration::from_secs(8), |l| {
        finished(l, "FAILED")
    });
    let failed_id = failed.field("execution_id").expect("the execution's id");
    assert_eq!(failed.field("attempts").as_deref(), Some("1"), "{failed:?}");
    assert_eq!(
        example
            .lines(|l| l.is("calling the reporting API", &failed_id))
            .len(),
        1,
        "a permanent error is not retried"
    );
    // The failure hook (the recovery) and the webhook got it.
    example.wait_for("recovery", Duration::from_secs(5), |l| {
        l.is("recover: ", &failed_id)
    });
    let alert = example.wait_for("alert", Duration::from_secs(5), |l| {
        l.message().starts_with("alert webhook received")
            && l.field("execution_id").as_deref() == Some(failed_id.as_str())
    });
    assert!(alert.message().contains("400"), "{alert:?}");
    assert_eq!(alert.field("outcome").as_deref(), Some("failure"));

    // 3. It is a dead letter.
    let dead = tickguard_json(&store, None, &["failed"]);
    let letter = dead
        .as_array()
        .and_then(|all| all.iter().find(|e| e["id"] == failed_id.as_str()))
        .unwrap_or_else(|| panic!("{failed_id} is not in `tickguard failed`: {dead}"));
    assert_eq!(letter["status"], "FAILED");
    assert!(letter["error"].as_str().unwrap_or_default().contains("400"));

    // 4. The cause is fixed; the operator re-runs the same execution, and it completes.
    std::fs::remove_file(dir.join("report-api.reject")).expect("mend the API");
    let rerun = tickguard(&store, None, &["rerun", &failed_id, "--by", "test"]);
    assert!(rerun.contains("pending again"), "{rerun}");
    example.wait_for("re-run completed", Duration::from_secs(8), |l| {
        l.is("execution finished", &failed_id) && finished(l, "COMPLETED")
    });
    let execution = tickguard_json(&store, None, &["execution", &failed_id]);
    assert_eq!(execution["execution"]["status"], "COMPLETED", "{execution}");
    let outcomes: Vec<_> = execution["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|run| run["outcome"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(outcomes, ["FAILED", "COMPLETED"], "{execution}");
    drop(example);
    let _ = std::fs::remove_dir_all(dir);
}

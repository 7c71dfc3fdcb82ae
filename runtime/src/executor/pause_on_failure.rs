//! `pause_on_failure = N`: after the job's last N executions failed, on whichever instances
//! they ran, the job is paused through the store, for every instance, until an operator
//! resumes it.

use chrono::{DateTime, Utc};

use super::{JobEntry, Runtime, bounded, end::RunEnd};
use crate::{
    context::Execution,
    store::{ExecutionRecord, HistoryQuery, Status, StoreError},
};

/// Who a pause made by this policy is by (`{PAUSED_BY_POLICY} on {instance}`): the control
/// task tells it from an operator's by this prefix.
pub(crate) const PAUSED_BY_POLICY: &str = "tickguard pause_on_failure";

/// The most outcomes read, newest tick first, to find the last N that ended: N, with room
/// for re-runs of older ticks, whose end is recent but whose tick is not.
fn history_limit(n: u32) -> usize {
    n as usize * 2 + 16
}

/// After `exec`'s end was recorded as a failure (FAILED or TIMED_OUT, its last attempt):
/// pauses the job if its last `pause_on_failure` executions that ended (COMPLETED, FAILED,
/// TIMED_OUT; cancelled and skipped ones do not count), read from the store and so counted
/// across every instance, all failed, and all ended after the job's last resume (a resume
/// starts the count again). The pause's note says why, and which execution failed last
/// with what; `by` names tickguard and this instance. A store that cannot answer, or
/// refuses, is logged and left: the next failure tries again.
pub(super) async fn check(rt: &Runtime, entry: &JobEntry, exec: &Execution, end: &RunEnd) {
    let job = &entry.job;
    let Some(n) = job.pause_on_failure else {
        return;
    };
    if !matches!(end.status, Status::Failed | Status::TimedOut) {
        return;
    }
    let pause = async {
        let Some(summary) = bounded(rt.store.job(&job.name)).await? else {
            return Ok(None);
        };
        if summary.paused.is_some() {
            // Paused already (by an operator, or another instance): keep that note.
            return Ok(None);
        }
        let outcomes = HistoryQuery::new(job.name.as_str())
            .statuses([Status::Completed, Status::Failed, Status::TimedOut])
            .limit(history_limit(n));
        let executions = bounded(rt.store.history(&outcomes)).await?.executions;
        if !failed_in_a_row(&executions, n, summary.resumed_at) {
            return Ok(None);
        }
        let note = note(n, &exec.exec.execution_id, end);
        let by = format!("{PAUSED_BY_POLICY} on {}", rt.instance_id);
        bounded(rt.store.pause(&job.name, &note, &by)).await?;
        Ok::<_, StoreError>(Some(note))
    };
    match pause.await {
        Ok(None) => {}
        Ok(Some(note)) => {
            entry.metrics.paused_on_failure.increment(1);
            tracing::warn!(
                job = %job.name, failures = n, %note,
                "job paused on every instance: {note}; once the cause is fixed, resume it \
                 with `tickguard resume {}`",
                job.name
            );
        }
        Err(e) => tracing::warn!(
            job = %job.name, error = %e, failures = n,
            "cannot pause the job after its failures ({e}); the next failure tries again"
        ),
    }
}

/// Whether the `n` executions of `executions` that ended last (by their finish) all failed,
/// each after `resumed_at`.
fn failed_in_a_row(
    executions: &[ExecutionRecord],
    n: u32,
    resumed_at: Option<DateTime<Utc>>,
) -> bool {
    let mut ended: Vec<(DateTime<Utc>, bool)> = executions
        .iter()
        .filter_map(|e| {
            let failed = match e.status {
                Status::Completed => false,
                Status::Failed | Status::TimedOut => true,
                _ => return None,
            };
            Some((e.finished_at?, failed))
        })
        .collect();
    ended.sort_unstable_by(|a, b| b.cmp(a));
    let n = n as usize;
    ended.len() >= n
        && ended[..n]
            .iter()
            .all(|(at, failed)| *failed && resumed_at.is_none_or(|r| *at > r))
}

/// The pause's note: `paused after 3 consecutive failed executions; the last, {id}, failed:
/// {the first line of its error}`.
fn note(n: u32, execution_id: &str, end: &RunEnd) -> String {
    let error = end
        .error
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let first_line = error.lines().next().unwrap_or("").trim();
    let verb = if end.status == Status::TimedOut {
        "timed out"
    } else {
        "failed"
    };
    format!(
        "paused after {n} consecutive failed executions; the last, {execution_id}, {verb}: {first_line}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::circuit_breaker::history_fixture::{history, t};

    #[test]
    fn the_last_n_ended_executions_decide() {
        let cases: &[(&str, u32, Option<i64>, bool)] = &[
            ("", 3, None, false),
            ("F@1 F@2", 3, None, false),
            ("F@1 F@2 F@3", 3, None, true),
            ("F@1 T@2 F@3", 3, None, true),
            ("F@1 F@2 C@3", 3, None, false),
            ("C@1 F@2 F@3 F@4", 3, None, true),
            ("F@1 F@2 C@3 F@4", 3, None, false),
            ("F@1 X@2 F@3 S@4 R@5 F@6", 3, None, true),
            // A resume starts the count again.
            ("F@1 F@2 F@3", 3, Some(2), false),
            ("F@1 F@2 F@3 F@4 F@5", 3, Some(2), true),
            ("F@1 F@2 F@3", 1, Some(2), true),
        ];
        for (text, n, resumed, want) in cases {
            let mut records = history(text);
            records.reverse();
            assert_eq!(
                failed_in_a_row(&records, *n, resumed.map(t)),
                *want,
                "{text}, n = {n}, resumed at {resumed:?}"
            );
        }
    }

    #[test]
    fn the_note_says_why_and_what_failed_last() {
        let end = RunEnd::failed(
            1,
            crate::job_error::JobError::permanent("card gateway 503\nretry later"),
        );
        assert_eq!(
            note(3, "billing@2026-03-01T12:00:00Z", &end),
            "paused after 3 consecutive failed executions; the last, \
             billing@2026-03-01T12:00:00Z, failed: card gateway 503"
        );
    }
}

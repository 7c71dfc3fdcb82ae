//! Ticks lost for good: a misfire the policy skips, a tick a run overlapped, due ticks left
//! unrun at shutdown. Each is counted, logged (throttled), and reported to the failure hooks
//! like a failed run, so that a tick never goes missing in silence. Skips that lose nothing
//! (`locked`: another instance runs the tick; `duplicate`: it ran already) are not reported.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::{JobEntry, Runtime, hooks, identity};
use crate::{job::FailureReport, metrics::SkipReason, throttle::Warning};

/// Ticks of one job lost for good, for [`report_lost`].
#[derive(Clone, Debug)]
pub(crate) struct Lost {
    /// Why: [`SkipReason::Misfire`], [`SkipReason::Overlap`] or [`SkipReason::Unavailable`].
    pub(crate) reason: SkipReason,
    /// How many ticks.
    pub(crate) ticks: u64,
    /// The latest of them.
    pub(crate) latest: DateTime<Utc>,
    /// What happened, in a few words, for the log and the report.
    pub(crate) detail: String,
}

/// Reports ticks of `entry`'s job lost for good: counts them in
/// `tickguard_ticks_lost_total{job, reason}`, logs a WARN (the first of each reason, then at
/// most one a minute summing up the ticks since), and calls the job's and the scheduler's
/// failure hooks (the alert webhook among them) with a `skipped` [`FailureReport`].
pub(crate) async fn report_lost(rt: &Runtime, entry: &JobEntry, lost: Lost) {
    if lost.ticks == 0 {
        return;
    }
    let job = &entry.job;
    entry.metrics.lost(lost.reason, lost.ticks);
    if let Some(warning) = entry
        .warnings
        .count(lost.reason, Instant::now(), lost.ticks)
    {
        warn(&job.name, &lost, &warning);
    }
    let report = FailureReport {
        job: job.name.clone(),
        execution_id: identity::tick_id(job, lost.latest).unwrap_or_default(),
        scheduled_at: lost.latest,
        instance_id: rt.instance_id.to_string(),
        attempts: 0,
        outcome: "skipped",
        error_chain: vec![lost.detail],
        duration: std::time::Duration::ZERO,
        skip_reason: Some(lost.reason),
        ticks_lost: lost.ticks,
    };
    hooks::call(rt, job, &report).await;
}

/// Logs the warning `warning` lets through.
fn warn(job: &str, lost: &Lost, warning: &Warning) {
    let (reason, ticks, latest, detail) = (
        lost.reason.as_str(),
        warning.ticks,
        lost.latest,
        &lost.detail,
    );
    if warning.first {
        tracing::warn!(%job, reason, ticks, %latest, "ticks lost for good: {detail}");
    } else {
        tracing::warn!(
            %job, reason, ticks, %latest,
            "ticks lost for good since the last such warning (one a minute at most): {detail}"
        );
    }
}

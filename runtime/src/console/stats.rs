//! What the jobs page says of a job's recent runs: the share that completed and the 95th
//! percentile of their durations, from the store's history.

use std::time::Duration;

use crate::store::{ExecutionRecord, ExecutionStore, HistoryQuery, Status, StoreError};

/// How many of a job's latest outcomes the figures cover.
pub(crate) const RUNS: usize = 100;

/// A job's latest outcomes, in figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RunStats {
    /// Outcomes counted (COMPLETED, FAILED, TIMED_OUT).
    pub(crate) runs: usize,
    /// Of them, COMPLETED.
    pub(crate) completed: usize,
    /// The 95th percentile of their durations.
    pub(crate) p95: Option<Duration>,
}

impl RunStats {
    /// The completed share in percent; `None` with no outcomes.
    pub(crate) fn success_percent(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.completed as f64 * 100.0 / self.runs as f64)
    }
}

/// The figures of `job`'s latest [`RUNS`] outcomes.
pub(crate) async fn recent(store: &dyn ExecutionStore, job: &str) -> Result<RunStats, StoreError> {
    let query = HistoryQuery::new(job)
        .statuses([Status::Completed, Status::Failed, Status::TimedOut])
        .limit(RUNS);
    Ok(of(&store.history(&query).await?.executions))
}

/// The figures of `outcomes`.
fn of(outcomes: &[ExecutionRecord]) -> RunStats {
    let mut durations: Vec<Duration> = outcomes
        .iter()
        .filter_map(|e| (e.finished_at? - e.started_at).to_std().ok())
        .collect();
    durations.sort_unstable();
    // The nearest-rank percentile: the smallest duration that 95% of the runs do not exceed.
    let rank = (durations.len() * 95).div_ceil(100);
    RunStats {
        runs: outcomes.len(),
        completed: outcomes
            .iter()
            .filter(|e| e.status == Status::Completed)
            .count(),
        p95: rank.checked_sub(1).and_then(|i| durations.get(i).copied()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn run(status: Status, millis: i64) -> ExecutionRecord {
        let start = Utc.with_ymd_and_hms(2026, 12, 5, 0, 0, 0).unwrap();
        ExecutionRecord {
            id: "j@1".into(),
            job: "j".into(),
            scheduled_at: start,
            status,
            fence: 1,
            owner: "o".into(),
            attempts: 1,
            started_at: start,
            heartbeat_at: start,
            finished_at: Some(start + chrono::Duration::milliseconds(millis)),
            error: None,
            checkpoint: None,
            requested_by: None,
        }
    }

    #[test]
    fn success_share_and_p95() {
        let mut runs: Vec<_> = (1..=19).map(|i| run(Status::Completed, i * 10)).collect();
        runs.push(run(Status::Failed, 5_000));
        let stats = of(&runs);
        assert_eq!((stats.runs, stats.completed), (20, 19));
        assert_eq!(stats.success_percent(), Some(95.0));
        assert_eq!(stats.p95, Some(Duration::from_millis(190)));
        assert_eq!(of(&[]).p95, None);
        assert_eq!(of(&[]).success_percent(), None);
    }
}

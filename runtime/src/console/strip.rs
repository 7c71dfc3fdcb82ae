//! The strip of a job's recent ticks on its page: one cell per tick its schedule says was
//! due, coloured by what became of it, so that a gap (no execution) or a skip shows at a
//! glance. A fixed delay has no ticks of its own: its strip is its latest executions.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::Schedule;
use crate::gaps::{self, Gap};
use crate::store::{ExecutionRecord, ExecutionStore, HistoryQuery, JobSummary, Status, StoreError};

/// How many ticks the strip shows.
pub(crate) const TICKS: usize = 48;

/// A tick with no execution yet is only a gap once it is this old: a tick due a moment ago
/// may not be claimed yet.
const GRACE: chrono::Duration = chrono::Duration::seconds(30);

/// What became of one tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cell {
    /// An execution ran (or runs, or waits) for it: its latest status and id.
    Ran(Status, String),
    /// Its execution was skipped for good: the id and the reason.
    Skipped(String, Option<String>),
    /// Due while the job is paused.
    Paused,
    /// No execution, and due long enough ago that one should exist: a gap.
    Missing,
    /// No execution yet, due a moment ago.
    Due,
}

/// The strip: ticks oldest first, each with what became of it.
pub(crate) async fn recent(
    store: &dyn ExecutionStore,
    job: &JobSummary,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, Cell)>, StoreError> {
    if schedule.is_fixed_delay() {
        let latest = store
            .history(&HistoryQuery::new(&job.name).limit(TICKS))
            .await?;
        return Ok(latest
            .executions
            .into_iter()
            .rev()
            .map(|e| (e.scheduled_at, cell_of(&e)))
            .collect());
    }
    // The oldest of the latest TICKS ticks, but not before the job existed nor before what
    // a prune deleted (their absence says nothing).
    let mut from = now;
    for _ in 0..TICKS {
        match schedule.latest_at_or_before(from - chrono::Duration::milliseconds(1)) {
            Some(t) => from = t,
            None => break,
        }
    }
    from = from.max(job.created_at);
    if let Some(pruned) = job.pruned_through {
        from = from.max(pruned + chrono::Duration::nanoseconds(1));
    }
    let ticks = gaps::ticks(schedule, from, now).unwrap_or_default();
    let query = HistoryQuery::new(&job.name).since(from).limit(TICKS * 4);
    let executions = store.history(&query).await?.executions;
    Ok(cells(&ticks, &executions, job, now))
}

/// What became of each of `ticks`, given the `executions` of their window.
fn cells(
    ticks: &[DateTime<Utc>],
    executions: &[ExecutionRecord],
    job: &JobSummary,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, Cell)> {
    let found: HashMap<usize, Gap> = gaps::find(ticks, executions)
        .into_iter()
        .map(|gap| match &gap {
            Gap::Missing { index, .. } | Gap::Skipped { index, .. } => (*index, gap),
        })
        .collect();
    // Newest first: the first execution seen for a tick is its latest.
    let mut ran: HashMap<i64, &ExecutionRecord> = HashMap::new();
    for e in executions.iter().filter(|e| !gaps::is_manual(e)) {
        ran.entry(e.scheduled_at.timestamp_millis()).or_insert(e);
    }
    let paused_since = job.paused.as_ref().map(|p| p.at);
    ticks
        .iter()
        .enumerate()
        .map(|(index, &tick)| {
            let cell = match found.get(&index) {
                Some(Gap::Skipped {
                    execution_id,
                    reason,
                    ..
                }) => Cell::Skipped(execution_id.clone(), reason.clone()),
                Some(Gap::Missing { .. }) if paused_since.is_some_and(|at| tick >= at) => {
                    Cell::Paused
                }
                Some(Gap::Missing { .. }) if now - tick < GRACE => Cell::Due,
                Some(Gap::Missing { .. }) => Cell::Missing,
                None => ran
                    .get(&tick.timestamp_millis())
                    .map_or(Cell::Due, |e| cell_of(e)),
            };
            (tick, cell)
        })
        .collect()
}

/// The cell of one execution.
fn cell_of(e: &ExecutionRecord) -> Cell {
    match e.status {
        Status::Skipped => Cell::Skipped(e.id.clone(), e.error.clone()),
        status => Cell::Ran(status, e.id.clone()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::store::{JobRegistration, Pause};

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, s).unwrap()
    }

    fn execution(tick: DateTime<Utc>, status: Status, manual: bool) -> ExecutionRecord {
        let id = if manual {
            format!("job@manual-{}", tick.timestamp_millis())
        } else {
            format!("job@{}", tick.timestamp())
        };
        ExecutionRecord {
            id,
            job: "job".into(),
            scheduled_at: tick,
            status,
            fence: 1,
            owner: "o".into(),
            attempts: 1,
            started_at: tick,
            heartbeat_at: tick,
            finished_at: Some(tick),
            error: (status == Status::Skipped).then(|| "late".to_owned()),
            checkpoint: None,
            requested_by: manual.then(|| "ops".to_owned()),
        }
    }

    #[test]
    fn each_tick_shows_what_became_of_it() {
        let ticks: Vec<_> = [0, 10, 20, 30, 40, 50].into_iter().map(at).collect();
        let executions = [
            execution(at(0), Status::Completed, false),
            execution(at(10), Status::Failed, false),
            execution(at(20), Status::Skipped, false),
            // A manual execution at a tick's instant does not cover the tick.
            execution(at(30), Status::Completed, true),
        ];
        let paused = job(Some(Pause::new("maintenance", "ops", at(45))));
        let now = at(50) + chrono::Duration::seconds(70);
        let shown: Vec<Cell> = cells(&ticks, &executions, &paused, now)
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(
            shown,
            [
                Cell::Ran(Status::Completed, "job@1796472000".into()),
                Cell::Ran(Status::Failed, "job@1796472010".into()),
                Cell::Skipped("job@1796472020".into(), Some("late".into())),
                Cell::Missing,
                Cell::Missing,
                Cell::Paused,
            ]
        );
        let soon = cells(&ticks, &executions, &job(None), at(55));
        assert_eq!(
            soon.last().map(|(_, c)| c),
            Some(&Cell::Due),
            "a tick due a moment ago"
        );
    }

    #[tokio::test]
    async fn a_fixed_delay_shows_its_latest_executions() {
        let store = crate::store::MemoryStore::new();
        let schedule = Schedule::after(std::time::Duration::from_secs(300)).unwrap();
        let registration =
            JobRegistration::new("drain", schedule.to_string(), "UTC".to_owned(), None);
        store.register(&registration).await.unwrap();
        let triggered = store.trigger("drain", "ops").await.unwrap();
        let job = store.job("drain").await.unwrap().unwrap();
        let strip = recent(&store, &job, &schedule, Utc::now()).await.unwrap();
        assert_eq!(
            strip,
            [(
                triggered.scheduled_at,
                Cell::Ran(Status::Pending, triggered.id)
            )]
        );
    }

    /// The job of these ticks, every 10 s since `at(0)`.
    fn job(paused: Option<Pause>) -> JobSummary {
        JobSummary {
            name: "job".into(),
            trigger: "every 10s".into(),
            zone: "UTC".into(),
            fence: 1,
            created_at: at(0),
            last_tick: None,
            next_fire: None,
            paused,
            last: None,
            pruned_through: None,
            resumed_at: None,
            circuit_breaker: None,
        }
    }
}

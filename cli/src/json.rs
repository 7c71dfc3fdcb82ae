//! The JSON that `--json` prints: structs of the command's own, so that the output stays
//! the same whatever the library's types become. Times are RFC 3339 in UTC, statuses are
//! the store's names (`COMPLETED`, `TIMED_OUT`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tickguard::store::{ExecutionDetail, ExecutionRecord, JobSummary, RunRecord};
use tickguard::{BreakerState, CircuitBreaker};

/// An instant as JSON: RFC 3339, UTC, with the fraction only when there is one.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn time_opt(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(time)
}

/// A job.
#[derive(Debug, Serialize)]
pub(crate) struct Job {
    pub(crate) name: String,
    pub(crate) trigger: String,
    pub(crate) zone: String,
    pub(crate) fence: u64,
    pub(crate) created_at: String,
    pub(crate) last_tick: Option<String>,
    pub(crate) next_fire: Option<String>,
    pub(crate) paused: Option<Pause>,
    pub(crate) last: Option<Last>,
}

/// A job's pause.
#[derive(Debug, Serialize)]
pub(crate) struct Pause {
    pub(crate) note: String,
    pub(crate) by: String,
    pub(crate) at: String,
}

/// A job's last execution that ended.
#[derive(Debug, Serialize)]
pub(crate) struct Last {
    pub(crate) execution_id: String,
    pub(crate) scheduled_at: String,
    pub(crate) status: String,
    pub(crate) finished_at: Option<String>,
}

impl From<&JobSummary> for Job {
    fn from(job: &JobSummary) -> Self {
        Self {
            name: job.name.clone(),
            trigger: job.trigger.clone(),
            zone: job.zone.clone(),
            fence: job.fence,
            created_at: time(job.created_at),
            last_tick: time_opt(job.last_tick),
            next_fire: time_opt(job.next_fire),
            paused: job.paused.as_ref().map(|p| Pause {
                note: p.note.clone(),
                by: p.by.clone(),
                at: time(p.at),
            }),
            last: job.last.as_ref().map(|l| Last {
                execution_id: l.execution_id.clone(),
                scheduled_at: time(l.scheduled_at),
                status: l.status.as_str().to_owned(),
                finished_at: time_opt(l.finished_at),
            }),
        }
    }
}

/// `show`: the job, its circuit breaker, and its latest executions.
#[derive(Debug, Serialize)]
pub(crate) struct Show {
    pub(crate) job: Job,
    /// `null` for a job without a circuit breaker.
    pub(crate) circuit_breaker: Option<Breaker>,
    pub(crate) recent: Vec<Execution>,
}

/// A job's circuit breaker: its settings, the jobs that share it, and its state computed
/// from their executions.
#[derive(Debug, Serialize)]
pub(crate) struct Breaker {
    /// The shared name, or the job's for a breaker of its own.
    pub(crate) name: String,
    pub(crate) shared: bool,
    pub(crate) failure_rate: f64,
    pub(crate) window: u32,
    pub(crate) min_runs: u32,
    pub(crate) open_for_ms: u64,
    pub(crate) jobs: Vec<String>,
    /// `closed`, `half-open` or `open`.
    pub(crate) state: String,
    /// Closed: the outcomes in the window, and the failures among them.
    pub(crate) runs: Option<u32>,
    pub(crate) failures: Option<u32>,
    /// Open: since when, and until when.
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
    /// Half-open: the probe running, if one is.
    pub(crate) probe: Option<String>,
}

impl Breaker {
    /// The breaker of `job` shared by `jobs`, in `state`.
    pub(crate) fn new(
        job: &str,
        breaker: &CircuitBreaker,
        jobs: &[String],
        state: &BreakerState,
    ) -> Self {
        let (mut runs, mut failures, mut since, mut until, mut probe) =
            (None, None, None, None, None);
        match state {
            BreakerState::Closed {
                runs: r,
                failures: f,
            } => (runs, failures) = (Some(*r), Some(*f)),
            BreakerState::Open { since: s, until: u } => {
                (since, until) = (Some(time(*s)), Some(time(*u)))
            }
            BreakerState::HalfOpen { since: s, probe: p } => {
                (since, probe) = (Some(time(*s)), p.clone())
            }
            _ => {}
        }
        Self {
            name: breaker.label(job).to_owned(),
            shared: breaker.shared_name().is_some(),
            failure_rate: breaker.opening_rate(),
            window: breaker.window_len(),
            min_runs: breaker.least_runs(),
            open_for_ms: u64::try_from(breaker.open_duration().as_millis()).unwrap_or(u64::MAX),
            jobs: jobs.to_vec(),
            state: state.as_str().to_owned(),
            runs,
            failures,
            since,
            until,
            probe,
        }
    }
}

/// An execution.
#[derive(Debug, Serialize)]
pub(crate) struct Execution {
    pub(crate) id: String,
    pub(crate) job: String,
    pub(crate) scheduled_at: String,
    pub(crate) status: String,
    pub(crate) attempts: u32,
    pub(crate) fence: u64,
    pub(crate) owner: String,
    pub(crate) started_at: String,
    pub(crate) heartbeat_at: String,
    pub(crate) finished_at: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) requested_by: Option<String>,
}

impl From<&ExecutionRecord> for Execution {
    fn from(e: &ExecutionRecord) -> Self {
        Self {
            id: e.id.clone(),
            job: e.job.clone(),
            scheduled_at: time(e.scheduled_at),
            status: e.status.as_str().to_owned(),
            attempts: e.attempts,
            fence: e.fence,
            owner: e.owner.clone(),
            started_at: time(e.started_at),
            heartbeat_at: time(e.heartbeat_at),
            finished_at: time_opt(e.finished_at),
            error: e.error.clone(),
            requested_by: e.requested_by.clone(),
        }
    }
}

/// `history`: one page, and the cursor of the next.
#[derive(Debug, Serialize)]
pub(crate) struct History {
    pub(crate) job: String,
    pub(crate) executions: Vec<Execution>,
    /// The `--after` value of the next page; `null` on the last page.
    pub(crate) next: Option<String>,
}

/// `execution`: the execution and its runs.
#[derive(Debug, Serialize)]
pub(crate) struct Detail {
    pub(crate) execution: Execution,
    pub(crate) runs: Vec<Run>,
}

/// One run of an execution.
#[derive(Debug, Serialize)]
pub(crate) struct Run {
    pub(crate) fence: u64,
    pub(crate) owner: String,
    pub(crate) started_at: String,
    pub(crate) ended_at: Option<String>,
    /// `COMPLETED`, `FAILED`, … or `ABANDONED`; `null` while it runs.
    pub(crate) outcome: Option<String>,
    pub(crate) attempts: u32,
    pub(crate) error: Option<String>,
}

impl From<&RunRecord> for Run {
    fn from(r: &RunRecord) -> Self {
        Self {
            fence: r.fence,
            owner: r.owner.clone(),
            started_at: time(r.started_at),
            ended_at: time_opt(r.ended_at),
            outcome: r.outcome.map(|o| o.as_str().to_owned()),
            attempts: r.attempts,
            error: r.error.clone(),
        }
    }
}

impl From<&ExecutionDetail> for Detail {
    fn from(d: &ExecutionDetail) -> Self {
        Self {
            execution: Execution::from(&d.execution),
            runs: d.runs.iter().map(Run::from).collect(),
        }
    }
}

/// `gaps`: the window looked at and the ticks found.
#[derive(Debug, Serialize)]
pub(crate) struct Gaps {
    pub(crate) job: String,
    pub(crate) trigger: String,
    /// The start of the window: `--since`, or the job's `created_at` if later.
    pub(crate) since: String,
    /// The end of the window (now less the grace for ticks not claimed yet), excluded.
    pub(crate) until: String,
    /// The latest tick whose record a prune deleted, when it falls in the window: the
    /// window starts after it.
    pub(crate) pruned_through: Option<String>,
    /// Ticks the schedule had in the window.
    pub(crate) ticks: usize,
    pub(crate) gaps: Vec<Gap>,
}

/// A tick with no execution, or a skipped one.
#[derive(Debug, Serialize)]
pub(crate) struct Gap {
    pub(crate) tick: String,
    /// `missing` (no execution) or `skipped`.
    pub(crate) kind: &'static str,
    /// The skipped execution.
    pub(crate) execution_id: Option<String>,
    /// Why it was skipped.
    pub(crate) reason: Option<String>,
}

/// Prints `value` as pretty JSON on standard output.
pub(crate) fn print(value: &impl Serialize) -> Result<(), crate::error::Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| crate::error::Failure::new(format!("could not write JSON: {e}")))?;
    crate::output::print(&format!("{text}\n"));
    Ok(())
}

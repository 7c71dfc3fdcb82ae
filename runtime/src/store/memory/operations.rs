//! The operators' side of the memory store: jobs with their pause, history pages, runs,
//! manual triggers and re-runs, and pruning.

use std::sync::{Arc, Mutex, atomic::Ordering};

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::{JobState, MemoryStore, Row, fnv, lock};
use crate::circuit_breaker::CircuitBreaker;
use crate::store::operations::{
    ABANDONED, ABANDONED_ASKED_TO_STOP, cancel_refused, no_execution, no_job, rerun_refused,
};
use crate::store::{
    CancelKind, CancelRequest, ExecutionDetail, ExecutionRecord, HistoryPage, HistoryQuery,
    JobRegistration, JobSummary, LastOutcome, Pause, PruneReport, PruneRequest, RunOutcome, Status,
    StoreError,
};

/// What operators see and change of one job.
#[derive(Debug, Default)]
pub(in crate::store) struct JobOps {
    trigger: String,
    zone: String,
    next_fire: Option<DateTime<Utc>>,
    paused: Option<Pause>,
    /// When the job was last resumed from a pause.
    resumed_at: Option<DateTime<Utc>>,
    circuit_breaker: Option<CircuitBreaker>,
    /// The latest tick whose row a prune deleted: a claim of a tick up to it that has no
    /// row is answered [`Claim::Pruned`](crate::store::Claim::Pruned).
    pub(super) pruned_through: Option<DateTime<Utc>>,
    /// When a prune last pruned the job, by tokio's clock.
    pruned_at: Option<Instant>,
}

impl JobOps {
    /// Records the job's trigger, zone and next fire time.
    pub(super) fn register(&mut self, job: &JobRegistration<'_>) {
        self.trigger.clone_from(&job.trigger);
        self.zone.clone_from(&job.zone);
        self.next_fire = job.next_fire;
        self.circuit_breaker.clone_from(&job.circuit_breaker);
    }
}

/// Ends the row's open run as abandoned, at its owner's last heartbeat: a claim took the
/// execution over.
pub(super) fn abandon_runs(row: &mut Row) {
    let heartbeat = row.record.heartbeat_at;
    for run in row.runs.iter_mut().filter(|r| r.outcome.is_none()) {
        run.ended_at = Some(heartbeat);
        run.outcome = Some(RunOutcome::Abandoned);
    }
}

/// The error of a running execution abandoned by a claim (its owner stopped heartbeating),
/// saying who had asked it to stop, if anyone had: the request makes it final.
pub(super) fn abandoned_error(cancel: Option<&CancelRequest>) -> String {
    match cancel {
        None => ABANDONED,
        Some(_) => ABANDONED_ASKED_TO_STOP,
    }
    .to_owned()
}

/// The statuses a job's last outcome is read from: executions that ran to their end.
fn ended(status: Status) -> bool {
    status.is_final()
}

impl MemoryStore {
    /// Every job (or the one named), by name.
    fn states(&self, only: Option<&str>) -> Vec<(String, Arc<Mutex<JobState>>)> {
        let mut all: Vec<(String, Arc<Mutex<JobState>>)> = self
            .jobs
            .iter()
            .flat_map(|shard| {
                shard
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .filter(|(name, _)| only.is_none_or(|o| o == name.as_str()))
                    .map(|(name, state)| (name.clone(), state.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The job's state if the store knows the job.
    fn known(&self, job: &str) -> Option<Arc<Mutex<JobState>>> {
        self.states(Some(job)).pop().map(|(_, state)| state)
    }

    pub(super) fn bump(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn job_summaries(&self, only: Option<&str>) -> Vec<JobSummary> {
        self.states(only)
            .into_iter()
            .map(|(name, state)| summary(name, &lock(&state)))
            .collect()
    }

    pub(super) fn history_now(&self, query: &HistoryQuery) -> HistoryPage {
        let Some(state) = self.known(&query.job) else {
            return HistoryPage::from_rows(Vec::new(), query.limit);
        };
        let mut rows: Vec<ExecutionRecord> = lock(&state)
            .rows
            .iter()
            .filter(|r| query.matches(&r.record))
            .map(|r| r.record.clone())
            .collect();
        rows.sort_by(|a, b| (b.scheduled_at, &b.id).cmp(&(a.scheduled_at, &a.id)));
        let limit = query.limit.max(1);
        rows.truncate(limit.saturating_add(1));
        HistoryPage::from_rows(rows, limit)
    }

    /// Runs `f` on the row of execution `id`, wherever it is.
    fn with_row<T>(&self, id: &str, f: impl FnOnce(&mut JobState, usize) -> T) -> Option<T> {
        let key = fnv(id);
        let mut f = Some(f);
        for (_, state) in self.states(None) {
            let mut state = lock(&state);
            if let Some(i) = state
                .rows
                .iter()
                .rposition(|r| r.key == key && r.record.id == id)
            {
                return f.take().map(|f| f(&mut state, i));
            }
        }
        None
    }

    pub(super) fn detail_now(&self, id: &str) -> Option<ExecutionDetail> {
        self.with_row(id, |state, i| {
            let row = &state.rows[i];
            ExecutionDetail {
                execution: row.record.clone(),
                runs: row.runs.clone(),
            }
        })
    }

    pub(super) fn set_pause(
        &self,
        job: &str,
        pause: Option<Pause>,
    ) -> Result<JobSummary, StoreError> {
        let state = self.known(job).ok_or_else(|| no_job(job))?;
        let mut state = lock(&state);
        state.ops.paused = match (state.ops.paused.take(), pause) {
            // Pausing a paused job replaces the note and who, and keeps since when.
            (Some(old), Some(new)) => Some(Pause { at: old.at, ..new }),
            // A resume accounts for the ticks skipped while paused: a scheduler that
            // starts later does not count them as missed.
            (Some(_), None) => {
                let now = Utc::now();
                state.last_tick = Some(state.last_tick.map_or(now, |t| t.max(now)));
                state.ops.resumed_at = Some(now);
                None
            }
            (None, new) => new,
        };
        self.bump();
        Ok(summary(job.to_owned(), &state))
    }

    pub(super) fn paused_now(&self, jobs: &[String]) -> Vec<(String, Pause)> {
        jobs.iter()
            .filter_map(|job| {
                let state = self.known(job)?;
                let pause = lock(&state).ops.paused.clone()?;
                Some((job.clone(), pause))
            })
            .collect()
    }

    pub(super) fn trigger_now(&self, job: &str, by: &str) -> Result<ExecutionRecord, StoreError> {
        let state = self.known(job).ok_or_else(|| no_job(job))?;
        let mut state = lock(&state);
        let now = Utc::now();
        let id = format!(
            "{job}@manual-{}-{:04x}",
            now.timestamp_millis(),
            fastrand::u16(..)
        );
        let record = ExecutionRecord {
            id: id.clone(),
            job: job.to_owned(),
            scheduled_at: now,
            status: Status::Pending,
            fence: 0,
            owner: by.to_owned(),
            attempts: 0,
            started_at: now,
            heartbeat_at: now,
            finished_at: None,
            error: None,
            checkpoint: None,
            requested_by: Some(by.to_owned()),
        };
        state.rows.push_back(Row {
            key: fnv(&id),
            record: record.clone(),
            heartbeat: Instant::now(),
            liveness: std::time::Duration::ZERO,
            finished: None,
            runs: Vec::new(),
            cancel: None,
        });
        self.bump();
        Ok(record)
    }

    pub(super) fn rerun_now(
        &self,
        id: &str,
        force: bool,
        by: &str,
    ) -> Result<ExecutionRecord, StoreError> {
        let rerun = self.with_row(id, |state, i| {
            let row = &mut state.rows[i];
            if let Some(refused) = rerun_refused(id, row.record.status, force) {
                return Err(refused);
            }
            if matches!(row.record.status, Status::Completed | Status::Skipped) {
                row.record.checkpoint = None;
            }
            row.record.status = Status::Pending;
            row.record.attempts = 0;
            row.record.error = None;
            row.record.finished_at = None;
            row.finished = None;
            row.record.requested_by = Some(by.to_owned());
            row.cancel = None;
            let record = row.record.clone();
            // A pending row is not counted with the ended ones.
            state.finished -= 1;
            Ok(record)
        });
        let record = rerun.unwrap_or_else(|| Err(no_execution(id)))?;
        self.bump();
        Ok(record)
    }

    pub(super) fn request_cancel_now(
        &self,
        id: &str,
        kind: CancelKind,
        note: &str,
        by: &str,
    ) -> Result<ExecutionRecord, StoreError> {
        let asked = self.with_row(id, |state, i| {
            let row = &mut state.rows[i];
            if let Some(refused) = cancel_refused(id, row.record.status, row.cancel.is_some()) {
                return Err(refused);
            }
            let now = Utc::now();
            let request = CancelRequest::new(id, &row.record.job, kind, note, by, now);
            if row.record.status == Status::Cancelled {
                // Handed back at shutdown, waiting to be resumed: the request makes it final.
                row.record.error = Some(request.describe());
            }
            if row.record.status == Status::Pending {
                // Not run yet: nothing to stop, it ends here.
                row.record.status = Status::Cancelled;
                row.record.error = Some(request.describe());
                row.record.finished_at = Some(now);
                row.finished = Some(Instant::now());
                state.finished += 1;
            }
            let row = &mut state.rows[i];
            row.cancel = Some(request);
            Ok(row.record.clone())
        });
        let record = asked.unwrap_or_else(|| Err(no_execution(id)))?;
        self.bump();
        Ok(record)
    }

    pub(super) fn cancel_requests_now(&self, jobs: &[String]) -> Vec<CancelRequest> {
        jobs.iter()
            .filter_map(|job| self.known(job))
            .flat_map(|state| {
                lock(&state)
                    .rows
                    .iter()
                    .filter(|r| r.record.status == Status::Running)
                    .filter_map(|r| r.cancel.clone())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    pub(super) fn prune_now(&self, request: &PruneRequest) -> PruneReport {
        let now = Instant::now();
        let wall = Utc::now();
        let prunable = request.retention.prunable();
        let mut deleted: Vec<(Status, u64)> = prunable.iter().map(|&(s, _)| (s, 0)).collect();
        let mut ran = request.dry_run || request.at_most_every.is_none();
        for (name, state) in self.states(None) {
            if request
                .jobs
                .as_ref()
                .is_some_and(|jobs| !jobs.contains(&name))
            {
                continue;
            }
            let mut state = lock(&state);
            if let Some(every) = request.at_most_every {
                if state
                    .ops
                    .pruned_at
                    .is_some_and(|at| now.saturating_duration_since(at) < every)
                {
                    continue;
                }
                if !request.dry_run {
                    state.ops.pruned_at = Some(now);
                }
                ran = true;
            }
            let expired = |row: &Row| {
                prunable.iter().position(|&(status, keep)| {
                    row.record.status == status && age(row, now, wall) >= keep
                })
            };
            if request.dry_run {
                for i in state.rows.iter().filter_map(expired) {
                    deleted[i].1 += 1;
                }
                continue;
            }
            let mut kept = std::collections::VecDeque::with_capacity(state.rows.len());
            for row in std::mem::take(&mut state.rows) {
                match expired(&row) {
                    Some(i) => {
                        deleted[i].1 += 1;
                        state.finished -= 1;
                        let at = row.record.scheduled_at;
                        state.ops.pruned_through =
                            Some(state.ops.pruned_through.map_or(at, |t| t.max(at)));
                    }
                    None => kept.push_back(row),
                }
            }
            state.rows = kept;
        }
        PruneReport { ran, deleted }
    }
}

/// How long ago the row ended: by tokio's clock where the store recorded the end, else by
/// the wall clock (a row abandoned by a takeover).
fn age(row: &Row, now: Instant, wall: DateTime<Utc>) -> std::time::Duration {
    match (row.finished, row.record.finished_at) {
        (Some(at), _) => now.saturating_duration_since(at),
        (None, Some(at)) => (wall - at).to_std().unwrap_or_default(),
        (None, None) => std::time::Duration::ZERO,
    }
}

fn summary(name: String, state: &JobState) -> JobSummary {
    let last = state
        .rows
        .iter()
        .filter(|r| ended(r.record.status))
        .max_by_key(|r| (r.record.scheduled_at, r.record.finished_at))
        .map(|r| LastOutcome {
            execution_id: r.record.id.clone(),
            scheduled_at: r.record.scheduled_at,
            status: r.record.status,
            finished_at: r.record.finished_at,
        });
    JobSummary {
        name,
        trigger: state.ops.trigger.clone(),
        zone: if state.ops.zone.is_empty() {
            "UTC".to_owned()
        } else {
            state.ops.zone.clone()
        },
        fence: state.fence,
        created_at: state.created_at.unwrap_or_default(),
        last_tick: state.last_tick,
        next_fire: state.ops.next_fire,
        paused: state.ops.paused.clone(),
        last,
        pruned_through: state.ops.pruned_through,
        resumed_at: state.ops.resumed_at,
        circuit_breaker: state.ops.circuit_breaker.clone(),
    }
}

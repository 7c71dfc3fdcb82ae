use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, RwLock},
};

use chrono::{DateTime, Utc};
use tokio::time::Instant;

mod operations;

use operations::{JobOps, abandon_runs, abandoned_error};

use super::{
    CancelKind, CancelRequest, Claim, ClaimRequest, Claimed, ExecutionDetail, ExecutionRecord,
    ExecutionRef, ExecutionStore, Finish, HistoryPage, HistoryQuery, INTERRUPTED_PER_JOB,
    Interrupted, JobRecord, JobRegistration, JobSummary, LedgerTick, OnceScope, OnceState, Pause,
    PruneReport, PruneRequest, RunOutcome, RunRecord, Status, StoreError,
};
use crate::{
    future::BoxFuture,
    store::claim::{Outcome, SeenRow, decide},
};

/// How many finished executions per job the memory store keeps (older ones are forgotten,
/// so a long-running process does not grow without bound: 10,000 jobs firing every second
/// hold 160,000 records). Interrupted (cancelled) executions, which wait to be resumed, go
/// last: up to twice as many are kept.
pub const MEMORY_STORE_RETAINED: usize = 16;

/// How many done `once` steps the memory store remembers; older ones are forgotten (and
/// would run again if asked), so that a long-running process does not grow without bound.
pub const MEMORY_ONCE_RETAINED: usize = 100_000;

/// How many of a job's most recent executions that ran to their end the memory store keeps
/// however many cancelled ones the job also holds.
const ENDED_ALWAYS_KEPT: usize = 4;

/// Executions kept in this process's memory: the embedded default.
///
/// It has the semantics of the persistent stores (claims, fences, takeover of dead owners,
/// checkpoints, `once`), judged by tokio's clock in place of the database's, and forgets
/// everything when the process exits. It keeps the last [`MEMORY_STORE_RETAINED`] finished
/// executions of each job, and the last [`MEMORY_ONCE_RETAINED`] done `once` steps;
/// [`ExecutionStore::forget_once_steps`] also forgets the per-execution steps of executions
/// it no longer keeps.
#[derive(Debug, Default)]
pub struct MemoryStore {
    // Each job has its own mutex, so 10,000 jobs firing at one instant do not queue on one;
    // the map of jobs is split in shards so they do not all read one lock either.
    jobs: [RwLock<JobShard>; SHARDS],
    once: Mutex<OnceSteps>,
    /// The control version: see [`ExecutionStore::control_version`].
    version: std::sync::atomic::AtomicU64,
}

/// The `once` steps: every step in progress, and the most recent done ones.
#[derive(Debug, Default)]
struct OnceSteps {
    rows: HashMap<String, OnceRow>,
    /// Done steps, oldest first: beyond [`MEMORY_ONCE_RETAINED`], the oldest is forgotten.
    done: VecDeque<String>,
}

const SHARDS: usize = 16;

type JobShard = HashMap<String, Arc<Mutex<JobState>>, Fnv>;

/// FNV-1a: job names and execution ids are short and not attacker-chosen, so a fast hash
/// beats SipHash on the hot path.
#[derive(Clone, Copy, Debug)]
struct FnvHasher(u64);

impl Default for FnvHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type Fnv = std::hash::BuildHasherDefault<FnvHasher>;

fn fnv(text: &str) -> u64 {
    use std::hash::Hasher as _;
    let mut h = FnvHasher::default();
    h.write(text.as_bytes());
    h.finish()
}

#[derive(Debug)]
struct JobState {
    fence: u64,
    /// Set by the first registration.
    created_at: Option<DateTime<Utc>>,
    last_tick: Option<DateTime<Utc>>,
    /// In claim order, oldest first. A job keeps at most [`MEMORY_STORE_RETAINED`] finished
    /// rows and rarely more than one running, so a scan from the newest end finds a run's
    /// row at once, with no hashing and no map that grows.
    rows: VecDeque<Row>,
    /// How many rows have ended (neither running nor pending).
    finished: usize,
    /// The latest tick of a row [`JobState::trim`] forgot: the ledger records no tick up to
    /// it, since it may have run.
    forgotten_through: Option<DateTime<Utc>>,
    /// What operators see and change: see [`operations`].
    pub(super) ops: JobOps,
}

#[derive(Debug)]
struct Row {
    /// [`fnv`] of the id: most rows a scan passes are told apart without comparing ids.
    key: u64,
    record: ExecutionRecord,
    heartbeat: Instant,
    /// The liveness its claim asked for: judges the row where no request names one (`once`).
    liveness: std::time::Duration,
    /// When it was recorded as finished, by tokio's clock: judges the retention of its
    /// `once` steps and of the row itself.
    finished: Option<Instant>,
    /// Every claim of the execution, oldest first.
    runs: Vec<RunRecord>,
    /// The request that it stop, if one was made.
    cancel: Option<CancelRequest>,
}

impl Row {
    /// Whether its owner is live, by the liveness of its own claim.
    fn live(&self, now: Instant) -> bool {
        self.live_within(now, self.liveness)
    }

    /// Whether its owner heartbeated less than `liveness` ago and has not finished.
    fn live_within(&self, now: Instant, liveness: std::time::Duration) -> bool {
        self.record.status == Status::Running && now.duration_since(self.heartbeat) < liveness
    }
}

#[derive(Debug)]
struct OnceRow {
    job: String,
    execution_id: String,
    fence: u64,
    done: bool,
    /// Whether the step is [`OnceScope::Execution`]'s.
    per_execution: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section below leaves the state consistent before anything can panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn fenced(exec: &ExecutionRef) -> StoreError {
    StoreError::Fenced {
        execution_id: exec.execution_id.clone(),
        fence: exec.fence,
    }
}

impl JobState {
    fn new() -> Self {
        Self {
            fence: 0,
            created_at: None,
            last_tick: None,
            rows: VecDeque::new(),
            finished: 0,
            forgotten_through: None,
            ops: JobOps::default(),
        }
    }

    fn position(&self, id: &str) -> Option<usize> {
        let key = fnv(id);
        self.rows
            .iter()
            .rposition(|r| r.key == key && r.record.id == id)
    }

    fn row(&self, id: &str) -> Option<&Row> {
        self.position(id).map(|i| &self.rows[i])
    }

    /// Forgets the oldest finished rows beyond [`MEMORY_STORE_RETAINED`]. Runs that ended go
    /// first, but the most recent [`ENDED_ALWAYS_KEPT`] of them stay whatever else the job
    /// holds (cancelled runs must not push out a tick that just completed, or it could run
    /// again); a cancelled run waits to be resumed, and is forgotten only when there are
    /// many (those of a job that is not idempotent never are).
    fn trim(&mut self) {
        if self.finished <= MEMORY_STORE_RETAINED {
            return;
        }
        let mut ended = self
            .rows
            .iter()
            .filter(|r| r.record.status.is_final())
            .count();
        while self.finished > MEMORY_STORE_RETAINED {
            let forgot = if ended > ENDED_ALWAYS_KEPT {
                ended -= 1;
                self.forget_oldest(|status| status.is_final())
            } else if self.finished > 2 * MEMORY_STORE_RETAINED {
                self.forget_oldest(|status| status == Status::Cancelled)
            } else {
                false
            };
            if !forgot {
                break;
            }
        }
    }

    /// Forgets the oldest row whose status matches; `false` if none does.
    fn forget_oldest(&mut self, matches: impl Fn(Status) -> bool) -> bool {
        let Some(i) = self.rows.iter().position(|r| matches(r.record.status)) else {
            return false;
        };
        if let Some(row) = self.rows.remove(i) {
            let at = row.record.scheduled_at;
            self.forgotten_through = Some(self.forgotten_through.map_or(at, |f| f.max(at)));
        }
        self.finished -= 1;
        true
    }

    /// Takes the execution for a claim that [`decide`] let through: abandons the job's
    /// other running rows (their owners are gone), bumps the fence, and inserts the row or
    /// takes over `existing` (its index), counting the attempt the claim starts.
    fn take(
        &mut self,
        req: &ClaimRequest<'_>,
        existing: Option<usize>,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Claimed {
        // Every running row left is an owner that is gone: none of them may write again.
        let mut abandoned = 0;
        for row in self.rows.iter_mut() {
            if row.record.status == Status::Running && row.record.id != req.execution_id {
                row.record.status = Status::Cancelled;
                row.record.error = Some(abandoned_error(row.cancel.as_ref()));
                row.record.finished_at = Some(wall);
                abandon_runs(row);
                abandoned += 1;
            }
        }
        self.finished += abandoned;
        self.fence += 1;
        let fence = self.fence;
        self.last_tick = Some(
            self.last_tick
                .map_or(req.scheduled_at, |t| t.max(req.scheduled_at)),
        );
        let previous = existing.and_then(|i| self.rows.remove(i));
        if previous
            .as_ref()
            .is_some_and(|row| !matches!(row.record.status, Status::Running | Status::Pending))
        {
            self.finished -= 1;
        }
        let (previous_attempts, checkpoint, requested_by, mut runs) = previous
            .map(|mut row| {
                // A takeover of a running row: its owner is gone.
                abandon_runs(&mut row);
                (
                    row.record.attempts,
                    row.record.checkpoint,
                    row.record.requested_by,
                    row.runs,
                )
            })
            .unwrap_or_default();
        runs.push(RunRecord {
            fence,
            owner: req.owner.to_owned(),
            started_at: wall,
            ended_at: None,
            outcome: None,
            attempts: previous_attempts + 1,
            error: None,
        });
        self.rows.push_back(Row {
            key: fnv(req.execution_id),
            record: ExecutionRecord {
                id: req.execution_id.to_owned(),
                job: req.job.to_owned(),
                scheduled_at: req.scheduled_at,
                status: Status::Running,
                fence,
                owner: req.owner.to_owned(),
                // The attempt this claim starts counts, so an owner that dies is counted.
                attempts: previous_attempts + 1,
                started_at: wall,
                heartbeat_at: wall,
                finished_at: None,
                error: None,
                checkpoint: checkpoint.clone(),
                requested_by,
            },
            heartbeat: now,
            liveness: req.liveness,
            finished: None,
            runs,
            cancel: None,
        });
        self.trim();
        Claimed {
            fence,
            previous_attempts,
            checkpoint,
            resumed: false,
        }
    }

    /// The execution's row if `exec` still holds the job's fence and the row is running.
    fn owned(&mut self, exec: &ExecutionRef) -> Result<&mut Row, StoreError> {
        if self.fence != exec.fence {
            return Err(fenced(exec));
        }
        let row = self
            .position(&exec.execution_id)
            .and_then(|i| self.rows.get_mut(i));
        match row {
            Some(row) if row.record.fence == exec.fence && row.record.status == Status::Running => {
                Ok(row)
            }
            _ => Err(fenced(exec)),
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn job(&self, name: &str) -> Arc<Mutex<JobState>> {
        let shard = &self.jobs[(fnv(name) % SHARDS as u64) as usize];
        if let Some(job) = shard.read().unwrap_or_else(|p| p.into_inner()).get(name) {
            return job.clone();
        }
        shard
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(JobState::new())))
            .clone()
    }

    fn with_owned<T>(
        &self,
        exec: &ExecutionRef,
        f: impl FnOnce(&mut Row) -> T,
    ) -> Result<T, StoreError> {
        let job = self.job(&exec.job);
        let mut state = lock(&job);
        state.owned(exec).map(f)
    }

    fn claim_now(&self, req: &ClaimRequest<'_>) -> Claim {
        let now = Instant::now();
        let wall = Utc::now();
        let job = self.job(req.job);
        let mut state = lock(&job);
        // One pass over the job's rows: this execution's row, and any other live one.
        let key = fnv(req.execution_id);
        let mut existing = None;
        let mut live_other = None;
        for (i, row) in state.rows.iter().enumerate().rev() {
            if existing.is_none() && row.key == key && row.record.id == req.execution_id {
                existing = Some(i);
            }
            // Judged by the request's liveness, as the contract (and a database) does.
            if live_other.is_none() && row.live_within(now, req.liveness) {
                live_other = Some(i);
            }
        }
        let seen = |i: usize| {
            let row = &state.rows[i];
            SeenRow {
                id: &row.record.id,
                status: row.record.status,
                owner: &row.record.owner,
                live: row.live_within(now, req.liveness),
                cancel_requested: row.cancel.is_some(),
            }
        };
        if existing.is_none()
            && state
                .ops
                .pruned_through
                .is_some_and(|through| req.scheduled_at <= through)
        {
            return Claim::Pruned;
        }
        let rows: Vec<SeenRow<'_>> = existing.into_iter().chain(live_other).map(seen).collect();
        // A claim in this process cannot lose its answer: never a retry.
        // The store's clock is the process's own: never early.
        let resumed = match decide(req, false, true, &rows) {
            Outcome::Done(status) => return Claim::Done { status },
            Outcome::Early => return Claim::Early,
            Outcome::Busy(id) => {
                return Claim::Busy {
                    execution_id: id.to_owned(),
                };
            }
            Outcome::Own => {
                // Not reached (no retry), but well defined: the row's current claim.
                let record = &state.rows[existing.unwrap_or_default()].record;
                return Claim::Acquired(Claimed {
                    fence: record.fence,
                    previous_attempts: record.attempts.saturating_sub(1),
                    checkpoint: record.checkpoint.clone(),
                    resumed: false,
                });
            }
            Outcome::Take { resumed } => resumed,
        };
        let mut claimed = state.take(req, existing, now, wall);
        claimed.resumed = resumed;
        Claim::Acquired(claimed)
    }

    fn finish_now(&self, exec: &ExecutionRef, finish: &Finish<'_>) -> Result<(), StoreError> {
        let job = self.job(&exec.job);
        let mut state = lock(&job);
        let row = state.owned(exec)?;
        row.record.status = finish.status;
        row.record.attempts = finish.attempts;
        row.record.error = finish.error.map(str::to_owned);
        row.record.finished_at = Some(Utc::now());
        row.finished = Some(Instant::now());
        if let Some(run) = row.runs.iter_mut().rev().find(|r| r.fence == exec.fence) {
            run.ended_at = row.record.finished_at;
            run.outcome = Some(RunOutcome::Finished(finish.status));
            run.attempts = finish.attempts;
            run.error = row.record.error.clone();
        }
        if finish.status != Status::Running {
            state.finished += 1;
            state.trim();
        }
        Ok(())
    }

    /// Records one tick of the ledger; see [`ExecutionStore::record_ticks`]. `true` if it
    /// recorded the tick as skipped.
    fn record_tick(&self, tick: &LedgerTick) -> bool {
        let job = self.job(&tick.job);
        let mut state = lock(&job);
        let wall = Utc::now();
        if let Some(i) = state.position(&tick.execution_id) {
            let row = &mut state.rows[i];
            if row.record.status == Status::Pending
                && let Some(reason) = &tick.skipped
            {
                row.record.status = Status::Skipped;
                row.record.error = Some(reason.clone());
                row.record.finished_at = Some(wall);
                row.finished = Some(Instant::now());
                state.finished += 1;
                state.trim();
                return true;
            }
            return false;
        }
        if [state.forgotten_through, state.ops.pruned_through]
            .into_iter()
            .flatten()
            .any(|f| tick.scheduled_at <= f)
        {
            // Older than what the store still remembers (trimmed or pruned): it may have run.
            tracing::warn!(
                job = %tick.job, tick = %tick.scheduled_at,
                "the in-memory store no longer remembers this tick's time; not recorded"
            );
            return false;
        }
        let status = match tick.skipped {
            None => Status::Pending,
            Some(_) => Status::Skipped,
        };
        state.rows.push_back(Row {
            key: fnv(&tick.execution_id),
            record: ExecutionRecord {
                id: tick.execution_id.clone(),
                job: tick.job.clone(),
                scheduled_at: tick.scheduled_at,
                status,
                fence: 0,
                owner: tick.owner.clone(),
                attempts: 0,
                started_at: wall,
                heartbeat_at: wall,
                finished_at: tick.skipped.as_ref().map(|_| wall),
                error: tick.skipped.clone(),
                checkpoint: None,
                requested_by: None,
            },
            heartbeat: Instant::now(),
            liveness: std::time::Duration::ZERO,
            finished: tick.skipped.as_ref().map(|_| Instant::now()),
            runs: Vec::new(),
            cancel: None,
        });
        // A skipped row is counted with the finished rows; a pending one waits for a claim,
        // and is never forgotten.
        if status == Status::Skipped {
            state.finished += 1;
            state.trim();
        }
        status == Status::Skipped
    }

    fn once_begin_now(
        &self,
        exec: &ExecutionRef,
        key: &str,
        scope: OnceScope,
    ) -> Result<OnceState, StoreError> {
        let key = scope.stored_key(exec, key);
        // Lock order: the `once` map, then job states (claims take only a job state).
        let mut once = lock(&self.once);
        self.with_owned(exec, |_| ())?;
        if let Some(row) = once.rows.get(key.as_ref()) {
            if row.done {
                return Ok(OnceState::Done);
            }
            let holder = self.job(&row.job);
            let holder = lock(&holder);
            let holder_live = holder.fence == row.fence
                && holder
                    .row(&row.execution_id)
                    .is_some_and(|r| r.live(Instant::now()));
            if holder_live && !(row.execution_id == exec.execution_id && row.fence == exec.fence) {
                return Ok(OnceState::Busy);
            }
        }
        once.rows.insert(
            key.into_owned(),
            OnceRow {
                job: exec.job.clone(),
                execution_id: exec.execution_id.clone(),
                fence: exec.fence,
                done: false,
                per_execution: scope.per_execution(),
            },
        );
        Ok(OnceState::Acquired)
    }

    fn once_end_now(
        &self,
        exec: &ExecutionRef,
        key: &str,
        scope: OnceScope,
        done: bool,
    ) -> Result<(), StoreError> {
        let key = scope.stored_key(exec, key);
        let mut once = lock(&self.once);
        self.with_owned(exec, |_| ())?;
        let mine = once
            .rows
            .get(key.as_ref())
            .is_some_and(|r| r.execution_id == exec.execution_id && r.fence == exec.fence);
        if !mine {
            return Err(fenced(exec));
        }
        if done {
            if let Some(row) = once.rows.get_mut(key.as_ref()) {
                row.done = true;
            }
            once.done.push_back(key.into_owned());
            while once.done.len() > MEMORY_ONCE_RETAINED {
                if let Some(oldest) = once.done.pop_front() {
                    once.rows.remove(&oldest);
                }
            }
        } else {
            once.rows.remove(key.as_ref());
        }
        Ok(())
    }

    /// Forgets the per-execution steps of `jobs` whose execution ended `older_than` ago (by
    /// tokio's clock, as liveness), or that the store no longer keeps (nothing can resume it: a claim of its id would start
    /// afresh).
    fn forget_once_now(&self, jobs: &[String], older_than: std::time::Duration) -> u64 {
        let now = Instant::now();
        let mut once = lock(&self.once);
        let before = once.rows.len();
        once.rows.retain(|_, row| {
            if !row.per_execution || !jobs.contains(&row.job) {
                return true;
            }
            let job = self.job(&row.job);
            let state = lock(&job);
            match state.row(&row.execution_id) {
                None => false,
                Some(r) => {
                    !(matches!(r.record.status, Status::Completed | Status::Skipped)
                        && r.finished
                            .is_some_and(|f| now.saturating_duration_since(f) >= older_than))
                }
            }
        });
        let forgot = before - once.rows.len();
        if forgot > 0 {
            let OnceSteps { rows, done } = &mut *once;
            done.retain(|key| rows.contains_key(key));
        }
        u64::try_from(forgot).unwrap_or(u64::MAX)
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl ExecutionStore for MemoryStore {
    fn jobs<'a>(&'a self) -> BoxFuture<'a, Result<Vec<JobSummary>, StoreError>> {
        ready(Ok(self.job_summaries(None)))
    }

    fn job<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<JobSummary>, StoreError>> {
        ready(Ok(self.job_summaries(Some(name)).pop()))
    }

    fn history<'a>(
        &'a self,
        query: &'a HistoryQuery,
    ) -> BoxFuture<'a, Result<HistoryPage, StoreError>> {
        ready(Ok(self.history_now(query)))
    }

    fn execution_detail<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ExecutionDetail>, StoreError>> {
        ready(Ok(self.detail_now(id)))
    }

    fn pause<'a>(
        &'a self,
        job: &'a str,
        note: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<JobSummary, StoreError>> {
        ready(self.set_pause(job, Some(Pause::new(note, by, Utc::now()))))
    }

    fn resume<'a>(&'a self, job: &'a str) -> BoxFuture<'a, Result<JobSummary, StoreError>> {
        ready(self.set_pause(job, None))
    }

    fn trigger<'a>(
        &'a self,
        job: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>> {
        ready(self.trigger_now(job, by))
    }

    fn rerun<'a>(
        &'a self,
        id: &'a str,
        force: bool,
        by: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>> {
        ready(self.rerun_now(id, force, by))
    }

    fn prune<'a>(
        &'a self,
        request: &'a PruneRequest,
    ) -> BoxFuture<'a, Result<PruneReport, StoreError>> {
        ready(Ok(self.prune_now(request)))
    }

    fn paused<'a>(
        &'a self,
        jobs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<(String, Pause)>, StoreError>> {
        ready(Ok(self.paused_now(jobs)))
    }

    fn request_cancel<'a>(
        &'a self,
        id: &'a str,
        kind: CancelKind,
        note: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<ExecutionRecord, StoreError>> {
        ready(self.request_cancel_now(id, kind, note, by))
    }

    fn cancel_requests<'a>(
        &'a self,
        jobs: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<CancelRequest>, StoreError>> {
        ready(Ok(self.cancel_requests_now(jobs)))
    }

    fn control_version<'a>(&'a self) -> BoxFuture<'a, Result<u64, StoreError>> {
        ready(Ok(self.version.load(std::sync::atomic::Ordering::Acquire)))
    }

    fn announce<'a>(&'a self) -> BoxFuture<'a, Result<(), StoreError>> {
        self.bump();
        ready(Ok(()))
    }

    fn register<'a>(
        &'a self,
        job: &'a JobRegistration<'a>,
    ) -> BoxFuture<'a, Result<JobRecord, StoreError>> {
        let state = self.job(job.name);
        let mut state = lock(&state);
        let created_at = *state.created_at.get_or_insert(job.registered_at);
        state.ops.register(job);
        ready(Ok(JobRecord {
            name: job.name.to_owned(),
            fence: state.fence,
            created_at,
            last_tick: state.last_tick,
        }))
    }

    fn claim<'a>(
        &'a self,
        request: &'a ClaimRequest<'a>,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        ready(Ok(self.claim_now(request)))
    }

    fn record_ticks<'a>(
        &'a self,
        ticks: &'a [LedgerTick],
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        let skipped = ticks
            .iter()
            .filter(|tick| self.record_tick(tick))
            .map(|tick| tick.execution_id.clone())
            .collect();
        ready(Ok(skipped))
    }

    fn heartbeat<'a>(&'a self, exec: &'a ExecutionRef) -> BoxFuture<'a, Result<(), StoreError>> {
        ready(self.with_owned(exec, |row| {
            row.heartbeat = Instant::now();
            row.record.heartbeat_at = Utc::now();
        }))
    }

    fn checkpoint<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        state: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        ready(self.with_owned(exec, |row| {
            row.record.checkpoint = Some(state.to_owned());
        }))
    }

    fn last_checkpoint<'a>(
        &'a self,
        exec: &'a ExecutionRef,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        ready(self.with_owned(exec, |row| row.record.checkpoint.clone()))
    }

    fn once_begin<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        key: &'a str,
        scope: OnceScope,
    ) -> BoxFuture<'a, Result<OnceState, StoreError>> {
        ready(self.once_begin_now(exec, key, scope))
    }

    fn once_end<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        key: &'a str,
        scope: OnceScope,
        done: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        ready(self.once_end_now(exec, key, scope, done))
    }

    fn finish<'a>(
        &'a self,
        exec: &'a ExecutionRef,
        finish: &'a Finish<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        ready(self.finish_now(exec, finish))
    }

    fn executions<'a>(
        &'a self,
        job: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ExecutionRecord>, StoreError>> {
        let state = self.job(job);
        let state = lock(&state);
        let mut all: Vec<ExecutionRecord> = state.rows.iter().map(|r| r.record.clone()).collect();
        all.sort_by_key(|r| std::cmp::Reverse((r.scheduled_at, r.started_at)));
        all.truncate(limit);
        ready(Ok(all))
    }

    fn execution<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ExecutionRecord>, StoreError>> {
        let found = self.jobs.iter().find_map(|shard| {
            let jobs: Vec<Arc<Mutex<JobState>>> = shard
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .cloned()
                .collect();
            jobs.iter()
                .find_map(|state| lock(state).row(id).map(|row| row.record.clone()))
        });
        ready(Ok(found))
    }

    fn dead_letters<'a>(
        &'a self,
        job: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ExecutionRecord>, StoreError>> {
        let mut found = Vec::new();
        for shard in &self.jobs {
            let jobs: Vec<Arc<Mutex<JobState>>> = shard
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .filter(|(name, _)| job.is_none_or(|j| j == name.as_str()))
                .map(|(_, state)| state.clone())
                .collect();
            for state in jobs {
                let state = lock(&state);
                found.extend(
                    state
                        .rows
                        .iter()
                        .filter(|r| r.record.status == Status::Failed)
                        .map(|r| r.record.clone()),
                );
            }
        }
        found.sort_by_key(|r| std::cmp::Reverse(r.finished_at));
        found.truncate(limit);
        ready(Ok(found))
    }

    fn interrupted<'a>(
        &'a self,
        jobs: &'a [String],
        liveness: std::time::Duration,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Interrupted>, StoreError>> {
        let now = Instant::now();
        let mut found = Vec::new();
        for name in jobs {
            let shard = &self.jobs[(fnv(name) % SHARDS as u64) as usize];
            let Some(job) = shard
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(name.as_str())
                .cloned()
            else {
                continue;
            };
            let state = lock(&job);
            let mut of_job: Vec<Interrupted> = state
                .rows
                .iter()
                .filter(|r| r.cancel.is_none())
                .filter(|r| match r.record.status {
                    Status::Cancelled | Status::Pending => true,
                    Status::Running => !r.live_within(now, liveness),
                    _ => false,
                })
                .map(|r| Interrupted {
                    job: r.record.job.clone(),
                    execution_id: r.record.id.clone(),
                    scheduled_at: r.record.scheduled_at,
                    status: r.record.status,
                    attempts: r.record.attempts,
                    requested: r.record.requested_by.is_some(),
                })
                .collect();
            of_job.sort_by_key(|i| (!i.requested, i.status == Status::Pending, i.scheduled_at));
            of_job.truncate(INTERRUPTED_PER_JOB);
            found.extend(of_job);
        }
        // Interrupted executions before pending ticks, oldest first.
        found.sort_by_key(|i| (!i.requested, i.status == Status::Pending, i.scheduled_at));
        found.truncate(limit);
        ready(Ok(found))
    }

    fn describe(&self) -> String {
        "in-memory".to_owned()
    }

    fn is_process_local(&self) -> bool {
        true
    }

    fn forget_once_steps<'a>(
        &'a self,
        jobs: &'a [String],
        older_than: std::time::Duration,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        ready(Ok(self.forget_once_now(jobs, older_than)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(n: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + n, 0).unwrap()
    }

    #[tokio::test]
    async fn cancelled_runs_never_push_out_a_completed_tick() {
        let store = MemoryStore::new();
        let run = |id: String, status: Status| {
            let store = &store;
            async move {
                let req = ClaimRequest::new("k", &id, at(0), "o");
                let Claim::Acquired(c) = store.claim(&req).await.unwrap() else {
                    panic!("{id} not acquired");
                };
                let exec = ExecutionRef {
                    job: "k".into(),
                    execution_id: id,
                    fence: c.fence,
                };
                store
                    .finish(&exec, &Finish::new(status, 1, None))
                    .await
                    .unwrap();
            }
        };
        for n in 0..(2 * MEMORY_STORE_RETAINED) {
            run(format!("k@cancelled-{n}"), Status::Cancelled).await;
        }
        run("k@done".into(), Status::Completed).await;
        let again = ClaimRequest::new("k", "k@done", at(0), "p");
        assert_eq!(
            store.claim(&again).await.unwrap(),
            Claim::Done {
                status: Status::Completed
            }
        );
    }

    #[tokio::test]
    async fn keeps_the_last_finished_executions_and_every_running_one() {
        let store = MemoryStore::new();
        let claim = |n: i64, owner: &'static str| {
            let id = format!("j@{n}");
            let store = &store;
            async move {
                let req = ClaimRequest::new("j", &id, at(n), owner).idempotent(false);
                match store.claim(&req).await.unwrap() {
                    Claim::Acquired(c) => ExecutionRef {
                        job: "j".into(),
                        execution_id: id,
                        fence: c.fence,
                    },
                    other => panic!("{other:?}"),
                }
            }
        };
        for n in 0..40 {
            let exec = claim(n, "o").await;
            let end = Finish::new(Status::Completed, 1, None);
            store.finish(&exec, &end).await.unwrap();
        }
        let kept = store.executions("j", 100).await.unwrap();
        let ids: Vec<_> = kept.iter().map(|r| r.id.as_str()).collect();
        let expected: Vec<String> = (24..40).rev().map(|n| format!("j@{n}")).collect();
        assert_eq!(ids, expected);
        // Done `once` steps are remembered, up to their bound.
        let step = claim(300, "o").await;
        assert_eq!(
            store
                .once_begin(&step, "step", OnceScope::Ever)
                .await
                .unwrap(),
            OnceState::Acquired
        );
        store
            .once_end(&step, "step", OnceScope::Ever, true)
            .await
            .unwrap();
        assert_eq!(
            store
                .once_begin(&step, "step", OnceScope::Ever)
                .await
                .unwrap(),
            OnceState::Done
        );
        assert_eq!(lock(&store.once).done.len(), 1);
        store
            .finish(&step, &Finish::new(Status::Completed, 1, None))
            .await
            .unwrap();
        // Interrupted executions outlast the finished ones: they wait to be resumed.
        for n in 100..110 {
            let exec = claim(n, "o").await;
            let end = Finish::new(Status::Cancelled, 1, Some("shutdown"));
            store.finish(&exec, &end).await.unwrap();
        }
        for n in 110..130 {
            let exec = claim(n, "o").await;
            store
                .finish(&exec, &Finish::new(Status::Completed, 1, None))
                .await
                .unwrap();
        }
        let kept = store.executions("j", 100).await.unwrap();
        let cancelled = kept
            .iter()
            .filter(|r| r.status == Status::Cancelled)
            .count();
        assert_eq!((kept.len(), cancelled), (MEMORY_STORE_RETAINED, 10));
        // A running execution is never forgotten, however many finish after it.
        let running = claim(200, "o").await;
        let kept = store.executions("j", 100).await.unwrap();
        assert_eq!(kept.len(), MEMORY_STORE_RETAINED + 1);
        assert_eq!(kept[0].status, Status::Running);
        store.heartbeat(&running).await.unwrap();
    }
}

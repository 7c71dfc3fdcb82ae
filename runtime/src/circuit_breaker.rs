//! The circuit breaker policy of a job (`circuit_breaker(..)`): when a job's recent
//! executions fail too often, its ticks are skipped for a while instead of hammering a
//! dependency that is down.
//!
//! The breaker keeps no state of its own: [`CircuitBreaker::state`] computes it from the
//! executions in the store, so every instance that reads the same store computes the same
//! state, and the failures of every instance count.

use std::{collections::VecDeque, fmt, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{ExecutionRecord, ExecutionStore, HistoryQuery, JobSummary, Status, StoreError};

/// A circuit breaker (`circuit_breaker(failure_rate = 0.5, window = 10, min_runs = 5,
/// open_for = "5m")`): computed from the job's recent executions in the store, so every
/// instance sees the same state.
///
/// ```
/// use std::time::Duration;
/// use tickguard::CircuitBreaker;
///
/// let breaker = CircuitBreaker::new()
///     .name("payments")
///     .failure_rate(0.5)
///     .window(10)
///     .min_runs(5)
///     .open_for(Duration::from_secs(300));
/// assert_eq!(breaker.shared_name(), Some("payments"));
/// ```
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    /// The breaker's name when jobs share it (they call the same dependency); `None`: the
    /// job's own.
    pub(crate) name: Option<String>,
    /// The share of failed executions in the window that opens the breaker, in `(0, 1]`.
    pub(crate) failure_rate: f64,
    /// How many of the most recent executions the rate is computed over.
    pub(crate) window: u32,
    /// The fewest executions in the window before the rate counts.
    pub(crate) min_runs: u32,
    /// How long the breaker stays open before one probe run decides.
    pub(crate) open_for: Duration,
}

impl CircuitBreaker {
    /// The failure rate that opens a breaker unless set: 0.5.
    pub const DEFAULT_FAILURE_RATE: f64 = 0.5;
    /// The window unless set: the 10 most recent executions.
    pub const DEFAULT_WINDOW: u32 = 10;
    /// The fewest executions in the window unless set: 5.
    pub const DEFAULT_MIN_RUNS: u32 = 5;
    /// How long a breaker stays open unless set: 5 minutes.
    pub const DEFAULT_OPEN_FOR: Duration = Duration::from_secs(300);

    /// A breaker with the defaults: opens when half of the 10 most recent executions
    /// failed (at least 5 of them ran), for 5 minutes.
    pub fn new() -> Self {
        Self {
            name: None,
            failure_rate: Self::DEFAULT_FAILURE_RATE,
            window: Self::DEFAULT_WINDOW,
            min_runs: Self::DEFAULT_MIN_RUNS,
            open_for: Self::DEFAULT_OPEN_FOR,
        }
    }

    /// Shares the breaker with every job whose breaker has this name: the executions of all
    /// of them count, and all of them skip while it is open.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The share of failed executions in the window that opens the breaker, in `(0, 1]`.
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = rate;
        self
    }

    /// How many of the most recent executions the rate is computed over.
    pub fn window(mut self, window: u32) -> Self {
        self.window = window;
        self
    }

    /// The fewest executions in the window before the rate counts.
    pub fn min_runs(mut self, min_runs: u32) -> Self {
        self.min_runs = min_runs;
        self
    }

    /// How long the breaker stays open before one probe run decides.
    pub fn open_for(mut self, open_for: Duration) -> Self {
        self.open_for = open_for;
        self
    }

    /// The shared name, if the breaker has one.
    pub fn shared_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Why the settings cannot work, if they cannot.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return Err(format!(
                "circuit_breaker failure_rate {} must be more than 0 and at most 1",
                self.failure_rate
            ));
        }
        if self.window == 0 {
            return Err("circuit_breaker window must be at least 1".to_owned());
        }
        if self.min_runs == 0 || self.min_runs > self.window {
            return Err(format!(
                "circuit_breaker min_runs {} must be between 1 and the window ({})",
                self.min_runs, self.window
            ));
        }
        if self.open_for.is_zero() {
            return Err("circuit_breaker open_for must be longer than zero".to_owned());
        }
        if self.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err("circuit_breaker name must not be empty".to_owned());
        }
        Ok(())
    }
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self::new()
    }
}

/// Two breakers are equal when every setting is; the failure rates compare by their bits,
/// so that equality is an equivalence (a validated rate is never NaN anyway).
impl PartialEq for CircuitBreaker {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.failure_rate.to_bits() == other.failure_rate.to_bits()
            && self.window == other.window
            && self.min_runs == other.min_runs
            && self.open_for == other.open_for
    }
}

impl Eq for CircuitBreaker {}

/// The settings as the attribute takes them: `name = "payments", failure_rate = 0.5,
/// window = 10, min_runs = 5, open_for = 300s`.
impl fmt::Display for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            write!(f, "name = {name:?}, ")?;
        }
        write!(
            f,
            "failure_rate = {}, window = {}, min_runs = {}, open_for = {}",
            self.failure_rate,
            self.window,
            self.min_runs,
            Seconds(self.open_for)
        )
    }
}

/// A duration in seconds, with a fraction only when it has one: `300s`, `1.5s`.
struct Seconds(Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.subsec_nanos() == 0 {
            write!(f, "{}s", self.0.as_secs())
        } else {
            write!(f, "{}s", self.0.as_secs_f64())
        }
    }
}

/// The settings as a store records them (the `circuit_breaker` column of the jobs table),
/// for the command line, which does not have the job's code.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    failure_rate: f64,
    window: u32,
    min_runs: u32,
    open_for_ms: u64,
}

impl CircuitBreaker {
    /// The share of failed executions in the window that opens the breaker.
    pub fn opening_rate(&self) -> f64 {
        self.failure_rate
    }

    /// How many of the most recent executions the rate is computed over.
    pub fn window_len(&self) -> u32 {
        self.window
    }

    /// The fewest executions in the window before the rate counts.
    pub fn least_runs(&self) -> u32 {
        self.min_runs
    }

    /// How long the breaker stays open before one probe run decides.
    pub fn open_duration(&self) -> Duration {
        self.open_for
    }

    /// How many of each job's most recent outcomes and running executions the breaker's
    /// state is computed from: the window, a probe's outcome and the runs in progress,
    /// bounded, so that a long history costs the same as a short one.
    pub fn history_len(&self) -> usize {
        self.window as usize * 2 + 16
    }

    /// Reads what the breaker's state is computed from ([`CircuitBreaker::state`]): the most
    /// recent outcomes (COMPLETED, FAILED, TIMED_OUT) and running executions of each of
    /// `jobs` (the jobs sharing the breaker), [`history_len`](Self::history_len) of each,
    /// skipping the cancelled, skipped and pending rows in between. A job whose read was
    /// cut at that length covers a shorter span than the others: every job's outcomes older
    /// than the latest such cut are left out, so that the jobs' outcomes are replayed over
    /// the same span. The scheduler and `tickguard show` read the same, and so compute the
    /// same state.
    pub async fn read_history(
        &self,
        store: &dyn ExecutionStore,
        jobs: &[String],
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        let limit = self.history_len();
        let statuses = [
            Status::Completed,
            Status::Failed,
            Status::TimedOut,
            Status::Running,
        ];
        let mut all = Vec::new();
        let mut cut = None;
        for job in jobs {
            let query = HistoryQuery::new(job.as_str())
                .statuses(statuses)
                .limit(limit);
            let page = store.history(&query).await?;
            if page.executions.len() >= limit {
                let oldest = page.executions.iter().filter_map(|e| e.finished_at).min();
                cut = cut.max(oldest);
            }
            all.extend(page.executions);
        }
        if let Some(cut) = cut {
            all.retain(|e| e.finished_at.is_none_or(|at| at >= cut));
        }
        Ok(all)
    }

    /// How long a probe's owner may go without a heartbeat before an observer outside the
    /// scheduler (`tickguard show`, the console) no longer counts it as running: the
    /// scheduler's default liveness (an observer does not know an instance's own).
    pub const OBSERVED_LIVENESS: Duration = Duration::from_secs(30);

    /// The jobs of `jobs` (all the store knows) that share this breaker, `job`'s: those
    /// with a breaker of the same name, or `job` alone for a breaker of its own.
    pub fn sharing(&self, job: &str, jobs: &[JobSummary]) -> Vec<String> {
        match self.shared_name() {
            None => vec![job.to_owned()],
            Some(name) => jobs
                .iter()
                .filter(|j| {
                    j.circuit_breaker
                        .as_ref()
                        .is_some_and(|b| b.shared_name() == Some(name))
                })
                .map(|j| j.name.clone())
                .collect(),
        }
    }

    /// The breaker's state at `now` as an operator sees it from the store, computed from
    /// the executions of `sharing` (see [`CircuitBreaker::sharing`]) as the scheduler
    /// computes it; a probe whose owner has not heartbeat within `liveness` is not running.
    pub async fn current_state(
        &self,
        store: &dyn ExecutionStore,
        sharing: &[String],
        now: DateTime<Utc>,
        liveness: Duration,
    ) -> Result<BreakerState, StoreError> {
        let executions = self.read_history(store, sharing).await?;
        Ok(self.state(&executions, now, liveness))
    }

    /// The breaker's name in metrics and logs (the `breaker` label): its shared name, or
    /// the name of the job that has it alone.
    pub fn label<'a>(&'a self, job: &'a str) -> &'a str {
        self.name.as_deref().unwrap_or(job)
    }

    /// The settings as a store records them: JSON,
    /// `{"name":"payments","failure_rate":0.5,"window":10,"min_runs":5,"open_for_ms":300000}`.
    pub fn to_stored(&self) -> String {
        let stored = Stored {
            name: self.name.clone(),
            failure_rate: self.failure_rate,
            window: self.window,
            min_runs: self.min_runs,
            open_for_ms: u64::try_from(self.open_for.as_millis()).unwrap_or(u64::MAX),
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// The settings [`to_stored`](Self::to_stored) wrote; an error that says what is wrong
    /// for text that is not such settings, or settings that cannot work.
    pub fn from_stored(text: &str) -> Result<Self, String> {
        let stored: Stored = serde_json::from_str(text)
            .map_err(|e| format!("unreadable circuit breaker settings `{text}`: {e}"))?;
        let breaker = Self {
            name: stored.name,
            failure_rate: stored.failure_rate,
            window: stored.window,
            min_runs: stored.min_runs,
            open_for: Duration::from_millis(stored.open_for_ms),
        };
        breaker.validate()?;
        Ok(breaker)
    }

    /// The breaker's state at `now`, from the recent executions of the jobs that share it
    /// (any order, any statuses: the final ones are the outcomes), the same on every
    /// instance that reads the same store. An execution still `RUNNING` whose heartbeat is
    /// less than `liveness` old, started since the breaker became half-open, is the probe
    /// in flight.
    ///
    /// Outcomes are replayed in the order they finished, from the oldest one given,
    /// starting closed:
    /// - closed: over the last `window` outcomes, once at least `min_runs` and the failed
    ///   share reaches `failure_rate`, the breaker opens from that outcome's finish for
    ///   `open_for`;
    /// - open: an outcome that finished once `open_for` was over is the probe's, and so is
    ///   a manual execution's (an operator's probe) at any time: a success closes the
    ///   breaker and the window starts again after it, a failure opens it again from its
    ///   finish. Other outcomes (runs that were in flight when it opened) change nothing;
    /// - open at `now` once `open_for` is over: half-open, the next tick runs as the probe.
    ///
    /// `COMPLETED` is a success; `FAILED` and `TIMED_OUT` are failures; `CANCELLED`,
    /// `SKIPPED`, `PENDING` and `RUNNING` are not outcomes.
    pub fn state(
        &self,
        executions: &[ExecutionRecord],
        now: DateTime<Utc>,
        liveness: Duration,
    ) -> BreakerState {
        let mut outcomes: Vec<(DateTime<Utc>, &str, bool, bool)> = executions
            .iter()
            .filter_map(|e| {
                let failed = match e.status {
                    Status::Completed => false,
                    Status::Failed | Status::TimedOut => true,
                    _ => return None,
                };
                Some((
                    e.finished_at?,
                    e.id.as_str(),
                    failed,
                    e.requested_by.is_some(),
                ))
            })
            .collect();
        outcomes.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut window = Window::new(self.window as usize);
        let mut open: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
        for (finished, _, failed, requested) in outcomes {
            match open {
                None => {
                    window.push(failed);
                    if window.trips(self.min_runs, self.failure_rate) {
                        open = Some((finished, self.until(finished)));
                    }
                }
                Some((_, until)) if finished >= until || requested => {
                    open = failed.then(|| (finished, self.until(finished)));
                    window.clear();
                }
                Some(_) => {}
            }
        }
        match open {
            None => BreakerState::Closed {
                runs: window.runs(),
                failures: window.failures(),
            },
            Some((since, until)) if now < until => BreakerState::Open { since, until },
            Some((_, until)) => BreakerState::HalfOpen {
                since: until,
                probe: probe(executions, until, now, liveness),
            },
        }
    }

    /// When a breaker that opens at `at` becomes half-open.
    fn until(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at + chrono::Duration::from_std(self.open_for).unwrap_or(chrono::Duration::MAX)
    }
}

/// The probe in flight of a half-open breaker: the latest execution `RUNNING` since `since`
/// whose heartbeat is less than `liveness` old at `now` (a probe whose owner died does not
/// hold the breaker half-open for ever).
fn probe(
    executions: &[ExecutionRecord],
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    liveness: Duration,
) -> Option<String> {
    let liveness = chrono::Duration::from_std(liveness).unwrap_or(chrono::Duration::MAX);
    executions
        .iter()
        .filter(|e| {
            e.status == Status::Running && e.started_at >= since && now - e.heartbeat_at < liveness
        })
        .max_by_key(|e| (e.started_at, e.id.as_str()))
        .map(|e| e.id.clone())
}

/// The last outcomes of a closed breaker: `true` for a failure.
struct Window {
    outcomes: VecDeque<bool>,
    len: usize,
}

impl Window {
    fn new(len: usize) -> Self {
        Self {
            outcomes: VecDeque::with_capacity(len),
            len,
        }
    }

    fn push(&mut self, failed: bool) {
        if self.outcomes.len() == self.len {
            self.outcomes.pop_front();
        }
        self.outcomes.push_back(failed);
    }

    fn clear(&mut self) {
        self.outcomes.clear();
    }

    fn runs(&self) -> u32 {
        self.outcomes.len() as u32
    }

    fn failures(&self) -> u32 {
        self.outcomes.iter().filter(|f| **f).count() as u32
    }

    /// Whether the window opens a breaker: at least `min_runs`, and the failed share at
    /// least `rate` (a quotient, so that 3 of 10 reaches 0.3 exactly).
    fn trips(&self, min_runs: u32, rate: f64) -> bool {
        let runs = self.runs();
        runs >= min_runs && f64::from(self.failures()) / f64::from(runs) >= rate
    }
}

/// A circuit breaker's state, as [`CircuitBreaker::state`] computes it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Ticks run. The window holds `runs` outcomes, `failures` of them failed.
    Closed {
        /// The outcomes in the window.
        runs: u32,
        /// The failures among them.
        failures: u32,
    },
    /// Ticks are skipped until `until`.
    Open {
        /// The finish of the execution that opened it.
        since: DateTime<Utc>,
        /// When it becomes half-open.
        until: DateTime<Utc>,
    },
    /// The next tick runs as the one probe, unless `probe` is already running: then ticks
    /// still skip until it ends.
    HalfOpen {
        /// When `open_for` was over.
        since: DateTime<Utc>,
        /// The probe in flight, if one is.
        probe: Option<String>,
    },
}

impl BreakerState {
    /// Whether a tick of the schedule runs now (closed, or half-open with no probe in
    /// flight: the tick is the probe).
    pub fn lets_tick_run(&self) -> bool {
        match self {
            Self::Closed { .. } => true,
            Self::Open { .. } => false,
            Self::HalfOpen { probe, .. } => probe.is_none(),
        }
    }

    /// The value of the `tickguard_circuit_state` gauge: 0 closed, 1 half-open, 2 open.
    pub fn gauge(&self) -> f64 {
        match self {
            Self::Closed { .. } => 0.0,
            Self::HalfOpen { .. } => 1.0,
            Self::Open { .. } => 2.0,
        }
    }

    /// `closed`, `half-open` or `open`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Closed { .. } => "closed",
            Self::HalfOpen { .. } => "half-open",
            Self::Open { .. } => "open",
        }
    }
}

/// Histories of executions written as text (`"F@1 C@2 R@3"`), for the tests of the breaker
/// and of `pause_on_failure`.
#[cfg(test)]
pub(crate) mod history_fixture {
    use chrono::{DateTime, TimeZone, Utc};

    use crate::store::{ExecutionRecord, Status};

    /// Seconds after a fixed origin.
    pub(crate) fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    /// An execution that finished at `finished` s (`status` by its letter: C completed, F
    /// failed, T timed out, X cancelled, S skipped, R running since `finished` s, heartbeat
    /// then; `M` prefix: requested by an operator).
    pub(crate) fn exec(i: usize, code: &str, at: i64) -> ExecutionRecord {
        let (requested, code) = match code.strip_prefix('M') {
            Some(rest) => (Some("ops".to_owned()), rest),
            None => (None, code),
        };
        let status = match code {
            "C" => Status::Completed,
            "F" => Status::Failed,
            "T" => Status::TimedOut,
            "X" => Status::Cancelled,
            "S" => Status::Skipped,
            "R" => Status::Running,
            other => panic!("no status {other}"),
        };
        ExecutionRecord {
            id: format!("job@{i:03}"),
            job: "job".to_owned(),
            scheduled_at: t(at - 1),
            status,
            fence: i as u64,
            owner: "i-1".to_owned(),
            attempts: 1,
            started_at: t(at - 1),
            heartbeat_at: t(at),
            finished_at: (status != Status::Running).then(|| t(at)),
            error: None,
            checkpoint: None,
            requested_by: requested,
        }
    }

    /// A history: `"F@1 C@2 R@3"`.
    pub(crate) fn history(text: &str) -> Vec<ExecutionRecord> {
        text.split_whitespace()
            .enumerate()
            .map(|(i, item)| {
                let (code, at) = item.split_once('@').unwrap();
                exec(i, code, at.parse().unwrap())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVENESS: Duration = Duration::from_secs(30);

    use super::history_fixture::{history, t};

    /// rate 0.5 over the last 4, at least 3 runs, open for 10 s.
    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new()
            .failure_rate(0.5)
            .window(4)
            .min_runs(3)
            .open_for(Duration::from_secs(10))
    }

    fn closed(runs: u32, failures: u32) -> BreakerState {
        BreakerState::Closed { runs, failures }
    }

    fn open(since: i64) -> BreakerState {
        BreakerState::Open {
            since: t(since),
            until: t(since + 10),
        }
    }

    fn half_open(since: i64, probe: Option<usize>) -> BreakerState {
        BreakerState::HalfOpen {
            since: t(since),
            probe: probe.map(|i| format!("job@{i:03}")),
        }
    }

    #[test]
    fn histories_give_states() {
        let cases: &[(&str, &str, i64, BreakerState)] = &[
            ("no history", "", 100, closed(0, 0)),
            ("below min_runs", "F@1 F@2", 5, closed(2, 2)),
            ("min_runs reached at the rate", "F@1 C@2 F@3", 5, open(3)),
            ("below the rate", "F@1 C@2 C@3", 5, closed(3, 1)),
            // The window slides: the old failures fall out of the last 4.
            (
                "old failures slide out",
                "F@1 C@2 C@3 C@4 C@5 F@6",
                7,
                closed(4, 1),
            ),
            (
                "the last window trips",
                "F@1 C@2 C@3 C@4 C@5 F@6 F@7",
                8,
                open(7),
            ),
            ("timeouts are failures", "T@1 C@2 T@3", 5, open(3)),
            ("a success can trip it", "F@1 F@2 C@3", 5, open(3)),
            (
                "cancelled and skipped do not count",
                "F@1 X@2 S@3 F@4",
                5,
                closed(2, 2),
            ),
            ("running does not count", "F@1 R@2 F@3", 5, closed(2, 2)),
            ("open until open_for is over", "F@1 F@2 F@3", 12, open(3)),
            ("half-open at until", "F@1 F@2 F@3", 13, half_open(13, None)),
            (
                "half-open long after",
                "F@1 F@2 F@3",
                1000,
                half_open(13, None),
            ),
            // Runs in flight when it opened change nothing.
            (
                "in-flight outcomes ignored",
                "F@1 F@2 F@3 C@4 F@5",
                14,
                half_open(13, None),
            ),
            (
                "a probe in flight",
                "F@1 F@2 F@3 R@14",
                15,
                half_open(13, Some(3)),
            ),
            (
                "a probe from before until is not",
                "F@1 F@2 F@3 R@12",
                15,
                half_open(13, None),
            ),
            (
                "a probe whose owner died is not",
                "F@1 F@2 F@3 R@14",
                45,
                half_open(13, None),
            ),
            (
                "the probe's success closes it",
                "F@1 F@2 F@3 C@14",
                15,
                closed(0, 0),
            ),
            // After the probe, the window starts again: the failures before do not count.
            (
                "the window restarts",
                "F@1 F@2 F@3 C@14 F@15 F@16",
                17,
                closed(2, 2),
            ),
            (
                "and can trip again",
                "F@1 F@2 F@3 C@14 F@15 F@16 F@17",
                18,
                open(17),
            ),
            (
                "the probe's failure reopens it",
                "F@1 F@2 F@3 F@14",
                15,
                open(14),
            ),
            (
                "reopened then half-open",
                "F@1 F@2 F@3 F@14",
                24,
                half_open(24, None),
            ),
            (
                "a timed-out probe reopens it",
                "F@1 F@2 F@3 T@14",
                15,
                open(14),
            ),
            (
                "an operator's success closes it",
                "F@1 F@2 F@3 MC@5",
                6,
                closed(0, 0),
            ),
            (
                "an operator's failure reopens it",
                "F@1 F@2 F@3 MF@5",
                6,
                open(5),
            ),
            (
                "operators' runs count while closed",
                "MF@1 MF@2 C@3",
                4,
                open(3),
            ),
        ];
        for (what, text, now, want) in cases {
            let got = breaker().state(&history(text), t(*now), LIVENESS);
            assert_eq!(&got, want, "{what}: {text} at {now}");
        }
    }

    #[test]
    fn outcomes_replay_in_the_order_they_finished_whatever_the_order_read() {
        let mut records = history("F@1 C@2 C@3 F@4 C@5");
        let want = breaker().state(&records, t(6), LIVENESS);
        assert_eq!(want, open(4));
        records.reverse();
        assert_eq!(breaker().state(&records, t(6), LIVENESS), want);
        records.swap(0, 3);
        assert_eq!(breaker().state(&records, t(6), LIVENESS), want);
    }

    #[test]
    fn rates_are_reached_exactly() {
        let breaker = CircuitBreaker::new()
            .failure_rate(0.3)
            .window(10)
            .min_runs(10)
            .open_for(Duration::from_secs(10));
        let three_of_ten = "F@1 F@2 F@3 C@4 C@5 C@6 C@7 C@8 C@9 C@10";
        assert_eq!(
            breaker.state(&history(three_of_ten), t(11), LIVENESS),
            open(10)
        );
        let two_of_ten = "F@1 F@2 C@3 C@4 C@5 C@6 C@7 C@8 C@9 C@10";
        assert_eq!(
            breaker.state(&history(two_of_ten), t(11), LIVENESS),
            closed(10, 2)
        );
    }

    #[test]
    fn states_let_ticks_run_and_gauge() {
        assert!(closed(0, 0).lets_tick_run());
        assert!(!open(1).lets_tick_run());
        assert!(half_open(1, None).lets_tick_run());
        assert!(!half_open(1, Some(1)).lets_tick_run());
        assert_eq!(
            [closed(0, 0), half_open(1, None), open(1)].map(|s| s.gauge()),
            [0.0, 1.0, 2.0]
        );
    }

    #[test]
    fn settings_round_trip_through_the_store_and_read_like_the_attribute() {
        let shared = breaker().name("payments");
        let stored = shared.to_stored();
        assert_eq!(CircuitBreaker::from_stored(&stored), Ok(shared.clone()));
        assert_eq!(
            CircuitBreaker::from_stored(&breaker().to_stored()),
            Ok(breaker())
        );
        assert_eq!(
            shared.to_string(),
            "name = \"payments\", failure_rate = 0.5, window = 4, min_runs = 3, open_for = 10s"
        );
        assert!(CircuitBreaker::from_stored("not json").is_err());
        let zero_window = stored.replace("\"window\":4", "\"window\":0");
        assert!(
            CircuitBreaker::from_stored(&zero_window)
                .unwrap_err()
                .contains("window")
        );
    }
}

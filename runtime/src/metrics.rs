//! Metric names and the per-job handles the executor records through.
//!
//! tickguard emits through the [`metrics`] facade: install any recorder (the Prometheus
//! exporter, or your own) before [`SchedulerBuilder::build`](crate::SchedulerBuilder::build),
//! which registers the handles. The `job` label is always a registered job's name, so label
//! cardinality is bounded by the number of jobs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics::{
    Counter, Gauge, Histogram, Unit, describe_counter, describe_gauge, describe_histogram,
};

/// `tickguard_executions_total{job, outcome}`: finished runs; outcome is `success`,
/// `failure`, `timeout` or `cancelled`.
pub const EXECUTIONS_TOTAL: &str = "tickguard_executions_total";
/// `tickguard_execution_duration_seconds{job, outcome}`: run duration, all attempts included.
pub const EXECUTION_DURATION: &str = "tickguard_execution_duration_seconds";
/// `tickguard_skips_total{job, reason}`: ticks not run here; reason is `locked`,
/// `duplicate`, `overlap`, `misfire`, `unavailable`, `early`, `paused` or `circuit_open`.
pub const SKIPS_TOTAL: &str = "tickguard_skips_total";
/// `tickguard_ticks_lost_total{job, reason}`: ticks lost for good, that no instance ran or
/// will run; reason is `misfire`, `overlap` or `unavailable`. Each also counts in
/// [`SKIPS_TOTAL`]; `locked` and `duplicate` skips lose nothing and are not counted here.
pub const TICKS_LOST_TOTAL: &str = "tickguard_ticks_lost_total";
/// `tickguard_retries_total{job}`: retries (attempts after the first).
pub const RETRIES_TOTAL: &str = "tickguard_retries_total";
/// `tickguard_lock_acquire_duration_seconds{job}`: lock round trip.
pub const LOCK_ACQUIRE_DURATION: &str = "tickguard_lock_acquire_duration_seconds";
/// `tickguard_lock_held_duration_seconds{job}`: from acquisition to release.
pub const LOCK_HELD_DURATION: &str = "tickguard_lock_held_duration_seconds";
/// `tickguard_lock_lost_total{job}`: leases that could not be proven held during a run.
pub const LOCK_LOST_TOTAL: &str = "tickguard_lock_lost_total";
/// `tickguard_fence_rejections_total{job}`: stale runs whose writes the store refused.
pub const FENCE_REJECTIONS_TOTAL: &str = "tickguard_fence_rejections_total";
/// `tickguard_fire_lateness_seconds{job}`: from the scheduled instant to the wake-up.
pub const FIRE_LATENESS: &str = "tickguard_fire_lateness_seconds";
/// `tickguard_running{job}`: runs in progress on this instance.
pub const RUNNING: &str = "tickguard_running";
/// `tickguard_last_success_timestamp_seconds{job}`: Unix time of the last success.
pub const LAST_SUCCESS: &str = "tickguard_last_success_timestamp_seconds";
/// `tickguard_once_skipped_total{job}`: `once` and `once_ever` steps not run because they
/// were already done (within the execution, or ever).
pub const ONCE_SKIPPED_TOTAL: &str = "tickguard_once_skipped_total";

/// `tickguard_paused{job}`: 1 while the job is paused (through the store, for every
/// instance), as this instance last read it; 0 otherwise.
pub const PAUSED: &str = "tickguard_paused";

/// `tickguard_paused_on_failure{job}`: 1 while the job is paused by `pause_on_failure` (the
/// pause the store holds was made by it, not by an operator), as this instance last read
/// it; 0 otherwise.
pub const PAUSED_ON_FAILURE: &str = "tickguard_paused_on_failure";

/// `tickguard_paused_on_failure_total{job}`: pauses this instance made because the job's
/// last `pause_on_failure` executions all failed (see `pause_on_failure`).
pub const PAUSED_ON_FAILURE_TOTAL: &str = "tickguard_paused_on_failure_total";

/// `tickguard_circuit_state{breaker}`: the state of a circuit breaker as this instance last
/// computed it from the store: 0 closed, 1 half-open, 2 open. `breaker` is the breaker's
/// shared name, or the name of the job that has it alone.
pub const CIRCUIT_STATE: &str = "tickguard_circuit_state";

/// `tickguard_next_fire_timestamp_seconds{job}`: Unix time of the tick the job waits for next
/// on this instance; 0 once its schedule has no further fire time.
pub const NEXT_FIRE: &str = "tickguard_next_fire_timestamp_seconds";
/// `tickguard_period_seconds{job}`: the interval between the job's next two fire times (for
/// a fixed delay, the delay), updated with [`NEXT_FIRE`]; 0 once the schedule has no further
/// fire time.
pub const PERIOD: &str = "tickguard_period_seconds";

/// Why a tick was skipped, the `reason` label of [`SKIPS_TOTAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// Another instance holds the job's lock.
    Locked,
    /// The tick's execution already completed.
    Duplicate,
    /// A run of the job is still in progress, here or on another instance.
    Overlap,
    /// The tick was missed and the misfire policy skips it.
    Misfire,
    /// The lock backend or the store could not be reached.
    Unavailable,
    /// This instance's clock runs ahead of the store's: the tick was not due yet, and is
    /// left to the instances whose clock is right.
    Early,
    /// The job is paused: its ticks are skipped until it is resumed, and not run later.
    Paused,
    /// The job's circuit breaker is open (or half-open with its probe running): the tick is
    /// skipped, and not run later.
    CircuitOpen,
}

impl SkipReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Locked => "locked",
            Self::Duplicate => "duplicate",
            Self::Overlap => "overlap",
            Self::Misfire => "misfire",
            Self::Unavailable => "unavailable",
            Self::Early => "early",
            Self::Paused => "paused",
            Self::CircuitOpen => "circuit_open",
        }
    }
}

/// How a run ended, the `outcome` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    Success,
    Failure,
    Timeout,
    Cancelled,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Registers the descriptions of every metric with the installed recorder.
pub(crate) fn describe() {
    describe_counter!(
        EXECUTIONS_TOTAL,
        Unit::Count,
        "Finished job runs, by outcome."
    );
    describe_histogram!(
        EXECUTION_DURATION,
        Unit::Seconds,
        "Duration of job runs, all attempts included, by outcome."
    );
    describe_counter!(
        SKIPS_TOTAL,
        Unit::Count,
        "Ticks that were not run, by reason."
    );
    describe_counter!(
        TICKS_LOST_TOTAL,
        Unit::Count,
        "Ticks lost for good (no instance ran them), by reason."
    );
    describe_counter!(RETRIES_TOTAL, Unit::Count, "Retries of failed attempts.");
    describe_histogram!(
        LOCK_ACQUIRE_DURATION,
        Unit::Seconds,
        "Round trip of lease lock acquisition."
    );
    describe_histogram!(
        LOCK_HELD_DURATION,
        Unit::Seconds,
        "Time from lease acquisition to release."
    );
    describe_counter!(
        LOCK_LOST_TOTAL,
        Unit::Count,
        "Leases that could not be proven held while the job ran."
    );
    describe_counter!(
        FENCE_REJECTIONS_TOTAL,
        Unit::Count,
        "Stale runs whose writes the execution store refused."
    );
    describe_histogram!(
        FIRE_LATENESS,
        Unit::Seconds,
        "Delay from a tick's scheduled instant to the scheduler waking for it."
    );
    describe_gauge!(
        RUNNING,
        Unit::Count,
        "Job runs in progress on this instance."
    );
    describe_gauge!(
        LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of the job's last successful run on this instance."
    );
    describe_gauge!(
        NEXT_FIRE,
        Unit::Seconds,
        "Unix time of the tick the job waits for next on this instance."
    );
    describe_gauge!(
        PERIOD,
        Unit::Seconds,
        "Interval between the job's next two fire times (a fixed delay: the delay)."
    );
    describe_gauge!(
        PAUSED,
        Unit::Count,
        "Whether the job is paused (1) or not (0), as this instance last read the store."
    );
    describe_gauge!(
        PAUSED_ON_FAILURE,
        Unit::Count,
        "Whether the job is paused by pause_on_failure (1) or not (0), as this instance last read the store."
    );
    describe_counter!(
        PAUSED_ON_FAILURE_TOTAL,
        Unit::Count,
        "Pauses made because the job's last pause_on_failure executions all failed."
    );
    describe_gauge!(
        CIRCUIT_STATE,
        Unit::Count,
        "State of a circuit breaker: 0 closed, 1 half-open, 2 open."
    );
    describe_counter!(
        ONCE_SKIPPED_TOTAL,
        Unit::Count,
        "Once steps not run because they were already done."
    );
}

/// Buckets of the run duration and lock hold histograms, in seconds: 5 ms to 4 hours, about
/// 2.5x apart, so that a nightly batch and a sub-second sync both get a useful p95.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0, 3600.0, 7200.0, 14400.0,
];

/// Buckets of the lock round trip histogram, in seconds: 100 µs (Redis on the same host) to
/// 10 s (the backend timeout).
pub const LOCK_ROUND_TRIP_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Buckets of the fire lateness histogram, in seconds: 1 ms to 5 minutes (a tick noticed
/// later than that is a misfire anyway).
pub const LATENESS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// A [`PrometheusBuilder`] with tickguard's histogram buckets, for an application that
/// installs its own exporter (and so does not call
/// [`SchedulerBuilder::prometheus`](crate::SchedulerBuilder::prometheus)): without buckets,
/// the exporter renders histograms as summaries, which cannot be aggregated across
/// instances.
///
/// [`PrometheusBuilder`]: https://docs.rs/metrics-exporter-prometheus/0.18/metrics_exporter_prometheus/struct.PrometheusBuilder.html
///
/// ```no_run
/// # fn f() -> Result<(), Box<dyn std::error::Error>> {
/// tickguard::metrics::prometheus_builder()
///     .with_http_listener(([0, 0, 0, 0], 9464))
///     .install()?;
/// # Ok(()) }
/// ```
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub fn prometheus_builder() -> metrics_exporter_prometheus::PrometheusBuilder {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

    [
        (EXECUTION_DURATION, DURATION_BUCKETS),
        (LOCK_HELD_DURATION, DURATION_BUCKETS),
        (LOCK_ACQUIRE_DURATION, LOCK_ROUND_TRIP_BUCKETS),
        (FIRE_LATENESS, LATENESS_BUCKETS),
    ]
    .into_iter()
    .fold(PrometheusBuilder::new(), |b, (name, buckets)| {
        b.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
            .expect("the bucket lists are not empty")
    })
}

/// Handles for one job, registered once so the hot path only records.
pub(crate) struct JobMetrics {
    executions: [Counter; 4],
    durations: [Histogram; 4],
    skips: [Counter; 8],
    lost: [Counter; 3],
    pub(crate) retries: Counter,
    pub(crate) lock_acquire: Histogram,
    pub(crate) lock_held: Histogram,
    pub(crate) lock_lost: Counter,
    pub(crate) fence_rejections: Counter,
    pub(crate) lateness: Histogram,
    pub(crate) running: Gauge,
    pub(crate) last_success: Gauge,
    pub(crate) paused_on_failure: Counter,
    next_fire: Gauge,
    period: Gauge,
    paused: Gauge,
    paused_by_policy: Gauge,
}

const OUTCOMES: [Outcome; 4] = [
    Outcome::Success,
    Outcome::Failure,
    Outcome::Timeout,
    Outcome::Cancelled,
];
/// The reasons a tick can be lost for good, the `reason` label of [`TICKS_LOST_TOTAL`].
const LOST_REASONS: [SkipReason; 3] = [
    SkipReason::Misfire,
    SkipReason::Overlap,
    SkipReason::Unavailable,
];
const REASONS: [SkipReason; 8] = [
    SkipReason::Locked,
    SkipReason::Duplicate,
    SkipReason::Overlap,
    SkipReason::Misfire,
    SkipReason::Unavailable,
    SkipReason::Early,
    SkipReason::Paused,
    SkipReason::CircuitOpen,
];

impl JobMetrics {
    pub(crate) fn new(job: &str) -> Self {
        let job = job.to_owned();
        Self {
            executions: OUTCOMES.map(|o| {
                metrics::counter!(EXECUTIONS_TOTAL, "job" => job.clone(), "outcome" => o.as_str())
            }),
            durations: OUTCOMES.map(|o| {
                metrics::histogram!(EXECUTION_DURATION, "job" => job.clone(), "outcome" => o.as_str())
            }),
            skips: REASONS.map(|r| {
                metrics::counter!(SKIPS_TOTAL, "job" => job.clone(), "reason" => r.as_str())
            }),
            lost: LOST_REASONS.map(|r| {
                metrics::counter!(TICKS_LOST_TOTAL, "job" => job.clone(), "reason" => r.as_str())
            }),
            next_fire: metrics::gauge!(NEXT_FIRE, "job" => job.clone()),
            period: metrics::gauge!(PERIOD, "job" => job.clone()),
            paused: {
                let paused = metrics::gauge!(PAUSED, "job" => job.clone());
                paused.set(0.0);
                paused
            },
            paused_by_policy: {
                let paused = metrics::gauge!(PAUSED_ON_FAILURE, "job" => job.clone());
                paused.set(0.0);
                paused
            },
            retries: metrics::counter!(RETRIES_TOTAL, "job" => job.clone()),
            lock_acquire: metrics::histogram!(LOCK_ACQUIRE_DURATION, "job" => job.clone()),
            lock_held: metrics::histogram!(LOCK_HELD_DURATION, "job" => job.clone()),
            lock_lost: metrics::counter!(LOCK_LOST_TOTAL, "job" => job.clone()),
            fence_rejections: metrics::counter!(FENCE_REJECTIONS_TOTAL, "job" => job.clone()),
            lateness: metrics::histogram!(FIRE_LATENESS, "job" => job.clone()),
            running: metrics::gauge!(RUNNING, "job" => job.clone()),
            paused_on_failure: metrics::counter!(PAUSED_ON_FAILURE_TOTAL, "job" => job.clone()),
            last_success: metrics::gauge!(LAST_SUCCESS, "job" => job),
        }
    }

    /// Counts an execution's outcome, and the run's duration when it ran (an execution
    /// concluded before its run started has none).
    pub(crate) fn concluded(&self, outcome: Outcome, seconds: Option<f64>) {
        let i = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0);
        self.executions[i].increment(1);
        if let Some(seconds) = seconds {
            self.durations[i].record(seconds);
        }
    }

    /// The calls one successful run under a lock makes, in the executor's order (the tick's
    /// lateness, the lock round trip, running up and down, the outcome, the last success, the
    /// hold time): what the metrics cost bench measures.
    pub(crate) fn record_locked_success(&self, seconds: f64) {
        self.lateness.record(seconds);
        self.lock_acquire.record(seconds);
        self.running.increment(1.0);
        self.running.decrement(1.0);
        self.concluded(Outcome::Success, Some(seconds));
        self.last_success.set(seconds);
        self.lock_held.record(seconds);
    }

    pub(crate) fn skipped(&self, reason: SkipReason, count: u64) {
        let i = REASONS.iter().position(|r| *r == reason).unwrap_or(0);
        self.skips[i].increment(count);
    }

    /// Counts `count` ticks lost for good. A reason that loses nothing (`locked`,
    /// `duplicate`) is not counted.
    pub(crate) fn lost(&self, reason: SkipReason, count: u64) {
        let i = LOST_REASONS.iter().position(|r| *r == reason);
        debug_assert!(i.is_some(), "a {} skip loses no tick", reason.as_str());
        if let Some(i) = i {
            self.lost[i].increment(count);
        }
    }

    /// Publishes whether the job is paused, and whether by `pause_on_failure`.
    pub(crate) fn paused(&self, paused: bool, by_policy: bool) {
        self.paused.set(if paused { 1.0 } else { 0.0 });
        self.paused_by_policy
            .set(if paused && by_policy { 1.0 } else { 0.0 });
    }

    /// Publishes the tick the job waits for next and the interval to the one after it
    /// (both 0 when there is none).
    pub(crate) fn next_fire(&self, next: Option<DateTime<Utc>>, period: Option<Duration>) {
        self.next_fire
            .set(next.map_or(0.0, |t| t.timestamp_millis() as f64 / 1000.0));
        self.period.set(period.map_or(0.0, |p| p.as_secs_f64()));
    }
}

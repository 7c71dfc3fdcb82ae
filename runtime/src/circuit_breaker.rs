//! The circuit breaker policy of a job (`circuit_breaker(..)`): when a job's recent
//! executions fail too often, its ticks are skipped for a while instead of hammering a
//! dependency that is down.

use std::time::Duration;

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
#[derive(Clone, Debug, PartialEq)]
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

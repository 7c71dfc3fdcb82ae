//! Retries of transient failures, with exponential backoff, a cap and jitter.

use std::time::Duration;

use crate::job_error::JobError;

/// Decides whether a transient error is retried (`retry(when = path::to::fn)`).
pub type RetryPredicate = fn(&JobError) -> bool;

/// How a failed run is retried.
///
/// The delay before retry `n` (1 for the first retry) is `backoff * factor^(n-1)`, capped at
/// `max_delay`, then shortened by a random fraction of up to `jitter` (with `jitter = 0.5`
/// it lies in `[delay/2, delay]`), so that retries of many runs do not fall in step.
/// Permanent errors and panics are never retried; a `when` predicate can refuse more.
///
/// ```
/// use std::time::Duration;
/// use tickguard::RetryPolicy;
///
/// let policy = RetryPolicy::attempts(5)
///     .backoff(Duration::from_secs(1))
///     .factor(2.0)
///     .max_delay(Duration::from_secs(5));
/// let delays: Vec<_> = (1..5).map(|n| policy.delay(n)).collect();
/// assert_eq!(delays, [1, 2, 4, 5].map(Duration::from_secs));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub(crate) attempts: u32,
    pub(crate) backoff: Duration,
    pub(crate) factor: f64,
    pub(crate) max_delay: Duration,
    pub(crate) jitter: f64,
    pub(crate) when: Option<RetryPredicate>,
}

impl RetryPolicy {
    /// The backoff before the first retry unless set: 1 s.
    pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
    /// The growth factor unless set: 2.
    pub const DEFAULT_FACTOR: f64 = 2.0;
    /// The longest delay unless set: 5 min.
    pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(300);
    /// The attempts of a bare `retry`: 3.
    pub const DEFAULT_ATTEMPTS: u32 = 3;
    /// The jitter unless set: 0, delays are not shortened.
    pub const DEFAULT_JITTER: f64 = 0.0;

    /// One attempt, no retry.
    pub fn none() -> Self {
        Self::attempts(1)
    }

    /// Up to `attempts` attempts in all (the first run counts), with the default backoff.
    pub const fn attempts(attempts: u32) -> Self {
        Self {
            attempts,
            backoff: Self::DEFAULT_BACKOFF,
            factor: Self::DEFAULT_FACTOR,
            max_delay: Self::DEFAULT_MAX_DELAY,
            jitter: Self::DEFAULT_JITTER,
            when: None,
        }
    }

    /// The delay before the first retry.
    pub const fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// How much each delay grows over the previous one (1.0 for a constant delay).
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// The longest delay.
    pub const fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// The largest fraction (0 to 1) a delay is randomly shortened by.
    pub const fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Retries a transient error only if `predicate` says so.
    pub fn when(mut self, predicate: RetryPredicate) -> Self {
        self.when = Some(predicate);
        self
    }

    /// The most attempts a run makes.
    pub fn max_attempts(&self) -> u32 {
        self.attempts
    }

    /// The delay before retry `retry` (1 for the first), before jitter.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.backoff.as_secs_f64() * self.factor.powi(exp);
        let capped = secs.min(self.max_delay.as_secs_f64());
        Duration::try_from_secs_f64(capped).unwrap_or(self.max_delay)
    }

    /// [`RetryPolicy::delay`] with jitter applied.
    pub fn jittered_delay(&self, retry: u32) -> Duration {
        let delay = self.delay(retry);
        if self.jitter <= 0.0 {
            return delay;
        }
        delay.mul_f64(1.0 - self.jitter * fastrand::f64())
    }

    /// Whether `error`, raised by attempt `attempt`, is retried.
    pub fn should_retry(&self, error: &JobError, attempt: u32) -> bool {
        attempt < self.attempts && !error.is_permanent() && self.when.is_none_or(|when| when(error))
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.attempts == 0 {
            return Err("retry attempts must be at least 1 (the first run counts)".to_owned());
        }
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(format!(
                "retry factor must be at least 1.0, got {}",
                self.factor
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!(
                "retry jitter must be between 0 and 1, got {}",
                self.jitter
            ));
        }
        Ok(())
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::none()
    }
}

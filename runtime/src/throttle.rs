//! Keeps a recurring warning to a few log lines: the first, then one summary a minute.

use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

use crate::metrics::SkipReason;

/// Keeps one kind of warning of one job to its first, then at most one per
/// [`Throttle::PERIOD`] that sums up the ticks counted since the last one: an overloaded
/// scheduler would otherwise log a line per job per tick. The metrics count every tick.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// When the last warning was logged.
    last: Option<Instant>,
    /// The ticks counted since then.
    held: u64,
}

/// A warning to log now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Warning {
    /// The ticks since the last warning, these included.
    pub(crate) ticks: u64,
    /// Whether it is the job's first warning of its kind.
    pub(crate) first: bool,
}

impl Throttle {
    /// The least time between two warnings of one kind for one job.
    pub(crate) const PERIOD: Duration = Duration::from_secs(60);

    /// Counts `ticks` at `now`; the warning to log, if one is due.
    pub(crate) fn count(&mut self, now: Instant, ticks: u64) -> Option<Warning> {
        self.held += ticks;
        let first = match self.last {
            Some(last) if now.saturating_duration_since(last) < Self::PERIOD => return None,
            Some(_) => false,
            None => true,
        };
        self.last = Some(now);
        Some(Warning {
            ticks: std::mem::take(&mut self.held),
            first,
        })
    }
}

/// One job's warning throttles, one per reason (lost ticks by reason, an early clock).
#[derive(Debug, Default)]
pub(crate) struct Throttles(Mutex<Vec<(SkipReason, Throttle)>>);

impl Throttles {
    /// Counts `ticks` for `reason` at `now`; the warning to log, if one is due.
    pub(crate) fn count(&self, reason: SkipReason, now: Instant, ticks: u64) -> Option<Warning> {
        let mut throttles = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let at = match throttles.iter().position(|(r, _)| *r == reason) {
            Some(at) => at,
            None => {
                throttles.push((reason, Throttle::default()));
                throttles.len() - 1
            }
        };
        throttles[at].1.count(now, ticks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_own_throttle() {
        let warnings = Throttles::default();
        let now = Instant::now();
        let first = |w: Option<Warning>| w.map(|w| (w.ticks, w.first));
        assert_eq!(
            first(warnings.count(SkipReason::Overlap, now, 2)),
            Some((2, true))
        );
        assert_eq!(
            first(warnings.count(SkipReason::Misfire, now, 5)),
            Some((5, true))
        );
        assert_eq!(first(warnings.count(SkipReason::Overlap, now, 1)), None);
        let later = now + Throttle::PERIOD + Duration::from_secs(1);
        assert_eq!(
            first(warnings.count(SkipReason::Overlap, later, 1)),
            Some((2, false))
        );
    }

    #[test]
    fn a_throttle_logs_the_first_then_one_summary_a_minute() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut throttle = Throttle::default();
        assert_eq!(
            throttle.count(at(0), 2),
            Some(Warning {
                ticks: 2,
                first: true
            })
        );
        for s in 1..60 {
            assert_eq!(throttle.count(at(s), 1), None, "at {s} s");
        }
        assert_eq!(
            throttle.count(at(60), 1),
            Some(Warning {
                ticks: 60,
                first: false
            })
        );
        assert_eq!(throttle.count(at(61), 3), None);
        assert_eq!(
            throttle.count(at(500), 1),
            Some(Warning {
                ticks: 4,
                first: false
            })
        );
    }
}

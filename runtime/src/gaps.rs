//! Gaps: the ticks a job's schedule says were due that have no execution, or whose
//! execution was skipped; what `tickguard gaps` lists and the console's strip of recent
//! ticks shows.

use std::collections::HashMap;

use crate::Schedule;
use crate::store::{ExecutionRecord, Status};
use chrono::{DateTime, Utc};

/// The most ticks `gaps` looks at in one call.
pub const MAX_TICKS: usize = 100_000;

/// A tick that did not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gap {
    /// No execution of the schedule's covers the tick.
    Missing {
        /// The tick.
        tick: DateTime<Utc>,
        /// Its place among the window's ticks.
        index: usize,
    },
    /// Its execution was skipped for good.
    Skipped {
        /// The tick.
        tick: DateTime<Utc>,
        /// Its place among the window's ticks.
        index: usize,
        /// The skipped execution.
        execution_id: String,
        /// Why, as recorded.
        reason: Option<String>,
    },
}

/// Why the gaps cannot be found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoGaps {
    /// A fixed delay fires after each run: it has no fixed ticks.
    FixedDelay,
    /// More than [`MAX_TICKS`] ticks in the window.
    TooManyTicks,
}

/// Whether an execution was asked for by hand ([`trigger`](crate::store::ExecutionStore::trigger)):
/// it does not cover a tick of the schedule.
pub fn is_manual(execution: &ExecutionRecord) -> bool {
    execution.requested_by.is_some() && execution.id.contains("@manual-")
}

/// The ticks of `schedule` in `[from, to)`, oldest first: at most [`MAX_TICKS`].
pub fn ticks(
    schedule: &Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, NoGaps> {
    if schedule.is_fixed_delay() {
        return Err(NoGaps::FixedDelay);
    }
    let first = if schedule.latest_at_or_before(from) == Some(from) {
        Some(from)
    } else {
        schedule.next_after(from)
    };
    let ticks: Vec<_> = std::iter::successors(first, |t| schedule.next_after(*t))
        .take_while(|t| *t < to)
        .take(MAX_TICKS + 1)
        .collect();
    if ticks.len() > MAX_TICKS {
        return Err(NoGaps::TooManyTicks);
    }
    Ok(ticks)
}

/// The ticks of `ticks` that no execution of `executions` covers (manual ones do not), or
/// whose executions were all skipped, oldest first.
pub fn find(ticks: &[DateTime<Utc>], executions: &[ExecutionRecord]) -> Vec<Gap> {
    // Ticks are whole milliseconds (cron: whole seconds); stores keep at least that.
    let mut by_tick: HashMap<i64, Vec<&ExecutionRecord>> = HashMap::new();
    for execution in executions.iter().filter(|e| !is_manual(e)) {
        by_tick
            .entry(execution.scheduled_at.timestamp_millis())
            .or_default()
            .push(execution);
    }
    let mut gaps = Vec::new();
    for (index, &tick) in ticks.iter().enumerate() {
        match by_tick.get(&tick.timestamp_millis()).map(Vec::as_slice) {
            None | Some([]) => gaps.push(Gap::Missing { tick, index }),
            Some(runs @ [first, ..]) if runs.iter().all(|e| e.status == Status::Skipped) => {
                gaps.push(Gap::Skipped {
                    tick,
                    index,
                    execution_id: first.id.clone(),
                    reason: first.error.clone(),
                });
            }
            Some(_) => {}
        }
    }
    gaps
}

/// The ticks of the run of consecutive ticks with no execution that `gaps` starts with
/// (empty if it starts with a skipped one).
pub fn missing_run(gaps: &[Gap]) -> Vec<DateTime<Utc>> {
    let mut run: Vec<DateTime<Utc>> = Vec::new();
    let mut next_index = None;
    for gap in gaps {
        match gap {
            Gap::Missing { tick, index } if next_index.is_none_or(|n| n == *index) => {
                run.push(*tick);
                next_index = Some(index + 1);
            }
            _ => break,
        }
    }
    run
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, h, m, 0).unwrap()
    }

    #[test]
    fn ticks_include_the_start_and_exclude_the_end() {
        let hourly = Schedule::every(Duration::from_secs(3_600)).unwrap();
        assert_eq!(
            ticks(&hourly, at(1, 0), at(3, 0)).unwrap(),
            [at(1, 0), at(2, 0)]
        );
        assert_eq!(
            ticks(&hourly, at(1, 30), at(3, 30)).unwrap(),
            [at(2, 0), at(3, 0)]
        );
        let berlin: Schedule = r#"cron "0 0 2 * * *" in Europe/Berlin"#.parse().unwrap();
        assert_eq!(
            ticks(&berlin, at(0, 0), at(23, 0)).unwrap(),
            [at(1, 0)],
            "02:00 CET is 01:00 UTC"
        );
    }

    #[test]
    fn runs_of_missing_ticks_are_consecutive() {
        let missing = |index: usize| Gap::Missing {
            tick: at(0, 0) + chrono::Duration::hours(i64::try_from(index).unwrap()),
            index,
        };
        let skipped = Gap::Skipped {
            tick: at(4, 0),
            index: 4,
            execution_id: "x".into(),
            reason: None,
        };
        let gaps = [missing(0), missing(1), missing(3), skipped, missing(5)];
        assert_eq!(missing_run(&gaps), [at(0, 0), at(1, 0)]);
        assert_eq!(missing_run(&gaps[2..]), [at(3, 0)]);
        assert!(missing_run(&gaps[3..]).is_empty());
    }

    #[test]
    fn ticks_are_capped_and_fixed_delays_have_none() {
        let second = Schedule::every(Duration::from_secs(1)).unwrap();
        let count = |seconds: i64| {
            ticks(
                &second,
                at(0, 0),
                at(0, 0) + chrono::Duration::seconds(seconds),
            )
            .map(|t| t.len())
        };
        assert_eq!(count(100_001), Err(NoGaps::TooManyTicks));
        assert_eq!(count(100_000), Ok(MAX_TICKS));
        assert_eq!(count(2 * 86_400), Err(NoGaps::TooManyTicks));
        let delay = Schedule::after(Duration::from_secs(60)).unwrap();
        assert_eq!(ticks(&delay, at(0, 0), at(1, 0)), Err(NoGaps::FixedDelay));
    }
}

//! What a job loop does with the ticks that came due while its run was in progress, by the
//! job's [`Overlap`] policy: how many are skipped, which run next, and which tick comes
//! after. Pure functions of the schedule and instants: no clock, no I/O.
//!
//! [`crate::misfire`] decides about ticks missed while no run could start (a suspended
//! process, a clock jump); this module about ticks a run of the job overlapped.

use chrono::{DateTime, Utc};
use tickguard_schedule::Schedule;

use crate::{
    job::{Misfire, Overlap},
    misfire,
};

/// Where a job loop goes once its runs ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AfterRun {
    /// The next tick to wait for (`None`: the schedule never fires again).
    pub(crate) next: Option<DateTime<Utc>>,
    /// The ticks that came due while the runs were in progress and are skipped.
    pub(crate) overlapped: u64,
    /// The overlapped ticks that run now, oldest first, before the loop waits for `next`.
    pub(crate) buffered: Vec<DateTime<Utc>>,
}

/// Where to go after the runs of a plan ended at wall time `ended`, given the plan's `next`
/// (the first tick after the ones that ran). The ticks in `[next, ended]` came due during
/// the runs: `skip` skips them; `buffer_one` and `cancel_other` run the latest of them (the
/// others are skipped); `buffer_all` runs them all, oldest first (at most
/// [`Misfire::RUN_ALL_LIMIT`], the most recent). The loop then waits for the first tick
/// after `ended`. A fixed delay counts from `ended`, and overlaps nothing.
pub(crate) fn after_run(
    schedule: &Schedule,
    next: Option<DateTime<Utc>>,
    ended: DateTime<Utc>,
    policy: Overlap,
) -> AfterRun {
    let Some(first) = next.filter(|n| *n <= ended && !schedule.is_fixed_delay()) else {
        return AfterRun {
            next: if schedule.is_fixed_delay() {
                schedule.next_after(ended)
            } else {
                next
            },
            overlapped: 0,
            buffered: Vec::new(),
        };
    };
    let keep = match policy {
        Overlap::Skip => 0,
        Overlap::BufferOne | Overlap::CancelOther => 1,
        Overlap::BufferAll => Misfire::RUN_ALL_LIMIT,
    };
    let (buffered, overlapped) = latest_in(schedule, first, ended, keep);
    AfterRun {
        next: schedule.next_after(ended),
        overlapped,
        buffered,
    }
}

/// The ticks in `[first, last]`: the latest `keep` of them, oldest first, and the count of
/// the others.
fn latest_in(
    schedule: &Schedule,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    keep: usize,
) -> (Vec<DateTime<Utc>>, u64) {
    let mut kept = Vec::new();
    let mut t = schedule
        .latest_at_or_before(last)
        .map_or(first, |l| l.max(first));
    while kept.len() < keep && t >= first {
        kept.push(t);
        match schedule.latest_at_or_before(t - chrono::Duration::nanoseconds(1)) {
            Some(prev) => t = prev,
            None => break,
        }
    }
    kept.reverse();
    let count = misfire::count_ticks(schedule, first, |t| t <= last);
    let skipped = count.saturating_sub(kept.len()) as u64;
    (kept, skipped)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;

    /// Midnight, 1 January 2026 plus `s` seconds: a multiple of every period used here.
    fn at(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    fn at_ms(ms: i64) -> DateTime<Utc> {
        at(0) + chrono::Duration::milliseconds(ms)
    }

    fn every(s: u64) -> Schedule {
        Schedule::every(Duration::from_secs(s)).unwrap()
    }

    const ALL: [Overlap; 4] = [
        Overlap::Skip,
        Overlap::BufferOne,
        Overlap::BufferAll,
        Overlap::CancelOther,
    ];

    #[test]
    fn a_run_that_ends_before_the_next_tick_overlapped_nothing() {
        for policy in ALL {
            assert_eq!(
                after_run(&every(10), Some(at(20)), at_ms(19_999), policy),
                AfterRun {
                    next: Some(at(20)),
                    overlapped: 0,
                    buffered: vec![],
                },
                "{policy:?}"
            );
        }
    }

    #[test]
    fn overlapped_ticks_are_skipped_buffered_one_or_buffered_all() {
        // The run for tick 10 ends at 35 s: ticks 20 and 30 came due meanwhile.
        let after = |policy| after_run(&every(10), Some(at(20)), at(35), policy);
        assert_eq!(
            after(Overlap::Skip),
            AfterRun {
                next: Some(at(40)),
                overlapped: 2,
                buffered: vec![],
            }
        );
        for policy in [Overlap::BufferOne, Overlap::CancelOther] {
            assert_eq!(
                after(policy),
                AfterRun {
                    next: Some(at(40)),
                    overlapped: 1,
                    buffered: vec![at(30)],
                },
                "{policy:?}"
            );
        }
        assert_eq!(
            after(Overlap::BufferAll),
            AfterRun {
                next: Some(at(40)),
                overlapped: 0,
                buffered: vec![at(20), at(30)],
            }
        );
        // A run that ends on a tick overlapped it.
        assert_eq!(
            after_run(&every(10), Some(at(20)), at(30), Overlap::Skip).overlapped,
            2
        );
    }

    #[test]
    fn buffer_all_keeps_the_most_recent_ticks_up_to_the_limit() {
        let limit = Misfire::RUN_ALL_LIMIT as i64;
        let ended = at(10 + (limit + 5) * 10);
        let after = after_run(&every(10), Some(at(20)), ended, Overlap::BufferAll);
        assert_eq!(after.buffered.len(), Misfire::RUN_ALL_LIMIT);
        assert_eq!(after.overlapped, 5);
        assert_eq!(after.buffered.last(), Some(&ended));
        assert!(after.buffered.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_fixed_delay_counts_from_the_run_end_and_overlaps_nothing() {
        let after = Schedule::after(Duration::from_secs(10)).unwrap();
        for policy in ALL {
            assert_eq!(
                after_run(&after, None, at_ms(103_500), policy),
                AfterRun {
                    next: Some(at_ms(113_500)),
                    overlapped: 0,
                    buffered: vec![],
                }
            );
        }
    }
}

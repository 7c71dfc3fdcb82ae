//! What a job loop does when it wakes for a tick: which due ticks run, how many are skipped
//! as misfires, which tick comes next, and how many ticks a run overlapped. Pure functions of
//! the schedule and instants: no clock, no I/O.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tickguard_schedule::Schedule;

use crate::{job::Misfire, overlap::AfterRun};

/// What to do on waking for a tick.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The ticks to run now, oldest first.
    pub(crate) run: Vec<DateTime<Utc>>,
    /// How many due ticks will not run (misfires).
    pub(crate) skipped: u64,
    /// The latest due tick: lateness is measured from it.
    pub(crate) latest: DateTime<Utc>,
    /// The first tick after the due ones, as seen before the runs (`None` when the schedule
    /// has no further fire time, and for a fixed delay, which counts from the runs' end);
    /// [`crate::overlap::after_run`] settles it.
    pub(crate) next: Option<DateTime<Utc>>,
}

/// The plan for waking at wall time `now` for tick `tick` (`tick <= now`). Every tick in
/// `[tick, now]` is due; all but the latest were missed, and the latest is on time if
/// `now - latest <= threshold`. `policy` decides which run.
pub(crate) fn plan(
    schedule: &Schedule,
    tick: DateTime<Utc>,
    now: DateTime<Utc>,
    policy: Misfire,
    threshold: Duration,
) -> Plan {
    if schedule.is_fixed_delay() {
        return Plan {
            run: vec![tick],
            skipped: 0,
            latest: tick,
            next: None,
        };
    }
    // The common case (the next tick is still ahead) costs one forward step, which the next
    // round needs anyway.
    let mut next = schedule.next_after(tick);
    let latest = match next {
        Some(n) if n <= now => {
            let latest = schedule
                .latest_at_or_before(now)
                .map_or(tick, |l| l.max(tick));
            next = schedule.next_after(latest);
            latest
        }
        _ => tick,
    };
    let on_time = (now - latest).to_std().unwrap_or_default() <= threshold;
    let missed = missed_between(schedule, tick, latest, policy);
    let mut run = Vec::new();
    let mut skipped = missed.skipped;
    match policy {
        Misfire::Skip if !on_time => skipped += 1,
        Misfire::Skip | Misfire::RunOnce => run.push(latest),
        Misfire::RunAll => {
            run.extend(missed.ticks);
            run.push(latest);
        }
    }
    Plan {
        run,
        skipped,
        latest,
        next,
    }
}

/// Why a pending tick of the ledger (one an instance fired but could not run) is skipped
/// for good at wall time `now` under `policy`, or `None` if it runs: `run_all` runs it
/// unless more than [`Misfire::RUN_ALL_LIMIT`] ticks came due after it; `run_once` runs
/// it unless a later tick is due (that one runs instead); `skip` runs it while it is on
/// time (late by at most `threshold`).
pub(crate) fn pending_skip(
    schedule: &Schedule,
    policy: Misfire,
    tick: DateTime<Utc>,
    now: DateTime<Utc>,
    threshold: Duration,
) -> Option<&'static str> {
    let on_time = (now - tick).to_std().unwrap_or_default() <= threshold;
    let later_due =
        || !schedule.is_fixed_delay() && schedule.next_after(tick).is_some_and(|next| next <= now);
    match policy {
        Misfire::Skip if !on_time => Some("late by more than the misfire threshold (skip)"),
        Misfire::RunOnce if later_due() => {
            Some("superseded by a later tick that is due (run_once)")
        }
        Misfire::RunAll
            if !schedule.is_fixed_delay()
                && schedule
                    .upcoming(tick)
                    .take_while(|t| *t <= now)
                    .nth(Misfire::RUN_ALL_LIMIT)
                    .is_some() =>
        {
            Some("older than the most recent ticks that run_all catches up on")
        }
        _ => None,
    }
}

/// Until when a tick that finds a backend unreachable is tried again: never past the next
/// tick (the job loop moves on to it a little before it is due: 250 ms, or a quarter of the
/// period if that is shorter). A tick of an idempotent job is
/// then left to the ledger, whose misfire policy is applied when the backend answers again,
/// so it is also given up once it is late by more than `threshold`, as is a tick under
/// `skip`; any other tick is lost once given up, so under `run_once` and `run_all` it is
/// tried until the next tick.
pub(crate) fn outage_deadline(
    schedule: &Schedule,
    policy: Misfire,
    idempotent: bool,
    tick: DateTime<Utc>,
    threshold: Duration,
) -> DateTime<Utc> {
    let late = tick + chrono::Duration::from_std(threshold).unwrap_or(chrono::Duration::MAX);
    let next = if schedule.is_fixed_delay() {
        None
    } else {
        schedule.next_after(tick)
    };
    // A margin before the next tick, so that the last try has ended when it comes due (a
    // quarter of the period at most).
    let margin = |next: DateTime<Utc>| {
        let period = (next - tick).to_std().unwrap_or_default();
        chrono::Duration::from_std((period / 4).min(Duration::from_millis(250))).unwrap_or_default()
    };
    match next.map(|next| next - margin(next)) {
        Some(before_next) if idempotent || policy == Misfire::Skip => before_next.min(late),
        Some(before_next) => before_next,
        None => late,
    }
}

/// Where to go after a tick was given up at wall time `ended` because a backend stayed
/// unreachable, given the plan's `next`: the ticks that came due meanwhile were not
/// overlapped by a run but missed, so the next round's [`plan`] applies the misfire policy
/// to them. A fixed delay counts from `ended`.
pub(crate) fn after_outage(
    schedule: &Schedule,
    next: Option<DateTime<Utc>>,
    ended: DateTime<Utc>,
) -> AfterRun {
    AfterRun {
        next: if schedule.is_fixed_delay() {
            schedule.next_after(ended)
        } else {
            next
        },
        overlapped: 0,
        buffered: Vec::new(),
    }
}

/// How many ticks from `first` on (`first` included) `within` holds for, in order. At most
/// a bounded number are counted one by one, so a long gap on a short period stays cheap
/// (beyond that the skip counters under-count).
pub(crate) fn count_ticks(
    schedule: &Schedule,
    first: DateTime<Utc>,
    within: impl Fn(DateTime<Utc>) -> bool,
) -> usize {
    const COUNT_LIMIT: usize = 100_000;
    std::iter::once(first)
        .chain(schedule.upcoming(first))
        .take_while(|t| within(*t))
        .take(COUNT_LIMIT)
        .count()
}

/// The ticks in `[next, latest)`, missed while the process could not fire them.
struct Missed {
    /// The missed ticks to run (for `RunAll`), oldest first.
    ticks: Vec<DateTime<Utc>>,
    /// The missed ticks that will not run.
    skipped: u64,
}

/// The ticks in `[next, latest)`: those `policy` runs, and the count of the others.
fn missed_between(
    schedule: &Schedule,
    next: DateTime<Utc>,
    latest: DateTime<Utc>,
    policy: Misfire,
) -> Missed {
    if next >= latest {
        return Missed {
            ticks: Vec::new(),
            skipped: 0,
        };
    }
    // The ticks to run are the latest ones, found walking back from `latest`.
    let mut ticks = Vec::new();
    if policy == Misfire::RunAll {
        let mut t = latest;
        while ticks.len() < Misfire::RUN_ALL_LIMIT {
            match schedule.latest_at_or_before(t - chrono::Duration::nanoseconds(1)) {
                Some(prev) if prev >= next => {
                    ticks.push(prev);
                    t = prev;
                }
                _ => break,
            }
        }
        ticks.reverse();
    }
    let count = count_ticks(schedule, next, |t| t < latest);
    Missed {
        skipped: (count.saturating_sub(ticks.len())) as u64,
        ticks,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

    use chrono::TimeZone;

    use super::*;

    const THRESHOLD: Duration = Duration::from_secs(5);

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

    fn plan_at(policy: Misfire, tick: i64, now_ms: i64) -> Plan {
        plan(&every(10), at(tick), at_ms(now_ms), policy, THRESHOLD)
    }

    #[test]
    fn on_time_every_policy_runs_the_tick() {
        for policy in [Misfire::Skip, Misfire::RunOnce, Misfire::RunAll] {
            assert_eq!(
                plan_at(policy, 10, 10_003),
                Plan {
                    run: vec![at(10)],
                    skipped: 0,
                    latest: at(10),
                    next: Some(at(20)),
                },
                "{policy:?}"
            );
        }
    }

    #[test]
    fn late_by_the_threshold_is_still_on_time() {
        let p = plan_at(Misfire::Skip, 10, 15_000);
        assert_eq!((p.run, p.skipped), (vec![at(10)], 0));
    }

    #[test]
    fn late_one_tick_skip_skips_it_and_run_once_and_run_all_run_it() {
        let skip = plan_at(Misfire::Skip, 10, 16_000);
        assert_eq!((skip.run, skip.skipped), (vec![], 1));
        assert_eq!(skip.next, Some(at(20)));
        for policy in [Misfire::RunOnce, Misfire::RunAll] {
            let p = plan_at(policy, 10, 16_000);
            assert_eq!((p.run, p.skipped, p.latest), (vec![at(10)], 0, at(10)));
        }
    }

    #[test]
    fn a_gap_of_three_ticks_with_the_latest_on_time() {
        // Woken at 40.5 s for tick 10: ticks 10, 20 and 30 were missed, 40 is on time.
        let skip = plan_at(Misfire::Skip, 10, 40_500);
        assert_eq!(
            skip,
            Plan {
                run: vec![at(40)],
                skipped: 3,
                latest: at(40),
                next: Some(at(50)),
            }
        );
        assert_eq!(plan_at(Misfire::RunOnce, 10, 40_500), skip);
        let all = plan_at(Misfire::RunAll, 10, 40_500);
        assert_eq!(
            (all.run, all.skipped, all.next),
            (vec![at(10), at(20), at(30), at(40)], 0, Some(at(50)))
        );
    }

    #[test]
    fn a_gap_of_three_ticks_with_the_latest_late() {
        // Woken at 47 s for tick 10: the latest due tick, 40, is 7 s late.
        let skip = plan_at(Misfire::Skip, 10, 47_000);
        assert_eq!((skip.run, skip.skipped, skip.latest), (vec![], 4, at(40)));
        let once = plan_at(Misfire::RunOnce, 10, 47_000);
        assert_eq!((once.run, once.skipped), (vec![at(40)], 3));
        let all = plan_at(Misfire::RunAll, 10, 47_000);
        assert_eq!(
            (all.run, all.skipped),
            (vec![at(10), at(20), at(30), at(40)], 0)
        );
    }

    #[test]
    fn run_all_runs_the_most_recent_ticks_up_to_its_limit() {
        let limit = Misfire::RUN_ALL_LIMIT as i64;
        // Ticks 1..=limit + 10 are missed and tick limit + 11 is on time.
        let now = limit + 11;
        let p = plan(&every(1), at(1), at(now), Misfire::RunAll, THRESHOLD);
        assert_eq!(p.run.len(), Misfire::RUN_ALL_LIMIT + 1);
        assert_eq!(p.run.first(), Some(&at(11)));
        assert_eq!(p.run.last(), Some(&at(now)));
        assert!(p.run.windows(2).all(|w| w[0] < w[1]), "oldest first");
        assert_eq!(p.skipped, 10);
        assert_eq!(p.next, Some(at(now + 1)));
    }

    #[test]
    fn a_fixed_delay_runs_its_tick_however_late() {
        let after = Schedule::after(Duration::from_secs(10)).unwrap();
        for policy in [Misfire::Skip, Misfire::RunOnce, Misfire::RunAll] {
            assert_eq!(
                plan(&after, at(10), at(100), policy, THRESHOLD),
                Plan {
                    run: vec![at(10)],
                    skipped: 0,
                    latest: at(10),
                    next: None,
                }
            );
        }
    }

    #[test]
    fn a_pending_tick_runs_or_is_skipped_by_the_policy() {
        let s = every(10);
        let skip = |policy, now_ms| pending_skip(&s, policy, at(10), at_ms(now_ms), THRESHOLD);
        // On time: every policy runs it.
        for policy in [Misfire::Skip, Misfire::RunOnce, Misfire::RunAll] {
            assert_eq!(skip(policy, 12_000), None, "{policy:?}");
        }
        // Late, no later tick due: `skip` skips, the others run it.
        assert!(skip(Misfire::Skip, 16_000).is_some());
        assert_eq!(skip(Misfire::RunOnce, 16_000), None);
        assert_eq!(skip(Misfire::RunAll, 16_000), None);
        // A later tick is due: `run_once` leaves it to that one, `run_all` runs both.
        assert!(skip(Misfire::RunOnce, 20_000).is_some());
        assert_eq!(skip(Misfire::RunAll, 20_000), None);
        // More ticks came due after it than `run_all` catches up on.
        let limit = Misfire::RUN_ALL_LIMIT as i64;
        assert_eq!(skip(Misfire::RunAll, 10_000 + limit * 10_000), None);
        assert!(skip(Misfire::RunAll, 20_000 + limit * 10_000).is_some());
    }

    #[test]
    fn an_outage_is_tried_until_the_tick_is_late_or_for_a_lost_tick_until_the_next() {
        let deadline = |s: &Schedule, policy, idempotent| {
            outage_deadline(s, policy, idempotent, at(10), THRESHOLD)
        };
        let (every_10, every_2) = (every(10), every(2));
        for policy in [Misfire::Skip, Misfire::RunOnce, Misfire::RunAll] {
            assert_eq!(deadline(&every_10, policy, true), at(15), "{policy:?}");
            // Never past the next tick.
            assert_eq!(
                deadline(&every_2, policy, true),
                at_ms(11_750),
                "{policy:?}"
            );
        }
        assert_eq!(deadline(&every_10, Misfire::Skip, false), at(15));
        assert_eq!(deadline(&every_10, Misfire::RunOnce, false), at_ms(19_750));
        assert_eq!(deadline(&every_10, Misfire::RunAll, false), at_ms(19_750));
        let after = Schedule::after(Duration::from_secs(10)).unwrap();
        assert_eq!(deadline(&after, Misfire::RunOnce, false), at(15));
    }
}

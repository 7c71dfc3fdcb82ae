//! The fire times of a fixed-time cron expression under its DST policies.
//!
//! croner's search follows the default policies: a fixed time that falls in a spring-forward
//! gap fires once, at the first valid instant after the gap ([`DstGap::Shift`]), and one that
//! happens twice in a fall-back overlap fires once, at its first occurrence
//! ([`DstOverlap::First`]). Each fire time it finds stands for one day's run. [`FixedTime`]
//! maps each to the instants that run has under the schedule's policies (none for a gap under
//! `skip`, the second occurrence under `last`, both under `both`) and walks croner's fire
//! times, in either direction, until one maps to an instant on the far side of the start.
//!
//! The instants of a run lie at or after croner's fire time and within the overlap, long
//! before the next day's run, so mapping croner's fire times in order visits the policy's
//! fire times in order, forward and backward alike.

use chrono::{DateTime, LocalResult, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::{
    calendar::Direction,
    cron::Cron,
    dst::{DstGap, DstOverlap},
};

/// How many of croner's fire times in a row a search maps to no instant on the far side of
/// its start before it concludes that the schedule never fires there again. Only a gap under
/// `skip` drops a run, so this is reached only by a fixed time whose every matching day is a
/// gap day (`0 30 2 ? 3 SUNL` in Europe/Amsterdam under `skip`).
const MAX_DROPPED: usize = 100;

/// A fixed-time cron expression in a zone, with its DST policies.
pub(crate) struct FixedTime<'a> {
    pub(crate) cron: &'a Cron,
    pub(crate) tz: Tz,
    pub(crate) gap: DstGap,
    pub(crate) overlap: DstOverlap,
}

impl FixedTime<'_> {
    /// The first fire time strictly after `t`.
    pub(crate) fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz);
        // The run of the last fire time at or before `t` may still have an instant after it:
        // the second occurrence, in an overlap, of a fixed time whose first is behind. (The
        // second is truncated in UTC: on an ambiguous wall clock, chrono cannot.)
        if self.overlap != DstOverlap::First
            && let Some(fire) = self.cron.search(
                &t.with_nanosecond(0)?.with_timezone(&self.tz),
                true,
                Direction::Backward,
            )
            && let Some(next) = self.instants(&fire).into_iter().flatten().find(|x| *x > t)
        {
            return Some(next);
        }
        let mut from = local;
        for _ in 0..MAX_DROPPED {
            let fire = self.cron.search(&from, false, Direction::Forward)?;
            if let Some(next) = self.instants(&fire).into_iter().flatten().find(|x| *x > t) {
                return Some(next);
            }
            from = fire;
        }
        None
    }

    /// The last fire time at or before `t`.
    pub(crate) fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Cron instants are whole seconds: search from the second `t` is in (see
        // `Schedule::latest_at_or_before`).
        let mut from = t.with_nanosecond(0)?.with_timezone(&self.tz);
        let mut inclusive = true;
        for _ in 0..MAX_DROPPED {
            let fire = self.cron.search(&from, inclusive, Direction::Backward)?;
            let instants = self.instants(&fire);
            if let Some(latest) = instants.into_iter().flatten().rev().find(|x| *x <= t) {
                return Some(latest);
            }
            from = fire;
            inclusive = false;
        }
        None
    }

    /// The instants, in order, of the run that croner's fire time `fire` stands for.
    fn instants(&self, fire: &DateTime<Tz>) -> [Option<DateTime<Utc>>; 2] {
        let utc = fire.with_timezone(&Utc);
        if !self.cron.matches(fire) {
            // A fixed time whose wall clock is not the expression's: croner carried it past
            // a gap.
            return match self.gap {
                DstGap::Shift => [Some(utc), None],
                DstGap::Skip => [None, None],
            };
        }
        match self.tz.from_local_datetime(&fire.naive_local()) {
            LocalResult::Ambiguous(first, second) => {
                let first = first.with_timezone(&Utc);
                let second = second.with_timezone(&Utc);
                match self.overlap {
                    DstOverlap::First => [Some(first), None],
                    DstOverlap::Last => [Some(second), None],
                    DstOverlap::Both => [Some(first), Some(second)],
                }
            }
            LocalResult::Single(_) | LocalResult::None => [Some(utc), None],
        }
    }
}

//! What a fixed time does on the days its zone's clocks change: the policies of a cron
//! schedule for a spring-forward gap ([`DstGap`]) and a fall-back overlap ([`DstOverlap`]).

use std::{fmt, str::FromStr};

use crate::error::ScheduleError;

/// What a fixed time (one value each for second, minute and hour, such as `0 30 2 * * *`;
/// see [`Cron::is_fixed_time`](crate::Cron::is_fixed_time)) does on a day it does not exist,
/// because its zone's clocks jump over it (02:30 when clocks go from 02:00 to 03:00). Set
/// with [`Schedule::dst_gap`](crate::Schedule::dst_gap) or `dst_gap = "skip"` in
/// `#[scheduled]`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use tickguard_schedule::{DstGap, Schedule};
///
/// // Amsterdam's clocks jump from 02:00 to 03:00 on 31 March 2024.
/// let daily = Schedule::cron("0 30 2 * * *")?.in_zone("Europe/Amsterdam")?;
/// let after = Utc.with_ymd_and_hms(2024, 3, 30, 12, 0, 0).unwrap();
///
/// // Shift: that day at 03:00 CEST (01:00 UTC).
/// let shift = daily.clone().dst_gap(DstGap::Shift);
/// assert_eq!(shift.next_after(after), Utc.with_ymd_and_hms(2024, 3, 31, 1, 0, 0).single());
///
/// // Skip: not that day; the next run is the next day's 02:30 CEST (00:30 UTC).
/// let skip = daily.dst_gap(DstGap::Skip);
/// assert_eq!(skip.next_after(after), Utc.with_ymd_and_hms(2024, 4, 1, 0, 30, 0).single());
/// # Ok::<(), tickguard_schedule::ScheduleError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DstGap {
    /// Fires once, at the first valid instant after the gap (03:00). The default.
    #[default]
    Shift,
    /// Does not fire that day.
    Skip,
}

/// What a fixed time does on a day it happens twice, because its zone's clocks are set back
/// over it (01:30 when clocks go from 02:00 back to 01:00). Set with
/// [`Schedule::dst_overlap`](crate::Schedule::dst_overlap) or `dst_overlap = "both"` in
/// `#[scheduled]`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use tickguard_schedule::{DstOverlap, Schedule};
///
/// // New York's clocks go from 02:00 EDT back to 01:00 EST on 3 November 2024, so 01:30
/// // happens at 05:30 UTC and again at 06:30 UTC.
/// let daily = Schedule::cron("0 30 1 * * *")?.in_zone("America/New_York")?;
/// let after = Utc.with_ymd_and_hms(2024, 11, 2, 12, 0, 0).unwrap();
/// let first = Utc.with_ymd_and_hms(2024, 11, 3, 5, 30, 0).unwrap();
/// let second = Utc.with_ymd_and_hms(2024, 11, 3, 6, 30, 0).unwrap();
/// let next_day = Utc.with_ymd_and_hms(2024, 11, 4, 6, 30, 0).unwrap();
///
/// let runs = |overlap| -> Vec<_> {
///     let schedule = daily.clone().dst_overlap(overlap);
///     schedule.upcoming(after).take_while(|t| *t <= next_day).collect()
/// };
/// assert_eq!(runs(DstOverlap::First), [first, next_day]);
/// assert_eq!(runs(DstOverlap::Last), [second, next_day]);
/// assert_eq!(runs(DstOverlap::Both), [first, second, next_day]);
/// # Ok::<(), tickguard_schedule::ScheduleError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DstOverlap {
    /// Fires once, at the first occurrence (summer time). The default.
    #[default]
    First,
    /// Fires once, at the second occurrence (standard time).
    Last,
    /// Fires at both occurrences.
    Both,
}

impl DstGap {
    /// The policy's name, as the attribute takes it: `shift` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shift => "shift",
            Self::Skip => "skip",
        }
    }
}

impl DstOverlap {
    /// The policy's name, as the attribute takes it: `first`, `last` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Last => "last",
            Self::Both => "both",
        }
    }
}

impl fmt::Display for DstGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for DstOverlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DstGap {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "shift" => Ok(Self::Shift),
            "skip" => Ok(Self::Skip),
            other => Err(ScheduleError::InvalidSchedule {
                input: other.to_owned(),
                reason: "unknown dst_gap policy; use \"shift\" or \"skip\"".to_owned(),
            }),
        }
    }
}

impl FromStr for DstOverlap {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "first" => Ok(Self::First),
            "last" => Ok(Self::Last),
            "both" => Ok(Self::Both),
            other => Err(ScheduleError::InvalidSchedule {
                input: other.to_owned(),
                reason: "unknown dst_overlap policy; use \"first\", \"last\" or \"both\""
                    .to_owned(),
            }),
        }
    }
}

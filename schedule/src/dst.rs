//! What a fixed time does on the days its zone's clocks change: the policies of a cron
//! schedule for a spring-forward gap ([`DstGap`]) and a fall-back overlap ([`DstOverlap`]).

use std::{fmt, str::FromStr};

use crate::error::ScheduleError;

/// What a fixed time (one value each for second, minute and hour, such as `0 30 2 * * *`)
/// does on a day it does not exist, because its zone's clocks jump over it (02:30 when
/// clocks go from 02:00 to 03:00).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DstGap {
    /// Fires once, at the first valid instant after the gap (03:00). The default.
    #[default]
    Shift,
    /// Does not fire that day.
    Skip,
}

/// What a fixed time does on a day it happens twice, because its zone's clocks are set back
/// over it (01:30 when clocks go from 02:00 back to 01:00).
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

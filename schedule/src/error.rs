//! What can be wrong with a schedule.

use std::time::Duration;

/// What can be wrong with a schedule, found when it is parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error("invalid cron expression `{expr}`: {reason}")]
    InvalidCron {
        /// The expression as written.
        expr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The cron expression parses but no date ever matches it, such as 30 February.
    #[error("cron expression `{expr}` never fires: no date matches it (such as 30 February)")]
    NeverFires {
        /// The expression as written.
        expr: String,
    },
    /// The zone is not an IANA time zone name.
    #[error(
        "unknown time zone `{0}`: use an IANA name such as `Europe/Berlin`, `America/New_York` or `UTC`"
    )]
    UnknownZone(String),
    /// A duration does not parse.
    #[error("invalid duration `{input}`: {reason}; write it like `30s`, `5m`, `1h 30m` or `250ms`")]
    InvalidDuration {
        /// The duration as written.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An execution key template is malformed.
    #[error("invalid execution key `{template}`: {reason}")]
    InvalidKey {
        /// The template as written.
        template: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A schedule's text (as [`Schedule`](crate::Schedule)'s `Display` writes it) does not
    /// parse.
    #[error(
        "invalid schedule `{input}`: {reason}; expected `cron \"<expr>\"`, `cron \"<expr>\" in <Zone>` (either may end in `, dst_gap <policy>` and `, dst_overlap <policy>`), `every <duration>` or `<duration> after the last run`"
    )]
    InvalidSchedule {
        /// The text as written.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A fixed rate or fixed delay shorter than one millisecond.
    #[error("an interval must be at least 1ms, got {0:?}")]
    IntervalTooShort(Duration),
}

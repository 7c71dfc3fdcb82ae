//! The time model of [tickguard](https://docs.rs/tickguard): when does a job fire next?
//!
//! This crate is shared by the `#[scheduled]` attribute, which validates cron expressions,
//! zones and durations at compile time, and by the runtime, which computes fire times. Both
//! call the same parser, so an expression the attribute accepts is exactly one the runtime
//! runs. Users normally reach it as `tickguard::Schedule`.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use tickguard_schedule::Schedule;
//!
//! // 02:30 every day in Amsterdam. On 31 March 2024 clocks jump from 02:00 to 03:00, so
//! // 02:30 does not exist that day: the job runs once, at the first valid instant (03:00).
//! let schedule = Schedule::cron("0 30 2 * * *")?.in_zone("Europe/Amsterdam")?;
//! let after = Utc.with_ymd_and_hms(2024, 3, 30, 12, 0, 0).unwrap();
//! let next = schedule.next_after(after).unwrap();
//! assert_eq!(next, Utc.with_ymd_and_hms(2024, 3, 31, 1, 0, 0).unwrap()); // 03:00 CEST
//! # Ok::<(), tickguard_schedule::ScheduleError>(())
//! ```
//!
//! # Cron grammar
//!
//! Six fields, `second minute hour day-of-month month day-of-week`, as in Spring's
//! `CronExpression`; five fields are also accepted (the second is then `0`). Each field takes
//! `*`, `?` (same as `*`), numbers, ranges `a-b`, steps `*/n` and `a-b/n`, and lists `a,b`.
//! Months and weekdays take names (`JAN`..`DEC`, `SUN`..`SAT`); `0` and `7` are both Sunday.
//! Day-of-month takes `L` (last day), `L-n` (n days before the last), `nW` (the weekday
//! nearest day n), `LW` (last weekday). Day-of-week takes `dL` (last weekday d of the month)
//! and `d#n` (n-th weekday d). Macros: `@yearly`, `@annually`, `@monthly`, `@weekly`,
//! `@daily`, `@midnight`, `@hourly`. When both day fields are restricted, a day must match
//! both (Spring's rule, not Vixie cron's "either").
//!
//! # Daylight saving time
//!
//! Fire times are computed on the wall clock of the schedule's zone (UTC by default). A
//! *fixed time* (one value each for second, minute and hour, with no `*` and no step; see
//! [`Cron::is_fixed_time`]) follows the schedule's policies on the days the clocks change:
//! - in a spring-forward gap (02:30 when clocks jump from 02:00 to 03:00) it fires once, at
//!   the first valid instant after the gap ([`DstGap::Shift`], the default), or not that day
//!   ([`DstGap::Skip`]);
//! - in a fall-back overlap, where it occurs twice, it fires once at its first occurrence
//!   ([`DstOverlap::First`], the default), once at its second ([`DstOverlap::Last`]), or at
//!   both ([`DstOverlap::Both`]).
//!
//! Any other expression (`0 */15 * * * *`, `0 0,30 2 * * *`) has no policy: it fires at
//! every matching instant that exists, so it skips wall times that do not exist and, during
//! an overlap hour, fires in both passes, as elapsed time would have it. `next_after`,
//! `upcoming` and `latest_at_or_before` follow the same policy, so a search backward for
//! missed fire times finds exactly what a search forward would have.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use tickguard_schedule::{DstGap, DstOverlap, Schedule};
//!
//! let schedule = Schedule::cron("0 30 2 * * *")?
//!     .in_zone("Europe/Amsterdam")?
//!     .dst_gap(DstGap::Skip)
//!     .dst_overlap(DstOverlap::Last);
//! // No run on 31 March 2024 (02:30 does not exist): the next is 02:30 CEST on 1 April.
//! let after = Utc.with_ymd_and_hms(2024, 3, 30, 12, 0, 0).unwrap();
//! assert_eq!(schedule.next_after(after), Utc.with_ymd_and_hms(2024, 4, 1, 0, 30, 0).single());
//! // On 27 October 2024 02:30 happens twice: the run is the second, 02:30 CET.
//! let after = Utc.with_ymd_and_hms(2024, 10, 26, 12, 0, 0).unwrap();
//! assert_eq!(schedule.next_after(after), Utc.with_ymd_and_hms(2024, 10, 27, 1, 30, 0).single());
//! // The policies that are not the default are part of the schedule's text.
//! assert_eq!(
//!     schedule.to_string(),
//!     r#"cron "0 30 2 * * *" in Europe/Amsterdam, dst_gap skip, dst_overlap last"#
//! );
//! # Ok::<(), tickguard_schedule::ScheduleError>(())
//! ```
//!
//! `every` (fixed rate) and `after` (fixed delay) count elapsed time and ignore zones.

mod calendar;
mod cron;
mod dst;
mod error;
mod fixed_time;
mod key_template;
mod parse;
mod schedule;

pub use crate::{
    cron::Cron,
    dst::{DstGap, DstOverlap},
    error::ScheduleError,
    key_template::KeyTemplate,
    parse::{parse_duration, parse_zone},
    schedule::Schedule,
};

#[cfg(test)]
mod test_support {
    use chrono::{DateTime, TimeZone, Utc};

    pub(crate) fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }
}

//! Durations and zones as written in configuration and in `#[scheduled]`.

use std::{str::FromStr, time::Duration};

use chrono_tz::Tz;

use crate::error::ScheduleError;

/// Parses a duration such as `30s`, `5m`, `1h 30m` or `250ms` (humantime's grammar).
///
/// ```
/// # use std::time::Duration;
/// assert_eq!(tickguard_schedule::parse_duration("1m 30s")?, Duration::from_secs(90));
/// # Ok::<(), tickguard_schedule::ScheduleError>(())
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, ScheduleError> {
    humantime::parse_duration(input.trim()).map_err(|e| ScheduleError::InvalidDuration {
        input: input.to_owned(),
        reason: e.to_string(),
    })
}

/// Parses an IANA time zone name such as `Europe/Berlin` or `UTC`.
pub fn parse_zone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name.trim()).map_err(|_| ScheduleError::UnknownZone(name.to_owned()))
}

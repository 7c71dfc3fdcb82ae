//! Day and month arithmetic on a zone's wall clock, for searches the cron library cannot make
//! alone.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone};

/// Which way a search for fire times goes.
#[derive(Clone, Copy)]
pub(crate) enum Direction {
    /// Later instants.
    Forward,
    /// Earlier instants.
    Backward,
}

/// The number of days of `month` in `year`.
pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    let (y, m) = next_month(year, month);
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

/// The month after `month` of `year`, as (year, month).
pub(crate) fn next_month(year: i32, month: u32) -> (i32, u32) {
    if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    }
}

/// The month before `month` of `year`, as (year, month).
pub(crate) fn previous_month(year: i32, month: u32) -> (i32, u32) {
    if month == 1 {
        (year - 1, 12)
    } else {
        (year, month - 1)
    }
}

/// The instant one second before a local day starts, to search forward from (exclusive).
/// Starting before the day, not at its first valid instant, lets croner see a fire time at
/// midnight that falls in a DST gap (Africa/Cairo jumps from 00:00 to 01:00) and move it to
/// the first valid instant, as everywhere else.
pub(crate) fn before_day<Z: TimeZone>(zone: &Z, y: i32, m: u32, d: u32) -> Option<DateTime<Z>> {
    let midnight = NaiveDate::from_ymd_opt(y, m, d)?.and_hms_opt(0, 0, 0)?;
    let start = (0..=180).find_map(|min| {
        zone.from_local_datetime(&(midnight + chrono::Duration::minutes(min)))
            .earliest()
    })?;
    Some(start - chrono::Duration::seconds(1))
}

/// The last second of a local day, at its latest occurrence.
pub(crate) fn end_of_day<Z: TimeZone>(zone: &Z, y: i32, m: u32, d: u32) -> Option<DateTime<Z>> {
    let late: NaiveDateTime = NaiveDate::from_ymd_opt(y, m, d)?.and_hms_opt(23, 59, 59)?;
    (0..=180).find_map(|min| {
        zone.from_local_datetime(&(late - chrono::Duration::minutes(min)))
            .latest()
    })
}

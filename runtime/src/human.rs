//! Times and spans written for people, as the `tickguard` command and the web console show
//! them: an instant on the wall clock of a job's zone with how long ago or how soon it is.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use tickguard::human::{relative, when};
//!
//! let now = Utc.with_ymd_and_hms(2026, 12, 5, 0, 0, 0).unwrap();
//! let at = Utc.with_ymd_and_hms(2026, 12, 5, 2, 0, 0).unwrap();
//! let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
//! assert_eq!(when(at, berlin, now), "2026-12-05 03:00 CET (in 2 h)");
//! assert_eq!(relative(now - chrono::Duration::seconds(150), now), "2 min ago");
//! ```

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;

/// `t` on the wall clock of `zone`, with its zone's abbreviation: `2026-12-05 03:00 CET`
/// (seconds only when they are not zero).
pub fn local(t: DateTime<Utc>, zone: Tz) -> String {
    let t = t.with_timezone(&zone);
    if t.second() == 0 && t.nanosecond() == 0 {
        t.format("%Y-%m-%d %H:%M %Z").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S %Z").to_string()
    }
}

/// `t` in `zone` followed by how long ago or how soon: `2026-12-05 03:00 CET (2 min ago)`.
pub fn when(t: DateTime<Utc>, zone: Tz, now: DateTime<Utc>) -> String {
    format!("{} ({})", local(t, zone), relative(t, now))
}

/// [`when`] of an optional instant, `-` for none.
pub fn when_opt(t: Option<DateTime<Utc>>, zone: Tz, now: DateTime<Utc>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| when(t, zone, now))
}

/// How far `t` is from `now`: `in 3 h`, `2 min ago`, `5 d ago`, `now`.
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    let span = span(secs.unsigned_abs());
    match secs {
        0 => "now".to_owned(),
        s if s > 0 => format!("in {span}"),
        _ => format!("{span} ago"),
    }
}

/// A span in its largest whole unit: `40 s`, `2 min`, `3 h` (up to two days), `5 d`.
pub fn span(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3_600),
        s => format!("{} d", s / 86_400),
    }
}

/// How long a run took: `1.2 s`, `3 min`; `-` when it has not ended.
pub fn took(start: DateTime<Utc>, end: Option<DateTime<Utc>>) -> String {
    match end.and_then(|e| (e - start).to_std().ok()) {
        Some(d) => duration(d),
        None => "-".to_owned(),
    }
}

/// A duration: `0.3 s` under a minute, else in its largest whole unit (`3 min`).
pub fn duration(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        span(d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn times_are_local_with_a_relative_time() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 0, 0, 0).unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 2, 0, 0).unwrap();
        assert_eq!(when(at, berlin, now), "2026-12-05 03:00 CET (in 2 h)");
        let july = Utc.with_ymd_and_hms(2026, 7, 1, 10, 0, 30).unwrap();
        assert_eq!(local(july, berlin), "2026-07-01 12:00:30 CEST");
        assert_eq!(
            relative(now - chrono::Duration::seconds(150), now),
            "2 min ago"
        );
        assert_eq!(relative(now - chrono::Duration::days(5), now), "5 d ago");
        assert_eq!(relative(now, now), "now");
        assert_eq!(
            relative(now + chrono::Duration::seconds(59), now),
            "in 59 s"
        );
        assert_eq!(relative(now + chrono::Duration::hours(47), now), "in 47 h");
    }
}

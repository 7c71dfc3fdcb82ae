//! Values of options: instants (`7d` ago or a date), retention periods, statuses, cursors.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use tickguard::store::{Cursor, Status};

use crate::error::Failure;

/// An instant: a duration before `now` (`24h`, `7d`, `1h 30m`), an RFC 3339 time
/// (`2026-12-01T08:00:00Z`, `2026-12-01T09:00:00+01:00`), or a UTC date and time
/// (`2026-12-01`, `2026-12-01 08:00`).
pub(crate) fn instant(
    option: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, Failure> {
    let text = text.trim();
    if let Ok(ago) = humantime::parse_duration(text) {
        return chrono::Duration::from_std(ago)
            .ok()
            .and_then(|ago| now.checked_sub_signed(ago))
            .ok_or_else(|| Failure::new(format!("{option} `{text}` is too far in the past")));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    if let Some(t) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(t.and_utc());
    }
    Err(Failure::new(format!(
        "{option} `{text}` is neither a duration nor a time"
    ))
    .hint(format!(
        "write a duration ago such as `{option} 24h` or `{option} 7d`, or a time such as `{option} 2026-12-01` or `{option} 2026-12-01T08:00:00Z` (UTC unless it names an offset)"
    )))
}

/// How long prune keeps a status: a duration (`7d`), or `forever` (`None`).
pub(crate) fn keep(option: &str, text: &str) -> Result<Option<Duration>, Failure> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("forever") {
        return Ok(None);
    }
    humantime::parse_duration(text).map(Some).map_err(|e| {
        Failure::new(format!("{option} `{text}` is not a duration: {e}")).hint(format!(
            "write it like `{option} 7d`, `{option} 12h`, or `{option} forever` to keep them all"
        ))
    })
}

/// A status as operators write it: `failed`, `timed-out`, `TIMED_OUT`.
pub(crate) fn status(text: &str) -> Result<Status, Failure> {
    text.trim()
        .to_ascii_uppercase()
        .replace('-', "_")
        .parse()
        .map_err(|_| {
            Failure::new(format!("`{text}` is not an execution status"))
                .hint("use pending, running, completed, failed, timed-out, cancelled or skipped")
        })
}

/// A status as the command writes it: `timed-out`.
pub(crate) fn status_name(status: Status) -> String {
    status.as_str().to_ascii_lowercase().replace('_', "-")
}

/// The cursor printed under a page of history (`Cursor`'s text).
pub(crate) fn cursor(text: &str) -> Result<Cursor, Failure> {
    text.parse::<Cursor>().map_err(|e| {
        Failure::new(e.to_string())
            .hint("pass the `--after` value printed under the page before, as it is")
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn instants_are_durations_ago_or_times() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        let at = |y, mo, d, h| Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap();
        assert_eq!(instant("--since", "7d", now).unwrap(), at(2026, 11, 28, 12));
        assert_eq!(instant("--since", "24h", now).unwrap(), at(2026, 12, 4, 12));
        assert_eq!(
            instant("--since", "2026-12-01", now).unwrap(),
            at(2026, 12, 1, 0)
        );
        assert_eq!(
            instant("--since", "2026-12-01T09:00:00+01:00", now).unwrap(),
            at(2026, 12, 1, 8)
        );
        assert_eq!(
            instant("--since", "2026-12-01 08:00", now).unwrap(),
            at(2026, 12, 1, 8)
        );
        let err = instant("--since", "last week", now).unwrap_err();
        assert_eq!(
            err.message,
            "--since `last week` is neither a duration nor a time"
        );
    }

    #[test]
    fn keeps_statuses_and_cursors_parse() {
        assert_eq!(
            keep("--failed", "30d").unwrap(),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(keep("--failed", "forever").unwrap(), None);
        assert!(keep("--failed", "a month").is_err());
        assert_eq!(status("timed-out").unwrap(), Status::TimedOut);
        assert_eq!(status("FAILED").unwrap(), Status::Failed);
        assert!(status("done").is_err());
        assert_eq!(status_name(Status::TimedOut), "timed-out");
        let c = Cursor {
            scheduled_at: Utc.with_ymd_and_hms(2026, 12, 5, 2, 0, 0).unwrap(),
            id: "nightly@2026-12-05T02:00:00Z.v2".to_owned(),
        };
        assert_eq!(cursor(&c.to_string()).unwrap(), c);
        assert!(cursor("yesterday").is_err());
    }
}

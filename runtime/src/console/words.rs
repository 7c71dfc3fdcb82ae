//! A schedule in words, for the console's pages: `every 30 s`, `daily at 02:00`,
//! `on weekdays at 09:30`; the expression itself where no short sentence fits.

use crate::Schedule;

/// `schedule` in words, with its zone when it is not UTC.
pub(crate) fn schedule_in_words(schedule: &Schedule) -> String {
    let text = schedule.to_string();
    let Some(cron) = schedule.cron_expr() else {
        // `every 30s`, `5m after the last run`: the schedule's own text is already words.
        return text;
    };
    let fields: Vec<&str> = cron.as_str().split_whitespace().collect();
    let words = match fields.as_slice() {
        [s, m, h, dom, mon, dow] => cron_words(s, m, h, dom, mon, dow),
        _ => None,
    };
    let words = words.unwrap_or_else(|| format!("cron {}", cron.as_str()));
    let zone = schedule.zone();
    if zone == chrono_tz::Tz::UTC {
        words
    } else {
        format!("{words} ({zone})")
    }
}

/// A number field, as a number.
fn number(field: &str) -> Option<u32> {
    field.parse().ok()
}

/// Whether a field takes every value.
fn any(field: &str) -> bool {
    matches!(field, "*" | "?")
}

/// The common shapes of a six-field expression; `None` for the others.
fn cron_words(s: &str, m: &str, h: &str, dom: &str, mon: &str, dow: &str) -> Option<String> {
    let step = |field: &str| field.strip_prefix("*/").and_then(number);
    if any(dom) && any(mon) && any(dow) {
        return match (number(s), number(m), number(h)) {
            (Some(s), Some(m), Some(h)) => Some(format!("daily at {}", clock(h, m, s))),
            (Some(0), Some(m), None) if any(h) => Some(format!("hourly at minute {m}")),
            (Some(0), None, None) if any(h) && step(m).is_some() => {
                step(m).map(|n| format!("every {n} min"))
            }
            (Some(s), None, None) if any(m) && any(h) => Some(match s {
                0 => "every minute".to_owned(),
                s => format!("every minute at second {s}"),
            }),
            (None, None, None) if any(m) && any(h) => step(s).map(|n| format!("every {n} s")),
            _ => None,
        };
    }
    let at = clock(number(h)?, number(m)?, number(s)?);
    if any(dom) && any(mon) {
        let days = match dow.to_ascii_uppercase().as_str() {
            "MON-FRI" | "1-5" => "weekdays".to_owned(),
            "SAT,SUN" | "SUN,SAT" | "0,6" | "6,0" => "weekends".to_owned(),
            day => format!("{}s", weekday(day)?),
        };
        return Some(format!("on {days} at {at}"));
    }
    if let (Some(day), Some(month), true) = (number(dom), number(mon), any(dow)) {
        let name = MONTHS.get(usize::try_from(month).ok()?.checked_sub(1)?)?;
        return Some(format!("yearly on {name} {day} at {at}"));
    }
    if any(mon) && any(dow) {
        return match dom {
            "L" => Some(format!("monthly on the last day at {at}")),
            day => number(day).map(|d| format!("monthly on day {d} at {at}")),
        };
    }
    None
}

/// The months' names, January first.
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `02:00`, or `02:00:30` with seconds.
fn clock(h: u32, m: u32, s: u32) -> String {
    if s == 0 {
        format!("{h:02}:{m:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// A day of the week's name, from its number (0 or 7 is Sunday) or abbreviation.
fn weekday(day: &str) -> Option<&'static str> {
    const NAMES: [(&str, &str); 7] = [
        ("SUN", "Sunday"),
        ("MON", "Monday"),
        ("TUE", "Tuesday"),
        ("WED", "Wednesday"),
        ("THU", "Thursday"),
        ("FRI", "Friday"),
        ("SAT", "Saturday"),
    ];
    let index = match number(day) {
        Some(n) => usize::try_from(n % 7).ok()?,
        None => NAMES.iter().position(|(abbr, _)| *abbr == day)?,
    };
    NAMES.get(index).map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> String {
        schedule_in_words(&text.parse().unwrap())
    }

    #[test]
    fn common_schedules_read_as_words() {
        assert_eq!(words("every 30s"), "every 30s");
        assert_eq!(words(r#"cron "0 0 2 * * *""#), "daily at 02:00");
        assert_eq!(
            words(r#"cron "0 30 9 * * MON-FRI" in Europe/Berlin"#),
            "on weekdays at 09:30 (Europe/Berlin)"
        );
        assert_eq!(words(r#"cron "0 0 6 * * SUN""#), "on Sundays at 06:00");
        assert_eq!(words(r#"cron "0 15 * * * *""#), "hourly at minute 15");
        assert_eq!(words(r#"cron "0 */5 * * * *""#), "every 5 min");
        assert_eq!(words(r#"cron "*/10 * * * * *""#), "every 10 s");
        assert_eq!(words(r#"cron "0 * * * * *""#), "every minute");
        assert_eq!(words(r#"cron "0 0 3 1 * *""#), "monthly on day 1 at 03:00");
        assert_eq!(
            words(r#"cron "0 0 0 1 1 *""#),
            "yearly on January 1 at 00:00"
        );
        assert_eq!(words(r#"cron "0 0 0 1-7 * MON""#), "cron 0 0 0 1-7 * MON");
    }
}

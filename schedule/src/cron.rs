//! Cron expressions in Spring's grammar.

use std::{collections::HashSet, fmt, str::FromStr};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use croner::{
    CronPattern, JobType, Weekday,
    errors::CronError,
    parser::{CronParser, Seconds, Year},
};

use crate::{
    calendar::{Direction, before_day, days_in_month, end_of_day, next_month, previous_month},
    error::ScheduleError,
};

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const FIELD_NAMES: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
];

/// Upper bound on the candidates the `L-n` filter looks at before it gives up: about 800
/// years of months, far more than any expression that fires at all needs.
const MAX_CANDIDATES: usize = 10_000;

/// A parsed cron expression, in Spring's grammar (see the crate docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    source: String,
    cron: croner::Cron,
    /// `Some(n)` for a day-of-month of `L-n`, which croner has no syntax for: croner then
    /// searches with `*` there and this filter keeps the days that are `n` before the last.
    days_before_last: Option<u32>,
}

impl Cron {
    /// Parses a cron expression, and rejects one that never fires (`0 0 0 30 2 *`).
    pub fn parse(expr: &str) -> Result<Self, ScheduleError> {
        let cron = Self::parse_syntax(expr)?;
        if cron.fires_at_all() {
            Ok(cron)
        } else {
            Err(ScheduleError::NeverFires {
                expr: expr.to_owned(),
            })
        }
    }

    /// Whether the expression fires at all: each time field names a value and some day of
    /// one 400-year Gregorian cycle (after which leap years and weekdays repeat) matches the
    /// date fields. Whether a month has a matching day depends only on the month, its length
    /// and the weekday of its 1st, so the scan looks at the days of at most 91 months of the
    /// cycle (13 month lengths, counting February's two, times 7 weekdays). A search for a
    /// first fire time would instead walk on to croner's year-5000 limit, which takes seconds
    /// for an expression that never fires.
    fn fires_at_all(&self) -> bool {
        let pattern = &self.cron.pattern;
        let some_value = |count: u32, matches: fn(&CronPattern, u32) -> Result<bool, CronError>| {
            (0..count).any(|v| matches(pattern, v).unwrap_or(false))
        };
        let mut shapes_seen = HashSet::new();
        some_value(60, CronPattern::second_match)
            && some_value(60, CronPattern::minute_match)
            && some_value(24, CronPattern::hour_match)
            && (2000..2400)
                .flat_map(|year| (1..=12).map(move |month| (year, month)))
                .any(|(year, month)| {
                    let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
                        return false;
                    };
                    let len = days_in_month(year, month);
                    let first_weekday = first.weekday().num_days_from_sunday();
                    shapes_seen.insert((month, len, first_weekday))
                        && self.some_day_matches(year, month, len, first_weekday)
                })
    }

    /// Whether some day of `month` of `year` (`len` days long, its 1st on `first_weekday`,
    /// counted from Sunday) matches the date fields.
    fn some_day_matches(&self, year: i32, month: u32, len: u32, first_weekday: u32) -> bool {
        let pattern = &self.cron.pattern;
        pattern.month_match(month).unwrap_or(false)
            && (1..=len).any(|day| {
                let weekday = Weekday::from_days_from_sunday(first_weekday + day - 1);
                self.days_before_last.is_none_or(|n| day + n == len)
                    && pattern
                        .day_match(year, month, day, weekday)
                        .unwrap_or(false)
            })
    }

    fn parse_syntax(expr: &str) -> Result<Self, ScheduleError> {
        let invalid = |reason: String| ScheduleError::InvalidCron {
            expr: expr.to_owned(),
            reason,
        };
        let trimmed = expr.trim();
        let mut text = match trimmed.to_ascii_lowercase().as_str() {
            // croner knows every macro of Spring's but this one.
            "@midnight" => "@daily".to_owned(),
            _ => trimmed.to_owned(),
        };
        if text.starts_with('@') {
            text = croner_macro(&text)
                .ok_or_else(|| {
                    invalid(format!(
                        "unknown macro `{text}`; use one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"
                    ))
                })?
                .to_owned();
        }
        let mut fields: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        if fields.len() == 5 {
            fields.insert(0, "0".to_owned());
        }
        if fields.len() != 6 {
            return Err(invalid(format!(
                "expected 6 fields (second minute hour day-of-month month day-of-week) or 5 (without seconds), found {}",
                fields.len()
            )));
        }
        let written = fields.clone();
        for (i, field) in fields.iter_mut().enumerate() {
            *field = field.to_ascii_uppercase();
            // Names are replaced per field: croner would replace them anywhere, so that
            // `JAN` in the day-of-week field would silently mean Monday.
            let names: &[&str] = match i {
                4 => &MONTHS,
                5 => &WEEKDAYS,
                _ => &[],
            };
            for (n, name) in names.iter().enumerate() {
                let number = if i == 4 { n + 1 } else { n };
                *field = field.replace(name, &number.to_string());
            }
            let letters: &[char] = match i {
                3 => &['L', 'W'],
                5 => &['L'],
                _ => &[],
            };
            if let Some(why) = list_item_problem(field) {
                return Err(invalid(format!(
                    "{} field `{}`: {why}",
                    FIELD_NAMES[i], written[i]
                )));
            }
            if let Some(bad) = field
                .chars()
                .find(|c| c.is_ascii_alphabetic() && !letters.contains(c))
            {
                return Err(invalid(format!(
                    "{} field `{}`: illegal character `{bad}`{}",
                    FIELD_NAMES[i],
                    written[i],
                    match i {
                        4 => "; months are 1-12 or JAN-DEC",
                        5 => "; weekdays are 0-7 or SUN-SAT",
                        _ => "",
                    }
                )));
            }
        }
        if fields[5] == "L" {
            return Err(invalid(
                "day-of-week field `L`: name the weekday, such as `5L` for the last Friday"
                    .to_owned(),
            ));
        }
        let mut days_before_last = None;
        if fields[3].contains("L-") && (!fields[3].starts_with("L-") || fields[3].contains(',')) {
            return Err(invalid(format!(
                "day-of-month field `{}`: `L-n` cannot be combined with other days in a list",
                written[3]
            )));
        }
        if let Some(n) = fields[3].strip_prefix("L-") {
            let n: u32 = n.parse().ok().filter(|n| *n <= 30).ok_or_else(|| {
                invalid(format!(
                    "day-of-month field `{}`: `L-n` takes n from 0 to 30",
                    written[3]
                ))
            })?;
            days_before_last = Some(n);
            fields[3] = "*".to_owned();
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .dom_and_dow(true)
            // Spring reads `1/3` as `1-max/3`.
            .sloppy_ranges(true)
            .build();
        let cron = parser.parse(&fields.join(" ")).map_err(|whole| {
            // Name the field at fault: parse it alone, with every other field `*`.
            let culprit = (0..6).find(|&i| {
                let alone: Vec<&str> = (0..6)
                    .map(|j| if j == i { fields[j].as_str() } else { "*" })
                    .collect();
                parser.parse(&alone.join(" ")).is_err()
            });
            match culprit {
                Some(i) => invalid(format!(
                    "{} field `{}`: {}",
                    FIELD_NAMES[i],
                    written[i],
                    croner_reason(&whole)
                )),
                None => invalid(croner_reason(&whole)),
            }
        })?;
        Ok(Self {
            source: trimmed.to_owned(),
            cron,
            days_before_last,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the expression is a fixed time: its second, minute and hour fields each name
    /// one value, with no `*` and no step (`0 30 2 * * *`, `@daily`; not `0 */30 2 * * *` nor
    /// `0 0/60 2 * * *`). Only a fixed time has a DST policy ([`DstGap`](crate::DstGap),
    /// [`DstOverlap`](crate::DstOverlap)); any other expression fires at every matching
    /// instant that exists.
    ///
    /// ```
    /// use tickguard_schedule::Cron;
    ///
    /// assert!(Cron::parse("0 30 2 * * MON-FRI")?.is_fixed_time());
    /// assert!(Cron::parse("@daily")?.is_fixed_time());
    /// assert!(!Cron::parse("0 */15 2 * * *")?.is_fixed_time());
    /// assert!(!Cron::parse("0 0,30 2 * * *")?.is_fixed_time());
    /// # Ok::<(), tickguard_schedule::ScheduleError>(())
    /// ```
    pub fn is_fixed_time(&self) -> bool {
        self.cron.determine_job_type() == JobType::FixedTime
    }

    /// Whether the wall-clock instant `t` matches the expression.
    pub fn matches<Z: TimeZone>(&self, t: &DateTime<Z>) -> bool {
        let day_ok = match self.days_before_last {
            Some(n) => t.day() + n == days_in_month(t.year(), t.month()),
            None => true,
        };
        day_ok && self.cron.is_time_matching(t).unwrap_or(false)
    }

    /// The first fire time after `from` (at or after it if `inclusive`), or before it when
    /// searching backward, on `from`'s wall clock.
    pub(crate) fn search<Z: TimeZone>(
        &self,
        from: &DateTime<Z>,
        inclusive: bool,
        dir: Direction,
    ) -> Option<DateTime<Z>> {
        let step = |t: &DateTime<Z>, inclusive| match dir {
            Direction::Forward => self.cron.find_next_occurrence(t, inclusive).ok(),
            Direction::Backward => self.cron.find_previous_occurrence(t, inclusive).ok(),
        };
        let Some(n) = self.days_before_last else {
            return step(from, inclusive);
        };
        let zone = from.timezone();
        let mut at = step(from, inclusive)?;
        for _ in 0..MAX_CANDIDATES {
            let last = days_in_month(at.year(), at.month());
            let Some(target) = last.checked_sub(n).filter(|d| *d >= 1) else {
                // This month is too short for `L-n`: move to the next (or previous) one.
                at = match dir {
                    Direction::Forward => {
                        let (y, m) = next_month(at.year(), at.month());
                        step(&before_day(&zone, y, m, 1)?, false)?
                    }
                    Direction::Backward => {
                        let (y, m) = previous_month(at.year(), at.month());
                        step(&end_of_day(&zone, y, m, days_in_month(y, m))?, true)?
                    }
                };
                continue;
            };
            let day = at.day();
            if day == target {
                return Some(at);
            }
            at = match (dir, day < target) {
                (Direction::Forward, true) => {
                    step(&before_day(&zone, at.year(), at.month(), target)?, false)?
                }
                (Direction::Forward, false) => {
                    let (y, m) = next_month(at.year(), at.month());
                    step(&before_day(&zone, y, m, 1)?, false)?
                }
                (Direction::Backward, false) => {
                    step(&end_of_day(&zone, at.year(), at.month(), target)?, true)?
                }
                (Direction::Backward, true) => {
                    let (y, m) = previous_month(at.year(), at.month());
                    step(&end_of_day(&zone, y, m, days_in_month(y, m))?, true)?
                }
            };
        }
        None
    }
}

impl FromStr for Cron {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// What is wrong with a field that croner accepts but Spring rejects: an empty item of a list
/// (`1,,2`, `5,`, a lone `,`), which croner drops, so that a field of nothing but commas
/// matches no value at all; a step without a start (`/5`); croner's `+` (its mark for "day of
/// month and day of week", which is always the rule here); or a `?` that is not the whole
/// field (`?/2`, which croner reads as `*/2`).
fn list_item_problem(field: &str) -> Option<&'static str> {
    if field.contains('+') {
        return Some("`+` is not part of the cron grammar");
    }
    if field != "?" && field.contains('?') {
        return Some("`?` stands alone, for a whole day field");
    }
    field.split(',').find_map(|item| {
        if item.is_empty() {
            Some("empty item in a list; write values between the commas, such as `1,15`")
        } else if item.starts_with('/') {
            Some("a step needs a start, such as `*/5` or `0/5`")
        } else {
            None
        }
    })
}

fn croner_macro(text: &str) -> Option<&'static str> {
    Some(match text.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        "@monthly" => "0 0 0 1 * *",
        "@weekly" => "0 0 0 * * SUN",
        "@daily" => "0 0 0 * * *",
        "@hourly" => "0 0 * * * *",
        _ => return None,
    })
}

fn croner_reason(e: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    match e {
        E::InvalidPattern(m) | E::IllegalCharacters(m) | E::ComponentError(m) => {
            m.trim_end_matches('.').to_lowercase()
        }
        other => other.to_string().trim_end_matches('.').to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let e = Cron::parse("0 61 * * * *").unwrap_err().to_string();
        assert!(e.contains("minute field `61`"), "{e}");
        let e = Cron::parse("0 0 25 * * *").unwrap_err().to_string();
        assert!(e.contains("hour field `25`"), "{e}");
        let e = Cron::parse("0 0 0 * 13 *").unwrap_err().to_string();
        assert!(e.contains("month field `13`"), "{e}");
    }

    #[test]
    fn impossible_dates_never_fire() {
        for expr in ["0 0 0 30 2 *", "0 0 0 31 4,6,9,11 *", "0 0 0 L-30 2 *"] {
            assert!(
                matches!(Cron::parse(expr), Err(ScheduleError::NeverFires { .. })),
                "{expr}"
            );
        }
    }
}

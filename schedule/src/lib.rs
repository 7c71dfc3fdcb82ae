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
//! Fire times are computed on the wall clock of the schedule's zone (UTC by default):
//! - a fixed time that falls in a spring-forward gap (02:30 when clocks jump from 02:00 to
//!   03:00) fires once, at the first valid instant after the gap;
//! - a fixed time that occurs twice in a fall-back overlap fires once, at its first
//!   occurrence;
//! - an interval expression (`0 */15 * * * *`) fires at every matching instant, so during an
//!   overlap hour it fires in both passes, as elapsed time would have it.
//!
//! `every` (fixed rate) and `after` (fixed delay) count elapsed time and ignore zones.

use std::{fmt, str::FromStr, time::Duration};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};

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
    /// A fixed rate or fixed delay shorter than one millisecond.
    #[error("an interval must be at least 1ms, got {0:?}")]
    IntervalTooShort(Duration),
}

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
        let probe = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
        match probe.and_then(|t| cron.search(&t, false, Direction::Forward)) {
            Some(_) => Ok(cron),
            None => Err(ScheduleError::NeverFires {
                expr: expr.to_owned(),
            }),
        }
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

    /// Whether the wall-clock instant `t` matches the expression.
    pub fn matches<Z: TimeZone>(&self, t: &DateTime<Z>) -> bool {
        let day_ok = match self.days_before_last {
            Some(n) => t.day() + n == days_in_month(t.year(), t.month()),
            None => true,
        };
        day_ok && self.cron.is_time_matching(t).unwrap_or(false)
    }

    fn search<Z: TimeZone>(
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

#[derive(Clone, Copy)]
enum Direction {
    Forward,
    Backward,
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (y, m) = next_month(year, month);
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

fn next_month(year: i32, month: u32) -> (i32, u32) {
    if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    }
}

fn previous_month(year: i32, month: u32) -> (i32, u32) {
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
fn before_day<Z: TimeZone>(zone: &Z, y: i32, m: u32, d: u32) -> Option<DateTime<Z>> {
    let midnight = NaiveDate::from_ymd_opt(y, m, d)?.and_hms_opt(0, 0, 0)?;
    let start = (0..=180).find_map(|min| {
        zone.from_local_datetime(&(midnight + chrono::Duration::minutes(min)))
            .earliest()
    })?;
    Some(start - chrono::Duration::seconds(1))
}

/// The last second of a local day, at its latest occurrence.
fn end_of_day<Z: TimeZone>(zone: &Z, y: i32, m: u32, d: u32) -> Option<DateTime<Z>> {
    let late: NaiveDateTime = NaiveDate::from_ymd_opt(y, m, d)?.and_hms_opt(23, 59, 59)?;
    (0..=180).find_map(|min| {
        zone.from_local_datetime(&(late - chrono::Duration::minutes(min)))
            .latest()
    })
}

/// A template for execution ids, such as `daily-orders-{date}`: two runs whose ids are equal
/// are the same execution, so at most one of them completes.
///
/// Placeholders, rendered on the tick's wall clock in the job's zone: `{job}` (the job's
/// name), `{date}` (`2026-11-29`), `{hour}` (`2026-11-29T02+01:00`), `{datetime}`
/// (`2026-11-29T02:00:00+01:00`), and `{tick}` (the tick in UTC, RFC 3339). `{hour}` and
/// `{datetime}` carry the UTC offset, so the two passes of a fall-back overlap hour are two
/// executions; `{date}` is one execution per local day, whatever the offset. Braces are
/// written `{{` and `}}`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use tickguard_schedule::KeyTemplate;
///
/// let key = KeyTemplate::parse("orders-{date}")?;
/// let tick = Utc.with_ymd_and_hms(2026, 11, 29, 23, 30, 0).unwrap();
/// assert_eq!(key.render("orders", tick, chrono_tz::Tz::UTC), "orders-2026-11-29");
/// assert_eq!(key.render("orders", tick, chrono_tz::Tz::Asia__Tokyo), "orders-2026-11-30");
/// # Ok::<(), tickguard_schedule::ScheduleError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTemplate {
    parts: Vec<KeyPart>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum KeyPart {
    Text(String),
    Job,
    Date,
    Hour,
    DateTime,
    Tick,
}

impl KeyTemplate {
    /// The default id of an execution: `{job}@{tick}`.
    pub fn default_key() -> Self {
        Self {
            parts: vec![KeyPart::Job, KeyPart::Text("@".to_owned()), KeyPart::Tick],
        }
    }

    /// Parses a template; unknown placeholders and unbalanced braces are errors.
    pub fn parse(template: &str) -> Result<Self, ScheduleError> {
        let invalid = |reason: String| ScheduleError::InvalidKey {
            template: template.to_owned(),
            reason,
        };
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(invalid(format!(
                            "unterminated placeholder `{{{name}`; close it with `}}`"
                        )));
                    }
                    let part = match name.as_str() {
                        "job" => KeyPart::Job,
                        "date" => KeyPart::Date,
                        "hour" => KeyPart::Hour,
                        "datetime" => KeyPart::DateTime,
                        "tick" => KeyPart::Tick,
                        other => {
                            return Err(invalid(format!(
                                "unknown placeholder `{{{other}}}`; use {{job}}, {{date}}, {{hour}}, {{datetime}} or {{tick}}"
                            )));
                        }
                    };
                    if !text.is_empty() {
                        parts.push(KeyPart::Text(std::mem::take(&mut text)));
                    }
                    parts.push(part);
                }
                '}' => {
                    return Err(invalid(
                        "unmatched `}`; write `}}` for a literal brace".to_owned(),
                    ));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(KeyPart::Text(text));
        }
        if !parts
            .iter()
            .any(|p| !matches!(p, KeyPart::Text(_) | KeyPart::Job))
        {
            return Err(invalid(
                "the key names no time, so every tick would share one execution; include {date}, {hour}, {datetime} or {tick}".to_owned(),
            ));
        }
        Ok(Self { parts })
    }

    /// The execution id of `job`'s run for `tick`, with dates on the wall clock of `zone`.
    pub fn render(&self, job: &str, tick: DateTime<Utc>, zone: Tz) -> String {
        let local = tick.with_timezone(&zone);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                KeyPart::Text(t) => out.push_str(t),
                KeyPart::Job => out.push_str(job),
                KeyPart::Date => out.push_str(&local.format("%Y-%m-%d").to_string()),
                KeyPart::Hour => out.push_str(&local.format("%Y-%m-%dT%H%:z").to_string()),
                KeyPart::DateTime => {
                    out.push_str(&local.format("%Y-%m-%dT%H:%M:%S%:z").to_string())
                }
                KeyPart::Tick => {
                    out.push_str(&tick.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                }
            }
        }
        out
    }
}

/// When a job fires: a cron expression in a zone, a fixed rate, or a fixed delay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Cron(Box<Cron>, Tz),
    Every(Duration),
    After(Duration),
}

impl Schedule {
    /// A cron schedule in UTC; see [`Schedule::in_zone`] for another zone.
    pub fn cron(expr: &str) -> Result<Self, ScheduleError> {
        Ok(Self {
            kind: Kind::Cron(Box::new(Cron::parse(expr)?), Tz::UTC),
        })
    }

    /// A fixed rate: fires at every multiple of `period` since the Unix epoch, so every
    /// instance of an application agrees on the instants (`every = "30s"` fires at :00 and
    /// :30 of each minute). The next run is not started while the last one is still running.
    pub fn every(period: Duration) -> Result<Self, ScheduleError> {
        check_interval(period)?;
        Ok(Self {
            kind: Kind::Every(period),
        })
    }

    /// A fixed delay: fires `delay` after the previous run finished (first `delay` after
    /// the scheduler starts).
    pub fn after(delay: Duration) -> Result<Self, ScheduleError> {
        check_interval(delay)?;
        Ok(Self {
            kind: Kind::After(delay),
        })
    }

    /// Evaluates a cron schedule on the wall clock of `zone` (an IANA name). Fixed rates and
    /// delays are not affected by zones and are returned unchanged.
    pub fn in_zone(self, zone: &str) -> Result<Self, ScheduleError> {
        let tz = parse_zone(zone)?;
        Ok(match self.kind {
            Kind::Cron(cron, _) => Self {
                kind: Kind::Cron(cron, tz),
            },
            other => Self { kind: other },
        })
    }

    /// The zone a cron schedule is evaluated in (UTC for fixed rates and delays).
    pub fn zone(&self) -> Tz {
        match &self.kind {
            Kind::Cron(_, tz) => *tz,
            _ => Tz::UTC,
        }
    }

    /// The cron expression, for a cron schedule.
    pub fn cron_expr(&self) -> Option<&Cron> {
        match &self.kind {
            Kind::Cron(cron, _) => Some(cron),
            _ => None,
        }
    }

    /// Whether the next fire time counts from the end of the previous run (`after`).
    pub fn is_fixed_delay(&self) -> bool {
        matches!(self.kind, Kind::After(_))
    }

    /// The first fire time strictly after `t`. For a fixed delay, `t` is when the previous
    /// run finished. `None` if the schedule never fires again.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Cron(cron, tz) => cron
                .search(&t.with_timezone(tz), false, Direction::Forward)
                .map(|d| d.with_timezone(&Utc)),
            Kind::Every(period) => {
                let p = period_nanos(*period);
                let now = i128::from(t.timestamp_nanos_opt()?);
                let next = (now.div_euclid(p) + 1) * p;
                Some(DateTime::from_timestamp_nanos(i64::try_from(next).ok()?))
            }
            Kind::After(delay) => t.checked_add_signed(chrono::Duration::from_std(*delay).ok()?),
        }
    }

    /// The last fire time at or before `t`, for schedules whose fire times do not depend on
    /// when runs finish (`None` for a fixed delay). Used to find the latest tick that was
    /// missed while a process was suspended.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            // Cron instants are whole seconds: search from the second `t` is in. (Given the
            // fraction, croner's search in a fall-back overlap could answer the second pass's
            // instant, later than `t`.)
            Kind::Cron(cron, tz) => cron
                .search(
                    &t.with_nanosecond(0)?.with_timezone(tz),
                    true,
                    Direction::Backward,
                )
                .map(|d| d.with_timezone(&Utc)),
            Kind::Every(period) => {
                let p = period_nanos(*period);
                let now = i128::from(t.timestamp_nanos_opt()?);
                let last = now.div_euclid(p) * p;
                Some(DateTime::from_timestamp_nanos(i64::try_from(last).ok()?))
            }
            Kind::After(_) => None,
        }
    }

    /// The fire times strictly after `t`, in order (for a fixed delay, as if each run took
    /// no time).
    pub fn upcoming(&self, t: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        std::iter::successors(self.next_after(t), move |prev| self.next_after(*prev))
    }
}

fn period_nanos(period: Duration) -> i128 {
    // `check_interval` guarantees at least 1 ms, so this is never zero.
    i128::try_from(period.as_nanos()).unwrap_or(i128::MAX)
}

fn check_interval(d: Duration) -> Result<(), ScheduleError> {
    if d < Duration::from_millis(1) {
        Err(ScheduleError::IntervalTooShort(d))
    } else {
        Ok(())
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Cron(cron, tz) if *tz == Tz::UTC => write!(f, "cron \"{cron}\""),
            Kind::Cron(cron, tz) => write!(f, "cron \"{cron}\" in {tz}"),
            Kind::Every(d) => write!(f, "every {}", humantime::format_duration(*d)),
            Kind::After(d) => write!(f, "{} after the last run", humantime::format_duration(*d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

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

    #[test]
    fn days_before_last_both_directions() {
        let s = Schedule::cron("0 0 0 L-3 * *").unwrap();
        let got: Vec<_> = s.upcoming(utc(2024, 1, 1, 0, 0, 0)).take(3).collect();
        assert_eq!(
            got,
            [
                utc(2024, 1, 28, 0, 0, 0),
                utc(2024, 2, 26, 0, 0, 0),
                utc(2024, 3, 28, 0, 0, 0)
            ]
        );
        assert_eq!(
            s.latest_at_or_before(utc(2024, 3, 27, 0, 0, 0)),
            Some(utc(2024, 2, 26, 0, 0, 0))
        );
    }

    #[test]
    fn key_templates() {
        assert!(KeyTemplate::parse("orders-{date").is_err());
        assert!(KeyTemplate::parse("orders-{week}").is_err());
        assert!(KeyTemplate::parse("orders-}").is_err());
        assert!(KeyTemplate::parse("orders").is_err(), "a key with no time");
        // Fall-back in Berlin: 02:00 local happens twice, an hour apart.
        let key = KeyTemplate::parse("{job}-{datetime}").unwrap();
        let berlin = parse_zone("Europe/Berlin").unwrap();
        let first = key.render("j", utc(2025, 10, 26, 0, 0, 0), berlin);
        let second = key.render("j", utc(2025, 10, 26, 1, 0, 0), berlin);
        assert_eq!(first, "j-2025-10-26T02:00:00+02:00");
        assert_eq!(second, "j-2025-10-26T02:00:00+01:00");
        let daily = KeyTemplate::parse("{{{job}}}-{date}").unwrap();
        assert_eq!(
            daily.render("j", utc(2025, 10, 26, 1, 0, 0), berlin),
            "{j}-2025-10-26"
        );
    }

    #[test]
    fn every_is_epoch_aligned() {
        let s = Schedule::every(Duration::from_secs(30)).unwrap();
        assert_eq!(
            s.next_after(utc(2024, 1, 1, 0, 0, 10)),
            Some(utc(2024, 1, 1, 0, 0, 30))
        );
        assert_eq!(
            s.next_after(utc(2024, 1, 1, 0, 0, 30)),
            Some(utc(2024, 1, 1, 0, 1, 0))
        );
        assert_eq!(
            s.latest_at_or_before(utc(2024, 1, 1, 0, 0, 30)),
            Some(utc(2024, 1, 1, 0, 0, 30))
        );
    }
}

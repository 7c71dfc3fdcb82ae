//! When a job fires.

use std::{fmt, str::FromStr, time::Duration};

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;

use crate::{
    calendar::Direction,
    cron::Cron,
    dst::{DstGap, DstOverlap},
    error::ScheduleError,
    fixed_time::FixedTime,
    parse::{parse_duration, parse_zone},
};

/// When a job fires: a cron expression in a zone, a fixed rate, or a fixed delay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    kind: Kind,
    /// What a fixed time does in a spring-forward gap.
    dst_gap: DstGap,
    /// What a fixed time does in a fall-back overlap.
    dst_overlap: DstOverlap,
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
        Ok(Self::of(Kind::Cron(Box::new(Cron::parse(expr)?), Tz::UTC)))
    }

    /// A fixed rate: fires at every multiple of `period` since the Unix epoch, so every
    /// instance of an application agrees on the instants (`every = "30s"` fires at :00 and
    /// :30 of each minute). The next run is not started while the last one is still running.
    pub fn every(period: Duration) -> Result<Self, ScheduleError> {
        check_interval(period)?;
        Ok(Self::of(Kind::Every(period)))
    }

    /// A fixed delay: fires `delay` after the previous run finished (first `delay` after
    /// the scheduler starts).
    pub fn after(delay: Duration) -> Result<Self, ScheduleError> {
        check_interval(delay)?;
        Ok(Self::of(Kind::After(delay)))
    }

    /// Evaluates a cron schedule on the wall clock of `zone` (an IANA name). Fixed rates and
    /// delays are not affected by zones and are returned unchanged.
    pub fn in_zone(self, zone: &str) -> Result<Self, ScheduleError> {
        let tz = parse_zone(zone)?;
        Ok(match self.kind {
            Kind::Cron(cron, _) => Self {
                kind: Kind::Cron(cron, tz),
                ..self
            },
            _ => self,
        })
    }

    /// What a fixed time ([`Cron::is_fixed_time`]) does on a day its zone's clocks jump over
    /// it: fire at the first valid instant after the gap ([`DstGap::Shift`], the default) or
    /// not that day ([`DstGap::Skip`]). A cron expression that is not a fixed time keeps the
    /// policy (it shows in the schedule's text) but is not affected by it: it fires at every
    /// matching instant that exists. Fixed rates and delays count elapsed time and are
    /// returned unchanged.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use tickguard_schedule::{DstGap, Schedule};
    ///
    /// // 02:30 does not exist in Amsterdam on 31 March 2024 (02:00 -> 03:00).
    /// let schedule = Schedule::cron("0 30 2 * * *")?
    ///     .in_zone("Europe/Amsterdam")?
    ///     .dst_gap(DstGap::Skip);
    /// let after = Utc.with_ymd_and_hms(2024, 3, 30, 12, 0, 0).unwrap();
    /// // Not that day: the next run is 02:30 CEST on 1 April.
    /// let next = Utc.with_ymd_and_hms(2024, 4, 1, 0, 30, 0).unwrap();
    /// assert_eq!(schedule.next_after(after), Some(next));
    /// # Ok::<(), tickguard_schedule::ScheduleError>(())
    /// ```
    pub fn dst_gap(mut self, gap: DstGap) -> Self {
        if let Kind::Cron(..) = self.kind {
            self.dst_gap = gap;
        }
        self
    }

    /// What a fixed time ([`Cron::is_fixed_time`]) does on a day it happens twice: fire at
    /// its first occurrence ([`DstOverlap::First`], the default), its second
    /// ([`DstOverlap::Last`]), or both ([`DstOverlap::Both`]). A cron expression that is not
    /// a fixed time keeps the policy (it shows in the schedule's text) but is not affected by
    /// it: it fires at every matching instant, in both passes of an overlap. Fixed rates and
    /// delays count elapsed time and are returned unchanged.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use tickguard_schedule::{DstOverlap, Schedule};
    ///
    /// // 02:30 happens twice in Amsterdam on 27 October 2024 (03:00 -> 02:00).
    /// let schedule = Schedule::cron("0 30 2 * * *")?
    ///     .in_zone("Europe/Amsterdam")?
    ///     .dst_overlap(DstOverlap::Both);
    /// let after = Utc.with_ymd_and_hms(2024, 10, 26, 12, 0, 0).unwrap();
    /// let runs: Vec<_> = schedule.upcoming(after).take(2).collect();
    /// assert_eq!(runs, [
    ///     Utc.with_ymd_and_hms(2024, 10, 27, 0, 30, 0).unwrap(), // 02:30 CEST
    ///     Utc.with_ymd_and_hms(2024, 10, 27, 1, 30, 0).unwrap(), // 02:30 CET
    /// ]);
    /// # Ok::<(), tickguard_schedule::ScheduleError>(())
    /// ```
    pub fn dst_overlap(mut self, overlap: DstOverlap) -> Self {
        if let Kind::Cron(..) = self.kind {
            self.dst_overlap = overlap;
        }
        self
    }

    /// The schedule's [`DstGap`] policy.
    pub fn gap_policy(&self) -> DstGap {
        self.dst_gap
    }

    /// The schedule's [`DstOverlap`] policy.
    pub fn overlap_policy(&self) -> DstOverlap {
        self.dst_overlap
    }

    fn of(kind: Kind) -> Self {
        Self {
            kind,
            dst_gap: DstGap::default(),
            dst_overlap: DstOverlap::default(),
        }
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
    /// run finished. `None` if the schedule never fires again (a fixed time under
    /// [`DstGap::Skip`] that falls in a gap on 100 of its days in a row is taken never to).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Cron(cron, tz) if cron.is_fixed_time() => {
                self.fixed_time(cron, *tz).next_after(t)
            }
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
            Kind::Cron(cron, tz) if cron.is_fixed_time() => {
                self.fixed_time(cron, *tz).latest_at_or_before(t)
            }
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

    /// A fixed-time cron expression with this schedule's DST policies.
    fn fixed_time<'a>(&self, cron: &'a Cron, tz: Tz) -> FixedTime<'a> {
        FixedTime {
            cron,
            tz,
            gap: self.dst_gap,
            overlap: self.dst_overlap,
        }
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
            Kind::Cron(cron, tz) => {
                write!(f, "cron \"{cron}\"")?;
                if *tz != Tz::UTC {
                    write!(f, " in {tz}")?;
                }
                // Defaults print nothing: the text of a schedule with the defaults, as the
                // stores' `trigger` columns already hold it, stays the same.
                if self.dst_gap != DstGap::default() {
                    write!(f, ", dst_gap {}", self.dst_gap)?;
                }
                if self.dst_overlap != DstOverlap::default() {
                    write!(f, ", dst_overlap {}", self.dst_overlap)?;
                }
                Ok(())
            }
            Kind::Every(d) => write!(f, "every {}", humantime::format_duration(*d)),
            Kind::After(d) => write!(f, "{} after the last run", humantime::format_duration(*d)),
        }
    }
}

/// What follows the fixed delay's duration in its text.
const AFTER_SUFFIX: &str = " after the last run";

impl FromStr for Schedule {
    type Err = ScheduleError;

    /// Parses what [`Display`](fmt::Display) writes: `cron "<expr>"`, `cron "<expr>" in
    /// <Zone>`, either followed by the DST policies that are not the default
    /// (`, dst_gap skip`, `, dst_overlap last` or `, dst_overlap both`), `every <duration>` or
    /// `<duration> after the last run`, so a schedule read back from a store's `trigger`
    /// column is the schedule that was registered.
    ///
    /// ```
    /// use tickguard_schedule::{DstGap, DstOverlap, Schedule};
    ///
    /// let schedule: Schedule = r#"cron "0 0 2 * * *" in Europe/Berlin"#.parse()?;
    /// assert_eq!(schedule.to_string(), r#"cron "0 0 2 * * *" in Europe/Berlin"#);
    /// let text = r#"cron "0 30 2 * * *" in Europe/Amsterdam, dst_gap skip, dst_overlap both"#;
    /// let schedule: Schedule = text.parse()?;
    /// assert_eq!(schedule.gap_policy(), DstGap::Skip);
    /// assert_eq!(schedule.overlap_policy(), DstOverlap::Both);
    /// assert_eq!(schedule.to_string(), text);
    /// assert!("5m after the last run".parse::<Schedule>()?.is_fixed_delay());
    /// # Ok::<(), tickguard_schedule::ScheduleError>(())
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let input = text.trim();
        let invalid = |reason: &str| ScheduleError::InvalidSchedule {
            input: text.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(rest) = input.strip_prefix("cron ") {
            let quoted = rest
                .trim_start()
                .strip_prefix('"')
                .ok_or_else(|| invalid("the cron expression must be in double quotes"))?;
            let (expr, tail) = quoted
                .split_once('"')
                .ok_or_else(|| invalid("the cron expression has no closing quote"))?;
            let mut parts = tail.split(',');
            let zone = parts.next().unwrap_or_default().trim();
            let mut schedule = Self::cron(expr)?;
            if !zone.is_empty() {
                let zone = zone.strip_prefix("in ").ok_or_else(|| {
                    invalid("only `in <Zone>` and the DST policies may follow the cron expression")
                })?;
                schedule = schedule.in_zone(zone)?;
            }
            let (mut gap, mut overlap) = (None, None);
            for part in parts.map(str::trim) {
                if let Some(policy) = part.strip_prefix("dst_gap ") {
                    let policy = policy.trim();
                    let value = policy.parse().map_err(|_| {
                        invalid(&format!(
                            "unknown dst_gap policy `{policy}`; use `shift` or `skip`"
                        ))
                    })?;
                    if gap.replace(value).is_some() {
                        return Err(invalid("`dst_gap` is given twice"));
                    }
                } else if let Some(policy) = part.strip_prefix("dst_overlap ") {
                    let policy = policy.trim();
                    let value = policy.parse().map_err(|_| {
                        invalid(&format!(
                            "unknown dst_overlap policy `{policy}`; use `first`, `last` or `both`"
                        ))
                    })?;
                    if overlap.replace(value).is_some() {
                        return Err(invalid("`dst_overlap` is given twice"));
                    }
                } else {
                    return Err(invalid(
                        "after a comma, only `dst_gap <policy>` or `dst_overlap <policy>` may follow",
                    ));
                }
            }
            return Ok(schedule
                .dst_gap(gap.unwrap_or_default())
                .dst_overlap(overlap.unwrap_or_default()));
        }
        if let Some(period) = input.strip_prefix("every ") {
            return Self::every(parse_duration(period)?);
        }
        if let Some(delay) = input.strip_suffix(AFTER_SUFFIX) {
            return Self::after(parse_duration(delay)?);
        }
        Err(invalid("unknown form"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips_through_from_str() {
        let schedules = [
            Schedule::cron("0 0 2 * * *").unwrap(),
            Schedule::cron("*/5 * * * *").unwrap(),
            Schedule::cron("@daily").unwrap(),
            Schedule::cron("0 0 0 L-3 * *").unwrap(),
            Schedule::cron("0 30 2 * * MON-FRI")
                .unwrap()
                .in_zone("Europe/Berlin")
                .unwrap(),
            Schedule::cron("0 0 12 1W * ?")
                .unwrap()
                .in_zone("America/New_York")
                .unwrap(),
            Schedule::cron("0 30 2 * * *")
                .unwrap()
                .in_zone("Europe/Amsterdam")
                .unwrap()
                .dst_gap(DstGap::Skip)
                .dst_overlap(DstOverlap::Both),
            Schedule::cron("0 30 1 * * *")
                .unwrap()
                .in_zone("America/New_York")
                .unwrap()
                .dst_overlap(DstOverlap::Last),
            Schedule::cron("0 0 0 * * *")
                .unwrap()
                .in_zone("Africa/Cairo")
                .unwrap()
                .dst_gap(DstGap::Skip),
            // Kept, though neither a UTC schedule nor an interval is affected.
            Schedule::cron("0 30 2 * * *")
                .unwrap()
                .dst_overlap(DstOverlap::Both),
            Schedule::cron("0 */15 2 * * *")
                .unwrap()
                .in_zone("Europe/Berlin")
                .unwrap()
                .dst_gap(DstGap::Skip),
            Schedule::every(Duration::from_secs(30)).unwrap(),
            Schedule::every(Duration::from_millis(1500)).unwrap(),
            Schedule::every(Duration::from_secs(86_400 + 3_600)).unwrap(),
            Schedule::after(Duration::from_secs(300)).unwrap(),
            Schedule::after(Duration::from_millis(250)).unwrap(),
        ];
        for schedule in schedules {
            let text = schedule.to_string();
            let parsed: Schedule = text.parse().unwrap();
            assert_eq!(parsed, schedule, "{text}");
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn default_policies_print_nothing() {
        let zoned = Schedule::cron("0 30 2 * * *")
            .unwrap()
            .in_zone("Europe/Amsterdam")
            .unwrap();
        let text = r#"cron "0 30 2 * * *" in Europe/Amsterdam"#;
        assert_eq!(zoned.to_string(), text);
        let spelled =
            r#"cron "0 30 2 * * *" in Europe/Amsterdam, dst_overlap first, dst_gap shift"#;
        assert_eq!(spelled.parse::<Schedule>(), Ok(zoned.clone()));
        let skip = zoned.clone().dst_gap(DstGap::Skip);
        assert_eq!(skip.to_string(), format!("{text}, dst_gap skip"));
        let both = zoned.dst_overlap(DstOverlap::Both);
        assert_eq!(both.to_string(), format!("{text}, dst_overlap both"));
        let in_any_order =
            r#"cron "0 30 2 * * *" in Europe/Amsterdam, dst_overlap both, dst_gap skip"#;
        assert_eq!(
            in_any_order.parse::<Schedule>().unwrap().to_string(),
            format!("{text}, dst_gap skip, dst_overlap both")
        );
    }

    #[test]
    fn from_str_rejects_what_display_never_writes() {
        for text in [
            "",
            "0 0 2 * * *",
            "cron 0 0 2 * * *",
            "cron \"0 0 2 * * *",
            "cron \"0 0 2 * * *\" at Europe/Berlin",
            "cron \"0 0 2 * * *\" dst_gap skip",
            "cron \"0 0 2 * * *\" in Europe/Berlin dst_gap skip",
            "cron \"0 0 2 * * *\" in Europe/Berlin,",
            "cron \"0 0 2 * * *\", in Europe/Berlin",
            "cron \"0 0 2 * * *\" in Europe/Berlin, dst_gap later",
            "cron \"0 0 2 * * *\" in Europe/Berlin, dst_overlap second",
            "cron \"0 0 2 * * *\" in Europe/Berlin, dst_gap skip, dst_gap shift",
            "cron \"0 0 2 * * *\" in Europe/Berlin, dst_overlap last, dst_overlap both",
            "cron \"0 0 2 * * *\" in Europe/Berlin, dst_gap",
            "cron \"0 0 2 * * *\" in Europe/Berlin, gap skip",
            "every 1m, dst_gap skip",
            "5m after the last run, dst_overlap both",
            "every",
            "every soon",
            "5m after",
            "5m before the last run",
            "hourly",
        ] {
            assert!(
                text.parse::<Schedule>().is_err(),
                "{text:?} parsed as a schedule"
            );
        }
        assert_eq!(
            "cron \"0 0 2 * * *\" in Mars/Olympus".parse::<Schedule>(),
            Err(ScheduleError::UnknownZone("Mars/Olympus".to_owned()))
        );
        assert!(matches!(
            "cron \"0 0 0 30 2 *\"".parse::<Schedule>(),
            Err(ScheduleError::NeverFires { .. })
        ));
        let e = "cron \"0 0 2 * * *\" in Europe/Berlin, dst_gap later"
            .parse::<Schedule>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown dst_gap policy `later`; use `shift` or `skip`"),
            "{e}"
        );
        assert!(matches!(
            "every 0s".parse::<Schedule>(),
            Err(ScheduleError::IntervalTooShort(_))
        ));
    }
    use crate::test_support::utc;

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

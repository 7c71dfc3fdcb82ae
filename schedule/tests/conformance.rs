//! Conformance with Spring Framework's `CronExpressionTests`
//! (`spring-context/src/test/java/org/springframework/scheduling/support/CronExpressionTests.java`,
//! package `org.springframework.scheduling.support`).
//!
//! Every test here ports one Spring test method and names it in a `// Spring: <method>` comment.
//! Spring's tests take a `LocalDateTime` (or `ZonedDateTime`) `last` and assert
//! `expression.next(last)`; here `last` becomes a UTC instant (a `LocalDateTime` has no zone,
//! and UTC, our default zone, has no DST) or an instant in the named zone, and the answer is
//! `Schedule::next_after(last)` read back on the same wall clock.
//!
//! Spring builds many inputs from `LocalDateTime.now()`. A test that depends on the clock
//! is not reproducible, so those tests run over several fixed stand-ins for "now" instead
//! (see [`nows`]), chosen to cross minute, hour, day, month, year and leap-day boundaries and
//! to carry sub-second parts, which `next` must drop.
//!
//! Where our answer differs from Spring's, the test asserts OUR answer and says why, in a
//! comment starting `DIFFERENCE`.

use chrono::{
    DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike,
    Utc, Weekday,
};
use chrono_tz::Tz;
use tickguard_schedule::{Cron, Schedule, ScheduleError};

// ---------------------------------------------------------------------------------------------
// Helpers: `LocalDateTime` arithmetic the way java.time does it, and `next` on a naive clock.
// ---------------------------------------------------------------------------------------------

/// Stand-ins for Spring's `LocalDateTime.now()`.
fn nows() -> Vec<NaiveDateTime> {
    vec![
        // An ordinary Wednesday afternoon, with nanoseconds.
        ldt(2024, 5, 15, 13, 27, 43) + Duration::nanoseconds(123_456_789),
        // The last seconds of a year (a Sunday): every `plus` rolls over the year.
        ldt(2023, 12, 31, 23, 59, 58) + Duration::milliseconds(500),
        // The last minute of a leap day.
        ldt(2024, 2, 29, 23, 59, 30) + Duration::nanoseconds(1),
        // Exactly midnight, no sub-second part, a Sunday at the end of a 31-day month.
        ldt(2021, 1, 31, 0, 0, 0),
        // A Sunday morning, one nanosecond short of the next second.
        ldt(2026, 8, 9, 10, 10, 10) + Duration::nanoseconds(999_999_999),
    ]
}

fn ldt(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|date| date.and_hms_opt(h, mi, s))
        .unwrap_or_else(|| panic!("invalid test date {y}-{mo}-{d} {h}:{mi}:{s}"))
}

fn midnight(y: i32, mo: u32, d: u32) -> NaiveDateTime {
    ldt(y, mo, d, 0, 0, 0)
}

/// `LocalDateTime.of(date, t.toLocalTime())`: the date changes, the time of day stays.
fn on_date(t: NaiveDateTime, y: i32, mo: u32, d: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap_or_else(|| panic!("invalid test date {y}-{mo}-{d}"))
        .and_time(t.time())
}

/// `withDayOfMonth(d)`.
fn with_day(t: NaiveDateTime, d: u32) -> NaiveDateTime {
    on_date(t, t.year(), t.month(), d)
}

/// `withSecond(s)`.
fn with_second(t: NaiveDateTime, s: u32) -> NaiveDateTime {
    t.with_second(s).expect("valid second")
}

/// `withMinute(m)`.
fn with_minute(t: NaiveDateTime, m: u32) -> NaiveDateTime {
    t.with_minute(m).expect("valid minute")
}

/// `withHour(h)`.
fn with_hour(t: NaiveDateTime, h: u32) -> NaiveDateTime {
    t.with_hour(h).expect("valid hour")
}

/// `withNano(0)`.
fn no_nanos(t: NaiveDateTime) -> NaiveDateTime {
    t.with_nanosecond(0).expect("zero nanos is valid")
}

/// `withHour(0).withMinute(0).withSecond(0).withNano(0)`.
fn start_of(t: NaiveDateTime) -> NaiveDateTime {
    t.date().and_hms_opt(0, 0, 0).expect("midnight is valid")
}

/// `plusMonths(n)`, which clamps the day to the new month's length as chrono does.
fn plus_months(t: NaiveDateTime, n: u32) -> NaiveDateTime {
    t.checked_add_months(Months::new(n)).expect("in range")
}

/// `with(TemporalAdjusters.next(day))`: the first such weekday strictly after `t`, same time.
fn next_weekday(t: NaiveDateTime, day: Weekday) -> NaiveDateTime {
    let mut d = t + Duration::days(1);
    while d.weekday() != day {
        d += Duration::days(1);
    }
    d
}

fn cron(expr: &str) -> Schedule {
    Schedule::cron(expr).unwrap_or_else(|e| panic!("`{expr}` must parse: {e}"))
}

/// `expression.next(last)` for a `LocalDateTime`: the schedule runs in UTC.
#[track_caller]
fn next(schedule: &Schedule, last: NaiveDateTime) -> NaiveDateTime {
    schedule
        .next_after(last.and_utc())
        .unwrap_or_else(|| panic!("{schedule}: no fire time after {last}"))
        .naive_utc()
}

/// Spring's usual chain: `actual = next(last)`, assert, then `last = actual` and repeat.
#[track_caller]
fn assert_chain(expr: &str, last: NaiveDateTime, expected: &[NaiveDateTime]) {
    let schedule = cron(expr);
    let start = last;
    let mut last = last;
    for (i, want) in expected.iter().enumerate() {
        let actual = next(&schedule, last);
        assert_eq!(
            actual,
            *want,
            "`{expr}`: fire #{} after {last} (chain started at {start})",
            i + 1
        );
        last = actual;
    }
}

/// Spring compares parsed expressions with `equals`; our `Cron` keeps the text it was given,
/// so `@yearly` and `0 0 0 1 1 *` are not `==`. What `equals` promises is that they fire at
/// the same times, which is what this checks, from many starting points.
#[track_caller]
fn assert_same_schedule(a: &str, b: &str) {
    let (sa, sb) = (cron(a), cron(b));
    let starts = nows()
        .into_iter()
        .chain([midnight(2000, 1, 1), ldt(2019, 12, 31, 23, 59, 59)]);
    for start in starts {
        let fa: Vec<DateTime<Utc>> = sa.upcoming(start.and_utc()).take(12).collect();
        let fb: Vec<DateTime<Utc>> = sb.upcoming(start.and_utc()).take(12).collect();
        assert_eq!(fa.len(), 12, "`{a}` must keep firing after {start}");
        assert_eq!(
            fa, fb,
            "`{a}` and `{b}` must fire at the same times after {start}"
        );
    }
}

fn is_weekday(t: NaiveDateTime) -> bool {
    !matches!(t.weekday(), Weekday::Sat | Weekday::Sun)
}

fn zone(name: &str) -> Tz {
    name.parse()
        .unwrap_or_else(|e| panic!("unknown zone {name}: {e}"))
}

/// `ZonedDateTime.parse("2021-03-27T09:00:00+01:00[Europe/Amsterdam]")`: the offset written
/// must be the zone's own offset at that instant.
#[track_caller]
fn zdt(text: &str, tz: Tz) -> DateTime<Tz> {
    let fixed = DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let zoned = fixed.with_timezone(&tz);
    assert_eq!(
        zoned.offset().fix(),
        *fixed.offset(),
        "{text} is not a valid offset for {tz}"
    );
    zoned
}

/// `expression.next(last)` for a `ZonedDateTime`.
#[track_caller]
fn next_zoned(schedule: &Schedule, last: DateTime<Tz>) -> DateTime<Tz> {
    let tz = last.timezone();
    schedule
        .next_after(last.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("{schedule}: no fire time after {last}"))
        .with_timezone(&tz)
}

/// `ZonedDateTime.equals`: same wall clock, same offset, same zone (and so the same instant).
#[track_caller]
fn assert_zoned_eq(actual: DateTime<Tz>, expected: DateTime<Tz>) {
    assert_eq!(
        actual.to_rfc3339(),
        expected.to_rfc3339(),
        "in {}",
        expected.timezone()
    );
    assert_eq!(actual, expected);
    assert_eq!(actual.timezone(), expected.timezone());
}

// ---------------------------------------------------------------------------------------------
// Validity
// ---------------------------------------------------------------------------------------------

// Spring: isValidExpression
#[test]
fn is_valid_expression() {
    // `null` has no counterpart: a Rust `&str` is never null.
    assert!(Cron::parse("").is_err());
    assert!(Cron::parse("*").is_err());
    assert!(Cron::parse("* * * * * * *").is_err());
    assert!(Cron::parse("* * * * * *").is_ok());

    // DIFFERENCE (deliberate): Spring rejects five fields; we accept them as a classic
    // `minute hour day-of-month month day-of-week` expression firing at second 0 (see the
    // crate docs: "five fields are also accepted (the second is then `0`)").
    assert!(Cron::parse("* * * * *").is_ok());
    assert_same_schedule("* * * * *", "0 * * * * *");
}

// ---------------------------------------------------------------------------------------------
// Seconds
// ---------------------------------------------------------------------------------------------

// Spring: matchAll
#[test]
fn match_all() {
    let s = cron("* * * * * *");
    for now in nows() {
        assert_eq!(
            next(&s, now),
            no_nanos(now + Duration::seconds(1)),
            "after {now}"
        );
    }
}

// Spring: matchLastSecond
#[test]
fn match_last_second() {
    let s = cron("* * * * * *");
    for now in nows() {
        let last = with_second(now, 58);
        assert_eq!(
            next(&s, last),
            no_nanos(last + Duration::seconds(1)),
            "after {last}"
        );
    }
}

// Spring: matchSpecificSecond
#[test]
fn match_specific_second() {
    let s = cron("10 * * * * *");
    for now in nows() {
        let last = with_second(now, 9);
        assert_eq!(
            next(&s, last),
            no_nanos(with_second(last, 10)),
            "after {last}"
        );
    }
}

// Spring: incrementSecondByOne
#[test]
fn increment_second_by_one() {
    let s = cron("11 * * * * *");
    for now in nows() {
        let last = with_second(now, 10);
        assert_eq!(
            next(&s, last),
            no_nanos(last + Duration::seconds(1)),
            "after {last}"
        );
    }
}

// Spring: incrementSecondAndRollover
#[test]
fn increment_second_and_rollover() {
    let s = cron("10 * * * * *");
    for now in nows() {
        let last = with_second(now, 11);
        let expected = no_nanos(with_second(last + Duration::minutes(1), 10));
        assert_eq!(next(&s, last), expected, "after {last}");
    }
}

// Spring: secondRange
#[test]
fn second_range() {
    let s = cron("10-15 * * * * *");
    for now in nows() {
        for i in 9..15 {
            let last = with_second(now, i);
            assert_eq!(
                next(&s, last),
                no_nanos(last + Duration::seconds(1)),
                "after {last}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Minutes and hours
// ---------------------------------------------------------------------------------------------

// Spring: incrementMinute
#[test]
fn increment_minute() {
    let s = cron("0 * * * * *");
    for now in nows() {
        let last = with_minute(now, 10);
        let expected = no_nanos(with_second(last + Duration::minutes(1), 0));
        let actual = next(&s, last);
        assert_eq!(actual, expected, "after {last}");
        assert_eq!(next(&s, actual), expected + Duration::minutes(1));
    }
}

// Spring: incrementMinuteByOne
#[test]
fn increment_minute_by_one() {
    let s = cron("0 11 * * * *");
    for now in nows() {
        let last = with_minute(now, 10);
        let expected = no_nanos(with_second(last + Duration::minutes(1), 0));
        assert_eq!(next(&s, last), expected, "after {last}");
    }
}

// Spring: incrementMinuteAndRollover
#[test]
fn increment_minute_and_rollover() {
    let s = cron("0 10 * * * *");
    for now in nows() {
        let last = with_second(with_minute(now, 11), 0);
        assert_eq!(
            next(&s, last),
            no_nanos(last + Duration::minutes(59)),
            "after {last}"
        );
    }
}

// Spring: incrementHour
#[test]
fn increment_hour() {
    let s = cron("0 0 * * * *");
    // Spring uses `Year.now()`; any year will do.
    for year in [2020, 2021, 2024, 2030] {
        let last = ldt(year, 10, 30, 11, 1, 0);
        let actual = next(&s, last);
        assert_eq!(actual, ldt(year, 10, 30, 12, 0, 0));
        assert_eq!(next(&s, actual), ldt(year, 10, 30, 13, 0, 0));
    }
}

// Spring: incrementHourAndRollover
#[test]
fn increment_hour_and_rollover() {
    let s = cron("0 0 * * * *");
    for year in [2020, 2021, 2024, 2030] {
        assert_eq!(next(&s, ldt(year, 9, 10, 23, 1, 0)), midnight(year, 9, 11));
    }
}

// ---------------------------------------------------------------------------------------------
// Days of the month and month lengths
// ---------------------------------------------------------------------------------------------

// Spring: incrementDayOfMonth
#[test]
fn increment_day_of_month() {
    let s = cron("0 0 0 * * *");
    for now in nows() {
        let last = with_day(now, 1);
        let expected = start_of(last + Duration::days(1));
        let actual = next(&s, last);
        assert_eq!(actual, expected, "after {last}");
        assert_eq!(next(&s, actual), expected + Duration::days(1));
    }
}

// Spring: incrementDayOfMonthByOne
#[test]
fn increment_day_of_month_by_one() {
    let s = cron("* * * 10 * *");
    for now in nows() {
        let last = with_day(now, 9);
        assert_eq!(
            next(&s, last),
            start_of(last + Duration::days(1)),
            "after {last}"
        );
    }
}

// Spring: incrementDayOfMonthAndRollover
#[test]
fn increment_day_of_month_and_rollover() {
    let s = cron("* * * 10 * *");
    for now in nows() {
        let last = with_day(now, 11);
        let expected = start_of(with_day(plus_months(last, 1), 10));
        assert_eq!(next(&s, last), expected, "after {last}");
    }
}

// Spring: dailyTriggerInShortMonth
#[test]
fn daily_trigger_in_short_month() {
    let s = cron("0 0 0 * * *");
    for now in nows() {
        // September: 30 days.
        let last = on_date(now, now.year(), 9, 30);
        let actual = next(&s, last);
        assert_eq!(actual, midnight(now.year(), 10, 1), "after {last}");
        assert_eq!(next(&s, actual), midnight(now.year(), 10, 2));
    }
}

// Spring: dailyTriggerInLongMonth
#[test]
fn daily_trigger_in_long_month() {
    let s = cron("0 0 0 * * *");
    for now in nows() {
        // August: 31 days and not a daylight saving boundary.
        let last = on_date(now, now.year(), 8, 30);
        let actual = next(&s, last);
        assert_eq!(actual, midnight(now.year(), 8, 31), "after {last}");
        assert_eq!(next(&s, actual), midnight(now.year(), 9, 1));
    }
}

// Spring: dailyTriggerOnDaylightSavingBoundary
#[test]
fn daily_trigger_on_daylight_saving_boundary() {
    // October: 31 days and a daylight saving boundary in CET. Spring takes the current year;
    // this runs 2020-2030, which include years where clocks go back on 30 October (2022) and
    // on 31 October (2021, 2027), so both midnights below neighbour a transition.
    let cet = zone("CET");
    let s = cron("0 0 0 * * *")
        .in_zone("CET")
        .expect("CET is an IANA zone");
    for year in 2020..=2030 {
        for now in nows() {
            let local = on_date(now, year, 10, 30);
            let last = cet.from_local_datetime(&local).earliest().expect("exists");
            let actual = next_zoned(&s, last);
            let expected = cet.from_local_datetime(&midnight(year, 10, 31)).single();
            assert_zoned_eq(actual, expected.expect("unambiguous midnight"));
            let expected = cet.from_local_datetime(&midnight(year, 11, 1)).single();
            assert_zoned_eq(
                next_zoned(&s, actual),
                expected.expect("unambiguous midnight"),
            );
        }
    }
}

// Spring: incrementMonth
#[test]
fn increment_month() {
    let s = cron("0 0 0 1 * *");
    for now in nows() {
        let last = on_date(now, now.year(), 10, 30);
        let actual = next(&s, last);
        assert_eq!(actual, midnight(now.year(), 11, 1), "after {last}");
        assert_eq!(next(&s, actual), midnight(now.year(), 12, 1));
    }
}

// Spring: incrementMonthAndRollover
#[test]
fn increment_month_and_rollover() {
    let s = cron("0 0 0 1 * *");
    for now in nows() {
        let last = on_date(now, 2010, 12, 31);
        let actual = next(&s, last);
        assert_eq!(actual, midnight(2011, 1, 1), "after {last}");
        assert_eq!(next(&s, actual), midnight(2011, 2, 1));
    }
}

// Spring: monthlyTriggerInLongMonth
#[test]
fn monthly_trigger_in_long_month() {
    let s = cron("0 0 0 31 * *");
    for now in nows() {
        let last = on_date(now, now.year(), 10, 30);
        assert_eq!(next(&s, last), midnight(now.year(), 10, 31), "after {last}");
    }
    // Not in Spring's test: the months without a 31st are skipped.
    assert_chain(
        "0 0 0 31 * *",
        midnight(2023, 1, 31),
        &[
            midnight(2023, 3, 31),
            midnight(2023, 5, 31),
            midnight(2023, 7, 31),
            midnight(2023, 8, 31),
            midnight(2023, 10, 31),
            midnight(2023, 12, 31),
            midnight(2024, 1, 31),
        ],
    );
}

// Spring: monthlyTriggerInShortMonth
#[test]
fn monthly_trigger_in_short_month() {
    let s = cron("0 0 0 1 * *");
    for now in nows() {
        let last = on_date(now, now.year(), 10, 30);
        assert_eq!(next(&s, last), midnight(now.year(), 11, 1), "after {last}");
    }
}

// ---------------------------------------------------------------------------------------------
// Days of the week
// ---------------------------------------------------------------------------------------------

// Spring: incrementDayOfWeekByOne
#[test]
fn increment_day_of_week_by_one() {
    let s = cron("* * * * * 2");
    for now in nows() {
        let last = next_weekday(now, Weekday::Mon);
        let actual = next(&s, last);
        assert_eq!(actual, start_of(last + Duration::days(1)), "after {last}");
        assert_eq!(actual.weekday(), Weekday::Tue);
    }
}

// Spring: incrementDayOfWeekAndRollover
#[test]
fn increment_day_of_week_and_rollover() {
    let s = cron("* * * * * 2");
    for now in nows() {
        let last = next_weekday(now, Weekday::Wed);
        let actual = next(&s, last);
        assert_eq!(actual, start_of(last + Duration::days(6)), "after {last}");
        assert_eq!(actual.weekday(), Weekday::Tue);
    }
}

// ---------------------------------------------------------------------------------------------
// Combinations of specific fields
// ---------------------------------------------------------------------------------------------

// Spring: specificMinuteSecond
#[test]
fn specific_minute_second() {
    let s = cron("55 5 * * * *");
    for now in nows() {
        let last = with_second(with_minute(now, 4), 54);
        let expected = no_nanos(with_second(last + Duration::minutes(1), 55));
        let actual = next(&s, last);
        assert_eq!(actual, expected, "after {last}");
        assert_eq!(next(&s, actual), expected + Duration::hours(1));
    }
}

// Spring: specificHourSecond
#[test]
fn specific_hour_second() {
    let s = cron("55 * 10 * * *");
    for now in nows() {
        let last = with_second(with_hour(now, 9), 54);
        let expected = no_nanos(with_second(with_minute(last + Duration::hours(1), 0), 55));
        let actual = next(&s, last);
        assert_eq!(actual, expected, "after {last}");
        assert_eq!(next(&s, actual), expected + Duration::minutes(1));
    }
}

// Spring: specificMinuteHour
#[test]
fn specific_minute_hour() {
    let s = cron("* 5 10 * * *");
    for now in nows() {
        let last = with_minute(with_hour(now, 9), 4);
        let expected = no_nanos(with_second(
            last + Duration::hours(1) + Duration::minutes(1),
            0,
        ));
        let actual = next(&s, last);
        assert_eq!(actual, expected, "after {last}");
        // The next trigger is one second later because the second is a wildcard.
        assert_eq!(next(&s, actual), expected + Duration::seconds(1));
    }
}

// Spring: specificDayOfMonthSecond
#[test]
fn specific_day_of_month_second() {
    let s = cron("55 * * 3 * *");
    for now in nows() {
        let last = with_second(with_day(now, 2), 54);
        let expected = start_of(last + Duration::days(1)) + Duration::seconds(55);
        let actual = next(&s, last);
        assert_eq!(actual, expected, "after {last}");
        assert_eq!(next(&s, actual), expected + Duration::minutes(1));
    }
}

// Spring: specificDate
#[test]
fn specific_date() {
    let s = cron("* * * 3 11 *");
    for now in nows() {
        let last = on_date(now, now.year(), 10, 2);
        let actual = next(&s, last);
        assert_eq!(actual, midnight(now.year(), 11, 3), "after {last}");
        assert_eq!(
            next(&s, actual),
            midnight(now.year(), 11, 3) + Duration::seconds(1)
        );
    }
}

// Spring: nonExistentSpecificDate
#[test]
fn non_existent_specific_date() {
    // DIFFERENCE (deliberate): Spring parses `0 0 0 31 6 *` and `next` returns null; we
    // reject the expression when it is parsed, so a job that can never run fails at startup
    // (or at compile time, through `#[scheduled]`) instead of silently never firing.
    let err = Cron::parse("0 0 0 31 6 *").expect_err("31 June never happens");
    assert!(
        matches!(err, ScheduleError::NeverFires { ref expr } if expr == "0 0 0 31 6 *"),
        "{err:?}"
    );
    assert!(Schedule::cron("0 0 0 31 6 *").is_err());
}

// Spring: leapYearSpecificDate
#[test]
fn leap_year_specific_date() {
    for now in nows() {
        assert_chain(
            "0 0 0 29 2 *",
            on_date(now, 2007, 2, 10),
            &[midnight(2008, 2, 29), midnight(2012, 2, 29)],
        );
    }
    // Not in Spring's test: 2100 is not a leap year (divisible by 100, not by 400), 2000 is.
    assert_chain(
        "0 0 0 29 2 *",
        midnight(2096, 3, 1),
        &[midnight(2104, 2, 29)],
    );
    assert_chain(
        "0 0 0 29 2 *",
        midnight(1997, 1, 1),
        &[midnight(2000, 2, 29)],
    );
}

// Spring: weekDaySequence
#[test]
fn week_day_sequence() {
    for now in nows() {
        // 26 September 2009 is a Saturday.
        let last = on_date(now, 2009, 9, 26);
        assert_eq!(last.weekday(), Weekday::Sat);
        assert_chain(
            "0 0 7 ? * MON-FRI",
            last,
            &[
                ldt(2009, 9, 28, 7, 0, 0),
                // The next day is a weekday, so add one.
                ldt(2009, 9, 29, 7, 0, 0),
                ldt(2009, 9, 30, 7, 0, 0),
            ],
        );
    }
}

// Spring: monthSequence
#[test]
fn month_sequence() {
    // Spring's grammar reads a single-number step `1/3` as `1-12/3` (January, April, July,
    // October); so do we.
    for expr in ["0 30 23 30 1/3 ?", "0 30 23 30 1-12/3 ?"] {
        for now in nows() {
            assert_chain(
                expr,
                on_date(now, 2010, 12, 30),
                &[
                    ldt(2011, 1, 30, 23, 30, 0),
                    // The next trigger is three months later.
                    ldt(2011, 4, 30, 23, 30, 0),
                    ldt(2011, 7, 30, 23, 30, 0),
                ],
            );
        }
    }
}

// Spring: fixedDays
#[test]
fn fixed_days() {
    // Both day fields restricted: a day must be the 29th of February AND a Wednesday. This
    // is Spring's rule too: Spring asserts both properties of the answer.
    let last = ldt(2012, 2, 29, 1, 0, 0);
    assert_eq!(last.weekday(), Weekday::Wed);
    let actual = next(&cron("0 0 0 29 2 WED"), last);
    assert_eq!(actual.day(), 29);
    assert_eq!(actual.weekday(), Weekday::Wed);
    // Spring checks only the two properties; the date itself is 28 years on.
    assert_eq!(actual, midnight(2040, 2, 29));
}

// Spring: friday13th
#[test]
fn friday_13th() {
    let s = cron("0 0 0 13 * FRI");
    let last = ldt(2018, 7, 31, 11, 47, 14);
    let actual = next(&s, last);
    assert_eq!(actual.weekday(), Weekday::Fri);
    assert_eq!(actual.day(), 13);
    // Spring checks only the two properties. Had the day fields been OR-ed (Vixie cron), the
    // answer would be Friday 3 August 2018.
    assert_eq!(actual, midnight(2019, 9, 13));
    let actual = next(&s, actual);
    assert_eq!(actual.weekday(), Weekday::Fri);
    assert_eq!(actual.day(), 13);
    assert_eq!(actual, midnight(2019, 12, 13));
}

// Spring: everyTenDays
#[test]
fn every_ten_days() {
    // Days 1, 11, 21, 31 of January to August that are also Fridays.
    assert_chain(
        "0 15 12 */10 1-8 5",
        ldt(2021, 4, 30, 12, 14, 59),
        &[
            ldt(2021, 5, 21, 12, 15, 0),
            ldt(2021, 6, 11, 12, 15, 0),
            ldt(2022, 1, 21, 12, 15, 0),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Macros
// ---------------------------------------------------------------------------------------------

// Spring: yearly
#[test]
fn yearly() {
    assert_same_schedule("@yearly", "0 0 0 1 1 *");
    for now in nows() {
        let last = on_date(now, now.year(), 10, 10);
        let y = now.year();
        assert_chain(
            "@yearly",
            last,
            &[
                midnight(y + 1, 1, 1),
                midnight(y + 2, 1, 1),
                midnight(y + 3, 1, 1),
            ],
        );
    }
}

// Spring: annually
#[test]
fn annually() {
    assert_same_schedule("@annually", "0 0 0 1 1 *");
    assert_same_schedule("@annually", "@yearly");
}

// Spring: monthly
#[test]
fn monthly() {
    assert_same_schedule("@monthly", "0 0 0 1 * *");
    for now in nows() {
        let last = on_date(now, now.year(), 10, 10);
        let y = now.year();
        assert_chain(
            "@monthly",
            last,
            &[
                midnight(y, 11, 1),
                midnight(y, 12, 1),
                midnight(y + 1, 1, 1),
            ],
        );
    }
}

// Spring: weekly
#[test]
fn weekly() {
    assert_same_schedule("@weekly", "0 0 0 * * 0");
    // Not in Spring's test, but Spring's grammar: 0 and 7 are both Sunday, and so is SUN.
    assert_same_schedule("@weekly", "0 0 0 * * 7");
    assert_same_schedule("@weekly", "0 0 0 ? * SUN");
    for now in nows() {
        let expected = start_of(next_weekday(now, Weekday::Sun));
        assert_chain(
            "@weekly",
            now,
            &[
                expected,
                expected + Duration::weeks(1),
                expected + Duration::weeks(2),
            ],
        );
    }
}

// Spring: daily
#[test]
fn daily() {
    assert_same_schedule("@daily", "0 0 0 * * *");
    for now in nows() {
        let expected = start_of(now + Duration::days(1));
        assert_chain(
            "@daily",
            now,
            &[
                expected,
                expected + Duration::days(1),
                expected + Duration::days(2),
            ],
        );
    }
}

// Spring: midnight
#[test]
fn midnight_macro() {
    assert_same_schedule("@midnight", "0 0 0 * * *");
    assert_same_schedule("@midnight", "@daily");
}

// Spring: hourly
#[test]
fn hourly() {
    assert_same_schedule("@hourly", "0 0 * * * *");
    for now in nows() {
        let expected = no_nanos(with_second(with_minute(now + Duration::hours(1), 0), 0));
        assert_chain(
            "@hourly",
            now,
            &[
                expected,
                expected + Duration::hours(1),
                expected + Duration::hours(2),
            ],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Quartz extensions: L, L-n, LW, nW, dL, d#n
// ---------------------------------------------------------------------------------------------

// Spring: quartzLastDayOfMonth
#[test]
fn quartz_last_day_of_month() {
    for now in nows() {
        assert_chain(
            "0 0 0 L * *",
            on_date(now, 2008, 1, 4),
            &[
                midnight(2008, 1, 31),
                midnight(2008, 2, 29),
                midnight(2008, 3, 31),
                midnight(2008, 4, 30),
            ],
        );
    }
}

// Spring: quartzLastDayOfMonthOffset
#[test]
fn quartz_last_day_of_month_offset() {
    // L-3 = third-to-last day of the month.
    for now in nows() {
        assert_chain(
            "0 0 0 L-3 * *",
            on_date(now, 2008, 1, 4),
            &[
                midnight(2008, 1, 28),
                midnight(2008, 2, 26),
                midnight(2008, 3, 28),
                midnight(2008, 4, 27),
            ],
        );
    }
}

// Spring: quartzLastWeekdayOfMonth
#[test]
fn quartz_last_weekday_of_month() {
    let expected = [
        midnight(2008, 1, 31),
        midnight(2008, 2, 29),
        midnight(2008, 3, 31),
        midnight(2008, 4, 30),
        midnight(2008, 5, 30),
        midnight(2008, 6, 30),
        midnight(2008, 7, 31),
        midnight(2008, 8, 29),
        midnight(2008, 9, 30),
        midnight(2008, 10, 31),
        midnight(2008, 11, 28),
        midnight(2008, 12, 31),
    ];
    assert!(expected.iter().all(|t| is_weekday(*t)));
    for now in nows() {
        assert_chain("0 0 0 LW * *", on_date(now, 2008, 1, 4), &expected);
    }
}

// Spring: quartzLastDayOfWeekOffset
#[test]
fn quartz_last_day_of_week_offset() {
    // Last Friday (5) of the month.
    let expected = [
        midnight(2008, 1, 25),
        midnight(2008, 2, 29),
        midnight(2008, 3, 28),
        midnight(2008, 4, 25),
        midnight(2008, 5, 30),
        midnight(2008, 6, 27),
        midnight(2008, 7, 25),
        midnight(2008, 8, 29),
        midnight(2008, 9, 26),
        midnight(2008, 10, 31),
        midnight(2008, 11, 28),
        midnight(2008, 12, 26),
    ];
    assert!(expected.iter().all(|t| t.weekday() == Weekday::Fri));
    for now in nows() {
        assert_chain("0 0 0 * * 5L", on_date(now, 2008, 1, 4), &expected);
    }
}

// Spring: quartzWeekdayNearestTo15
#[test]
fn quartz_weekday_nearest_to_15() {
    let expected = [
        midnight(2020, 1, 15),
        midnight(2020, 2, 14),
        midnight(2020, 3, 16),
        midnight(2020, 4, 15),
    ];
    assert!(expected.iter().all(|t| is_weekday(*t)));
    assert_chain("0 0 0 15W * ?", midnight(2020, 1, 1), &expected);
}

// Spring: quartzWeekdayNearestTo1
#[test]
fn quartz_weekday_nearest_to_1() {
    let expected = [
        midnight(2020, 1, 1),
        midnight(2020, 2, 3),
        midnight(2020, 3, 2),
        midnight(2020, 4, 1),
    ];
    assert!(expected.iter().all(|t| is_weekday(*t)));
    assert_chain("0 0 0 1W * ?", midnight(2019, 12, 31), &expected);

    // The 1st is a Saturday: the weekday does not cross into the previous month, so Monday.
    let last = midnight(2022, 1, 1);
    assert_eq!(last.weekday(), Weekday::Sat);
    assert_chain("0 0 0 1W * ?", last, &[midnight(2022, 1, 3)]);
    // The 1st is a Sunday: Monday the 2nd.
    let last = midnight(2021, 8, 1);
    assert_eq!(last.weekday(), Weekday::Sun);
    assert_chain("0 0 0 1W * ?", last, &[midnight(2021, 8, 2)]);
}

// Spring: quartzWeekdayNearestTo31
#[test]
fn quartz_weekday_nearest_to_31() {
    // DIFFERENCE (deliberate, in our judgement): Spring expects 31 Jan, 31 Mar, 31 Jul,
    // 31 Aug, 30 Oct and 31 Dec 2020, skipping May. 31 May 2020 is a Sunday; Spring's
    // adjuster moves a Sunday forward to Monday, which here is 1 June, outside the month, so
    // Spring drops May. We (croner) follow Quartz's definition of `nW`, "the weekday nearest
    // day n, without leaving the month", which for a Sunday on the last day is the Friday
    // before: 29 May. The crate documents `nW` as "the weekday nearest day n".
    let expected = [
        midnight(2020, 1, 31),
        midnight(2020, 3, 31),
        midnight(2020, 5, 29), // not in Spring's sequence
        midnight(2020, 7, 31),
        midnight(2020, 8, 31),
        midnight(2020, 10, 30),
        midnight(2020, 12, 31),
    ];
    assert_eq!(midnight(2020, 5, 31).weekday(), Weekday::Sun);
    assert!(expected.iter().all(|t| is_weekday(*t)));
    assert_chain("0 0 0 31W * ?", midnight(2020, 1, 1), &expected);
}

// Spring: quartz2ndFridayOfTheMonth
#[test]
fn quartz_2nd_friday_of_the_month() {
    let expected = [
        midnight(2020, 1, 10),
        midnight(2020, 2, 14),
        midnight(2020, 3, 13),
        midnight(2020, 4, 10),
    ];
    assert!(expected.iter().all(|t| t.weekday() == Weekday::Fri));
    assert_chain("0 0 0 ? * 5#2", midnight(2020, 1, 1), &expected);
}

// Spring: quartz2ndFridayOfTheMonthDayName
#[test]
fn quartz_2nd_friday_of_the_month_day_name() {
    let expected = [
        midnight(2020, 1, 10),
        midnight(2020, 2, 14),
        midnight(2020, 3, 13),
        midnight(2020, 4, 10),
    ];
    assert_chain("0 0 0 ? * FRI#2", midnight(2020, 1, 1), &expected);
}

// Spring: quartzFifthWednesdayOfTheMonth
#[test]
fn quartz_fifth_wednesday_of_the_month() {
    let expected = [
        midnight(2020, 1, 29),
        midnight(2020, 4, 29),
        midnight(2020, 7, 29),
        midnight(2020, 9, 30),
        midnight(2020, 12, 30),
    ];
    assert!(expected.iter().all(|t| t.weekday() == Weekday::Wed));
    assert_chain("0 0 0 ? * 3#5", midnight(2020, 1, 1), &expected);
}

// Spring: dayOfMonthListWithQuartz
#[test]
fn day_of_month_list_with_quartz() {
    assert_chain(
        "0 0 0 1W,15,LW * ?",
        midnight(2019, 12, 30),
        &[
            midnight(2019, 12, 31),
            midnight(2020, 1, 1),
            midnight(2020, 1, 15),
            midnight(2020, 1, 31),
        ],
    );
}

// Spring: dayOfWeekListWithQuartz
#[test]
fn day_of_week_list_with_quartz() {
    let expected = [
        midnight(2020, 1, 2),
        midnight(2020, 1, 16),
        midnight(2020, 1, 30),
    ];
    assert!(expected.iter().all(|t| t.weekday() == Weekday::Thu));
    assert_chain(
        "0 0 0 ? * THU#1,THU#3,THU#5",
        midnight(2019, 12, 31),
        &expected,
    );
}

// Spring: quartzLastDayOfMonthEveryHour
#[test]
fn quartz_last_day_of_month_every_hour() {
    let s = cron("0 0 * L * *");
    assert_eq!(next(&s, ldt(2021, 1, 30, 0, 1, 0)), midnight(2021, 1, 31));
    assert_eq!(
        next(&s, ldt(2021, 1, 31, 1, 0, 0)),
        ldt(2021, 1, 31, 2, 0, 0)
    );
}

// Spring: quartzLastDayOfMonthOffsetEveryHour
#[test]
fn quartz_last_day_of_month_offset_every_hour() {
    let s = cron("0 0 * L-1 * *");
    assert_eq!(next(&s, ldt(2021, 1, 29, 0, 1, 0)), midnight(2021, 1, 30));
    assert_eq!(
        next(&s, ldt(2021, 1, 30, 1, 0, 0)),
        ldt(2021, 1, 30, 2, 0, 0)
    );
}

// Spring: quartzFirstWeekdayOfMonthEveryHour
#[test]
fn quartz_first_weekday_of_month_every_hour() {
    let s = cron("0 0 * 1W * *");
    assert_eq!(next(&s, ldt(2021, 1, 31, 0, 1, 0)), midnight(2021, 2, 1));
    assert_eq!(next(&s, ldt(2021, 2, 1, 1, 0, 0)), ldt(2021, 2, 1, 2, 0, 0));
}

// Spring: quartzLastWeekdayOfMonthEveryHour
#[test]
fn quartz_last_weekday_of_month_every_hour() {
    let s = cron("0 0 * LW * *");
    assert_eq!(next(&s, ldt(2021, 1, 28, 0, 1, 0)), midnight(2021, 1, 29));
    assert_eq!(
        next(&s, ldt(2021, 1, 29, 1, 0, 0)),
        ldt(2021, 1, 29, 2, 0, 0)
    );
}

// Spring: quartz5thFridayOfTheMonthEveryHour
#[test]
fn quartz_5th_friday_of_the_month_every_hour() {
    let s = cron("0 0 * ? * FRI#5");
    let actual = next(&s, ldt(2021, 1, 28, 0, 1, 0));
    assert_eq!(actual, midnight(2021, 1, 29));
    assert_eq!(actual.weekday(), Weekday::Fri);
    assert_eq!(
        next(&s, ldt(2021, 1, 29, 1, 0, 0)),
        ldt(2021, 1, 29, 2, 0, 0)
    );
}

// Spring: quartzLastFridayOfTheMonthEveryHour
#[test]
fn quartz_last_friday_of_the_month_every_hour() {
    let s = cron("0 0 * ? * FRIL");
    let actual = next(&s, ldt(2021, 1, 28, 0, 1, 0));
    assert_eq!(actual, midnight(2021, 1, 29));
    assert_eq!(actual.weekday(), Weekday::Fri);
    assert_eq!(
        next(&s, ldt(2021, 1, 29, 1, 0, 0)),
        ldt(2021, 1, 29, 2, 0, 0)
    );
}

// Spring: sundayToFriday
#[test]
fn sunday_to_friday() {
    let s = cron("0 0 0 ? * SUN-FRI");
    let actual = next(&s, ldt(2021, 2, 25, 15, 0, 0));
    assert_eq!(actual, midnight(2021, 2, 26));
    assert_eq!(actual.weekday(), Weekday::Fri);
    let actual = next(&s, actual);
    assert_eq!(actual, midnight(2021, 2, 28));
    assert_eq!(actual.weekday(), Weekday::Sun);
}

// ---------------------------------------------------------------------------------------------
// Daylight saving time
// ---------------------------------------------------------------------------------------------

// Spring: daylightSaving
#[test]
fn daylight_saving() {
    let ams = zone("Europe/Amsterdam");
    let in_ams = |expr: &str| cron(expr).in_zone("Europe/Amsterdam").expect("known zone");

    // Spring forward: 09:00 the next day, now at +02:00.
    let s = in_ams("0 0 9 * * *");
    let last = zdt("2021-03-27T09:00:00+01:00", ams);
    assert_zoned_eq(next_zoned(&s, last), zdt("2021-03-28T09:00:00+02:00", ams));

    // Fall back: 09:00 the next day, now at +01:00.
    let last = zdt("2021-10-30T09:00:00+02:00", ams);
    assert_zoned_eq(next_zoned(&s, last), zdt("2021-10-31T09:00:00+01:00", ams));

    // A fixed time inside the gap (spring-projects/spring-framework#26830).
    // DIFFERENCE (deliberate): on 31 March 2013 Amsterdam's clocks jump from 02:00 to 03:00,
    // so 02:10 does not exist. Spring skips that day and answers 2013-04-01T02:10+02:00. Our
    // documented policy is that a fixed time in a spring-forward gap fires once, at the first
    // valid instant after the gap (03:00+02:00), so a daily job does not lose a day; the
    // following fire is Spring's answer.
    let s = in_ams("0 10 2 * * *");
    let last = zdt("2013-03-31T01:09:00+01:00", ams);
    let actual = next_zoned(&s, last);
    assert_zoned_eq(actual, zdt("2013-03-31T03:00:00+02:00", ams));
    assert_zoned_eq(
        next_zoned(&s, actual),
        zdt("2013-04-01T02:10:00+02:00", ams),
    );

    // Computed on the gap day before the jump (spring-projects/spring-framework#28038).
    let s = in_ams("0 5 0 * * *");
    let last = zdt("2021-03-28T01:00:00+01:00", ams);
    assert_zoned_eq(next_zoned(&s, last), zdt("2021-03-29T00:05:00+02:00", ams));
}

// Spring: daylightSaving (the Africa/Cairo case added by spring-projects/spring-framework#36865,
// fixing #36859). The text of that Java test was not available to port; this reconstructs it
// from the reproduction (every two hours, Cairo, starting at epoch millisecond
// 1745521820000 = 2025-04-24T21:10:20+02:00) and the PR's stated contract: a time inside the
// gap is skipped, later matches that day are kept, and the day is no longer lost.
#[test]
fn daylight_saving_cairo_midnight_gap() {
    let cairo = zone("Africa/Cairo");
    let s = cron("0 0 */2 * * ?")
        .in_zone("Africa/Cairo")
        .expect("known zone");
    let start = DateTime::from_timestamp_millis(1_745_521_820_000)
        .expect("in range")
        .with_timezone(&cairo);
    assert_zoned_eq(start, zdt("2025-04-24T21:10:20+02:00", cairo));

    // On 25 April 2025 Cairo's clocks jump from 00:00 to 01:00. `*/2` in the hour field is
    // an interval, not a fixed time, so 00:00, which does not exist, is skipped (the same
    // answer as Spring's), and the day is kept.
    let fires: Vec<String> = s
        .upcoming(start.with_timezone(&Utc))
        .take(4)
        .map(|t| t.with_timezone(&cairo).to_rfc3339())
        .collect();
    assert_eq!(
        fires,
        [
            "2025-04-24T22:00:00+02:00",
            "2025-04-25T02:00:00+03:00",
            "2025-04-25T04:00:00+03:00",
            "2025-04-25T06:00:00+03:00",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Assorted
// ---------------------------------------------------------------------------------------------

// Spring: various
#[test]
fn various() {
    // Saturday 1 October 2022 is both the 1st (day-of-month `1,15`) and the first Saturday.
    assert_chain(
        "3-57 13-28 17,18 1,15 3-12 6#1",
        ldt(2022, 9, 15, 17, 44, 11),
        &[ldt(2022, 10, 1, 17, 13, 3)],
    );
    // Days 1, 7, 13, 19, 25, 31: after 27 February comes 1 March.
    assert_chain(
        "*/28 56 22 */6 * *",
        ldt(2022, 2, 27, 8, 0, 42),
        &[ldt(2022, 3, 1, 22, 56, 0)],
    );
}

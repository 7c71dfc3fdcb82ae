//! `Cron::parse` rejects malformed expressions with errors that say what is wrong and where:
//! the wrong number of fields, a value out of range in each field, unknown names and macros,
//! misplaced special characters, `L-n` out of range, and dates that never happen.
//!
//! Spring rejects all of these too (`CronExpression.parse` throws
//! `IllegalArgumentException`), except the dates that never happen, which Spring accepts and
//! then never fires (see `non_existent_specific_date` in `conformance.rs`).

use tickguard_schedule::{Cron, Schedule, ScheduleError};

/// `expr` is rejected as `InvalidCron`, the message quotes the expression, and the reason
/// contains every one of `needles`.
#[track_caller]
fn assert_invalid(expr: &str, needles: &[&str]) {
    let err = match Cron::parse(expr) {
        Ok(cron) => panic!("`{expr}` must be rejected, parsed as {cron:?}"),
        Err(err) => err,
    };
    match &err {
        ScheduleError::InvalidCron {
            expr: quoted,
            reason,
        } => {
            assert_eq!(quoted, expr);
            for needle in needles {
                assert!(
                    reason.contains(needle),
                    "`{expr}`: reason {reason:?} lacks {needle:?}"
                );
            }
        }
        other => panic!("`{expr}`: expected InvalidCron, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("invalid cron expression `{expr}`: ")),
        "{message}"
    );
    // `Schedule::cron` reports exactly the same error.
    assert_eq!(Schedule::cron(expr).err(), Some(err));
}

/// `expr` parses but no date ever matches it.
#[track_caller]
fn assert_never_fires(expr: &str) {
    let err = match Cron::parse(expr) {
        Ok(cron) => panic!("`{expr}` must be rejected, parsed as {cron:?}"),
        Err(err) => err,
    };
    assert_eq!(
        err,
        ScheduleError::NeverFires {
            expr: expr.to_owned()
        },
        "`{expr}`"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("`{expr}`")) && message.contains("never fires"),
        "{message}"
    );
    assert_eq!(Schedule::cron(expr).err(), Some(err));
}

#[track_caller]
fn assert_valid(expr: &str) {
    if let Err(e) = Cron::parse(expr) {
        panic!("`{expr}` must parse: {e}");
    }
}

#[test]
fn wrong_field_count() {
    for (expr, found) in [
        ("", 0),
        ("   ", 0),
        ("*", 1),
        ("* *", 2),
        ("* * * *", 4),
        ("* * * * * * *", 7),
        // A year field (Quartz's seventh) is not part of Spring's grammar.
        ("0 0 0 1 1 * 2030", 7),
        ("0 0 0 1 1 ? * *", 8),
    ] {
        assert_invalid(
            expr,
            &[
                "expected 6 fields (second minute hour day-of-month month day-of-week) or 5 (without seconds)",
                &format!("found {found}"),
            ],
        );
    }
}

#[test]
fn out_of_range_second() {
    assert_invalid("60 * * * * *", &["second field `60`", "out of bounds"]);
    assert_invalid("0-60 * * * * *", &["second field `0-60`", "out of bounds"]);
    assert_invalid(
        "*/0 * * * * *",
        &["second field `*/0`", "step cannot be zero"],
    );
    assert_valid("59 * * * * *");
}

#[test]
fn out_of_range_minute() {
    assert_invalid("0 60 * * * *", &["minute field `60`", "out of bounds"]);
    assert_invalid(
        "0 30-60 * * * *",
        &["minute field `30-60`", "out of bounds"],
    );
    assert_valid("0 59 * * * *");
}

#[test]
fn out_of_range_hour() {
    assert_invalid("0 0 24 * * *", &["hour field `24`", "out of bounds"]);
    assert_invalid("0 0 20-24 * * *", &["hour field `20-24`", "out of bounds"]);
    assert_valid("0 0 23 * * *");
}

#[test]
fn out_of_range_day_of_month() {
    assert_invalid(
        "0 0 0 32 * *",
        &["day-of-month field `32`", "out of bounds"],
    );
    assert_invalid("0 0 0 0 * *", &["day-of-month field `0`", "out of bounds"]);
    assert_invalid(
        "0 0 0 5-1 * *",
        &["day-of-month field `5-1`", "out of bounds"],
    );
    assert_invalid(
        "0 0 0 32W * *",
        &["day-of-month field `32W`", "out of bounds"],
    );
    assert_valid("0 0 0 31 * *");
    assert_valid("0 0 0 1 * *");
}

#[test]
fn out_of_range_month() {
    assert_invalid("0 0 0 * 13 *", &["month field `13`", "out of bounds"]);
    assert_invalid("0 0 0 * 0 *", &["month field `0`", "out of bounds"]);
    assert_invalid("0 0 0 * 11-13 *", &["month field `11-13`", "out of bounds"]);
    assert_valid("0 0 0 * 12 *");
}

#[test]
fn out_of_range_day_of_week() {
    assert_invalid("0 0 0 ? * 8", &["day-of-week field `8`", "out of bounds"]);
    assert_invalid(
        "0 0 0 ? * 1-8",
        &["day-of-week field `1-8`", "out of bounds"],
    );
    // The n-th weekday of a month: n from 1 to 5.
    assert_invalid(
        "0 0 0 ? * 5#0",
        &["day-of-week field `5#0`", "out of bounds"],
    );
    assert_invalid(
        "0 0 0 ? * 5#6",
        &["day-of-week field `5#6`", "out of bounds"],
    );
    assert_invalid("0 0 0 ? * #2", &["day-of-week field `#2`"]);
    // 0 and 7 are both Sunday.
    assert_valid("0 0 0 ? * 0");
    assert_valid("0 0 0 ? * 7");
    assert_valid("0 0 0 ? * 5#5");
}

#[test]
fn bad_names() {
    assert_invalid(
        "0 0 0 ? * FOO",
        &["day-of-week field `FOO`", "illegal character"],
    );
    assert_invalid(
        "0 0 0 ? * MONDAY",
        &["day-of-week field `MONDAY`", "illegal character"],
    );
    assert_invalid("0 0 0 1 FOO *", &["month field `FOO`", "illegal character"]);
    assert_invalid(
        "0 0 0 1 JANUARY *",
        &["month field `JANUARY`", "illegal character"],
    );
    assert_invalid(
        "0 0 0 1 1 1;2",
        &["day-of-week field `1;2`", "illegal character"],
    );
    // Names are case-insensitive, as in Spring.
    assert_valid("0 0 0 ? jan-mar mon-fri");
    assert_valid("0 0 0 ? JAN,Feb,dec Sun");
}

#[test]
fn unknown_macro() {
    for expr in ["@fortnightly", "@every", "@"] {
        assert_invalid(
            expr,
            &[
                "unknown macro",
                "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
            ],
        );
    }
    for expr in [
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
        "@HOURLY",
        " @daily ",
    ] {
        assert_valid(expr);
    }
}

#[test]
fn misplaced_special_characters() {
    // `?` only in the two day fields.
    assert_invalid("0 ? * * * *", &["minute field `?`", "illegal character"]);
    assert_invalid("0 0 0 * ? *", &["month field `?`", "illegal character"]);
    // `W` needs a day before it; `L` and `W` belong to the day fields.
    assert_invalid("0 0 0 W * *", &["day-of-month field `W`"]);
    assert_invalid("0 0 L * * *", &["hour field `L`", "illegal character"]);
    assert_invalid(
        "0 0 0 * * 5W",
        &["day-of-week field `5W`", "illegal character"],
    );
    // `#` belongs to the day-of-week field.
    assert_invalid(
        "0 0 0 1#2 * *",
        &["day-of-month field `1#2`", "illegal character"],
    );
    // Spring rejects a bare `L` in the day-of-week field ("No day-of-week before 'L'").
    assert_invalid("0 0 0 ? * L", &["day-of-week field `L`", "`5L`"]);
}

#[test]
fn names_belong_to_their_field() {
    // croner alone would replace names anywhere (`JAN` in day-of-week would mean Monday);
    // Spring, and we, accept month names in the month field and weekday names in the
    // day-of-week field only.
    assert_invalid(
        "0 0 0 * * JAN",
        &["day-of-week field `JAN`", "illegal character `J`"],
    );
    assert_invalid(
        "0 0 0 1 MON *",
        &["month field `MON`", "illegal character `M`"],
    );
    assert_invalid(
        "0 0 MON * * *",
        &["hour field `MON`", "illegal character `M`"],
    );
}

#[test]
fn empty_list_items() {
    // Spring rejects an empty item (its value is not a number); croner alone would drop it,
    // so that a field of commas only matched nothing and the expression never fired.
    let empty = "empty item in a list";
    assert_invalid(" , * * L-4 1,*/4,SEP thu", &["second field `,`", empty]);
    assert_invalid("0 , 0 * * *", &["minute field `,`", empty]);
    assert_invalid("0 0 0 1,,2 * *", &["day-of-month field `1,,2`", empty]);
    assert_invalid("0 0 0 * JAN, *", &["month field `JAN,`", empty]);
    assert_invalid("0 0 0 * * ,MON", &["day-of-week field `,MON`", empty]);
    assert_invalid("0 0 0 * * 5L,", &["day-of-week field `5L,`", empty]);
    assert_invalid("0 0 0 L, * *", &["day-of-month field `L,`", empty]);
    assert_invalid("0 0 0 L-3, * *", &["day-of-month field `L-3,`", empty]);
}

#[test]
fn step_without_a_start() {
    // Spring reads the part before `/` as a value or a range: an empty one is an error.
    assert_invalid(
        "0 /5 * * * *",
        &["minute field `/5`", "a step needs a start"],
    );
    assert_invalid(
        "0 0 1,/6 * * *",
        &["hour field `1,/6`", "a step needs a start"],
    );
    assert_valid("0 */5 * * * *");
    assert_valid("0 0/5 * * * *");
}

#[test]
fn a_plus_or_a_question_mark_inside_a_field() {
    // croner reads `+` as "day of month and day of week" and drops what follows it when
    // empty; Spring knows no `+`. A `?` is a whole day field in Spring, never part of one.
    let plus = "`+` is not part of the cron grammar";
    assert_invalid("0 0 0 * * +,1", &["day-of-week field `+,1`", plus]);
    assert_invalid("0 0 0 * * +", &["day-of-week field `+`", plus]);
    assert_invalid("0 0 0 * * +MON", &["day-of-week field `+MON`", plus]);
    let alone = "`?` stands alone";
    assert_invalid("0 0 0 ?/2 * *", &["day-of-month field `?/2`", alone]);
    assert_invalid("0 0 0 * * 1,?", &["day-of-week field `1,?`", alone]);
    assert_valid("0 0 0 ? * MON");
    assert_valid("0 0 0 1 * ?");
}

#[test]
fn days_before_last_in_a_list() {
    // Spring accepts `L-3,15`; croner cannot express it, so we reject it with a clear message.
    assert_invalid(
        "0 0 0 L-3,15 * ?",
        &["day-of-month field `L-3,15`", "cannot be combined"],
    );
}

#[test]
fn days_before_last_out_of_range() {
    assert_invalid(
        "0 0 0 L-31 * *",
        &["day-of-month field `L-31`", "`L-n` takes n from 0 to 30"],
    );
    assert_invalid(
        "0 0 0 L-x * *",
        &["day-of-month field `L-x`", "illegal character `X`"],
    );
    assert_invalid(
        "0 0 0 L- * *",
        &["day-of-month field `L-`", "`L-n` takes n from 0 to 30"],
    );
    assert_valid("0 0 0 L-30 * *");
    assert_valid("0 0 0 L-0 * *");
    assert_valid("0 0 0 l-3 * *");
}

#[test]
fn impossible_dates_never_fire() {
    assert_never_fires("0 0 0 30 2 *");
    assert_never_fires("0 0 0 31 4 *");
    assert_never_fires("0 0 0 31 6 *");
    assert_never_fires("0 0 0 31 4,6,9,11 *");
    assert_never_fires("0 0 0 30 FEB ?");
    assert_never_fires("0 0 0 30-31 2 *");
    // February is never more than 29 days long, so no day is 30 before its last.
    assert_never_fires("0 0 0 L-30 2 *");
    // 29 February does happen, every four years (mostly).
    assert_valid("0 0 0 29 2 *");
    assert_valid("0 0 0 L-28 2 *");
}

#[test]
fn rare_and_impossible_day_combinations() {
    // The fifth Monday is the 29th at the earliest, never three days before a month's end.
    assert_never_fires("0 0 0 L-3 * 1#5");
    // The 2nd is never a month's last Thursday.
    assert_never_fires("*/2 * 2 */3 4L");
    assert_never_fires("0 0 0 L-29 2 *");
    // A Monday 29 February: 2016, 2044, 2072, then 2112 (2100 is not a leap year).
    assert_valid("0 0 0 29 2 MON#5");
    assert_valid("0 0 0 L-0 2 1#5");
    let monday_leap_day = Schedule::cron("0 0 0 29 2 MON").expect("valid");
    let after_2072 = chrono::DateTime::parse_from_rfc3339("2072-03-01T00:00:00Z")
        .expect("an instant")
        .to_utc();
    assert_eq!(
        monday_leap_day
            .next_after(after_2072)
            .map(|t| t.to_rfc3339()),
        Some("2112-02-29T00:00:00+00:00".to_owned())
    );
    assert_eq!(
        monday_leap_day
            .latest_at_or_before(after_2072)
            .map(|t| t.to_rfc3339()),
        Some("2072-02-29T00:00:00+00:00".to_owned())
    );
}

#[test]
fn unknown_zone() {
    let err = Schedule::cron("0 0 0 * * *")
        .expect("valid")
        .in_zone("Mars/Olympus_Mons")
        .expect_err("not an IANA zone");
    assert_eq!(
        err,
        ScheduleError::UnknownZone("Mars/Olympus_Mons".to_owned())
    );
    assert!(err.to_string().contains("IANA"), "{err}");
}

//! The DST policies of a fixed time (`dst_gap`, `dst_overlap`) in four zones whose clocks
//! change differently, with the dates and offsets of the tz data chrono-tz carries:
//!
//! - Europe/Amsterdam: 02:00 -> 03:00 on the last Sunday of March (31 March 2024), 03:00 ->
//!   02:00 on the last Sunday of October (27 October 2024).
//! - America/New_York: 02:00 -> 03:00 on the second Sunday of March (10 March 2024), 02:00
//!   -> 01:00 on the first Sunday of November (3 November 2024).
//! - Africa/Cairo: 00:00 -> 01:00 on the last Friday of April (26 April 2024, 25 April
//!   2025), and at the end of the last Thursday of October 24:00 -> 23:00, so that 23:00 to
//!   24:00 on the Thursday happens twice (31 October 2024, 30 October 2025).
//! - Australia/Lord_Howe, half an hour: 02:00 -> 02:30 on the first Sunday of October (6
//!   October 2024), 02:00 -> 01:30 on the first Sunday of April (7 April 2024).
//!
//! For each: a fixed time inside the gap under `shift` and `skip`, inside the overlap under
//! `first`, `last` and `both`, the days around them unaffected, and an expression that is
//! not a fixed time unaffected by any policy. Every run is an exact UTC instant; each list is
//! checked forward (`upcoming`) and backward (`latest_at_or_before` at and just before each
//! run), so the two directions agree.

use chrono::{DateTime, Duration, TimeZone, Utc};
use tickguard_schedule::{DstGap, DstOverlap, Schedule};

const GAPS: [DstGap; 2] = [DstGap::Shift, DstGap::Skip];
const OVERLAPS: [DstOverlap; 3] = [DstOverlap::First, DstOverlap::Last, DstOverlap::Both];

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("a real instant")
}

fn schedule(expr: &str, zone: &str, gap: DstGap, overlap: DstOverlap) -> Schedule {
    Schedule::cron(expr)
        .and_then(|s| s.in_zone(zone))
        .unwrap_or_else(|e| panic!("`{expr}` in {zone}: {e}"))
        .dst_gap(gap)
        .dst_overlap(overlap)
}

/// The runs of `expr` in `zone` under the policies after `from` are exactly `expected`
/// (forward), and the backward search finds each of them and nothing between them.
#[track_caller]
fn assert_runs(
    expr: &str,
    zone: &str,
    (gap, overlap): (DstGap, DstOverlap),
    from: DateTime<Utc>,
    expected: &[DateTime<Utc>],
) {
    let s = schedule(expr, zone, gap, overlap);
    let tz = s.zone();
    let show = |times: &[DateTime<Utc>]| -> Vec<String> {
        times
            .iter()
            .map(|t| format!("{} ({})", t.to_rfc3339(), t.with_timezone(&tz).to_rfc3339()))
            .collect()
    };
    let got: Vec<_> = s.upcoming(from).take(expected.len()).collect();
    assert_eq!(show(&got), show(expected), "{s}: upcoming after {from}");
    for (i, run) in expected.iter().enumerate() {
        assert_eq!(s.latest_at_or_before(*run), Some(*run), "{s}: at {run}");
        let before = s.latest_at_or_before(*run - Duration::seconds(1));
        match i.checked_sub(1).map(|p| expected[p]) {
            Some(previous) => assert_eq!(before, Some(previous), "{s}: just before {run}"),
            None => assert!(
                before.is_none_or(|b| b <= from),
                "{s}: {before:?} runs between {from} and {run}"
            ),
        }
    }
}

/// Every combination of policies.
fn every_policy() -> impl Iterator<Item = (DstGap, DstOverlap)> {
    GAPS.into_iter()
        .flat_map(|gap| OVERLAPS.into_iter().map(move |overlap| (gap, overlap)))
}

fn gap(gap: DstGap) -> (DstGap, DstOverlap) {
    (gap, DstOverlap::default())
}

fn overlap(overlap: DstOverlap) -> (DstGap, DstOverlap) {
    (DstGap::default(), overlap)
}

// ---------------------------------------------------------------------------------------------
// Europe/Amsterdam: CET +01:00, CEST +02:00
// ---------------------------------------------------------------------------------------------

const AMS: &str = "Europe/Amsterdam";

#[test]
fn amsterdam_gap_shift_runs_at_three() {
    assert_runs(
        "0 30 2 * * *",
        AMS,
        gap(DstGap::Shift),
        utc(2024, 3, 29, 12, 0),
        &[
            utc(2024, 3, 30, 1, 30), // 02:30 CET
            utc(2024, 3, 31, 1, 0),  // 03:00 CEST, the first instant after the gap
            utc(2024, 4, 1, 0, 30),  // 02:30 CEST
        ],
    );
}

#[test]
fn amsterdam_gap_skip_does_not_run_that_day() {
    assert_runs(
        "0 30 2 * * *",
        AMS,
        gap(DstGap::Skip),
        utc(2024, 3, 29, 12, 0),
        &[utc(2024, 3, 30, 1, 30), utc(2024, 4, 1, 0, 30)],
    );
    // From inside the hour before the gap, and from the instant shift would have run at.
    for from in [utc(2024, 3, 31, 0, 59), utc(2024, 3, 31, 1, 0)] {
        assert_runs(
            "0 30 2 * * *",
            AMS,
            gap(DstGap::Skip),
            from,
            &[utc(2024, 4, 1, 0, 30)],
        );
    }
}

#[test]
fn amsterdam_gap_edges() {
    // 02:00 is the first wall clock time the gap takes: inside it.
    assert_runs(
        "0 0 2 * * *",
        AMS,
        gap(DstGap::Skip),
        utc(2024, 3, 30, 12, 0),
        &[utc(2024, 4, 1, 0, 0)],
    );
    // 03:00 is the first one after it: it exists, and runs under either policy.
    for policy in GAPS {
        assert_runs(
            "0 0 3 * * *",
            AMS,
            gap(policy),
            utc(2024, 3, 30, 12, 0),
            &[utc(2024, 3, 31, 1, 0), utc(2024, 4, 1, 1, 0)],
        );
    }
}

#[test]
fn amsterdam_overlap_first_last_both() {
    let day_before = utc(2024, 10, 26, 0, 30); // 02:30 CEST
    let first = utc(2024, 10, 27, 0, 30); // 02:30 CEST
    let second = utc(2024, 10, 27, 1, 30); // 02:30 CET
    let day_after = utc(2024, 10, 28, 1, 30); // 02:30 CET
    let from = utc(2024, 10, 25, 12, 0);
    let expr = "0 30 2 * * *";
    assert_runs(
        expr,
        AMS,
        overlap(DstOverlap::First),
        from,
        &[day_before, first, day_after],
    );
    assert_runs(
        expr,
        AMS,
        overlap(DstOverlap::Last),
        from,
        &[day_before, second, day_after],
    );
    assert_runs(
        expr,
        AMS,
        overlap(DstOverlap::Both),
        from,
        &[day_before, first, second, day_after],
    );
    // Starting between the two occurrences (at the first, in the first pass after it, in
    // the second pass before it), `last` and `both` still have the second ahead.
    for between in [
        first,
        utc(2024, 10, 27, 0, 45),
        utc(2024, 10, 27, 1, 15),
        second - Duration::milliseconds(1),
    ] {
        for policy in [DstOverlap::Last, DstOverlap::Both] {
            assert_runs(expr, AMS, overlap(policy), between, &[second, day_after]);
        }
        assert_runs(expr, AMS, overlap(DstOverlap::First), between, &[day_after]);
    }
    // 02:00 is the first wall clock time the overlap repeats: inside it. 03:00 happens once.
    assert_runs(
        "0 0 2 * * *",
        AMS,
        overlap(DstOverlap::Last),
        utc(2024, 10, 26, 12, 0),
        &[utc(2024, 10, 27, 1, 0), utc(2024, 10, 28, 1, 0)],
    );
    for policy in OVERLAPS {
        assert_runs(
            "0 0 3 * * *",
            AMS,
            overlap(policy),
            utc(2024, 10, 26, 12, 0),
            &[utc(2024, 10, 27, 2, 0), utc(2024, 10, 28, 2, 0)],
        );
    }
}

#[test]
fn amsterdam_not_a_fixed_time_is_unaffected() {
    for policy in every_policy() {
        // The gap takes 02:00 and 02:30 on 31 March: neither runs.
        assert_runs(
            "0 0,30 2 * * *",
            AMS,
            policy,
            utc(2024, 3, 30, 0, 0),
            &[
                utc(2024, 3, 30, 1, 0),
                utc(2024, 3, 30, 1, 30),
                utc(2024, 4, 1, 0, 0),
                utc(2024, 4, 1, 0, 30),
            ],
        );
        // The overlap repeats them on 27 October: both passes run.
        assert_runs(
            "0 0,30 2 * * *",
            AMS,
            policy,
            utc(2024, 10, 26, 12, 0),
            &[
                utc(2024, 10, 27, 0, 0),
                utc(2024, 10, 27, 0, 30),
                utc(2024, 10, 27, 1, 0),
                utc(2024, 10, 27, 1, 30),
                utc(2024, 10, 28, 1, 0),
            ],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// America/New_York: EST -05:00, EDT -04:00
// ---------------------------------------------------------------------------------------------

const NY: &str = "America/New_York";

#[test]
fn new_york_gap_shift_and_skip() {
    let day_before = utc(2024, 3, 9, 7, 30); // 02:30 EST
    let day_after = utc(2024, 3, 11, 6, 30); // 02:30 EDT
    let from = utc(2024, 3, 8, 12, 0);
    assert_runs(
        "0 30 2 * * *",
        NY,
        gap(DstGap::Shift),
        from,
        &[day_before, utc(2024, 3, 10, 7, 0), day_after], // 03:00 EDT
    );
    assert_runs(
        "0 30 2 * * *",
        NY,
        gap(DstGap::Skip),
        from,
        &[day_before, day_after],
    );
}

#[test]
fn new_york_overlap_first_last_both() {
    let day_before = utc(2024, 11, 2, 5, 30); // 01:30 EDT
    let first = utc(2024, 11, 3, 5, 30); // 01:30 EDT
    let second = utc(2024, 11, 3, 6, 30); // 01:30 EST
    let day_after = utc(2024, 11, 4, 6, 30); // 01:30 EST
    let from = utc(2024, 11, 1, 12, 0);
    let expr = "0 30 1 * * *";
    assert_runs(
        expr,
        NY,
        overlap(DstOverlap::First),
        from,
        &[day_before, first, day_after],
    );
    assert_runs(
        expr,
        NY,
        overlap(DstOverlap::Last),
        from,
        &[day_before, second, day_after],
    );
    assert_runs(
        expr,
        NY,
        overlap(DstOverlap::Both),
        from,
        &[day_before, first, second, day_after],
    );
}

#[test]
fn new_york_not_a_fixed_time_is_unaffected() {
    for policy in every_policy() {
        assert_runs(
            "0 0,30 2 * * *",
            NY,
            policy,
            utc(2024, 3, 9, 12, 0),
            &[utc(2024, 3, 11, 6, 0), utc(2024, 3, 11, 6, 30)],
        );
        assert_runs(
            "0 0,30 1 * * *",
            NY,
            policy,
            utc(2024, 11, 2, 12, 0),
            &[
                utc(2024, 11, 3, 5, 0),
                utc(2024, 11, 3, 5, 30),
                utc(2024, 11, 3, 6, 0),
                utc(2024, 11, 3, 6, 30),
                utc(2024, 11, 4, 6, 0),
            ],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Africa/Cairo: EET +02:00, EEST +03:00; the gap takes midnight, the overlap the day's last hour
// ---------------------------------------------------------------------------------------------

const CAIRO: &str = "Africa/Cairo";

#[test]
fn cairo_gap_shift_and_skip() {
    // (year, gap day): 00:00 -> 01:00 on the last Friday of April.
    for (y, d) in [(2024, 26), (2025, 25)] {
        let day_before = utc(y, 4, d - 2, 22, 30); // 00:30 EET on the day before
        let day_after = utc(y, 4, d, 21, 30); // 00:30 EEST on the day after
        let from = utc(y, 4, d - 2, 12, 0);
        for expr in ["0 30 0 * * *", "0 30 0 * 4 FRI-SAT,THU"] {
            assert_runs(
                expr,
                CAIRO,
                gap(DstGap::Shift),
                from,
                &[day_before, utc(y, 4, d - 1, 22, 0), day_after], // 01:00 EEST
            );
            assert_runs(
                expr,
                CAIRO,
                gap(DstGap::Skip),
                from,
                &[day_before, day_after],
            );
        }
        // Midnight itself is in the gap.
        let midnights = [utc(y, 4, d - 2, 22, 0), utc(y, 4, d, 21, 0)];
        for expr in ["0 0 0 * * *", "@daily"] {
            assert_runs(
                expr,
                CAIRO,
                gap(DstGap::Shift),
                from,
                &[midnights[0], utc(y, 4, d - 1, 22, 0), midnights[1]],
            );
            assert_runs(expr, CAIRO, gap(DstGap::Skip), from, &midnights);
        }
    }
}

#[test]
fn cairo_overlap_first_last_both() {
    // (year, overlap day): 23:00 to 24:00 happens twice on the last Thursday of October.
    for (y, d) in [(2024, 31), (2025, 30)] {
        let day_before = utc(y, 10, d - 1, 20, 30); // 23:30 EEST
        let first = utc(y, 10, d, 20, 30); // 23:30 EEST
        let second = utc(y, 10, d, 21, 30); // 23:30 EET
        let day_after = if d == 31 {
            utc(y, 11, 1, 21, 30)
        } else {
            utc(y, 10, d + 1, 21, 30)
        }; // 23:30 EET
        let from = utc(y, 10, d - 1, 12, 0);
        let expr = "0 30 23 * * *";
        assert_runs(
            expr,
            CAIRO,
            overlap(DstOverlap::First),
            from,
            &[day_before, first, day_after],
        );
        assert_runs(
            expr,
            CAIRO,
            overlap(DstOverlap::Last),
            from,
            &[day_before, second, day_after],
        );
        assert_runs(
            expr,
            CAIRO,
            overlap(DstOverlap::Both),
            from,
            &[day_before, first, second, day_after],
        );
        // A fixed time on the Thursday only: its second occurrence is still that Thursday.
        assert_runs(
            "0 30 23 * 10 THU",
            CAIRO,
            overlap(DstOverlap::Both),
            from,
            &[first, second],
        );
    }
}

#[test]
fn cairo_not_a_fixed_time_is_unaffected() {
    for policy in every_policy() {
        assert_runs(
            "0 0,30 0 * * *",
            CAIRO,
            policy,
            utc(2024, 4, 25, 12, 0),
            &[utc(2024, 4, 26, 21, 0), utc(2024, 4, 26, 21, 30)],
        );
        assert_runs(
            "0 0,30 23 * * *",
            CAIRO,
            policy,
            utc(2024, 10, 31, 12, 0),
            &[
                utc(2024, 10, 31, 20, 0),
                utc(2024, 10, 31, 20, 30),
                utc(2024, 10, 31, 21, 0),
                utc(2024, 10, 31, 21, 30),
                utc(2024, 11, 1, 21, 0),
            ],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Australia/Lord_Howe: +10:30 in winter, +11:00 in summer; the clocks move half an hour
// ---------------------------------------------------------------------------------------------

const LORD_HOWE: &str = "Australia/Lord_Howe";

#[test]
fn lord_howe_gap_shift_and_skip() {
    let day_before = utc(2024, 10, 4, 15, 45); // 02:15 +10:30
    let day_after = utc(2024, 10, 6, 15, 15); // 02:15 +11:00
    let from = utc(2024, 10, 4, 12, 0);
    assert_runs(
        "0 15 2 * * *",
        LORD_HOWE,
        gap(DstGap::Shift),
        from,
        &[day_before, utc(2024, 10, 5, 15, 30), day_after], // 02:30 +11:00
    );
    assert_runs(
        "0 15 2 * * *",
        LORD_HOWE,
        gap(DstGap::Skip),
        from,
        &[day_before, day_after],
    );
}

#[test]
fn lord_howe_overlap_first_last_both() {
    let day_before = utc(2024, 4, 5, 14, 45); // 01:45 +11:00
    let first = utc(2024, 4, 6, 14, 45); // 01:45 +11:00
    let second = utc(2024, 4, 6, 15, 15); // 01:45 +10:30
    let day_after = utc(2024, 4, 7, 15, 15); // 01:45 +10:30
    let from = utc(2024, 4, 5, 12, 0);
    let expr = "0 45 1 * * *";
    assert_runs(
        expr,
        LORD_HOWE,
        overlap(DstOverlap::First),
        from,
        &[day_before, first, day_after],
    );
    assert_runs(
        expr,
        LORD_HOWE,
        overlap(DstOverlap::Last),
        from,
        &[day_before, second, day_after],
    );
    assert_runs(
        expr,
        LORD_HOWE,
        overlap(DstOverlap::Both),
        from,
        &[day_before, first, second, day_after],
    );
}

#[test]
fn lord_howe_not_a_fixed_time_is_unaffected() {
    for policy in every_policy() {
        assert_runs(
            "0 0,15 2 * * *",
            LORD_HOWE,
            policy,
            utc(2024, 10, 5, 12, 0),
            &[utc(2024, 10, 6, 15, 0), utc(2024, 10, 6, 15, 15)],
        );
        assert_runs(
            "0 30,45 1 * * *",
            LORD_HOWE,
            policy,
            utc(2024, 4, 6, 12, 0),
            &[
                utc(2024, 4, 6, 14, 30),
                utc(2024, 4, 6, 14, 45),
                utc(2024, 4, 6, 15, 0),
                utc(2024, 4, 6, 15, 15),
                utc(2024, 4, 7, 15, 0),
            ],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Beyond one zone
// ---------------------------------------------------------------------------------------------

/// A fixed time whose every matching day is a gap day does not run under `skip`. chrono-tz
/// lists Amsterdam's clock changes up to 2099, so 02:30 on the last Sunday of March is in
/// the gap every year from 1981 to 2099 and exists in 2100. A search gives up after 100
/// dropped days in a row, and says the schedule never runs again (`None`) rather than look
/// forever.
#[test]
fn a_fixed_time_always_in_the_gap_does_not_run_under_skip() {
    let expr = "0 30 2 ? 3 SUNL";
    let s = schedule(expr, AMS, DstGap::Skip, DstOverlap::First);
    assert_eq!(
        s.next_after(utc(2024, 1, 1, 0, 0)),
        Some(utc(2100, 3, 28, 1, 30))
    );
    assert_eq!(s.next_after(utc(1990, 1, 1, 0, 0)), None);
    // 1980 changed on 6 April: 30 March, its last Sunday, was an ordinary day.
    assert_eq!(
        s.latest_at_or_before(utc(2024, 1, 1, 0, 0)),
        Some(utc(1980, 3, 30, 1, 30))
    );
    assert_eq!(s.latest_at_or_before(utc(2099, 12, 31, 0, 0)), None);
    let shifted = schedule(expr, AMS, DstGap::Shift, DstOverlap::First);
    assert_eq!(
        shifted.next_after(utc(2024, 1, 1, 0, 0)),
        Some(utc(2024, 3, 31, 1, 0))
    );
}

/// Policies on a schedule without DST (UTC, fixed rates) change nothing.
#[test]
fn policies_without_dst_change_nothing() {
    let from = utc(2024, 3, 30, 12, 0);
    let plain = Schedule::cron("0 30 2 * * *").expect("a valid expression");
    for (gap, overlap) in every_policy() {
        let s = plain.clone().dst_gap(gap).dst_overlap(overlap);
        assert!(
            plain.upcoming(from).take(5).eq(s.upcoming(from).take(5)),
            "{s}"
        );
    }
    let every = Schedule::every(std::time::Duration::from_secs(60)).expect("a valid period");
    let with = every
        .clone()
        .dst_gap(DstGap::Skip)
        .dst_overlap(DstOverlap::Both);
    assert_eq!(with, every, "a fixed rate has no DST policy");
}

//! Daylight saving time: croner's own DST tests (`tests/dst_gap_backwards.rs`,
//! `tests/dst_gap_hour_before.rs` and `tests/dst_overlap.rs` in croner 4.0.3), ported to
//! `Schedule::next_after` where they concern forward search, and our documented policy
//! under the default `dst_gap = "shift"` and `dst_overlap = "first"` (the other policies are
//! in `conformance_dst_policies.rs`):
//!
//! - a fixed time in a spring-forward gap fires once, at the first valid instant after it;
//! - a fixed time in a fall-back overlap fires once, at its first occurrence;
//! - an interval expression fires at every matching instant, in both passes of an overlap.
//!
//! Each ported test names its croner original in a `// croner: <file>::<test>` comment.
//! croner's backward-only tests (`find_previous_occurrence`, `iter_before`) are not ported:
//! `next_after` only searches forward. Where a backward test has a forward mirror image
//! (the same gap, crossed the other way) that mirror is ported instead, and says so.

use std::sync::mpsc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use tickguard_schedule::Schedule;

fn zone(name: &str) -> Tz {
    name.parse()
        .unwrap_or_else(|e| panic!("unknown zone {name}: {e}"))
}

fn schedule(expr: &str, zone_name: &str) -> Schedule {
    Schedule::cron(expr)
        .and_then(|s| s.in_zone(zone_name))
        .unwrap_or_else(|e| panic!("`{expr}` in {zone_name}: {e}"))
}

/// A wall clock time that happens exactly once in `tz`.
#[track_caller]
fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Tz> {
    match tz.with_ymd_and_hms(y, mo, d, h, mi, s) {
        LocalResult::Single(t) => t,
        other => panic!("{y}-{mo}-{d} {h}:{mi}:{s} is not unique in {tz}: {other:?}"),
    }
}

#[derive(Clone, Copy, Debug)]
enum Pass {
    First,
    Second,
}

/// A wall clock time that happens twice in `tz`, in the chosen pass.
#[track_caller]
fn repeated(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32, pass: Pass) -> DateTime<Tz> {
    match tz.with_ymd_and_hms(y, mo, d, h, mi, 0) {
        LocalResult::Ambiguous(first, second) => match pass {
            Pass::First => first,
            Pass::Second => second,
        },
        other => panic!("{y}-{mo}-{d} {h}:{mi} must happen twice in {tz}: {other:?}"),
    }
}

/// The first `n` fire times strictly after `from`, on `from`'s wall clock.
fn fires(s: &Schedule, from: DateTime<Tz>, n: usize) -> Vec<DateTime<Tz>> {
    let tz = from.timezone();
    s.upcoming(from.with_timezone(&Utc))
        .take(n)
        .map(|t| t.with_timezone(&tz))
        .collect()
}

/// Fire times as RFC 3339 text, so a failure shows wall clock and offset.
fn text(times: &[DateTime<Tz>]) -> Vec<String> {
    times.iter().map(DateTime::to_rfc3339).collect()
}

#[track_caller]
fn assert_fires(s: &Schedule, from: DateTime<Tz>, expected: &[&str]) {
    assert_eq!(
        text(&fires(s, from, expected.len())),
        expected,
        "{s}, after {from}"
    );
}

// ---------------------------------------------------------------------------------------------
// croner: dst_gap_backwards.rs (Europe/Stockholm jumps 02:00 -> 03:00 on 30 March 2025)
// ---------------------------------------------------------------------------------------------

// croner: dst_gap_backwards.rs::fixed_time_gap_search_uses_the_post_gap_instant
// Forward mirror: croner searches backward and finds the gap day's run at 03:00; forward, the
// run after the previous day's 02:30 is that same 03:00, and the one after it is the next
// day's 02:30.
#[test]
fn fixed_time_gap_search_uses_the_post_gap_instant() {
    let sto = zone("Europe/Stockholm");
    let s = schedule("0 30 2 * * *", "Europe/Stockholm");
    assert_fires(
        &s,
        at(sto, 2025, 3, 29, 2, 30, 0),
        &["2025-03-30T03:00:00+02:00", "2025-03-31T02:30:00+02:00"],
    );
}

// croner: dst_gap_backwards.rs::backward_iteration_crosses_the_gap_without_inventing_times
// Forward mirror: every minute across the gap goes 01:58, 01:59, 03:00, 03:01, inventing no
// 02:xx minute and skipping no real one.
#[test]
fn forward_iteration_crosses_the_gap_without_inventing_times() {
    let sto = zone("Europe/Stockholm");
    let s = schedule("0 * * * * *", "Europe/Stockholm");
    let got = fires(&s, at(sto, 2025, 3, 30, 1, 57, 30), 4);
    assert_eq!(
        text(&got),
        [
            "2025-03-30T01:58:00+01:00",
            "2025-03-30T01:59:00+01:00",
            "2025-03-30T03:00:00+02:00",
            "2025-03-30T03:01:00+02:00",
        ]
    );
    // In elapsed time the minutes are evenly spaced: the gap is an hour of wall clock only.
    for pair in got.windows(2) {
        assert_eq!(pair[1] - pair[0], Duration::minutes(1));
    }
}

// croner: dst_gap_backwards.rs::a_gap_across_midnight_cannot_trap_a_backward_search
// (the forward half). On 30 March 1919 Toronto's clocks jumped from 23:30 to 00:30 on the
// 31st, so 23:45 on 30 March did not exist that year; the search must neither hang nor
// invent it. croner expects 23:45 on 30 March 1920, and so do we.
// NOTE: read literally, our policy ("a fixed time in a gap fires at the first valid instant
// after it") would carry the 1919 run to 00:30 on 31 March. croner drops it instead, because
// that instant falls on a day the expression does not match. This only arises for a gap that
// spans midnight (rare; historical rules such as this one); it is listed in the report.
#[test]
fn a_gap_across_midnight_cannot_trap_a_forward_search() {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let toronto = zone("America/Toronto");
        let s = schedule("0 45 23 30 3 *", "America/Toronto");
        let from = at(toronto, 1919, 3, 25, 12, 0, 0);
        sender.send(fires(&s, from, 1)).ok();
    });
    let got = receiver
        .recv_timeout(StdDuration::from_secs(30))
        .expect("timed out: the search appears trapped in the midnight-crossing gap");
    let toronto = zone("America/Toronto");
    assert_eq!(got, [at(toronto, 1920, 3, 30, 23, 45, 0)]);
}

// ---------------------------------------------------------------------------------------------
// croner: dst_gap_hour_before.rs (a job in the hour before a gap must not also run after it)
// ---------------------------------------------------------------------------------------------

// croner: dst_gap_hour_before.rs::daily_midnight_runs_once_on_spring_forward_day
// Europe/London jumps 01:00 -> 02:00 on 29 March 2026.
#[test]
fn daily_midnight_runs_once_on_spring_forward_day() {
    let london = zone("Europe/London");
    let s = schedule("0 0 * * *", "Europe/London");
    assert_fires(
        &s,
        at(london, 2026, 3, 28, 12, 0, 0),
        &[
            "2026-03-29T00:00:00+00:00",
            "2026-03-30T00:00:00+01:00",
            "2026-03-31T00:00:00+01:00",
        ],
    );
}

// croner: dst_gap_hour_before.rs::start_in_hour_before_gap_moves_to_next_day
#[test]
fn start_in_hour_before_gap_moves_to_next_day() {
    let london = zone("Europe/London");
    let s = schedule("0 0 * * *", "Europe/London");
    assert_fires(
        &s,
        at(london, 2026, 3, 29, 0, 45, 0),
        &["2026-03-30T00:00:00+01:00"],
    );
}

// croner: dst_gap_hour_before.rs::job_in_hour_before_gap_with_seconds_runs_once
// America/Los_Angeles jumps 02:00 -> 03:00 on 8 March 2026; 01:00 is the hour before.
#[test]
fn job_in_hour_before_gap_with_seconds_runs_once() {
    let la = zone("America/Los_Angeles");
    let s = schedule("0 0 1 * * *", "America/Los_Angeles");
    assert_fires(
        &s,
        at(la, 2026, 3, 7, 12, 0, 0),
        &[
            "2026-03-08T01:00:00-08:00",
            "2026-03-09T01:00:00-07:00",
            "2026-03-10T01:00:00-07:00",
        ],
    );
}

// croner: dst_gap_hour_before.rs::job_scheduled_inside_gap_still_runs_after_it
#[test]
fn job_scheduled_inside_gap_still_runs_after_it() {
    let london = zone("Europe/London");
    let s = schedule("0 30 1 * * *", "Europe/London");
    assert_fires(
        &s,
        at(london, 2026, 3, 29, 0, 45, 0),
        &[
            // 01:30 does not exist: the first valid instant after the gap, once.
            "2026-03-29T02:00:00+01:00",
            "2026-03-30T01:30:00+01:00",
        ],
    );
}

// croner: dst_gap_hour_before.rs::backward_search_skips_post_gap_instant — not ported:
// backward search only.

// ---------------------------------------------------------------------------------------------
// croner: dst_overlap.rs (a repeated hour, in zones that shape it differently)
// ---------------------------------------------------------------------------------------------

struct Overlap {
    name: &'static str,
    y: i32,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
}

impl Overlap {
    fn at(&self, pass: Pass) -> DateTime<Tz> {
        repeated(
            zone(self.name),
            self.y,
            self.mo,
            self.d,
            self.h,
            self.mi,
            pass,
        )
    }
}

/// Europe/Paris repeats a whole hour; Australia/Lord_Howe repeats half an hour;
/// Pacific/Chatham repeats an hour at a +13:45/+12:45 offset.
fn overlaps() -> [Overlap; 3] {
    [
        Overlap {
            name: "Europe/Paris",
            y: 2024,
            mo: 10,
            d: 27,
            h: 2,
            mi: 30,
        },
        Overlap {
            name: "Australia/Lord_Howe",
            y: 2024,
            mo: 4,
            d: 7,
            h: 1,
            mi: 40,
        },
        Overlap {
            name: "Pacific/Chatham",
            y: 2024,
            mo: 4,
            d: 7,
            h: 3,
            mi: 20,
        },
    ]
}

// croner: dst_overlap.rs::chrono_search_never_answers_with_a_time_it_has_passed (forward half)
#[test]
fn search_never_answers_with_a_time_it_has_passed() {
    for overlap in overlaps() {
        let s = schedule("* * * * *", overlap.name);
        for pass in [Pass::First, Pass::Second] {
            let from = overlap.at(pass);
            let next = fires(&s, from, 1)[0];
            assert!(
                next > from,
                "{}: after {from} answered {next}",
                overlap.name
            );
            assert_eq!(
                next - from,
                Duration::minutes(1),
                "{}: after {from}",
                overlap.name
            );
        }
    }
}

// croner: dst_overlap.rs::chrono_iterators_run_one_way_and_cover_every_instant_once
// (forward half; croner compares with a backward run, we check elapsed time instead: an
// every-minute schedule through an overlap is one fire per elapsed minute, no gaps, no
// repeats, no reversals).
#[test]
fn forward_run_is_one_way_and_covers_every_instant_once() {
    for overlap in overlaps() {
        let s = schedule("* * * * *", overlap.name);
        let run = fires(&s, overlap.at(Pass::First), 200);
        assert_eq!(run.len(), 200);
        for pair in run.windows(2) {
            assert_eq!(
                pair[1] - pair[0],
                Duration::minutes(1),
                "{}: from {} to {}",
                overlap.name,
                pair[0],
                pair[1]
            );
        }
    }
}

// croner: dst_overlap.rs::chrono_a_duplicated_minute_comes_round_exactly_twice
#[test]
fn a_duplicated_minute_comes_round_exactly_twice() {
    for overlap in overlaps() {
        let s = schedule("* * * * *", overlap.name);
        let first = overlap.at(Pass::First);
        let wanted: NaiveDateTime = first.naive_local();
        // croner iterates inclusively from `first`; `next_after` is exclusive, so start a
        // second earlier.
        let hits = fires(&s, first - Duration::seconds(1), 201)
            .iter()
            .filter(|t| t.naive_local() == wanted)
            .count();
        assert_eq!(
            hits, 2,
            "{}: {wanted} came round {hits} times",
            overlap.name
        );
    }
}

// croner: dst_overlap.rs::chrono_a_match_in_a_later_overlap_takes_its_own_real_order
#[test]
fn a_match_in_a_later_overlap_takes_its_own_real_order() {
    let paris = zone("Europe/Paris");
    let s = schedule("*/30 2 26-27 10 *", "Europe/Paris");
    // 02:45 in the second pass: 02:00 and 02:30 of both passes are behind.
    let from = repeated(paris, 2024, 10, 27, 2, 45, Pass::Second);
    let expected = repeated(paris, 2025, 10, 26, 2, 0, Pass::First);
    assert_eq!(fires(&s, from, 1), [expected]);
}

// ---------------------------------------------------------------------------------------------
// Our policy, beyond croner's own tests
// ---------------------------------------------------------------------------------------------

/// The crate-level doc example: 02:30 in Amsterdam on 31 March 2024 fires at 03:00, once.
#[test]
fn policy_fixed_time_in_gap_fires_once_after_it() {
    let ams = zone("Europe/Amsterdam");
    let s = schedule("0 30 2 * * *", "Europe/Amsterdam");
    assert_fires(
        &s,
        at(ams, 2024, 3, 30, 12, 0, 0),
        &["2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"],
    );
    // Starting inside the hour before the gap, or at the carried instant itself.
    assert_fires(
        &s,
        at(ams, 2024, 3, 31, 1, 59, 59),
        &["2024-03-31T03:00:00+02:00"],
    );
    assert_fires(
        &s,
        at(ams, 2024, 3, 31, 3, 0, 0),
        &["2024-04-01T02:30:00+02:00"],
    );
}

/// Midnight that does not exist: Africa/Cairo jumps 00:00 -> 01:00 on 25 April 2025, and
/// America/Sao_Paulo did on 4 November 2018. A daily job runs at 01:00 that day, once.
#[test]
fn policy_fixed_midnight_in_gap_fires_once_after_it() {
    let cairo = zone("Africa/Cairo");
    for expr in ["0 0 0 * * *", "@daily", "@midnight", "0 0 0 25 4 *"] {
        let s = schedule(expr, "Africa/Cairo");
        let got = text(&fires(&s, at(cairo, 2025, 4, 24, 21, 10, 20), 1));
        assert_eq!(got, ["2025-04-25T01:00:00+03:00"], "`{expr}`");
    }
    let s = schedule("0 0 0 * * *", "Africa/Cairo");
    assert_fires(
        &s,
        at(cairo, 2025, 4, 24, 21, 10, 20),
        &[
            "2025-04-25T01:00:00+03:00",
            "2025-04-26T00:00:00+03:00",
            "2025-04-27T00:00:00+03:00",
        ],
    );

    // `L-n` lands on its day through a filter over croner's search; the midnight gap must
    // move it to 01:00 like any other fixed time, not lose the month.
    let s = schedule("0 0 0 L-5 * *", "Africa/Cairo");
    assert_fires(
        &s,
        at(cairo, 2025, 4, 1, 12, 30, 0),
        &["2025-04-25T01:00:00+03:00", "2025-05-26T00:00:00+03:00"],
    );

    let sao = zone("America/Sao_Paulo");
    let s = schedule("0 0 0 L-26 11 *", "America/Sao_Paulo");
    assert_fires(
        &s,
        at(sao, 2018, 11, 1, 0, 0, 0),
        &["2018-11-04T01:00:00-02:00"],
    );
    let s = schedule("0 0 0 * * *", "America/Sao_Paulo");
    assert_fires(
        &s,
        at(sao, 2018, 11, 3, 12, 0, 0),
        &["2018-11-04T01:00:00-02:00", "2018-11-05T00:00:00-02:00"],
    );
}

/// An interval expression skips wall clock times that do not exist and keeps its rhythm in
/// elapsed time: every 15 minutes goes 01:45 -> 03:00, fifteen real minutes apart.
#[test]
fn policy_interval_skips_nonexistent_times() {
    let ams = zone("Europe/Amsterdam");
    let s = schedule("0 */15 * * * *", "Europe/Amsterdam");
    let got = fires(&s, at(ams, 2024, 3, 31, 1, 40, 0), 3);
    assert_eq!(
        text(&got),
        [
            "2024-03-31T01:45:00+01:00",
            "2024-03-31T03:00:00+02:00",
            "2024-03-31T03:15:00+02:00",
        ]
    );
    for pair in got.windows(2) {
        assert_eq!(pair[1] - pair[0], Duration::minutes(15));
    }
}

/// A fixed time in the repeated hour fires once, at its first occurrence, wherever the search
/// starts: before the overlap, between the two occurrences, or in the second pass.
#[test]
fn policy_fixed_time_in_overlap_fires_once_first_occurrence() {
    let paris = zone("Europe/Paris");
    let s = schedule("0 30 2 * * *", "Europe/Paris");
    // Paris repeats 02:00-03:00 on 27 October 2024 (+02:00, then +01:00).
    assert_fires(
        &s,
        at(paris, 2024, 10, 26, 12, 0, 0),
        &["2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"],
    );
    for from in [
        repeated(paris, 2024, 10, 27, 2, 30, Pass::First),
        repeated(paris, 2024, 10, 27, 2, 45, Pass::First),
        repeated(paris, 2024, 10, 27, 2, 15, Pass::Second),
        repeated(paris, 2024, 10, 27, 2, 45, Pass::Second),
    ] {
        assert_fires(&s, from, &["2024-10-28T02:30:00+01:00"]);
    }
    // Cairo's overlap is the last hour of the day: 31 October 2025 00:00 (+03:00) becomes
    // 30 October 23:00 (+02:00), so 23:30 on the 30th happens twice.
    let cairo = zone("Africa/Cairo");
    let s = schedule("0 30 23 * * *", "Africa/Cairo");
    assert_fires(
        &s,
        at(cairo, 2025, 10, 30, 12, 0, 0),
        &["2025-10-30T23:30:00+03:00", "2025-10-31T23:30:00+02:00"],
    );
}

/// An interval expression fires in both passes of the repeated hour, as elapsed time would
/// have it.
#[test]
fn policy_interval_fires_in_both_passes_of_overlap() {
    let paris = zone("Europe/Paris");
    let s = schedule("0 */15 * * * *", "Europe/Paris");
    let got = fires(&s, at(paris, 2024, 10, 27, 1, 50, 0), 10);
    assert_eq!(
        text(&got),
        [
            "2024-10-27T02:00:00+02:00",
            "2024-10-27T02:15:00+02:00",
            "2024-10-27T02:30:00+02:00",
            "2024-10-27T02:45:00+02:00",
            "2024-10-27T02:00:00+01:00",
            "2024-10-27T02:15:00+01:00",
            "2024-10-27T02:30:00+01:00",
            "2024-10-27T02:45:00+01:00",
            "2024-10-27T03:00:00+01:00",
            "2024-10-27T03:15:00+01:00",
        ]
    );
    // Starting between the passes, the second pass still lies ahead.
    assert_fires(
        &s,
        repeated(paris, 2024, 10, 27, 2, 50, Pass::First),
        &["2024-10-27T02:00:00+01:00"],
    );

    // A restricted hour is an interval too when the minute steps: both passes of 02:xx.
    let s = schedule("0 */30 2 * * *", "Europe/Paris");
    assert_fires(
        &s,
        at(paris, 2024, 10, 27, 1, 0, 0),
        &[
            "2024-10-27T02:00:00+02:00",
            "2024-10-27T02:30:00+02:00",
            "2024-10-27T02:00:00+01:00",
            "2024-10-27T02:30:00+01:00",
            "2024-10-28T02:00:00+01:00",
        ],
    );

    // Cairo, hourly through the repeated 23:00.
    let cairo = zone("Africa/Cairo");
    let s = schedule("0 0 * * * *", "Africa/Cairo");
    assert_fires(
        &s,
        at(cairo, 2025, 10, 30, 22, 30, 0),
        &[
            "2025-10-30T23:00:00+03:00",
            "2025-10-30T23:00:00+02:00",
            "2025-10-31T00:00:00+02:00",
        ],
    );
}

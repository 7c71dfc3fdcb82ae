//! Fuzzes the cron parser and, on what parses, the search for fire times.
//!
//! Input layout: byte 0 picks a zone, bytes 1..9 an instant (seconds, folded into the years
//! 1970..2200), the rest is the expression (lossy UTF-8, so every input reaches the parser).
//! Beyond "no panic", it checks what must hold for any expression the parser accepts:
//! `next_after` is strictly increasing, `latest_at_or_before` is at or before its argument
//! and finds a fire time `next_after` returned, and the expression re-parses from its text.
#![no_main]

use chrono::{DateTime, Duration, Utc};
use libfuzzer_sys::fuzz_target;
use tickguard_schedule::{Cron, Schedule};

const ZONES: [&str; 5] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
];
/// 1970-01-01 to 2200-01-01, in seconds.
const SPAN: u64 = 7_258_118_400;
/// Fire times looked at per input: enough to cross a DST change for hourly expressions,
/// few enough to keep each run fast.
const STEPS: usize = 8;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        let _ = Cron::parse(&String::from_utf8_lossy(data));
        return;
    }
    let zone = ZONES[usize::from(data[0]) % ZONES.len()];
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&data[1..9]);
    let secs = u64::from_le_bytes(seed) % SPAN;
    let expr = String::from_utf8_lossy(&data[9..]);

    let Ok(cron) = Cron::parse(&expr) else {
        return;
    };
    // The text an expression keeps is one the parser accepts again, as the same expression.
    let again = Cron::parse(cron.as_str()).expect("an accepted expression's text re-parses");
    assert_eq!(again, cron);

    let schedule = Schedule::cron(&expr)
        .expect("Schedule::cron accepts what Cron::parse accepts")
        .in_zone(zone)
        .expect("a known zone");
    let Some(t) = DateTime::<Utc>::from_timestamp(secs as i64, 0) else {
        return;
    };

    let mut prev = t;
    for _ in 0..STEPS {
        let Some(next) = schedule.next_after(prev) else {
            break;
        };
        assert!(
            next > prev,
            "{expr:?} in {zone}: next_after({prev}) = {next}"
        );
        assert_eq!(
            schedule.latest_at_or_before(next),
            Some(next),
            "{expr:?} in {zone}: a fire time is the latest at or before itself"
        );
        assert!(
            schedule
                .latest_at_or_before(next - Duration::seconds(1))
                .is_none_or(|p| p <= prev),
            "{expr:?} in {zone}: a fire time between {prev} and {next}"
        );
        prev = next;
    }
    if let Some(p) = schedule.latest_at_or_before(t) {
        assert!(p <= t, "{expr:?} in {zone}: latest_at_or_before({t}) = {p}");
    }
});

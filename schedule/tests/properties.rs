//! Property tests of the cron schedule (proptest).
//!
//! Expressions are built from field generators (`*`, `?`, numbers, names, ranges, steps,
//! lists, `L`, `L-n`, `nW`, `LW`, `dL`, `d#n`, five-field forms, macros) together with what
//! each field means, so every generated expression carries its own answer. An oracle written
//! here, independently of the crate, walks the zone's clock second by second (see [`Oracle`])
//! and lists the fire times in a bounded window; `next_after`, `upcoming` and
//! `latest_at_or_before` must agree with it exactly.
//!
//! Properties:
//! - `generated_expressions_parse_unless_no_day_matches`: a generated expression is accepted,
//!   or rejected as never firing exactly when no day of a whole 400-year Gregorian cycle
//!   matches its date fields.
//! - `fire_times_match_the_oracle`: for any DST policies (`dst_gap`, `dst_overlap`), from a
//!   start instant (anywhere in 2000..2100, shortly before the crate's own answer, or around
//!   a DST change of the zone), the successive
//!   `next_after` answers are strictly increasing and equal the oracle's fire times in the
//!   window; `latest_at_or_before` equals the oracle's last fire time at or before the start;
//!   and the two are consistent with each other.
//! - `fire_times_around_dst_changes_match_the_oracle`: the same, for times between 00:00 and
//!   04:00 (mostly fixed times, spelled `2`, `2-2`, `2,2` or `2/22`) from starts near a DST
//!   change, where the gap and overlap rules below decide, under every policy.
//! - `upcoming_is_strictly_increasing`: a longer run of `upcoming` never stalls or goes back.
//! - `matches_agrees_with_the_fields`: `Cron::matches` on a UTC wall clock equals the fields'
//!   meaning.
//! - `schedules_round_trip_through_their_text`: a schedule parsed back from its `Display`
//!   (`FromStr`), for generated cron expressions in every zone under any DST policies, and
//!   for fixed rates and delays of any length, is the same schedule.
//! - `parser_never_panics_*`: on arbitrary strings, strings over the cron alphabet, and
//!   generated expressions with one character changed; what parses is searched once each
//!   way, and in UTC both answers lie within 400 years (a Gregorian cycle) of the start.
//!
//! `latest_at_or_before` is asked about whole seconds only: with a fraction of a second it
//! has a known bug, reproduced by the ignored test at the end of this file.
//!
//! Knobs (environment variables):
//! - `PROPTEST_CASES`: cases per property, overriding the defaults (128 to 512, set per
//!   `proptest!` block below), which keep `cargo test -p tickguard-schedule --test properties`
//!   around 15 s in debug mode on two cores. For a deeper run:
//!   `PROPTEST_CASES=20000 cargo test --release -p tickguard-schedule --test properties`.
//! - `TICKGUARD_ORACLE_HOURS`: the oracle's window in hours, each way from the start instant
//!   (default 96). Its cost grows linearly.
//! - proptest's own: `PROPTEST_RNG_SEED` to replay a run, `PROPTEST_MAX_SHRINK_ITERS`, ...
//!
//! Rules the oracle checks (the crate docs' DST policy, made precise):
//! - Fire times are whole seconds whose wall clock in the zone matches every field. Day of
//!   month and day of week must both match (Spring's rule); `*` and `?` match every day.
//! - `L` is the last day of the month, `L-n` the day `n` before it (none if the month is too
//!   short), `LW` the last Monday..Friday, `nW` the Monday..Friday nearest day `n` within the
//!   month (a Saturday 1st moves to Monday 3rd, a Sunday last day to Friday before it; a
//!   month without day `n` has no `nW` day). `dL` is the last weekday `d` of the month, `d#n`
//!   its `n`-th. Weekdays `0` and `7` are Sunday. `a/n` is `a-max/n`.
//! - Spring-forward gap: wall-clock times that do not occur do not fire, except for a fixed
//!   time under `dst_gap = shift` (the default), which fires once at the first instant after
//!   the gap, if its day matches; under `skip` it does not fire that day.
//! - Fall-back overlap: a wall-clock time that occurs twice fires at both instants, except a
//!   fixed time, which fires at the first only under `dst_overlap = first` (the default), at
//!   the second only under `last`, and at both under `both`.
//! - A "fixed time" is an expression whose second, minute and hour fields each name one value
//!   and use no `*` and no step (as croner decides; `*/60` or `5/60` in a field is an interval
//!   even though it names one value).
//! - The zones used change offset only at whole UTC minutes (asserted), so the oracle
//!   resolves the zone once per minute and walks the seconds of that minute on its own.

use std::{collections::BTreeSet, fmt};

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use proptest::prelude::*;
use tickguard_schedule::{Cron, DstGap, DstOverlap, Schedule, ScheduleError, parse_zone};

// ---------------------------------------------------------------------------------------------
// Knobs
// ---------------------------------------------------------------------------------------------

/// A config with `default_cases`, unless `PROPTEST_CASES` says otherwise.
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        // Shrinking an oracle failure re-runs the oracle: keep it bounded.
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    }
}

fn window() -> Duration {
    let hours = std::env::var("TICKGUARD_ORACLE_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96);
    Duration::hours(hours)
}

/// Fire times compared per direction and case.
const STEPS: usize = 6;

/// UTC, four zones with DST (Cairo's gap takes midnight, its overlap the day's last hour;
/// Lord Howe's clocks move half an hour), and one without.
const ZONES: [&str; 6] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Africa/Cairo",
    "Asia/Kolkata",
];

// ---------------------------------------------------------------------------------------------
// Generated expressions and what they mean
// ---------------------------------------------------------------------------------------------

/// A plain field: the values it matches (weekdays as 0..=6 from Sunday), and whether it is
/// written with neither `*` nor a step.
#[derive(Clone, Debug)]
struct Field {
    text: String,
    values: BTreeSet<u32>,
    plain: bool,
}

#[derive(Clone, Debug)]
enum Dom {
    Days(BTreeSet<u32>),
    Last,
    LastMinus(u32),
    Nearest(u32),
    LastWeekday,
}

#[derive(Clone, Debug)]
enum Dow {
    Days(BTreeSet<u32>),
    Last(u32),
    Nth(u32, u32),
}

#[derive(Clone)]
struct Expr {
    text: String,
    second: Field,
    minute: Field,
    hour: Field,
    dom: Dom,
    month: Field,
    dow: Dow,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shrunk failures are read by people: the expression is what matters.
        write!(f, "{:?}", self.text)
    }
}

impl Expr {
    fn fixed_time(&self) -> Option<NaiveTime> {
        let one = |f: &Field| (f.plain && f.values.len() == 1).then(|| f.values.first().copied());
        let (s, m, h) = (one(&self.second)??, one(&self.minute)??, one(&self.hour)??);
        NaiveTime::from_hms_opt(h, m, s)
    }

    fn time_matches(&self, t: NaiveTime) -> bool {
        self.hour.values.contains(&t.hour())
            && self.minute.values.contains(&t.minute())
            && self.second.values.contains(&t.second())
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        let (y, m, day) = (d.year(), d.month(), d.day());
        let len = days_in_month(y, m);
        let weekday = d.weekday().num_days_from_sunday();
        let dom = match &self.dom {
            Dom::Days(days) => days.contains(&day),
            Dom::Last => day == len,
            Dom::LastMinus(n) => day + n == len,
            Dom::Nearest(n) => nearest_weekday(y, m, *n) == Some(day),
            Dom::LastWeekday => day == last_weekday(y, m),
        };
        let dow = match &self.dow {
            Dow::Days(days) => days.contains(&weekday),
            Dow::Last(d) => weekday == *d && day + 7 > len,
            Dow::Nth(d, n) => weekday == *d && (day - 1) / 7 + 1 == *n,
        };
        dom && dow && self.month.values.contains(&m)
    }
}

fn days_in_month(y: i32, m: u32) -> u32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let first_next = NaiveDate::from_ymd_opt(ny, nm, 1).expect("a real month");
    first_next.pred_opt().expect("a real day").day()
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The Monday..Friday nearest day `n` of the month, within the month.
fn nearest_weekday(y: i32, m: u32, n: u32) -> Option<u32> {
    let len = days_in_month(y, m);
    let date = NaiveDate::from_ymd_opt(y, m, n).filter(|_| n <= len)?;
    Some(match date.weekday() {
        Weekday::Sat if n == 1 => 3,
        Weekday::Sat => n - 1,
        Weekday::Sun if n == len => n - 2,
        Weekday::Sun => n + 1,
        _ => n,
    })
}

fn last_weekday(y: i32, m: u32) -> u32 {
    let mut day = days_in_month(y, m);
    while is_weekend(NaiveDate::from_ymd_opt(y, m, day).expect("a real day")) {
        day -= 1;
    }
    day
}

#[derive(Clone, Copy, Debug)]
enum Names {
    None,
    Months,
    Weekdays,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// `v` as a number, or (if `named` and the field has a name for it) a name in either case.
fn render(v: u32, names: Names, named: bool, lower: bool) -> String {
    let name = match names {
        Names::Months if named => Some(MONTHS[v as usize - 1]),
        // 7 is Sunday too, but `SUN` is 0: `FRI-SUN` would be a backward range.
        Names::Weekdays if named && v < 7 => Some(WEEKDAYS[v as usize]),
        _ => None,
    };
    match name {
        Some(n) if lower => n.to_ascii_lowercase(),
        Some(n) => n.to_owned(),
        None => v.to_string(),
    }
}

fn normalize(values: impl IntoIterator<Item = u32>, names: Names) -> BTreeSet<u32> {
    values
        .into_iter()
        .map(|v| match names {
            Names::Weekdays => v % 7,
            _ => v,
        })
        .collect()
}

/// One list item of a field whose values run `min..=max`.
fn item(min: u32, max: u32, names: Names) -> BoxedStrategy<Field> {
    let span = max - min + 1;
    let step = prop_oneof![3 => 1..=6u32, 1 => 1..=span];
    let style = (any::<bool>(), any::<bool>());
    prop_oneof![
        3 => (min..=max, style).prop_map(move |(v, (named, lower))| Field {
            text: render(v, names, named, lower),
            values: normalize([v], names),
            plain: true,
        }),
        2 => (min..=max, min..=max, style).prop_map(move |(a, b, (named, lower))| {
            let (a, b) = (a.min(b), a.max(b));
            Field {
                text: format!(
                    "{}-{}",
                    render(a, names, named, lower),
                    render(b, names, named, lower)
                ),
                values: normalize(a..=b, names),
                plain: true,
            }
        }),
        2 => step.clone().prop_map(move |n| Field {
            text: format!("*/{n}"),
            values: normalize((min..=max).step_by(n as usize), names),
            plain: false,
        }),
        1 => (min..=max, step.clone()).prop_map(move |(a, n)| Field {
            text: format!("{a}/{n}"),
            values: normalize((a..=max).step_by(n as usize), names),
            plain: false,
        }),
        1 => (min..=max, min..=max, step).prop_map(move |(a, b, n)| {
            let (a, b) = (a.min(b), a.max(b));
            Field {
                text: format!("{a}-{b}/{n}"),
                values: normalize((a..=b).step_by(n as usize), names),
                plain: false,
            }
        }),
    ]
    .boxed()
}

/// A list of one to three items.
fn list(min: u32, max: u32, names: Names) -> impl Strategy<Value = Field> {
    prop::collection::vec(item(min, max, names), 1..=3).prop_map(|items| Field {
        text: items
            .iter()
            .map(|i| i.text.as_str())
            .collect::<Vec<_>>()
            .join(","),
        values: items
            .iter()
            .flat_map(|i| i.values.iter().copied())
            .collect(),
        plain: items.iter().all(|i| i.plain),
    })
}

fn star(min: u32, max: u32, text: &'static str, names: Names) -> Field {
    Field {
        text: text.to_owned(),
        values: normalize(min..=max, names),
        plain: false,
    }
}

fn field(min: u32, max: u32, names: Names, star_weight: u32) -> impl Strategy<Value = Field> {
    prop_oneof![
        star_weight => Just(star(min, max, "*", names)),
        4 => list(min, max, names),
    ]
}

fn dom() -> impl Strategy<Value = (String, Dom)> {
    let days = |f: Field| (f.text, Dom::Days(f.values));
    prop_oneof![
        5 => Just(("*".to_owned(), Dom::Days((1..=31).collect()))),
        1 => Just(("?".to_owned(), Dom::Days((1..=31).collect()))),
        4 => list(1, 31, Names::None).prop_map(days),
        1 => Just(("L".to_owned(), Dom::Last)),
        1 => (0..=30u32).prop_map(|n| (format!("L-{n}"), Dom::LastMinus(n))),
        // Days at the month's edges are where `W` has its special cases.
        2 => prop_oneof![2 => 1..=31u32, 1 => Just(1u32), 1 => 28..=31u32]
            .prop_map(|n| (format!("{n}W"), Dom::Nearest(n))),
        1 => Just(("LW".to_owned(), Dom::LastWeekday)),
    ]
}

fn dow() -> impl Strategy<Value = (String, Dow)> {
    let style = (any::<bool>(), any::<bool>());
    prop_oneof![
        6 => Just(("*".to_owned(), Dow::Days((0..7).collect()))),
        1 => Just(("?".to_owned(), Dow::Days((0..7).collect()))),
        4 => list(0, 7, Names::Weekdays).prop_map(|f| (f.text, Dow::Days(f.values))),
        1 => (0..=7u32, style).prop_map(|(d, (named, lower))| (
            format!("{}L", render(d, Names::Weekdays, named, lower)),
            Dow::Last(d % 7)
        )),
        1 => (0..=7u32, 1..=5u32, style).prop_map(|(d, n, (named, lower))| (
            format!("{}#{n}", render(d, Names::Weekdays, named, lower)),
            Dow::Nth(d % 7, n)
        )),
    ]
}

/// Spring's macros, with their meaning.
fn macro_expr() -> impl Strategy<Value = Expr> {
    prop_oneof![
        Just(("@yearly", "0 0 0 1 1 *")),
        Just(("@annually", "0 0 0 1 1 *")),
        Just(("@monthly", "0 0 0 1 * *")),
        Just(("@weekly", "0 0 0 * * 0")),
        Just(("@daily", "0 0 0 * * *")),
        Just(("@midnight", "0 0 0 * * *")),
        Just(("@hourly", "0 0 * * * *")),
    ]
    .prop_map(|(name, meaning)| {
        let f: Vec<&str> = meaning.split(' ').collect();
        let simple = |text: &str, min, max, names| {
            if text == "*" {
                star(min, max, "*", names)
            } else {
                let v = text.parse().expect("a number");
                Field {
                    text: text.to_owned(),
                    values: normalize([v], names),
                    plain: true,
                }
            }
        };
        let dom = match f[3] {
            "*" => Dom::Days((1..=31).collect()),
            d => Dom::Days([d.parse().expect("a day")].into()),
        };
        let dow = match f[5] {
            "*" => Dow::Days((0..7).collect()),
            d => Dow::Days([d.parse().expect("a weekday")].into()),
        };
        Expr {
            text: name.to_owned(),
            second: simple(f[0], 0, 59, Names::None),
            minute: simple(f[1], 0, 59, Names::None),
            hour: simple(f[2], 0, 23, Names::None),
            dom,
            month: simple(f[4], 1, 12, Names::Months),
            dow,
        }
    })
}

/// The date fields: day of month, month, day of week.
type Dates = ((String, Dom), Field, (String, Dow));

fn dates() -> BoxedStrategy<Dates> {
    (dom(), field(1, 12, Names::Months, 4), dow()).boxed()
}

fn every_day() -> Dates {
    (
        ("*".to_owned(), Dom::Days((1..=31).collect())),
        star(1, 12, "*", Names::Months),
        ("*".to_owned(), Dow::Days((0..7).collect())),
    )
}

fn built_expr(
    times: (
        BoxedStrategy<Field>,
        BoxedStrategy<Field>,
        BoxedStrategy<Field>,
    ),
    dates: BoxedStrategy<Dates>,
) -> impl Strategy<Value = Expr> {
    let separator = prop_oneof![4 => Just(" "), 1 => Just("  "), 1 => Just("\t")];
    (
        times,
        dates,
        (prop::bool::weighted(0.15), separator, any::<bool>()),
    )
        .prop_map(
            |(
                (second, minute, hour),
                ((dom_text, dom), month, (dow_text, dow)),
                (five, sep, pad),
            )| {
                // Five fields leave the second out: it is then 0.
                let second = if five {
                    Field {
                        text: String::new(),
                        values: [0].into(),
                        plain: true,
                    }
                } else {
                    second
                };
                let mut fields = vec![
                    minute.text.as_str(),
                    hour.text.as_str(),
                    dom_text.as_str(),
                    month.text.as_str(),
                    dow_text.as_str(),
                ];
                if !five {
                    fields.insert(0, second.text.as_str());
                }
                let mut text = fields.join(sep);
                if pad {
                    text = format!(" {text} ");
                }
                Expr {
                    text,
                    second,
                    minute,
                    hour,
                    dom,
                    month,
                    dow,
                }
            },
        )
}

fn expr() -> impl Strategy<Value = Expr> {
    let times = (
        field(0, 59, Names::None, 2).boxed(),
        field(0, 59, Names::None, 2).boxed(),
        field(0, 23, Names::None, 3).boxed(),
    );
    prop_oneof![1 => macro_expr(), 12 => built_expr(times, dates())]
}

/// A time field that mostly names one value from `value`, in every spelling: `v`, `v-v`,
/// `v,v` (fixed), and a step that reaches only `v` (`v/n`, an interval); else any field.
fn time_field(min: u32, max: u32, value: BoxedStrategy<u32>) -> BoxedStrategy<Field> {
    let one = |text: String, v: u32, plain: bool| Field {
        text,
        values: [v].into(),
        plain,
    };
    prop_oneof![
        5 => value.clone().prop_map(move |v| one(v.to_string(), v, true)),
        1 => value.clone().prop_map(move |v| one(format!("{v}-{v}"), v, true)),
        1 => value.clone().prop_map(move |v| one(format!("{v},{v}"), v, true)),
        1 => value.prop_map(move |v| one(format!("{v}/{}", (max - v + 1).max(2)), v, false)),
        2 => list(min, max, Names::None),
        1 => Just(star(min, max, "*", Names::None)),
    ]
    .boxed()
}

/// Expressions whose times fall near the DST changes of the zones used (between 00:00 and
/// 04:00 local), mostly fixed times, mostly on every day.
fn dst_expr() -> impl Strategy<Value = Expr> {
    let times = (
        time_field(0, 59, prop_oneof![2 => Just(0u32), 1 => 0..=59u32].boxed()),
        time_field(
            0,
            59,
            prop_oneof![2 => Just(0u32), 2 => Just(30u32), 1 => Just(59u32), 2 => 0..=59u32]
                .boxed(),
        ),
        time_field(0, 23, prop_oneof![4 => 0..=3u32, 1 => 0..=23u32].boxed()),
    );
    let dates = prop_oneof![3 => Just(every_day()), 1 => dates()].boxed();
    built_expr(times, dates)
}

/// A schedule's DST policies, each combination equally likely.
fn policies() -> impl Strategy<Value = (DstGap, DstOverlap)> {
    (
        prop::sample::select(&[DstGap::Shift, DstGap::Skip][..]),
        prop::sample::select(&[DstOverlap::First, DstOverlap::Last, DstOverlap::Both][..]),
    )
}

// ---------------------------------------------------------------------------------------------
// Start instants
// ---------------------------------------------------------------------------------------------

/// 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z.
const FROM: i64 = 946_684_800;
const UNTIL: i64 = 4_102_444_800;

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let nanos = prop_oneof![4 => Just(0u32), 1 => 0..1_000_000_000u32];
    (FROM..UNTIL, nanos)
        .prop_map(|(s, n)| DateTime::from_timestamp(s, n).expect("an instant within 2000..2100"))
}

#[derive(Clone, Debug)]
enum Start {
    /// Anywhere in 2000..2100.
    Anywhere(DateTime<Utc>),
    /// `back` (a fraction of the window, in millionths) before the crate's first answer
    /// after the instant, so the window holds at least one fire time.
    BeforeAnswer(DateTime<Utc>, u32),
    /// `offset` seconds from the `index`-th offset change of the zone in `year`.
    NearTransition {
        year: i32,
        index: usize,
        offset: i64,
    },
}

fn start() -> impl Strategy<Value = Start> {
    prop_oneof![
        1 => instant().prop_map(Start::Anywhere),
        2 => (instant(), 0..=1_000_000u32).prop_map(|(t, back)| Start::BeforeAnswer(t, back)),
        2 => near_transition(),
    ]
}

fn near_transition() -> impl Strategy<Value = Start> {
    let w = window().num_seconds();
    let offset = prop_oneof![3 => -86_400..=86_400i64, 1 => -w..=w];
    (2000..2100i32, any::<usize>(), offset).prop_map(|(year, index, offset)| {
        Start::NearTransition {
            year,
            index,
            offset,
        }
    })
}

/// The instants in `year` at which `tz` changes its offset (each the first instant under
/// the new offset), found by comparing offsets a day apart, then bisecting to the minute.
fn transitions(tz: Tz, year: i32) -> Vec<DateTime<Utc>> {
    let offset = |t: DateTime<Utc>| {
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc()
    };
    let mut out = Vec::new();
    let mut day = Utc
        .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .single()
        .expect("a real instant");
    let end = Utc
        .with_ymd_and_hms(year + 1, 1, 1, 0, 0, 0)
        .single()
        .expect("a real instant");
    while day < end {
        let next = day + Duration::days(1);
        if offset(day) != offset(next) {
            let (mut lo, mut hi) = (day, next);
            while hi - lo > Duration::minutes(1) {
                let mid = lo + Duration::minutes((hi - lo).num_minutes() / 2);
                if offset(mid) == offset(lo) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            out.push(hi);
        }
        day = next;
    }
    out
}

fn resolve_start(start: &Start, schedule: &Schedule, tz: Tz) -> DateTime<Utc> {
    match start {
        Start::Anywhere(t) => *t,
        Start::BeforeAnswer(t, back) => match schedule.next_after(*t) {
            Some(next) => {
                let back = window().num_milliseconds() * i64::from(*back) / 1_000_000;
                next - Duration::milliseconds(back.max(1))
            }
            None => *t,
        },
        Start::NearTransition {
            year,
            index,
            offset,
        } => {
            let all = transitions(tz, *year);
            match all.get(index % all.len().max(1)) {
                Some(t) => *t + Duration::seconds(*offset),
                // A zone without DST: somewhere in that year.
                None => {
                    Utc.with_ymd_and_hms(*year, 1, 1, 0, 0, 0)
                        .single()
                        .expect("a real instant")
                        + Duration::seconds(offset.rem_euclid(365 * 86_400))
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The oracle
// ---------------------------------------------------------------------------------------------

/// Lists fire times by brute force: every UTC minute of the window is resolved to the zone's
/// wall clock, and every second of it is checked against the fields, with the gap and
/// overlap rules of the module docs.
struct Oracle<'a> {
    expr: &'a Expr,
    tz: Tz,
    fixed: Option<NaiveTime>,
    gap: DstGap,
    overlap: DstOverlap,
}

impl<'a> Oracle<'a> {
    fn new(expr: &'a Expr, tz: Tz, (gap, overlap): (DstGap, DstOverlap)) -> Self {
        Self {
            expr,
            tz,
            fixed: expr.fixed_time(),
            gap,
            overlap,
        }
    }

    fn local(&self, utc: DateTime<Utc>) -> NaiveDateTime {
        self.tz.from_utc_datetime(&utc.naive_utc()).naive_local()
    }

    /// The fire times in the UTC minute starting at `m`, in order.
    fn fires_in_minute(&self, m: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let local = self.local(m);
        assert_eq!(
            local.second(),
            0,
            "{} changes offset off a whole minute near {m}: the oracle cannot walk it",
            self.tz
        );
        let mut out = Vec::new();
        if let Some(fixed) = self.fixed {
            // Wall-clock times skipped just before this minute: [expected, local).
            let expected = self.local(m - Duration::minutes(1)) + Duration::minutes(1);
            if local > expected && self.gap == DstGap::Shift {
                let mut day = expected.date();
                while day <= local.date() {
                    let missed = day.and_time(fixed);
                    if missed >= expected && missed < local && self.expr.day_matches(day) {
                        out.push(m);
                    }
                    day = day.succ_opt().expect("a real day");
                }
            }
            // In an overlap, a fixed time fires in the passes its policy names.
            if let LocalResult::Ambiguous(first, _) = self.tz.from_local_datetime(&local) {
                let first_pass = first.with_timezone(&Utc) == m;
                let fires = match self.overlap {
                    DstOverlap::First => first_pass,
                    DstOverlap::Last => !first_pass,
                    DstOverlap::Both => true,
                };
                if !fires {
                    return out;
                }
            }
        }
        if self.expr.day_matches(local.date()) {
            for s in 0..60 {
                let wall = local + Duration::seconds(s);
                if self.expr.time_matches(wall.time()) {
                    out.push(m + Duration::seconds(s));
                }
            }
        }
        out.dedup();
        out
    }

    /// Up to `limit` fire times in `(after, until]`, earliest first.
    fn forward(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut m = floor_minute(after);
        while m <= until && out.len() < limit {
            for f in self.fires_in_minute(m) {
                if f > after && f <= until && out.len() < limit {
                    out.push(f);
                }
            }
            m += Duration::minutes(1);
        }
        out
    }

    /// The last fire time in `[since, at]`.
    fn latest(&self, at: DateTime<Utc>, since: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut m = floor_minute(at);
        while m + Duration::seconds(59) >= since {
            let found = self
                .fires_in_minute(m)
                .into_iter()
                .rev()
                .find(|f| *f <= at && *f >= since);
            if found.is_some() {
                return found;
            }
            m -= Duration::minutes(1);
        }
        None
    }
}

fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp().div_euclid(60) * 60, 0).expect("a real instant")
}

/// Whether any day of a whole 400-year Gregorian cycle (after which dates and weekdays
/// repeat) matches the date fields.
fn some_day_matches(expr: &Expr) -> bool {
    let mut day = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a real day");
    let end = NaiveDate::from_ymd_opt(2400, 1, 1).expect("a real day");
    while day < end {
        if expr.day_matches(day) {
            return true;
        }
        day = day.succ_opt().expect("a real day");
    }
    false
}

fn show(times: &[DateTime<Utc>], tz: Tz) -> Vec<String> {
    times
        .iter()
        .map(|t| t.with_timezone(&tz).to_rfc3339())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn check_oracle(
    expr: &Expr,
    zone: &str,
    start: &Start,
    (gap, overlap): (DstGap, DstOverlap),
) -> Result<(), TestCaseError> {
    let schedule = match Schedule::cron(&expr.text) {
        Ok(s) => s
            .in_zone(zone)
            .expect("a known zone")
            .dst_gap(gap)
            .dst_overlap(overlap),
        // Whether that is right is `generated_expressions_parse_unless_no_day_matches`.
        Err(ScheduleError::NeverFires { .. }) => return Ok(()),
        Err(e) => return Err(TestCaseError::fail(format!("rejected: {e}"))),
    };
    let tz = parse_zone(zone).expect("a known zone");
    let oracle = Oracle::new(expr, tz, (gap, overlap));
    let t = resolve_start(start, &schedule, tz);
    let w = window();
    let context = || {
        format!(
            "expr {:?} in {zone} (dst_gap {gap}, dst_overlap {overlap}), from {} ({})",
            expr.text,
            t.to_rfc3339(),
            t.with_timezone(&tz).to_rfc3339()
        )
    };

    // Forward: successive `next_after`s, as far as the window reaches.
    let mut got = Vec::new();
    let mut prev = t;
    while got.len() < STEPS {
        let Some(next) = schedule.next_after(prev) else {
            break;
        };
        prop_assert!(next > prev, "{}: next_after({prev}) = {next}", context());
        if next > t + w {
            break;
        }
        got.push(next);
        prev = next;
    }
    let expected = oracle.forward(t, t + w, STEPS);
    prop_assert_eq!(
        show(&got, tz),
        show(&expected, tz),
        "{}: next_after (left) vs oracle (right)",
        context()
    );

    // Backward, from the start itself (fractions of a second included).
    let latest = schedule.latest_at_or_before(t);
    match oracle.latest(t, t - w) {
        Some(q) => prop_assert_eq!(
            latest.map(|p| p.with_timezone(&tz).to_rfc3339()),
            Some(q.with_timezone(&tz).to_rfc3339()),
            "{}: latest_at_or_before (left) vs oracle (right)",
            context()
        ),
        None => prop_assert!(
            latest.is_none_or(|p| p < t - w),
            "{}: latest_at_or_before = {latest:?}, the oracle finds none in the window",
            context()
        ),
    }

    // The two directions agree, whatever the window.
    if let Some(p) = latest {
        prop_assert!(p <= t, "{}: latest_at_or_before = {p}", context());
        prop_assert_eq!(schedule.latest_at_or_before(p), Some(p), "{}", context());
        prop_assert!(
            schedule.next_after(p).is_none_or(|n| n > t),
            "{}: next_after(latest_at_or_before = {p}) is not after the start",
            context()
        );
    }
    for n in &got {
        prop_assert_eq!(schedule.latest_at_or_before(*n), Some(*n), "{}", context());
    }
    if let Some(first) = got.first() {
        prop_assert_eq!(
            schedule.latest_at_or_before(*first - Duration::seconds(1)),
            latest,
            "{}: nothing fires between the start and next_after",
            context()
        );
    }
    Ok(())
}

/// Replaces the character at `at` (modulo the length) with `with`.
fn mutate(text: &str, at: usize, with: char) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return with.to_string();
    }
    let i = at % chars.len();
    chars[i] = with;
    chars.into_iter().collect()
}

/// Parses `s`; on success searches once each way (neither may panic). In UTC, where no wall
/// time is skipped, both searches answer within one 400-year Gregorian cycle of `t`: the
/// parser accepts only expressions that fire in every cycle.
fn parse_and_search(s: &str, t: DateTime<Utc>) {
    if let Ok(schedule) = Schedule::cron(s) {
        let cycle = Duration::days(146_097);
        for zone in ["UTC", "Australia/Lord_Howe"] {
            let schedule = schedule.clone().in_zone(zone).expect("a known zone");
            let next = schedule.next_after(t);
            if let Some(n) = next {
                assert!(n > t, "{s:?} in {zone}: next_after({t}) = {n}");
            }
            let latest = schedule.latest_at_or_before(t);
            if let Some(p) = latest {
                assert!(p <= t, "{s:?} in {zone}: latest_at_or_before({t}) = {p}");
            }
            if zone == "UTC" {
                assert!(
                    next.is_some_and(|n| n <= t + cycle),
                    "{s:?}: next_after({t}) = {next:?}, not within 400 years"
                );
                assert!(
                    latest.is_some_and(|p| p >= t - cycle),
                    "{s:?}: latest_at_or_before({t}) = {latest:?}, not within 400 years"
                );
            }
        }
    }
}

const ALPHABET: &str = "[0-9*/,\\-?LW#A-Z ]{0,40}";

proptest! {
    #![proptest_config(config(192))]

    #[test]
    fn generated_expressions_parse_unless_no_day_matches(expr in expr()) {
        match Cron::parse(&expr.text) {
            Ok(_) => prop_assert!(
                some_day_matches(&expr),
                "{:?} was accepted, but no day of a 400-year cycle matches it",
                expr.text
            ),
            Err(ScheduleError::NeverFires { .. }) => prop_assert!(
                !some_day_matches(&expr),
                "{:?} was rejected as never firing, but some day matches it",
                expr.text
            ),
            Err(e) => prop_assert!(false, "{:?} was rejected: {e}", expr.text),
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn fire_times_match_the_oracle(
        expr in expr(),
        zone in prop::sample::select(&ZONES[..]),
        start in start(),
        policies in policies(),
    ) {
        check_oracle(&expr, zone, &start, policies)?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn fire_times_around_dst_changes_match_the_oracle(
        expr in dst_expr(),
        zone in prop::sample::select(&ZONES[1..5]),
        start in near_transition(),
        policies in policies(),
    ) {
        check_oracle(&expr, zone, &start, policies)?;
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn upcoming_is_strictly_increasing(
        expr in expr(),
        zone in prop::sample::select(&ZONES[..]),
        t in instant(),
    ) {
        let Ok(schedule) = Schedule::cron(&expr.text) else { return Ok(()) };
        let schedule = schedule.in_zone(zone).expect("a known zone");
        let mut prev = t;
        for next in schedule.upcoming(t).take(50) {
            prop_assert!(next > prev, "{:?} in {zone}: {next} after {prev}", expr.text);
            prop_assert_eq!(next.timestamp_subsec_nanos(), 0);
            prev = next;
        }
    }

    #[test]
    fn matches_agrees_with_the_fields(
        expr in expr(),
        t in instant(),
    ) {
        let Ok(cron) = Cron::parse(&expr.text) else { return Ok(()) };
        let wall = t.naive_utc();
        let expected = expr.day_matches(wall.date()) && expr.time_matches(wall.time());
        prop_assert_eq!(cron.matches(&t), expected, "{:?} at {}", expr.text, t);
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn schedules_round_trip_through_their_text(
        expr in expr(),
        zone in prop::sample::select(&ZONES[..]),
        nanos in 1_000_000u64..400_000_000_000_000,
        (gap, overlap) in policies(),
    ) {
        let mut schedules = vec![
            Schedule::every(std::time::Duration::from_nanos(nanos)).expect("at least 1 ms"),
            Schedule::after(std::time::Duration::from_nanos(nanos)).expect("at least 1 ms"),
        ];
        if let Ok(cron) = Schedule::cron(&expr.text) {
            let zoned = cron.in_zone(zone).expect("a known zone");
            schedules.push(zoned.dst_gap(gap).dst_overlap(overlap));
        }
        for schedule in schedules {
            let text = schedule.to_string();
            let parsed = text.parse::<Schedule>();
            prop_assert_eq!(parsed.as_ref(), Ok(&schedule), "{}", text);
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn parser_never_panics_on_any_string(s in "\\PC{0,40}", t in instant()) {
        parse_and_search(&s, t);
    }

    #[test]
    fn parser_never_panics_on_the_cron_alphabet(s in ALPHABET, t in instant()) {
        parse_and_search(&s, t);
    }

    #[test]
    fn parser_never_panics_near_valid_expressions(
        expr in expr(),
        at in any::<usize>(),
        with in prop::sample::select("0123456789*/,-?LW# @JANMONx\t".chars().collect::<Vec<_>>()),
        t in instant(),
    ) {
        parse_and_search(&mutate(&expr.text, at, with), t);
    }
}

/// Found by `fire_times_around_dst_changes_match_the_oracle`: `latest_at_or_before(t)` once
/// answered with an instant after `t` when `t` had a fraction of a second and lay less than a
/// second before the second pass of a fall-back overlap, for an interval expression. The
/// search now starts from the whole second `t` is in.
#[test]
fn latest_at_or_before_in_overlap_with_subsecond_instant() {
    let schedule = Schedule::cron("0 0 * * * *")
        .and_then(|s| s.in_zone("Europe/Berlin"))
        .expect("a valid schedule");
    // 02:59:59.5 CEST, the first pass; clocks go back to 02:00 CET half a second later.
    let t = Utc
        .with_ymd_and_hms(2000, 10, 29, 0, 59, 59)
        .single()
        .expect("a real instant")
        + Duration::milliseconds(500);
    let expected = Utc.with_ymd_and_hms(2000, 10, 29, 0, 0, 0).single(); // 02:00 CEST
    assert_eq!(schedule.latest_at_or_before(t), expected);
}

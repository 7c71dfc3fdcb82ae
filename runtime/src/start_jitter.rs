//! A job's start jitter (`jitter = "5s"`): how long after its tick a run starts. Every
//! instance computes the same delay for the same job and tick, from the two alone, so the
//! instances of a job reach the lock and the claim together and the first one wins, while
//! different jobs (and different ticks of one job) spread over the jitter window instead of
//! all hitting a backend at the tick's instant. The delay never reaches the next tick.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::job::Job;

/// How far before its next tick a delayed run must start at the latest: 250 ms, or a
/// quarter of the interval between the two ticks if that is shorter (the same margin a
/// tick tried through a backend outage keeps).
const BEFORE_NEXT: Duration = Duration::from_millis(250);

/// The delay of `job`'s run for `tick`: a fraction of its jitter that depends only on the
/// job's name and the tick, shorter than the time to the next tick minus a margin; zero
/// without a jitter.
pub(crate) fn delay(job: &Job, tick: DateTime<Utc>) -> Duration {
    let Some(jitter) = job.jitter else {
        return Duration::ZERO;
    };
    let window = match job
        .schedule
        .next_after(tick)
        .filter(|_| !job.schedule.is_fixed_delay())
    {
        Some(next) => {
            let interval = (next - tick).to_std().unwrap_or_default();
            jitter.min(interval.saturating_sub(BEFORE_NEXT.min(interval / 4)))
        }
        None => jitter,
    };
    window.mul_f64(fraction(&job.name, tick))
}

/// When the run of `job` for `tick` starts: the tick plus its [`delay`].
pub(crate) fn start_at(job: &Job, tick: DateTime<Utc>) -> DateTime<Utc> {
    tick + chrono::Duration::from_std(delay(job, tick)).unwrap_or_default()
}

/// A number in `[0, 1)` from the job's name and the tick, the same in every process and
/// every version of tickguard (FNV-1a over the name and the tick's Unix milliseconds, then
/// a finalizer that spreads nearby ticks apart): not `std`'s hasher, whose output may
/// change between Rust releases, so instances built by different toolchains still agree.
fn fraction(job: &str, tick: DateTime<Utc>) -> f64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = job.bytes().chain(tick.timestamp_millis().to_le_bytes());
    let mut h = bytes.fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    });
    // splitmix64's finalizer.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    // The top 53 bits, as a fraction of 2^53: exactly representable, below 1.
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use tickguard_schedule::Schedule;

    use super::*;
    use crate::{context::JobContext, job::Job};

    fn job(name: &str, schedule: Schedule, jitter: Duration) -> Job {
        Job::new(name, schedule, |_: JobContext| async { Ok(()) }).jitter(jitter)
    }

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_780_000_000 + s, 0).unwrap()
    }

    #[test]
    fn every_instance_computes_the_same_delay_for_a_job_and_tick() {
        let daily = Schedule::cron("0 0 2 * * *").unwrap();
        let a = job("billing", daily.clone(), Duration::from_secs(60));
        let b = job("billing", daily, Duration::from_secs(60));
        for s in 0..100 {
            assert_eq!(delay(&a, at(s * 86_400)), delay(&b, at(s * 86_400)));
        }
    }

    /// Pinned values: a change of the hash would make instances of two versions of tickguard
    /// disagree during a rolling deploy, and is caught here.
    #[test]
    fn the_delay_is_stable_across_versions() {
        let j = job(
            "billing",
            Schedule::every(Duration::from_secs(3600)).unwrap(),
            Duration::from_secs(60),
        );
        let tick = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(delay(&j, tick), PINNED);
    }

    const PINNED: Duration = Duration::from_nanos(6_399_821_514);

    #[test]
    fn delays_spread_over_the_window_across_ticks_and_jobs() {
        let hourly = Schedule::every(Duration::from_secs(3600)).unwrap();
        let window = Duration::from_secs(100);
        let mut buckets = [0u32; 10];
        for name in ["a", "b", "billing", "reports"] {
            let j = job(name, hourly.clone(), window);
            for h in 0..250 {
                let d = delay(&j, at(h * 3600));
                assert!(d < window, "{d:?}");
                buckets[(d.as_secs_f64() / 10.0) as usize] += 1;
            }
        }
        // 1000 delays in 10 buckets of 100 expected each.
        assert!(
            buckets.iter().all(|&n| (60..=140).contains(&n)),
            "{buckets:?}"
        );
        let a = job("a", hourly.clone(), window);
        let b = job("b", hourly, window);
        assert_ne!(delay(&a, at(0)), delay(&b, at(0)));
    }

    #[test]
    fn the_delay_never_reaches_the_next_tick() {
        let every_second = Schedule::every(Duration::from_secs(1)).unwrap();
        let j = job("fast", every_second, Duration::from_secs(30));
        for s in 0..1000 {
            let d = delay(&j, at(s));
            assert!(d < Duration::from_millis(750), "{d:?}");
        }
        let every_100ms = Schedule::every(Duration::from_millis(100)).unwrap();
        let j = job("faster", every_100ms, Duration::from_secs(1));
        for s in 0..1000 {
            assert!(delay(&j, at(s)) < Duration::from_millis(75));
        }
    }

    #[test]
    fn no_jitter_no_delay() {
        let j = Job::new(
            "plain",
            Schedule::every(Duration::from_secs(1)).unwrap(),
            |_: JobContext| async { Ok(()) },
        );
        assert_eq!(delay(&j, at(0)), Duration::ZERO);
    }
}

//! Names of a run: its owner, and its execution's id.

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
};

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::job::Job;

/// The owner of one run: `{instance}#{seq}-{process}`, unique per run whatever the
/// configuration. `seq` counts the runs of this process (across every scheduler and test
/// run in it); `process` is random per process, so two processes (or two schedulers)
/// configured with the same instance id never name a run alike. A store recognises an
/// earlier try of its own claim by the owner; equal owners would let one run take another's
/// live execution as its own.
pub(super) fn owner(instance_id: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static PROCESS: OnceLock<u64> = OnceLock::new();
    let process = *PROCESS.get_or_init(|| fastrand::u64(..));
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{instance_id}#{seq}-{process:016x}")
}

/// The owner a run takes the job's lock as: its owner and the tick it runs, in Unix
/// milliseconds (`{owner}@{millis}`), so that an instance finding the lock held knows whether
/// the holder runs its tick or another one ([`held_for`]).
pub(super) fn lock_owner(owner: &str, tick: DateTime<Utc>) -> String {
    format!("{owner}@{}", tick.timestamp_millis())
}

/// The tick a lock holder runs, from its owner string; `None` for an owner that
/// [`lock_owner`] did not write.
pub(super) fn held_for(holder: &str) -> Option<DateTime<Utc>> {
    let (_, millis) = holder.rsplit_once('@')?;
    DateTime::from_timestamp_millis(millis.parse().ok()?)
}

/// The execution's id: the job's key for idempotent jobs (one execution per tick across
/// instances), otherwise unique per run.
pub(super) fn execution_id(job: &Job, tick: DateTime<Utc>, owner: &str) -> String {
    tick_id(job, tick).unwrap_or_else(|| format!("{}@{}#{owner}", job.name, Rfc3339(tick)))
}

/// The id every instance gives the execution of `tick`: the job's key, for an idempotent
/// job; `None` for other jobs, whose execution ids are unique per run.
pub(super) fn tick_id(job: &Job, tick: DateTime<Utc>) -> Option<String> {
    job.key
        .as_ref()
        .map(|key| key.render(&job.name, tick, job.schedule.zone()))
}

/// A tick as RFC 3339 in UTC (`2026-11-29T02:00:00Z`, fractions only when present), written
/// straight into the id: chrono's general formatter costs more than the rest of the id.
struct Rfc3339(DateTime<Utc>);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )?;
        match t.nanosecond() {
            0 => {}
            n if n % 1_000_000 == 0 => write!(f, ".{:03}", n / 1_000_000)?,
            n if n % 1_000 == 0 => write!(f, ".{:06}", n / 1_000)?,
            n => write!(f, ".{n:09}")?,
        }
        f.write_str("Z")
    }
}

#[cfg(test)]
mod tests {
    use chrono::{SecondsFormat, TimeZone};

    use super::*;

    #[test]
    fn a_lock_owner_names_its_tick() {
        let tick = DateTime::from_timestamp_millis(1_800_000_000_250).unwrap_or_default();
        let holder = lock_owner("api-1@eu#7-00ff", tick);
        assert_eq!(held_for(&holder), Some(tick));
        assert_eq!(held_for("someone-else"), None);
        assert_eq!(held_for("x@not-a-tick"), None);
    }

    #[test]
    fn tick_text_is_rfc3339() {
        for nanos in [0, 5_000_000, 123_456_000, 123_456_789] {
            let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
                + chrono::Duration::nanoseconds(nanos);
            assert_eq!(
                Rfc3339(t).to_string(),
                t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            );
        }
    }

    #[test]
    fn owners_differ_for_one_instance_id() {
        let a = owner("same");
        let b = owner("same");
        assert_ne!(a, b);
        assert!(a.starts_with("same#"), "{a}");
    }
}

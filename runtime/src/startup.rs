//! What a scheduler logs as it starts: one line with its instance, backends and namespace,
//! a warning when a backend only works within one process, and one line per job with its
//! next fire time in the job's zone.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::{
    executor::{JobEntry, Runtime},
    job::Job,
};

/// What [`InProcessLock`](crate::lock::InProcessLock) describes itself as.
const IN_PROCESS_LOCK: &str = "in-process";

/// What [`MemoryStore`](crate::store::MemoryStore) describes itself as.
const IN_MEMORY_STORE: &str = "in-memory";

/// Logs the scheduler's start: the INFO line `scheduler started` (instance, number of jobs,
/// backends as they describe themselves, which never includes a password, and the
/// namespace, if one is set), a WARN if the lock or the store only works within this process, and one INFO
/// line `job registered` per job.
pub(crate) fn log_startup(
    rt: &Runtime,
    entries: &[std::sync::Arc<JobEntry>],
    namespace: Option<&str>,
) {
    let (lock, store) = (rt.lock.describe(), rt.store.describe());
    tracing::info!(
        instance_id = %rt.instance_id,
        jobs = entries.len(),
        %lock,
        %store,
        namespace,
        "scheduler started"
    );
    if let Some(warning) = process_local(&lock, &store) {
        tracing::warn!("{warning}");
    }
    let now = rt.clock.now();
    for entry in entries {
        let job = &entry.job;
        // As strings: the fmt layer quotes them (`schedule="0 0 2 * * *"`).
        tracing::info!(
            job = %job.name,
            schedule = ScheduleText(job).to_string().as_str(),
            zone = %job.schedule.zone(),
            next_fire = NextFire(job, now).to_string().as_str(),
            "job registered"
        );
    }
}

/// The warning for backends that keep their state in this process, naming which, and what
/// to configure instead when the scheduler runs as several replicas; `None` when both are
/// shared.
fn process_local(lock: &str, store: &str) -> Option<String> {
    let local_lock = lock == IN_PROCESS_LOCK;
    let local_store = store == IN_MEMORY_STORE;
    let lock_fix = "a shared lock: .redis(url) or .postgres_lock(url)";
    let store_fix = "a shared store: .postgres(url) (or .sqlite(url) for one process that \
                     keeps its history across restarts)";
    let (what, fix) = match (local_lock, local_store) {
        (false, false) => return None,
        (true, true) => (
            "the lock is in-process and the store in-memory",
            format!("{lock_fix}, and {store_fix}"),
        ),
        (true, false) => ("the lock is in-process", lock_fix.to_owned()),
        (false, true) => ("the store is in-memory", store_fix.to_owned()),
    };
    Some(format!(
        "{what}: they work within this one process only; with several replicas, every \
         replica runs every tick. For replicas, configure {fix}"
    ))
}

/// A job's schedule as written: the cron expression (its zone is logged beside it), or
/// `every 5m` / `5m after the last run`.
struct ScheduleText<'a>(&'a Job);

impl fmt::Display for ScheduleText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.schedule.cron_expr() {
            Some(cron) => write!(f, "{cron}"),
            None => write!(f, "{}", self.0.schedule),
        }
    }
}

/// A job's next fire time after `now`, in the job's zone (`2026-12-06 02:00:00 CET`).
struct NextFire<'a>(&'a Job, DateTime<Utc>);

impl fmt::Display for NextFire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schedule = &self.0.schedule;
        match schedule.next_after(self.1) {
            Some(next) => write!(
                f,
                "{}",
                next.with_timezone(&schedule.zone())
                    .format("%Y-%m-%d %H:%M:%S %Z")
            ),
            None => f.write_str("never"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_for_process_local_backends_naming_which() {
        assert_eq!(
            process_local("redis://h:6379", "postgres://u@h:5432/db"),
            None
        );
        let both = process_local(IN_PROCESS_LOCK, IN_MEMORY_STORE).unwrap_or_default();
        assert!(
            both.starts_with("the lock is in-process and the store in-memory")
                && both.contains(".redis(url) or .postgres_lock(url)")
                && both.contains(".postgres(url)"),
            "{both}"
        );
        let lock = process_local(IN_PROCESS_LOCK, "postgres://u@h:5432/db").unwrap_or_default();
        assert!(
            lock.starts_with("the lock is in-process:") && !lock.contains(".postgres(url)"),
            "{lock}"
        );
        let store = process_local("redis://h:6379", IN_MEMORY_STORE).unwrap_or_default();
        assert!(
            store.starts_with("the store is in-memory:") && !store.contains(".redis(url)"),
            "{store}"
        );
    }
}

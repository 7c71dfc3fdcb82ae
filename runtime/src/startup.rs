//! What a scheduler logs as it starts: one line with its instance, backends and namespace,
//! a warning when a backend only works within one process, and one line per job with its
//! next fire time in the job's zone.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::{
    executor::{JobEntry, Runtime},
    job::Job,
};

/// A [`SchedulerBuilder::namespace`](crate::SchedulerBuilder::namespace) and the backends it
/// applied to, as the startup line shows it: `"billing" (redis lock, postgres store)`.
pub(crate) struct Namespace {
    /// The namespace.
    pub(crate) name: String,
    /// The backends the builder connected in it (`redis lock`, `postgres store`); empty when
    /// it applied to none.
    pub(crate) applied: Vec<&'static str>,
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.applied.as_slice() {
            [] => write!(f, "{:?} (no backend)", self.name),
            applied => write!(f, "{:?} ({})", self.name, applied.join(", ")),
        }
    }
}

/// Logs the scheduler's start: the INFO line `scheduler started` (instance, number of jobs,
/// backends as they describe themselves, which never includes a password, and the
/// namespace with the backends it applied to, if one is set); a WARN if the lock or the
/// store only works within this process, and one if the namespace applied to no backend;
/// and one INFO line `job registered` per job.
pub(crate) fn log_startup(
    rt: &Runtime,
    entries: &[std::sync::Arc<JobEntry>],
    namespace: Option<&Namespace>,
) {
    tracing::info!(
        instance_id = %rt.instance_id,
        jobs = entries.len(),
        lock = %rt.lock.describe(),
        store = %rt.store.describe(),
        namespace = namespace.map(tracing::field::display),
        "scheduler started"
    );
    if let Some(warning) = process_local(rt.lock.is_process_local(), rt.store.is_process_local()) {
        tracing::warn!("{warning}");
    }
    if let Some(warning) = namespace.and_then(unused_namespace) {
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

/// The warning for backends that keep their state in this process, naming which, what that
/// costs, and what to configure instead; `None` when both are shared. An in-process lock
/// lets every replica run every tick; an in-memory store keeps history, checkpoints,
/// resumption and fencing per process, and loses them at restart.
fn process_local(local_lock: bool, local_store: bool) -> Option<String> {
    let lock_fix = "a shared lock: .redis(url) or .postgres_lock(url)";
    let store_fix = "a shared store: .postgres(url) (or .sqlite(url) for one process that \
                     keeps its history across restarts)";
    let per_process = "history, checkpoints, resumption and fencing are per process and lost \
                       at restart";
    Some(match (local_lock, local_store) {
        (false, false) => return None,
        (true, true) => format!(
            "the lock is in-process and the store in-memory: they work within this one \
             process only; with several replicas, every replica runs every tick, and \
             {per_process}. For replicas, configure {lock_fix}, and {store_fix}"
        ),
        (true, false) => format!(
            "the lock is in-process: it works within this one process only; with several \
             replicas, every replica runs every tick. For replicas, configure {lock_fix}"
        ),
        (false, true) => {
            format!("the store is in-memory: {per_process}. For replicas, configure {store_fix}")
        }
    })
}

/// The warning for a namespace that applied to no backend; `None` if it applied to one.
fn unused_namespace(namespace: &Namespace) -> Option<String> {
    namespace.applied.is_empty().then(|| {
        format!(
            "namespace {:?} applies to no backend: it applies only to the backends the \
             builder connects itself (.redis(url), .postgres_lock(url), .postgres(url)); a \
             backend given to .lock_backend(..) or .store(..) keeps the prefix or schema it \
             was built with, a SQLite file belongs to one service already, and the in-process \
             defaults share nothing",
            namespace.name
        )
    })
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
    fn warns_for_process_local_backends_naming_which_and_what_it_costs() {
        assert_eq!(process_local(false, false), None);
        let both = process_local(true, true).unwrap_or_default();
        assert!(
            both.starts_with("the lock is in-process and the store in-memory")
                && both.contains("every replica runs every tick")
                && both.contains("history, checkpoints, resumption and fencing are per process")
                && both.contains(".redis(url) or .postgres_lock(url)")
                && both.contains(".postgres(url)"),
            "{both}"
        );
        let lock = process_local(true, false).unwrap_or_default();
        assert!(
            lock.starts_with("the lock is in-process:")
                && lock.contains("every replica runs every tick")
                && !lock.contains("history")
                && !lock.contains(".postgres(url)"),
            "{lock}"
        );
        let store = process_local(false, true).unwrap_or_default();
        assert!(
            store.starts_with(
                "the store is in-memory: history, checkpoints, resumption and fencing are per \
                 process and lost at restart"
            ) && !store.contains("every replica runs every tick")
                && !store.contains(".redis(url)")
                && store.contains(".postgres(url)"),
            "{store}"
        );
    }

    #[test]
    fn a_namespace_shows_where_it_applied_and_warns_when_nowhere() {
        let applied = Namespace {
            name: "billing".into(),
            applied: vec!["redis lock", "postgres store"],
        };
        assert_eq!(
            applied.to_string(),
            "\"billing\" (redis lock, postgres store)"
        );
        assert_eq!(unused_namespace(&applied), None);
        let nowhere = Namespace {
            name: "billing".into(),
            applied: Vec::new(),
        };
        assert_eq!(nowhere.to_string(), "\"billing\" (no backend)");
        let warning = unused_namespace(&nowhere).unwrap_or_default();
        assert!(
            warning.starts_with("namespace \"billing\" applies to no backend"),
            "{warning}"
        );
    }
}

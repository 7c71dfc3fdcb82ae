//! The retention task: prunes the history of the scheduler's jobs by its
//! [`Retention`], and deletes the `once` steps of executions that ended longer ago than the
//! scheduler's `once_retention`.

use std::{sync::Arc, time::Duration};

use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

use crate::store::{ExecutionStore, PruneRequest, Retention};

/// The default of [`SchedulerBuilder::retention_every`](crate::SchedulerBuilder::retention_every):
/// how often the retention task runs, after the first time at start.
pub(crate) const DEFAULT_RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// The default of [`SchedulerBuilder::once_retention`](crate::SchedulerBuilder::once_retention).
pub(crate) const DEFAULT_ONCE_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// What the retention task keeps.
#[derive(Clone, Debug)]
pub(crate) struct Keep {
    /// How long executions that ended are kept, per status.
    pub(crate) history: Retention,
    /// How often the task runs; a prune runs at most this often across the instances.
    pub(crate) every: Duration,
    /// How long the `once` steps of an execution that ended are kept.
    pub(crate) once_steps: Duration,
}

/// Prunes the history of `jobs` by `keep.history` ([`ExecutionStore::prune`], at most once
/// per `keep.every` across every instance sharing the store: the instances take turns), and
/// deletes their per-execution `once` steps whose execution ended `keep.once_steps` ago or
/// more ([`ExecutionStore::forget_once_steps`]): at start, then every `keep.every`, until
/// `firing` is cancelled. Every instance runs it; no coordination is needed beyond the
/// prune's turn, since the rows it deletes belong to executions that ended and are not
/// claimed again (a claim of a tick whose record was pruned is answered
/// [`Claim::Pruned`](crate::store::Claim::Pruned): the tick is not run twice). A store that
/// cannot be reached is tried again at the next round.
pub(crate) async fn retain(
    store: Arc<dyn ExecutionStore>,
    jobs: Vec<String>,
    keep: Keep,
    firing: CancellationToken,
) {
    let prune = PruneRequest::new(keep.history)
        .jobs(jobs.clone())
        .at_most_every(keep.every);
    loop {
        let pruned = tokio::select! {
            () = firing.cancelled() => return,
            pruned = store.prune(&prune) => pruned,
        };
        match pruned {
            Ok(report) if report.total() > 0 => {
                for (status, deleted) in report.deleted.iter().filter(|(_, n)| *n > 0) {
                    tracing::info!(
                        %status, deleted, keep = ?keep.history.keep(*status),
                        "deleted executions that ended before the retention"
                    );
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                store = %store.describe(), error = %e, every = ?keep.every,
                "cannot prune the history of ended executions; trying again at the next round"
            ),
        }
        let forgot = tokio::select! {
            () = firing.cancelled() => return,
            forgot = store.forget_once_steps(&jobs, keep.once_steps) => forgot,
        };
        match forgot {
            Ok(0) => {}
            Ok(forgot) => tracing::info!(
                forgot, retention = ?keep.once_steps,
                "deleted the once steps of executions that ended before the retention"
            ),
            Err(e) => tracing::warn!(
                store = %store.describe(), error = %e,
                "cannot delete the once steps of ended executions; trying again at the next round"
            ),
        }
        tokio::select! {
            () = firing.cancelled() => return,
            () = sleep(keep.every) => {}
        }
    }
}

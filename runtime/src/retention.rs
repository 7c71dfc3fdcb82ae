//! The retention task: deletes the `once` steps of executions that ended longer ago than the
//! scheduler's `once_retention`.

use std::{sync::Arc, time::Duration};

use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

use crate::store::ExecutionStore;

/// How often the retention task deletes, after the first time at start.
pub(crate) const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// The default of [`SchedulerBuilder::once_retention`](crate::SchedulerBuilder::once_retention).
pub(crate) const DEFAULT_ONCE_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Deletes the per-execution `once` steps of `jobs` whose execution ended `retention` ago or
/// more ([`ExecutionStore::forget_once_steps`]): at start, then every hour, until `firing`
/// is cancelled. Every instance runs it; no coordination is needed, since the rows it
/// deletes belong to executions that ended and are not claimed again, so two instances
/// deleting the same rows leave the same table. A store that cannot be reached is tried
/// again at the next round.
pub(crate) async fn forget_once_steps(
    store: Arc<dyn ExecutionStore>,
    jobs: Vec<String>,
    retention: Duration,
    firing: CancellationToken,
) {
    loop {
        let forgot = tokio::select! {
            () = firing.cancelled() => return,
            forgot = store.forget_once_steps(&jobs, retention) => forgot,
        };
        match forgot {
            Ok(0) => {}
            Ok(forgot) => tracing::info!(
                forgot, retention = ?retention,
                "deleted the once steps of executions that ended before the retention"
            ),
            Err(e) => tracing::warn!(
                store = %store.describe(), error = %e,
                "cannot delete the once steps of ended executions; trying again in an hour"
            ),
        }
        tokio::select! {
            () = firing.cancelled() => return,
            () = sleep(RETENTION_EVERY) => {}
        }
    }
}

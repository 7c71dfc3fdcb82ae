//! Calling the failure hooks: the job's own, then the scheduler's (the alert webhook is one
//! of them), each bounded by a timeout and with its panics caught, so that no hook holds or
//! stops a job.

use std::{panic::AssertUnwindSafe, time::Duration};

use futures_util::FutureExt;
use tokio::time::timeout;

use super::{Runtime, attempts::panic_message};
use crate::job::{FailureReport, Job};

/// The longest a failure hook may take.
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Calls `job`'s failure hook, then the scheduler's, with `report`, one after the other.
pub(super) async fn call(rt: &Runtime, job: &Job, report: &FailureReport) {
    for hook in job.on_failure.iter().chain(&rt.hooks) {
        match timeout(
            HOOK_TIMEOUT,
            AssertUnwindSafe(hook(report.clone())).catch_unwind(),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(panic)) => {
                tracing::error!(
                    job = %job.name, panic = panic_message(&*panic), "failure hook panicked"
                );
            }
            Err(_) => {
                tracing::error!(job = %job.name, timeout = ?HOOK_TIMEOUT, "failure hook timed out");
            }
        }
    }
}

//! The third stage: the checks a claimed execution passes before its run starts.

use tokio::time::Instant;

use super::{Conclude, RESUME_ALLOWANCE, Tick, end::RunEnd};
use crate::{context::CancelReason, job_error::JobError, store::Claimed};

/// Stage 3: lets the run start, or concludes the execution without running it:
/// - the claim took so long that the lease can no longer be proven held: the execution is
///   recorded as cancelled, so that it is resumed (by this or another instance) under a
///   lease that is;
/// - the execution was interrupted again and again (a job that crashes its process?): it is
///   recorded as failed instead of being resumed once more.
pub(super) fn gate(t: &Tick<'_>, claimed: &Claimed) -> Conclude<()> {
    if let Some(held) = &t.lease
        && Instant::now() >= held.lost_at()
    {
        tracing::warn!("the claim outlasted two thirds of the lease; not starting the run");
        return Err(RunEnd::stopped_for(
            CancelReason::LockLost,
            claimed.previous_attempts,
        ));
    }
    let budget = t.job().retry.max_attempts() + RESUME_ALLOWANCE;
    if claimed.resumed && claimed.previous_attempts >= budget {
        let error = JobError::permanent(format!(
            "gave up: {} attempts across interrupted runs",
            claimed.previous_attempts
        ));
        return Err(RunEnd::failed(claimed.previous_attempts, error));
    }
    if let Some(by) = t.requested_by {
        tracing::info!(
            requested_by = by,
            "running a manual execution requested by {by}"
        );
    } else if claimed.resumed {
        tracing::info!(
            attempts = claimed.previous_attempts,
            checkpoint = claimed.checkpoint.is_some(),
            "resuming an interrupted execution"
        );
    }
    Ok(())
}

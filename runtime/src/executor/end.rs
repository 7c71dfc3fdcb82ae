//! How a run ended, for the store, the metrics and the failure hooks. The outcome every
//! channel reports (metric label, span field, failure report, alert) is derived from the
//! status the store records, in [`RunEnd::outcome`] only: a run has one outcome.

use std::fmt;

use crate::{context::CancelReason, job_error::JobError, metrics::Outcome, store::Status};

/// How a run ended.
pub(super) struct RunEnd {
    /// The status to record; once the store answered, the status it recorded.
    pub(super) status: Status,
    pub(super) attempts: u32,
    pub(super) error: Option<JobError>,
}

impl RunEnd {
    /// The run's outcome: what the store recorded under the run's fence is the truth.
    pub(super) fn outcome(&self) -> Outcome {
        match self.status {
            Status::Completed => Outcome::Success,
            Status::Failed => Outcome::Failure,
            Status::TimedOut => Outcome::Timeout,
            // A run never ends PENDING, RUNNING or SKIPPED; were it recorded so, it did not
            // run to its end.
            Status::Cancelled | Status::Pending | Status::Running | Status::Skipped => {
                Outcome::Cancelled
            }
        }
    }

    /// A run that completed.
    pub(super) fn completed(attempts: u32) -> Self {
        Self {
            status: Status::Completed,
            attempts,
            error: None,
        }
    }

    /// A run whose last attempt failed.
    pub(super) fn failed(attempts: u32, error: JobError) -> Self {
        Self {
            status: Status::Failed,
            attempts,
            error: Some(error),
        }
    }

    /// A run stopped for `reason` (`what` says how, e.g. "timed out after 5s"). The job's
    /// own error, when its last attempt also failed, is kept as the cause.
    pub(super) fn stopped(
        reason: CancelReason,
        what: String,
        attempts: u32,
        job_error: Option<JobError>,
    ) -> Self {
        let status = match reason {
            CancelReason::Timeout => Status::TimedOut,
            _ => Status::Cancelled,
        };
        let error = match job_error {
            None => JobError::transient(what),
            Some(cause) => {
                let kind = cause.kind();
                JobError::with_kind(
                    kind,
                    Stopped {
                        what,
                        cause: cause.into_inner(),
                    },
                )
            }
        };
        Self {
            status,
            attempts,
            error: Some(error),
        }
    }

    /// A run stopped for `reason` with nothing more to say.
    pub(super) fn stopped_for(reason: CancelReason, attempts: u32) -> Self {
        Self::stopped(
            reason,
            format!("run stopped: {}", reason.as_str()),
            attempts,
            None,
        )
    }
}

/// A stop that cut a failing attempt short: the stop first, the job's error as its cause.
#[derive(Debug)]
struct Stopped {
    what: String,
    cause: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for Stopped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}

//! How a run ended, for the store, the metrics and the failure hooks.

use std::fmt;

use crate::{context::CancelReason, job_error::JobError, metrics::Outcome, store::Status};

/// How a run ended.
pub(super) struct RunEnd {
    pub(super) status: Status,
    pub(super) outcome: Outcome,
    pub(super) attempts: u32,
    pub(super) error: Option<JobError>,
}

impl RunEnd {
    /// A run that completed.
    pub(super) fn completed(attempts: u32) -> Self {
        Self {
            status: Status::Completed,
            outcome: Outcome::Success,
            attempts,
            error: None,
        }
    }

    /// A run whose last attempt failed.
    pub(super) fn failed(attempts: u32, error: JobError) -> Self {
        Self {
            status: Status::Failed,
            outcome: Outcome::Failure,
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
        let (status, outcome) = match reason {
            CancelReason::Timeout => (Status::TimedOut, Outcome::Timeout),
            _ => (Status::Cancelled, Outcome::Cancelled),
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
            outcome,
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

#![doc = include_str!("../../docs/guide.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
mod context;
mod error;
mod executor;
mod job;
pub mod lock;
pub mod metrics;
mod retry;
mod scheduler;
pub mod store;

use std::{future::Future, pin::Pin};

pub use context::{CancelReason, JobContext};
pub use error::{Error, ErrorKind, JobError, JobResult, ResultExt, ScheduleError};
pub use job::{FailureHook, FailureReport, Job, LockPolicy, Misfire, failure_hook};
pub use retry::{RetryPolicy, RetryPredicate};
pub use scheduler::{Scheduler, SchedulerBuilder};
/// Declares a scheduled job; see the [crate docs](crate) and `docs/attribute.md`.
#[doc = include_str!("../../docs/attribute.md")]
pub use tickguard_macros::scheduled;
/// Names a `#[scheduled]` fn as a [`Job`], for explicit registration:
/// `Scheduler::builder().discover(false).job(tickguard::job!(my_job))`.
pub use tickguard_macros::job;
pub use tickguard_schedule::{Cron, KeyTemplate, Schedule, parse_duration, parse_zone};

/// A boxed, sendable future, as the backend traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Helpers for testing jobs and the scheduler (feature `testing`).
#[cfg(feature = "testing")]
pub mod testing {
    pub use crate::clock::TestClock;
}

/// What `#[scheduled]` expands to reaches the runtime only through here. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use std::{boxed::Box, time::Duration};

    pub use inventory;

    pub use crate::{
        BoxFuture, FailureReport, JobContext, JobResult,
        job::{JobDef, Registration, RetryDef, Trigger},
        Misfire,
    };

    /// Fails to compile, on the fn's name, if the job's future is not `Send`.
    pub fn assert_send<F: std::future::Future + Send>(f: F) -> F {
        f
    }

    /// Fails to compile, on the return type, if the fn does not return a `JobResult`.
    pub fn assert_job_result<F: std::future::Future<Output = JobResult>>(f: F) -> F {
        f
    }
}

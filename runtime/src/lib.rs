#![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/guide.md"))]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(hidden)]
pub mod bench_support;
mod builder;
mod circuit_breaker;
mod clock;
#[cfg(feature = "console")]
#[cfg_attr(docsrs, doc(cfg(feature = "console")))]
pub mod console;
mod context;
mod control;
pub mod docs;
mod error;
mod executor;
mod future;
pub mod gaps;
mod handler;
pub mod human;
mod job;
mod job_error;
mod job_loop;
mod ledger;
pub mod lock;
pub mod metrics;
mod misfire;
mod overlap;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "prometheus")]
mod prometheus;
mod recovery;
mod retention;
mod retry;
mod scheduler;
mod signal;
mod start_jitter;
mod startup;
mod state;
pub mod store;
mod throttle;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod transaction;
#[cfg(feature = "webhook")]
mod webhook;

pub use builder::SchedulerBuilder;
pub use circuit_breaker::{BreakerState, CircuitBreaker};
pub use context::{CancelReason, JobContext};
pub use error::{Error, ScheduleError};
pub use future::BoxFuture;
pub use handler::{FromContext, JobHandler};
pub use job::{FailureHook, FailureReport, Job, LockPolicy, Misfire, Overlap, failure_hook};
pub use job_error::{ErrorKind, JobError, JobResult, ResultExt};
/// The `redis` crate that [`RedisLock`](lock::RedisLock) runs on (feature `redis`), so that
/// a client built for [`RedisLock::from_client`](lock::RedisLock::from_client) uses the very
/// same version.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[doc(no_inline)]
pub use redis;
pub use retry::{RetryPolicy, RetryPredicate};
pub use scheduler::Scheduler;
/// The `sqlx` crate that the SQL backends run on (feature `postgres` or `sqlite`), so that a
/// pool built for [`PostgresLock::from_pool`](lock::PostgresLock::from_pool), or a query in
/// a [`JobContext::transaction`], uses the very same version.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "sqlite"))))]
#[doc(no_inline)]
pub use sqlx;
pub use state::{State, StateValue};
/// Names a `#[scheduled]` fn as a [`Job`], for explicit registration:
/// `Scheduler::builder().discover(false).job(tickguard::job!(my_job))`.
pub use tickguard_macros::job;
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/attribute.md"))]
pub use tickguard_macros::scheduled;
pub use tickguard_schedule::{
    Cron, DstGap, DstOverlap, KeyTemplate, Schedule, parse_duration, parse_zone,
};
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub use webhook::Webhook;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

/// What `#[scheduled]` expands to reaches the runtime only through here. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use std::{boxed::Box, time::Duration};

    pub use inventory;
    pub use tickguard_schedule::{DstGap, DstOverlap};

    pub use crate::{
        context::JobContext,
        future::BoxFuture,
        handler::{Arg, Returns},
        job::{
            BreakerDef, FailureReport, JobDef, LockDef, Misfire, Overlap, Registration, RetryDef,
            Trigger,
        },
        job_error::{JobError, JobResult},
        state::Need,
    };

    /// Boxes a job's future. Fails to compile, on the fn's return type, if the future is not
    /// `Send` (its output is checked by [`Returns`], spanned there too).
    pub fn job_future<F>(f: F) -> BoxFuture<'static, JobResult>
    where
        F: std::future::Future<Output = JobResult> + Send + 'static,
    {
        Box::pin(f)
    }

    /// What the executor records in metrics for one successful run under a lock, call for
    /// call, on the handles of job `job`: for the metrics cost bench.
    pub fn bench_execution_metrics(job: &str) -> impl FnMut(f64) {
        let m = crate::metrics::JobMetrics::new(job);
        move |seconds| m.record_locked_success(seconds)
    }

    /// Boxes an `on_failure` hook's future; fails to compile, on the hook's path, if the hook
    /// is not an `async fn(FailureReport)` or its future is not `Send`.
    pub fn hook_future<F>(f: F) -> BoxFuture<'static, ()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        Box::pin(f)
    }
}

//! How a job's code is called: each argument is taken from the run's context
//! ([`FromContext`]), and the code's future is boxed ([`JobHandler`]).

use std::future::{Future, ready};

use crate::{
    context::JobContext,
    future::BoxFuture,
    job_error::{JobError, JobResult},
    state::{Need, State, StateValue},
};

/// Keeps [`FromContext`] and [`JobHandler`] implemented by tickguard only, so that their
/// methods may change.
mod sealed {
    pub trait Argument {}
    pub trait Handler<Args> {}
}

/// A type a job can take as an argument: [`JobContext`] (the run's context) or
/// [`State<T>`] (a value given to
/// [`SchedulerBuilder::state`](crate::SchedulerBuilder::state)). A `#[scheduled]` fn may
/// also take `&JobContext`.
///
/// Implemented by tickguard only.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a job: take `JobContext` or `State<T>`",
    label = "not a job argument"
)]
pub trait FromContext: Sized + Send + 'static + sealed::Argument {
    /// The application state the argument needs, if any: what the builder checks was given.
    #[doc(hidden)]
    fn needs() -> Option<Need>;

    /// The argument, taken from the run's context; an error if it needs state that was not
    /// given (which a scheduler's build refuses, so only a run outside a scheduler sees it).
    #[doc(hidden)]
    fn from_context(ctx: &JobContext) -> Result<Self, JobError>;
}

impl sealed::Argument for JobContext {}

impl FromContext for JobContext {
    fn needs() -> Option<Need> {
        None
    }

    fn from_context(ctx: &JobContext) -> Result<Self, JobError> {
        Ok(ctx.clone())
    }
}

impl<T> sealed::Argument for State<T> {}

// Bound by `StateValue` rather than by its supertraits, so that a `T` that is not
// `Send + Sync + 'static` errs with that trait's message, which says so.
impl<T: StateValue> FromContext for State<T> {
    fn needs() -> Option<Need> {
        Some(Need::of::<T>())
    }

    fn from_context(ctx: &JobContext) -> Result<Self, JobError> {
        ctx.state::<T>()
            .ok_or_else(|| JobError::permanent(ctx.states().missing(&Need::of::<T>(), ctx.job())))
    }
}

/// The code a [`Job`](crate::Job) built with [`Job::new`](crate::Job::new) runs: an
/// `async fn`, or a closure that returns a future, whose arguments (up to 6) are
/// [`JobContext`] or [`State<T>`], and whose future is `Send` and resolves to
/// [`JobResult`].
///
/// A closure's arguments need their types written (`|ctx: JobContext| async move { .. }`):
/// the type says what each argument is taken from. A closure takes `JobContext` by value:
/// `&JobContext` is for `#[scheduled]` fns only. The `T` of a `State<T>` is
/// [`Send + Sync + 'static`](crate::StateValue).
///
/// ```
/// use tickguard::{Job, JobContext, JobResult, Schedule, State};
///
/// struct Config {
///     region: String,
/// }
///
/// async fn sync(ctx: JobContext, State(config): State<Config>) -> JobResult {
///     tracing::info!(tick = %ctx.scheduled_at(), region = %config.region, "syncing");
///     Ok(())
/// }
///
/// let every_minute = || Schedule::cron("0 * * * * *");
/// let from_fn = Job::new("sync", every_minute()?, sync);
/// let from_closure = Job::new(
///     "purge",
///     every_minute()?,
///     |State(config): State<Config>, ctx: JobContext| async move {
///         tracing::info!(execution = ctx.execution_id(), region = %config.region, "purging");
///         Ok(())
///     },
/// );
/// let without_arguments = Job::new("ping", every_minute()?, || async { Ok(()) });
/// # let _ = (from_fn, from_closure, without_arguments);
/// # Ok::<(), tickguard::ScheduleError>(())
/// ```
///
/// Implemented by tickguard only.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a job's handler",
    label = "not a job handler",
    note = "a handler is an `async fn`, or a closure that returns a future, whose arguments (up to 6) are `JobContext` or `State<T>`, and whose future is `Send` and resolves to `JobResult` (`Result<(), JobError>`)",
    note = "a closure's arguments need their types written: `|ctx: JobContext| async move ..`",
    note = "`&JobContext` is for #[scheduled] fns only: a closure takes `JobContext` by value",
    note = "the `T` of a `State<T>` must be `Send + Sync + 'static`: every run of every job shares it"
)]
pub trait JobHandler<Args>: Send + Sync + 'static + sealed::Handler<Args> {
    /// Takes the arguments from `ctx` and calls the code; a future of the error if an
    /// argument cannot be taken.
    #[doc(hidden)]
    fn call(&self, ctx: JobContext) -> BoxFuture<'static, JobResult>;

    /// The application state the arguments need.
    #[doc(hidden)]
    fn needs() -> Vec<Need>;
}

/// Implements [`JobHandler`] for fns and closures of the arguments named.
macro_rules! handler {
    ($($arg:ident $value:ident),*) => {
        impl<F, Fut, $($arg,)*> sealed::Handler<($($arg,)*)> for F
        where
            F: Fn($($arg),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = JobResult> + Send + 'static,
            $($arg: FromContext,)*
        {
        }

        impl<F, Fut, $($arg,)*> JobHandler<($($arg,)*)> for F
        where
            F: Fn($($arg),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = JobResult> + Send + 'static,
            $($arg: FromContext,)*
        {
            fn call(&self, ctx: JobContext) -> BoxFuture<'static, JobResult> {
                $(
                    let $value = match $arg::from_context(&ctx) {
                        Ok(value) => value,
                        Err(error) => return Box::pin(ready(Err(error))),
                    };
                )*
                let _ = ctx;
                Box::pin(self($($value),*))
            }

            fn needs() -> Vec<Need> {
                #[allow(unused_mut)] // no argument, no need
                let mut needs = Vec::new();
                $(needs.extend($arg::needs());)*
                needs
            }
        }
    };
}

handler!();
handler!(A1 a1);
handler!(A1 a1, A2 a2);
handler!(A1 a1, A2 a2, A3 a3);
handler!(A1 a1, A2 a2, A3 a3, A4 a4);
handler!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5);
handler!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6);

/// An argument of a `#[scheduled]` fn: [`FromContext`]'s types, and `&JobContext`, which
/// the generated code lends from the context it owns. Not public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a #[scheduled] fn: take `JobContext`, `&JobContext` or `State<T>`",
    label = "not a job argument"
)]
pub trait Arg<'a>: Sized {
    /// As [`FromContext::needs`].
    fn needs() -> Option<Need>;

    /// As [`FromContext::from_context`], borrowing the context for `&JobContext`.
    fn take(ctx: &'a JobContext) -> Result<Self, JobError>;
}

// Left out of the error's help: its message names every argument type.
#[diagnostic::do_not_recommend]
impl<'a> Arg<'a> for JobContext {
    fn needs() -> Option<Need> {
        None
    }

    fn take(ctx: &'a JobContext) -> Result<Self, JobError> {
        Ok(ctx.clone())
    }
}

// Left out of the error's help: its message names every argument type.
#[diagnostic::do_not_recommend]
impl<'a> Arg<'a> for &'a JobContext {
    fn needs() -> Option<Need> {
        None
    }

    fn take(ctx: &'a JobContext) -> Result<Self, JobError> {
        Ok(ctx)
    }
}

// Bound by `StateValue`, as for `FromContext`; left in the error's help, so that a `T`
// that is not `Send + Sync + 'static` errs with `StateValue`'s message.
impl<'a, T: StateValue> Arg<'a> for State<T> {
    fn needs() -> Option<Need> {
        <Self as FromContext>::needs()
    }

    fn take(ctx: &'a JobContext) -> Result<Self, JobError> {
        <Self as FromContext>::from_context(ctx)
    }
}

/// What a `#[scheduled]` fn returns: a [`JobResult`], converted through here so that any
/// other type errs on the fn's return type. Not public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a #[scheduled] fn must return `tickguard::JobResult` (`Result<(), JobError>`), not `{Self}`",
    label = "not `JobResult`"
)]
pub trait Returns {
    /// The run's result.
    fn into_result(self) -> JobResult;
}

// Left out of the error's help: its message names the type.
#[diagnostic::do_not_recommend]
impl Returns for JobResult {
    fn into_result(self) -> JobResult {
        self
    }
}

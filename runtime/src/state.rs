//! Application state: values given once to the builder ([`SchedulerBuilder::state`]) and
//! taken by jobs as [`State<T>`] arguments.
//!
//! [`SchedulerBuilder::state`]: crate::SchedulerBuilder::state

use std::{
    any::{Any, TypeId, type_name},
    collections::HashMap,
    fmt,
    ops::Deref,
    sync::Arc,
};

/// A value of application state, given to the scheduler with
/// [`SchedulerBuilder::state`](crate::SchedulerBuilder::state) and taken by a job as an
/// argument: a database pool, a client, a configuration. Every run of every job that takes a
/// `State<T>` shares the one value, behind an [`Arc`].
///
/// It dereferences to `T`, and destructures: `State(pool): State<PgPool>` binds `pool` to
/// the `Arc<PgPool>`. A job that takes a `State<T>` whose value was not given to the builder
/// is refused by [`SchedulerBuilder::build`](crate::SchedulerBuilder::build), with an
/// [`Error::Config`](crate::Error::Config) naming the job and the type.
///
/// ```standalone_crate
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use std::{sync::atomic::{AtomicU64, Ordering}, time::Duration};
/// use tickguard::{JobContext, JobResult, Scheduler, State, scheduled};
///
/// /// What the jobs share: here a counter; in an application, a pool or a client.
/// #[derive(Default)]
/// struct Metrics {
///     reports: AtomicU64,
/// }
///
/// #[scheduled(every = "10s")]
/// async fn report(ctx: &JobContext, State(metrics): State<Metrics>) -> JobResult {
///     metrics.reports.fetch_add(1, Ordering::Relaxed);
///     tracing::info!(tick = %ctx.scheduled_at(), "report sent");
///     Ok(())
/// }
///
/// let scheduler = Scheduler::builder()
///     .discover(false)
///     .job(tickguard::job!(report))
///     .state(Metrics::default())
///     .build()
///     .await
///     .unwrap();
/// scheduler.run_until(tokio::time::sleep(Duration::from_secs(25))).await.unwrap();
/// # }
/// ```
pub struct State<T>(pub Arc<T>);

impl<T> Deref for State<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Clone for State<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: fmt::Debug> fmt::Debug for State<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("State").field(&self.0).finish()
    }
}

/// A value of application state a job takes: its type, for the builder's check that every
/// job's state was given. Not public API.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
}

impl Need {
    /// What a `State<T>` needs.
    pub(crate) fn of<T: 'static>() -> Self {
        Self {
            type_id: TypeId::of::<T>(),
            type_name: type_name::<T>(),
        }
    }

    /// Why a job that takes this state cannot run, when no value of its type was given.
    pub(crate) fn missing(&self, job: &str) -> String {
        format!(
            "job `{job}` takes `State<{ty}>`, but no value of type `{ty}` was given to the \
             builder: add `.state(value)`",
            ty = self.type_name
        )
    }
}

/// The application state given to a builder (or to the test kit's `Run`): one value per
/// type.
#[derive(Clone, Default)]
pub(crate) struct StateMap {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl StateMap {
    /// Keeps `value`, in place of any earlier value of its type.
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one was given.
    pub(crate) fn get<T: Send + Sync + 'static>(&self) -> Option<State<T>> {
        let value = self.values.get(&TypeId::of::<T>())?.clone();
        value.downcast::<T>().ok().map(State)
    }

    /// Whether a value of the type `need` names was given.
    pub(crate) fn has(&self, need: &Need) -> bool {
        self.values.contains_key(&need.type_id)
    }
}

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMap")
            .field("values", &self.values.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_found_by_its_type_and_replaced_by_a_later_one() {
        let mut map = StateMap::default();
        assert!(map.get::<u32>().is_none());
        map.insert(1_u32);
        map.insert("config");
        map.insert(2_u32);
        assert_eq!(*map.get::<u32>().unwrap(), 2);
        assert_eq!(*map.get::<&str>().unwrap(), "config");
        assert!(map.has(&Need::of::<u32>()));
        assert!(!map.has(&Need::of::<u64>()));
    }

    #[test]
    fn a_missing_value_names_the_job_and_the_type() {
        let text = Need::of::<Vec<u8>>().missing("nightly_report");
        assert_eq!(
            text,
            "job `nightly_report` takes `State<alloc::vec::Vec<u8>>`, but no value of type \
             `alloc::vec::Vec<u8>` was given to the builder: add `.state(value)`"
        );
    }
}

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

/// A type that can be application state: `Send + Sync + 'static`, as every run of every
/// job, on any thread, shares the one value. Implemented for every such type; it names the
/// requirement in the compiler's error when a [`State<T>`] argument's `T` does not meet it
/// (an `Rc`, a `RefCell`, a borrow).
///
/// To share a value that is not `Sync`, wrap it: `Mutex<T>` (`std::sync` or `tokio::sync`)
/// is `Sync` when `T` is `Send`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be application state: it must be `Send + Sync + 'static`, as every run of every job shares it",
    label = "not `Send + Sync + 'static`",
    note = "use a thread-safe type (`Arc` for `Rc`, `Mutex` or `RwLock` for `RefCell`) or an owned value for a borrow"
)]
pub trait StateValue: Send + Sync + 'static {}

// Left out of the error's help: the trait's message names what is missing.
#[diagnostic::do_not_recommend]
impl<T: Send + Sync + 'static> StateValue for T {}

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
}

/// What the state was given to: what an error about a missing value names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum GivenTo {
    /// [`SchedulerBuilder::state`](crate::SchedulerBuilder::state).
    #[default]
    Builder,
    /// The test kit's `Run::state`.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    Run,
}

/// One value of application state, with the name of its type (for errors).
#[derive(Clone)]
struct Entry {
    value: Arc<dyn Any + Send + Sync>,
    type_name: &'static str,
}

/// The application state given to a builder (or to the test kit's `Run`): one value per
/// type.
#[derive(Clone, Default)]
pub(crate) struct StateMap {
    values: HashMap<TypeId, Entry>,
    given_to: GivenTo,
}

impl StateMap {
    /// An empty map, for values given to `given_to`.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn given_to(given_to: GivenTo) -> Self {
        Self {
            values: HashMap::new(),
            given_to,
        }
    }

    /// Keeps `value`, in place of any earlier value of its type.
    pub(crate) fn insert<T: StateValue>(&mut self, value: T) {
        let entry = Entry {
            value: Arc::new(value),
            type_name: type_name::<T>(),
        };
        self.values.insert(TypeId::of::<T>(), entry);
    }

    /// The value of type `T`, if one was given.
    pub(crate) fn get<T: StateValue>(&self) -> Option<State<T>> {
        let value = self.values.get(&TypeId::of::<T>())?.value.clone();
        value.downcast::<T>().ok().map(State)
    }

    /// Whether a value of the type `need` names was given.
    pub(crate) fn has(&self, need: &Need) -> bool {
        self.values.contains_key(&need.type_id)
    }

    /// Why job `job`, which takes the state `need` names, cannot run: no value of its type
    /// was given. Values are found by their exact type, so a value given as `Arc<T>` for a
    /// `State<T>` (or as `T` for a `State<Arc<T>>`) is named, with what to write instead.
    pub(crate) fn missing(&self, need: &Need, job: &str) -> String {
        let ty = std_paths(need.type_name);
        let given: Vec<String> = self
            .values
            .values()
            .map(|entry| std_paths(entry.type_name))
            .collect();
        let to = match self.given_to {
            GivenTo::Builder => "the builder",
            GivenTo::Run => "the run (`Run::state`)",
        };
        let arc = format!("std::sync::Arc<{ty}>");
        if given.contains(&arc) {
            return format!(
                "job `{job}` takes `State<{ty}>`, but the value given to {to} is an `{arc}`, \
                 and values are found by their exact type: give the `{ty}` itself \
                 (`.state(value)`, not `.state(Arc::new(value))`), as `State<{ty}>` holds it \
                 behind an `Arc` already"
            );
        }
        if let Some(inner) = ty
            .strip_prefix("std::sync::Arc<")
            .and_then(|rest| rest.strip_suffix('>'))
            && given.iter().any(|g| g == inner)
        {
            return format!(
                "job `{job}` takes `State<{ty}>`, but the value given to {to} is a `{inner}`, \
                 and values are found by their exact type: take `State<{inner}>`, which holds \
                 the value behind an `Arc` already"
            );
        }
        match self.given_to {
            GivenTo::Builder => format!(
                "job `{job}` takes `State<{ty}>`, but no value of type `{ty}` was given to the \
                 builder: add `.state(value)`"
            ),
            GivenTo::Run => format!(
                "job `{job}` takes `State<{ty}>`, but no value of type `{ty}` was given to the \
                 run (`Run::state`)"
            ),
        }
    }
}

/// `name`, a type's name as [`type_name`] gives it, with the paths of the standard library
/// as users write them: `std::` where it says `alloc::` or `core::`.
pub(crate) fn std_paths(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while !rest.is_empty() {
        // At the start of a path: not inside an identifier, nor after `::`.
        let at_path_start = !out.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':');
        if at_path_start {
            if let Some(tail) = rest.strip_prefix("alloc::") {
                out.push_str("std::");
                rest = tail;
                continue;
            }
            if let Some(tail) = rest.strip_prefix("core::") {
                out.push_str("std::");
                rest = tail;
                continue;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMap")
            .field("values", &self.values.len())
            .field("given_to", &self.given_to)
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
        let text = StateMap::default().missing(&Need::of::<Vec<u8>>(), "nightly_report");
        assert_eq!(
            text,
            "job `nightly_report` takes `State<std::vec::Vec<u8>>`, but no value of type \
             `std::vec::Vec<u8>` was given to the builder: add `.state(value)`"
        );
    }

    #[test]
    fn a_run_names_run_state() {
        let text = StateMap::given_to(GivenTo::Run).missing(&Need::of::<u32>(), "bounded");
        assert_eq!(
            text,
            "job `bounded` takes `State<u32>`, but no value of type `u32` was given to the run \
             (`Run::state`)"
        );
    }

    #[test]
    fn a_value_given_in_an_arc_is_named_with_what_to_write() {
        let mut map = StateMap::default();
        map.insert(Arc::new(String::from("db")));
        let text = map.missing(&Need::of::<String>(), "sync");
        assert_eq!(
            text,
            "job `sync` takes `State<std::string::String>`, but the value given to the builder \
             is an `std::sync::Arc<std::string::String>`, and values are found by their exact \
             type: give the `std::string::String` itself (`.state(value)`, not \
             `.state(Arc::new(value))`), as `State<std::string::String>` holds it behind an \
             `Arc` already"
        );
    }

    #[test]
    fn a_state_of_an_arc_whose_value_was_given_bare_says_to_take_the_value() {
        let mut map = StateMap::default();
        map.insert(String::from("db"));
        let text = map.missing(&Need::of::<Arc<String>>(), "sync");
        assert_eq!(
            text,
            "job `sync` takes `State<std::sync::Arc<std::string::String>>`, but the value given \
             to the builder is a `std::string::String`, and values are found by their exact \
             type: take `State<std::string::String>`, which holds the value behind an `Arc` \
             already"
        );
    }

    #[test]
    fn standard_paths_read_as_std() {
        assert_eq!(
            std_paths("alloc::sync::Arc<core::option::Option<alloc::string::String>>"),
            "std::sync::Arc<std::option::Option<std::string::String>>"
        );
        assert_eq!(
            std_paths("(alloc::vec::Vec<u8>, &core::time::Duration)"),
            "(std::vec::Vec<u8>, &std::time::Duration)"
        );
        // Only whole path segments at a path's start.
        assert_eq!(
            std_paths("myalloc::core::Pool<app::alloc::X>"),
            "myalloc::core::Pool<app::alloc::X>"
        );
    }
}

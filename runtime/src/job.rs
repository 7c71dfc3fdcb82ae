//! Jobs: what runs, when, and under which policies.
//!
//! A job is usually declared with [`#[scheduled]`](crate::scheduled) and discovered by the
//! scheduler. [`Job::new`] builds the same thing at run time, for jobs whose schedule comes
//! from configuration.

use std::{fmt, future::Future, sync::Arc, time::Duration};

use tickguard_schedule::{DstGap, DstOverlap, KeyTemplate, Schedule};

use crate::{
    circuit_breaker::CircuitBreaker,
    context::JobContext,
    error::Error,
    future::BoxFuture,
    handler::JobHandler,
    job_error::JobResult,
    metrics::SkipReason,
    retry::{RetryPolicy, RetryPredicate},
    state::Need,
};

/// The code a job runs.
pub(crate) type Handler = Arc<dyn Fn(JobContext) -> BoxFuture<'static, JobResult> + Send + Sync>;

/// The longest duration a setting may have (100 years): anything longer is a mistake, and
/// would overflow the clock's arithmetic.
pub(crate) const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A hook called after a run's last attempt failed, and after ticks were lost for good (see
/// [`FailureReport`]).
pub type FailureHook = Arc<dyn Fn(FailureReport) -> BoxFuture<'static, ()> + Send + Sync>;

/// Wraps an `async fn(FailureReport)` (or closure) as a [`FailureHook`].
pub fn failure_hook<F, Fut>(hook: F) -> FailureHook
where
    F: Fn(FailureReport) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |report| Box::pin(hook(report)))
}

/// What to do with ticks that were due while the process could not run them (suspended,
/// stopped, its clock jumped, or it was overloaded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Misfire {
    /// Skip every missed tick (counted in `tickguard_skips_total{reason="misfire"}`).
    Skip,
    /// Run once for the latest missed tick and skip the older ones. The default.
    #[default]
    RunOnce,
    /// Run every missed tick, oldest first, up to [`Misfire::RUN_ALL_LIMIT`] of them (older
    /// ones are skipped and counted).
    RunAll,
}

impl Misfire {
    /// The most missed ticks that [`Misfire::RunAll`] runs after one gap.
    pub const RUN_ALL_LIMIT: usize = 1000;
}

/// What a tick does when the job's previous execution is still running, on this instance
/// or any other (`overlap = "skip"`). [`Misfire`] is for ticks that came due while no
/// process could run them; this is for ticks that come due while the job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Overlap {
    /// The tick is skipped, counted in `tickguard_skips_total{reason="overlap"}` and
    /// reported lost. The default, except under [`Misfire::RunAll`].
    Skip,
    /// At most one tick waits: it runs right after the running execution ends; a later tick
    /// that comes due meanwhile replaces it (the replaced one is skipped as an overlap).
    BufferOne,
    /// Every tick waits and runs, oldest first, once the job is free. The default under
    /// [`Misfire::RunAll`].
    BufferAll,
    /// The running execution is asked to stop, on whatever instance it runs (its
    /// [`JobContext::cancelled`] fires, with [`CancelReason::Superseded`](crate::CancelReason)),
    /// and the new tick runs once it has.
    CancelOther,
}

impl Overlap {
    /// The policy's name, as the attribute takes it: `skip`, `buffer_one`, `buffer_all` or
    /// `cancel_other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::BufferOne => "buffer_one",
            Self::BufferAll => "buffer_all",
            Self::CancelOther => "cancel_other",
        }
    }
}

/// The lease lock a job runs under (`lock(ttl = "30s", at_least = "10s")`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockPolicy {
    /// How long a lease lives without renewal; the watchdog renews it every `ttl / 3`.
    pub ttl: Duration,
    /// The lease is held at least this long after it was taken, even if the job is done
    /// sooner (ShedLock's `lockAtLeastFor`).
    pub at_least: Duration,
}

impl LockPolicy {
    /// The ttl of a bare `lock`: 30 s, renewed every 10 s (as Redisson's watchdog).
    pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
    /// The `at_least` unless set: none, the lease is released as soon as the run ends.
    pub const DEFAULT_AT_LEAST: Duration = Duration::ZERO;
    /// The shortest ttl a lock may have: 30 ms. A shorter lease would expire between the
    /// watchdog's renewals.
    pub const MIN_TTL: Duration = Duration::from_millis(30);

    /// A lock with `ttl` and no `at_least`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            at_least: Self::DEFAULT_AT_LEAST,
        }
    }

    /// Holds the lease at least `at_least` after it was taken.
    pub fn at_least(mut self, at_least: Duration) -> Self {
        self.at_least = at_least;
        self
    }
}

impl Default for LockPolicy {
    fn default() -> Self {
        Self::new(Self::DEFAULT_TTL)
    }
}

/// The report a failure hook receives after a run's last attempt failed, timed out, or
/// was cancelled by lock loss, and after ticks of the job were lost for good (outcome
/// `skipped`: a misfire the policy skips, a tick a run overlapped, ticks left unrun at
/// shutdown).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FailureReport {
    /// The job's name.
    pub job: String,
    /// The execution's id. For `skipped`: for an idempotent job, the id of the latest lost
    /// tick's execution (`{job}@{tick}`, or its key), the one every instance gives that tick;
    /// empty for other jobs, whose execution ids are unique per run and which a lost tick
    /// never had.
    pub execution_id: String,
    /// The tick it ran for; for `skipped`, the latest tick lost.
    pub scheduled_at: chrono::DateTime<chrono::Utc>,
    /// The instance that ran it (for `skipped`, that lost the ticks).
    pub instance_id: String,
    /// Attempts made (0 for `skipped`).
    pub attempts: u32,
    /// How it ended: `failure`, `timeout`, `cancelled`, or `skipped` (ticks lost for good).
    pub outcome: &'static str,
    /// The error and its causes, outermost first; for `skipped`, one line that says why the
    /// ticks were lost.
    pub error_chain: Vec<String>,
    /// How long the run took, all attempts included (zero for `skipped`).
    pub duration: Duration,
    /// For `skipped`, why the ticks were lost: [`SkipReason::Misfire`],
    /// [`SkipReason::Overlap`] or [`SkipReason::Unavailable`]; `None` for a run's end.
    pub skip_reason: Option<SkipReason>,
    /// For `skipped`, how many ticks were lost (they count in
    /// `tickguard_ticks_lost_total`); 0 for a run's end.
    pub ticks_lost: u64,
}

impl fmt::Display for FailureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(reason) = self.skip_reason {
            return write!(
                f,
                "job `{}` lost {} tick(s), the latest {}: {}: {}",
                self.job,
                self.ticks_lost,
                self.scheduled_at,
                reason.as_str(),
                self.error_chain.join(": ")
            );
        }
        write!(
            f,
            "job `{}` execution `{}` ended in {} after {} attempt(s) in {:?}: {}",
            self.job,
            self.execution_id,
            self.outcome,
            self.attempts,
            self.duration,
            self.error_chain.join(": ")
        )
    }
}

/// A job: a name, a [`Schedule`], policies, and the code to run.
///
/// ```
/// use std::time::Duration;
/// use tickguard::{Job, JobContext, LockPolicy, RetryPolicy, Schedule};
///
/// let job = Job::new(
///     "sync_inventory",
///     Schedule::cron("0 */5 * * * *")?,
///     |ctx: JobContext| async move {
///         tracing::info!(tick = %ctx.scheduled_at(), "syncing");
///         Ok(())
///     },
/// )
/// .lock(LockPolicy::new(Duration::from_secs(60)))
/// .retry(RetryPolicy::attempts(3))
/// .idempotent();
/// assert_eq!(job.name(), "sync_inventory");
/// # Ok::<(), tickguard::ScheduleError>(())
/// ```
#[derive(Clone)]
pub struct Job {
    pub(crate) name: String,
    pub(crate) schedule: Schedule,
    pub(crate) jitter: Option<Duration>,
    pub(crate) lock: Option<LockPolicy>,
    pub(crate) retry: RetryPolicy,
    pub(crate) key: Option<KeyTemplate>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) misfire: Misfire,
    /// `None`: the default, which follows the misfire policy (see [`Job::overlap_policy`]).
    pub(crate) overlap: Option<Overlap>,
    pub(crate) circuit_breaker: Option<CircuitBreaker>,
    /// Pause the job after this many consecutive failed executions.
    pub(crate) pause_on_failure: Option<u32>,
    pub(crate) on_failure: Option<FailureHook>,
    pub(crate) location: String,
    pub(crate) handler: Handler,
    /// The application state the handler's arguments take, checked by the builder.
    pub(crate) needs: Vec<Need>,
}

impl Job {
    /// A job named `name` that runs `handler` on `schedule`, with no lock, no retries, not
    /// idempotent, no timeout, and the [`Misfire::RunOnce`] policy.
    ///
    /// The handler is an `async fn` or a closure returning a future, whose arguments (up to
    /// 6) are [`JobContext`] or [`State<T>`](crate::State), in any order, and whose future is
    /// `Send` and returns a [`JobResult`](crate::JobResult) (see [`JobHandler`]). A closure's
    /// arguments need their types written: `|ctx: JobContext| async move { .. }`; it takes
    /// `JobContext` by value, as `&JobContext` is for `#[scheduled]` fns only.
    #[track_caller]
    pub fn new<H, Args>(name: impl Into<String>, schedule: Schedule, handler: H) -> Self
    where
        H: JobHandler<Args>,
    {
        Self {
            name: name.into(),
            schedule,
            jitter: None,
            lock: None,
            retry: RetryPolicy::none(),
            key: None,
            timeout: None,
            misfire: Misfire::default(),
            overlap: None,
            circuit_breaker: None,
            pause_on_failure: None,
            on_failure: None,
            location: std::panic::Location::caller().to_string(),
            needs: H::needs(),
            handler: Arc::new(move |ctx| handler.call(ctx)),
        }
    }

    /// The job's name: its identity in locks, the store, logs and metrics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When the job fires.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Where the job was declared (`src/jobs.rs:12`).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Starts each tick's run up to `jitter` after the tick, so that jobs due at the same
    /// instant do not all hit a backend at once. The delay depends only on the job's name
    /// and the tick: every instance computes the same one, reaches the lock and the claim
    /// together, and the first wins. It never reaches the next tick (it ends 250 ms, or a
    /// quarter of the interval, before it).
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = Some(jitter);
        self
    }

    /// Runs the job under a lease lock.
    pub fn lock(mut self, policy: LockPolicy) -> Self {
        self.lock = Some(policy);
        self
    }

    /// Retries transient failures.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// At most one run per tick completes, across every instance: the execution id is
    /// `{job}@{tick}`, and a tick whose execution completed is skipped.
    pub fn idempotent(mut self) -> Self {
        self.key = Some(KeyTemplate::default_key());
        self
    }

    /// Like [`Job::idempotent`], with the execution id from a template such as
    /// `daily-orders-{date}` (see [`KeyTemplate`]).
    pub fn idempotent_key(mut self, template: &str) -> Result<Self, Error> {
        self.key = Some(
            KeyTemplate::parse(template).map_err(|source| Error::Schedule {
                job: self.name.clone(),
                source,
            })?,
        );
        Ok(self)
    }

    /// Stops a run (all attempts included) after `timeout`: its context is cancelled, and
    /// after a grace period its future is dropped.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// What to do with missed ticks.
    pub fn misfire(mut self, misfire: Misfire) -> Self {
        self.misfire = misfire;
        self
    }

    /// What a tick does when the job's previous execution is still running anywhere (see
    /// [`Overlap`]).
    pub fn overlap(mut self, overlap: Overlap) -> Self {
        self.overlap = Some(overlap);
        self
    }

    /// The overlap policy in force: the one set, or [`Overlap::BufferAll`] under
    /// [`Misfire::RunAll`] (which runs every tick) and [`Overlap::Skip`] otherwise.
    pub fn overlap_policy(&self) -> Overlap {
        self.overlap.unwrap_or(match self.misfire {
            Misfire::RunAll => Overlap::BufferAll,
            Misfire::Skip | Misfire::RunOnce => Overlap::Skip,
        })
    }

    /// Skips the job's ticks while its recent executions fail too often (see
    /// [`CircuitBreaker`]).
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.circuit_breaker = Some(breaker);
        self
    }

    /// Pauses the job, for every instance, after `failures` consecutive failed executions,
    /// with a note that says why; `tickguard resume` restarts it.
    pub fn pause_on_failure(mut self, failures: u32) -> Self {
        self.pause_on_failure = Some(failures);
        self
    }

    /// Calls `hook` (an `async fn(FailureReport)` or a closure returning a future) after a
    /// run's last attempt fails, times out, or loses its lock, and after ticks of the job
    /// are lost for good (outcome `skipped`, see [`FailureReport`]).
    pub fn on_failure<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(FailureReport) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_failure = Some(failure_hook(hook));
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| {
            Err(Error::InvalidJob {
                job: self.name.clone(),
                reason,
            })
        };
        if self.name.trim().is_empty() {
            return invalid("the name is empty".to_owned());
        }
        let durations = [
            ("timeout", self.timeout),
            ("jitter", self.jitter),
            ("lock ttl", self.lock.map(|l| l.ttl)),
            ("lock at_least", self.lock.map(|l| l.at_least)),
            ("retry backoff", Some(self.retry.backoff)),
            ("retry max_delay", Some(self.retry.max_delay)),
        ];
        for (what, d) in durations {
            if let Some(d) = d
                && d > LONGEST
            {
                return invalid(format!("{what} {d:?} is longer than 100 years"));
            }
        }
        if let Some(lock) = self.lock {
            if lock.ttl < LockPolicy::MIN_TTL {
                return invalid(format!(
                    "lock ttl {:?} is too short: at least {:?}",
                    lock.ttl,
                    LockPolicy::MIN_TTL
                ));
            }
            if lock.at_least > lock.ttl {
                return invalid(format!(
                    "lock at_least ({:?}) is longer than its ttl ({:?}): the lease would expire first",
                    lock.at_least, lock.ttl
                ));
            }
        }
        if let Err(reason) = self.retry.validate() {
            return invalid(reason);
        }
        if let Some(Err(reason)) = self.circuit_breaker.as_ref().map(CircuitBreaker::validate) {
            return invalid(reason);
        }
        if self.pause_on_failure == Some(0) {
            return invalid("pause_on_failure must be at least 1".to_owned());
        }
        Ok(())
    }

    /// Builds a job from the description `#[scheduled]` generates, applying the defaults of
    /// every setting the attribute left out ([`LockPolicy::DEFAULT_TTL`],
    /// [`RetryPolicy::DEFAULT_ATTEMPTS`], [`Misfire::RunOnce`], ...): the description holds
    /// only what the user wrote.
    #[doc(hidden)]
    pub fn from_def(def: &'static JobDef) -> Self {
        // The attribute validated every field it was given at compile time with the same
        // parser, so these conversions cannot fail for a generated description. Checks that
        // involve a default (an `at_least` over the default ttl) are made by `validate`.
        let schedule = match def.trigger {
            Trigger::Cron(expr) => Schedule::cron(expr).and_then(|s| {
                let s = s
                    .dst_gap(def.dst_gap.unwrap_or_default())
                    .dst_overlap(def.dst_overlap.unwrap_or_default());
                match def.zone {
                    Some(zone) => s.in_zone(zone),
                    None => Ok(s),
                }
            }),
            Trigger::Every(d) => Schedule::every(d),
            Trigger::After(d) => Schedule::after(d),
        };
        let schedule = schedule.unwrap_or_else(|e| {
            panic!(
                "#[scheduled] job `{}` has an invalid schedule: {e}",
                def.name
            )
        });
        let key = def.idempotent.map(|k| match k {
            None => KeyTemplate::default_key(),
            Some(template) => KeyTemplate::parse(template).unwrap_or_else(|e| {
                panic!("#[scheduled] job `{}` has an invalid key: {e}", def.name)
            }),
        });
        let run = def.run;
        Self {
            name: def.name.to_owned(),
            schedule,
            jitter: def.jitter,
            lock: def.lock.map(LockDef::policy),
            retry: def.retry.map_or_else(RetryPolicy::none, RetryDef::policy),
            key,
            timeout: def.timeout,
            misfire: def.misfire.unwrap_or_default(),
            overlap: def.overlap,
            circuit_breaker: def.circuit_breaker.map(BreakerDef::policy),
            pause_on_failure: def.pause_on_failure,
            on_failure: def.on_failure.map(|hook| Arc::new(hook) as FailureHook),
            location: format!("{}:{}", def.file, def.line),
            handler: Arc::new(run),
            needs: def.needs.iter().filter_map(|need| need()).collect(),
        }
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("schedule", &self.schedule.to_string())
            .field("lock", &self.lock)
            .field("retry", &self.retry)
            .field("idempotent", &self.key.is_some())
            .field("timeout", &self.timeout)
            .field("misfire", &self.misfire)
            .field("overlap", &self.overlap_policy())
            .field("circuit_breaker", &self.circuit_breaker)
            .field("pause_on_failure", &self.pause_on_failure)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl From<&'static JobDef> for Job {
    fn from(def: &'static JobDef) -> Self {
        Self::from_def(def)
    }
}

/// The static description `#[scheduled]` emits beside a job's fn: the arguments as written,
/// `None` where one was left out (the runtime applies its defaults in [`Job::from_def`]). Not
/// public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct JobDef {
    pub name: &'static str,
    pub trigger: Trigger,
    pub zone: Option<&'static str>,
    pub jitter: Option<Duration>,
    pub lock: Option<LockDef>,
    pub retry: Option<RetryDef>,
    pub idempotent: Option<Option<&'static str>>,
    pub timeout: Option<Duration>,
    pub misfire: Option<Misfire>,
    pub overlap: Option<Overlap>,
    pub circuit_breaker: Option<BreakerDef>,
    pub pause_on_failure: Option<u32>,
    pub dst_gap: Option<DstGap>,
    pub dst_overlap: Option<DstOverlap>,
    pub on_failure: Option<fn(FailureReport) -> BoxFuture<'static, ()>>,
    pub file: &'static str,
    pub line: u32,
    /// For each argument of the fn, the application state it takes, if any.
    pub needs: &'static [fn() -> Option<Need>],
    pub run: fn(JobContext) -> BoxFuture<'static, JobResult>,
}

impl JobDef {
    /// What `#[scheduled]` emits in place of a job's description when its arguments or
    /// signature are in error, beside the `compile_error!`s: `job!(f)` elsewhere then
    /// resolves, so that one mistake gives one error. It is never registered nor run (the
    /// crate does not compile).
    pub const fn stand_in(name: &'static str) -> Self {
        fn run(_: JobContext) -> BoxFuture<'static, JobResult> {
            unreachable!("a stand-in job description is never run: its crate does not compile")
        }
        Self {
            name,
            trigger: Trigger::Every(Duration::from_secs(1)),
            zone: None,
            jitter: None,
            lock: None,
            retry: None,
            idempotent: None,
            timeout: None,
            misfire: None,
            overlap: None,
            circuit_breaker: None,
            pause_on_failure: None,
            dst_gap: None,
            dst_overlap: None,
            on_failure: None,
            file: "",
            line: 0,
            needs: &[],
            run,
        }
    }
}

/// Part of [`JobDef`]. Not public API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Trigger {
    Cron(&'static str),
    Every(Duration),
    After(Duration),
}

/// Part of [`JobDef`]: `lock` or `lock(...)`, each setting `None` unless written. Not public
/// API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct LockDef {
    pub ttl: Option<Duration>,
    pub at_least: Option<Duration>,
}

impl LockDef {
    /// The policy, with [`LockPolicy`]'s defaults where a setting was left out.
    fn policy(self) -> LockPolicy {
        LockPolicy::new(self.ttl.unwrap_or(LockPolicy::DEFAULT_TTL))
            .at_least(self.at_least.unwrap_or(LockPolicy::DEFAULT_AT_LEAST))
    }
}

/// Part of [`JobDef`]: `retry` or `retry(...)`, each setting `None` unless written. Not
/// public API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct RetryDef {
    pub attempts: Option<u32>,
    pub backoff: Option<Duration>,
    pub factor: Option<f64>,
    pub max_delay: Option<Duration>,
    pub jitter: Option<f64>,
    pub when: Option<RetryPredicate>,
}

impl RetryDef {
    /// The policy, with [`RetryPolicy`]'s defaults where a setting was left out.
    fn policy(self) -> RetryPolicy {
        let mut policy =
            RetryPolicy::attempts(self.attempts.unwrap_or(RetryPolicy::DEFAULT_ATTEMPTS));
        if let Some(backoff) = self.backoff {
            policy = policy.backoff(backoff);
        }
        if let Some(factor) = self.factor {
            policy = policy.factor(factor);
        }
        if let Some(max_delay) = self.max_delay {
            policy = policy.max_delay(max_delay);
        }
        if let Some(jitter) = self.jitter {
            policy = policy.jitter(jitter);
        }
        if let Some(when) = self.when {
            policy = policy.when(when);
        }
        policy
    }
}

/// Part of [`JobDef`]: `circuit_breaker` or `circuit_breaker(...)`, each setting `None`
/// unless written. Not public API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct BreakerDef {
    pub name: Option<&'static str>,
    pub failure_rate: Option<f64>,
    pub window: Option<u32>,
    pub min_runs: Option<u32>,
    pub open_for: Option<Duration>,
}

impl BreakerDef {
    /// The breaker, with [`CircuitBreaker`]'s defaults where a setting was left out.
    fn policy(self) -> CircuitBreaker {
        let mut breaker = CircuitBreaker::new();
        if let Some(name) = self.name {
            breaker = breaker.name(name);
        }
        if let Some(rate) = self.failure_rate {
            breaker = breaker.failure_rate(rate);
        }
        if let Some(window) = self.window {
            breaker = breaker.window(window);
        }
        if let Some(min_runs) = self.min_runs {
            breaker = breaker.min_runs(min_runs);
        }
        if let Some(open_for) = self.open_for {
            breaker = breaker.open_for(open_for);
        }
        breaker
    }
}

/// A discovered job, submitted by `#[scheduled]`. Not public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct Registration(pub &'static JobDef);

inventory::collect!(Registration);

/// Every job declared with `#[scheduled]` in the binary.
pub(crate) fn discovered() -> impl Iterator<Item = &'static JobDef> {
    inventory::iter::<Registration>.into_iter().map(|r| r.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(_: JobContext) -> BoxFuture<'static, JobResult> {
        Box::pin(async { Ok(()) })
    }

    /// A description with every optional setting left out, as `#[scheduled(...)]` emits it
    /// (the stand-in leaves out every one).
    const fn def(name: &'static str) -> JobDef {
        JobDef {
            trigger: Trigger::Cron("0 * * * * *"),
            file: "src/jobs.rs",
            line: 7,
            run,
            ..JobDef::stand_in(name)
        }
    }

    static PLAIN: JobDef = def("plain");

    static BARE_LOCK_AND_RETRY: JobDef = JobDef {
        lock: Some(LockDef {
            ttl: None,
            at_least: None,
        }),
        retry: Some(RetryDef {
            attempts: None,
            backoff: None,
            factor: None,
            max_delay: None,
            jitter: None,
            when: None,
        }),
        ..def("bare")
    };

    static AT_LEAST_OVER_DEFAULT_TTL: JobDef = JobDef {
        lock: Some(LockDef {
            ttl: None,
            at_least: Some(Duration::from_secs(60)),
        }),
        ..def("held_long")
    };

    static STAND_IN: JobDef = JobDef::stand_in("broken");

    #[test]
    fn a_stand_in_builds_a_job_of_its_name() {
        assert_eq!(Job::from_def(&STAND_IN).name(), "broken");
    }

    #[test]
    fn settings_left_out_take_the_runtimes_defaults() {
        let job = Job::from_def(&PLAIN);
        assert_eq!(job.lock, None);
        assert_eq!(job.retry.max_attempts(), 1);
        assert_eq!(job.misfire, Misfire::default());
        assert_eq!(job.schedule.zone().name(), "UTC");
        assert_eq!(job.location, "src/jobs.rs:7");
        job.validate().unwrap();
    }

    #[test]
    fn a_bare_lock_and_retry_take_the_policies_defaults() {
        let job = Job::from_def(&BARE_LOCK_AND_RETRY);
        assert_eq!(job.lock, Some(LockPolicy::default()));
        assert_eq!(job.lock.map(|l| l.ttl), Some(LockPolicy::DEFAULT_TTL));
        let retry = job.retry;
        assert_eq!(retry.attempts, RetryPolicy::DEFAULT_ATTEMPTS);
        assert_eq!(retry.backoff, RetryPolicy::DEFAULT_BACKOFF);
        assert_eq!(retry.factor, RetryPolicy::DEFAULT_FACTOR);
        assert_eq!(retry.max_delay, RetryPolicy::DEFAULT_MAX_DELAY);
        assert_eq!(retry.jitter, RetryPolicy::DEFAULT_JITTER);
        assert!(retry.when.is_none());
        job.validate().unwrap();
    }

    #[test]
    fn at_least_over_the_default_ttl_is_refused_at_startup_naming_the_job() {
        let job = Job::from_def(&AT_LEAST_OVER_DEFAULT_TTL);
        match job.validate() {
            Err(Error::InvalidJob { job, reason }) => {
                assert_eq!(job, "held_long");
                assert!(reason.contains("at_least (60s)"), "{reason}");
                assert!(reason.contains("ttl (30s)"), "{reason}");
            }
            other => panic!("expected InvalidJob, got {other:?}"),
        }
    }
}

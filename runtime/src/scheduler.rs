//! The [`Scheduler`]: fires each job at its ticks and shuts down gracefully.

use std::{
    collections::HashMap, future::Future, panic::AssertUnwindSafe, pin::Pin, sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use tokio::time::{sleep, timeout};
use tokio_util::{
    sync::{CancellationToken, WaitForCancellationFutureOwned},
    task::TaskTracker,
};

use crate::{
    Error, Job,
    clock::Clock,
    executor::{self, JobEntry, Runtime},
    job::{FailureHook, Misfire, failure_hook},
    lock::{InProcessLock, LockBackend},
    metrics::{self, JobMetrics, SkipReason},
    store::{ExecutionStore, JobRegistration, MemoryStore},
};

/// The longest a job sleeps before it re-reads the wall clock. Tokio's timers run on the
/// monotonic clock, which stands still while a machine is suspended; re-reading at least this
/// often bounds how late a tick can be noticed after a resume. At 10,000 jobs this is about
/// 170 wake-ups a second, each a few microseconds.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Configures and builds a [`Scheduler`]; see [`Scheduler::builder`].
#[must_use = "call .build().await to get a Scheduler"]
pub struct SchedulerBuilder {
    jobs: Vec<Job>,
    discover: bool,
    lock: Option<Arc<dyn LockBackend>>,
    /// Set by [`SchedulerBuilder::redis`]: connected in `build()`.
    #[cfg(feature = "redis")]
    redis_url: Option<String>,
    /// Set by [`SchedulerBuilder::postgres_lock`]: connected in `build()`.
    #[cfg(feature = "postgres")]
    postgres_lock_url: Option<String>,
    store: Option<Arc<dyn ExecutionStore>>,
    /// Set by [`SchedulerBuilder::postgres`]: connected in `build()`.
    #[cfg(feature = "postgres")]
    postgres_store_url: Option<String>,
    /// Set by [`SchedulerBuilder::sqlite`]: opened in `build()`.
    #[cfg(feature = "sqlite")]
    sqlite_url: Option<String>,
    /// Set by [`SchedulerBuilder::prometheus`]: served from `build()`.
    #[cfg(feature = "prometheus")]
    prometheus_addr: Option<String>,
    /// Set by [`SchedulerBuilder::alert_webhook`]: its delivery task starts in `build()`.
    #[cfg(feature = "webhook")]
    webhooks: Vec<crate::Webhook>,
    instance_id: Option<String>,
    shutdown_grace: Duration,
    cancel_grace: Duration,
    misfire_threshold: Duration,
    liveness: Duration,
    hooks: Vec<FailureHook>,
    clock: Clock,
}

impl SchedulerBuilder {
    /// Adds a job built at run time, or one declared with `#[scheduled]` when discovery is
    /// off (`.job(tickguard::job!(my_job))`).
    pub fn job(mut self, job: impl Into<Job>) -> Self {
        self.jobs.push(job.into());
        self
    }

    /// Whether to run every `#[scheduled]` fn linked into the binary (on by default).
    /// Turn it off to register jobs one by one with [`SchedulerBuilder::job`].
    pub fn discover(mut self, discover: bool) -> Self {
        self.discover = discover;
        self
    }

    /// The lock backend (default: [`InProcessLock`]). Pass an `Arc` to keep a handle.
    pub fn lock_backend(mut self, backend: impl LockBackend) -> Self {
        self.lock = Some(Arc::new(backend));
        self
    }

    /// Locks jobs in the Redis server at `url` (`redis://[user:password@]host[:port][/db]`),
    /// under the default key prefix `tickguard:lock:`. [`SchedulerBuilder::build`] connects
    /// and checks that the server answers, and fails with [`Error::Lock`], naming the address
    /// and what to check, if it does not.
    ///
    /// For a ready client, another key prefix, or a custom connection, build a
    /// [`RedisLock`](crate::lock::RedisLock) and pass it to
    /// [`SchedulerBuilder::lock_backend`] instead.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// Locks jobs in the PostgreSQL database at `url`
    /// (`postgres://[user[:password]@]host[:port]/database`), as rows of the table
    /// `public.tickguard_locks`, which is created if missing. [`SchedulerBuilder::build`]
    /// connects and creates the table, and fails with [`Error::Lock`], naming the address and
    /// what to check, if it cannot.
    ///
    /// For a ready pool or another schema, build a
    /// [`PostgresLock`](crate::lock::PostgresLock) and pass it to
    /// [`SchedulerBuilder::lock_backend`] instead:
    /// `.lock_backend(PostgresLock::from_pool(pool))`.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn postgres_lock(mut self, url: impl Into<String>) -> Self {
        self.postgres_lock_url = Some(url.into());
        self
    }

    /// The execution store (default: [`MemoryStore`]). Pass an `Arc` to keep a handle.
    pub fn store(mut self, store: impl ExecutionStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Keeps executions in the PostgreSQL database at `url`
    /// (`postgres://[user[:password]@]host[:port]/database`), in schema `public`: claims,
    /// fences, checkpoints, `once` steps and history that every instance sharing the
    /// database agrees on. [`SchedulerBuilder::build`] connects and creates or migrates the
    /// tables, and fails with [`Error::Store`], naming the address and what to check, if it
    /// cannot. For another schema or a ready pool, build a
    /// [`PostgresStore`](crate::store::PostgresStore) and pass it to
    /// [`SchedulerBuilder::store`].
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn postgres(mut self, url: impl Into<String>) -> Self {
        self.postgres_store_url = Some(url.into());
        self
    }

    /// Serves every tickguard metric to Prometheus at `addr` (`0.0.0.0:9464`, or
    /// `127.0.0.1:9464` for the host only): `GET /metrics` (any path answers) returns the
    /// text exposition, with histograms bucketed for job durations and lock round trips
    /// (see [`metrics::prometheus_builder`](crate::metrics::prometheus_builder)).
    /// [`SchedulerBuilder::build`] installs the recorder for the whole process and starts
    /// listening; it fails with [`Error::Config`] if the address is not `ip:port`, the port is
    /// taken, or the process already has a metrics recorder (then leave this out: tickguard
    /// records through whichever recorder is installed).
    ///
    /// Prometheus adds its own `job` label to every scraped series; scrape tickguard with
    /// `honor_labels: true` so that the `job` label stays the tickguard job's name (see
    /// `docs/observability/README.md`).
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn prometheus(mut self, addr: impl Into<String>) -> Self {
        self.prometheus_addr = Some(addr.into());
        self
    }

    /// Keeps executions in the SQLite database file at `url` (`sqlite://tickguard.db`),
    /// created if missing: the embedded persistent store, with no server. History survives
    /// restarts, so ticks missed while the process was down follow the job's misfire policy,
    /// and interrupted executions resume. [`SchedulerBuilder::build`] opens the file and
    /// creates or migrates the tables, and fails with [`Error::Store`] if it cannot.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub fn sqlite(mut self, url: impl Into<String>) -> Self {
        self.sqlite_url = Some(url.into());
        self
    }

    /// This instance's id in locks, executions and logs (default: `{hostname}-{pid}-{random}`).
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// How long shutdown waits for running jobs before it cancels them (default 30 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// How long a cancelled run (timeout, shutdown, lock loss) may take to return before its
    /// future is dropped (default 5 s; after a lock loss, never more than ttl/3).
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }

    /// How late a tick may be noticed and still count as on time (default 5 s). A tick
    /// noticed later is a misfire and follows the job's [`Misfire`] policy.
    pub fn misfire_threshold(mut self, threshold: Duration) -> Self {
        self.misfire_threshold = threshold;
        self
    }

    /// How long an execution's owner may go without a heartbeat before another instance
    /// counts it as gone (default 30 s; heartbeats go every third of it).
    pub fn liveness(mut self, liveness: Duration) -> Self {
        self.liveness = liveness;
        self
    }

    /// Calls `hook` after any job's run fails its last attempt (after the job's own
    /// `on_failure`).
    pub fn on_failure<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(crate::FailureReport) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hooks.push(failure_hook(hook));
        self
    }

    /// Sends every failure report (a run that failed after its last attempt, timed out, or
    /// lost its lock) to `webhook` as a JSON `POST`, Slack-compatible; see
    /// [`Webhook`](crate::Webhook). Delivery runs in a task of its own, retried with backoff
    /// and bounded by a timeout: a webhook that is slow or down never holds a job or the
    /// scheduler.
    #[cfg(feature = "webhook")]
    #[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
    pub fn alert_webhook(mut self, webhook: crate::Webhook) -> Self {
        self.webhooks.push(webhook);
        self
    }

    /// Reads the wall clock from `clock` (tests).
    #[cfg(feature = "testing")]
    pub fn clock(mut self, clock: crate::testing::TestClock) -> Self {
        self.clock = clock.into_clock();
        self
    }

    /// Checks the configuration, connects the backends, registers the jobs.
    #[cfg_attr(not(feature = "webhook"), allow(unused_mut))]
    pub async fn build(mut self) -> Result<Scheduler, Error> {
        for (what, d) in [
            ("shutdown_grace", self.shutdown_grace),
            ("cancel_grace", self.cancel_grace),
            ("misfire_threshold", self.misfire_threshold),
            ("liveness", self.liveness),
        ] {
            if d > crate::job::LONGEST {
                return Err(Error::Config(format!(
                    "{what} {d:?} is longer than 100 years"
                )));
            }
        }
        if self.liveness < Duration::from_millis(30) {
            return Err(Error::Config(format!(
                "liveness {:?} is too short: at least 30ms",
                self.liveness
            )));
        }
        let mut jobs = self.jobs;
        if self.discover {
            jobs.extend(crate::job::discovered().map(Job::from_def));
        }
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for job in &jobs {
            job.validate()?;
            if let Some(first) = seen.insert(&job.name, &job.location) {
                return Err(Error::DuplicateJob {
                    name: job.name.clone(),
                    first: first.to_owned(),
                    second: job.location.clone(),
                });
            }
        }
        let mut named: Vec<&str> = Vec::new();
        #[cfg(feature = "redis")]
        if self.redis_url.is_some() {
            named.push(".redis(..)");
        }
        #[cfg(feature = "postgres")]
        if self.postgres_lock_url.is_some() {
            named.push(".postgres_lock(..)");
        }
        if self.lock.is_some() {
            named.push(".lock_backend(..)");
        }
        if let [first, .., last] = named.as_slice() {
            let all = if named.len() == 2 {
                format!("both {first} and {last}")
            } else {
                format!("{} and {last}", named[..named.len() - 1].join(", "))
            };
            return Err(Error::Config(format!(
                "{all} name a lock backend; keep one"
            )));
        }
        let mut stores: Vec<&str> = Vec::new();
        #[cfg(feature = "postgres")]
        if self.postgres_store_url.is_some() {
            stores.push(".postgres(..)");
        }
        #[cfg(feature = "sqlite")]
        if self.sqlite_url.is_some() {
            stores.push(".sqlite(..)");
        }
        if self.store.is_some() {
            stores.push(".store(..)");
        }
        if let [first, .., last] = stores.as_slice() {
            let all = if stores.len() == 2 {
                format!("both {first} and {last}")
            } else {
                format!("{} and {last}", stores[..stores.len() - 1].join(", "))
            };
            return Err(Error::Config(format!(
                "{all} name an execution store; keep one"
            )));
        }
        #[allow(unused_mut)] // without a backend feature, nothing replaces it
        let mut store = self.store;
        #[cfg(feature = "postgres")]
        if let Some(url) = self.postgres_store_url {
            store = Some(Arc::new(crate::store::PostgresStore::connect(&url).await?));
        }
        #[cfg(feature = "sqlite")]
        if let Some(url) = self.sqlite_url {
            store = Some(Arc::new(crate::store::SqliteStore::connect(&url).await?));
        }
        #[allow(unused_mut)] // without a backend feature, nothing replaces it
        let mut lock = self.lock;
        #[cfg(feature = "redis")]
        if let Some(url) = self.redis_url {
            lock = Some(Arc::new(crate::lock::RedisLock::connect(&url).await?));
        }
        #[cfg(feature = "postgres")]
        if let Some(url) = self.postgres_lock_url {
            lock = Some(Arc::new(crate::lock::PostgresLock::connect(&url).await?));
        }
        #[cfg(feature = "webhook")]
        let alerts = {
            let stop = CancellationToken::new();
            let mut tasks = Vec::new();
            for webhook in self.webhooks {
                let (queue, task) = webhook.start(stop.clone());
                tasks.push(task);
                self.hooks
                    .push(failure_hook(move |report: crate::FailureReport| {
                        let queued = queue.try_send(report);
                        async move {
                            if let Err(e) = queued {
                                tracing::error!(
                                    error = %e,
                                    "alert webhook queue full or closed; this alert is dropped"
                                );
                            }
                        }
                    }));
            }
            (stop, tasks)
        };
        let store = store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let now = self.clock.now();
        let mut resume_points = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let registration = JobRegistration::new(
                &job.name,
                job.schedule.to_string(),
                job.schedule.zone().to_string(),
                job.schedule.next_after(now),
            )
            .registered_at(now);
            let record = store.register(&registration).await?;
            // Ticks after the latest one any instance claimed, or after the job was first
            // registered, are due: those before `now` were missed while no instance ran.
            resume_points.push(record.last_tick.unwrap_or(record.created_at).min(now));
        }
        // Last of what can fail: a scheduler that is not built leaves no endpoint behind.
        #[cfg(feature = "prometheus")]
        let exporter = match &self.prometheus_addr {
            Some(addr) => Some(crate::prometheus::serve(addr)?),
            None => None,
        };
        metrics::describe();
        #[cfg(any(feature = "postgres", feature = "sqlite"))]
        let records_next_fire = store.sql().is_some();
        #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
        let records_next_fire = false;
        let stop_runs = CancellationToken::new();
        let firing = CancellationToken::new();
        let runtime = Runtime {
            lock: lock.unwrap_or_else(|| Arc::new(InProcessLock::new())),
            store,
            instance_id: self.instance_id.unwrap_or_else(default_instance_id).into(),
            clock: self.clock,
            hooks: self.hooks,
            cancel_grace: self.cancel_grace,
            liveness: self.liveness,
            records_next_fire,
            stop_runs: stop_runs.clone(),
        };
        let entries = jobs
            .into_iter()
            .zip(resume_points)
            .map(|(job, resume_from)| {
                Arc::new(JobEntry {
                    metrics: JobMetrics::new(&job.name),
                    stop: Arc::new(stop_runs.child_token()),
                    // One child token per job: each sleep waits on its own token, not on a
                    // waiter list (and mutex) shared by every job.
                    firing: firing.child_token(),
                    resume_from,
                    interrupted: Default::default(),
                    job,
                })
            })
            .collect();
        Ok(Scheduler {
            rt: Arc::new(runtime),
            #[cfg(feature = "webhook")]
            alerts,
            #[cfg(feature = "prometheus")]
            exporter,
            firing,
            entries,
            shutdown_grace: self.shutdown_grace,
            misfire_threshold: self.misfire_threshold,
        })
    }
}

fn default_instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "host".to_owned());
    format!("{host}-{}-{:04x}", std::process::id(), fastrand::u16(..))
}

/// Runs jobs at their ticks, guarded by a lease lock and an execution store.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> Result<(), tickguard::Error> {
///     tickguard::Scheduler::builder()
///         .build()
///         .await? // discovers every #[scheduled] fn
///         .run_until(tokio::signal::ctrl_c())
///         .await
/// }
/// ```
pub struct Scheduler {
    rt: Arc<Runtime>,
    /// The alert webhooks' delivery: stopped (after a last flush) with the scheduler.
    #[cfg(feature = "webhook")]
    alerts: (CancellationToken, Vec<tokio::task::JoinHandle<()>>),
    /// The Prometheus endpoint's task, stopped with the scheduler.
    #[cfg(feature = "prometheus")]
    exporter: Option<tokio::task::JoinHandle<()>>,
    /// Cancelled when shutdown begins; each job loop waits on a child.
    firing: CancellationToken,
    entries: Vec<Arc<JobEntry>>,
    shutdown_grace: Duration,
    misfire_threshold: Duration,
}

impl Scheduler {
    /// A builder with the embedded defaults: an in-process lock, an in-memory store, and
    /// discovery of every `#[scheduled]` fn.
    pub fn builder() -> SchedulerBuilder {
        SchedulerBuilder {
            jobs: Vec::new(),
            discover: true,
            lock: None,
            #[cfg(feature = "redis")]
            redis_url: None,
            #[cfg(feature = "postgres")]
            postgres_lock_url: None,
            store: None,
            #[cfg(feature = "postgres")]
            postgres_store_url: None,
            #[cfg(feature = "sqlite")]
            sqlite_url: None,
            #[cfg(feature = "prometheus")]
            prometheus_addr: None,
            #[cfg(feature = "webhook")]
            webhooks: Vec::new(),
            instance_id: None,
            shutdown_grace: Duration::from_secs(30),
            cancel_grace: Duration::from_secs(5),
            misfire_threshold: Duration::from_secs(5),
            liveness: Duration::from_secs(30),
            hooks: Vec::new(),
            clock: Clock::default(),
        }
    }

    /// The registered jobs.
    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.entries.iter().map(|e| &e.job)
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &str {
        &self.rt.instance_id
    }

    /// The execution store, to read history.
    pub fn store(&self) -> Arc<dyn ExecutionStore> {
        self.rt.store.clone()
    }

    /// Runs until `signal` completes, then shuts down gracefully: stops firing, waits for
    /// running jobs up to the shutdown grace period, then cancels them through their
    /// context and waits up to the cancel grace period for them to return.
    #[cfg_attr(not(feature = "webhook"), allow(unused_mut))]
    pub async fn run_until<S: Future>(mut self, signal: S) -> Result<(), Error> {
        let firing = self.firing.clone();
        let loops = TaskTracker::new();
        tracing::info!(
            instance_id = %self.rt.instance_id,
            jobs = self.entries.len(),
            lock = %self.rt.lock.describe(),
            store = %self.rt.store.describe(),
            "scheduler started"
        );
        for entry in &self.entries {
            tracing::info!(job = %entry.job.name, schedule = %entry.job.schedule, location = %entry.job.location, "job registered");
            loops.spawn(job_loop(
                self.rt.clone(),
                entry.clone(),
                entry.firing.clone(),
                self.misfire_threshold,
            ));
        }
        let resumable: Vec<Arc<JobEntry>> = self
            .entries
            .iter()
            .filter(|e| e.job.key.is_some())
            .cloned()
            .collect();
        if !resumable.is_empty() {
            loops.spawn(recover_interrupted(
                self.rt.clone(),
                resumable,
                firing.child_token(),
            ));
        }
        loops.close();
        signal.await;
        tracing::info!("shutting down: no new runs");
        firing.cancel();
        // Idle jobs return at once; a job with a run in progress returns when the run ends.
        if timeout(self.shutdown_grace, loops.wait()).await.is_err() {
            tracing::warn!(
                running = loops.len(),
                grace = ?self.shutdown_grace,
                "runs still in progress after the shutdown grace period; cancelling them"
            );
            self.rt.stop_runs.cancel();
            // Each run drops its job after the cancel grace; allow for recording and release.
            let _ = timeout(self.rt.cancel_grace + Duration::from_secs(5), loops.wait()).await;
        }
        #[cfg(feature = "prometheus")]
        if let Some(exporter) = &self.exporter {
            exporter.abort();
        }
        #[cfg(feature = "webhook")]
        {
            let (stop, tasks) = &mut self.alerts;
            stop.cancel();
            // The flush is bounded inside; this bounds it again, whatever happens.
            for task in tasks.iter_mut() {
                if timeout(Duration::from_secs(25), task).await.is_err() {
                    tracing::error!("alert delivery did not stop in time; abandoned");
                }
            }
        }
        tracing::info!("scheduler stopped");
        Ok(())
    }
}

/// Why a job loop's sleep ended.
enum Wake {
    /// The wall clock reached the target.
    Due,
    /// Interrupted executions wait to be resumed.
    Resume,
    /// Firing stopped.
    Stopped,
}

impl Drop for Scheduler {
    /// Stops what the scheduler started besides its jobs (the Prometheus endpoint, the alert
    /// delivery), also when it is dropped without running.
    fn drop(&mut self) {
        #[cfg(feature = "prometheus")]
        if let Some(exporter) = &self.exporter {
            exporter.abort();
        }
        #[cfg(feature = "webhook")]
        {
            self.alerts.0.cancel();
            for task in &self.alerts.1 {
                task.abort();
            }
        }
    }
}

/// Sleeps until the wall clock reads `target`, interrupted executions of the job are queued,
/// or firing stops. `stopped` is the job loop's one registration with its shutdown token,
/// kept across sleeps.
async fn sleep_until_wall(
    clock: &Clock,
    target: DateTime<Utc>,
    firing: &CancellationToken,
    stopped: &mut Pin<&mut WaitForCancellationFutureOwned>,
    resume: &tokio::sync::Notify,
) -> Wake {
    loop {
        let now = clock.now();
        // Re-checked after every wake: a wall clock set back makes this sleep again instead
        // of firing early.
        let left = (target - now).to_std().unwrap_or_default();
        if left.is_zero() {
            return if firing.is_cancelled() {
                Wake::Stopped
            } else {
                Wake::Due
            };
        }
        tokio::select! {
            biased;
            () = stopped.as_mut() => return Wake::Stopped,
            () = resume.notified() => return Wake::Resume,
            () = sleep(left.min(MAX_SLEEP)) => {}
        }
    }
}

/// Fires one job's ticks until shutdown. Runs execute in this task: a run in progress when
/// its next tick comes is therefore never started twice, and the ticks it overlapped are
/// counted as skipped once it ends.
async fn job_loop(
    rt: Arc<Runtime>,
    entry: Arc<JobEntry>,
    firing: CancellationToken,
    misfire_threshold: Duration,
) {
    let schedule = &entry.job.schedule;
    let m = &entry.metrics;
    let stopped = firing.clone().cancelled_owned();
    tokio::pin!(stopped);
    // Ticks after the resume point count (with a persistent store, the latest tick any
    // instance claimed): those already due were missed while no instance ran, and follow the
    // misfire policy. `next` only moves forward, so no tick fires twice even when the wall
    // clock is set back.
    let now = rt.clock.now();
    let mut next = if schedule.is_fixed_delay() {
        schedule.next_after(now)
    } else {
        schedule.next_after(entry.resume_from.min(now))
    };
    loop {
        // Interrupted executions first, every round: a job always behind on its ticks
        // (`run_all` catching up) still resumes them.
        for (execution_id, at) in entry.interrupted.take() {
            if firing.is_cancelled()
                || !run(&rt, &entry, at, false, &firing, Some(&execution_id)).await
            {
                return;
            }
        }
        let Some(tick) = next else {
            tracing::info!(job = %entry.job.name, "schedule has no further fire time");
            return;
        };
        match sleep_until_wall(
            &rt.clock,
            tick,
            &firing,
            &mut stopped,
            &entry.interrupted.ready,
        )
        .await
        {
            Wake::Due => {}
            Wake::Stopped => return,
            Wake::Resume => continue,
        }
        let now = rt.clock.now();
        if schedule.is_fixed_delay() {
            m.lateness.record(seconds_between(tick, now));
            if !run(&rt, &entry, tick, true, &firing, None).await {
                return;
            }
            next = schedule.next_after(rt.clock.now());
            continue;
        }
        // Every tick in [tick, latest] is due; all but the latest were missed. The common
        // case (the next tick is still ahead) costs one forward step, which the next round
        // needs anyway.
        let mut after = schedule.next_after(tick);
        let latest = match after {
            Some(a) if a <= now => {
                let latest = schedule
                    .latest_at_or_before(now)
                    .map_or(tick, |l| l.max(tick));
                after = schedule.next_after(latest);
                latest
            }
            _ => tick,
        };
        let on_time = (now - latest).to_std().unwrap_or_default() <= misfire_threshold;
        let missed = missed_between(schedule, tick, latest, entry.job.misfire);
        let mut due: Vec<DateTime<Utc>> = Vec::new();
        let mut skipped = missed.skipped;
        match entry.job.misfire {
            Misfire::Skip if !on_time => skipped += 1,
            Misfire::Skip | Misfire::RunOnce => due.push(latest),
            Misfire::RunAll => {
                due.extend(missed.ticks);
                due.push(latest);
            }
        }
        if skipped > 0 {
            tracing::warn!(
                job = %entry.job.name, skipped, policy = ?entry.job.misfire, %latest,
                "ticks were missed (process suspended, clock jump, or overload)"
            );
            m.skipped(SkipReason::Misfire, skipped);
        }
        m.lateness.record(seconds_between(latest, now));
        let batch = due.len();
        for (i, tick) in due.into_iter().enumerate() {
            // Catch-up runs go one after the other, oldest first, and stop at shutdown.
            let last_of_batch = i + 1 == batch;
            if (i > 0 && firing.is_cancelled())
                || !run(&rt, &entry, tick, last_of_batch, &firing, None).await
            {
                let left = (batch - i) as u64;
                tracing::warn!(
                    job = %entry.job.name, left, "shutdown: due ticks left unrun"
                );
                m.skipped(SkipReason::Misfire, left);
                return;
            }
        }
        // Ticks that came due while the run was in progress were overlapped: `run_all` runs
        // them next, as missed ticks; the other policies skip them.
        let ended = rt.clock.now();
        if entry.job.misfire == Misfire::RunAll {
            next = after;
            continue;
        }
        if let Some(first) = after.filter(|a| *a <= ended) {
            let last = schedule
                .latest_at_or_before(ended)
                .map_or(first, |l| l.max(first));
            let overlapped = missed_between(schedule, first, last, Misfire::Skip).skipped + 1;
            tracing::warn!(
                job = %entry.job.name, overlapped,
                "the run outlasted its next tick; overlapped ticks skipped"
            );
            m.skipped(SkipReason::Overlap, overlapped);
            after = schedule.next_after(ended);
        }
        next = after;
    }
}

/// How many interrupted executions one look at the store brings back, at most.
const RECOVERY_BATCH: usize = 100;

/// Finds executions of idempotent jobs whose run was interrupted (their owner died, or was
/// stopped by shutdown or lock loss) and queues them on their job loops, which resume them
/// with a new claim: at start, then every third of the liveness, so an execution is resumed
/// soon after its owner can be proven gone rather than at the job's next tick.
async fn recover_interrupted(
    rt: Arc<Runtime>,
    entries: Vec<Arc<JobEntry>>,
    firing: CancellationToken,
) {
    let names: Vec<String> = entries.iter().map(|e| e.job.name.clone()).collect();
    let every = rt.liveness / 3;
    loop {
        let found = timeout(
            executor::BACKEND_TIMEOUT,
            rt.store.interrupted(&names, rt.liveness, RECOVERY_BATCH),
        )
        .await
        .unwrap_or_else(|_| Err(crate::store::StoreError::unavailable("timed out", None)));
        match found {
            Ok(found) => {
                for interrupted in found {
                    let Some(entry) = entries.iter().find(|e| e.job.name == interrupted.job) else {
                        continue;
                    };
                    if entry
                        .interrupted
                        .push(interrupted.execution_id.clone(), interrupted.scheduled_at)
                    {
                        tracing::info!(
                            job = %interrupted.job,
                            execution_id = %interrupted.execution_id,
                            status = %interrupted.status,
                            "found an interrupted execution; resuming it"
                        );
                    }
                }
            }
            Err(e) => tracing::warn!(
                store = %rt.store.describe(), error = %e,
                "cannot look for interrupted executions; trying again"
            ),
        }
        tokio::select! {
            () = firing.cancelled() => return,
            () = sleep(every) => {}
        }
    }
}

/// Runs one tick after the job's start jitter; `false` if shutdown began during the jitter
/// (the tick is then not run). The run's state lives on the heap only while it runs: 10,000
/// idle job loops then stay a few hundred bytes each, and the memory of one run is reused
/// by the next, which keeps a wave of simultaneous ticks in the CPU's caches.
async fn run(
    rt: &Runtime,
    entry: &JobEntry,
    tick: DateTime<Utc>,
    hold_at_least: bool,
    firing: &CancellationToken,
    resume: Option<&str>,
) -> bool {
    if let Some(jitter) = entry.job.jitter {
        tokio::select! {
            biased;
            () = firing.cancelled() => return false,
            () = sleep(jitter.mul_f64(fastrand::f64())) => {}
        }
    }
    let run = AssertUnwindSafe(Box::pin(executor::execute(
        rt,
        entry,
        tick,
        hold_at_least,
        resume,
    )));
    // The executor catches the job's panics; this catches a backend's (a third-party lock
    // or store), so that one bad call cannot stop the job's ticks for good.
    if let Err(panic) = run.catch_unwind().await {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(
            job = %entry.job.name, %tick, panic = %message,
            "a run panicked outside the job (in a backend?); the job keeps its schedule"
        );
    }
    true
}

struct Missed {
    /// The missed ticks to run (for `RunAll`), oldest first.
    ticks: Vec<DateTime<Utc>>,
    /// The missed ticks that will not run.
    skipped: u64,
}

/// The ticks in `[next, latest)`: missed while the process could not fire them.
fn missed_between(
    schedule: &crate::Schedule,
    next: DateTime<Utc>,
    latest: DateTime<Utc>,
    policy: Misfire,
) -> Missed {
    if next >= latest {
        return Missed {
            ticks: Vec::new(),
            skipped: 0,
        };
    }
    // The ticks to run are the latest ones, found walking back from `latest`.
    let mut ticks = Vec::new();
    if policy == Misfire::RunAll {
        let mut t = latest;
        while ticks.len() < Misfire::RUN_ALL_LIMIT {
            match schedule.latest_at_or_before(t - chrono::Duration::nanoseconds(1)) {
                Some(prev) if prev >= next => {
                    ticks.push(prev);
                    t = prev;
                }
                _ => break,
            }
        }
        ticks.reverse();
    }
    // Count at most a bounded number one by one, so a long gap on a short period stays cheap
    // (beyond that the skip counter under-counts).
    const COUNT_LIMIT: usize = 100_000;
    let count = std::iter::once(next)
        .chain(schedule.upcoming(next))
        .take_while(|t| *t < latest)
        .take(COUNT_LIMIT)
        .count();
    Missed {
        skipped: (count.saturating_sub(ticks.len())) as u64,
        ticks,
    }
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).to_std().map_or(0.0, |d| d.as_secs_f64())
}

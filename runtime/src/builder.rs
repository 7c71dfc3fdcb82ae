//! [`SchedulerBuilder`]: checks a scheduler's configuration, connects its backends and
//! registers its jobs.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

#[cfg(feature = "webhook")]
use crate::webhook::Webhook;
use crate::{
    clock::Clock,
    control::ControlSettings,
    error::Error,
    executor::{DEFAULT_CANCEL_GRACE, JobEntry, Runtime, records_next_fire, share_breakers},
    job::{self, FailureHook, FailureReport, Job, failure_hook},
    lock::{InProcessLock, LockBackend},
    metrics,
    retention::{DEFAULT_ONCE_RETENTION, DEFAULT_RETENTION_EVERY, Keep},
    scheduler::{DEFAULT_SHUTDOWN_GRACE, Scheduler},
    startup::Namespace,
    state::{StateMap, StateValue},
    store::{ExecutionStore, JobRegistration, MemoryStore, Retention},
};

/// Configures and builds a [`Scheduler`]; see [`Scheduler::builder`].
#[must_use = "call .build().await to get a Scheduler"]
pub struct SchedulerBuilder {
    jobs: Vec<Job>,
    discover: bool,
    /// The lock backends named, by the method that named each.
    lock: Named<LockChoice>,
    /// The execution stores named, by the method that named each.
    store: Named<StoreChoice>,
    /// Set by [`SchedulerBuilder::namespace`]: where the builder's own backends keep state.
    namespace: Option<String>,
    /// Set by [`SchedulerBuilder::prometheus`]: served from `build()`.
    #[cfg(feature = "prometheus")]
    prometheus_addr: Option<String>,
    /// Set by [`SchedulerBuilder::console`] and its `console_*` settings: served from
    /// `build()`.
    #[cfg(feature = "console")]
    console: ConsoleChoice,
    /// Set by [`SchedulerBuilder::alert_webhook`]: its delivery task starts in `build()`.
    #[cfg(feature = "webhook")]
    webhooks: Vec<Webhook>,
    instance_id: Option<String>,
    shutdown_grace: Duration,
    cancel_grace: Duration,
    misfire_threshold: Duration,
    liveness: Duration,
    once_retention: Duration,
    retention: Retention,
    retention_every: Duration,
    control: ControlSettings,
    hooks: Vec<FailureHook>,
    clock: Clock,
    /// Set by [`SchedulerBuilder::state`]: what the jobs' `State<T>` arguments take.
    state: StateMap,
}

/// A lock backend as named to the builder: ready, or connected in `build()`.
enum LockChoice {
    /// [`SchedulerBuilder::lock_backend`].
    Given(Arc<dyn LockBackend>),
    /// [`SchedulerBuilder::redis`]: the server's URL.
    #[cfg(feature = "redis")]
    Redis(String),
    /// [`SchedulerBuilder::redis_sentinel`]: the sentinels' URLs and the master's name.
    #[cfg(feature = "redis")]
    RedisSentinel(Vec<String>, String),
    /// [`SchedulerBuilder::postgres_lock`]: the database's URL.
    #[cfg(feature = "postgres")]
    Postgres(String),
}

impl LockChoice {
    /// The backend, connected; in `namespace`, if the builder connects it.
    #[cfg_attr(
        not(any(feature = "redis", feature = "postgres")),
        allow(unused_variables)
    )]
    async fn connect(self, namespace: Option<&str>) -> Result<Arc<dyn LockBackend>, Error> {
        Ok(match self {
            Self::Given(lock) => lock,
            #[cfg(feature = "redis")]
            Self::Redis(url) => {
                redis_namespaced(crate::lock::RedisLock::connect(&url).await?, namespace)
            }
            #[cfg(feature = "redis")]
            Self::RedisSentinel(urls, master) => redis_namespaced(
                crate::lock::RedisLock::connect_sentinel(&urls, &master).await?,
                namespace,
            ),
            #[cfg(feature = "postgres")]
            Self::Postgres(url) => {
                let schema = namespace.unwrap_or(crate::lock::PostgresLock::DEFAULT_SCHEMA);
                Arc::new(crate::lock::PostgresLock::connect_with_schema(&url, schema).await?)
            }
        })
    }

    /// What a namespace applies to in this backend, for the startup line; `None` for a
    /// backend the builder does not connect.
    fn namespaced(&self) -> Option<&'static str> {
        match self {
            Self::Given(_) => None,
            #[cfg(feature = "redis")]
            Self::Redis(_) | Self::RedisSentinel(..) => Some("redis lock"),
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Some("postgres lock"),
        }
    }
}

/// A Redis lock under the key prefix of `namespace`, if any.
#[cfg(feature = "redis")]
fn redis_namespaced(lock: crate::lock::RedisLock, namespace: Option<&str>) -> Arc<dyn LockBackend> {
    Arc::new(match namespace {
        Some(ns) => lock.with_prefix(format!("tickguard:{ns}:lock:")),
        None => lock,
    })
}

/// The console as set on the builder.
#[cfg(feature = "console")]
#[derive(Default)]
struct ConsoleChoice {
    addr: Option<String>,
    token: Option<String>,
    anonymous_read: bool,
}

#[cfg(feature = "console")]
impl ConsoleChoice {
    /// Serves the console on `store`, if an address was given: its task.
    async fn start(
        self,
        store: &Arc<dyn ExecutionStore>,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, Error> {
        let Some(addr) = self.addr else {
            return Ok(None);
        };
        let access = match self.token {
            Some(token) => crate::console::Access::token(token),
            None => crate::console::Access::read_only(),
        }
        .anonymous_read(self.anonymous_read);
        let (_, task) = crate::console::start(&addr, access, Arc::clone(store)).await?;
        Ok(Some(task))
    }
}

/// An execution store as named to the builder: ready, or connected in `build()`.
enum StoreChoice {
    /// [`SchedulerBuilder::store`].
    Given(Arc<dyn ExecutionStore>),
    /// [`SchedulerBuilder::postgres`]: the database's URL.
    #[cfg(feature = "postgres")]
    Postgres(String),
    /// [`SchedulerBuilder::sqlite`]: the database file's URL.
    #[cfg(feature = "sqlite")]
    Sqlite(String),
}

impl StoreChoice {
    /// The store, connected, its tables created or migrated; in `namespace`, if the builder
    /// connects it to PostgreSQL.
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    async fn connect(self, namespace: Option<&str>) -> Result<Arc<dyn ExecutionStore>, Error> {
        Ok(match self {
            Self::Given(store) => store,
            #[cfg(feature = "postgres")]
            Self::Postgres(url) => {
                let schema = namespace.unwrap_or(crate::store::PostgresStore::DEFAULT_SCHEMA);
                Arc::new(crate::store::PostgresStore::connect_with_schema(&url, schema).await?)
            }
            #[cfg(feature = "sqlite")]
            Self::Sqlite(url) => Arc::new(crate::store::SqliteStore::connect(&url).await?),
        })
    }

    /// What a namespace applies to in this store, for the startup line; `None` for a store
    /// it does not apply to.
    fn namespaced(&self) -> Option<&'static str> {
        match self {
            Self::Given(_) => None,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Some("postgres store"),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => None,
        }
    }
}

/// The backends named for one role, each with the builder method that named it (for
/// errors), in call order. A method called again replaces its earlier choice.
struct Named<T>(Vec<(&'static str, T)>);

impl<T> Named<T> {
    /// None named yet.
    const fn new() -> Self {
        Self(Vec::new())
    }

    /// Records `choice`, named by `method`, in place of that method's earlier one.
    fn name(&mut self, method: &'static str, choice: T) {
        self.0.retain(|(named, _)| *named != method);
        self.0.push((method, choice));
    }

    /// The one backend named, if any; an error naming the methods if several were (`role`
    /// is what each names: "a lock backend").
    fn one(mut self, role: &str) -> Result<Option<T>, Error> {
        if let [(first, _), .., (last, _)] = self.0.as_slice() {
            let all = if self.0.len() == 2 {
                format!("both {first} and {last}")
            } else {
                let but_last: Vec<&str> = self.0[..self.0.len() - 1].iter().map(|n| n.0).collect();
                format!("{} and {last}", but_last.join(", "))
            };
            return Err(Error::Config(format!("{all} name {role}; keep one")));
        }
        Ok(self.0.pop().map(|(_, choice)| choice))
    }
}

impl SchedulerBuilder {
    /// A builder with the embedded defaults: see [`Scheduler::builder`].
    pub(crate) fn new() -> Self {
        Self {
            jobs: Vec::new(),
            discover: true,
            lock: Named::new(),
            store: Named::new(),
            namespace: None,
            #[cfg(feature = "prometheus")]
            prometheus_addr: None,
            #[cfg(feature = "console")]
            console: ConsoleChoice::default(),
            #[cfg(feature = "webhook")]
            webhooks: Vec::new(),
            instance_id: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            cancel_grace: DEFAULT_CANCEL_GRACE,
            misfire_threshold: Duration::from_secs(5),
            liveness: Duration::from_secs(30),
            once_retention: DEFAULT_ONCE_RETENTION,
            retention: Retention::default(),
            retention_every: DEFAULT_RETENTION_EVERY,
            control: ControlSettings::default(),
            hooks: Vec::new(),
            clock: Clock::default(),
            state: StateMap::default(),
        }
    }

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
        self.lock
            .name(".lock_backend(..)", LockChoice::Given(Arc::new(backend)));
        self
    }

    /// Locks jobs in the Redis server at `url` (`redis://[user:password@]host[:port][/db]`),
    /// under the key prefix `tickguard:lock:` (`tickguard:{namespace}:lock:` with a
    /// [`namespace`](Self::namespace)). [`SchedulerBuilder::build`] connects
    /// and checks that the server answers, and fails with [`Error::Lock`], naming the address
    /// and what to check, if it does not.
    ///
    /// For a ready client, another key prefix, or a custom connection, build a
    /// [`RedisLock`](crate::lock::RedisLock) and pass it to
    /// [`SchedulerBuilder::lock_backend`] instead.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.lock.name(".redis(..)", LockChoice::Redis(url.into()));
        self
    }

    /// Locks jobs in the master named `master_name` of a Redis Sentinel set, found through
    /// the sentinels at `sentinel_urls` (`redis://[user:password@]host:26379`, the sentinels'
    /// own addresses), and follows the master when a failover moves it: a command that finds
    /// the master gone, frozen or demoted (`READONLY`) asks the sentinels again and goes to
    /// the new master, and a WARN line names the old and the new address. Keys as with
    /// [`redis`](Self::redis).
    ///
    /// [`SchedulerBuilder::build`] fails with [`Error::Lock`], saying what to check, when no
    /// URL is given, a URL is malformed, the master name is empty, no sentinel answers, they
    /// know no such master, or it cannot be reached. For a master with a password, build a
    /// [`RedisLock`](crate::lock::RedisLock) with
    /// [`RedisLock::from_sentinel_client`](crate::lock::RedisLock::from_sentinel_client) and
    /// pass it to [`SchedulerBuilder::lock_backend`]. What a failover can do to a held lease:
    /// [locks](crate::docs::locks#failover-and-redis-sentinel).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), tickguard::Error> {
    /// let scheduler = tickguard::Scheduler::builder()
    ///     .redis_sentinel(["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"], "mymaster")
    ///     .build()
    ///     .await?;
    /// # let _ = scheduler; Ok(()) }
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis_sentinel<I, S>(mut self, sentinel_urls: I, master_name: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let urls = sentinel_urls.into_iter().map(Into::into).collect();
        self.lock.name(
            ".redis_sentinel(..)",
            LockChoice::RedisSentinel(urls, master_name.into()),
        );
        self
    }

    /// Locks jobs in the PostgreSQL database at `url`
    /// (`postgres://[user[:password]@]host[:port]/database`), as rows of the table
    /// `public.tickguard_locks` (`{namespace}.tickguard_locks` with a
    /// [`namespace`](Self::namespace)), which is created if missing. [`SchedulerBuilder::build`]
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
        self.lock
            .name(".postgres_lock(..)", LockChoice::Postgres(url.into()));
        self
    }

    /// Keeps this scheduler's state apart from other services' on shared servers: two
    /// services that both have a job `cleanup` and share a Redis or a database each run
    /// theirs, and neither sees the other's lock, claims or history. It applies to the
    /// backends the builder connects itself:
    ///
    /// - [`redis`](Self::redis) and [`redis_sentinel`](Self::redis_sentinel): the key prefix
    ///   `tickguard:{namespace}:lock:` (instead of `tickguard:lock:`);
    /// - [`postgres_lock`](Self::postgres_lock): the table `{namespace}.tickguard_locks`;
    /// - [`postgres`](Self::postgres): the store's tables in schema `{namespace}`.
    ///
    /// The PostgreSQL schema is created if missing. Instances of one service must share its
    /// namespace. A [`sqlite`](Self::sqlite) store is a file per service already (give each
    /// service its own file); a backend passed to [`lock_backend`](Self::lock_backend) or
    /// [`store`](Self::store) keeps the prefix or schema it was built with; the in-process
    /// defaults are not shared at all.
    ///
    /// The name must be 1 to 63 characters of lower-case ASCII letters, digits and `_`, not
    /// starting with a digit nor with `pg_`, and neither `public` (the schema of services
    /// with no namespace, whose tables it would share) nor `information_schema`: one name
    /// that reads the same as a schema in `psql` and in a Redis key. SQL keywords such as
    /// `select` or `user` are accepted: tickguard always quotes the schema name (quote it
    /// too in your own SQL). Anything else is an [`Error::Config`] at
    /// [`build`](Self::build).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), tickguard::Error> {
    /// let scheduler = tickguard::Scheduler::builder()
    ///     .namespace("billing")
    ///     .redis("redis://127.0.0.1:6379") // keys tickguard:billing:lock:{job}
    ///     .postgres("postgres://postgres@127.0.0.1:5432/app") // schema billing
    ///     .build()
    ///     .await?;
    /// # let _ = scheduler; Ok(()) }
    /// ```
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// The execution store (default: [`MemoryStore`]). Pass an `Arc` to keep a handle.
    pub fn store(mut self, store: impl ExecutionStore) -> Self {
        self.store
            .name(".store(..)", StoreChoice::Given(Arc::new(store)));
        self
    }

    /// Keeps executions in the PostgreSQL database at `url`
    /// (`postgres://[user[:password]@]host[:port]/database`), in schema `public` (the
    /// [`namespace`](Self::namespace), if one is set, created if missing): claims,
    /// fences, checkpoints, `once` steps and history that every instance sharing the
    /// database agrees on. [`SchedulerBuilder::build`] connects and creates or migrates the
    /// tables, and fails with [`Error::Store`], naming the address and what to check, if it
    /// cannot. For another schema or a ready pool, build a
    /// [`PostgresStore`](crate::store::PostgresStore) and pass it to
    /// [`SchedulerBuilder::store`].
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn postgres(mut self, url: impl Into<String>) -> Self {
        self.store
            .name(".postgres(..)", StoreChoice::Postgres(url.into()));
        self
    }

    /// Serves the [web console](crate::console) at `addr` (`127.0.0.1:9470` for this host
    /// only, which is what to use unless a proxy that authenticates stands in front) on this
    /// scheduler's store: pages of the jobs, their history, executions and dead letters,
    /// with pause, resume, trigger now and re-run. It reads the store only when a page is
    /// asked for. It needs a token ([`console_token`](Self::console_token)), unless
    /// read-only access without one is enabled
    /// ([`console_anonymous_read`](Self::console_anonymous_read)):
    /// [`build`](Self::build) fails with [`Error::Config`] without either, or when `addr`
    /// cannot be bound. See [the console](crate::docs::console).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), tickguard::Error> {
    /// let scheduler = tickguard::Scheduler::builder()
    ///     .console("127.0.0.1:9470")
    ///     .console_token(std::env::var("TICKGUARD_CONSOLE_TOKEN").unwrap_or_default())
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "console")]
    #[cfg_attr(docsrs, doc(cfg(feature = "console")))]
    pub fn console(mut self, addr: impl Into<String>) -> Self {
        self.console.addr = Some(addr.into());
        self
    }

    /// The token that opens the [console](Self::console), to read and to act: a browser
    /// signs in with it, a script sends it as `Authorization: Bearer TOKEN`. Keep it out of
    /// the code (an environment variable, a secret store).
    #[cfg(feature = "console")]
    #[cfg_attr(docsrs, doc(cfg(feature = "console")))]
    pub fn console_token(mut self, token: impl Into<String>) -> Self {
        self.console.token = Some(token.into());
        self
    }

    /// Lets anyone who reaches the [console](Self::console) read it without the token
    /// (default off); pausing, resuming, triggering and re-running still need it.
    #[cfg(feature = "console")]
    #[cfg_attr(docsrs, doc(cfg(feature = "console")))]
    pub fn console_anonymous_read(mut self, anonymous_read: bool) -> Self {
        self.console.anonymous_read = anonymous_read;
        self
    }

    /// Serves every tickguard metric to Prometheus at `addr` (`0.0.0.0:9464`, or
    /// `127.0.0.1:9464`, `[::1]:9464` or `localhost:9464` for the host only): `GET /metrics` (any path
    /// answers) returns the text exposition, with histograms bucketed for job durations and
    /// lock round trips (see [`metrics::prometheus_builder`](crate::metrics::prometheus_builder)).
    /// A host name is resolved at [`build`](Self::build), and the endpoint listens on one of
    /// its addresses, the first that can be bound with IPv4 ones first: `localhost` serves
    /// `127.0.0.1` also on hosts where it resolves to `::1` too. Name an IP to choose, such
    /// as `[::1]:9464` for IPv6.
    /// [`SchedulerBuilder::build`] installs the recorder for the whole process and starts
    /// listening; it fails with [`Error::Config`] if the address is neither `ip:port` nor
    /// `host:port`, the host name does not resolve, the port is taken, or the process already
    /// has a metrics recorder (then leave this out: tickguard records through whichever
    /// recorder is installed).
    ///
    /// Prometheus adds its own `job` label to every scraped series; scrape tickguard with
    /// `honor_labels: true` so that the `job` label stays the tickguard job's name (see
    /// [observability](crate::docs::observability#exporting-the-metrics)).
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
        self.store
            .name(".sqlite(..)", StoreChoice::Sqlite(url.into()));
        self
    }

    /// This instance's id in locks, executions and logs (default: `{hostname}-{pid}-{random}`).
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// How long shutdown waits for running jobs before it cancels them (default 20 s). Runs
    /// learn that shutdown began at once, through
    /// [`JobContext::shutdown_requested`](crate::JobContext::shutdown_requested); this is
    /// the time they have to finish, or to [hand their execution
    /// back](crate::JobContext::hand_back). With the [`cancel_grace`](Self::cancel_grace)
    /// after it, the defaults end every run within 25 s of the signal, and the shutdown
    /// (queued alerts sent) within 28 s: inside the 30 s that Kubernetes waits between
    /// SIGTERM and SIGKILL by default. (`docker stop` waits 10 s: give it `--time 30`, or
    /// lower this.)
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
    /// noticed later is a misfire and follows the job's [`Misfire`](crate::job::Misfire) policy.
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

    /// How long the [`once`](crate::JobContext::once) steps of an execution are kept after
    /// the execution ran to its end (default 30 days). The scheduler deletes older ones at
    /// start and then every hour; steps of executions that may still run or be resumed
    /// (pending, running, cancelled) and [`once_ever`](crate::JobContext::once_ever) steps
    /// are kept whatever their age. Zero is an error at [`build`](Self::build).
    pub fn once_retention(mut self, retention: Duration) -> Self {
        self.once_retention = retention;
        self
    }

    /// How long the history of the scheduler's jobs keeps executions that ended, per
    /// status (default [`Retention::default`]: completed and skipped ones 7 days, failed,
    /// timed-out and cancelled ones 30 days; [`Retention::keep_forever`] keeps everything).
    /// Pending and running executions are never deleted.
    ///
    /// The scheduler prunes at start and then every
    /// [`retention_every`](Self::retention_every), through
    /// [`ExecutionStore::prune`](crate::store::ExecutionStore::prune) with
    /// [`PruneRequest::at_most_every`](crate::store::PruneRequest::at_most_every): the
    /// instances sharing a store take turns, so the history is pruned once per interval
    /// however many there are. What it deleted is logged at INFO, per status; a store that
    /// fails is logged at WARN and tried again at the next round. Pruning never lets a tick
    /// run twice: a later claim of a tick whose record was pruned is answered
    /// [`Claim::Pruned`](crate::store::Claim::Pruned) and not run.
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// How often the retention task prunes the history and forgets old `once` steps
    /// (default 1 hour); see [`retention`](Self::retention). Zero is an error at
    /// [`build`](Self::build).
    pub fn retention_every(mut self, every: Duration) -> Self {
        self.retention_every = every;
        self
    }

    /// How often the control task reads the store's control version, to apply pauses and
    /// run manual triggers and re-runs (default 500 ms, each wait a random 90-110% of it):
    /// a change made through the store takes effect within about this long. One row is read
    /// per look whatever the number of jobs; the pauses are read only when it moved, the
    /// requests when it moved, while one is pending, and about every third of the liveness
    /// (see [stores](crate::docs::stores#pauses-triggers-and-the-control-task)). Shorter than
    /// 10 ms is an error at [`build`](Self::build).
    pub fn control_every(mut self, every: Duration) -> Self {
        self.control.every = every;
        self
    }

    /// Whether the control task also `LISTEN`s for the changes the PostgreSQL store
    /// `NOTIFY`s (default on; other stores ignore it): a change then takes effect within
    /// milliseconds, over one connection of its own. Polling goes on beside it (see
    /// [`control_every`](Self::control_every)), so a notification missed while the
    /// connection is re-established costs at most one interval.
    pub fn control_listen(mut self, listen: bool) -> Self {
        self.control.listen = listen;
        self
    }

    /// Calls `hook` after any job's run fails its last attempt, and after ticks of any job
    /// are lost for good (outcome `skipped`, see [`FailureReport`]); after the job's own
    /// `on_failure`.
    pub fn on_failure<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(FailureReport) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hooks.push(failure_hook(hook));
        self
    }

    /// Sends every failure report (a run that failed after its last attempt, timed out, or
    /// lost its lock; ticks lost for good) to `webhook` as a JSON `POST`, Slack-compatible; see
    /// [`Webhook`](crate::Webhook). Delivery runs in a task of its own, retried with backoff
    /// and bounded by a timeout: a webhook that is slow or down never holds a job or the
    /// scheduler.
    #[cfg(feature = "webhook")]
    #[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
    pub fn alert_webhook(mut self, webhook: Webhook) -> Self {
        self.webhooks.push(webhook);
        self
    }

    /// Gives the jobs `value`: every job that takes a [`State<T>`](crate::State) argument
    /// of its type gets it, shared behind an `Arc` (a pool, a client, a configuration). One
    /// value per type: a second value of the same type replaces the first.
    ///
    /// Values are keyed by their exact type: a `State<T>` takes the value given as a `T`,
    /// not one given as an `Arc<T>` (nor a `Box<T>`, nor a `&T`). `State<T>` already holds an
    /// `Arc<T>`, so give `T` itself: `.state(pool)`, not `.state(Arc::new(pool))`. The value
    /// must be [`Send + Sync + 'static`](crate::StateValue): every run of every job shares
    /// it.
    ///
    /// [`build`](Self::build) fails with [`Error::Config`], with a line naming the job and
    /// the type for each, if jobs take a `State<T>` of a type no value was given for (and
    /// says so when the value was given as an `Arc<T>`, or as `T` for a `State<Arc<T>>`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use tickguard::{Job, JobContext, Schedule, Scheduler, State};
    ///
    /// struct Config {
    ///     region: &'static str,
    /// }
    ///
    /// let job = Job::new(
    ///     "sync",
    ///     Schedule::every(Duration::from_secs(10))?,
    ///     |ctx: JobContext, State(config): State<Config>| async move {
    ///         tracing::info!(tick = %ctx.scheduled_at(), region = config.region, "syncing");
    ///         Ok(())
    ///     },
    /// );
    /// let scheduler = Scheduler::builder()
    ///     .discover(false)
    ///     .job(job)
    ///     .state(Config { region: "eu-west-1" })
    ///     .build()
    ///     .await?;
    /// scheduler.run_until(tokio::time::sleep(Duration::from_secs(25))).await?;
    /// # Ok(()) }
    /// ```
    pub fn state<T: StateValue>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Reads the wall clock from `clock` (tests).
    #[cfg(feature = "testing")]
    pub fn clock(mut self, clock: crate::clock::TestClock) -> Self {
        self.clock = clock.into_clock();
        self
    }

    /// Checks the configuration, connects the backends, registers the jobs.
    pub async fn build(self) -> Result<Scheduler, Error> {
        self.check_durations()?;
        if let Some(namespace) = &self.namespace {
            check_namespace(namespace)?;
        }
        #[cfg_attr(not(feature = "webhook"), allow(unused_mut))]
        let Self {
            jobs,
            discover,
            lock,
            store,
            namespace,
            #[cfg(feature = "prometheus")]
            prometheus_addr,
            #[cfg(feature = "console")]
            console,
            #[cfg(feature = "webhook")]
            webhooks,
            instance_id,
            shutdown_grace,
            cancel_grace,
            misfire_threshold,
            liveness,
            once_retention,
            retention,
            retention_every,
            control,
            mut hooks,
            clock,
            state,
        } = self;
        let jobs = collect_jobs(jobs, discover)?;
        check_state(&jobs, &state)?;
        let (lock, store, namespace) = connect_backends(lock, store, namespace).await?;
        #[cfg(feature = "webhook")]
        let alerts = start_alerts(webhooks, &mut hooks);
        let now = clock.now();
        let resume_points = resume_points(&*store, &jobs, now).await?;
        // Last of what can fail: a scheduler that is not built leaves no endpoint behind.
        #[cfg(feature = "prometheus")]
        let exporter = crate::prometheus::serve_at(prometheus_addr.as_deref()).await?;
        #[cfg(feature = "console")]
        let console = console.start(&store).await?;
        metrics::describe();
        let stop_runs = CancellationToken::new();
        let firing = CancellationToken::new();
        let entries = entries(jobs, resume_points, &stop_runs, &firing);
        let runtime = Runtime {
            records_next_fire: records_next_fire(&*store),
            lock,
            store,
            instance_id: instance_id.unwrap_or_else(default_instance_id).into(),
            clock,
            hooks,
            cancel_grace,
            liveness,
            stop_runs,
            refuse_early: true,
            unrecorded: Default::default(),
            state: Arc::new(state),
        };
        Ok(Scheduler {
            rt: Arc::new(runtime),
            #[cfg(feature = "webhook")]
            alerts,
            #[cfg(feature = "prometheus")]
            exporter,
            #[cfg(feature = "console")]
            console,
            firing,
            entries,
            shutdown_grace,
            misfire_threshold,
            keep: Keep {
                history: retention,
                every: retention_every,
                once_steps: once_retention,
            },
            control,
            namespace,
        })
    }

    /// Checks the durations set on the builder.
    fn check_durations(&self) -> Result<(), Error> {
        for (what, d) in [
            ("shutdown_grace", self.shutdown_grace),
            ("cancel_grace", self.cancel_grace),
            ("misfire_threshold", self.misfire_threshold),
            ("liveness", self.liveness),
            ("once_retention", self.once_retention),
            ("retention_every", self.retention_every),
            ("control_every", self.control.every),
        ] {
            if d > job::LONGEST {
                return Err(Error::Config(format!(
                    "{what} {d:?} is longer than 100 years"
                )));
            }
        }
        if self.once_retention.is_zero() {
            return Err(Error::Config(
                "once_retention is zero: the steps of an execution would be forgotten as it \
                 ends; give it the time a finished execution's steps must be remembered (30 \
                 days by default)"
                    .into(),
            ));
        }
        if self.retention_every.is_zero() {
            return Err(Error::Config(
                "retention_every is zero: give it how often to prune the history (1 hour by \
                 default)"
                    .into(),
            ));
        }
        if self.control.every < Duration::from_millis(10) {
            return Err(Error::Config(format!(
                "control_every {:?} is too short: at least 10ms",
                self.control.every
            )));
        }
        if self.liveness < Duration::from_millis(30) {
            return Err(Error::Config(format!(
                "liveness {:?} is too short: at least 30ms",
                self.liveness
            )));
        }
        Ok(())
    }
}

/// The lock and the store named (the in-process defaults if none), connected, the ones the
/// builder connects in `namespace`; and the namespace with what it applied to.
async fn connect_backends(
    lock: Named<LockChoice>,
    store: Named<StoreChoice>,
    namespace: Option<String>,
) -> Result<
    (
        Arc<dyn LockBackend>,
        Arc<dyn ExecutionStore>,
        Option<Namespace>,
    ),
    Error,
> {
    let lock = lock.one("a lock backend")?;
    let store = store.one("an execution store")?;
    let namespace = namespace.map(|name| Namespace {
        name,
        applied: [
            lock.as_ref().and_then(LockChoice::namespaced),
            store.as_ref().and_then(StoreChoice::namespaced),
        ]
        .into_iter()
        .flatten()
        .collect(),
    });
    let name = namespace.as_ref().map(|ns| ns.name.as_str());
    let store = match store {
        Some(choice) => choice.connect(name).await?,
        None => Arc::new(MemoryStore::new()),
    };
    let lock = match lock {
        Some(choice) => choice.connect(name).await?,
        None => Arc::new(InProcessLock::new()),
    };
    Ok((lock, store, namespace))
}

/// Checks a [`SchedulerBuilder::namespace`]: a PostgreSQL schema name that needs no quotes
/// (lower case, so that `psql` finds it as typed) and that the server lets a user create.
fn check_namespace(namespace: &str) -> Result<(), Error> {
    let problem = if namespace.is_empty() {
        "is empty"
    } else if namespace.len() > 63 {
        "is longer than 63 characters (PostgreSQL's limit for a schema name)"
    } else if !namespace
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        "may hold only lower-case ASCII letters, digits and `_`"
    } else if namespace.starts_with(|c: char| c.is_ascii_digit()) {
        "must not start with a digit"
    } else if namespace.starts_with("pg_") {
        "must not start with `pg_` (PostgreSQL reserves those schema names)"
    } else if namespace == "public" {
        "is the schema of services with no namespace: a service in it would share their \
         tables; leave the namespace out to use `public`, or name the service"
    } else if namespace == "information_schema" {
        "is PostgreSQL's catalog schema"
    } else {
        return Ok(());
    };
    Err(Error::Config(format!(
        "namespace `{namespace}` {problem}: it names a PostgreSQL schema and a Redis key \
         prefix; use lower-case letters, digits and `_`, such as `billing`"
    )))
}

/// The jobs given to the builder and, if `discover`, every `#[scheduled]` fn; each checked,
/// and no name twice.
fn collect_jobs(mut jobs: Vec<Job>, discover: bool) -> Result<Vec<Job>, Error> {
    if discover {
        jobs.extend(job::discovered().map(Job::from_def));
    }
    let mut seen: HashMap<&str, &str> = HashMap::new();
    let mut breakers: HashMap<&str, &Job> = HashMap::new();
    for job in &jobs {
        job.validate()?;
        if let Some(breaker) = &job.circuit_breaker
            && let Some(name) = breaker.shared_name()
            && let Some(first) = breakers.insert(name, job)
            && first.circuit_breaker.as_ref() != Some(breaker)
        {
            return Err(Error::InvalidJob {
                job: job.name.clone(),
                reason: format!(
                    "its circuit breaker `{name}` ({breaker}) differs from job `{}`'s ({}); \
                     jobs that share a breaker declare the same settings",
                    first.name,
                    first
                        .circuit_breaker
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
            });
        }
        if let Some(first) = seen.insert(&job.name, &job.location) {
            return Err(Error::DuplicateJob {
                name: job.name.clone(),
                first: first.to_owned(),
                second: job.location.clone(),
            });
        }
    }
    Ok(jobs)
}

/// Checks that every job's `State<T>` arguments have their value; if not, one error with a
/// line per job and type missing.
fn check_state(jobs: &[Job], state: &StateMap) -> Result<(), Error> {
    let mut missing: Vec<String> = Vec::new();
    for job in jobs {
        for need in job.needs.iter().filter(|need| !state.has(need)) {
            let line = state.missing(need, &job.name);
            if !missing.contains(&line) {
                missing.push(line);
            }
        }
    }
    match missing.as_slice() {
        [] => Ok(()),
        [one] => Err(Error::Config(one.clone())),
        many => Err(Error::Config(format!(
            "jobs take application state that was not given:\n{}",
            many.join("\n")
        ))),
    }
}

/// Starts each webhook's delivery task and adds a hook that queues every failure report on
/// it; returns what stops them.
#[cfg(feature = "webhook")]
fn start_alerts(
    webhooks: Vec<Webhook>,
    hooks: &mut Vec<FailureHook>,
) -> (CancellationToken, Vec<tokio::task::JoinHandle<()>>) {
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for webhook in webhooks {
        let (queue, task) = webhook.start(stop.clone());
        tasks.push(task);
        hooks.push(failure_hook(move |report: FailureReport| {
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
}

/// Registers the jobs with the store and returns where each job's loop starts: ticks after
/// the latest one any instance claimed, or after the job was first registered, are due;
/// those before `now` were missed while no instance ran.
async fn resume_points(
    store: &dyn ExecutionStore,
    jobs: &[Job],
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, Error> {
    let registrations: Vec<JobRegistration<'_>> = jobs
        .iter()
        .map(|job| {
            JobRegistration::new(
                &job.name,
                job.schedule.to_string(),
                job.schedule.zone().to_string(),
                job.schedule.next_after(now),
            )
            .registered_at(now)
            .circuit_breaker(job.circuit_breaker.clone())
        })
        .collect();
    let records = store.register_all(&registrations).await?;
    Ok(records
        .iter()
        .map(|record| record.last_tick.unwrap_or(record.created_at).min(now))
        .collect())
}

/// One entry per job, each with its own tokens: cancelled by `stop_runs` and `firing`.
fn entries(
    jobs: Vec<Job>,
    resume_points: Vec<DateTime<Utc>>,
    stop_runs: &CancellationToken,
    firing: &CancellationToken,
) -> Vec<Arc<JobEntry>> {
    let mut entries: Vec<JobEntry> = jobs
        .into_iter()
        .zip(resume_points)
        .map(|(job, resume_from)| {
            // One child token per job: each sleep waits on its own token, not on a waiter
            // list (and mutex) shared by every job.
            JobEntry::new(
                job,
                Arc::new(stop_runs.child_token()),
                firing.child_token(),
                resume_from,
            )
        })
        .collect();
    share_breakers(&mut entries);
    entries.into_iter().map(Arc::new).collect()
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

//! The control task: applies what operators change through the store (pauses, resumes,
//! manual triggers and re-runs) to a running scheduler within a second.
//!
//! Every ~500 ms (each pause a random 90-110% of [`SchedulerBuilder::control_every`]) it
//! reads the store's [`control_version`](crate::store::ExecutionStore::control_version),
//! one row whatever the number of jobs. When the number moved (and at start) it reads the
//! pauses of its jobs and applies them to each job's entry (a flag the job loop reads with
//! one atomic load), and looks for the executions operators asked for, which it queues on
//! their job loops. A request that could not run yet (the job's lock held, the job busy
//! elsewhere, a backend down) stays pending in the store: the task looks again at every
//! round while any is outstanding, so it runs later with no further change. It also looks
//! about every third of the liveness, as the recovery task does: a requested execution
//! whose owner died (which moves no version) is resumed like any interrupted one.
//!
//! When the number moved it also reads the cancel requests on running executions of its
//! jobs ([`ExecutionStore::request_cancel`](crate::store::ExecutionStore::request_cancel))
//! and stops those that run on this instance, with the request's reason
//! ([`CancelReason::Requested`](crate::CancelReason::Requested) or
//! [`Superseded`](crate::CancelReason::Superseded)). A request whose run is not
//! registered here yet (its claim committed a moment before) is tried again at every look
//! until the next read.
//!
//! When the number moved it also queues the interrupted executions it found that no
//! operator asked for, as the recovery task does at its own pace: an instance that hands an
//! execution back at shutdown moves the number
//! ([`announce`](crate::store::ExecutionStore::announce)), so another instance resumes it
//! within one look rather than at its next scan for interrupted executions.
//!
//! On PostgreSQL it also `LISTEN`s on the channel every change is `NOTIFY`ed on (one
//! connection of its own; notifications for other schemas are ignored) and looks at once on
//! a notification: a trigger then starts within a few milliseconds instead of within the
//! poll interval. If the listener cannot be set up, or fails, the task logs it once and goes
//! on polling.
//!
//! The defaults come from `runtime/benches/control.rs` (one process with 10,000 idle jobs on
//! PostgreSQL): polling every 500 ms costs no more CPU than the kernel's 10 ms accounting
//! resolves over 10 s (at most 0.2% of a core), and puts a trigger's start about 265 ms
//! after the request at p50 and 510 ms at p99; with `LISTEN` the start comes 26 ms (p50) to
//! 41 ms (p99) after the request, for no idle cost that can be told apart. Polling stays on
//! beside the listener, so a notification missed while its connection is re-established
//! costs at most one interval, and a store without notifications still meets the second.
//! The table is in [stores](crate::docs::stores#pauses-triggers-and-the-control-task).
//!
//! [`SchedulerBuilder::control_every`]: crate::SchedulerBuilder::control_every

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::Notify,
    time::{Instant, sleep},
};
use tokio_util::sync::CancellationToken;

use crate::{
    executor::{Delivered, JobEntry, PAUSED_BY_POLICY, Queued, Runtime, bounded},
    recovery::queue_interrupted,
    store::{CancelRequest, Interrupted, Pause, StoreError},
};

/// The default of [`SchedulerBuilder::control_every`](crate::SchedulerBuilder::control_every).
pub(crate) const DEFAULT_CONTROL_EVERY: Duration = Duration::from_millis(500);

/// How many executions one look for requested ones brings back, at most.
const CONTROL_BATCH: usize = 1000;

/// How often a store that keeps failing is warned about (the first failure always is).
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A job's pause, as the control task last read it.
#[derive(Default)]
pub(crate) struct PauseState {
    /// Read by the job loop every tick: one load.
    paused: AtomicBool,
    /// The pause itself, for the logs.
    pause: Mutex<Option<Pause>>,
}

impl PauseState {
    /// Whether the job is paused.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Applies the job's pause as read from the store (`None`: not paused); what changed.
    fn apply(&self, now: Option<&Pause>) -> Change {
        let mut held = self.pause.lock().unwrap_or_else(|p| p.into_inner());
        let change = match (held.as_ref(), now) {
            (None, None) => Change::None,
            (Some(_), None) => Change::Resumed,
            (Some(old), Some(new)) if old == new => Change::None,
            (_, Some(_)) => Change::Paused,
        };
        if change != Change::None {
            *held = now.cloned();
            self.paused.store(now.is_some(), Ordering::Release);
        }
        change
    }
}

/// What applying a pause changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    None,
    Paused,
    Resumed,
}

/// How the control task runs: see [`SchedulerBuilder::control_every`] and
/// [`SchedulerBuilder::control_listen`].
///
/// [`SchedulerBuilder::control_every`]: crate::SchedulerBuilder::control_every
/// [`SchedulerBuilder::control_listen`]: crate::SchedulerBuilder::control_listen
#[derive(Clone, Copy, Debug)]
pub(crate) struct ControlSettings {
    /// The poll interval.
    pub(crate) every: Duration,
    /// Whether to `LISTEN` on PostgreSQL.
    pub(crate) listen: bool,
}

impl Default for ControlSettings {
    fn default() -> Self {
        Self {
            every: DEFAULT_CONTROL_EVERY,
            listen: true,
        }
    }
}

/// The control task's state between looks.
pub(crate) struct Control {
    rt: Arc<Runtime>,
    entries: Vec<Arc<JobEntry>>,
    names: Vec<String>,
    by_name: HashMap<String, usize>,
    /// The version of the last look that went through.
    version: Option<u64>,
    /// Requests seen pending at the last look: look again next round.
    outstanding: bool,
    /// When the requests were last looked for: a requested execution whose owner died is
    /// found this way (no change moves the version), about every third of the liveness.
    scanned: Option<Instant>,
    /// Each request seen pending: who asked (read once), and when to queue it again if it
    /// is still pending (the lock held, the job busy elsewhere, a backend down): a few
    /// hundred milliseconds, doubling up to [`REQUEUE_MAX`], so a request that cannot run
    /// yet costs no lock attempt, and no warning, every round.
    requests: HashMap<String, Outstanding>,
    /// The cancel requests on running executions of these jobs, as last read (when the
    /// version moved), less those delivered: one whose run had not registered here yet
    /// (its claim committed, its run about to start) is tried again at every look, with no
    /// store read; those of runs on other instances wait here until the next read.
    cancels: Vec<CancelRequest>,
    /// When the store's failure was last warned about.
    warned: Option<Instant>,
    settings: ControlSettings,
}

impl Control {
    /// The control state of a scheduler's jobs.
    pub(crate) fn new(
        rt: Arc<Runtime>,
        entries: Vec<Arc<JobEntry>>,
        settings: ControlSettings,
    ) -> Self {
        let names: Vec<String> = entries.iter().map(|e| e.job.name.clone()).collect();
        let by_name = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Self {
            rt,
            entries,
            names,
            by_name,
            version: None,
            outstanding: false,
            scanned: None,
            requests: HashMap::new(),
            cancels: Vec::new(),
            warned: None,
            settings,
        }
    }

    /// Looks at the store once: the control version, then (if it moved, or requests are
    /// outstanding) the pauses and the requests. A store that fails is warned about
    /// (throttled) and asked again at the next look.
    pub(crate) async fn look(&mut self) {
        let looked = async {
            let version = bounded(self.rt.store.control_version()).await?;
            let moved = self.version != Some(version);
            if moved {
                let paused = bounded(self.rt.store.paused(&self.names)).await?;
                self.apply_pauses(paused);
                self.cancels = bounded(self.rt.store.cancel_requests(&self.names)).await?;
            }
            let stale = self
                .scanned
                .is_none_or(|at| at.elapsed() >= self.rt.liveness / 3);
            if moved || self.outstanding || stale {
                let found = bounded(self.rt.store.interrupted(
                    &self.names,
                    self.rt.liveness,
                    CONTROL_BATCH,
                ))
                .await?;
                self.scanned = Some(Instant::now());
                let (requested, interrupted) = found.into_iter().partition(|i| i.requested);
                // An execution handed back at shutdown moved the version: resumed now, not
                // at the recovery task's next scan (which queues the others).
                if moved {
                    queue_interrupted(&self.entries, interrupted);
                }
                self.queue_requests(requested).await;
            }
            self.version = Some(version);
            Ok::<(), StoreError>(())
        }
        .await;
        self.deliver_cancels();
        match looked {
            Ok(()) => {
                if self.warned.take().is_some() {
                    tracing::info!(store = %self.rt.store.describe(), "the store answers the control task again");
                }
            }
            Err(e) => {
                let now = Instant::now();
                if self.warned.is_none_or(|at| now - at >= WARN_EVERY) {
                    self.warned = Some(now);
                    tracing::warn!(
                        store = %self.rt.store.describe(), error = %e,
                        "cannot read pauses and manual executions from the store; trying again"
                    );
                }
            }
        }
    }

    /// Stops the runs on this instance that a cancel request names, with the request's
    /// reason, and logs who asked and why; keeps the requests whose run is not here.
    fn deliver_cancels(&mut self) {
        let (entries, by_name) = (&self.entries, &self.by_name);
        self.cancels.retain(|request| {
            let Some(&i) = by_name.get(&request.job) else {
                return false;
            };
            match entries[i].runs.deliver(request) {
                Delivered::NotHere => true,
                Delivered::Already => false,
                Delivered::Stopped => {
                    tracing::warn!(
                        job = %request.job, execution_id = %request.execution_id,
                        kind = %request.kind, by = %request.by, note = %request.note,
                        "stopping the run: {}", request.describe()
                    );
                    false
                }
            }
        });
    }

    /// Applies the pauses read from the store to every job.
    fn apply_pauses(&self, paused: Vec<(String, Pause)>) {
        let paused: HashMap<String, Pause> = paused.into_iter().collect();
        for entry in &self.entries {
            let job = &entry.job.name;
            let pause = paused.get(job);
            match entry.pause.apply(pause) {
                Change::None => {}
                Change::Paused => {
                    let (by, note) = pause.map_or(("", ""), |p| (p.by.as_str(), p.note.as_str()));
                    entry.metrics.paused(true, by.starts_with(PAUSED_BY_POLICY));
                    tracing::info!(job = %job, by, note, "job paused by {by}: {note}");
                }
                Change::Resumed => {
                    entry.metrics.paused(false, false);
                    tracing::info!(job = %job, "job resumed");
                    // What waited for the resume (interrupted executions, pending ticks)
                    // runs now.
                    entry.interrupted.ready.notify_one();
                }
            }
        }
    }

    /// Queues the `requested` executions on their job loops: a new one at once, one still
    /// pending after its backoff.
    async fn queue_requests(&mut self, requested: Vec<Interrupted>) {
        self.outstanding = !requested.is_empty();
        self.requests
            .retain(|id, _| requested.iter().any(|r| r.execution_id == *id));
        let now = Instant::now();
        for request in requested {
            let Some(&i) = self.by_name.get(&request.job) else {
                continue;
            };
            let by = match self.requests.get_mut(&request.execution_id) {
                Some(seen) if now < seen.next => continue,
                Some(seen) => {
                    seen.delay = (seen.delay * 2).min(REQUEUE_MAX);
                    seen.next = now + seen.delay;
                    seen.by.clone()
                }
                None => {
                    let by = self.requester(&request.execution_id).await;
                    let seen = Outstanding {
                        by: by.clone(),
                        delay: REQUEUE_FIRST,
                        next: now + REQUEUE_FIRST,
                    };
                    self.requests.insert(request.execution_id.clone(), seen);
                    by
                }
            };
            let queued = Queued::requested(request.execution_id, request.scheduled_at, by);
            self.entries[i].interrupted.push(queued);
        }
    }

    /// Who asked for the execution `id`, as the store recorded it.
    async fn requester(&self, id: &str) -> String {
        match bounded(self.rt.store.execution(id)).await {
            Ok(Some(record)) => record
                .requested_by
                .unwrap_or_else(|| "an operator".to_owned()),
            _ => "an operator".to_owned(),
        }
    }
}

/// A request seen pending: see [`Control::requests`].
struct Outstanding {
    by: String,
    delay: Duration,
    next: Instant,
}

/// How long a request that is still pending waits before it is queued again, at first.
const REQUEUE_FIRST: Duration = Duration::from_millis(400);

/// The longest a request that is still pending waits before it is queued again.
const REQUEUE_MAX: Duration = Duration::from_secs(30);

/// Runs the control task until `firing` is cancelled: a look about every
/// [`ControlSettings::every`], and at once on a notification of the store's (PostgreSQL).
/// The first look is the caller's, made before the job loops start.
pub(crate) async fn control(mut control: Control, firing: CancellationToken) {
    let notified = Arc::new(Notify::new());
    if control.settings.listen {
        listen(&control.rt, notified.clone(), firing.clone());
    }
    let every = control.settings.every;
    loop {
        tokio::select! {
            () = firing.cancelled() => return,
            () = notified.notified() => {}
            () = sleep(every.mul_f64(0.9 + fastrand::f64() / 5.0)) => {}
        }
        // A look at a slow store does not hold shutdown up.
        tokio::select! {
            () = firing.cancelled() => return,
            () = control.look() => {}
        }
    }
}

/// Starts the listener of the store's notifications, if the store is a PostgreSQL one: it
/// wakes the control task (`notified`) on each notification for this store's schema.
#[cfg(feature = "postgres")]
fn listen(rt: &Runtime, notified: Arc<Notify>, firing: CancellationToken) {
    let Some(crate::store::SqlStore::Postgres(store)) = rt.store.sql() else {
        return;
    };
    tokio::spawn(async move {
        tokio::select! {
            () = firing.cancelled() => {}
            () = listen_postgres(store, notified) => {}
        }
    });
}

#[cfg(not(feature = "postgres"))]
fn listen(_: &Runtime, _: Arc<Notify>, _: CancellationToken) {}

/// Listens on [`CONTROL_CHANNEL`] over a connection of its own (a pool of one with the
/// store's options, so the store's pool keeps all its connections). A listener that fails
/// (the server restarted for longer than a reconnection waits, the network went away) is
/// started again with backoff, 1 s doubling up to a minute, warned about once per failure
/// streak; the control task polls meanwhile, and looks at once when the listener is back
/// (a change notified while it was away was missed).
#[cfg(feature = "postgres")]
async fn listen_postgres(store: crate::store::PostgresStore, notified: Arc<Notify>) {
    use crate::store::CONTROL_CHANNEL;

    let mut backoff = Duration::from_secs(1);
    let mut failing = false;
    loop {
        let failed = listen_once(&store, &notified, &mut failing).await;
        if !failing {
            // It listened until now (or never tried): a new streak.
            backoff = Duration::from_secs(1);
            tracing::warn!(
                channel = CONTROL_CHANNEL, error = %failed,
                "cannot listen for control changes; polling the store and trying again"
            );
            failing = true;
        }
        sleep(backoff.mul_f64(0.5 + fastrand::f64() / 2.0)).await;
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

/// One listener's life, until it fails; `failing` is cleared (and the control task woken)
/// once it listens again after a failure.
#[cfg(feature = "postgres")]
async fn listen_once(
    store: &crate::store::PostgresStore,
    notified: &Notify,
    failing: &mut bool,
) -> sqlx::Error {
    use sqlx::postgres::{PgListener, PgPoolOptions};

    use crate::store::CONTROL_CHANNEL;

    // The listener's connection is tickguard's own, also for a store built on a given pool:
    // it takes the pool's connect options, and tickguard's statement logging.
    let options = crate::store::sql::statement_logging((*store.pool().connect_options()).clone());
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with(options);
    let schema = store.schema();
    let listened = async {
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CONTROL_CHANNEL).await?;
        tracing::debug!(channel = CONTROL_CHANNEL, %schema, "listening for control changes");
        if std::mem::take(failing) {
            tracing::info!(
                channel = CONTROL_CHANNEL,
                "listening for control changes again"
            );
            notified.notify_one();
        }
        loop {
            match listener.try_recv().await? {
                Some(n) if n.payload() == schema => notified.notify_one(),
                Some(_) => {}
                // The connection was lost and is re-established: a change notified
                // meanwhile was missed, so look now.
                None => notified.notify_one(),
            }
        }
    };
    let failed: Result<std::convert::Infallible, sqlx::Error> = listened.await;
    pool.close().await;
    match failed {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn a_pause_applies_once_and_a_new_note_counts_as_a_change() {
        let state = PauseState::default();
        let at = Utc::now();
        let pause = Pause::new("maintenance", "ops", at);
        assert_eq!(state.apply(None), Change::None);
        assert!(!state.is_paused());
        assert_eq!(state.apply(Some(&pause)), Change::Paused);
        assert!(state.is_paused());
        assert_eq!(state.apply(Some(&pause)), Change::None);
        let again = Pause::new("longer maintenance", "ops", at);
        assert_eq!(state.apply(Some(&again)), Change::Paused);
        assert_eq!(state.apply(None), Change::Resumed);
        assert!(!state.is_paused());
        assert_eq!(state.apply(None), Change::None);
    }
}

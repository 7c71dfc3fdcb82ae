//! The [`Scheduler`]: fires each job at its ticks and shuts down gracefully.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::time::timeout;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    builder::SchedulerBuilder,
    control::{Control, ControlSettings, control},
    error::Error,
    executor::{JobEntry, RECORD_BUDGET, Runtime},
    job::Job,
    job_loop::job_loop,
    ledger,
    recovery::recover_interrupted,
    retention::{Keep, retain},
    signal::stop_signal,
    startup::log_startup,
    store::ExecutionStore,
};

/// Runs jobs at their ticks, guarded by a lease lock and an execution store.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> Result<(), tickguard::Error> {
///     tickguard::Scheduler::builder()
///         .build()
///         .await? // discovers every #[scheduled] fn
///         .run() // until SIGTERM or Ctrl-C, then shuts down gracefully
///         .await
/// }
/// ```
pub struct Scheduler {
    /// What every job's runs share: backends, clock, hooks, settings.
    pub(crate) rt: Arc<Runtime>,
    /// The alert webhooks' delivery: stopped (after a last flush) with the scheduler.
    #[cfg(feature = "webhook")]
    pub(crate) alerts: (CancellationToken, Vec<tokio::task::JoinHandle<()>>),
    /// The Prometheus endpoint's task, stopped with the scheduler.
    #[cfg(feature = "prometheus")]
    pub(crate) exporter: Option<tokio::task::JoinHandle<()>>,
    /// The web console's task, stopped with the scheduler.
    #[cfg(feature = "console")]
    pub(crate) console: Option<tokio::task::JoinHandle<()>>,
    /// Cancelled when shutdown begins; each job loop waits on a child.
    pub(crate) firing: CancellationToken,
    /// The registered jobs, each with its state.
    pub(crate) entries: Vec<Arc<JobEntry>>,
    /// How long shutdown waits for running jobs before it cancels them.
    pub(crate) shutdown_grace: Duration,
    /// How late a tick may be noticed and still count as on time.
    pub(crate) misfire_threshold: Duration,
    /// What the retention task keeps, and how often it runs.
    pub(crate) keep: Keep,
    /// How the control task looks for pauses and manual executions.
    pub(crate) control: ControlSettings,
    /// The namespace the builder's own backends were connected in, and which those were,
    /// for the startup log.
    pub(crate) namespace: Option<crate::startup::Namespace>,
}

/// How long shutdown waits for running jobs before it cancels them, unless configured:
/// with the 5 s cancel grace after it, inside Kubernetes' default 30 s between SIGTERM and
/// SIGKILL.
pub(crate) const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// The least time the alert delivery gets at shutdown to send what it holds, however long
/// the runs took to end.
const ALERTS_AT_LEAST: Duration = Duration::from_secs(3);

/// How long the control task's first look, before the job loops start, may take: a store
/// that does not answer by then is asked again by the control task, and the jobs start.
const FIRST_LOOK: Duration = Duration::from_secs(3);

impl Scheduler {
    /// A builder with the embedded defaults: an in-process lock, an in-memory store, and
    /// discovery of every `#[scheduled]` fn.
    pub fn builder() -> SchedulerBuilder {
        SchedulerBuilder::new()
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

    /// Runs until the process is asked to stop, then shuts down gracefully: on SIGTERM (what
    /// `docker stop`, Kubernetes and systemd send) or SIGINT (Ctrl-C). See
    /// [`run_until`](Self::run_until) for what shutting down does.
    pub async fn run(self) -> Result<(), Error> {
        let signal = stop_signal();
        self.run_until(signal).await
    }

    /// Runs until `signal` completes, then shuts down gracefully:
    ///
    /// 1. stops firing, and tells every running job at once through
    ///    [`JobContext::shutdown_requested`](crate::JobContext::shutdown_requested);
    /// 2. waits for running jobs up to the [shutdown grace](SchedulerBuilder::shutdown_grace)
    ///    (20 s by default). A job that [hands its execution back](crate::JobContext::hand_back)
    ///    meanwhile has its progress saved and is recorded CANCELLED, not retried here, its
    ///    lease released, and the other instances told through the store, so that one of
    ///    them resumes the execution (an idempotent job's, or a requested one) from that
    ///    progress within moments;
    /// 3. cancels the runs still going through their context
    ///    ([`JobContext::cancelled`](crate::JobContext::cancelled)) and waits up to the
    ///    [cancel grace](SchedulerBuilder::cancel_grace) (5 s) for them to return: each is
    ///    recorded CANCELLED (its attempt counted, unless it handed back) and resumed
    ///    elsewhere the same way;
    /// 4. records what the job loops left to the ledger, delivers the alerts it holds
    ///    (within what is left of the grace periods and 3 s more, at least 3 s), and
    ///    returns.
    ///
    /// With the defaults the runs have ended 25 s after the signal at the latest, and the
    /// alerts are sent by 28 s: inside the 30 s Kubernetes gives a pod. Only a store that
    /// cannot be reached holds it longer: a run's end is retried for up to 45 s (the record
    /// budget) before it is left RUNNING, which is logged at ERROR with the execution's id;
    /// another instance then resumes it once this one counts as gone.
    pub async fn run_until<S: Future>(mut self, signal: S) -> Result<(), Error> {
        let loops = self.start().await;
        signal.await;
        let signalled = tokio::time::Instant::now();
        tracing::info!("shutting down: no new runs; running jobs are told to stop");
        self.shut_down(loops, signalled).await;
        tracing::info!("scheduler stopped");
        Ok(())
    }

    /// Logs the startup, reads the pauses, and starts the control task, the job loops, the
    /// recovery task and the retention task.
    async fn start(&self) -> TaskTracker {
        let firing = self.firing.clone();
        let loops = TaskTracker::new();
        log_startup(&self.rt, &self.entries, self.namespace.as_ref());
        // The pauses are read before the first tick: a job paused before this instance
        // started does not fire once by mistake.
        let mut look = Control::new(self.rt.clone(), self.entries.clone(), self.control);
        let _ = timeout(FIRST_LOOK, look.look()).await;
        loops.spawn(control(look, firing.child_token()));
        for entry in &self.entries {
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
        loops.spawn(retain(
            self.rt.store.clone(),
            self.entries.iter().map(|e| e.job.name.clone()).collect(),
            self.keep.clone(),
            firing.child_token(),
        ));
        loops.close();
        loops
    }

    /// Stops firing, waits for the runs in progress through the grace periods, records
    /// what is left to the ledger, and stops the services, all within the shutdown's
    /// budget from `signalled`.
    async fn shut_down(&mut self, loops: TaskTracker, signalled: tokio::time::Instant) {
        self.firing.cancel();
        // Idle jobs return at once; a job with a run in progress returns when the run ends
        // and its end is recorded.
        if timeout(self.shutdown_grace, loops.wait()).await.is_err() {
            tracing::warn!(
                running = loops.len(),
                grace = ?self.shutdown_grace,
                "runs still in progress after the shutdown grace period; cancelling them"
            );
            self.rt.stop_runs.cancel();
            // Each run returns, or is dropped, within the cancel grace; then recording its
            // end takes up to the record budget (a slow store), releasing its lease a little
            // more.
            let recorded = self.rt.cancel_grace + RECORD_BUDGET + Duration::from_secs(5);
            let _ = timeout(recorded, loops.wait()).await;
        }
        // What the job loops left to the ledger is recorded before this instance goes:
        // another instance runs it.
        ledger::flush_at_shutdown(&self.rt, &self.entries).await;
        for execution_id in self.rt.unrecorded.left() {
            tracing::error!(
                %execution_id,
                "shutdown: the execution's end is not recorded; it stays RUNNING until this \
                 owner counts as gone, then an idempotent job's execution is resumed"
            );
        }
        let left = (self.shutdown_grace + self.rt.cancel_grace + Duration::from_secs(3))
            .saturating_sub(signalled.elapsed())
            .max(ALERTS_AT_LEAST);
        self.stop_services(left).await;
    }

    /// Stops what the scheduler started besides its jobs: the Prometheus endpoint, and the
    /// alert delivery once it has sent what it holds (within `left`).
    #[cfg_attr(not(feature = "webhook"), allow(unused_variables))]
    async fn stop_services(&mut self, left: Duration) {
        #[cfg(feature = "prometheus")]
        if let Some(exporter) = &self.exporter {
            exporter.abort();
        }
        #[cfg(feature = "console")]
        if let Some(console) = &self.console {
            console.abort();
        }
        #[cfg(feature = "webhook")]
        {
            let (stop, tasks) = &mut self.alerts;
            stop.cancel();
            // The flush is bounded inside; this bounds it by what is left of the shutdown.
            let until = tokio::time::Instant::now() + left;
            for task in tasks.iter_mut() {
                if tokio::time::timeout_at(until, task).await.is_err() {
                    tracing::error!("alert delivery did not stop in time; abandoned");
                }
            }
        }
    }
}

impl Drop for Scheduler {
    /// Stops what the scheduler started besides its jobs (the Prometheus endpoint, the alert
    /// delivery), also when it is dropped without running.
    fn drop(&mut self) {
        #[cfg(feature = "prometheus")]
        if let Some(exporter) = &self.exporter {
            exporter.abort();
        }
        #[cfg(feature = "console")]
        if let Some(console) = &self.console {
            console.abort();
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

//! One service run as three replicas, with the lease lock in Redis and the executions in
//! PostgreSQL: each tick of the job runs once for the cluster, and when the replica running
//! it dies, another replica takes the execution over and resumes it from its checkpoint.
//!
//! ```text
//! bash examples/cluster/run.sh     # the whole scene, on Debian: see the script
//! cargo run -p tickguard-examples --example cluster -- 30   # one replica, embedded defaults
//! ```
//!
//! The script installs and starts Redis, PostgreSQL and Prometheus when they are missing,
//! starts three replicas of this example and a Prometheus that scrapes them, kills the
//! replica that runs the job (SIGKILL: it gets no chance to say goodbye), and prints the
//! takeover from `tickguard history`, `tickguard execution` and the dashboard's queries. By
//! hand, one replica per terminal, each with its own id and metrics port:
//!
//! ```text
//! cargo run -p tickguard-examples --example cluster -- --instance replica-1 \
//!     --postgres postgres://postgres@127.0.0.1/test --redis redis://127.0.0.1:6379 \
//!     --namespace cluster_demo --metrics 127.0.0.1:9464
//! ```
//!
//! The job, `rollup`, runs every 10 seconds: ten batches of 300 ms, with a checkpoint after
//! each. It is `idempotent`: every replica gives a tick the same execution id
//! (`rollup@<tick>`), and the store lets one of them run it. It holds a lease lock
//! (`lock(ttl = "3s")`), which the watchdog renews every second while it runs.
//!
//! When the replica running it is killed, its lease is no longer renewed and expires within
//! the ttl, and its execution's heartbeat stops. Once the heartbeat is older than the
//! liveness (3 s here, `SchedulerBuilder::liveness`; 30 s by default), the recovery of
//! another replica, which looks every third of the liveness, claims the execution with a
//! higher fence and resumes it from its last checkpoint. Should the killed replica come back
//! to life (a paused VM rather than a dead one), the store refuses its writes: its fence is
//! stale. `tickguard execution rollup@<tick>` shows both runs: the killed replica's as
//! `ABANDONED`, then the one that took over and completed the tick.
//!
//! When copying it: the ttl bounds how long the cluster waits for a dead holder (and how long
//! a holder may be frozen before another one runs the job: a few times your worst GC or VM
//! pause); the liveness bounds how long a dead replica's execution waits to be resumed;
//! checkpoint often enough that a resumed run does not redo much. Give every replica the
//! same `--namespace`, its own `--instance`, and let Prometheus scrape every `--metrics`
//! with `honor_labels: true` (see docs/observability).

use std::time::Duration;

use clap::Parser;
use tickguard::{JobContext, JobResult, scheduled};
use tickguard_examples::{Options, init_logging};

/// The example's command line: the examples' options and this replica's id.
#[derive(Debug, Parser)]
struct Replica {
    #[command(flatten)]
    options: Options,
    /// This replica's id in locks, executions and logs (default: host, process id and a
    /// random part).
    #[arg(long, env = "TICKGUARD_INSTANCE")]
    instance: Option<String>,
}

/// Batches in one rollup.
const BATCHES: u32 = 10;

/// Rolls up the last ten seconds' data, batch by batch, resuming after the last batch
/// checkpointed.
#[scheduled(every = "10s", idempotent, lock(ttl = "3s"), timeout = "1m")]
async fn rollup(ctx: JobContext) -> JobResult {
    let start: u32 = ctx.last_checkpoint().await?.unwrap_or(0);
    tracing::info!(
        start,
        fence = ctx.fence(),
        "rollup starting at batch {start}"
    );
    for batch in start..BATCHES {
        tokio::time::sleep(Duration::from_millis(300)).await;
        ctx.checkpoint(&(batch + 1)).await?;
        tracing::info!(batch = batch + 1, "batch rolled up");
    }
    tracing::info!("rollup done");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), tickguard::Error> {
    init_logging();
    let Replica { options, instance } = Replica::parse();
    let mut builder = options
        .builder("tickguard-cluster.db")
        .liveness(Duration::from_secs(3));
    if let Some(instance) = instance {
        builder = builder.instance_id(instance);
    }
    options.run(builder.build().await?).await
}

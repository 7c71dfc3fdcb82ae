//! Application state passed to jobs, and a graceful stop: a long job that saves its place
//! when the process is told to stop, and carries on from there after the restart.
//!
//! ```text
//! cargo run -p tickguard-examples --example state_and_shutdown          # Ctrl-C mid-run,
//! cargo run -p tickguard-examples --example state_and_shutdown          # then start again
//! CATALOG_REGION=eu-west cargo run -p tickguard-examples --example state_and_shutdown -- 20
//! cargo run -p tickguard-examples --example state_and_shutdown -- \
//!     --postgres postgres://postgres@127.0.0.1/test --redis redis://127.0.0.1:6379
//!     # executions in PostgreSQL, the lock in Redis
//! ```
//!
//! What it shows:
//!
//! - **State.** What jobs need (an API client, a configuration, a database pool) is built
//!   once in `main` and given to the builder with `.state(value)`; a job takes it as a
//!   `State<T>` argument. Every run of every job shares the one value behind an `Arc`, so
//!   a client's connection pool or a counter is shared too. A job whose state was not given
//!   is refused when the scheduler is built, not when it first runs.
//! - **SIGTERM** (what `kubectl delete pod`, `systemctl stop` and a rolling deploy send),
//!   or Ctrl-C: the scheduler starts no new run and tells the running ones to stop; it waits
//!   for them within its shutdown grace, logs `scheduler stopped` and `main` returns, so
//!   the process exits 0.
//! - **A long job told to stop.** The reindex checks `ctx.is_shutdown_requested()` between
//!   items; when the process is stopping, `ctx.hand_back(&item)` saves the item it reached
//!   and hands the execution back. The next process (or another instance, on a shared
//!   store) resumes it at that item: nothing is redone, nothing is skipped. The
//!   checkpoint every 10 items covers the case nobody is told: a crash.
//!
//! Copying it: put your pool, client and settings in `.state(..)` (one value per type;
//! wrap a type that is not `Sync` in a `Mutex`), make the unit of work between two checks
//! short compared to the platform's stop timeout (`terminationGracePeriodSeconds`,
//! `TimeoutStopSec`), and give the scheduler a `shutdown_grace` below it.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tickguard::{JobContext, JobResult, State, scheduled};
use tickguard_examples::{Options, init_logging};

/// Items in one reindex.
const ITEMS: u64 = 40;

/// The configuration, read once at start.
#[derive(Debug)]
struct Settings {
    region: String,
}

impl Settings {
    /// From the environment: `CATALOG_REGION` (default `local`).
    fn from_env() -> Self {
        Self {
            region: std::env::var("CATALOG_REGION").unwrap_or_else(|_| "local".to_owned()),
        }
    }
}

/// A stand-in for the catalog service's client: a real one (`reqwest::Client`, a gRPC
/// channel) is built once and cloned cheaply in the same way. It counts its calls, which
/// every job shares.
#[derive(Debug, Default)]
struct CatalogClient {
    calls: AtomicU64,
}

impl CatalogClient {
    /// Re-indexes one item: 100 ms of work.
    async fn reindex(&self, _region: &str, _item: u64) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A 4 s reindex every 6 s, one completed run per tick (`idempotent`): an execution handed
/// back at shutdown is resumed by the next process that starts on the same store. A tick
/// missed while no process ran is not worth running late (`misfire = "skip"`): the next
/// tick reindexes anyway.
#[scheduled(every = "6s", idempotent, lock(ttl = "10s"), misfire = "skip")]
async fn reindex_catalog(
    ctx: &JobContext,
    State(catalog): State<CatalogClient>,
    State(settings): State<Settings>,
) -> JobResult {
    let execution_id = ctx.execution_id();
    let region = settings.region.as_str();
    let start: u64 = ctx.last_checkpoint().await?.unwrap_or(0);
    if start > 0 {
        tracing::info!(
            execution_id,
            region,
            item = start,
            of = ITEMS,
            "resuming the reindex"
        );
    } else {
        tracing::info!(execution_id, region, of = ITEMS, "reindex started");
    }
    for item in start..ITEMS {
        if ctx.is_shutdown_requested() {
            tracing::info!(
                execution_id,
                item,
                "shutting down: handing the reindex back"
            );
            return ctx.hand_back(&item).await;
        }
        catalog.reindex(region, item).await;
        tracing::debug!(item, "item reindexed");
        if (item + 1) % 10 == 0 {
            ctx.checkpoint(&(item + 1)).await?;
        }
    }
    let calls = catalog.calls.load(Ordering::Relaxed);
    tracing::info!(execution_id, region, calls, "reindex finished");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), tickguard::Error> {
    init_logging();
    let options = Options::from_args();
    let settings = Settings::from_env();
    tracing::info!(region = %settings.region, "settings read");
    let scheduler = options
        .builder("tickguard-state_and_shutdown.db")
        .state(settings)
        .state(CatalogClient::default())
        // Below the platform's stop timeout (30 s on Kubernetes by default).
        .shutdown_grace(Duration::from_secs(10))
        .build()
        .await?;
    options.run(scheduler).await
}

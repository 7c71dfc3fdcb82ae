//! Testing a job's failure scenarios with `tickguard::testing`: the API fails once and the retry succeeds; the same tick run twice charges once; the lock
//! is lost mid-run and the next run resumes from the checkpoint.
//!
//! ```text
//! cargo test -p tickguard-examples --test job_failures
//! ```

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, TimeZone, Utc};
use tickguard::{
    Job, JobContext, JobError, JobResult, LockPolicy, RetryPolicy, Schedule,
    store::{MemoryStore, Status},
    testing::{FaultyLock, Run},
};

fn nightly() -> Schedule {
    Schedule::cron("0 0 2 * * *").unwrap()
}

fn tick() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 2, 0, 0).unwrap()
}

/// A payment API that times out on its first call.
#[derive(Clone, Default)]
struct PaymentApi {
    calls: Arc<AtomicU32>,
    charges: Arc<Mutex<Vec<(u64, String)>>>,
}

impl PaymentApi {
    async fn charge(&self, order: u64, idempotency_key: &str) -> Result<(), std::io::Error> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "gateway timeout",
            ));
        }
        self.charges
            .lock()
            .unwrap()
            .push((order, idempotency_key.to_owned()));
        Ok(())
    }
}

/// The job under test: charges the night's orders, once each.
fn charge_orders(api: PaymentApi) -> Job {
    Job::new("charge_orders", nightly(), move |ctx: JobContext| {
        let api = api.clone();
        async move {
            for order in [17, 18] {
                let key = format!("charge-order-{order}");
                ctx.once(&key, async {
                    api.charge(order, &ctx.idempotency_key(&key)).await?;
                    Ok(())
                })
                .await?;
            }
            JobResult::Ok(())
        }
    })
    .retry(RetryPolicy::attempts(3).backoff(Duration::from_millis(10)))
    .idempotent()
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_retried_once_and_each_order_is_charged_once() {
    let api = PaymentApi::default();
    let report = Run::new(charge_orders(api.clone()), tick()).run().await;
    let record = report.record().unwrap();
    assert_eq!(record.status, Status::Completed);
    assert_eq!(
        record.attempts, 2,
        "the first attempt timed out, the retry succeeded"
    );
    let charges = api.charges.lock().unwrap().clone();
    assert_eq!(charges.len(), 2);
    assert_eq!(
        charges[0].1, "charge_orders@2026-11-29T02:00:00Z/charge-order-17",
        "the key the payment API deduplicates on is stable across retries"
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_tick_run_twice_charges_once() {
    let api = PaymentApi::default();
    // Two instances fire the same tick against one store.
    let store = Arc::new(MemoryStore::new());
    let first = Run::new(charge_orders(api.clone()), tick())
        .store(store.clone())
        .run()
        .await;
    let second = Run::new(charge_orders(api.clone()), tick())
        .store(store.clone())
        .instance_id("another-instance")
        .run()
        .await;
    assert_eq!(first.record().unwrap().status, Status::Completed);
    assert!(second.record().is_none(), "the tick was done: {second:?}");
    assert_eq!(
        api.charges.lock().unwrap().len(),
        2,
        "orders 17 and 18, once each"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lock_lost_mid_run_stops_the_run_and_the_next_run_resumes_from_its_checkpoint() {
    let lock = Arc::new(FaultyLock::in_process());
    let done = Arc::new(Mutex::new(Vec::new()));
    let job = |lock: Arc<FaultyLock>, done: Arc<Mutex<Vec<u32>>>| {
        Job::new("export", nightly(), move |ctx: JobContext| {
            let (lock, done) = (lock.clone(), done.clone());
            async move {
                let start: u32 = ctx.last_checkpoint().await?.unwrap_or(0);
                for batch in start..10 {
                    if ctx.is_cancelled() {
                        return Err(JobError::transient("stopped"));
                    }
                    done.lock().unwrap().push(batch);
                    ctx.checkpoint(&(batch + 1)).await?;
                    if batch == 3 {
                        // The lease expires (a GC pause, a Redis failover).
                        lock.lose_lease();
                    }
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                Ok(())
            }
        })
        .lock(LockPolicy::new(Duration::from_secs(30)))
        .idempotent()
    };
    let store = Arc::new(MemoryStore::new());
    let stopped = Run::new(job(lock.clone(), done.clone()), tick())
        .store(store.clone())
        .lock(lock.clone())
        .run()
        .await;
    let record = stopped.record().unwrap();
    assert_eq!(record.status, Status::Cancelled, "{record:?}");
    let checkpoint: u32 = record.checkpoint.as_deref().unwrap().parse().unwrap();
    assert!(
        (4..10).contains(&checkpoint),
        "stopped part way: {checkpoint}"
    );

    // The lock is back; the execution is resumed where the lost run stopped.
    lock.restore();
    let resumed = Run::new(job(lock.clone(), done.clone()), tick())
        .store(store.clone())
        .lock(lock.clone())
        .run()
        .await;
    assert_eq!(resumed.record().unwrap().status, Status::Completed);
    // Every batch once: the resumed run started at the checkpoint.
    let done = done.lock().unwrap().clone();
    assert_eq!(done, (0..10).collect::<Vec<u32>>());
}

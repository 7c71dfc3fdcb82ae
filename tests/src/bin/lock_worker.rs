//! A worker process for the multi-process failure tests (`tests/lock_failures.rs`): one
//! scheduler instance with one job under a Redis lock, reporting what it does to a Redis
//! list, so a test can kill, stop or starve it and read what happened.
//!
//! ```text
//! lock_worker <lock-redis-url> <events-redis-url> <key-prefix> <job> <instance> <ttl-ms> <work-ms> <every-ms> <events-key>
//! ```
//!
//! Events, one list entry each: `start <instance> <tick-ms> <wall-ms>` when a run starts,
//! `end <instance> <tick-ms> <wall-ms>` when it finished its work,
//! `cancelled <instance> <tick-ms> <wall-ms> <reason>` when it noticed it was asked to stop,
//! `failure <instance> <tick-ms> <wall-ms> <outcome> <lock_lost_total>` from the failure
//! hook, and `ready <instance> 0 <wall-ms>` once the scheduler is built.

#![allow(clippy::print_stderr)]

use std::{sync::Arc, time::Duration};

use redis::AsyncCommands;
use tickguard::{
    Job, JobContext, JobError, LockPolicy, Schedule, Scheduler, lock::RedisLock, metrics as names,
};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Clone)]
struct Events {
    conn: redis::aio::MultiplexedConnection,
    key: String,
    instance: String,
}

impl Events {
    async fn push(&self, kind: &str, tick_ms: i64, extra: &str) {
        let entry = format!("{kind} {} {tick_ms} {} {extra}", self.instance, now_ms());
        let mut conn = self.conn.clone();
        if let Err(e) = conn.rpush::<_, _, ()>(&self.key, entry.trim_end()).await {
            eprintln!("lock_worker: cannot record `{kind}`: {e}");
        }
    }
}

fn arg(args: &[String], i: usize, what: &str) -> String {
    args.get(i)
        .cloned()
        .unwrap_or_else(|| panic!("lock_worker: missing argument {i} ({what})"))
}

fn millis(args: &[String], i: usize, what: &str) -> Duration {
    let text = arg(args, i, what);
    Duration::from_millis(
        text.parse()
            .unwrap_or_else(|_| panic!("lock_worker: {what} `{text}` is not a number of ms")),
    )
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (lock_url, events_url) = (arg(&args, 1, "lock url"), arg(&args, 2, "events url"));
    let (prefix, job_name) = (arg(&args, 3, "key prefix"), arg(&args, 4, "job"));
    let instance = arg(&args, 5, "instance");
    let ttl = millis(&args, 6, "ttl");
    let work = millis(&args, 7, "work");
    let every = millis(&args, 8, "every");
    let key = arg(&args, 9, "events key");

    let recorded = tickguard_tests::metrics();
    let conn = redis::Client::open(events_url.as_str())
        .unwrap_or_else(|e| panic!("lock_worker: events Redis: {e}"))
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("lock_worker: events Redis: {e}"));
    let events = Events {
        conn,
        key,
        instance: instance.clone(),
    };
    let lock = RedisLock::connect(&lock_url)
        .await
        .unwrap_or_else(|e| panic!("lock_worker: {e}"))
        .with_prefix(prefix);

    let (job_events, hook_events) = (events.clone(), events.clone());
    let hook_job = job_name.clone();
    let job = Job::new(
        job_name,
        Schedule::every(every).unwrap_or_else(|e| panic!("lock_worker: {e}")),
        move |ctx: JobContext| {
            let events = job_events.clone();
            async move {
                let tick = ctx.scheduled_at().timestamp_millis();
                events.push("start", tick, "").await;
                let step = Duration::from_millis(20);
                let mut done = Duration::ZERO;
                while done < work {
                    if ctx.is_cancelled() {
                        let reason = ctx.cancel_reason().map_or("none", |r| r.as_str());
                        events.push("cancelled", tick, reason).await;
                        return Err(JobError::transient("cancelled"));
                    }
                    tokio::time::sleep(step).await;
                    done += step;
                }
                events.push("end", tick, "").await;
                Ok(())
            }
        },
    )
    .lock(LockPolicy::new(ttl))
    .on_failure(move |report| {
        let (events, recorded, job) =
            (hook_events.clone(), Arc::clone(&recorded), hook_job.clone());
        async move {
            let lost = recorded.counter(names::LOCK_LOST_TOTAL, &[("job", job.as_str())]);
            let extra = format!("{} {lost}", report.outcome);
            events
                .push("failure", report.scheduled_at.timestamp_millis(), &extra)
                .await;
        }
    });
    let scheduler = Scheduler::builder()
        .discover(false)
        .instance_id(instance)
        .lock_backend(lock)
        .job(job)
        .build()
        .await
        .unwrap_or_else(|e| panic!("lock_worker: {e}"));
    events.push("ready", 0, "").await;
    let _ = scheduler
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
}

//! Failures injected for real into worker processes that share a Redis lock: a holder killed
//! with SIGKILL, a job that runs three times its ttl, a holder stopped with SIGSTOP past its
//! ttl and then continued, and Redis paused under a running job.
//!
//! Each worker is the `lock_worker` binary of this crate (one scheduler, one job) and reports
//! what it does to a Redis list the test reads. Needs Redis at `TICKGUARD_TEST_REDIS`
//! (default `redis://127.0.0.1:6379`) and the `redis-server` binary (the pause test runs its
//! own server); `bash scripts/services` provides both. Without them the tests fail, never
//! skip. The tests run one at a time: they measure real time on a small machine.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use redis::AsyncCommands;
use tickguard_tests::{RedisServer, Worker, free_port};

const TTL_MS: i64 = 1000;

fn redis_url() -> String {
    std::env::var("TICKGUARD_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

async fn conn(url: &str) -> redis::aio::MultiplexedConnection {
    let fail =
        |e: redis::RedisError| -> ! { panic!("Redis at {url}: {e}; run `bash scripts/services`") };
    redis::Client::open(url)
        .unwrap_or_else(|e| fail(e))
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| fail(e))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One test's names: a lock key prefix, a job, an events list.
struct Scene {
    lock_url: String,
    prefix: String,
    job: String,
    events: String,
}

impl Scene {
    fn new(case: &str, lock_url: String) -> Self {
        let tag = format!("{case}-{}-{}", std::process::id(), now_ms());
        Self {
            lock_url,
            prefix: format!("tg-fail:{tag}:lock:"),
            job: format!("job-{tag}"),
            events: format!("tg-fail:{tag}:events"),
        }
    }

    fn lock_key(&self) -> String {
        format!("{}{}", self.prefix, self.job)
    }

    /// Starts a worker named `instance` whose job works `work_ms` and fires every 500 ms.
    fn worker(&self, instance: &str, work_ms: i64) -> Worker {
        let child = Command::new(env!("CARGO_BIN_EXE_lock_worker"))
            .args([
                &self.lock_url,
                &redis_url(),
                &self.prefix,
                &self.job,
                instance,
                &TTL_MS.to_string(),
                &work_ms.to_string(),
                "500",
                &self.events,
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start lock_worker: {e}"));
        Worker(child)
    }

    async fn events(&self) -> Vec<Event> {
        let mut c = conn(&redis_url()).await;
        let raw: Vec<String> = c.lrange(&self.events, 0, -1).await.unwrap();
        raw.iter().map(|e| Event::parse(e)).collect()
    }

    /// Waits until an event matches, or fails with every event seen.
    async fn wait_for(&self, what: &str, within: Duration, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + within;
        loop {
            let events = self.events().await;
            if let Some(e) = events.iter().find(|e| pred(e)) {
                return e.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {within:?}; events: {events:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[derive(Clone, Debug)]
struct Event {
    kind: String,
    instance: String,
    tick_ms: i64,
    wall_ms: i64,
    extra: Vec<String>,
}

impl Event {
    fn parse(entry: &str) -> Self {
        let mut parts = entry.split(' ');
        let mut next = || parts.next().unwrap_or_default().to_owned();
        let (kind, instance, tick, wall) = (next(), next(), next(), next());
        Self {
            kind,
            instance,
            tick_ms: tick.parse().unwrap_or_default(),
            wall_ms: wall.parse().unwrap_or_default(),
            extra: entry.split(' ').skip(4).map(str::to_owned).collect(),
        }
    }

    fn is(&self, kind: &str, instance: &str) -> bool {
        self.kind == kind && self.instance == instance
    }
}

/// One test at a time: they measure real time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_holder_frees_the_lock_within_its_ttl() {
    let _one = ONE_AT_A_TIME.lock().await;
    let scene = Scene::new("sigkill", redis_url());
    let a = scene.worker("A", 30_000);
    scene
        .wait_for("start by A", Duration::from_secs(10), |e| {
            e.is("start", "A")
        })
        .await;
    let _b = scene.worker("B", 30_000);
    scene
        .wait_for("B ready", Duration::from_secs(10), |e| e.is("ready", "B"))
        .await;
    let killed_at = now_ms();
    a.signal("KILL");
    let taken = scene
        .wait_for("start by B", Duration::from_secs(5), |e| e.is("start", "B"))
        .await;
    let after = taken.wall_ms - killed_at;
    assert!(
        after <= TTL_MS + 1000,
        "B ran the job {after} ms after A was killed; the ttl is {TTL_MS} ms"
    );
    drop(a);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_three_times_its_ttl_keeps_the_lock_throughout() {
    let _one = ONE_AT_A_TIME.lock().await;
    let scene = Scene::new("long", redis_url());
    let work = 3 * TTL_MS;
    let _a = scene.worker("A", work);
    let _b = scene.worker("B", work);
    let first = scene
        .wait_for("a start", Duration::from_secs(10), |e| e.kind == "start")
        .await;
    let holder = first.instance.clone();
    let mut c = conn(&redis_url()).await;
    // Past the ttl the lease must still be the holder's: renewed, not expired and retaken.
    let mut checks = 0;
    while now_ms() < first.wall_ms + work - 200 {
        let value: Option<String> = c.get(scene.lock_key()).await.unwrap();
        let value = value.unwrap_or_default();
        assert!(
            value.starts_with(&format!("{holder}#")),
            "{} ms into a run by {holder}, the lock is held by `{value}`",
            now_ms() - first.wall_ms
        );
        if now_ms() > first.wall_ms + TTL_MS + 200 {
            checks += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        checks >= 5,
        "the lease was seen past its ttl only {checks} times"
    );
    let end = scene
        .wait_for("the end of the run", Duration::from_secs(5), |e| {
            e.is("end", &holder) && e.tick_ms == first.tick_ms
        })
        .await;
    let overlapping: Vec<Event> = scene
        .events()
        .await
        .into_iter()
        .filter(|e| e.kind == "start" && e.wall_ms > first.wall_ms && e.wall_ms < end.wall_ms)
        .collect();
    assert!(
        overlapping.is_empty(),
        "runs started while {holder} held the lock: {overlapping:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_stopped_past_its_ttl_learns_it_lost_the_lock() {
    let _one = ONE_AT_A_TIME.lock().await;
    let scene = Scene::new("sigstop", redis_url());
    let a = scene.worker("A", 30_000);
    let started = scene
        .wait_for("start by A", Duration::from_secs(10), |e| {
            e.is("start", "A")
        })
        .await;
    let _b = scene.worker("B", 30_000);
    scene
        .wait_for("B ready", Duration::from_secs(10), |e| e.is("ready", "B"))
        .await;
    a.signal("STOP");
    let stopped_at = now_ms();
    scene
        .wait_for(
            "start by B while A is stopped",
            Duration::from_secs(5),
            |e| e.is("start", "B"),
        )
        .await;
    let waited = now_ms() - stopped_at;
    if waited < 2 * TTL_MS {
        tokio::time::sleep(Duration::from_millis((2 * TTL_MS - waited) as u64)).await;
    }
    a.signal("CONT");
    let failure = scene
        .wait_for("A's report of the loss", Duration::from_secs(5), |e| {
            e.is("failure", "A")
        })
        .await;
    assert_eq!(failure.tick_ms, started.tick_ms);
    assert_eq!(failure.extra.first().map(String::as_str), Some("cancelled"));
    assert_eq!(
        failure.extra.get(1).map(String::as_str),
        Some("1"),
        "tickguard_lock_lost_total"
    );
    // A must not finish as if it had held the lock.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let finished: Vec<Event> = scene
        .events()
        .await
        .into_iter()
        .filter(|e| e.is("end", "A"))
        .collect();
    assert!(
        finished.is_empty(),
        "A finished after losing the lock: {finished:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_paused_under_a_long_job_is_a_reported_loss_and_the_next_tick_runs() {
    let _one = ONE_AT_A_TIME.lock().await;
    let port = free_port();
    let _server = RedisServer::start(port).await;
    let lock_url = format!("redis://127.0.0.1:{port}");
    let scene = Scene::new("pause", lock_url.clone());
    let _a = scene.worker("A", 10_000);
    let first = scene
        .wait_for("start by A", Duration::from_secs(10), |e| {
            e.is("start", "A")
        })
        .await;
    let mut lock_redis = conn(&lock_url).await;
    let paused_at = now_ms();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2500)
        .arg("ALL")
        .query_async(&mut lock_redis)
        .await
        .unwrap();
    // The job is told while the lease is still valid: it has not been renewed since before
    // the pause, so it may expire up to one ttl into it.
    let told = scene
        .wait_for("A told to stop", Duration::from_secs(6), |e| {
            e.is("cancelled", "A")
        })
        .await;
    assert_eq!(told.extra.first().map(String::as_str), Some("lock_lost"));
    assert!(
        told.wall_ms - paused_at < TTL_MS,
        "A was told to stop {} ms into the pause; its lease could expire after {TTL_MS} ms",
        told.wall_ms - paused_at
    );
    let failure = scene
        .wait_for("A's report of the loss", Duration::from_secs(6), |e| {
            e.is("failure", "A")
        })
        .await;
    assert_eq!(failure.tick_ms, first.tick_ms);
    assert_eq!(failure.extra.first().map(String::as_str), Some("cancelled"));
    assert_eq!(failure.extra.get(1).map(String::as_str), Some("1"));
    // Once Redis answers again, the job runs its next tick.
    scene
        .wait_for("a later run", Duration::from_secs(8), |e| {
            e.is("start", "A") && e.tick_ms > first.tick_ms
        })
        .await;
}

//! The chaos harness: worker processes (`src/bin/chaos_worker.rs`) run two idempotent
//! `misfire = run_all` jobs due every second that write one effect row per tick, while a
//! seeded fault driver
//!
//! - kills them (SIGKILL, then a restart in the same slot);
//! - stops them gracefully (SIGTERM, waits for the exit, then a restart);
//! - stops them past their lease (SIGSTOP, then SIGCONT);
//! - terminates their Postgres backends;
//! - delays their Postgres traffic (store and lock) through a proxy in this process, 300 to
//!   1200 ms per chunk for 1 to 2.5 s;
//! - restarts Redis, pauses it (`CLIENT PAUSE`), and delays or blackholes their Redis traffic
//!   through another proxy.
//!
//! With the Postgres store a fourth worker runs with its wall clock 2 s behind (libfaketime,
//! `FAKETIME="-2"`, monotonic clock untouched); it is never a fault's target, and the test
//! proves its clock really lags (its ready file holds its `Utc::now()`, the file's
//! modification time is the kernel's). Its effects' times are shifted back by 2 s before
//! the checks below. (With the SQLite store each process's clock is the store's; a lagging
//! process there is unsupported.)
//!
//! After the last fault it polls the effects table until every tick from the first checked
//! one to the first one due after the faults has its effect, or 30 s pass. Then it checks:
//!
//! - at most one effect per (job, tick);
//! - **every** tick of both jobs has its effect: no window is excused, faults or not (both
//!   jobs are `run_all`); a failure lists each missing tick with the fault windows it fell
//!   in (from 1 s before a fault to ttl + 1 s after it);
//! - fences strictly increase in commit order, per job;
//! - no two effects of one job were made by runs that overlapped in time;
//! - the live workers' Prometheus counters (`tickguard_executions_total`, scraped from their
//!   `/metrics`) count every effect they wrote.
//!
//! It prints a table per fault kind: faults applied, ticks due inside its windows, ticks run,
//! ticks lost.
//!
//! Three backend combinations: Redis lock + Postgres store; Postgres lock + SQLite store;
//! SQLite store alone, run at once by one test, each in a thread of its own (as separate
//! tests only two would run at a time on a two-core machine). `TICKGUARD_CHAOS_COMBOS`
//! picks some (`RedisPostgres,PostgresLockSqlite,SqliteAlone`). Short mode by default (90 s).
//! `TICKGUARD_CHAOS_SECONDS` sets the length (a soak run: `TICKGUARD_CHAOS_SECONDS=1800`),
//! `TICKGUARD_CHAOS_SEED` replays a run's faults (each run prints its seed).
//!
//! Needs PostgreSQL (`TICKGUARD_TEST_POSTGRES`), `redis-server` on the PATH and libfaketime
//! (Debian's `faketime`); `bash scripts/services` provides them. Without them it fails; it
//! never skips.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // a failed unwrap is a failed test

#[path = "chaos/scene.rs"]
mod scene;
#[path = "chaos/verdict.rs"]
mod verdict;

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use chrono::Utc;
use scene::{Combo, Scene};
use tickguard_tests::proxy::Traffic;
use verdict::{JOBS, Ticks, Window};

/// The workers' lease ttl and liveness (`chaos_worker`).
const TTL_MS: i64 = 1_500;
/// How long after the last fault every tick must have its effect.
const QUIET_END: Duration = Duration::from_secs(30);

/// `(id, job, tick, fence, worker, started, finished)`, in commit order.
type Effect = (i64, String, i64, i64, String, i64, i64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Kill,
    Term,
    Stop,
    TerminateBackends,
    SlowPostgres,
    RestartRedis,
    PauseRedis,
    SlowRedis,
    BlackholeRedis,
}

impl Fault {
    /// The faults that apply to `combo`.
    fn kinds(combo: Combo) -> Vec<Self> {
        let mut kinds = vec![Self::Kill, Self::Term, Self::Stop];
        if combo != Combo::SqliteAlone {
            kinds.extend([Self::TerminateBackends, Self::SlowPostgres]);
        }
        if combo == Combo::RedisPostgres {
            kinds.extend([
                Self::RestartRedis,
                Self::PauseRedis,
                Self::SlowRedis,
                Self::BlackholeRedis,
            ]);
        }
        kinds
    }

    /// Applies the fault to the worker in `slot` (or to the servers), until it is over.
    async fn apply(self, scene: &mut Scene, slot: usize, rng: &mut fastrand::Rng) {
        let pause = |rng: &mut fastrand::Rng, ms: std::ops::RangeInclusive<u64>| {
            tokio::time::sleep(Duration::from_millis(rng.u64(ms)))
        };
        match self {
            Self::Kill => {
                scene.workers[slot].signal("KILL");
                let _ = scene.workers[slot].0.wait();
                pause(rng, 0..=1_000).await;
                scene.spawn(slot);
            }
            Self::Term => {
                scene.workers[slot].signal("TERM");
                scene.wait_exit(slot).await;
                scene.spawn(slot);
            }
            Self::Stop => {
                scene.workers[slot].signal("STOP");
                pause(rng, 1_700..=3_000).await;
                scene.workers[slot].signal("CONT");
            }
            Self::TerminateBackends => scene.terminate_backends().await,
            Self::SlowPostgres => {
                let proxy = scene.pg_proxy.clone().unwrap();
                proxy.set(Traffic::Delay {
                    min_ms: 300,
                    max_ms: 1_200,
                });
                pause(rng, 1_000..=2_500).await;
                proxy.set(Traffic::Pass);
            }
            Self::RestartRedis => {
                let (port, server) = scene.redis.take().unwrap();
                drop(server);
                pause(rng, 200..=800).await;
                scene.redis = Some((port, tickguard_tests::RedisServer::start(port).await));
            }
            Self::PauseRedis => scene.pause_redis(2_000).await,
            Self::SlowRedis | Self::BlackholeRedis => {
                let proxy = scene.redis_proxy.clone().unwrap();
                proxy.set(if self == Self::SlowRedis {
                    Traffic::Delay {
                        min_ms: 1_200,
                        max_ms: 1_200,
                    }
                } else {
                    Traffic::Blackhole
                });
                pause(rng, 1_000..=2_500).await;
                proxy.set(Traffic::Pass);
            }
        }
    }
}

async fn wait_ready(files: &[PathBuf]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !files.iter().all(|f| f.exists()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "workers not ready within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// Applies seeded faults to the three faultable workers for `seconds`: their windows.
async fn drive_faults(scene: &mut Scene, seconds: u64, rng: &mut fastrand::Rng) -> Vec<Window> {
    let kinds = Fault::kinds(scene.combo);
    let locked = scene.combo != Combo::SqliteAlone;
    let mut windows = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut round = 0_u32;
    while tokio::time::Instant::now() < until {
        round += 1;
        // Every fourth fault is followed by a quiet spell, so that ticks outside every
        // fault's window are checked under a lock too.
        let quiet = if locked && round.is_multiple_of(4) {
            5_000
        } else {
            0
        };
        tokio::time::sleep(Duration::from_millis(quiet + rng.u64(800..=2_000))).await;
        let fault = kinds[rng.usize(0..kinds.len())];
        let slot = rng.usize(0..scene::FAULTED);
        let start = now_ms();
        fault.apply(scene, slot, rng).await;
        windows.push(Window {
            fault,
            start,
            end: now_ms(),
        });
    }
    windows
}

/// Polls the effects table until every tick of `ticks` has both jobs' effects, or
/// [`QUIET_END`] passes.
async fn await_quiet_end(scene: &Scene, ticks: Ticks) {
    let deadline = tokio::time::Instant::now() + QUIET_END;
    while tokio::time::Instant::now() < deadline {
        if ticks.missing(&scene.effects().await).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Each live worker's `tickguard_executions_total`, per (worker, job).
async fn scrape_metrics(scene: &Scene) -> BTreeMap<(String, String), u64> {
    let mut counted = BTreeMap::new();
    let ready: Vec<PathBuf> = scene.names.iter().map(|n| n.2.clone()).collect();
    wait_ready(&ready).await;
    for (name, port, _) in &scene.names {
        let mut answer = tickguard_tests::http_get(*port, "/metrics");
        for _ in 0..50 {
            if answer.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            answer = tickguard_tests::http_get(*port, "/metrics");
        }
        let text = answer.unwrap_or_else(|e| panic!("worker {name}'s metrics: {e}"));
        for job in JOBS {
            let runs: u64 = text
                .lines()
                .filter(|l| {
                    l.starts_with("tickguard_executions_total{")
                        && l.contains(&format!("job=\"{job}\""))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum();
            counted.insert((name.clone(), job.to_owned()), runs);
        }
    }
    counted
}

/// What one run observed, for the checks.
struct Outcome {
    combo: Combo,
    seed: u64,
    seconds: u64,
    ticks: Ticks,
    windows: Vec<Window>,
    effects: Vec<Effect>,
    /// What the store recorded of each (job, tick): status and error, for the report.
    executions: BTreeMap<(String, i64), (String, String)>,
    counted: BTreeMap<(String, String), u64>,
    scraped: i64,
}

async fn chaos(combo: Combo) {
    let seconds = env_u64("TICKGUARD_CHAOS_SECONDS").unwrap_or(90);
    let seed = env_u64("TICKGUARD_CHAOS_SEED").unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut scene = Scene::new(combo).await;
    scene.start_workers().await;
    // Ticks from here on are checked.
    let first = (now_ms() / 1000 + 2) * 1000;
    let windows = drive_faults(&mut scene, seconds, &mut rng).await;
    // The first tick due after the last fault is the last one checked: the quiet end.
    let ticks = Ticks {
        first,
        last: (now_ms() / 1000 + 1) * 1000,
    };
    await_quiet_end(&scene, ticks).await;
    let scraped = now_ms();
    let counted = scrape_metrics(&scene).await;
    for worker in &scene.workers {
        worker.signal("KILL");
    }
    let effects = scene.effects().await;
    let executions = scene.executions().await;
    let outcome = Outcome {
        combo,
        seed,
        seconds,
        ticks,
        windows,
        effects,
        executions,
        counted,
        scraped,
    };
    outcome.check();
    scene.clean_up().await;
}

impl Outcome {
    fn report(&self, problem: &str) -> String {
        let (combo, seed) = (self.combo, self.seed);
        format!("{combo:?}, seed {seed} (TICKGUARD_CHAOS_SEED={seed} replays it): {problem}")
    }

    fn check(&self) {
        let kinds = Fault::kinds(self.combo);
        let figures = self.ticks.figures(&self.effects, &self.windows, &kinds);
        let skewed = match self.effects.iter().filter(|e| e.4 == scene::SKEWED).count() {
            0 => String::new(),
            n => format!(" ({n} by the skewed worker)"),
        };
        eprintln!(
            "chaos {:?}: seed {}, {} s, ticks {}..={}, {} effects{skewed}\n{figures}",
            self.combo,
            self.seed,
            self.seconds,
            self.ticks.first,
            self.ticks.last,
            self.effects.len()
        );
        self.no_tick_twice();
        let missing = self.ticks.missing(&self.effects);
        assert!(
            missing.is_empty(),
            "{}",
            self.report(&format!(
                "{} ticks without their effect ({QUIET_END:?} after the last fault):\n{}\n\
                 what the store recorded of them: {:?}",
                missing.len(),
                self.ticks.describe_missing(&missing, &self.windows),
                missing
                    .iter()
                    .map(|(job, tick)| self.executions.get(&((*job).to_owned(), *tick)))
                    .collect::<Vec<_>>()
            ))
        );
        self.fences_and_overlap();
        self.metrics_cover_effects();
        // At least 20 faults in the short mode's 90 s, and as many per minute in other runs.
        let wanted = usize::try_from(self.seconds * 2 / 9).unwrap_or(usize::MAX);
        let applied = self.windows.len();
        assert!(
            applied >= wanted,
            "only {applied} faults in {} s",
            self.seconds
        );
        eprintln!(
            "chaos {:?}: none twice, none missing, fences increasing, no overlap, counted \
             executions cover the effects",
            self.combo
        );
    }

    fn no_tick_twice(&self) {
        let mut by_tick: BTreeMap<(&str, i64), Vec<&Effect>> = BTreeMap::new();
        for e in &self.effects {
            by_tick.entry((&e.1, e.2)).or_default().push(e);
        }
        let twice: Vec<_> = by_tick.iter().filter(|(_, v)| v.len() > 1).collect();
        assert!(
            twice.is_empty(),
            "{}",
            self.report(&format!("ticks with two effects: {twice:?}"))
        );
    }

    /// Fences strictly increase in commit order, and runs of one job never overlapped: for
    /// `tx`, whose effects are fenced at commit. (A stale `once` run may still write its
    /// effect after a newer run, by design: its idempotency key is what makes it harmless.)
    fn fences_and_overlap(&self) {
        let mine: Vec<&Effect> = self.effects.iter().filter(|e| e.1 == "tx").collect();
        for pair in mine.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!(
                a.3 < b.3,
                "{}",
                self.report(&format!(
                    "fence went from {} to {}: {a:?} then {b:?}",
                    a.3, b.3
                ))
            );
            assert!(
                b.5 >= a.6,
                "{}",
                self.report(&format!("overlapping runs of `tx`: {a:?} and {b:?}"))
            );
        }
    }

    /// Every effect a live worker wrote (and finished well before the scrape) is counted
    /// among its executions.
    fn metrics_cover_effects(&self) {
        for ((name, job), runs) in &self.counted {
            let written = self
                .effects
                .iter()
                .filter(|e| e.4 == *name && e.1 == *job && e.6 < self.scraped - 2_000)
                .count() as u64;
            assert!(
                written <= *runs,
                "{}",
                self.report(&format!(
                    "worker {name} wrote {written} `{job}` effects but counted {runs} executions"
                ))
            );
        }
    }
}

/// The combinations `TICKGUARD_CHAOS_COMBOS` names (comma-separated, e.g. `SqliteAlone`), or
/// all three.
fn selected_combos() -> Vec<Combo> {
    let all = [
        Combo::RedisPostgres,
        Combo::PostgresLockSqlite,
        Combo::SqliteAlone,
    ];
    let Ok(names) = std::env::var("TICKGUARD_CHAOS_COMBOS") else {
        return all.to_vec();
    };
    let chosen: Vec<Combo> = all
        .into_iter()
        .filter(|c| names.split(',').any(|n| n.trim() == format!("{c:?}")))
        .collect();
    assert!(
        !chosen.is_empty(),
        "TICKGUARD_CHAOS_COMBOS={names} names none of {all:?}"
    );
    chosen
}

/// The combinations run at once, each on a runtime of its own in a thread of its own (as
/// separate tests, only as many would run at a time as the machine has cores). Each failure
/// is printed in full as it happens; this test fails naming them all.
#[test]
fn chaos_in_every_backend_combination() {
    let failed: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = selected_combos()
            .into_iter()
            .map(|combo| {
                let run = std::thread::Builder::new()
                    .name(format!("chaos {combo:?}"))
                    .spawn_scoped(s, move || {
                        tokio::runtime::Builder::new_multi_thread()
                            .worker_threads(2)
                            .enable_all()
                            .build()
                            .unwrap()
                            .block_on(chaos(combo));
                    })
                    .unwrap();
                (combo, run)
            })
            .collect();
        runs.into_iter()
            .filter_map(|(combo, run)| run.join().err().map(|_| format!("{combo:?}")))
            .collect()
    });
    assert!(
        failed.is_empty(),
        "chaos failed in {failed:?} (each failure is printed above)"
    );
}

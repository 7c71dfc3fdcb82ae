//! What the control task costs and how fast it is: a scheduler with 10,000 idle jobs (cron
//! once a year) on PostgreSQL, polling only and polling with LISTEN/NOTIFY, side by side in
//! one run.
//!
//! ```text
//! cargo bench -p tickguard --features postgres --bench control             # 10,000 jobs, 60 samples
//! cargo bench -p tickguard --features postgres --bench control -- 1000 100 # 1,000 jobs, 100 samples
//! ```
//!
//! For each configuration, on a schema of its own:
//!
//! - **idle CPU**: the process's user + system time (`/proc/self/stat`) over 10 s in which
//!   nothing changes, once the start is over (a whole second with at most one clock tick of
//!   CPU): the scheduler's 10,000 job loops asleep and its control task looking at the
//!   control version;
//! - **trigger to start**: from `trigger(job)` on another store handle (as an operator's
//!   command would) to the job's body starting, for random jobs, each request a random
//!   0-1000 ms after the previous run started (so requests do not fall in step with the
//!   polls): p50, p99 and the worst.
//!
//! Needs PostgreSQL at `TICKGUARD_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tickguard::{
    Job, JobContext, Schedule, Scheduler,
    sqlx::{self, AssertSqlSafe},
    store::{ExecutionStore, PostgresStore},
};
use tokio::{
    sync::{mpsc, oneshot},
    time::{Instant, sleep, timeout},
};

/// The longest the start may take before the idle CPU is measured anyway.
const SETTLE: Duration = Duration::from_secs(120);

/// What one configuration measured.
struct Figures {
    /// CPU time used while idle, and over how long.
    idle_cpu: (Duration, Duration),
    /// Trigger-to-start latencies, sorted.
    latencies: Vec<Duration>,
}

impl Figures {
    fn quantile(&self, q: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies[i]
    }
}

/// The process's user + system CPU time so far, from `/proc/self/stat`.
fn cpu_time(ticks_per_second: f64) -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command name (which may hold spaces) in parentheses: state is
    // field 3, utime 14 and stime 15.
    let after = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / ticks_per_second)
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 if it cannot say).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn measure(url: &str, listen: bool, jobs: usize, samples: usize) -> Figures {
    let schema = format!(
        "tg_bench_control_{}_{}",
        std::process::id(),
        if listen { "listen" } else { "poll" }
    );
    let store = PostgresStore::connect_with_schema(url, &schema)
        .await
        .expect("PostgreSQL (set TICKGUARD_TEST_POSTGRES)");
    let (started, mut starts) = mpsc::unbounded_channel::<(String, Instant)>();
    let mut builder = Scheduler::builder()
        .discover(false)
        .store(store.clone())
        .control_listen(listen);
    let yearly = Schedule::cron("0 0 0 1 1 *").unwrap();
    for i in 0..jobs {
        let started = started.clone();
        builder = builder.job(Job::new(
            format!("idle_{i}"),
            yearly.clone(),
            move |ctx: JobContext| {
                let _ = started.send((ctx.job().to_owned(), Instant::now()));
                async { Ok(()) }
            },
        ));
    }
    let scheduler = builder.build().await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(scheduler.run_until(async {
        let _ = stopped.await;
    }));
    // Starting 10,000 job loops goes on using CPU for a while after `run_until` (each
    // loop computes its next fire times; 20-40 s in all on a busy two-core machine): idle
    // is measured once a whole second passed with at most one clock tick of CPU.
    let hz = clock_ticks();
    let began = Instant::now();
    loop {
        let before = cpu_time(hz);
        sleep(Duration::from_secs(1)).await;
        let used = cpu_time(hz) - before;
        if used <= Duration::from_secs_f64(1.0 / hz) || began.elapsed() > SETTLE {
            break;
        }
    }
    let settled = began.elapsed();
    let (cpu0, t0) = (cpu_time(hz), Instant::now());
    sleep(Duration::from_secs(10)).await;
    let idle_cpu = (cpu_time(hz) - cpu0, t0.elapsed());
    println!(
        "{}: started in {:.0} s, then {} ms of CPU in {:.0} s",
        if listen {
            "polling + LISTEN"
        } else {
            "polling only"
        },
        settled.as_secs_f64(),
        idle_cpu.0.as_millis(),
        idle_cpu.1.as_secs_f64()
    );

    let operator = PostgresStore::connect_with_schema(url, &schema)
        .await
        .unwrap();
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        // Anywhere in the poll interval and beyond: requests do not fall in step with the
        // polls (a request right after a run, which started right after a poll, would wait
        // almost a whole interval each time).
        sleep(Duration::from_millis(fastrand::u64(0..1_000))).await;
        let job = format!("idle_{}", fastrand::usize(..jobs));
        let asked = Instant::now();
        operator.trigger(&job, "bench").await.unwrap();
        let at = timeout(Duration::from_secs(10), async {
            loop {
                let (name, at) = starts.recv().await.expect("the scheduler runs");
                if name == job {
                    return at;
                }
            }
        })
        .await
        .expect("the triggered job started within 10 s");
        latencies.push(at - asked);
    }
    latencies.sort();
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .execute(operator.pool())
        .await
        .unwrap();
    Figures {
        idle_cpu,
        latencies,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let jobs = args.first().copied().unwrap_or(10_000);
    let samples = args.get(1).copied().unwrap_or(60);
    let url = std::env::var("TICKGUARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    println!("{jobs} idle jobs on PostgreSQL, {samples} triggers per configuration");
    let poll = measure(&url, false, jobs, samples).await;
    let listen = measure(&url, true, jobs, samples).await;
    println!();
    println!(
        "| {:<24} | {:>14} | {:>18} | {:>16} |",
        "", "polling only", "polling + LISTEN", "listen / poll"
    );
    println!("|{:-<26}|{:-<16}|{:-<20}|{:-<18}|", "", "", "", "");
    let ratio = |a: f64, b: f64| {
        if a > 0.0 {
            format!("{:.3}", b / a)
        } else {
            "-".to_owned()
        }
    };
    // The kernel counts CPU time in clock ticks (10 ms at 100 Hz): over 10 s, a share
    // of a core below 0.1% reads as 0.
    let idle = |(used, over): (Duration, Duration)| {
        format!("{} ms/{} s", used.as_millis(), over.as_secs_f64().round())
    };
    println!(
        "| {:<24} | {:>14} | {:>18} | {:>16} |",
        "idle CPU",
        idle(poll.idle_cpu),
        idle(listen.idle_cpu),
        ratio(
            poll.idle_cpu.0.as_secs_f64(),
            listen.idle_cpu.0.as_secs_f64()
        )
    );
    for (what, q) in [
        ("trigger to start, p50", 0.5),
        ("trigger to start, p99", 0.99),
    ] {
        let (a, b) = (poll.quantile(q), listen.quantile(q));
        println!(
            "| {:<24} | {:>14} | {:>18} | {:>16} |",
            what,
            ms(a),
            ms(b),
            ratio(a.as_secs_f64(), b.as_secs_f64())
        );
    }
    let (a, b) = (poll.quantile(1.0), listen.quantile(1.0));
    println!(
        "| {:<24} | {:>14} | {:>18} | {:>16} |",
        "trigger to start, max",
        ms(a),
        ms(b),
        ratio(a.as_secs_f64(), b.as_secs_f64())
    );
}

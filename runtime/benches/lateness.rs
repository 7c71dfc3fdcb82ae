//! How late jobs start, against the floor of bare tokio tasks on the same machine.
//!
//! ```text
//! cargo bench -p tickguard --bench lateness            # 1,000 and 10,000 jobs, 10 s each
//! cargo bench -p tickguard --bench lateness -- 5       # 5 s each
//! ```
//!
//! For N jobs all due every second for the run, it prints fires expected and seen (equal:
//! no missed tick) and the lateness from the scheduled instant to the job's first line,
//! p50/p99/max; then the same for N bare tokio tasks that only sleep until the same instants,
//! the floor any tokio-based scheduler can reach here. Last, the CPU time an idle scheduler
//! holding 10,000 jobs spends while none is due. Ratios within one run are what to compare:
//! the machine is shared and noisy.

#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use tickguard::{Job, JobContext, Schedule, Scheduler};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

struct Figures {
    cpu_us_per_fire: f64,
    expected: usize,
    seen: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

fn figures(mut late_ms: Vec<f64>, expected: usize, cpu: f64) -> Figures {
    late_ms.sort_by(f64::total_cmp);
    Figures {
        cpu_us_per_fire: cpu * 1e6 / late_ms.len().max(1) as f64,
        expected,
        seen: late_ms.len(),
        p50: percentile(&late_ms, 0.50),
        p99: percentile(&late_ms, 0.99),
        max: late_ms.last().copied().unwrap_or(f64::NAN),
    }
}

fn ms(late: chrono::TimeDelta) -> f64 {
    late.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

/// Seconds the scheduler runs before the measured window: long enough for the in-memory
/// store to hold its steady-state number of records per job, so the window measures a
/// scheduler that has been up for a while, not one growing its tables.
const WARM_UP: i64 = tickguard::store::MEMORY_STORE_RETAINED as i64 + 2;

/// The `seconds` ticks of the measured window, starting `lead` seconds from now.
fn window(seconds: u32, lead: i64) -> (DateTime<Utc>, DateTime<Utc>) {
    let now = Utc::now();
    let first = DateTime::from_timestamp(now.timestamp() + lead, 0).unwrap_or(now);
    let last = first + chrono::Duration::seconds(i64::from(seconds) - 1);
    (first, last)
}

async fn scheduler(jobs: usize, seconds: u32) -> Figures {
    let samples = Arc::new(Mutex::new(Vec::with_capacity(jobs * seconds as usize)));
    let (first, last) = window(seconds, WARM_UP);
    let mut builder = Scheduler::builder().discover(false);
    for i in 0..jobs {
        let samples = samples.clone();
        builder = builder.job(Job::new(
            format!("job-{i}"),
            Schedule::every(Duration::from_secs(1)).unwrap(),
            move |ctx: JobContext| {
                let late = Utc::now() - ctx.scheduled_at();
                let tick = ctx.scheduled_at();
                if tick >= first && tick <= last {
                    samples.lock().unwrap().push(ms(late));
                }
                async { Ok(()) }
            },
        ));
    }
    let s = builder.build().await.unwrap();
    // Dropped after the measurement: freeing every execution record is not firing.
    let _store = s.store();
    let cpu_used = Arc::new(Mutex::new(0.0));
    let cpu_result = cpu_used.clone();
    let stop = (last + chrono::Duration::milliseconds(900) - Utc::now())
        .to_std()
        .unwrap_or_default();
    let measure = async move {
        let wait = (first - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        let cpu = cpu_seconds();
        tokio::time::sleep(stop.saturating_sub(wait)).await;
        *cpu_used.lock().unwrap() = cpu_seconds() - cpu;
    };
    s.run_until(measure).await.unwrap();
    let cpu = *cpu_result.lock().unwrap();
    let late = std::mem::take(&mut *samples.lock().unwrap());
    figures(late, jobs * seconds as usize, cpu)
}

async fn bare_tasks(jobs: usize, seconds: u32) -> Figures {
    let samples = Arc::new(Mutex::new(Vec::with_capacity(jobs * seconds as usize)));
    let (first, last) = window(seconds, 2);
    let cpu = cpu_seconds();
    let mut tasks = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        let samples = samples.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = first;
            while tick <= last {
                let wait = (tick - Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
                let late = Utc::now() - tick;
                samples.lock().unwrap().push(ms(late));
                tick += chrono::Duration::seconds(1);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let cpu = cpu_seconds() - cpu;
    let late = std::mem::take(&mut *samples.lock().unwrap());
    figures(late, jobs * seconds as usize, cpu)
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (fields 14 and 15 of /proc/self/stat).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(f64::NAN);
    ticks / 100.0
}

async fn idle(jobs: usize, seconds: u64) -> f64 {
    let mut builder = Scheduler::builder().discover(false);
    for i in 0..jobs {
        builder = builder.job(Job::new(
            format!("idle-{i}"),
            // Next fire far away: 1 January.
            Schedule::cron("0 0 0 1 1 *").unwrap(),
            |_ctx: JobContext| async { Ok(()) },
        ));
    }
    let s = builder.build().await.unwrap();
    let measure = async move {
        // Let every job reach its sleep first.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = cpu_seconds();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        cpu_seconds() - before
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let run = tokio::spawn(s.run_until(async move {
        let _ = rx.await;
    }));
    let used = measure.await;
    let _ = tx.send(());
    run.await.unwrap().unwrap();
    used / seconds as f64 * 100.0
}

fn print(label: &str, f: &Figures) {
    println!(
        "  {label:<20} fires expected {:>6}  seen {:>6}  lateness p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  cpu {:>5.1} us/fire",
        f.expected, f.seen, f.p50, f.p99, f.max, f.cpu_us_per_fire
    );
}

fn main() {
    let seconds: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    // `profile`: only the scheduler with 10,000 jobs, for a profiler.
    let profile = std::env::args().any(|a| a == "profile");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "tickguard lateness bench: jobs due every second, measured for {seconds} s after a \
         {WARM_UP} s warm-up, embedded defaults"
    );
    rt.block_on(async {
        if profile {
            print("tickguard scheduler", &scheduler(10_000, seconds).await);
            return;
        }
        for jobs in [1_000, 10_000] {
            println!("{jobs} jobs:");
            let s = scheduler(jobs, seconds).await;
            print("tickguard scheduler", &s);
            let b = bare_tasks(jobs, seconds).await;
            print("bare tokio tasks", &b);
            println!(
                "  ratio p99 scheduler / floor: {:.2}x   missed fires: {}",
                s.p99 / b.p99,
                s.expected - s.seen
            );
        }
        let cpu = idle(10_000, 10).await;
        println!("idle: 10000 jobs, none due for 10 s: {cpu:.2}% of one core");
    });
}

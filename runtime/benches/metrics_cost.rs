//! What metrics cost per execution: the calls one successful run under a lock makes (seven,
//! through the `metrics` facade), without a recorder and with the Prometheus recorder that
//! `SchedulerBuilder::prometheus` installs.
//!
//! ```text
//! cargo bench -p tickguard --features prometheus --bench metrics_cost
//! ```
//!
//! Histogram samples are drained by the recorder's upkeep (every 5 s in a running process);
//! here it runs between batches, outside the timed part. Scrapes (rendering) are not per
//! execution and are not counted.

#![allow(clippy::print_stdout, missing_docs)]

use std::{hint::black_box, time::Instant};

use tickguard::__private::bench_execution_metrics;

const BATCH: u32 = 100_000;
const BATCHES: u32 = 20;

/// Nanoseconds per execution over `BATCHES` batches, `between` run after each batch.
fn per_execution(job: &str, mut between: impl FnMut()) -> f64 {
    let mut record = bench_execution_metrics(job);
    let mut timed = 0.0;
    for _ in 0..BATCHES {
        let start = Instant::now();
        for i in 0..BATCH {
            record(black_box(f64::from(i % 1000) / 1000.0));
        }
        timed += start.elapsed().as_secs_f64();
        between();
    }
    timed * 1e9 / f64::from(BATCH * BATCHES)
}

fn main() {
    println!(
        "tickguard metrics cost: {} executions, each one successful run under a lock",
        BATCH * BATCHES
    );
    // Warm-up, then without a recorder: the facade's no-op handles.
    per_execution("warm-up", || {});
    let bare = per_execution("bare", || {});
    println!("  no recorder:         {bare:>7.1} ns per execution");

    let recorder = tickguard::metrics::prometheus_builder().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("no recorder installed yet");
    let prometheus = per_execution("prometheus", || handle.run_upkeep());
    println!("  prometheus recorder: {prometheus:>7.1} ns per execution");
    println!(
        "  metrics cost: {:.2} us per execution (target: under 2 us)",
        (prometheus - bare).max(0.0) / 1000.0
    );
    // The exposition holds what was recorded.
    let text = handle.render();
    assert!(
        text.contains("tickguard_executions_total{job=\"prometheus\",outcome=\"success\"} 2000000")
    );
}

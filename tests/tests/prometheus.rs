//! The metrics as Prometheus sees them: the scheduler's own `/metrics` endpoint
//! (`SchedulerBuilder::prometheus`), checked by `promtool check metrics`, scraped by a real
//! Prometheus server that also loads `docs/observability/alerts.yml`, and queried through
//! its HTTP API with the queries an on-call engineer asks first (success rate, p95 duration
//! by job, recent failures).
//!
//! Needs `prometheus` and `promtool` on the PATH (Debian's `prometheus` package;
//! `bash scripts/check-observability` installs it). Without them the test fails: it never
//! skips. One test per process: the exporter is the process's global metrics recorder.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    io::Write,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use tickguard::{
    Error, Job, JobContext, JobError, LockPolicy, RetryPolicy, Schedule, Scheduler,
    metrics as names,
};
use tickguard_tests::{Worker, free_port, http_get};

fn get(port: u16, path: &str) -> String {
    http_get(port, path).unwrap_or_else(|e| panic!("{e}"))
}

/// Percent-encodes a query for a URL.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query: `{job: value}` of the result vector.
fn query(port: u16, promql: &str) -> std::collections::BTreeMap<String, f64> {
    let body = get(port, &format!("/api/v1/query?query={}", encode(promql)));
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "success", "{promql}: {body}");
    json["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let job = r["metric"]["job"].as_str().unwrap_or_default().to_owned();
            let value: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
            (job, value)
        })
        .collect()
}

fn every_second() -> Schedule {
    Schedule::every(Duration::from_secs(1)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_metrics_and_answers_the_on_call_queries() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // A report that succeeds in 10 to 60 ms under a lock, and a sync whose first attempt
    // always fails and whose retry fails every other run.
    let report = Job::new("report", every_second(), |_ctx: JobContext| async {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(10..60))).await;
        Ok(())
    })
    .lock(LockPolicy::new(Duration::from_secs(10)));
    let runs = Arc::new(AtomicU32::new(0));
    let sync = Job::new("sync", every_second(), move |ctx: JobContext| {
        let runs = runs.clone();
        async move {
            if ctx.attempt() == 1 {
                runs.fetch_add(1, Ordering::SeqCst);
                return Err(JobError::transient("inventory API timed out"));
            }
            if runs.load(Ordering::SeqCst).is_multiple_of(2) {
                return Err(JobError::permanent("inventory API refused the batch"));
            }
            Ok(())
        }
    })
    .retry(RetryPolicy::attempts(2).backoff(Duration::from_millis(50)));
    let scheduler = Scheduler::builder()
        .discover(false)
        .prometheus(addr.clone())
        .job(report)
        .job(sync)
        .build()
        .await
        .unwrap();

    // Startup errors: an address that is not host:port, a port that is taken.
    for (bad, expected) in [
        ("localhost".to_owned(), "not an address to listen on"),
        (addr.clone(), "cannot serve metrics on"),
    ] {
        let e = Scheduler::builder()
            .discover(false)
            .prometheus(bad)
            .build()
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&e, Error::Config(m) if m.contains(expected)),
            "expected `{expected}`: {e}"
        );
    }

    let stop = Arc::new(tokio::sync::Notify::new());
    let s = stop.clone();
    let running = tokio::spawn(scheduler.run_until(async move { s.notified().await }));
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Every family, described and typed, in an exposition promtool accepts without a word.
    let exposition = get(port, "/metrics");
    for (family, kind) in [
        (names::EXECUTIONS_TOTAL, "counter"),
        (names::EXECUTION_DURATION, "histogram"),
        (names::SKIPS_TOTAL, "counter"),
        (names::TICKS_LOST_TOTAL, "counter"),
        (names::RETRIES_TOTAL, "counter"),
        (names::LOCK_ACQUIRE_DURATION, "histogram"),
        (names::LOCK_HELD_DURATION, "histogram"),
        (names::LOCK_LOST_TOTAL, "counter"),
        (names::FENCE_REJECTIONS_TOTAL, "counter"),
        (names::FIRE_LATENESS, "histogram"),
        (names::RUNNING, "gauge"),
        (names::LAST_SUCCESS, "gauge"),
        (names::NEXT_FIRE, "gauge"),
        (names::PERIOD, "gauge"),
    ] {
        assert!(
            exposition.contains(&format!("# TYPE {family} {kind}\n")),
            "{family} is not a {kind}:\n{exposition}"
        );
        assert!(
            exposition.contains(&format!("# HELP {family} ")),
            "{family} has no description"
        );
    }
    assert!(exposition.contains(
        "tickguard_execution_duration_seconds_bucket{job=\"report\",outcome=\"success\",le=\"0.1\"}"
    ));
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}); run `bash scripts/check-observability` to install it"
            )
        });
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        checked.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}"
    );

    // A real Prometheus scrapes the scheduler every second and evaluates the alert rules.
    let dir = std::env::temp_dir().join(tickguard_tests::unique_name("tg_prometheus"));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/observability/alerts.yml"
    );
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [\"{rules}\"]\n\
             scrape_configs:\n\
             - job_name: tickguard\n  honor_labels: true\n  \
               static_configs: [{{targets: [\"{addr}\"]}}]\n"
        ),
    )
    .unwrap();
    let web = free_port();
    let _prometheus = Worker(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start prometheus ({e}); run `bash scripts/check-observability` to \
                     install it"
                )
            }),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while http_get(web, "/-/ready").is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "prometheus did not get ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Enough scrapes for rates over the window.
    tokio::time::sleep(Duration::from_secs(12)).await;

    // Success rate, p95 duration by job, recent failures.
    let success_rate = query(
        web,
        "sum by (job) (rate(tickguard_executions_total{outcome=\"success\"}[5m])) \
         / sum by (job) (rate(tickguard_executions_total[5m]))",
    );
    assert_eq!(success_rate.get("report"), Some(&1.0), "{success_rate:?}");
    let sync_rate = success_rate["sync"];
    assert!(
        (0.2..=0.8).contains(&sync_rate),
        "sync succeeds every other run: {success_rate:?}"
    );
    let p95 = query(
        web,
        "histogram_quantile(0.95, sum by (job, le) \
         (rate(tickguard_execution_duration_seconds_bucket[5m])))",
    );
    assert!(
        (0.01..=0.1).contains(&p95["report"]),
        "report runs 10 to 60 ms: {p95:?}"
    );
    let failures = query(
        web,
        "sum by (job) (increase(tickguard_executions_total{outcome=~\"failure|timeout\"}[5m]))",
    );
    assert_eq!(failures.get("report"), Some(&0.0), "{failures:?}");
    assert!(failures["sync"] >= 2.0, "{failures:?}");
    let retries = query(web, "sum by (job) (increase(tickguard_retries_total[5m]))");
    assert!(retries["sync"] >= 4.0, "{retries:?}");
    // The alert rules: a failed job fires, a healthy one does not.
    let alerts = query(web, "ALERTS{alertname=\"TickguardJobFailed\"}");
    assert!(alerts.contains_key("sync"), "{alerts:?}");
    assert!(!alerts.contains_key("report"), "{alerts:?}");

    stop.notify_one();
    running.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

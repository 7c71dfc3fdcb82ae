//! The `external_api_breaker` example, two replicas of it run for real on one PostgreSQL
//! store (a scratch schema) and one fake price API (a state file in their shared directory):
//! the API goes down; the failures of both replicas together open the breaker (neither
//! replica's own runs would have), both skip their ticks as `circuit_open` and serve their
//! cached prices; the API comes back, the probe closes the breaker, both refresh again.
//!
//! ```text
//! cargo test -p tickguard-examples --test external_api_breaker
//! ```

mod support;

use std::time::Duration;

use support::{Example, Line, drop_scratch};
use tickguard_tests::{free_port, http_get, postgres_url, scratch_schema};

const NAME: &str = "external_api_breaker";

/// The value of the metric series `name` whose labels include `labels` (`key="value"`).
fn metric(port: u16, name: &str, labels: &[&str]) -> Option<f64> {
    let body = http_get(port, "/metrics").unwrap_or_else(|e| panic!("/metrics: {e}"));
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn skipped(line: &Line) -> bool {
    line.message()
        .starts_with("circuit breaker open: ticks skipped")
}

#[test]
fn failures_on_two_replicas_open_the_shared_breaker_and_a_probe_closes_it() {
    let runtime = support::runtime();
    let (schema, dir, store) = runtime.block_on(scratch_schema("tg_example_breaker", &[]));
    let api = dir.join("price-api.state");
    std::fs::write(&api, "up").expect("the API is up");
    let ports = [free_port(), free_port()];
    let url = postgres_url();
    let start = |port: u16| {
        let metrics = format!("127.0.0.1:{port}");
        let args = ["60", "--postgres", &url, "--namespace", &schema];
        let replica = Example::start(
            NAME,
            &format!("replica on :{port}"),
            &dir,
            &[&args[..], &["--metrics", &metrics]].concat(),
            &[],
        );
        replica.wait_for("refresh", Duration::from_secs(10), |l| {
            l.message() == "prices refreshed"
        });
        replica
    };
    // One after the other: their fixed-delay runs then come at different times of the second.
    let replicas = ports.map(start);

    // The API goes down: both replicas fail, serve their cache, and the breaker opens.
    std::fs::write(&api, "down").expect("the API goes down");
    for replica in &replicas {
        let skip = replica.wait_for("skip", Duration::from_secs(10), skipped);
        assert_eq!(skip.field("breaker").as_deref(), Some("price_api"));
        let failed_before = replica
            .lines(|l| {
                l.message() == "execution finished"
                    && l.field("status").as_deref() == Some("FAILED")
                    && l.at < skip.at
            })
            .len();
        // Two failures in the last 4 runs open it. Each replica failed once, next to its
        // successes: its own runs alone would have kept the breaker closed; the other
        // replica's failure, read from the store, opened it.
        assert_eq!(
            failed_before, 1,
            "each replica's own failures must not open the breaker alone"
        );
        replica.wait_for("fallback", Duration::from_secs(1), |l| {
            l.message() == "price API failed; serving the cached prices"
        });
    }
    for port in ports {
        let job = r#"job="refresh_prices""#;
        let skips = metric(
            port,
            "tickguard_skips_total",
            &[job, r#"reason="circuit_open""#],
        );
        assert!(
            skips >= Some(1.0),
            "circuit_open skips on :{port}: {skips:?}"
        );
        let state = metric(port, "tickguard_circuit_state", &[r#"breaker="price_api""#]);
        assert_eq!(state, Some(2.0), "open on :{port}");
    }

    // The API is back: once `open_for` (5 s) is over, a probe runs and closes the breaker.
    std::fs::write(&api, "up").expect("the API is back");
    let mut probes = 0;
    for replica in &replicas {
        let opened = replica.wait_for("skip", Duration::ZERO, skipped);
        let refreshed =
            replica.wait_for("refresh after the outage", Duration::from_secs(10), |l| {
                l.message() == "prices refreshed" && l.at > opened.at
            });
        let waited = support::seconds(&opened, &refreshed);
        assert!(
            (3.5..8.0).contains(&waited),
            "the breaker stays open for 5 s: ran again {waited:.1} s after the first skip"
        );
        probes += replica
            .lines(|l| l.message() == "circuit breaker half-open: this tick runs as the probe")
            .len();
    }
    assert!(probes >= 1, "a probe ran");
    for port in ports {
        let state = metric(port, "tickguard_circuit_state", &[r#"breaker="price_api""#]);
        assert_eq!(state, Some(0.0), "closed on :{port}");
    }
    drop(replicas);
    runtime.block_on(drop_scratch(&schema, &dir, store.pool()));
}

//! The Prometheus exporter behind [`SchedulerBuilder::prometheus`](crate::SchedulerBuilder::prometheus)
//! (feature `prometheus`).

use std::net::SocketAddr;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

use crate::{Error, metrics as names};

/// Buckets of the run duration and lock hold histograms, in seconds: 5 ms to 4 hours, about
/// 2.5x apart, so that a nightly batch and a sub-second sync both get a useful p95.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0, 3600.0, 7200.0, 14400.0,
];

/// Buckets of the lock round trip histogram, in seconds: 100 µs (Redis on the same host) to
/// 10 s (the backend timeout).
pub const LOCK_ROUND_TRIP_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Buckets of the fire lateness histogram, in seconds: 1 ms to 5 minutes (a tick noticed
/// later than that is a misfire anyway).
pub const LATENESS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// A [`PrometheusBuilder`] with tickguard's histogram buckets, for an application that
/// installs its own exporter (and so does not call
/// [`SchedulerBuilder::prometheus`](crate::SchedulerBuilder::prometheus)): without buckets,
/// the exporter renders histograms as summaries, which cannot be aggregated across
/// instances.
///
/// ```no_run
/// # fn f() -> Result<(), Box<dyn std::error::Error>> {
/// tickguard::metrics::prometheus_builder()
///     .with_http_listener(([0, 0, 0, 0], 9464))
///     .install()?;
/// # Ok(()) }
/// ```
pub fn prometheus_builder() -> PrometheusBuilder {
    [
        (names::EXECUTION_DURATION, DURATION_BUCKETS),
        (names::LOCK_HELD_DURATION, DURATION_BUCKETS),
        (names::LOCK_ACQUIRE_DURATION, LOCK_ROUND_TRIP_BUCKETS),
        (names::FIRE_LATENESS, LATENESS_BUCKETS),
    ]
    .into_iter()
    .fold(PrometheusBuilder::new(), |b, (name, buckets)| {
        b.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
            .expect("the bucket lists are not empty")
    })
}

/// Installs the Prometheus recorder globally and serves `GET /metrics` (any path) on `addr`,
/// on the current tokio runtime. The returned task serves until aborted.
pub(crate) fn serve(addr: &str) -> Result<tokio::task::JoinHandle<()>, Error> {
    let socket: SocketAddr = addr.parse().map_err(|e| {
        Error::Config(format!(
            "prometheus address `{addr}` is not an address to listen on ({e}); expected \
             ip:port, such as 0.0.0.0:9464 or 127.0.0.1:9464"
        ))
    })?;
    let (recorder, exporter) = prometheus_builder()
        .with_http_listener(socket)
        .build()
        .map_err(|e| match e {
            BuildError::FailedToCreateHTTPListener(why) => Error::Config(format!(
                "cannot serve metrics on {socket}: {why}; is another process (or another \
                 scheduler) listening there? pick a free port"
            )),
            other => Error::Config(format!("cannot set up the Prometheus exporter: {other}")),
        })?;
    metrics::set_global_recorder(recorder).map_err(|_| {
        Error::Config(
            "a metrics recorder is already installed in this process: drop .prometheus(..) \
             and let that recorder export tickguard's metrics (for its buckets, see \
             tickguard::metrics::prometheus_builder)"
                .to_owned(),
        )
    })?;
    Ok(tokio::spawn(async move {
        if let Err(e) = exporter.await {
            tracing::error!(error = ?e, "the Prometheus endpoint stopped");
        }
    }))
}

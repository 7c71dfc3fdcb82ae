//! The Prometheus exporter behind [`SchedulerBuilder::prometheus`](crate::SchedulerBuilder::prometheus)
//! (feature `prometheus`).

use std::net::SocketAddr;

use metrics_exporter_prometheus::BuildError;

use crate::{error::Error, metrics::prometheus_builder};

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

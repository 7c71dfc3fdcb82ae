//! The Prometheus exporter behind [`SchedulerBuilder::prometheus`](crate::SchedulerBuilder::prometheus)
//! (feature `prometheus`).

use std::net::{SocketAddr, ToSocketAddrs};

use metrics_exporter_prometheus::BuildError;

use crate::{error::Error, metrics::prometheus_builder};

/// [`serve`]s at `addr`, if there is one.
pub(crate) async fn serve_at(
    addr: Option<&str>,
) -> Result<Option<tokio::task::JoinHandle<()>>, Error> {
    match addr {
        Some(addr) => serve(addr).await.map(Some),
        None => Ok(None),
    }
}

/// Installs the Prometheus recorder globally and serves `GET /metrics` (any path) on `addr`
/// (`ip:port`, `[ipv6]:port` or `host:port`), on the current tokio runtime. A host name is
/// resolved, and the first of its addresses that can be bound is served, IPv4 ones first
/// (see [`ipv4_first`]). The returned task serves until aborted.
pub(crate) async fn serve(addr: &str) -> Result<tokio::task::JoinHandle<()>, Error> {
    let owned = addr.to_owned();
    let resolved = tokio::task::spawn_blocking(move || resolve(&owned))
        .await
        .map_err(|e| Error::Config(format!("cannot resolve `{addr}`: {e}")))??;
    let mut refused = Vec::new();
    let mut served = None;
    for socket in resolved {
        match prometheus_builder().with_http_listener(socket).build() {
            Ok(built) => {
                served = Some(built);
                break;
            }
            Err(BuildError::FailedToCreateHTTPListener(why)) => {
                refused.push(format!("{socket}: {why}"));
            }
            Err(other) => {
                return Err(Error::Config(format!(
                    "cannot set up the Prometheus exporter: {other}"
                )));
            }
        }
    }
    let Some((recorder, exporter)) = served else {
        return Err(Error::Config(format!(
            "cannot serve metrics on {addr} ({}); is another process (or another scheduler) \
             listening there? pick a free port",
            refused.join("; ")
        )));
    };
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

/// The addresses of `addr` (`ip:port`, `[ipv6]:port` or `host:port`), a host name resolved
/// by the system's resolver; an error that says what was expected for anything else.
fn resolve(addr: &str) -> Result<Vec<SocketAddr>, Error> {
    let expected = "expected ip:port or host:port, such as 0.0.0.0:9464, 127.0.0.1:9464 or \
                    localhost:9464";
    if let Ok(socket) = addr.parse::<SocketAddr>() {
        return Ok(vec![socket]);
    }
    let resolved: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| {
            Error::Config(format!(
                "prometheus address `{addr}` is not an address to listen on ({e}); {expected}"
            ))
        })?
        .collect();
    if resolved.is_empty() {
        return Err(Error::Config(format!(
            "prometheus address `{addr}` is not an address to listen on (the host name has \
             no address); {expected}"
        )));
    }
    Ok(ipv4_first(resolved))
}

/// A host name's addresses with the IPv4 ones first, each family in the resolver's order: on
/// a dual-stack host `localhost` resolves to `::1` first, and the scrapers that expect a
/// host-only endpoint mostly ask `127.0.0.1`. An IPv6 address is served only when the name
/// has no IPv4 one that can be bound; name it (`[::1]:9464`) to choose it.
fn ipv4_first(mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    addrs.sort_by_key(SocketAddr::is_ipv6);
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_ips_and_host_names_and_refuses_garbage() {
        assert_eq!(
            resolve("127.0.0.1:9464").ok(),
            Some(vec![SocketAddr::from(([127, 0, 0, 1], 9464))])
        );
        let localhost = resolve("localhost:9464").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            localhost
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 9464),
            "{localhost:?}"
        );
        assert!(!localhost.is_empty());
        assert_eq!(
            resolve("[::1]:9464").ok(),
            Some(vec![SocketAddr::from((
                std::net::Ipv6Addr::LOCALHOST,
                9464
            ))])
        );
        for garbage in ["9464", "localhost", "127.0.0.1:notaport", ""] {
            match resolve(garbage) {
                Err(Error::Config(m)) => assert!(
                    m.contains("is not an address to listen on") && m.contains("host:port"),
                    "{garbage}: {m}"
                ),
                other => panic!("{garbage}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_name_with_both_families_serves_ipv4_first() {
        let v6 = |last: u16| SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, last], 9464));
        let v4 = |last: u8| SocketAddr::from(([127, 0, 0, last], 9464));
        assert_eq!(
            ipv4_first(vec![v6(1), v4(1), v6(2), v4(2)]),
            vec![v4(1), v4(2), v6(1), v6(2)]
        );
        assert_eq!(ipv4_first(vec![v6(1)]), vec![v6(1)]);
        assert_eq!(ipv4_first(vec![v4(1), v6(1)]), vec![v4(1), v6(1)]);
    }
}

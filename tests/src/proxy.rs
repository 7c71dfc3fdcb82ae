//! A TCP proxy in the test process, between worker processes and a server (Redis,
//! PostgreSQL), whose traffic a test can delay or hold.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
};

/// What the proxy does with each chunk of traffic, in either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traffic {
    /// Forwards it at once.
    Pass,
    /// Forwards it after a pause drawn from `min_ms..=max_ms`, per chunk.
    Delay {
        /// The shortest pause, in milliseconds.
        min_ms: u64,
        /// The longest pause, in milliseconds.
        max_ms: u64,
    },
    /// Holds it (connections stay open) until the mode changes.
    Blackhole,
}

/// A TCP proxy on `127.0.0.1:port` to an upstream server; connections made while the
/// upstream is down are closed at once.
#[derive(Clone)]
pub struct Proxy {
    port: u16,
    traffic: Arc<Mutex<Traffic>>,
}

impl Proxy {
    /// Listens on a free local port and forwards every connection to `host:port`.
    pub async fn start(host: &str, port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("proxy: cannot listen: {e}"));
        let local = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("proxy: {e}"))
            .port();
        let proxy = Self {
            port: local,
            traffic: Arc::new(Mutex::new(Traffic::Pass)),
        };
        let traffic = proxy.traffic.clone();
        let upstream = (host.to_owned(), port);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect((upstream.0.as_str(), upstream.1)).await
                else {
                    continue;
                };
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(pipe(ri, wo, traffic.clone()));
                tokio::spawn(pipe(ro, wi, traffic.clone()));
            }
        });
        proxy
    }

    /// The local port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Applies `traffic` to every chunk from now on, on every connection.
    pub fn set(&self, traffic: Traffic) {
        *self.traffic.lock().unwrap_or_else(|p| p.into_inner()) = traffic;
    }

    fn get(traffic: &Mutex<Traffic>) -> Traffic {
        *traffic.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, traffic: Arc<Mutex<Traffic>>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        loop {
            match Proxy::get(&traffic) {
                Traffic::Blackhole => tokio::time::sleep(Duration::from_millis(20)).await,
                Traffic::Delay { min_ms, max_ms } => {
                    let pause = fastrand::u64(min_ms..=max_ms.max(min_ms));
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    break;
                }
                Traffic::Pass => break,
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// `url` (`scheme://[user@]host[:port]/..`) with its host and port replaced by
/// `127.0.0.1:local_port`, and the host and port it named (port 5432 when absent): to send a
/// PostgreSQL URL's connections through a [`Proxy`].
pub fn through_local_port(url: &str, local_port: u16) -> (String, String, u16) {
    let (scheme, rest) = url
        .split_once("://")
        .unwrap_or_else(|| panic!("not a URL: {url}"));
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((user, hostport)) => (format!("{user}@"), hostport),
        None => (String::new(), authority),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((host, port)) => (
            host.to_owned(),
            port.parse()
                .unwrap_or_else(|e| panic!("bad port in {url}: {e}")),
        ),
        None => (hostport.to_owned(), 5432),
    };
    let proxied = format!("{scheme}://{user}127.0.0.1:{local_port}{tail}");
    (proxied, host, port)
}

#[cfg(test)]
mod tests {
    use super::through_local_port;

    #[test]
    fn a_url_goes_through_the_local_port() {
        assert_eq!(
            through_local_port("postgres://postgres@127.0.0.1:5432/test", 7000),
            (
                "postgres://postgres@127.0.0.1:7000/test".to_owned(),
                "127.0.0.1".to_owned(),
                5432
            )
        );
        assert_eq!(
            through_local_port("postgres://u:p@db.example/x?sslmode=disable", 7001),
            (
                "postgres://u:p@127.0.0.1:7001/x?sslmode=disable".to_owned(),
                "db.example".to_owned(),
                5432
            )
        );
    }
}

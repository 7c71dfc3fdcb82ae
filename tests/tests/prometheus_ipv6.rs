//! `SchedulerBuilder::prometheus("[::1]:PORT")` serves the metrics on the IPv6 loopback
//! address. Needs a machine with an IPv6 loopback (`::1` in `/proc/net/if_inet6`); without
//! one the test fails, saying so. A process of its own: the Prometheus recorder is installed
//! for the whole process.

use std::{
    net::{Ipv6Addr, SocketAddr},
    time::Duration,
};

use tickguard::{Job, JobContext, Schedule, Scheduler};
use tickguard_tests::http_get_from;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_address_is_served() {
    let interfaces = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    assert!(
        interfaces
            .lines()
            .any(|l| l.starts_with("00000000000000000000000000000001")),
        "this test needs an IPv6 loopback address (::1): /proc/net/if_inet6 has none"
    );
    let port = std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port on [::1]: {e}"));
    let every = Schedule::every(Duration::from_secs(1)).unwrap_or_else(|e| panic!("{e}"));
    let scheduler = Scheduler::builder()
        .discover(false)
        .prometheus(format!("[::1]:{port}"))
        .job(Job::new("served", every, |_ctx: JobContext| async {
            Ok(())
        }))
        .build()
        .await
        .unwrap_or_else(|e| panic!("[::1]:{port} refused: {e}"));
    let at = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    let body = tokio::task::spawn_blocking(move || http_get_from(at, "/metrics"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("no metrics on {at}: {e}"));
    assert!(
        body.contains("tickguard_"),
        "no tickguard metric served:\n{body}"
    );
    drop(scheduler);
}

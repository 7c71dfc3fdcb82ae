//! `SchedulerBuilder::prometheus` takes a host name as well as an IP: `localhost:PORT`
//! serves the metrics on the loopback address, and an address that is neither `ip:port` nor
//! `host:port` is a configuration error at build. One test per process: the Prometheus
//! recorder is installed for the whole process.

use std::time::Duration;

use tickguard::{Error, Job, JobContext, Schedule, Scheduler};
use tickguard_tests::{free_port, http_get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_is_served_and_garbage_is_a_clear_error() {
    for garbage in ["localhost", "9464", "127.0.0.1:notaport", "not an address"] {
        let e = Scheduler::builder()
            .discover(false)
            .prometheus(garbage)
            .build()
            .await
            .err()
            .unwrap_or_else(|| panic!("`{garbage}` accepted"));
        assert!(
            matches!(&e, Error::Config(m) if m.contains("is not an address to listen on")
                && m.contains("host:port")),
            "`{garbage}`: {e}"
        );
    }
    let port = free_port();
    let every = Schedule::every(Duration::from_secs(1)).unwrap_or_else(|e| panic!("{e}"));
    let scheduler = Scheduler::builder()
        .discover(false)
        .prometheus(format!("localhost:{port}"))
        .job(Job::new("served", every, |_ctx: JobContext| async {
            Ok(())
        }))
        .build()
        .await
        .unwrap_or_else(|e| panic!("localhost refused: {e}"));
    let body = tokio::task::spawn_blocking(move || http_get(port, "/metrics"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("no metrics on 127.0.0.1:{port}: {e}"));
    assert!(
        body.contains("tickguard_"),
        "no tickguard metric served:\n{body}"
    );
    drop(scheduler);
}

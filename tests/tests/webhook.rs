//! The alert webhook against local HTTP servers: delivery of a failure report as JSON, retries
//! on errors, and a webhook that is down or never answers, which must not hold the jobs or the
//! scheduler's shutdown.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use tickguard::{Error, Job, JobContext, JobError, Schedule, Scheduler, Webhook};
use tickguard_tests::free_port;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// A request the server received: its head and its body.
#[derive(Clone, Debug)]
struct Received {
    head: String,
    body: String,
}

/// A local webhook: answers 500 to the first `failures` requests, then 200; or never answers.
#[derive(Clone, Default)]
struct Server {
    received: Arc<Mutex<Vec<Received>>>,
    failures: Arc<AtomicU32>,
    hang: bool,
    /// Answers this status to every request, when set.
    always: Option<&'static str>,
}

impl Server {
    async fn start(self) -> (u16, Self) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let server = server.clone();
                tokio::spawn(async move {
                    let mut data = Vec::new();
                    let mut buf = [0u8; 4096];
                    // Read the head, then as much body as Content-Length says.
                    let (head, body) = loop {
                        let n = stream.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        data.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&data).to_string();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let length = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if body.len() >= length {
                                break (head.to_owned(), body.to_owned());
                            }
                        }
                    };
                    server
                        .received
                        .lock()
                        .unwrap()
                        .push(Received { head, body });
                    if server.hang {
                        std::future::pending::<()>().await;
                    }
                    let failing = server
                        .failures
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    let status = match server.always {
                        Some(status) => status,
                        None if failing => "500 Internal Server Error",
                        None => "200 OK",
                    };
                    let _ = stream
                        .write_all(
                            format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                                .as_bytes(),
                        )
                        .await;
                });
            }
        });
        (port, self)
    }
}

fn every_second() -> Schedule {
    Schedule::every(Duration::from_secs(1)).unwrap()
}

/// A tick and when its run started.
type Ran = (DateTime<Utc>, DateTime<Utc>);

/// A job that fails every run, for good.
fn declined() -> Job {
    Job::new("charge", every_second(), |_ctx: JobContext| async {
        Err(JobError::permanent("card declined"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_report_is_posted_as_json_and_retried_until_delivered() {
    let (port, server) = Server {
        failures: Arc::new(AtomicU32::new(2)),
        ..Server::default()
    }
    .start()
    .await;
    let webhook = Webhook::new(&format!("http://127.0.0.1:{port}/hooks/T000/B000"))
        .unwrap()
        .backoff(Duration::from_millis(50));
    let scheduler = Scheduler::builder()
        .discover(false)
        .instance_id("alerting")
        .alert_webhook(webhook)
        .job(declined())
        .build()
        .await
        .unwrap();
    let received = server.received.clone();
    scheduler
        .run_until(async move {
            // The first report: two 500s, then delivered.
            while received.lock().unwrap().len() < 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap();
    let received = server.received.lock().unwrap().clone();
    let first = &received[0];
    assert!(
        first.head.starts_with("POST /hooks/T000/B000 HTTP/1.1"),
        "{}",
        first.head
    );
    assert!(
        first
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{}",
        first.head
    );
    // The same report each time: retried, not lost.
    assert_eq!(received[1].body, first.body);
    assert_eq!(received[2].body, first.body);
    let json: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    let text = json["text"].as_str().unwrap();
    assert!(
        text.contains("`charge` failed") && text.contains("card declined"),
        "{text}"
    );
    assert_eq!(json["job"], "charge");
    assert_eq!(json["outcome"], "failure");
    assert_eq!(json["instance_id"], "alerting");
    assert_eq!(json["attempts"], 1);
    assert_eq!(json["error_chain"][0], "card declined");
    let tick: DateTime<Utc> = json["scheduled_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(tick.timestamp_subsec_nanos(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_is_down_or_never_answers_holds_neither_the_jobs_nor_shutdown() {
    // One webhook where nothing listens, one that takes requests and never answers.
    let down = free_port();
    let (hanging, server) = Server {
        hang: true,
        ..Server::default()
    }
    .start()
    .await;
    let config = |url: String| {
        Webhook::new(&url)
            .unwrap()
            .timeout(Duration::from_millis(300))
            .attempts(2)
            .backoff(Duration::from_millis(100))
    };
    let ticks: Arc<Mutex<Vec<Ran>>> = Arc::default();
    let t = ticks.clone();
    let heartbeat = Job::new("heartbeat", every_second(), move |ctx: JobContext| {
        t.lock().unwrap().push((ctx.scheduled_at(), Utc::now()));
        async { Ok(()) }
    });
    let failures = Arc::new(AtomicU32::new(0));
    let f = failures.clone();
    let charge = Job::new("charge", every_second(), move |_ctx: JobContext| {
        f.fetch_add(1, Ordering::SeqCst);
        async { Err(JobError::permanent("card declined")) }
    });
    let scheduler = Scheduler::builder()
        .discover(false)
        .alert_webhook(config(format!("http://127.0.0.1:{down}/")))
        .alert_webhook(config(format!("http://127.0.0.1:{hanging}/")))
        .job(heartbeat)
        .job(charge)
        .build()
        .await
        .unwrap();
    let stopping = Arc::new(Mutex::new(None));
    let s = stopping.clone();
    scheduler
        .run_until(async move {
            tokio::time::sleep(Duration::from_millis(4_500)).await;
            *s.lock().unwrap() = Some(Instant::now());
        })
        .await
        .unwrap();
    let shutdown = stopping.lock().unwrap().unwrap().elapsed();
    // Every tick of both jobs ran, on time, while the alerts failed.
    let ticks = ticks.lock().unwrap().clone();
    assert!(ticks.len() >= 4, "{ticks:?}");
    for (tick, ran) in &ticks {
        let late = (*ran - *tick).num_milliseconds();
        assert!(late < 200, "tick {tick} ran {late} ms late");
    }
    assert!(failures.load(Ordering::SeqCst) >= 4);
    assert!(
        !server.received.lock().unwrap().is_empty(),
        "the hanging webhook was asked"
    );
    // Shutdown waited at most for the last, bounded deliveries.
    assert!(
        shutdown < Duration::from_secs(3),
        "shutdown took {shutdown:?}"
    );
}

#[test]
fn a_webhook_url_must_be_http_or_https() {
    for bad in [
        "ftp://alerts.example.com/hook",
        "not a url",
        "/relative/path",
    ] {
        let e = Webhook::new(bad).err().unwrap();
        assert!(matches!(e, Error::Config(_)), "{bad}: {e}");
    }
    assert!(Webhook::new("https://hooks.slack.com/services/T000/B000/XXXX").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_refuses_the_report_for_good_is_not_retried() {
    let (port, server) = Server {
        always: Some("404 Not Found"),
        ..Server::default()
    }
    .start()
    .await;
    let webhook = Webhook::new(&format!("http://127.0.0.1:{port}/revoked"))
        .unwrap()
        .backoff(Duration::from_millis(20));
    // Started just after a whole second, the 1.5 s run sees exactly one tick of the job.
    let into_second = Utc::now().timestamp_subsec_millis();
    tokio::time::sleep(Duration::from_millis(u64::from(
        1_050 - into_second.min(1_000),
    )))
    .await;
    let scheduler = Scheduler::builder()
        .discover(false)
        .alert_webhook(webhook)
        .job(declined())
        .build()
        .await
        .unwrap();
    scheduler
        .run_until(tokio::time::sleep(Duration::from_millis(1_500)))
        .await
        .unwrap();
    // One report (the one tick), one request: a 404 does not change on a retry.
    assert_eq!(server.received.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_alerts_queued_for_a_webhook_that_never_answers_is_bounded() {
    // The defaults: 10 s per request, 5 attempts from 1 s. Three reports are queued or in
    // flight when shutdown begins; delivery gets the 10 s flush, not minutes.
    let (port, _server) = Server {
        hang: true,
        ..Server::default()
    }
    .start()
    .await;
    let scheduler = Scheduler::builder()
        .discover(false)
        .alert_webhook(Webhook::new(&format!("http://127.0.0.1:{port}/")).unwrap())
        .job(declined())
        .build()
        .await
        .unwrap();
    let stopping = Arc::new(Mutex::new(None));
    let s = stopping.clone();
    scheduler
        .run_until(async move {
            tokio::time::sleep(Duration::from_millis(3_500)).await;
            *s.lock().unwrap() = Some(Instant::now());
        })
        .await
        .unwrap();
    let shutdown = stopping.lock().unwrap().unwrap().elapsed();
    assert!(
        shutdown < Duration::from_secs(14),
        "shutdown took {shutdown:?}"
    );
}

/// A tick lost for good (its run's predecessor outlasted it) is posted like a failure, with
/// the reason, the count and the latest tick lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_lost_to_an_overlap_is_posted_with_its_reason() {
    let (port, server) = Server::default().start().await;
    let webhook = Webhook::new(&format!("http://127.0.0.1:{port}/lost")).unwrap();
    // Each run takes 1.2 s of a 1 s period: every run overlaps the next tick.
    let slow = Job::new("slow_export", every_second(), |_ctx: JobContext| async {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        Ok(())
    })
    .misfire(tickguard::Misfire::Skip);
    let scheduler = Scheduler::builder()
        .discover(false)
        .instance_id("exporter")
        .alert_webhook(webhook)
        .job(slow)
        .build()
        .await
        .unwrap();
    let received = server.received.clone();
    scheduler
        .run_until(async move {
            while received.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap();
    let received = server.received.lock().unwrap().clone();
    let json: serde_json::Value = serde_json::from_str(&received[0].body).unwrap();
    assert_eq!(json["job"], "slow_export");
    assert_eq!(json["outcome"], "skipped");
    assert_eq!(json["skip_reason"], "overlap");
    assert_eq!(json["ticks_lost"], 1);
    assert_eq!(json["instance_id"], "exporter");
    assert_eq!(json["attempts"], 0);
    let text = json["text"].as_str().unwrap();
    assert!(
        text.starts_with("tickguard: job `slow_export` lost 1 tick(s) (overlap) on exporter"),
        "{text}"
    );
    assert!(text.contains("the run outlasted its next tick"), "{text}");
    let latest: DateTime<Utc> = json["scheduled_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(latest.timestamp_subsec_nanos(), 0, "a tick of the schedule");
}

//! A report pulled from an external API: transient errors retried with exponential backoff,
//! permanent ones not, and what happens when a report cannot be made: the failure hook, the
//! alert webhook, the dead letter, and its re-run once the cause is fixed. Spring users know
//! the pattern as `@Retryable` + `@Recover`.
//!
//! ```text
//! cargo run -p tickguard-examples --example report_with_recovery -- 30
//! cargo run -p tickguard-examples --example report_with_recovery -- 30 \
//!     --postgres postgres://postgres@127.0.0.1/test --redis redis://127.0.0.1:6379
//! ```
//!
//! Every 5 seconds the job asks a reporting API for the day's revenue. Its errors are of two
//! kinds, and `classify` tells them apart:
//!
//! - **transient**: a timeout, `503 Service Unavailable` (also 429, 502, 504): the next try may
//!   work. The retry policy tries again after 1 s, 2 s, 4 s and 8 s (`backoff = "1s"`,
//!   `factor = 2.0`; no delay longer than `max_delay = "5m"`), five attempts in all;
//! - **permanent**: `400 Bad Request`, a validation error: the same request fails the same
//!   way, so it is a `JobError::permanent` and is not retried.
//!
//! When the last attempt fails, or a permanent error ends the run, the execution is recorded
//! `FAILED`: a dead letter, kept in the store with its error (`tickguard failed`). The job's
//! `on_failure` hook runs (the `@Recover`: here it logs that the day's report is missing and
//! the command that re-runs it), and the alert webhook gets the report as JSON: here a
//! receiver inside the example that logs what it got, or the URL in `REPORT_ALERT_WEBHOOK`
//! (a Slack incoming webhook, say). The operator fixes the cause, then runs the same tick
//! again with `tickguard rerun ID`: the re-run counts its attempts from zero.
//!
//! The reporting API is a fake in the process, which does what a file in the working
//! directory says, so that you can break it and mend it while the example runs:
//!
//! | file | the API | the report |
//! |---|---|---|
//! | none | times out on the first two calls of each run | retried after 1 s, then 2 s; the third attempt works |
//! | `report-api.down` | answers 503 to every call | five attempts over 15 s, then a dead letter |
//! | `report-api.reject` | answers 400 `unknown account` | one attempt, then a dead letter |
//!
//! In a second terminal, in the same directory:
//!
//! ```text
//! touch report-api.reject           # the next report fails at once: a dead letter, an alert
//! cargo run -p tickguard-cli -- --store sqlite://tickguard-report_with_recovery.db failed
//! rm report-api.reject              # the cause is fixed
//! cargo run -p tickguard-cli -- --store sqlite://tickguard-report_with_recovery.db \
//!     rerun 'daily_revenue_report@2026-12-06T10:15:05Z'    # an ID that `failed` printed
//! ```
//!
//! With `report-api.down`, a run lasts 15 s: the ticks it overlaps are skipped and reported
//! as lost. A daily report's retries end long before its next tick.
//!
//! When copying it: replace `ReportApi` with your client and `classify` with the split of
//! your client's errors; put the real schedule in the attribute (`cron = "0 0 6 * * *"`,
//! `zone = "..."`); keep `idempotent`, which names each tick's execution `{job}@{tick}` so that
//! a re-run is the same report; and give `REPORT_ALERT_WEBHOOK` your alert channel's URL.
//! Executions are kept in `tickguard-report_with_recovery.db`; `--postgres URL` keeps them in
//! PostgreSQL (see `tickguard_examples::Options`).

use std::{collections::HashMap, fmt, sync::Mutex, time::Duration};

use tickguard::{FailureReport, JobContext, JobError, JobResult, State, Webhook, scheduled};
use tickguard_examples::{Options, init_logging};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// An error of the reporting API.
#[derive(Debug)]
enum ApiError {
    /// No answer within the client's timeout.
    Timeout,
    /// An answer with an HTTP error status.
    Status(u16, &'static str),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => write!(f, "reporting API: no answer within 10 s"),
            Self::Status(code, reason) => write!(f, "reporting API answered {code}: {reason}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// Which errors a retry may cure: timeouts and overloaded or restarting servers. Any other
/// answer (a 400, a validation error) would come back the same, so it is not retried.
fn classify(error: ApiError) -> JobError {
    match error {
        ApiError::Timeout | ApiError::Status(429 | 502 | 503 | 504, _) => {
            JobError::transient(error)
        }
        ApiError::Status(..) => JobError::permanent(error),
    }
}

/// The fake reporting API (see the table above).
#[derive(Default)]
struct ReportApi {
    /// Calls per run (execution id and fence), for the first two that time out.
    calls: Mutex<HashMap<String, u32>>,
}

impl ReportApi {
    /// The day's revenue, in cents.
    async fn revenue(&self, run: &str) -> Result<u64, ApiError> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if tokio::fs::try_exists("report-api.reject")
            .await
            .unwrap_or(false)
        {
            return Err(ApiError::Status(400, "unknown account `acme-eu`"));
        }
        if tokio::fs::try_exists("report-api.down")
            .await
            .unwrap_or(false)
        {
            return Err(ApiError::Status(503, "service unavailable"));
        }
        let call = {
            let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
            let call = calls.entry(run.to_owned()).or_default();
            *call += 1;
            *call
        };
        if call <= 2 {
            return Err(ApiError::Timeout);
        }
        Ok(1_234_567)
    }
}

/// The `@Recover`: called once the report's last attempt failed (not after each attempt),
/// and when ticks of the job were lost for good (a run that outlasted the next tick).
async fn report_missing(report: FailureReport) {
    if report.skip_reason.is_some() {
        tracing::error!(
            ticks = report.ticks_lost,
            "recover: {} report tick(s) did not run, the latest {}; `tickguard gaps \
             daily_revenue_report` lists them, `tickguard trigger daily_revenue_report` runs \
             the report now",
            report.ticks_lost,
            report.scheduled_at
        );
        return;
    }
    tracing::error!(
        execution_id = %report.execution_id,
        attempts = report.attempts,
        "recover: the revenue report of {} is missing; once the cause is fixed, run it again \
         with `tickguard rerun {}`",
        report.scheduled_at.date_naive(),
        report.execution_id
    );
}

/// The day's revenue report, every 5 seconds for the example (daily in production).
#[scheduled(
    every = "5s",
    idempotent,
    retry(attempts = 5, backoff = "1s", factor = 2.0, max_delay = "5m"),
    timeout = "2m",
    on_failure = report_missing,
)]
async fn daily_revenue_report(ctx: JobContext, State(api): State<ReportApi>) -> JobResult {
    let attempt = ctx.attempt();
    tracing::info!(attempt, "calling the reporting API");
    let run = format!("{}#{}", ctx.execution_id(), ctx.fence());
    let revenue = api.revenue(&run).await.map_err(classify)?;
    tracing::info!(attempt, revenue, "report delivered");
    Ok(())
}

/// A stand-in for the alert channel: an HTTP server on a free local port that logs each
/// report POSTed to it. Returns its URL.
async fn alert_receiver() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/alerts", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(receive_alert(stream));
        }
    });
    Ok(url)
}

/// Reads one POST (its `Content-Length` body), logs the report in it, answers 204.
async fn receive_alert(mut stream: TcpStream) {
    let mut request = Vec::new();
    let mut chunk = [0u8; 4096];
    let body = loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
        let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0);
        if request.len() >= end + 4 + length {
            break request[end + 4..end + 4 + length].to_vec();
        }
    };
    let alert: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    tracing::warn!(
        execution_id = %alert["execution_id"].as_str().unwrap_or_default(),
        outcome = %alert["outcome"].as_str().unwrap_or_default(),
        attempts = alert["attempts"].as_u64().unwrap_or_default(),
        "alert webhook received: {}",
        alert["text"].as_str().unwrap_or("(not a tickguard report)")
    );
    let _ = stream
        .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        .await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let options = Options::from_args();
    let webhook = match std::env::var("REPORT_ALERT_WEBHOOK") {
        Ok(url) => Webhook::new(&url)?,
        Err(_) => {
            let url = alert_receiver().await?;
            tracing::info!("alerts go to the example's own receiver at {url}");
            Webhook::new(&url)?
        }
    };
    let scheduler = options
        .builder("tickguard-report_with_recovery.db")
        .state(ReportApi::default())
        .alert_webhook(webhook)
        .build()
        .await?;
    options.run(scheduler).await?;
    Ok(())
}

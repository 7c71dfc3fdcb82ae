//! The built-in alert sink: failure reports POSTed as JSON to a webhook (feature `webhook`).

use std::{fmt, time::Duration};

use http_body_util::{BodyExt, Full};
use hyper::{Request, Uri, body::Bytes, header};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{error::Error, job::FailureReport};

/// Reports waiting for delivery, at most; beyond, new reports are dropped (and logged) so that
/// a webhook that is down never holds memory or the scheduler.
const QUEUE: usize = 1_000;

/// How long, after shutdown, reports still queued are given to be delivered.
const FLUSH: Duration = Duration::from_secs(10);

/// Where failure reports go: an HTTP or HTTPS endpoint that takes a JSON `POST`, such as a
/// Slack (or Mattermost) incoming webhook, or an alert gateway of your own.
///
/// Each report is one `POST` of a JSON object whose `text` field is a one-line summary (what
/// Slack-compatible webhooks display) and whose other fields are the [`FailureReport`]'s:
/// `job`, `execution_id`, `scheduled_at`, `instance_id`, `attempts`, `outcome`,
/// `error_chain` (an array, outermost first), `duration_ms`, and, for ticks lost for good
/// (outcome `skipped`), `skip_reason` (`misfire`, `overlap` or `unavailable`; `null` for a
/// run's end) and `ticks_lost` (0 for a run's end). The `text` of a lost-ticks report reads
/// ``tickguard: job `x` lost 3 tick(s) (overlap) on instance-1, the latest 2026-..: ..``.
///
/// Delivery never blocks the scheduler: the failure hook only queues the report, and a task
/// of its own sends it, each request bounded by the timeout and retried with exponential
/// backoff on a connection error, a timeout, a 5xx, 408 or 429 answer (not on other 4xx,
/// which a retry would not change), then dropped with an error log. At shutdown, reports
/// still queued (and one in flight) get 10 s to be delivered. HTTPS uses the Mozilla root
/// certificates (built in). The `text` quotes the job, the instance and the first line of
/// the error (or why the ticks were lost), with `&`, `<` and `>` escaped as Slack expects.
///
/// ```no_run
/// # async fn f() -> Result<(), tickguard::Error> {
/// use tickguard::{Scheduler, Webhook};
///
/// let scheduler = Scheduler::builder()
///     .alert_webhook(Webhook::new("https://hooks.slack.com/services/T000/B000/XXXX")?)
///     .build()
///     .await?;
/// # let _ = scheduler; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Webhook {
    uri: Uri,
    timeout: Duration,
    attempts: u32,
    backoff: Duration,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The path of a Slack webhook is its secret: show the host only.
        f.debug_struct("Webhook")
            .field("host", &self.uri.host())
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl Webhook {
    /// A webhook at `url` (`http://` or `https://`), with a 10 s timeout per request and up
    /// to 5 attempts, 1 s apart at first and doubling.
    ///
    /// Fails with [`Error::Config`] if the URL is not an absolute `http` or `https` URL.
    pub fn new(url: &str) -> Result<Self, Error> {
        let uri: Uri = url.parse().map_err(|e| {
            Error::Config(format!(
                "alert webhook URL is not a URL ({e}); expected https://host/path"
            ))
        })?;
        match (uri.scheme_str(), uri.host()) {
            (Some("http" | "https"), Some(_)) => {}
            _ => {
                return Err(Error::Config(format!(
                    "alert webhook URL must be http:// or https:// with a host, not `{}`",
                    uri.scheme_str().unwrap_or("(no scheme)")
                )));
            }
        }
        Ok(Self {
            uri,
            timeout: Duration::from_secs(10),
            attempts: 5,
            backoff: Duration::from_secs(1),
        })
    }

    /// The longest one request may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Attempts per report, the first included (at least 1).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The pause before the first retry; it doubles for each next one.
    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Starts the delivery task; returns the sender the failure hook queues into, and the
    /// task, which drains the queue for [`FLUSH`] once `stopped` is cancelled.
    pub(crate) fn start(
        self,
        stopped: CancellationToken,
    ) -> (mpsc::Sender<FailureReport>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (tx, tokio::spawn(self.deliver(rx, stopped)))
    }

    async fn deliver(self, mut rx: mpsc::Receiver<FailureReport>, stopped: CancellationToken) {
        let https = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        {
            Ok(builder) => builder.https_or_http().enable_http1().build(),
            Err(e) => {
                tracing::error!(error = %e, "cannot set up TLS for the alert webhook; alerts are not sent");
                return;
            }
        };
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
        // Set when shutdown begins: no try starts or lasts past it.
        let mut deadline = None;
        loop {
            let report = tokio::select! {
                biased;
                () = stopped.cancelled() => break,
                report = rx.recv() => match report {
                    Some(report) => report,
                    None => return,
                },
            };
            self.send(&client, &report, &stopped, &mut deadline).await;
            if deadline.is_some() {
                break;
            }
        }
        // Shutdown: what is queued gets what is left of the flush time.
        let deadline = deadline.unwrap_or_else(|| tokio::time::Instant::now() + FLUSH);
        while let Ok(report) = rx.try_recv() {
            if tokio::time::Instant::now() >= deadline {
                tracing::error!(job = %report.job, "shutdown: alert not delivered");
                continue;
            }
            self.send(&client, &report, &stopped, &mut Some(deadline))
                .await;
        }
    }

    /// Sends one report, retrying. Once shutdown begins (`deadline` is then set, to the flush
    /// time from that moment, if it was not), no try starts or lasts past the deadline.
    async fn send(
        &self,
        client: &Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
        report: &FailureReport,
        stopped: &CancellationToken,
        deadline: &mut Option<tokio::time::Instant>,
    ) {
        let body = Bytes::from(payload(report));
        let host = self.uri.host().unwrap_or_default();
        let mut pause = self.backoff;
        for attempt in 1..=self.attempts {
            let request = Request::post(self.uri.clone())
                .header(header::CONTENT_TYPE, "application/json")
                .header(
                    header::USER_AGENT,
                    concat!("tickguard/", env!("CARGO_PKG_VERSION")),
                )
                .body(Full::new(body.clone()));
            let request = match request {
                Ok(request) => request,
                Err(e) => {
                    tracing::error!(error = %e, "cannot build the alert request");
                    return;
                }
            };
            let exchange = async {
                let response = client
                    .request(request)
                    .await
                    .map_err(|e| (e.to_string(), true))?;
                let status = response.status();
                // Read the answer, so the connection can be reused.
                let _ = response.into_body().collect().await;
                if status.is_success() {
                    return Ok(());
                }
                // 4xx other than 408 and 429 will not change on a retry (a revoked webhook
                // answers 404 or 410, a refused payload 400).
                let lasting = status.is_client_error() && !matches!(status.as_u16(), 408 | 429);
                Err((format!("answered {status}"), !lasting))
            };
            tokio::pin!(exchange);
            let own_limit = tokio::time::Instant::now() + self.timeout;
            let sent = loop {
                let limit = deadline.map_or(own_limit, |d| d.min(own_limit));
                tokio::select! {
                    sent = tokio::time::timeout_at(limit, &mut exchange) => {
                        break sent.unwrap_or_else(|_| Err(("no answer in time".to_owned(), true)));
                    }
                    () = stopped.cancelled(), if deadline.is_none() => {
                        *deadline = Some(tokio::time::Instant::now() + FLUSH);
                    }
                }
            };
            let (error, retryable) = match sent {
                Ok(()) => {
                    tracing::debug!(job = %report.job, attempt, "alert delivered");
                    return;
                }
                Err(e) => e,
            };
            if deadline.is_none() && stopped.is_cancelled() {
                *deadline = Some(tokio::time::Instant::now() + FLUSH);
            }
            let retry_at = tokio::time::Instant::now().checked_add(pause);
            let too_late = match (*deadline, retry_at) {
                (Some(d), Some(at)) => at >= d,
                (_, None) => true,
                (None, Some(_)) => false,
            };
            if attempt == self.attempts || too_late || !retryable {
                tracing::error!(
                    job = %report.job, %host, attempts = attempt, %error,
                    "alert webhook failed; the alert is dropped (it is in the logs above)"
                );
                return;
            }
            tracing::warn!(job = %report.job, %host, attempt, %error, retry_in = ?pause, "alert webhook failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                // Shutdown during the pause: retry at once, within the flush time.
                () = stopped.cancelled(), if deadline.is_none() => {
                    *deadline = Some(tokio::time::Instant::now() + FLUSH);
                }
            }
            pause = pause.saturating_mul(2);
        }
    }
}

/// The JSON body: a Slack-compatible `text`, and the report's fields.
fn payload(report: &FailureReport) -> String {
    // Slack reads `<..>` as links and mentions (`<!channel>`): escape what the text quotes.
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let first_error = report
        .error_chain
        .first()
        .and_then(|e| e.lines().next())
        .unwrap_or("no error recorded");
    let (job, instance) = (escape(&report.job), escape(&report.instance_id));
    let text = match report.skip_reason {
        Some(reason) => format!(
            "tickguard: job `{job}` lost {} tick(s) ({}) on {instance}, the latest {}: {}",
            report.ticks_lost,
            reason.as_str(),
            report.scheduled_at.to_rfc3339(),
            escape(first_error)
        ),
        None => {
            let what = match report.outcome {
                "failure" => "failed",
                "timeout" => "timed out",
                "cancelled" => "lost its lock",
                other => other,
            };
            format!(
                "tickguard: job `{job}` {what} after {} attempt(s) on {instance}: {}",
                report.attempts,
                escape(first_error)
            )
        }
    };
    serde_json::json!({
        "text": text,
        "job": report.job,
        "execution_id": report.execution_id,
        "scheduled_at": report.scheduled_at.to_rfc3339(),
        "instance_id": report.instance_id,
        "attempts": report.attempts,
        "outcome": report.outcome,
        "error_chain": report.error_chain,
        "duration_ms": report.duration.as_millis() as u64,
        "skip_reason": report.skip_reason.map(|r| r.as_str()),
        "ticks_lost": report.ticks_lost,
    })
    .to_string()
}

//! Shared helpers for tickguard's cross-crate tests.

pub mod proxy;

use std::sync::{Arc, Mutex};

use metrics_util::{
    CompositeKey, MetricKind,
    debugging::{DebugValue, DebuggingRecorder, Snapshotter},
};

/// Metrics recorded by the scheduler, readable by tests. One per test process: the
/// recorder is global, so tests filter by their own job names.
pub struct Recorded {
    snapshotter: Snapshotter,
    seen: Mutex<Seen>,
}

/// What the snapshots showed so far.
#[derive(Default)]
struct Seen {
    /// Counters and histograms added up, gauges' changes added up.
    merged: Vec<(CompositeKey, DebugValue)>,
    /// The last value other than 0 each gauge showed.
    last_set: Vec<(CompositeKey, f64)>,
}

static RECORDED: std::sync::OnceLock<Arc<Recorded>> = std::sync::OnceLock::new();

/// Installs the debugging recorder once per process and returns it.
pub fn metrics() -> Arc<Recorded> {
    RECORDED
        .get_or_init(|| {
            let recorder = DebuggingRecorder::new();
            let snapshotter = recorder.snapshotter();
            let _ = metrics::set_global_recorder(recorder);
            Arc::new(Recorded {
                snapshotter,
                seen: Mutex::new(Seen::default()),
            })
        })
        .clone()
}

impl Recorded {
    /// The value of counter `name` with the given labels (0 if never incremented).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.refresh();
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.merged
            .iter()
            .filter(|(k, _)| k.kind() == MetricKind::Counter && matches(k, name, labels))
            .map(|(_, v)| match v {
                DebugValue::Counter(c) => *c,
                _ => 0,
            })
            .sum()
    }

    /// How many values histogram `name` with the given labels recorded.
    pub fn histogram_count(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        self.refresh();
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.merged
            .iter()
            .filter(|(k, _)| k.kind() == MetricKind::Histogram && matches(k, name, labels))
            .map(|(_, v)| match v {
                DebugValue::Histogram(h) => h.len(),
                _ => 0,
            })
            .sum()
    }

    /// The value of gauge `name` with the given labels, for gauges moved by `increment` and
    /// `decrement` (0 if never moved). Snapshots drain gauges too: their changes add up.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.refresh();
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.merged
            .iter()
            .filter(|(k, _)| k.kind() == MetricKind::Gauge && matches(k, name, labels))
            .map(|(_, v)| match v {
                DebugValue::Gauge(g) => g.into_inner(),
                _ => 0.0,
            })
            .sum()
    }

    /// The value gauge `name` with the given labels was last set to, for gauges moved by
    /// `set` (`None` if never set to anything but 0: snapshots drain gauges, so a 0 reads
    /// the same as no change).
    pub fn gauge_set(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.refresh();
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.last_set
            .iter()
            .find(|(k, _)| matches(k, name, labels))
            .map(|(_, v)| *v)
    }

    fn refresh(&self) {
        // Snapshots drain counters: take one under the lock, so that a concurrent reader
        // never looks between another's drain and its merge.
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot = self.snapshotter.snapshot().into_vec();
        let seen = &mut *seen;
        for (key, _, _, value) in snapshot {
            if let DebugValue::Gauge(g) = &value
                && g.into_inner() != 0.0
            {
                match seen.last_set.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, last)) => *last = g.into_inner(),
                    None => seen.last_set.push((key.clone(), g.into_inner())),
                }
            }
            match (seen.merged.iter_mut().find(|(k, _)| *k == key), value) {
                (Some((_, DebugValue::Counter(total))), DebugValue::Counter(c)) => *total += c,
                (Some((_, DebugValue::Histogram(all))), DebugValue::Histogram(h)) => all.extend(h),
                (Some((_, DebugValue::Gauge(total))), DebugValue::Gauge(g)) => *total += g,
                (Some((_, old)), new) => *old = new,
                (None, value) => seen.merged.push((key, value)),
            }
        }
    }
}

fn matches(key: &CompositeKey, name: &str, labels: &[(&str, &str)]) -> bool {
    key.key().name() == name
        && labels
            .iter()
            .all(|(k, v)| key.key().labels().any(|l| l.key() == *k && l.value() == *v))
}

/// Collects what a `tracing_subscriber::fmt` subscriber writes, for tests that read the logs
/// (`.with_writer(move || captured.clone())`).
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Captures, on this thread until the returned guard is dropped, what the default fmt
    /// layer writes at `level` and above, without colours.
    pub fn start(level: tracing_subscriber::filter::LevelFilter) -> (Self, impl Sized) {
        use tracing_subscriber::util::SubscriberInitExt;
        let captured = Self::default();
        let writer = captured.clone();
        let guard = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(level)
            .finish()
            .set_default();
        (captured, guard)
    }

    /// What was captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

/// A throwaway `redis-server` on a port of its own, killed when dropped: for tests that stop,
/// pause or restart Redis without disturbing the shared one.
pub struct RedisServer(std::process::Child);

impl RedisServer {
    /// Starts `redis-server` on `port` and waits until it listens.
    pub async fn start(port: u16) -> Self {
        // Owned at once, so that a panic below still kills and reaps it.
        let server = Self(
            std::process::Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start redis-server ({e}); run `bash scripts/services` to install it"
                    )
                }),
        );
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("redis-server did not listen on port {port} within 5 s");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two schedulers, each with its own in-memory store (so only the lock keeps them apart),
/// share the lock that `with_lock` puts on their builders: each tick of a job `name` due
/// every second for 2.5 s runs exactly once, and the other instance is refused the lock
/// each time.
pub async fn two_schedulers_share_the_lock(
    name: &str,
    with_lock: impl Fn(tickguard::SchedulerBuilder) -> tickguard::SchedulerBuilder,
) {
    use std::{collections::BTreeMap, time::Duration};

    use tickguard::{Job, JobContext, LockPolicy, Schedule, Scheduler, metrics as names};

    type Runs = BTreeMap<chrono::DateTime<chrono::Utc>, Vec<String>>;
    let recorded = metrics();
    let runs: Arc<Mutex<Runs>> = Arc::default();
    let mut schedulers = Vec::new();
    for instance in ["a", "b"] {
        let runs = runs.clone();
        let every = Schedule::every(Duration::from_secs(1)).unwrap_or_else(|e| panic!("{e}"));
        let job = Job::new(name, every, move |ctx: JobContext| {
            runs.lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(ctx.scheduled_at())
                .or_default()
                .push(ctx.instance_id().to_owned());
            async { Ok(()) }
        })
        // A fast job: without `at_least` the slower instance would take the released lock
        // and run the tick again.
        .lock(LockPolicy::new(Duration::from_secs(5)).at_least(Duration::from_millis(800)));
        let builder = Scheduler::builder()
            .discover(false)
            .instance_id(format!("{name}-{instance}"))
            .job(job);
        let scheduler = with_lock(builder).build().await.unwrap_or_else(|e| {
            panic!("cannot build the scheduler: {e}\nrun `bash scripts/services`")
        });
        schedulers.push(scheduler);
    }
    let run_for = || tokio::time::sleep(Duration::from_millis(2_500));
    let b = schedulers.pop().unwrap_or_else(|| unreachable!());
    let a = schedulers.pop().unwrap_or_else(|| unreachable!());
    let (a, b) = tokio::join!(a.run_until(run_for()), b.run_until(run_for()));
    a.unwrap_or_else(|e| panic!("{e}"));
    b.unwrap_or_else(|e| panic!("{e}"));
    let runs = runs.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(runs.len() >= 2, "too few ticks ran: {runs:?}");
    for (tick, instances) in &runs {
        assert_eq!(instances.len(), 1, "tick {tick} ran on {instances:?}");
    }
    let skips = |reason| recorded.counter(names::SKIPS_TOTAL, &[("job", name), ("reason", reason)]);
    assert_eq!(
        skips("locked"),
        runs.len() as u64,
        "each tick, the other instance must be refused the lock: {runs:?}"
    );
    assert_eq!(skips("unavailable"), 0);
}

/// The PostgreSQL the tests use: `TICKGUARD_TEST_POSTGRES`, or the local server that
/// `bash scripts/services` starts.
pub fn postgres_url() -> String {
    std::env::var("TICKGUARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Fails the test, saying how to start PostgreSQL: tests that need it never skip.
pub fn no_postgres(e: impl std::fmt::Display) -> ! {
    panic!(
        "this test needs PostgreSQL at {} (set TICKGUARD_TEST_POSTGRES to use another): {e}\n\
         run `bash scripts/services` to start it",
        postgres_url()
    )
}

/// A name no other test, run or process uses: `{prefix}_{pid}_{nanos}_{seq}`, lower case, a
/// valid SQL identifier.
pub fn unique_name(prefix: &str) -> String {
    use std::{
        sync::atomic::{AtomicU64, Ordering},
        time::{SystemTime, UNIX_EPOCH},
    };
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
    .to_lowercase()
    .replace('-', "_")
}

/// A fresh PostgreSQL schema for a multi-process test: its name (from `prefix`), a temp
/// directory of the same name for the workers' files, and the store on it with its tables
/// and the test's `tables` (each `name (columns)`) created; or a failed test.
pub async fn scratch_schema(
    prefix: &str,
    tables: &[&str],
) -> (String, std::path::PathBuf, tickguard::store::PostgresStore) {
    use tickguard::sqlx::{self, AssertSqlSafe};
    let schema = unique_name(prefix);
    let dir = std::env::temp_dir().join(&schema);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let store = tickguard::store::PostgresStore::connect_with_schema(&postgres_url(), &schema)
        .await
        .unwrap_or_else(|e| no_postgres(e));
    for table in tables {
        sqlx::query(AssertSqlSafe(format!("CREATE TABLE \"{schema}\".{table}")))
            .execute(store.pool())
            .await
            .unwrap_or_else(|e| panic!("creating {table}: {e}"));
    }
    (schema, dir, store)
}

/// A fresh SQLite database file under the system's temp directory, as a `sqlite://` URL.
pub fn sqlite_url(prefix: &str) -> String {
    let path = std::env::temp_dir().join(format!("{}.db", unique_name(prefix)));
    format!("sqlite://{}", path.display())
}

/// A child process of a multi-process test, killed (and reaped) when dropped.
pub struct Worker(pub std::process::Child);

impl Worker {
    /// Sends `signal` (`KILL`, `STOP`, `CONT`, ..) to the process.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.0.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` from `127.0.0.1:port` over HTTP/1.0 (so the answer is never chunked): the body
/// of a 200 answer, or what went wrong.
pub fn http_get(port: u16, path: &str) -> Result<String, String> {
    http_get_from(std::net::SocketAddr::from(([127, 0, 0, 1], port)), path)
}

/// [`http_get`] from `addr`, an IPv4 or IPv6 address.
pub fn http_get_from(addr: std::net::SocketAddr, path: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    if head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") {
        Ok(body.to_owned())
    } else {
        Err(format!("GET {path}: {head}"))
    }
}

/// An HTTP answer: its status, its head (status line and headers) and its body.
#[derive(Clone, Debug)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    /// The body.
    pub body: String,
}

/// Sends `method path` to `127.0.0.1:port` over HTTP/1.0 (so the answer is never chunked)
/// with `headers` (`Name: value`) and, for a POST, `form` as a URL-encoded body; panics if
/// no HTTP answer comes.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[String],
    form: &str,
) -> HttpAnswer {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("cannot connect to port {port}: {e}"));
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    if method == "POST" {
        request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        request.push_str(&format!("Content-Length: {}\r\n", form.len()));
    }
    request.push_str("\r\n");
    request.push_str(form);
    let mut raw = String::new();
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.read_to_string(&mut raw))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: not an HTTP answer: {raw}"));
    HttpAnswer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// Collects the failure reports a hook receives (`on_failure`, `SchedulerBuilder::on_failure`).
#[derive(Clone, Default)]
pub struct Reports(Arc<Mutex<Vec<tickguard::FailureReport>>>);

impl Reports {
    /// A hook that collects its reports here.
    pub fn hook(
        &self,
    ) -> impl Fn(tickguard::FailureReport) -> tickguard::BoxFuture<'static, ()> + Send + Sync + 'static
    {
        let reports = self.0.clone();
        move |r| {
            reports.lock().unwrap_or_else(|p| p.into_inner()).push(r);
            Box::pin(async {})
        }
    }

    /// The reports collected so far.
    pub fn get(&self) -> Vec<tickguard::FailureReport> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// libfaketime's multi-threaded variant (Debian's `faketime` package), for worker processes
/// whose wall clock a test offsets (`LD_PRELOAD`, with `FAKETIME` and
/// `FAKETIME_DONT_FAKE_MONOTONIC=1`, so tokio's timers are untouched); or a failed test.
pub fn faketime_library() -> std::path::PathBuf {
    let path = std::path::PathBuf::from(format!(
        "/usr/lib/{}-linux-gnu/faketime/libfaketimeMT.so.1",
        std::env::consts::ARCH
    ));
    assert!(
        path.exists(),
        "{} is missing: install Debian's `faketime` (`bash scripts/services` does)",
        path.display()
    );
    path
}

/// When a worker's job fires, for a test that chooses it once the worker is up: the Unix
/// seconds in file `path`, once the test wrote it (polled every 10 ms).
pub async fn fire_at(path: &str) -> chrono::DateTime<chrono::Utc> {
    loop {
        if let Some(at) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        {
            return at;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A worker binary's setting `name` from its environment (the test that starts it sets it);
/// a panic naming the worker and the variable if it is missing.
pub fn worker_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        let worker = std::env::args().next().unwrap_or_default();
        let worker = std::path::Path::new(&worker)
            .file_name()
            .map_or(worker.clone(), |f| f.to_string_lossy().into_owned());
        panic!("{worker}: {name} is not set")
    })
}

/// A worker binary's logs: to standard error without colours, filtered by `RUST_LOG`.
pub fn worker_logs_to_stderr() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
}

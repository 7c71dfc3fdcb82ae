//! What the examples' tests share: an example's real binary run as a process of its own
//! (signalled like any process, its exit awaited), its JSON log lines read as they come and
//! kept, waits on one or several of them, the `tickguard` command run against its store, and
//! the cleanup of a scratch schema.

#![allow(dead_code, unreachable_pub)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tickguard_tests::Worker;

/// The directory of the build's binaries (`target/debug`): the test runs from its `deps`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps")
        .to_path_buf()
}

/// An example's binary, as the last build left it: `cargo test -p tickguard-examples` builds
/// it as `examples/<name>-<hash>`, `cargo build --example <name>` as `examples/<name>`. A
/// failed test if there is none, or if it is older than its source (`cargo test --test X`
/// builds that test only).
pub fn example_binary(name: &str) -> PathBuf {
    let dir = target_dir().join("examples");
    let hashed = format!("{name}-");
    let built = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            let file = entry.file_name().to_string_lossy().into_owned();
            file == name
                || file
                    .strip_prefix(&hashed)
                    .is_some_and(|hash| hash.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
        .max();
    let build = format!("`cargo build -p tickguard-examples --example {name}`");
    let Some((built_at, path)) = built else {
        panic!("example {name} is not built in {}: {build}", dir.display());
    };
    let sources = [format!("{name}.rs"), "src/lib.rs".to_owned()];
    for source in sources {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(source);
        let changed = std::fs::metadata(&source).and_then(|m| m.modified());
        assert!(
            changed.is_ok_and(|changed| changed <= built_at),
            "{} is older than {}: {build}",
            path.display(),
            source.display()
        );
    }
    path
}

/// One JSON log line of an example.
#[derive(Clone, Debug)]
pub struct Line {
    /// Its `timestamp`.
    pub at: DateTime<Utc>,
    /// The whole line.
    pub json: Value,
}

impl Line {
    /// Its message.
    pub fn message(&self) -> &str {
        self.json["fields"]["message"].as_str().unwrap_or_default()
    }

    /// A field of the event, else of the spans it is in (`execution_id`), as text.
    pub fn field(&self, name: &str) -> Option<String> {
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        };
        if let Some(v) = text(&self.json["fields"][name]) {
            return Some(v);
        }
        self.json["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|span| text(&span[name]))
    }

    /// Whether its message starts with `prefix` and it belongs to `execution_id`.
    pub fn is(&self, prefix: &str, execution_id: &str) -> bool {
        self.message().starts_with(prefix)
            && self.field("execution_id").as_deref() == Some(execution_id)
    }
}

#[derive(Default)]
struct Log {
    lines: Vec<Line>,
    raw: Vec<String>,
    ended: bool,
}

/// Rung whenever any example of the test logs a line or ends: waits on several examples
/// wake on it. Lock order: this one, then an example's log.
static LOGGED: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());

/// An example running as a child process (killed when dropped), logging JSON lines.
pub struct Example {
    worker: Worker,
    log: Arc<Mutex<Log>>,
    /// What failure messages call it (`instance A`, `replica-2`).
    label: String,
}

impl Example {
    /// Starts example `name` with `args`, in the working directory `dir` (where its SQLite
    /// file goes), with the environment `env` added; `label` names it in failure messages.
    pub fn start(name: &str, label: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(example_binary(name))
            .args(args)
            .current_dir(dir)
            .env("TICKGUARD_LOG", "json")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let log: Arc<Mutex<Log>> = Arc::default();
        let reader = log.clone();
        std::thread::spawn(move || {
            let lock = || reader.lock().unwrap_or_else(|p| p.into_inner());
            for raw in BufReader::new(stdout).lines() {
                let Ok(raw) = raw else { break };
                {
                    let mut log = lock();
                    if let Ok(json) = serde_json::from_str::<Value>(&raw)
                        && let Some(at) = json["timestamp"].as_str().and_then(|t| t.parse().ok())
                    {
                        log.lines.push(Line { at, json });
                    }
                    log.raw.push(raw);
                }
                ring();
            }
            lock().ended = true;
            ring();
        });
        Self {
            worker: Worker(child),
            log,
            label: label.to_owned(),
        }
    }

    /// The first line that `matches`, waiting up to `timeout` for it; a failed test (with the
    /// log) if none comes.
    pub fn wait_for(&self, what: &str, timeout: Duration, matches: impl Fn(&Line) -> bool) -> Line {
        wait_any(&[self], what, timeout, matches).1
    }

    /// The first line that `matches` among those logged from now on (not one logged before),
    /// waiting up to `timeout` for it; a failed test (with the log) if none comes.
    pub fn wait_next(
        &self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&Line) -> bool,
    ) -> Line {
        let from = self.log().lines.len();
        wait_from(&[(self, from)], what, timeout, matches).1
    }

    /// Every line so far that `matches`.
    pub fn lines(&self, matches: impl Fn(&Line) -> bool) -> Vec<Line> {
        self.log()
            .lines
            .iter()
            .filter(|l| matches(l))
            .cloned()
            .collect()
    }

    /// Every line so far whose message is `message`.
    pub fn seen(&self, message: &str) -> Vec<Line> {
        self.lines(|l| l.message() == message)
    }

    /// Sends `signal` (`KILL`, `TERM`, `STOP`, `CONT`) to the process.
    pub fn signal(&self, signal: &str) {
        self.worker.signal(signal);
    }

    /// Waits up to `timeout` for the process to close its output and exit (every line it
    /// logged is then read), and returns its status; a failed test (with the log) if it does
    /// not.
    pub fn exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let mut rung = LOGGED.0.lock().unwrap_or_else(|p| p.into_inner());
        while !self.log().ended {
            let now = Instant::now();
            if now >= deadline {
                drop(rung);
                self.fail(&format!("its output is still open after {timeout:?}"));
            }
            rung = LOGGED
                .1
                .wait_timeout(rung, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(rung);
        // Its output is closed: the process is ending; the standard library has no wait with
        // a timeout, so its status is polled for the moment it takes to be reaped.
        loop {
            match self.worker.0.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => self.fail(&format!("did not exit within {timeout:?}: {other:?}")),
            }
        }
    }

    /// Fails the test with `what` and the last lines the process logged.
    pub fn fail(&self, what: &str) -> ! {
        panic!("{what}; the log ends with:\n{}", self.tail())
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The first line from the `from`th on that matches, and whether the output ended.
    fn find(&self, from: usize, matches: &impl Fn(&Line) -> bool) -> (Option<Line>, bool) {
        let log = self.log();
        let found = log.lines.iter().skip(from).find(|l| matches(l)).cloned();
        (found, log.ended)
    }

    /// Its label and pid, and the last lines of its output.
    fn tail(&self) -> String {
        let log = self.log();
        let tail: Vec<_> = log.raw.iter().rev().take(40).rev().cloned().collect();
        format!(
            "--- {} (pid {}) ---\n{}",
            self.label,
            self.worker.0.id(),
            tail.join("\n")
        )
    }
}

fn ring() {
    let _rung = LOGGED.0.lock().unwrap_or_else(|p| p.into_inner());
    LOGGED.1.notify_all();
}

/// The first line of any of `examples` that `matches`, with the example's index, waiting up
/// to `timeout`; a failed test (with their logs) if none comes, or if every one's output
/// ended without it.
pub fn wait_any(
    examples: &[&Example],
    what: &str,
    timeout: Duration,
    matches: impl Fn(&Line) -> bool,
) -> (usize, Line) {
    let from: Vec<_> = examples.iter().map(|&e| (e, 0)).collect();
    wait_from(&from, what, timeout, matches)
}

/// [`wait_any`] over the lines of each example from the given index on.
fn wait_from(
    examples: &[(&Example, usize)],
    what: &str,
    timeout: Duration,
    matches: impl Fn(&Line) -> bool,
) -> (usize, Line) {
    let deadline = Instant::now() + timeout;
    let mut rung = LOGGED.0.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let mut ended = 0;
        for (i, (example, from)) in examples.iter().enumerate() {
            match example.find(*from, &matches) {
                (Some(line), _) => return (i, line),
                (None, true) => ended += 1,
                (None, false) => {}
            }
        }
        let now = Instant::now();
        if now >= deadline || ended == examples.len() {
            drop(rung);
            let logs: Vec<_> = examples.iter().map(|(e, _)| e.tail()).collect();
            panic!(
                "no {what} within {timeout:?}; the logs end with:\n{}",
                logs.join("\n")
            );
        }
        rung = LOGGED
            .1
            .wait_timeout(rung, deadline - now)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// What `tickguard ARGS` printed; a failed test if it exits with an error.
pub fn tickguard(store: &str, schema: Option<&str>, args: &[&str]) -> String {
    let path = target_dir().join("tickguard");
    assert!(
        path.exists(),
        "{} is missing: build the command first (`cargo build -p tickguard-cli`; \
         `cargo test --workspace` builds it too)",
        path.display()
    );
    let mut command = Command::new(&path);
    command.env("TICKGUARD_STORE", store).args(args);
    if let Some(schema) = schema {
        command.env("TICKGUARD_SCHEMA", schema);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "tickguard {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `tickguard ARGS --json`, parsed.
pub fn tickguard_json(store: &str, schema: Option<&str>, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = tickguard(store, schema, &args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("tickguard {args:?}: {e}:\n{out}"))
}

/// A runtime for the test's own calls to the store (`block_on`): the examples run as
/// processes of their own, and the waits on them block.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A fresh directory under the system's temp directory.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(tickguard_tests::unique_name(prefix));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// Seconds from `a` to `b`.
pub fn seconds(a: &Line, b: &Line) -> f64 {
    (b.at - a.at).as_seconds_f64()
}

/// Drops a test's scratch schema (`tickguard_tests::scratch_schema`) and its directory.
pub async fn drop_scratch(schema: &str, dir: &Path, pool: &tickguard::sqlx::PgPool) {
    let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
    tickguard::sqlx::query(tickguard::sqlx::AssertSqlSafe(drop))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("dropping schema {schema}: {e}"));
    let _ = std::fs::remove_dir_all(dir);
}

//! Running an example's real binary from a test: started with arguments in a directory of
//! its own, its JSON log lines read as they come, signalled like any process.

#![allow(dead_code)] // each test binary uses its own part of the helpers

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::{Duration, SystemTime},
};

use serde_json::Value;
use std::io::{BufRead, BufReader};
use tickguard_tests::Worker;

use tokio::sync::mpsc;

/// The example `name`'s binary, which `cargo test -p tickguard-examples` (and `cargo build
/// -p tickguard-examples --examples`) builds next to the test binaries; a failed test if it
/// is missing or older than its source.
pub(crate) fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    // target/debug/deps/<test> -> target/debug/examples/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} has no grandparent", exe.display()));
    let binary = dir.join("examples").join(name);
    let build = format!("build it with `cargo build -p tickguard-examples --example {name}`");
    let built =
        modified(&binary).unwrap_or_else(|| panic!("{} is missing: {build}", binary.display()));
    let sources = Path::new(env!("CARGO_MANIFEST_DIR"));
    for source in [
        sources.join(format!("{name}.rs")),
        sources.join("src/lib.rs"),
    ] {
        if modified(&source).is_some_and(|changed| changed > built) {
            panic!(
                "{} is older than {}: {build}",
                binary.display(),
                source.display()
            );
        }
    }
    binary
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// One running process of an example, killed when dropped.
pub(crate) struct Example {
    pub(crate) name: String,
    worker: Worker,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Every line read so far, for the failure message.
    seen: Vec<String>,
}

impl Example {
    /// Starts example `name` with `args` in `dir` (where its SQLite file goes), logging JSON
    /// lines; `label` names it in failure messages.
    pub(crate) fn start(name: &str, label: &str, dir: &Path, args: &[&str]) -> Self {
        Self::start_with(name, label, dir, args, &[])
    }

    /// [`Example::start`] with environment variables.
    pub(crate) fn start_with(
        name: &str,
        label: &str,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = command(name, dir, args, env)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| unreachable!());
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Self {
            name: label.to_owned(),
            worker: Worker(child),
            lines,
            seen: Vec::new(),
        }
    }

    /// The next log line whose message is `message`, read within `within`; a failed test
    /// that shows the lines read if none comes.
    pub(crate) async fn wait_for(&mut self, message: &str, within: Duration) -> Value {
        self.wait_until(within, |line| line["fields"]["message"] == message)
            .await
            .unwrap_or_else(|| self.fail(&format!("no \"{message}\" within {within:?}")))
    }

    /// The next log line `pick` accepts within `within`, or `None` at the deadline or when
    /// the process closed its output.
    pub(crate) async fn wait_until(
        &mut self,
        within: Duration,
        mut pick: impl FnMut(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .ok()??;
            self.seen.push(line.to_string());
            if pick(&line) {
                return Some(line);
            }
        }
    }

    /// Every log line read so far whose message is `message`.
    pub(crate) fn seen(&self, message: &str) -> Vec<Value> {
        self.seen
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["fields"]["message"] == message)
            .collect()
    }

    /// Reads the rest of the output and waits for the process to exit, within `within`.
    pub(crate) async fn exit(&mut self, within: Duration) -> ExitStatus {
        while self.wait_until(within, |_| false).await.is_some() {}
        let deadline = std::time::Instant::now() + within;
        loop {
            match self.worker.0.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => self.fail(&format!("did not exit within {within:?}: {other:?}")),
            }
        }
    }

    /// Sends `signal` (`KILL`, `TERM`, `STOP`, `CONT`) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        self.worker.signal(signal);
    }

    /// Fails the test with `what` and the last lines the process logged.
    pub(crate) fn fail(&self, what: &str) -> ! {
        let tail = self.seen.len().saturating_sub(30);
        panic!(
            "{} ({}): {what}; its last lines:\n{}",
            self.name,
            self.worker.0.id(),
            self.seen[tail..].join("\n")
        )
    }
}

/// The command that runs example `name`.
fn command(name: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(binary(name));
    command
        .args(args)
        .current_dir(dir)
        .env("TICKGUARD_LOG", "json")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command
}

/// A fresh temp directory for the examples' files (their SQLite file).
pub(crate) fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(tickguard_tests::unique_name(prefix));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// Drops a test's scratch schema (`tickguard_tests::scratch_schema`) and its directory.
pub(crate) async fn drop_scratch(schema: &str, dir: &Path, pool: &tickguard::sqlx::PgPool) {
    let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
    tickguard::sqlx::query(tickguard::sqlx::AssertSqlSafe(drop))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("dropping schema {schema}: {e}"));
    let _ = std::fs::remove_dir_all(dir);
}

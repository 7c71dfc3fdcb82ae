//! `tickguard console`: it refuses to start without a token (unless read-only access
//! without one is asked for), serves the store's pages to the token only, and stops on
//! SIGTERM.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use tickguard::Schedule;
use tickguard_tests::{free_port, http_request};

use common::{Backend, HOUR, Store, hours_ago, run_with};

#[test]
fn console_refuses_to_start_without_a_token() {
    for args in [&["console"][..], &["console", "--token", " "][..]] {
        let run = run_with(args, &[("TICKGUARD_STORE", "sqlite:///nowhere.db")]);
        let err = run.fails(2);
        assert!(err.contains("the console needs a token"), "{err}");
        assert!(err.contains("TICKGUARD_CONSOLE_TOKEN"), "{err}");
    }
}

#[test]
fn console_startup_errors_show_no_password() {
    let closed = free_port();
    for url in [
        format!("postgres://ops:hunter2@127.0.0.1:{closed}/test"),
        "postgres://ops:hunter2@[::1/test".to_owned(),
    ] {
        let run = run_with(
            &["console", "--store", &url, "--listen", "127.0.0.1:0"],
            &[("TICKGUARD_CONSOLE_TOKEN", "t0ken-in-env")],
        );
        let err = run.fails(1);
        assert!(err.contains("PostgreSQL"), "{err}");
        for secret in ["hunter2", "t0ken-in-env"] {
            assert!(!err.contains(secret), "`{secret}` in: {err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_serves_the_store_to_the_token_and_stops_on_sigterm() {
    let store = Store::new(Backend::Sqlite).await;
    let hourly = Schedule::every(HOUR).expect("an hour is a schedule");
    store
        .register("nightly-report", &hourly, "UTC", hours_ago(2))
        .await;
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tickguard"))
        .args(["console", "--listen", &format!("127.0.0.1:{port}")])
        .env("TICKGUARD_STORE", &store.url)
        .env("TICKGUARD_CONSOLE_TOKEN", "cli-token")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run tickguard console");
    let mut first = String::new();
    let stdout = child.stdout.take().expect("piped");
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("its first line");
    assert_eq!(
        first,
        format!("serving the console at http://127.0.0.1:{port}/ (Ctrl-C stops it)\n")
    );
    let refused = http_request(port, "GET", "/", &[], "");
    assert_eq!(refused.status, 401, "no token");
    let token = ["Authorization: Bearer cli-token".to_owned()];
    let page = http_request(port, "GET", "/", &token, "");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("nightly-report"), "{}", page.body);
    assert!(
        !page.body.contains(&store.url),
        "the page shows the store's URL"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("it exits");
    assert!(status.success(), "SIGTERM stops it cleanly: {status}");
}

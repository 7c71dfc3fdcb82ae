//! The signals that stop [`Scheduler::run`](crate::Scheduler::run): SIGTERM (what `docker
//! stop`, Kubernetes and systemd send) and SIGINT (Ctrl-C).

use std::future::Future;

/// Listens for SIGTERM and SIGINT from now on (on other platforms, Ctrl-C), and returns what
/// resolves on the first of them. Installed before the scheduler starts, so that a signal
/// sent while it starts is not the process's default action (which ends it at once). A
/// handler that cannot be installed is logged, and the other signal still stops the
/// scheduler. Once installed, the handlers stay for the life of the process: a second
/// signal does not end the process during the shutdown (SIGKILL does).
pub(crate) fn stop_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let listen = |kind: SignalKind, name: &'static str| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for {name}; only the other signal stops the scheduler");
                None
            }
        };
        let term = listen(SignalKind::terminate(), "SIGTERM");
        let int = listen(SignalKind::interrupt(), "SIGINT");
        async fn received(s: Option<Signal>) {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        async move {
            tokio::select! {
                () = received(term) => tracing::info!("SIGTERM received"),
                () = received(int) => tracing::info!("SIGINT received"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C; the scheduler runs until the process ends");
            std::future::pending::<()>().await;
        }
    }
}

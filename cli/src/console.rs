//! `tickguard console`: the web console of the `tickguard` library, served for the store
//! until Ctrl-C or SIGTERM.

use crate::args::ConsoleArgs;
use crate::commands::Ctx;
use crate::error::Failure;
use crate::output::print;

/// Serves the console for `ctx`'s store at `args.listen`.
pub(crate) async fn serve(ctx: Ctx, args: &ConsoleArgs) -> Result<(), Failure> {
    let listener = tickguard::console::bind(&args.listen)
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    let at = listener
        .local_addr()
        .map_err(|e| Failure::new(format!("the console's address is unknown: {e}")))?;
    print(&format!(
        "serving the console at http://{at}/ (Ctrl-C stops it)\n"
    ));
    tickguard::console::serve(listener, ctx.store, args.access(), stopped())
        .await
        .map_err(|e| Failure::new(e.to_string()))
}

/// Completes on Ctrl-C or SIGTERM.
async fn stopped() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

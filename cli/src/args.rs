//! The command line: global options and one subcommand.

use clap::{Args, Parser, Subcommand};

/// Read and operate the jobs of a tickguard execution store.
#[derive(Debug, Parser)]
#[command(name = "tickguard", version, about, long_about = None)]
pub(crate) struct Cli {
    /// The execution store: `postgres://user@host/db` or `sqlite://path/to/file.db`.
    #[arg(
        long,
        env = "TICKGUARD_STORE",
        value_name = "URL",
        global = true,
        hide_env_values = true
    )]
    pub(crate) store: Option<String>,

    /// The Postgres schema that holds tickguard's tables.
    #[arg(
        long,
        env = "TICKGUARD_SCHEMA",
        value_name = "SCHEMA",
        default_value = "public",
        global = true
    )]
    pub(crate) schema: String,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Every job: schedule, next fire, last outcome, pause.
    Jobs(Json),
    /// One job in detail, with its latest executions.
    Show {
        /// The job's name.
        job: String,
        #[command(flatten)]
        json: Json,
    },
    /// A job's executions, newest tick first, one page at a time.
    History(HistoryArgs),
    /// One execution with every run of it (claims, takeovers, errors).
    Execution {
        /// The execution's id.
        id: String,
        #[command(flatten)]
        json: Json,
    },
    /// Dead letters: executions that failed after their last attempt.
    Failed {
        /// Only this job's.
        job: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        #[command(flatten)]
        json: Json,
    },
    /// Ticks the job's schedule says were due that have no execution, or were skipped.
    Gaps {
        /// The job's name.
        job: String,
        /// How far back to look: a duration (`24h`, `7d`) or a time (`2026-12-01`,
        /// `2026-12-01T08:00:00Z`).
        #[arg(long, default_value = "24h", value_name = "WHEN")]
        since: String,
        /// Up to when: a tick due a moment ago may not be claimed yet, so the last 30
        /// seconds are not judged unless asked (`--until 0s` is now).
        #[arg(long, default_value = "30s", value_name = "WHEN")]
        until: String,
        #[command(flatten)]
        json: Json,
    },
    /// Runs a job now, on one of its instances (a manual execution).
    Trigger {
        /// The job's name.
        job: String,
        #[command(flatten)]
        by: By,
    },
    /// Runs an execution again, for the same tick.
    Rerun {
        /// The execution's id.
        id: String,
        /// Also re-run an execution that completed (or was skipped).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        by: By,
    },
    /// Stops an execution: the instance running it cancels it within a second (a pending
    /// one is cancelled at once). It is recorded CANCELLED and not resumed.
    Cancel {
        /// The execution's id.
        id: String,
        /// Why: recorded as the execution's error and logged by the instance that stops it.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        by: By,
    },
    /// Pauses a job on every instance: its ticks are skipped until it is resumed.
    Pause {
        /// The job's name.
        job: String,
        /// Why: shown to every operator who looks at the job.
        #[arg(long, required = true)]
        note: String,
        #[command(flatten)]
        by: By,
    },
    /// Resumes a paused job.
    Resume {
        /// The job's name.
        job: String,
    },
    /// Deletes executions that ended longer ago than their status is kept.
    Prune(PruneArgs),
    /// Serves the web console for the store: jobs, history, executions, dead letters, with
    /// pause, resume, trigger and re-run. Runs until Ctrl-C or SIGTERM.
    Console(ConsoleArgs),
}

/// `tickguard console`. Its `Debug` leaves the token out.
#[derive(Args)]
pub(crate) struct ConsoleArgs {
    /// Where to listen: this host only by default; another address exposes the store's
    /// operations to whoever reaches it (with the token).
    #[arg(long, default_value = "127.0.0.1:9470", value_name = "ADDR")]
    pub(crate) listen: String,
    /// The token that opens the console (to read and to act): a browser signs in with it,
    /// a script sends `Authorization: Bearer TOKEN`.
    #[arg(
        long,
        env = "TICKGUARD_CONSOLE_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub(crate) token: Option<String>,
    /// Lets anyone who reaches the console read it without the token (acting still needs
    /// it; with no token, nobody acts).
    #[arg(long)]
    pub(crate) anonymous_read: bool,
}

impl std::fmt::Debug for ConsoleArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleArgs")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "(hidden)"))
            .field("anonymous_read", &self.anonymous_read)
            .finish()
    }
}

impl ConsoleArgs {
    /// Who may read and act.
    pub(crate) fn access(&self) -> tickguard::console::Access {
        match &self.token {
            Some(token) => tickguard::console::Access::token(token.clone()),
            None => tickguard::console::Access::read_only(),
        }
        .anonymous_read(self.anonymous_read)
    }
}

/// `--json`.
#[derive(Debug, Args)]
pub(crate) struct Json {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--by`.
#[derive(Debug, Args)]
pub(crate) struct By {
    /// Who asks, as recorded in the store (default: `$USER@host`).
    #[arg(long, value_name = "WHO")]
    pub(crate) by: Option<String>,
}

/// `tickguard history`.
#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// The job's name.
    pub(crate) job: String,
    /// Only executions in this status (repeatable): pending, running, completed, failed,
    /// timed-out, cancelled, skipped.
    #[arg(long = "status", value_name = "STATUS")]
    pub(crate) statuses: Vec<String>,
    /// Only ticks at or after this: a duration ago (`7d`) or a time (`2026-12-01`).
    #[arg(long, value_name = "WHEN")]
    pub(crate) since: Option<String>,
    /// Only ticks before this: a duration ago (`1h`) or a time.
    #[arg(long, value_name = "WHEN")]
    pub(crate) until: Option<String>,
    /// At most this many executions.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) limit: u32,
    /// The next page: the cursor printed under the page before.
    #[arg(long, value_name = "CURSOR")]
    pub(crate) after: Option<String>,
    #[command(flatten)]
    pub(crate) json: Json,
}

/// `tickguard prune`.
#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Count what would be deleted, delete nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Only this job's history (repeatable); every job by default.
    #[arg(long = "job", value_name = "JOB")]
    pub(crate) jobs: Vec<String>,
    /// Keep completed executions this long (`forever` keeps them).
    #[arg(long, value_name = "KEEP")]
    pub(crate) completed: Option<String>,
    /// Keep skipped ticks this long.
    #[arg(long, value_name = "KEEP")]
    pub(crate) skipped: Option<String>,
    /// Keep failed executions this long.
    #[arg(long, value_name = "KEEP")]
    pub(crate) failed: Option<String>,
    /// Keep timed-out executions this long.
    #[arg(long, value_name = "KEEP")]
    pub(crate) timed_out: Option<String>,
    /// Keep cancelled executions this long.
    #[arg(long, value_name = "KEEP")]
    pub(crate) cancelled: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    #[test]
    fn the_console_s_debug_leaves_the_token_out() {
        let cli = Cli::try_parse_from(["tickguard", "console", "--token", "s3cret-token"])
            .unwrap_or_else(|e| panic!("{e}"));
        let Command::Console(args) = &cli.command else {
            panic!("not the console: {cli:?}");
        };
        let shown = format!("{args:?}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(shown.contains("(hidden)"), "{shown}");
    }
}

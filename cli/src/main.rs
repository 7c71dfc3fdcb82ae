//! `tickguard`: read and operate the jobs of a tickguard execution store from a shell.
//!
//! Exit codes: 0 when the command did what it was asked, 1 when it failed (store
//! unreachable, tables missing or at another version, unknown job or execution, a refused
//! re-run, a bad value), 2 for a usage error (clap's, including no store given).

mod args;
mod commands;
mod console;
mod error;
mod json;
mod open;
mod output;
mod parse;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, error::ErrorKind};

use crate::args::{Cli, Command};
use crate::commands::Ctx;
use crate::error::{Failure, redact, url_secrets};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(url) = cli.store.clone() else {
        Cli::command()
            .error(
                ErrorKind::MissingRequiredArgument,
                "no store given: pass --store URL (postgres://… or sqlite://…) or set TICKGUARD_STORE",
            )
            .exit()
    };
    let secrets = url_secrets(&url);
    // A value that does not parse is a usage error, reported before the store is asked.
    if let Err(failure) = check_values(&cli.command, chrono::Utc::now()) {
        eprintln!("{}", redact(&failure.to_string(), &secrets));
        return ExitCode::from(2);
    }
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("could not start the async runtime: {e}")))
        .and_then(|runtime| runtime.block_on(run(cli, &url)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}", redact(&failure.to_string(), &secrets));
            ExitCode::FAILURE
        }
    }
}

/// Who a write is recorded as by default: `$USER@host`, or `tickguard`.
fn default_by() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    match (user, host) {
        (Some(user), Some(host)) => format!("{user}@{host}"),
        (Some(user), None) => user,
        _ => "tickguard".to_owned(),
    }
}

/// Checks the values that the command parses itself, so that a mistake is reported before
/// the store is asked anything.
fn check_values(command: &Command, now: chrono::DateTime<chrono::Utc>) -> Result<(), Failure> {
    match command {
        Command::History(args) => {
            for status in &args.statuses {
                parse::status(status)?;
            }
            if let Some(since) = &args.since {
                parse::instant("--since", since, now)?;
            }
            if let Some(until) = &args.until {
                parse::instant("--until", until, now)?;
            }
            if let Some(after) = &args.after {
                parse::cursor(after)?;
            }
        }
        Command::Gaps { since, until, .. } => {
            parse::instant("--since", since, now)?;
            parse::instant("--until", until, now)?;
        }
        Command::Prune(args) => {
            commands::retention(args)?;
        }
        Command::Console(args)
            if args.token.as_deref().is_none_or(|t| t.trim().is_empty())
                && !args.anonymous_read =>
        {
            return Err(
                Failure::new("the console needs a token, for reading too").hint(
                    "pass --token TOKEN or set TICKGUARD_CONSOLE_TOKEN (a long random one: \
                     openssl rand -hex 32); --anonymous-read without a token serves it \
                     read-only to whoever reaches it",
                ),
            );
        }
        _ => {}
    }
    Ok(())
}

async fn run(cli: Cli, url: &str) -> Result<(), Failure> {
    let now = chrono::Utc::now();
    let store = open::open(url, &cli.schema).await?;
    let ctx = Ctx { store, now };
    let by = |by: Option<String>| by.unwrap_or_else(default_by);
    match cli.command {
        Command::Jobs(json) => commands::jobs(&ctx, json.json).await,
        Command::Show { job, json } => commands::show(&ctx, &job, json.json).await,
        Command::History(args) => commands::history(&ctx, &args).await,
        Command::Execution { id, json } => commands::execution(&ctx, &id, json.json).await,
        Command::Failed { job, limit, json } => {
            commands::failed(&ctx, job.as_deref(), limit, json.json).await
        }
        Command::Gaps {
            job,
            since,
            until,
            json,
        } => commands::gaps(&ctx, &job, (&since, &until), json.json).await,
        Command::Trigger { job, by: who } => commands::trigger(&ctx, &job, &by(who.by)).await,
        Command::Rerun { id, force, by: who } => {
            commands::rerun(&ctx, &id, force, &by(who.by)).await
        }
        Command::Cancel { id, note, by: who } => {
            commands::cancel(&ctx, &id, &note, &by(who.by)).await
        }
        Command::Pause { job, note, by: who } => {
            commands::pause(&ctx, &job, &note, &by(who.by)).await
        }
        Command::Resume { job } => commands::resume(&ctx, &job).await,
        Command::Prune(args) => commands::prune(&ctx, &args).await,
        Command::Console(args) => console::serve(ctx, &args).await,
    }
}

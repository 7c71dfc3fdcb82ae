//! Checks the fn's signature and the arguments against each other.

use std::time::Duration;

use proc_macro2::Span;
use syn::{FnArg, ItemFn, ReturnType, spanned::Spanned};

use crate::{
    args::{Args, Trigger},
    ctxt::Ctxt,
};

/// Checks what can be checked on the signature alone. The argument and return types are
/// checked by the compiler on the generated call, with the error on the user's tokens.
pub(crate) fn signature(f: &ItemFn, cx: &Ctxt) {
    let sig = &f.sig;
    if sig.asyncness.is_none() {
        cx.error(
            sig.fn_token.span,
            "#[scheduled] needs an `async fn`: write `async fn`",
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error(
            sig.generics.span(),
            "#[scheduled] fns cannot be generic: the scheduler calls them with a JobContext only",
        );
    }
    if let Some(receiver) = sig.receiver() {
        cx.error(
            receiver.span(),
            "#[scheduled] fns cannot take `self`: use a free fn (keep state in a static or behind an Arc)",
        );
    }
    if let Some(variadic) = &sig.variadic {
        cx.error(variadic.span(), "#[scheduled] fns cannot be variadic");
    }
    let typed: Vec<_> = sig
        .inputs
        .iter()
        .filter(|a| matches!(a, FnArg::Typed(_)))
        .collect();
    for extra in typed.iter().skip(1) {
        cx.error(
            extra.span(),
            "#[scheduled] fns take one argument, `ctx: JobContext`, or none",
        );
    }
    if let ReturnType::Default = sig.output {
        cx.error(
            sig.ident.span(),
            "#[scheduled] fns must return `JobResult` (`Result<(), JobError>`) so failures are recorded and retried",
        );
    }
}

/// Checks arguments that constrain each other.
pub(crate) fn arguments(args: &Args, cx: &Ctxt) {
    match args.triggers.as_slice() {
        [] => cx.error(
            Span::call_site(),
            "#[scheduled] needs a trigger: `cron = \"...\"`, `every = \"...\"` or `after = \"...\"`",
        ),
        [_] => {}
        [_, rest @ ..] => {
            for t in rest {
                cx.error(
                    t.span,
                    "only one of `cron`, `every` and `after` may be given",
                );
            }
        }
    }
    if let Some(zone) = &args.zone {
        if args.triggers.iter().any(|t| !matches!(t.value, Trigger::Cron(_))) {
            cx.error(
                zone.span,
                "`zone` applies to `cron` only: `every` and `after` count elapsed time",
            );
        }
    }
    if let Some(lock) = &args.lock {
        if let Some(ttl) = &lock.ttl {
            if ttl.value < Duration::from_millis(30) {
                cx.error(ttl.span, "lock `ttl` must be at least 30ms");
            }
        }
        let ttl = lock.ttl.as_ref().map_or(Duration::from_secs(30), |t| t.value);
        if let Some(at_least) = &lock.at_least {
            if at_least.value > ttl {
                cx.error(
                    at_least.span,
                    format!(
                        "`at_least` ({}) is longer than the lock's `ttl` ({}): the lease would expire first",
                        humanize(at_least.value),
                        humanize(ttl)
                    ),
                );
            }
        }
    }
    if let Some(retry) = &args.retry {
        if let Some(attempts) = &retry.attempts {
            if attempts.value == 0 {
                cx.error(
                    attempts.span,
                    "`attempts` counts the first run too, so it must be at least 1",
                );
            }
        }
        if let Some(factor) = &retry.factor {
            if !(factor.value.is_finite() && factor.value >= 1.0) {
                cx.error(factor.span, "`factor` must be at least 1.0");
            }
        }
        if let Some(jitter) = &retry.jitter {
            if !(0.0..=1.0).contains(&jitter.value) {
                cx.error(jitter.span, "retry `jitter` is a fraction between 0.0 and 1.0");
            }
        }
    }
}

fn humanize(d: Duration) -> String {
    format!("{:?}", d)
}

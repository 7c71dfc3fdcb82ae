//! Checks the fn's signature and the arguments against each other.

use std::time::Duration;

use proc_macro2::Span;
use syn::{FnArg, ReturnType, Signature, Type, spanned::Spanned};

use crate::{
    args::{Args, Trigger},
    ctxt::Ctxt,
};

/// Checks what can be checked on the signature alone. The argument and return types are
/// checked by the compiler on the generated code, with the error on the user's tokens.
pub(crate) fn signature(sig: &Signature, cx: &Ctxt) {
    if sig.asyncness.is_none() {
        cx.error(
            sig.fn_token.span,
            "#[scheduled] needs an `async fn`: write `async fn`",
        );
    }
    let generics = &sig.generics;
    let generic = match (generics.params.first(), &generics.where_clause) {
        (Some(param), _) => Some(param.span()),
        (None, Some(clause)) => Some(clause.where_token.span),
        (None, None) => None,
    };
    if let Some(span) = generic {
        cx.error(
            span,
            "#[scheduled] fns cannot be generic: their arguments are `JobContext`, `&JobContext` or `State<T>`",
        );
    }
    if let Some(receiver) = sig.receiver() {
        cx.error(
            receiver.self_token.span,
            "#[scheduled] fns cannot take `self`: use a free fn, and take what it needs as a `State<T>` argument",
        );
    }
    if let Some(variadic) = &sig.variadic {
        cx.error(variadic.span(), "#[scheduled] fns cannot be variadic");
    }
    // An `impl Trait` argument makes the fn generic too.
    for arg in &sig.inputs {
        if let FnArg::Typed(t) = arg
            && let Type::ImplTrait(it) = &*t.ty
        {
            cx.error(
                it.impl_token.span,
                "#[scheduled] fns cannot be generic: take `JobContext`, `&JobContext` or `State<T>`",
            );
        }
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
        // After a syntax error the trigger may be among the arguments not parsed.
        [] if !args.parsed_all => {}
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
    if let Some(zone) = &args.zone
        && args
            .triggers
            .iter()
            .any(|t| !matches!(t.value, Trigger::Cron(_)))
    {
        cx.error(
            zone.span,
            "`zone` applies to `cron` only: `every` and `after` count elapsed time",
        );
    }
    if let Some(lock) = &args.lock {
        // Kept in step with the runtime's `LockPolicy::MIN_TTL`, which `Job::validate` checks
        // again at startup: the attribute cannot read the runtime's constants.
        if let Some(ttl) = &lock.ttl
            && ttl.value < Duration::from_millis(30)
        {
            cx.error(ttl.span, "lock `ttl` must be at least 30ms");
        }
        // Only against a ttl written here: against the runtime's default ttl, the scheduler
        // checks it at startup (`Error::InvalidJob`, naming the job).
        if let (Some(ttl), Some(at_least)) = (&lock.ttl, &lock.at_least)
            && at_least.value > ttl.value
        {
            cx.error(
                at_least.span,
                format!(
                    "`at_least` ({:?}) is longer than the lock's `ttl` ({:?}): the lease would expire first",
                    at_least.value, ttl.value
                ),
            );
        }
    }
    if let Some(retry) = &args.retry {
        if let Some(attempts) = &retry.attempts
            && attempts.value == 0
        {
            cx.error(
                attempts.span,
                "`attempts` counts the first run too, so it must be at least 1",
            );
        }
        if let Some(factor) = &retry.factor
            && !(factor.value.is_finite() && factor.value >= 1.0)
        {
            cx.error(factor.span, "`factor` must be at least 1.0");
        }
        if let Some(jitter) = &retry.jitter
            && !(0.0..=1.0).contains(&jitter.value)
        {
            cx.error(
                jitter.span,
                "retry `jitter` is a fraction between 0.0 and 1.0",
            );
        }
    }
}

//! Checks the fn's signature and the arguments against each other.

use std::time::Duration;

use proc_macro2::Span;
use syn::{
    FnArg, GenericArgument, GenericParam, Generics, PathArguments, ReturnType, Signature, Type,
    TypeParamBound, spanned::Spanned,
};

use crate::{
    args::{Args, BreakerArgs, Trigger},
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
    generics(&sig.generics, cx);
    if let Some(receiver) = sig.receiver() {
        cx.error(
            receiver.self_token.span,
            "#[scheduled] fns cannot take `self`: use a free fn, and take what it needs as a `State<T>` argument",
        );
    }
    if let Some(variadic) = &sig.variadic {
        cx.error(variadic.span(), "#[scheduled] fns cannot be variadic");
    }
    for arg in &sig.inputs {
        if let FnArg::Typed(t) = arg {
            argument(&t.ty, &sig.generics, cx);
        }
    }
    if let ReturnType::Default = sig.output {
        cx.error(
            sig.ident.span(),
            "#[scheduled] fns must return `JobResult` (`Result<(), JobError>`) so failures are recorded and retried",
        );
    }
}

/// Type and const parameters make the fn generic; a lifetime parameter is for a borrowed
/// argument, and the only one is `&JobContext`, which needs none.
fn generics(generics: &Generics, cx: &Ctxt) {
    let mut generic = None;
    for param in &generics.params {
        match param {
            GenericParam::Lifetime(lt) => cx.error(
                lt.lifetime.span(),
                format!(
                    "#[scheduled] fns cannot have lifetime parameters: remove `<{}>`, and \
                     write `&JobContext`, without a lifetime (other arguments are owned)",
                    lt.lifetime
                ),
            ),
            GenericParam::Type(_) | GenericParam::Const(_) => {
                generic.get_or_insert(param.span());
            }
        }
    }
    if generic.is_none()
        && let Some(clause) = &generics.where_clause
    {
        generic = Some(clause.where_token.span);
    }
    if let Some(span) = generic {
        cx.error(
            span,
            "#[scheduled] fns cannot be generic: their arguments are `JobContext`, `&JobContext` or `State<T>`",
        );
    }
}

/// Checks what an argument's type alone says: a borrow with a named lifetime (but one of
/// the fn's lifetime parameters, whose error says to remove it here too), and an
/// `impl Trait` anywhere in it (which makes the fn generic).
fn argument(ty: &Type, generics: &Generics, cx: &Ctxt) {
    if let Type::Reference(r) = ty
        && let Some(lifetime) = &r.lifetime
        && lifetime.ident != "_"
        && !generics
            .lifetimes()
            .any(|param| param.lifetime == *lifetime)
    {
        cx.error(
            lifetime.span(),
            "#[scheduled] fns borrow the context for the run only: write `&JobContext`, without a lifetime",
        );
    }
    impl_traits(ty, &mut |span| {
        cx.error(
            span,
            "#[scheduled] fns cannot be generic, and `impl Trait` in an argument makes them so: \
             take `JobContext`, `&JobContext` or `State<T>` of a named type",
        );
    });
}

/// Calls `found` with the span of the `impl` of each `impl Trait` in `ty`, at any depth.
fn impl_traits(ty: &Type, found: &mut dyn FnMut(Span)) {
    match ty {
        Type::ImplTrait(it) => found(it.impl_token.span),
        Type::Array(t) => impl_traits(&t.elem, found),
        Type::Group(t) => impl_traits(&t.elem, found),
        Type::Paren(t) => impl_traits(&t.elem, found),
        Type::Ptr(t) => impl_traits(&t.elem, found),
        Type::Reference(t) => impl_traits(&t.elem, found),
        Type::Slice(t) => impl_traits(&t.elem, found),
        Type::Tuple(t) => t.elems.iter().for_each(|t| impl_traits(t, found)),
        Type::BareFn(f) => {
            f.inputs.iter().for_each(|a| impl_traits(&a.ty, found));
            if let ReturnType::Type(_, t) = &f.output {
                impl_traits(t, found);
            }
        }
        Type::Path(p) => {
            if let Some(q) = &p.qself {
                impl_traits(&q.ty, found);
            }
            path_impl_traits(&p.path, found);
        }
        Type::TraitObject(o) => {
            for bound in &o.bounds {
                if let TypeParamBound::Trait(t) = bound {
                    path_impl_traits(&t.path, found);
                }
            }
        }
        _ => {}
    }
}

/// [`impl_traits`] in the generic arguments of each segment of `path`.
fn path_impl_traits(path: &syn::Path, found: &mut dyn FnMut(Span)) {
    for segment in &path.segments {
        match &segment.arguments {
            PathArguments::AngleBracketed(args) => {
                for arg in &args.args {
                    match arg {
                        GenericArgument::Type(t) => impl_traits(t, found),
                        GenericArgument::AssocType(a) => impl_traits(&a.ty, found),
                        _ => {}
                    }
                }
            }
            PathArguments::Parenthesized(args) => {
                args.inputs.iter().for_each(|t| impl_traits(t, found));
                if let ReturnType::Type(_, t) = &args.output {
                    impl_traits(t, found);
                }
            }
            PathArguments::None => {}
        }
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
    let not_cron = args
        .triggers
        .iter()
        .any(|t| !matches!(t.value, Trigger::Cron(_)));
    for (key, span) in [
        ("dst_gap", args.dst_gap.as_ref().map(|d| d.span)),
        ("dst_overlap", args.dst_overlap.as_ref().map(|d| d.span)),
    ] {
        if let Some(span) = span
            && not_cron
        {
            cx.error(
                span,
                format!("`{key}` applies to `cron` only: `every` and `after` count elapsed time"),
            );
        }
    }
    if let Some(pause) = &args.pause_on_failure
        && pause.value == 0
    {
        cx.error(
            pause.span,
            "`pause_on_failure` counts consecutive failed executions, so it must be at least 1",
        );
    }
    if let Some(breaker) = &args.circuit_breaker {
        breaker_arguments(breaker, cx);
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

/// Checks the settings of `circuit_breaker(..)` (kept in step with the runtime's
/// `CircuitBreaker::validate`, which checks them again against its defaults at startup).
fn breaker_arguments(breaker: &BreakerArgs, cx: &Ctxt) {
    if let Some(rate) = &breaker.failure_rate
        && !(rate.value > 0.0 && rate.value <= 1.0)
    {
        cx.error(
            rate.span,
            "`failure_rate` is a fraction of the window's executions: more than 0.0, at most 1.0",
        );
    }
    if let Some(window) = &breaker.window
        && window.value == 0
    {
        cx.error(window.span, "`window` must be at least 1 execution");
    }
    if let Some(min_runs) = &breaker.min_runs {
        if min_runs.value == 0 {
            cx.error(min_runs.span, "`min_runs` must be at least 1");
        }
        // Against a window written here; against the default window, at startup.
        if let Some(window) = &breaker.window
            && min_runs.value > window.value
        {
            cx.error(
                min_runs.span,
                format!(
                    "`min_runs` ({}) is more than the `window` ({}): the breaker could never open",
                    min_runs.value, window.value
                ),
            );
        }
    }
    if let Some(open_for) = &breaker.open_for
        && open_for.value.is_zero()
    {
        cx.error(open_for.span, "`open_for` must be longer than zero");
    }
}

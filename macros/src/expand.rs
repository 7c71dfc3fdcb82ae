//! Generates the job description beside the user's fn, untouched.

use std::time::Duration;

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::{FnArg, ItemFn, Path, ReturnType, Signature, Type, Visibility, spanned::Spanned};

use tickguard_schedule::{DstGap, DstOverlap};

use crate::args::{Args, BreakerArgs, LockArgs, Misfire, Overlap, RetryArgs, Trigger};

fn duration(krate: &Path, d: Duration) -> TokenStream {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    quote!(#krate::__private::Duration::from_nanos(#nanos))
}

fn option<T>(value: Option<T>, f: impl FnOnce(T) -> TokenStream) -> TokenStream {
    match value {
        Some(v) => {
            let v = f(v);
            quote!(::core::option::Option::Some(#v))
        }
        None => quote!(::core::option::Option::None),
    }
}

/// `tokens` with every token, in groups too, spanned at `span`: a call to a runtime helper
/// spanned at a user's token is reported there, rather than on the whole attribute.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tt| {
            if let TokenTree::Group(g) = &tt {
                tt = TokenTree::Group(Group::new(g.delimiter(), respan(g.stream(), span)));
            }
            tt.set_span(span);
            tt
        })
        .collect()
}

/// The name of the static that describes the job of fn `ident`.
pub(crate) fn def_ident(ident: &syn::Ident) -> syn::Ident {
    format_ident!("__tickguard_job_{}", ident)
}

fn default_crate() -> Path {
    syn::parse_quote!(::tickguard)
}

/// What is emitted beside a fn whose arguments or signature are in error: a description of
/// the right type under the right name, neither registered nor ever run, so that a
/// `job!(f)` elsewhere resolves and the user sees only the errors that were recorded. A fn
/// that takes `self` sits in an impl block, where no static may go, and gets none.
pub(crate) fn stand_in(vis: &Visibility, sig: &Signature, krate: Option<&Path>) -> TokenStream {
    if sig.receiver().is_some() {
        return TokenStream::new();
    }
    let krate = krate.cloned().unwrap_or_else(default_crate);
    let def = def_ident(&sig.ident);
    let name = sig.ident.to_string();
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, dead_code)]
        #vis static #def: #krate::__private::JobDef = #krate::__private::JobDef::stand_in(#name);
    }
}

pub(crate) fn expand(f: &ItemFn, args: Args) -> TokenStream {
    let krate: Path = args.krate.unwrap_or_else(default_crate);
    let p = quote!(#krate::__private);
    let ident = &f.sig.ident;
    let vis = &f.vis;
    let def = def_ident(ident);
    let name = args.name.unwrap_or_else(|| ident.to_string());

    let trigger = match args.triggers.into_iter().next().map(|t| t.value) {
        Some(Trigger::Every(Some(d))) => {
            let d = duration(&krate, d);
            quote!(#p::Trigger::Every(#d))
        }
        Some(Trigger::After(Some(d))) => {
            let d = duration(&krate, d);
            quote!(#p::Trigger::After(#d))
        }
        Some(Trigger::Cron(Some(expr))) => quote!(#p::Trigger::Cron(#expr)),
        _ => unreachable!("validated: exactly one trigger, and a valid one"),
    };
    // Only what the user wrote is emitted: the runtime applies the defaults of the rest, so
    // they are defined once, there.
    let zone = option(args.zone, |z| {
        let z = z.value;
        quote!(#z)
    });
    let jitter = option(args.jitter, |d| duration(&krate, d));
    let lock = option(args.lock, |l| lock(&krate, l));
    let retry = option(args.retry, |r| retry(&krate, r));
    let idempotent = option(args.idempotent, |key| option(key, |k| quote!(#k)));
    let timeout = option(args.timeout, |d| duration(&krate, d));
    let misfire = option(args.misfire, |m| match m {
        Misfire::Skip => quote!(#p::Misfire::Skip),
        Misfire::RunOnce => quote!(#p::Misfire::RunOnce),
        Misfire::RunAll => quote!(#p::Misfire::RunAll),
    });
    let overlap = option(args.overlap, |o| match o {
        Overlap::Skip => quote!(#p::Overlap::Skip),
        Overlap::BufferOne => quote!(#p::Overlap::BufferOne),
        Overlap::BufferAll => quote!(#p::Overlap::BufferAll),
        Overlap::CancelOther => quote!(#p::Overlap::CancelOther),
    });
    let circuit_breaker = option(args.circuit_breaker, |b| breaker(&krate, b));
    let pause_on_failure = option(args.pause_on_failure, |n| {
        let n = n.value;
        quote!(#n)
    });
    let dst_gap = option(args.dst_gap, |d| match d.value {
        DstGap::Shift => quote!(#p::DstGap::Shift),
        DstGap::Skip => quote!(#p::DstGap::Skip),
    });
    let dst_overlap = option(args.dst_overlap, |d| match d.value {
        DstOverlap::First => quote!(#p::DstOverlap::First),
        DstOverlap::Last => quote!(#p::DstOverlap::Last),
        DstOverlap::Both => quote!(#p::DstOverlap::Both),
    });
    let on_failure = option(args.on_failure.as_ref(), |path| on_failure(&p, path));

    let (run, needs) = run(f, &p);

    quote! {
        #f

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #vis static #def: #p::JobDef = #p::JobDef {
            name: #name,
            trigger: #trigger,
            zone: #zone,
            jitter: #jitter,
            lock: #lock,
            retry: #retry,
            idempotent: #idempotent,
            timeout: #timeout,
            misfire: #misfire,
            overlap: #overlap,
            circuit_breaker: #circuit_breaker,
            pause_on_failure: #pause_on_failure,
            dst_gap: #dst_gap,
            dst_overlap: #dst_overlap,
            on_failure: #on_failure,
            file: ::core::file!(),
            line: ::core::line!(),
            needs: #needs,
            run: #run,
        };

        #p::inventory::submit! {
            #p::Registration(&#def)
        }
    }
}

/// The lock's description: only what the user wrote.
fn lock(krate: &Path, l: LockArgs) -> TokenStream {
    let p = quote!(#krate::__private);
    let ttl = option(l.ttl, |t| duration(krate, t.value));
    let at_least = option(l.at_least, |t| duration(krate, t.value));
    quote!(#p::LockDef {
        ttl: #ttl,
        at_least: #at_least,
    })
}

/// The circuit breaker's description: only what the user wrote.
fn breaker(krate: &Path, b: BreakerArgs) -> TokenStream {
    let p = quote!(#krate::__private);
    let name = option(b.name, |n| quote!(#n));
    let failure_rate = option(b.failure_rate, |f| {
        let f = f.value;
        quote!(#f)
    });
    let window = option(b.window, |w| {
        let w = w.value;
        quote!(#w)
    });
    let min_runs = option(b.min_runs, |m| {
        let m = m.value;
        quote!(#m)
    });
    let open_for = option(b.open_for, |d| duration(krate, d.value));
    quote!(#p::BreakerDef {
        name: #name,
        failure_rate: #failure_rate,
        window: #window,
        min_runs: #min_runs,
        open_for: #open_for,
    })
}

/// The retry policy's description: only what the user wrote.
fn retry(krate: &Path, r: RetryArgs) -> TokenStream {
    let p = quote!(#krate::__private);
    let attempts = option(r.attempts, |a| {
        let a = a.value;
        quote!(#a)
    });
    let backoff = option(r.backoff, |d| duration(krate, d));
    let factor = option(r.factor, |f| {
        let f = f.value;
        quote!(#f)
    });
    let max_delay = option(r.max_delay, |d| duration(krate, d));
    let jitter = option(r.jitter, |j| {
        let j = j.value;
        quote!(#j)
    });
    let when = option(r.when.as_ref(), |path| when(&p, path));
    quote!(#p::RetryDef {
        attempts: #attempts,
        backoff: #backoff,
        factor: #factor,
        max_delay: #max_delay,
        jitter: #jitter,
        when: #when,
    })
}

/// The `retry(when = path)` predicate, called through a fn of the expected signature, so a
/// predicate of the wrong type errs on its path, as a call with the wrong argument would.
/// The fn's argument is declared with the path's span too, so that the call finds it when
/// the path comes from a `macro_rules!` (hygiene), and the call is spanned on one context.
fn when(p: &TokenStream, path: &Path) -> TokenStream {
    let error = Ident::new("__tickguard_error", path.span());
    let call = quote_spanned!(path.span()=> #path(#error));
    quote! {{
        fn __tickguard_when(#error: &#p::JobError) -> bool {
            #call
        }
        __tickguard_when
    }}
}

/// The `on_failure` hook: one that is not an `async fn(FailureReport)`, or whose future is
/// not `Send`, errs on its path, as the helper's bounds are checked on the hook's call, all
/// spanned there. The fn's argument is declared with that span too, as in [`when`].
fn on_failure(p: &TokenStream, path: &Path) -> TokenStream {
    let span = path.span();
    let hook_future = respan(quote!(#p::hook_future), span);
    let report = Ident::new("__tickguard_report", span);
    let call = quote_spanned!(span=> #hook_future(#path(#report)));
    quote! {{
        fn __tickguard_on_failure(
            #report: #p::FailureReport,
        ) -> #p::BoxFuture<'static, ()> {
            #call
        }
        __tickguard_on_failure
    }}
}

/// The fn the runtime calls for each attempt, and the list of the application state each
/// argument takes (for the builder's check).
///
/// The fn owns the context in its future and takes each argument from it (`&JobContext` is
/// lent from it), then calls the user's fn. Each argument is checked where the user wrote
/// its type, and the output where the user wrote the return type, by a trait whose message
/// says what is expected: each check is a `<Type as Trait>` path spanned there, with the type
/// interpolated so that its error underlines the whole type (a call whose own tokens mix
/// spans is reported on the whole attribute). Names the generated code declares are
/// interpolated, or declared with the span they are used with, so that they resolve when
/// the user's tokens come from a `macro_rules!`. The future is checked to be `Send` by one
/// helper call, on the return type too.
fn run(f: &ItemFn, p: &TokenStream) -> (TokenStream, TokenStream) {
    let ident = &f.sig.ident;
    let types: Vec<&Type> = f
        .sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(&*t.ty),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let values: Vec<Ident> = (0..types.len())
        .map(|i| format_ident!("__tickguard_arg{}", i))
        .collect();
    let arg = |ty: &Type| respan(quote!(#p::Arg<'_>), ty.span());
    // Interpolated, the context keeps the span of its declaration: spanned at the user's
    // type, it would not resolve when the type comes from a `macro_rules!` (hygiene).
    let ctx = quote!(&__tickguard_ctx);
    let takes = types.iter().zip(&values).map(|(ty, value)| {
        let arg = arg(ty);
        let take = quote_spanned!(ty.span()=> <#ty as #arg>::take(#ctx));
        quote! {
            let #value = match #take {
                ::core::result::Result::Ok(value) => value,
                ::core::result::Result::Err(error) => return ::core::result::Result::Err(error),
            };
        }
    });
    let needs = types.iter().map(|ty| {
        let arg = arg(ty);
        quote_spanned!(ty.span()=> <#ty as #arg>::needs)
    });
    let (ret_ty, span) = match &f.sig.output {
        ReturnType::Type(_, ty) => (quote!(#ty), ty.span()),
        ReturnType::Default => (quote!(()), ident.span()),
    };
    let output = Ident::new("__tickguard_output", span);
    // As for the arguments: the type itself, interpolated, so that an error underlines all
    // of it (a span of several tokens cannot be built on stable).
    let returns = respan(quote!(#p::Returns), span);
    let returned = quote_spanned!(span=> <#ret_ty as #returns>::into_result(#output));
    let future = Ident::new("__tickguard_future", span);
    let boxed = respan(quote!(#p::job_future(#future)), span);
    let run = quote! {{
        fn __tickguard_run(
            __tickguard_ctx: #p::JobContext,
        ) -> #p::BoxFuture<'static, #p::JobResult> {
            let #future = async move {
                #(#takes)*
                let _ = &__tickguard_ctx;
                let #output = #ident(#(#values),*).await;
                #returned
            };
            #boxed
        }
        __tickguard_run
    }};
    (run, quote!(&[#(#needs),*]))
}

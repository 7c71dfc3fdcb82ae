//! Parses the arguments of `#[scheduled(...)]`, checking each value where it stands.

use std::{collections::HashSet, time::Duration};

use proc_macro2::{Span, TokenStream};
use syn::{
    Expr, ExprLit, Lit, LitStr, Path, Token,
    meta::ParseNestedMeta,
    parse::{Parse, ParseStream},
};
use tickguard_schedule::{Cron, DstGap, DstOverlap, KeyTemplate, parse_duration, parse_zone};

use crate::ctxt::Ctxt;

pub(crate) const TOP_KEYS: &[&str] = &[
    "cron",
    "zone",
    "every",
    "after",
    "name",
    "jitter",
    "lock",
    "retry",
    "idempotent",
    "timeout",
    "misfire",
    "overlap",
    "circuit_breaker",
    "pause_on_failure",
    "dst_gap",
    "dst_overlap",
    "on_failure",
    "crate",
];
const LOCK_KEYS: &[&str] = &["ttl", "at_least"];
const RETRY_KEYS: &[&str] = &[
    "attempts",
    "backoff",
    "factor",
    "max_delay",
    "jitter",
    "when",
];
const IDEMPOTENT_KEYS: &[&str] = &["key"];
const BREAKER_KEYS: &[&str] = &["failure_rate", "window", "min_runs", "open_for", "name"];

/// A value and where it was written.
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

/// A trigger as written: its value is `None` if it was invalid (and the error recorded), so
/// that a bad value does not also read as a missing trigger.
pub(crate) enum Trigger {
    Cron(Option<String>),
    Every(Option<Duration>),
    After(Option<Duration>),
}

#[derive(Default)]
pub(crate) struct LockArgs {
    pub(crate) ttl: Option<Spanned<Duration>>,
    pub(crate) at_least: Option<Spanned<Duration>>,
}

#[derive(Default)]
pub(crate) struct RetryArgs {
    pub(crate) attempts: Option<Spanned<u32>>,
    pub(crate) backoff: Option<Duration>,
    pub(crate) factor: Option<Spanned<f64>>,
    pub(crate) max_delay: Option<Duration>,
    pub(crate) jitter: Option<Spanned<f64>>,
    pub(crate) when: Option<Path>,
}

pub(crate) enum Misfire {
    Skip,
    RunOnce,
    RunAll,
}

#[derive(Clone, Copy)]
pub(crate) enum Overlap {
    Skip,
    BufferOne,
    BufferAll,
    CancelOther,
}

#[derive(Default)]
pub(crate) struct BreakerArgs {
    pub(crate) name: Option<String>,
    pub(crate) failure_rate: Option<Spanned<f64>>,
    pub(crate) window: Option<Spanned<u32>>,
    pub(crate) min_runs: Option<Spanned<u32>>,
    pub(crate) open_for: Option<Spanned<Duration>>,
}

/// Every argument, as written; `None` where the user left the default.
#[derive(Default)]
pub(crate) struct Args {
    /// Every trigger given, spanned on its key.
    pub(crate) triggers: Vec<Spanned<Trigger>>,
    pub(crate) zone: Option<Spanned<String>>,
    pub(crate) name: Option<String>,
    pub(crate) jitter: Option<Duration>,
    pub(crate) lock: Option<LockArgs>,
    pub(crate) retry: Option<RetryArgs>,
    pub(crate) idempotent: Option<Option<String>>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) misfire: Option<Misfire>,
    pub(crate) overlap: Option<Overlap>,
    pub(crate) circuit_breaker: Option<BreakerArgs>,
    pub(crate) pause_on_failure: Option<Spanned<u32>>,
    /// Spanned on the key, for the check that the trigger is a `cron`.
    pub(crate) dst_gap: Option<Spanned<DstGap>>,
    pub(crate) dst_overlap: Option<Spanned<DstOverlap>>,
    pub(crate) on_failure: Option<Path>,
    pub(crate) krate: Option<Path>,
    /// Whether the whole list parsed. After a syntax error the arguments past it are unknown,
    /// so checks of what is missing are skipped.
    pub(crate) parsed_all: bool,
}

impl Args {
    /// Parses `tokens`, recording every problem in `cx` and carrying on, so that all errors
    /// are reported at once.
    pub(crate) fn parse(tokens: TokenStream, cx: &Ctxt) -> Self {
        let mut args = Args::default();
        let mut seen = Seen::default();
        let parser = syn::meta::parser(|meta| {
            let key = key_of(&meta);
            if !seen.first(&key, &meta, cx) {
                return skip_value(&meta);
            }
            args.parse_key(&key, &meta, cx)
        });
        match syn::parse::Parser::parse2(parser, tokens) {
            Ok(()) => args.parsed_all = true,
            Err(e) => cx.push(e),
        }
        args
    }

    fn parse_key(&mut self, key: &str, meta: &ParseNestedMeta<'_>, cx: &Ctxt) -> syn::Result<()> {
        match key {
            "cron" => {
                let expr = string(meta, cx)?.and_then(|s| match Cron::parse(&s.value()) {
                    Ok(_) => Some(s.value()),
                    Err(e) => {
                        cx.error(s.span(), e);
                        None
                    }
                });
                self.triggers.push(Spanned {
                    value: Trigger::Cron(expr),
                    span: meta.path.span_or_call_site(),
                });
            }
            "every" | "after" => {
                let d = duration(meta, cx)?.map(|(d, span)| {
                    if d < Duration::from_millis(1) {
                        cx.error(span, format!("`{key}` must be at least 1ms"));
                    }
                    d
                });
                let value = if key == "every" {
                    Trigger::Every(d)
                } else {
                    Trigger::After(d)
                };
                self.triggers.push(Spanned {
                    value,
                    span: meta.path.span_or_call_site(),
                });
            }
            "zone" => {
                if let Some(s) = string(meta, cx)? {
                    match parse_zone(&s.value()) {
                        Ok(_) => {
                            self.zone = Some(Spanned {
                                value: s.value(),
                                span: s.span(),
                            })
                        }
                        Err(e) => cx.error(s.span(), e),
                    }
                }
            }
            "name" => {
                if let Some(s) = string(meta, cx)? {
                    if s.value().trim().is_empty() {
                        cx.error(s.span(), "`name` must not be empty");
                    }
                    self.name = Some(s.value());
                }
            }
            "jitter" => self.jitter = duration(meta, cx)?.map(|(d, _)| d),
            "timeout" => {
                if let Some((d, span)) = duration(meta, cx)? {
                    if d.is_zero() {
                        cx.error(span, "`timeout` must be longer than zero");
                    }
                    self.timeout = Some(d);
                }
            }
            "misfire" => {
                if let Some(s) = string(meta, cx)? {
                    self.misfire = match s.value().as_str() {
                        "skip" => Some(Misfire::Skip),
                        "run_once" => Some(Misfire::RunOnce),
                        "run_all" => Some(Misfire::RunAll),
                        other => {
                            cx.error(
                                s.span(),
                                format!(
                                    "unknown misfire policy `{other}`; use \"skip\", \"run_once\" or \"run_all\""
                                ),
                            );
                            None
                        }
                    }
                }
            }
            "overlap" => {
                self.overlap = choice(
                    meta,
                    cx,
                    &[
                        ("skip", Overlap::Skip),
                        ("buffer_one", Overlap::BufferOne),
                        ("buffer_all", Overlap::BufferAll),
                        ("cancel_other", Overlap::CancelOther),
                    ],
                )?
            }
            "pause_on_failure" => self.pause_on_failure = int(meta, cx)?,
            "dst_gap" => {
                let span = meta.path.span_or_call_site();
                self.dst_gap = choice(
                    meta,
                    cx,
                    &[("shift", DstGap::Shift), ("skip", DstGap::Skip)],
                )?
                .map(|value| Spanned { value, span });
            }
            "dst_overlap" => {
                let span = meta.path.span_or_call_site();
                let choices = [
                    ("first", DstOverlap::First),
                    ("last", DstOverlap::Last),
                    ("both", DstOverlap::Both),
                ];
                self.dst_overlap = choice(meta, cx, &choices)?.map(|value| Spanned { value, span });
            }
            "circuit_breaker" => {
                let mut breaker = BreakerArgs::default();
                nested(meta, cx, "circuit_breaker", BREAKER_KEYS, |key, meta| {
                    match key {
                        "failure_rate" => breaker.failure_rate = float(meta, cx)?,
                        "window" => breaker.window = int(meta, cx)?,
                        "min_runs" => breaker.min_runs = int(meta, cx)?,
                        "open_for" => {
                            breaker.open_for =
                                duration(meta, cx)?.map(|(value, span)| Spanned { value, span })
                        }
                        _ => {
                            if let Some(s) = string(meta, cx)? {
                                if s.value().trim().is_empty() {
                                    cx.error(s.span(), "the breaker's `name` must not be empty");
                                }
                                breaker.name = Some(s.value());
                            }
                        }
                    }
                    Ok(())
                })?;
                self.circuit_breaker = Some(breaker);
            }
            "on_failure" => self.on_failure = path(meta, cx)?,
            "crate" => {
                if let Some(s) = string(meta, cx)? {
                    match s.parse::<Path>() {
                        Ok(p) => self.krate = Some(p),
                        Err(_) => cx.error(
                            s.span(),
                            "`crate` must be a path, such as \"::my_app::tickguard\"",
                        ),
                    }
                }
            }
            "lock" => {
                let mut lock = LockArgs::default();
                nested(meta, cx, "lock", LOCK_KEYS, |key, meta| {
                    let value = duration(meta, cx)?.map(|(value, span)| Spanned { value, span });
                    match key {
                        "ttl" => lock.ttl = value,
                        _ => lock.at_least = value,
                    }
                    Ok(())
                })?;
                self.lock = Some(lock);
            }
            "retry" => {
                let mut retry = RetryArgs::default();
                nested(meta, cx, "retry", RETRY_KEYS, |key, meta| {
                    match key {
                        "attempts" => retry.attempts = int(meta, cx)?,
                        "backoff" => retry.backoff = duration(meta, cx)?.map(|(d, _)| d),
                        "max_delay" => retry.max_delay = duration(meta, cx)?.map(|(d, _)| d),
                        "factor" => retry.factor = float(meta, cx)?,
                        "jitter" => retry.jitter = float(meta, cx)?,
                        _ => retry.when = path(meta, cx)?,
                    }
                    Ok(())
                })?;
                self.retry = Some(retry);
            }
            "idempotent" => {
                let mut key = None;
                nested(meta, cx, "idempotent", IDEMPOTENT_KEYS, |_, meta| {
                    if let Some(s) = string(meta, cx)? {
                        match KeyTemplate::parse(&s.value()) {
                            Ok(_) => key = Some(s.value()),
                            Err(e) => cx.error(s.span(), e),
                        }
                    }
                    Ok(())
                })?;
                self.idempotent = Some(key);
            }
            _ => {
                cx.error(
                    meta.path.span_or_call_site(),
                    format!(
                        "unknown argument `{key}`; valid arguments are: {}",
                        TOP_KEYS.join(", ")
                    ),
                );
                skip_value(meta)?;
            }
        }
        Ok(())
    }
}

trait SpanOr {
    fn span_or_call_site(&self) -> Span;
}

impl SpanOr for Path {
    fn span_or_call_site(&self) -> Span {
        syn::spanned::Spanned::span(self)
    }
}

fn key_of(meta: &ParseNestedMeta<'_>) -> String {
    quote::ToTokens::to_token_stream(&meta.path)
        .to_string()
        .replace(' ', "")
}

/// Keys seen so far in one argument list: the one duplicate check for every key.
#[derive(Default)]
struct Seen(HashSet<String>);

impl Seen {
    fn first(&mut self, key: &str, meta: &ParseNestedMeta<'_>, cx: &Ctxt) -> bool {
        if self.0.insert(key.to_owned()) {
            return true;
        }
        cx.error(
            meta.path.span_or_call_site(),
            format!("`{key}` is given more than once"),
        );
        false
    }
}

/// Parses `key(...)` (or a bare `key`), checking each inner key against `valid`.
fn nested(
    meta: &ParseNestedMeta<'_>,
    cx: &Ctxt,
    outer: &str,
    valid: &[&str],
    mut each: impl FnMut(&str, &ParseNestedMeta<'_>) -> syn::Result<()>,
) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        cx.error(
            meta.path.span_or_call_site(),
            format!(
                "`{outer}` takes a list, such as `{outer}({} = ...)`, or nothing",
                valid[0]
            ),
        );
        return skip_value(meta);
    }
    if !meta.input.peek(syn::token::Paren) {
        return Ok(());
    }
    let mut seen = Seen::default();
    meta.parse_nested_meta(|inner| {
        let key = key_of(&inner);
        if !valid.contains(&key.as_str()) {
            cx.error(
                inner.path.span_or_call_site(),
                format!(
                    "unknown argument `{key}` in `{outer}(...)`; valid arguments are: {}",
                    valid.join(", ")
                ),
            );
            return skip_value(&inner);
        }
        if !seen.first(&key, &inner, cx) {
            return skip_value(&inner);
        }
        each(&key, &inner)
    })
}

/// Consumes whatever value follows a key, so parsing can go on after an error.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.input.parse::<Token![=]>()?;
        meta.input.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

/// The expression after `key =`, or an error on the key if there is none.
fn value(meta: &ParseNestedMeta<'_>, cx: &Ctxt, expected: &str) -> syn::Result<Option<Expr>> {
    if !meta.input.peek(Token![=]) {
        cx.error(
            meta.path.span_or_call_site(),
            format!(
                "`{}` needs a value: `{} = {expected}`",
                key_of(meta),
                key_of(meta)
            ),
        );
        skip_value(meta)?;
        return Ok(None);
    }
    meta.input.parse::<Token![=]>()?;
    Ok(Some(meta.input.parse()?))
}

fn string(meta: &ParseNestedMeta<'_>, cx: &Ctxt) -> syn::Result<Option<LitStr>> {
    Ok(match value(meta, cx, "\"...\"")? {
        None => None,
        Some(Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        })) => Some(s),
        Some(other) => {
            cx.error(
                syn::spanned::Spanned::span(&other),
                format!("`{}` takes a string literal", key_of(meta)),
            );
            None
        }
    })
}

/// One of `choices`, by its name in a string literal; an unknown name is an error on the
/// literal that lists the valid ones.
fn choice<T: Copy>(
    meta: &ParseNestedMeta<'_>,
    cx: &Ctxt,
    choices: &[(&str, T)],
) -> syn::Result<Option<T>> {
    let Some(s) = string(meta, cx)? else {
        return Ok(None);
    };
    let value = s.value();
    if let Some((_, choice)) = choices.iter().find(|(name, _)| *name == value) {
        return Ok(Some(*choice));
    }
    let names: Vec<String> = choices
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect();
    let (last, rest) = names.split_last().expect("at least one choice");
    cx.error(
        s.span(),
        format!(
            "unknown {} policy `{value}`; use {} or {last}",
            key_of(meta),
            rest.join(", ")
        ),
    );
    Ok(None)
}

fn duration(meta: &ParseNestedMeta<'_>, cx: &Ctxt) -> syn::Result<Option<(Duration, Span)>> {
    let Some(s) = string(meta, cx)? else {
        return Ok(None);
    };
    match parse_duration(&s.value()) {
        Ok(d) => Ok(Some((d, s.span()))),
        Err(e) => {
            cx.error(s.span(), e);
            Ok(None)
        }
    }
}

fn int(meta: &ParseNestedMeta<'_>, cx: &Ctxt) -> syn::Result<Option<Spanned<u32>>> {
    Ok(match value(meta, cx, "3")? {
        None => None,
        Some(Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        })) => match i.base10_parse::<u32>() {
            Ok(value) => Some(Spanned {
                value,
                span: i.span(),
            }),
            Err(e) => {
                cx.push(e);
                None
            }
        },
        Some(other) => {
            cx.error(
                syn::spanned::Spanned::span(&other),
                format!("`{}` takes an integer", key_of(meta)),
            );
            None
        }
    })
}

fn float(meta: &ParseNestedMeta<'_>, cx: &Ctxt) -> syn::Result<Option<Spanned<f64>>> {
    let parsed = match value(meta, cx, "2.0")? {
        None => return Ok(None),
        Some(Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        })) => f.base10_parse::<f64>().map(|v| (v, f.span())),
        Some(Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        })) => i.base10_parse::<f64>().map(|v| (v, i.span())),
        Some(other) => {
            cx.error(
                syn::spanned::Spanned::span(&other),
                format!("`{}` takes a number", key_of(meta)),
            );
            return Ok(None);
        }
    };
    Ok(match parsed {
        Ok((value, span)) => Some(Spanned { value, span }),
        Err(e) => {
            cx.push(e);
            None
        }
    })
}

fn path(meta: &ParseNestedMeta<'_>, cx: &Ctxt) -> syn::Result<Option<Path>> {
    Ok(match value(meta, cx, "path::to::fn")? {
        None => None,
        Some(Expr::Path(p)) => Some(p.path),
        Some(other) => {
            cx.error(
                syn::spanned::Spanned::span(&other),
                format!("`{}` takes a path to a fn", key_of(meta)),
            );
            None
        }
    })
}

/// The input of `job!(path::to::fn)`.
pub(crate) struct JobPath(pub(crate) Path);

impl Parse for JobPath {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let path = input.parse()?;
        let _: Option<Token![,]> = input.parse()?;
        Ok(Self(path))
    }
}

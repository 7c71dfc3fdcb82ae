//! Fuzzes the argument parser of `#[scheduled(...)]`.
//!
//! `tickguard-macros` is a proc-macro crate, which cannot be linked into a fuzzer, so this
//! target compiles the attribute's own parser modules (`args.rs`, `ctxt.rs`, `validate.rs`)
//! by path, unchanged. The input (lossy UTF-8) is lexed into a `proc_macro2::TokenStream`,
//! as the compiler would hand it to the attribute, and given to `Args::parse` and then
//! `validate::arguments`; every error is rendered as the attribute renders it. Also fuzzes
//! the input of `job!(...)`. Outside a compiler, proc-macro2 uses its own lexer and spans.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use proc_macro2::TokenStream;

#[allow(dead_code, unreachable_pub)]
#[path = "../../macros/src/args.rs"]
mod args;
#[allow(dead_code, unreachable_pub)]
#[path = "../../macros/src/ctxt.rs"]
mod ctxt;
#[allow(dead_code, unreachable_pub)]
#[path = "../../macros/src/validate.rs"]
mod validate;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(tokens) = TokenStream::from_str(&text) else {
        return;
    };
    let _ = syn::parse2::<args::JobPath>(tokens.clone());

    let cx = ctxt::Ctxt::default();
    let parsed = args::Args::parse(tokens, &cx);
    validate::arguments(&parsed, &cx);
    if let Some(errors) = cx.into_compile_errors() {
        // A recorded error always renders as at least one `compile_error!`.
        assert!(!errors.is_empty());
    }
});

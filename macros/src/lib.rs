//! The `#[scheduled]` attribute of [tickguard](https://docs.rs/tickguard).
//!
//! Depend on `tickguard`, which re-exports this crate's macros and documents them; this
//! crate's version is pinned to the runtime's.

mod args;
mod ctxt;
mod expand;
mod validate;

use proc_macro::TokenStream;
use quote::quote;
use syn::ItemFn;

/// Declares a scheduled job. Documented in `tickguard`, which re-exports it.
#[proc_macro_attribute]
pub fn scheduled(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            // Not a fn: say so, and give back the item so its own errors stay meaningful.
            let e = syn::Error::new(e.span(), "#[scheduled] goes on an `async fn`").to_compile_error();
            return quote!(#e #item).into();
        }
    };
    let cx = ctxt::Ctxt::default();
    let parsed = args::Args::parse(args.into(), &cx);
    validate::signature(&f, &cx);
    validate::arguments(&parsed, &cx);
    match cx.into_compile_errors() {
        // On error the fn is still emitted as written, so one mistake gives one error, not a
        // cascade of "cannot find function" ones.
        Some(errors) => quote!(#errors #f).into(),
        None => expand::expand(&f, parsed).into(),
    }
}

/// Names a `#[scheduled]` fn as a `tickguard::Job`: `tickguard::job!(path::to::my_job)`.
#[proc_macro]
pub fn job(input: TokenStream) -> TokenStream {
    let args::JobPath(mut path) = syn::parse_macro_input!(input as args::JobPath);
    if let Some(last) = path.segments.last_mut() {
        last.ident = expand::def_ident(&last.ident);
    }
    quote!(::tickguard::Job::from_def(&#path)).into()
}

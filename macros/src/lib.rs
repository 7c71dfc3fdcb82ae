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
use syn::{
    Attribute, ItemFn, Signature, Token, Visibility,
    parse::{Parse, ParseStream},
};

/// Declares a scheduled job. Documented in `tickguard`, which re-exports it.
#[proc_macro_attribute]
pub fn scheduled(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => return unparsed(args.into(), item, e).into(),
    };
    let cx = ctxt::Ctxt::new();
    let parsed = args::Args::parse(args.into(), &cx);
    validate::signature(&f.sig, &cx);
    validate::arguments(&parsed, &cx);
    match cx.check() {
        // On error the fn is still emitted as written, and a stand-in description beside it,
        // so one mistake gives one error, not a cascade of "cannot find function" ones here
        // or "cannot find value" ones at a `job!(f)`.
        Some(errors) => {
            let stand_in = expand::stand_in(&f.vis, &f.sig, parsed.krate.as_ref());
            quote!(#errors #f #stand_in).into()
        }
        None => expand::expand(&f, parsed).into(),
    }
}

/// The item did not parse as a fn. A fn with a syntax error in its body is given back as
/// written, so the compiler reports that error (once, and where it is), beside the errors of
/// the arguments and the signature; so is a fn whose signature does not parse. Anything else
/// is not a fn.
fn unparsed(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
    error: syn::Error,
) -> proc_macro2::TokenStream {
    if let Ok(UnparsedBody(vis, sig)) = syn::parse2(item.clone()) {
        let cx = ctxt::Ctxt::new();
        let parsed = args::Args::parse(args, &cx);
        validate::signature(&sig, &cx);
        validate::arguments(&parsed, &cx);
        let errors = cx.check();
        let stand_in = expand::stand_in(&vis, &sig, parsed.krate.as_ref());
        return quote!(#errors #item #stand_in);
    }
    if syn::parse2::<FnHead>(item.clone()).is_ok() {
        return item;
    }
    // Not a fn: say so, and give back the item so its own errors stay meaningful.
    let e = syn::Error::new(error.span(), "#[scheduled] goes on an `async fn`").to_compile_error();
    quote!(#e #item)
}

/// A fn whose signature parses, with its body unparsed.
struct UnparsedBody(Visibility, Signature);

impl Parse for UnparsedBody {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        input.step(|cursor| match cursor.group(proc_macro2::Delimiter::Brace) {
            Some((_, _, rest)) => Ok(((), rest)),
            None => Err(cursor.error("expected the fn's body")),
        })?;
        Ok(Self(vis, sig))
    }
}

/// The start of a fn, up to its `fn` token; the rest is not parsed.
struct FnHead;

impl Parse for FnHead {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        input.call(Attribute::parse_outer)?;
        input.parse::<Visibility>()?;
        input.parse::<Option<Token![const]>>()?;
        input.parse::<Option<Token![async]>>()?;
        input.parse::<Option<Token![unsafe]>>()?;
        if input.peek(Token![extern]) {
            input.parse::<syn::Abi>()?;
        }
        input.parse::<Token![fn]>()?;
        input.parse::<proc_macro2::TokenStream>()?;
        Ok(Self)
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

//! Collects every error of one expansion, so the user sees them all at once.

use std::{cell::RefCell, fmt::Display, thread};

use proc_macro2::{Span, TokenStream};

/// The errors of one expansion. It must be [`Ctxt::check`]ed before it is dropped (it panics
/// otherwise), so that no path through the macro forgets to report what was recorded.
pub(crate) struct Ctxt {
    /// `None` once checked.
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    pub(crate) fn new() -> Self {
        Self {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    pub(crate) fn error(&self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    pub(crate) fn push(&self, error: syn::Error) {
        self.errors
            .borrow_mut()
            .as_mut()
            .expect("errors recorded after the check")
            .push(error);
    }

    /// `compile_error!`s for every error recorded, or `None` if there were none.
    pub(crate) fn check(self) -> Option<TokenStream> {
        let errors = self
            .errors
            .borrow_mut()
            .take()
            .expect("errors checked twice");
        if errors.is_empty() {
            return None;
        }
        Some(errors.into_iter().map(|e| e.to_compile_error()).collect())
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !thread::panicking() && self.errors.get_mut().is_some() {
            panic!("the errors of a #[scheduled] expansion were not checked");
        }
    }
}

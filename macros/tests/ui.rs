//! Compile-time UI tests of `#[scheduled]`: what compiles (and runs), and the errors of what
//! does not.
//!
//! The expected errors live beside each case in `macros/ui/fail/*.stderr`. They were produced
//! with the toolchain in use when they were written, rustc 1.95.0 (see `rustc --version`);
//! another rustc may word or lay out its own diagnostics differently (the macro's messages do
//! not change). To regenerate them after a change of toolchain or of the macro, run
//!
//! ```text
//! TRYBUILD=overwrite cargo test -p tickguard-macros --test ui
//! ```
//!
//! then read every changed `.stderr`: each error should point at the offending argument or
//! token, and one mistake should give one error.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}

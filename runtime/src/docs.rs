//! The manual: one module per page, each module's documentation being the page.
//!
//! Start with the [crate's front page](crate), which follows one guarded execution step by
//! step; every argument of the attribute is on [`#[scheduled]`](crate::scheduled). The
//! pages below go deeper: [`semantics`] is the reference for what tickguard promises,
//! [`locks`] and [`stores`] describe the backends, [`observability`] the metrics, dashboard
//! and alerts, [`operations`] is the runbook, [`cli`] the `tickguard` command's manual and
//! [`console`] the web console's.
//!
//! The same pages are in the repository's `docs/` directory, to be read on GitHub.

// One `pub mod` per page of docs/, written by build.rs.
include!(concat!(env!("OUT_DIR"), "/docs_pages.rs"));

//! The boxed future the backend traits return.

use std::{future::Future, pin::Pin};

/// A boxed, sendable future, as the backend traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

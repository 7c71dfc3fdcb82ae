//! The conversions the SQL stores share.

use std::time::Duration;

use crate::store::{ExecutionRef, Status, StoreError};

/// A duration in whole milliseconds, rounded up, as SQL stores it.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX)
}

/// A fence as stored (`bigint`) back to the fence. Fences start at 1 and only grow.
pub(super) fn fence(stored: i64) -> u64 {
    stored.unsigned_abs()
}

/// A fence as stored.
pub(crate) fn db_fence(fence: u64) -> i64 {
    i64::try_from(fence).unwrap_or(i64::MAX)
}

/// A `status` column's value; a text that names no status is a decoding error.
pub(super) fn status(text: &str) -> Result<Status, sqlx::Error> {
    text.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The error of a write refused because `exec` lost its execution to a newer claim.
pub(crate) fn fenced(exec: &ExecutionRef) -> StoreError {
    StoreError::Fenced {
        execution_id: exec.execution_id.clone(),
        fence: exec.fence,
    }
}

//! The claim decision every store makes, with no I/O: from the rows a claim read (this
//! execution's row, and the job's live running one), what the claim does.
//!
//! The stores read those rows under their job's lock (a mutex, a row lock, SQLite's write
//! lock), call [`decide`], and run only the statements its [`Outcome`] needs.

use crate::store::{ClaimRequest, Status};

/// An execution row a claim read: this execution's, or the job's running one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SeenRow<'a> {
    /// The execution's id.
    pub(crate) id: &'a str,
    /// Its state.
    pub(crate) status: Status,
    /// The owner of its last claim.
    pub(crate) owner: &'a str,
    /// Whether it is running and its owner heartbeated within the request's liveness.
    pub(crate) live: bool,
}

/// What a claim does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome<'a> {
    /// The tick already ran to its end: report it done, change nothing.
    Done(Status),
    /// Another execution (or another run of this one) is live: report it, change nothing.
    Busy(&'a str),
    /// An earlier try of this very claim committed before its answer was lost: the row is
    /// this claim's, at the fence it already holds.
    Own,
    /// Bump the fence, abandon the job's other running rows, and insert the execution or
    /// take it over (`resumed` when its row existed).
    Take {
        /// Whether the execution's row existed before.
        resumed: bool,
    },
}

/// Decides a claim.
///
/// - `retry`: whether an earlier try of this very request may have committed (its
///   connection died before the answer came back). Only then may a live row with this
///   request's owner be its own; on a first try such a row is another run's (two runs whose
///   owner strings happen to be equal) and the claim is busy.
/// - `rows`: what the store read: this execution's row (any status) and the job's running
///   rows, in any order.
pub(crate) fn decide<'a>(
    request: &ClaimRequest<'_>,
    retry: bool,
    rows: &[SeenRow<'a>],
) -> Outcome<'a> {
    let existing = rows.iter().find(|row| row.id == request.execution_id);
    if let Some(row) = existing
        && request.idempotent
        && row.status.is_final()
    {
        return Outcome::Done(row.status);
    }
    // This execution's own row first: a retried claim finds itself before any other.
    let live = existing
        .filter(|row| row.live)
        .or_else(|| rows.iter().find(|row| row.live));
    if let Some(row) = live {
        if retry && row.id == request.execution_id && row.owner == request.owner {
            return Outcome::Own;
        }
        return Outcome::Busy(row.id);
    }
    Outcome::Take {
        resumed: existing.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    const ID: &str = "job@1";

    fn request(idempotent: bool) -> ClaimRequest<'static> {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        ClaimRequest::new("job", ID, at, "me#1").idempotent(idempotent)
    }

    fn row(id: &'static str, status: Status, owner: &'static str, live: bool) -> SeenRow<'static> {
        SeenRow {
            id,
            status,
            owner,
            live,
        }
    }

    #[test]
    fn a_new_execution_is_taken() {
        for idempotent in [true, false] {
            assert_eq!(
                decide(&request(idempotent), false, &[]),
                Outcome::Take { resumed: false }
            );
        }
    }

    #[test]
    fn a_final_row_is_done_only_for_idempotent_claims() {
        for status in [Status::Completed, Status::Failed, Status::TimedOut] {
            let rows = [row(ID, status, "other", false)];
            assert_eq!(decide(&request(true), false, &rows), Outcome::Done(status));
            assert_eq!(
                decide(&request(false), false, &rows),
                Outcome::Take { resumed: true }
            );
        }
    }

    #[test]
    fn a_done_tick_wins_over_a_live_other_execution() {
        let rows = [
            row("job@0", Status::Running, "other", true),
            row(ID, Status::Completed, "other", false),
        ];
        assert_eq!(
            decide(&request(true), false, &rows),
            Outcome::Done(Status::Completed)
        );
    }

    #[test]
    fn a_cancelled_or_dead_row_is_resumed() {
        for status in [Status::Cancelled, Status::Running] {
            let rows = [row(ID, status, "other", false)];
            assert_eq!(
                decide(&request(true), false, &rows),
                Outcome::Take { resumed: true }
            );
        }
    }

    #[test]
    fn a_live_row_makes_the_claim_busy() {
        let this = [row(ID, Status::Running, "other", true)];
        assert_eq!(decide(&request(true), false, &this), Outcome::Busy(ID));
        let other = [row("job@0", Status::Running, "other", true)];
        assert_eq!(
            decide(&request(true), false, &other),
            Outcome::Busy("job@0")
        );
        let dead_other = [row("job@0", Status::Running, "other", false)];
        assert_eq!(
            decide(&request(false), false, &dead_other),
            Outcome::Take { resumed: false }
        );
    }

    #[test]
    fn only_a_retry_finds_its_own_row() {
        let mine = [row(ID, Status::Running, "me#1", true)];
        assert_eq!(decide(&request(true), true, &mine), Outcome::Own);
        // A first try never wrote a row: an equal owner is another run's.
        assert_eq!(decide(&request(true), false, &mine), Outcome::Busy(ID));
        // Another owner's live row is never this claim's, retried or not.
        let theirs = [row(ID, Status::Running, "me#2", true)];
        assert_eq!(decide(&request(true), true, &theirs), Outcome::Busy(ID));
        // Nor another execution's row with an equal owner.
        let other = [row("job@0", Status::Running, "me#1", true)];
        assert_eq!(decide(&request(true), true, &other), Outcome::Busy("job@0"));
    }
}

//! The claim decision every store makes, with no I/O: from the rows a claim read (this
//! execution's row, and the job's live running one), what the claim does.
//!
//! The stores read those rows under their job's lock (a mutex, a row lock, SQLite's write
//! lock), call [`decide`], and run only the statements its [`Outcome`] needs.

use std::time::Duration;

use crate::store::{ClaimRequest, Status};

/// How far ahead of the store's clock a tick may be claimed: an instance whose clock runs
/// faster than that would otherwise start a tick's work early (the store refuses it with
/// [`Claim::Early`](crate::store::Claim::Early)). Clocks kept by NTP differ by milliseconds.
pub(crate) const EARLY_TOLERANCE: Duration = Duration::from_secs(1);

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
    /// Whether someone asked it to stop ([`ExecutionStore::request_cancel`]): once its run
    /// is over, it is final.
    ///
    /// [`ExecutionStore::request_cancel`]: crate::store::ExecutionStore::request_cancel
    pub(crate) cancel_requested: bool,
}

/// What a claim does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome<'a> {
    /// The tick already ran to its end: report it done, change nothing.
    Done(Status),
    /// The tick is not due yet by the store's clock: refuse it, change nothing.
    Early,
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
/// - `due`: whether the tick is due by the store's clock (within [`EARLY_TOLERANCE`]).
/// - `rows`: what the store read: this execution's row (any status) and the job's running
///   rows, in any order.
pub(crate) fn decide<'a>(
    request: &ClaimRequest<'_>,
    retry: bool,
    due: bool,
    rows: &[SeenRow<'a>],
) -> Outcome<'a> {
    let existing = rows.iter().find(|row| row.id == request.execution_id);
    if let Some(row) = existing
        && request.idempotent
        && row.status.is_final()
    {
        return Outcome::Done(row.status);
    }
    // Asked to stop, and its run is over (or its owner gone): never resumed, whatever the
    // job. A live run with a request is busy until it stops.
    if let Some(row) = existing
        && row.cancel_requested
        && !row.live
    {
        return Outcome::Done(match row.status {
            Status::Running | Status::Pending => Status::Cancelled,
            status => status,
        });
    }
    if !due {
        return Outcome::Early;
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
    // A pending row is a tick of the ledger that no run claimed yet: nothing to resume.
    Outcome::Take {
        resumed: existing.is_some_and(|row| row.status != Status::Pending),
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
            cancel_requested: false,
        }
    }

    fn asked_to_stop(row: SeenRow<'static>) -> SeenRow<'static> {
        SeenRow {
            cancel_requested: true,
            ..row
        }
    }

    #[test]
    fn an_execution_asked_to_stop_is_never_resumed() {
        for idempotent in [true, false] {
            // Its run recorded CANCELLED, or its owner died before it could.
            for (status, done) in [
                (Status::Cancelled, Status::Cancelled),
                (Status::Running, Status::Cancelled),
                (Status::Failed, Status::Failed),
            ] {
                let rows = [asked_to_stop(row(ID, status, "other", false))];
                assert_eq!(
                    decide(&request(idempotent), false, true, &rows),
                    Outcome::Done(done)
                );
            }
        }
        // A live run asked to stop keeps the job busy until it has.
        let live = [asked_to_stop(row(ID, Status::Running, "other", true))];
        assert_eq!(
            decide(&request(true), false, true, &live),
            Outcome::Busy(ID)
        );
        // Another execution asked to stop, whose owner died, is abandoned by the claim.
        let other = [asked_to_stop(row("job@0", Status::Running, "other", false))];
        assert_eq!(
            decide(&request(true), false, true, &other),
            Outcome::Take { resumed: false }
        );
    }

    #[test]
    fn a_new_execution_is_taken() {
        for idempotent in [true, false] {
            assert_eq!(
                decide(&request(idempotent), false, true, &[]),
                Outcome::Take { resumed: false }
            );
        }
    }

    #[test]
    fn a_final_row_is_done_only_for_idempotent_claims() {
        for status in [Status::Completed, Status::Failed, Status::TimedOut] {
            let rows = [row(ID, status, "other", false)];
            assert_eq!(
                decide(&request(true), false, true, &rows),
                Outcome::Done(status)
            );
            assert_eq!(
                decide(&request(false), false, true, &rows),
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
            decide(&request(true), false, true, &rows),
            Outcome::Done(Status::Completed)
        );
    }

    #[test]
    fn a_cancelled_or_dead_row_is_resumed() {
        for status in [Status::Cancelled, Status::Running] {
            let rows = [row(ID, status, "other", false)];
            assert_eq!(
                decide(&request(true), false, true, &rows),
                Outcome::Take { resumed: true }
            );
        }
    }

    #[test]
    fn a_pending_row_is_taken_as_new_and_a_skipped_one_is_done() {
        let pending = [row(ID, Status::Pending, "other", false)];
        assert_eq!(
            decide(&request(true), false, true, &pending),
            Outcome::Take { resumed: false }
        );
        let skipped = [row(ID, Status::Skipped, "other", false)];
        assert_eq!(
            decide(&request(true), false, true, &skipped),
            Outcome::Done(Status::Skipped)
        );
    }

    #[test]
    fn a_tick_not_due_by_the_store_clock_is_early_unless_done() {
        assert_eq!(decide(&request(true), false, false, &[]), Outcome::Early);
        let pending = [row(ID, Status::Pending, "other", false)];
        assert_eq!(
            decide(&request(true), false, false, &pending),
            Outcome::Early
        );
        let done = [row(ID, Status::Completed, "other", false)];
        assert_eq!(
            decide(&request(true), false, false, &done),
            Outcome::Done(Status::Completed)
        );
    }

    #[test]
    fn a_live_row_makes_the_claim_busy() {
        let this = [row(ID, Status::Running, "other", true)];
        assert_eq!(
            decide(&request(true), false, true, &this),
            Outcome::Busy(ID)
        );
        let other = [row("job@0", Status::Running, "other", true)];
        assert_eq!(
            decide(&request(true), false, true, &other),
            Outcome::Busy("job@0")
        );
        let dead_other = [row("job@0", Status::Running, "other", false)];
        assert_eq!(
            decide(&request(false), false, true, &dead_other),
            Outcome::Take { resumed: false }
        );
    }

    #[test]
    fn only_a_retry_finds_its_own_row() {
        let mine = [row(ID, Status::Running, "me#1", true)];
        assert_eq!(decide(&request(true), true, true, &mine), Outcome::Own);
        // A first try never wrote a row: an equal owner is another run's.
        assert_eq!(
            decide(&request(true), false, true, &mine),
            Outcome::Busy(ID)
        );
        // Another owner's live row is never this claim's, retried or not.
        let theirs = [row(ID, Status::Running, "me#2", true)];
        assert_eq!(
            decide(&request(true), true, true, &theirs),
            Outcome::Busy(ID)
        );
        // Nor another execution's row with an equal owner.
        let other = [row("job@0", Status::Running, "me#1", true)];
        assert_eq!(
            decide(&request(true), true, true, &other),
            Outcome::Busy("job@0")
        );
    }
}

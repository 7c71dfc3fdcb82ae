//! The `order_charges` example on a PostgreSQL schema: the worker is SIGKILLed after the
//! payment provider took order 3's charge and before the order was marked charged; the
//! restarted worker resumes the day's execution, the provider answers its repeated request
//! with the charge already taken, and every order ends charged exactly once and marked so.
//!
//! ```text
//! cargo build -p tickguard-examples --example order_charges
//! cargo test -p tickguard-examples --test order_charges
//! ```

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

use std::time::Duration;

use support::{Example, drop_scratch, runtime};
use tickguard::sqlx::{self, AssertSqlSafe};
use tickguard_tests::{postgres_url, scratch_schema};

const NAME: &str = "order_charges";

/// An order, its status and the charge it was marked with, the charge the provider took for
/// it, and how many requests the provider had for it.
type OrderRow = (i64, String, Option<String>, Option<String>, i64);

#[test]
fn a_worker_killed_between_the_charge_and_the_update_charges_each_order_once() {
    let runtime = runtime();
    let (schema, dir, store) = runtime.block_on(scratch_schema(NAME, &[]));
    let pool = store.pool();
    let url = postgres_url();
    let args = ["60", "--postgres", &url, "--namespace", &schema];
    let mut first = Example::start(NAME, "first worker", &dir, &args, &[]);
    let taken = first.wait_for("order 3's charge", Duration::from_secs(8), |l| {
        l.message() == "payment provider: charge taken" && l.json["fields"]["order"] == 3
    });
    first.signal("KILL");
    let key = taken.field("idempotency_key").unwrap();
    let charge_id = taken.field("charge_id").unwrap();
    first.exit(Duration::from_secs(5));
    let status: (String, Option<String>) = runtime
        .block_on(
            sqlx::query_as(AssertSqlSafe(format!(
                "SELECT status, charge_id FROM \"{schema}\".orders WHERE id = 3"
            )))
            .fetch_one(pool),
        )
        .unwrap();
    assert_eq!(
        status,
        ("open".to_owned(), None),
        "killed between the charge and the update"
    );

    let mut second = Example::start(NAME, "second worker", &dir, &args, &[]);
    let duplicate = "payment provider: duplicate request, the charge already taken is returned";
    let repeated = second.wait_for(duplicate, Duration::from_secs(12), |l| {
        l.message() == duplicate
    });
    assert_eq!(repeated.field("idempotency_key"), Some(key), "{repeated:?}");
    assert_eq!(repeated.field("charge_id"), Some(charge_id), "{repeated:?}");
    second.wait_for("orders charged", Duration::from_secs(5), |l| {
        l.message() == "orders charged"
    });
    second.signal("TERM");
    assert!(second.exit(Duration::from_secs(10)).success());
    let charging = second.seen("charging orders");
    assert!(
        !charging.is_empty() && charging.iter().all(|l| l.json["fields"]["due"] == 3),
        "orders 3, 4, 5 were left: {charging:?}"
    );

    // Each order: one charge at the provider, the order marked charged with that charge.
    let orders: Vec<OrderRow> = runtime
        .block_on(
            sqlx::query_as(AssertSqlSafe(format!(
        "SELECT o.id, o.status, o.charge_id, c.charge_id, c.requests \
         FROM \"{schema}\".orders o JOIN \"{schema}\".payment_provider_charges c ON c.order_id = o.id \
         ORDER BY o.id"
            )))
            .fetch_all(pool),
        )
        .unwrap();
    assert_eq!(orders.len(), 5, "one charge per order: {orders:?}");
    for (id, status, marked, charged, requests) in &orders {
        assert_eq!(status, "charged", "order {id}: {orders:?}");
        assert_eq!(
            marked, charged,
            "order {id} marked with its charge: {orders:?}"
        );
        let expected = if *id == 3 { 2 } else { 1 };
        assert_eq!(*requests, expected, "order {id}'s requests: {orders:?}");
    }

    runtime.block_on(drop_scratch(&schema, &dir, pool));
}

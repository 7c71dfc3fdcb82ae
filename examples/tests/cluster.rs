//! The `cluster` example, three replicas of it run for real on a private Redis (the lock) and
//! a PostgreSQL scratch schema (the store): the replica running the rollup is killed with
//! SIGKILL mid-run; another replica takes the execution over within the lease's ttl and a
//! recovery pass, resumes it from the killed run's checkpoint, and completes the tick once;
//! `tickguard history` and `tickguard execution` show the takeover.
//!
//! (`examples/cluster/run.sh` does the same with Prometheus scraping the replicas; this
//! test leaves Prometheus out to stay short.)
//!
//! ```text
//! cargo build -p tickguard-cli && cargo test -p tickguard-examples --test cluster
//! ```

mod support;

use std::time::Duration;

use support::{Example, Line, drop_scratch, seconds, tickguard, tickguard_json, wait_any};
use tickguard_tests::{RedisServer, free_port, postgres_url, scratch_schema};

const NAME: &str = "cluster";
/// The rollup's lease (`lock(ttl = "3s")`) and the replicas' liveness (3 s).
const TTL: f64 = 3.0;
const LIVENESS: f64 = 3.0;

fn started(line: &Line) -> bool {
    line.message() == "execution started" && line.field("job").as_deref() == Some("rollup")
}

#[test]
fn a_killed_replica_s_rollup_is_taken_over_resumed_and_completed_once() {
    let runtime = support::runtime();
    let redis_port = free_port();
    let _redis = runtime.block_on(RedisServer::start(redis_port));
    let (schema, dir, scratch) = runtime.block_on(scratch_schema("tg_example_cluster", &[]));
    let (postgres, redis) = (postgres_url(), format!("redis://127.0.0.1:{redis_port}"));
    let replicas: Vec<Example> = (1..=3)
        .map(|i| {
            let instance = format!("replica-{i}");
            let args = [
                "60",
                "--postgres",
                &postgres,
                "--redis",
                &redis,
                "--namespace",
                &schema,
            ];
            Example::start(
                NAME,
                &instance,
                &dir,
                &[&args[..], &["--instance", &instance]].concat(),
                &[],
            )
        })
        .collect();
    let all: Vec<&Example> = replicas.iter().collect();
    for replica in &all {
        replica.wait_for("start", Duration::from_secs(10), |l| {
            l.message() == "scheduler started"
        });
    }

    // A tick's rollup starts on one replica; it is killed after three batches.
    let (victim, first) = wait_any(&all, "rollup", Duration::from_secs(12), |l| {
        started(l) && l.field("previous_attempts").as_deref() == Some("0")
    });
    let id = first.field("execution_id").expect("the execution's id");
    let victim_id = first.field("instance_id").expect("the replica's id");
    let checkpointed = all[victim].wait_for("third batch", Duration::from_secs(5), |l| {
        l.message() == "batch rolled up" && l.field("batch").as_deref() == Some("3")
    });
    all[victim].signal("KILL");
    let killed_at = chrono::Utc::now();
    // The last checkpoint the killed run logged before it died.
    let last_batch = all[victim]
        .lines(|l| l.message() == "batch rolled up")
        .iter()
        .filter_map(|l| l.field("batch")?.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    assert!(
        (3..10).contains(&last_batch),
        "killed mid-run: {last_batch}"
    );

    // Another replica takes it over: within the ttl (the lease expires), plus one recovery
    // pass (every third of the liveness, at most 1.25 times that).
    let others: Vec<&Example> = (0..3).filter(|&i| i != victim).map(|i| all[i]).collect();
    let (taker, takeover) = wait_any(&others, "takeover", Duration::from_secs(10), |l| {
        started(l) && l.field("execution_id").as_deref() == Some(id.as_str())
    });
    let waited = (takeover.at - killed_at).as_seconds_f64();
    let bound = TTL + 1.25 * LIVENESS / 3.0 + 0.75;
    eprintln!("{id}: {victim_id} killed, taken over {waited:.2} s later");
    assert!(
        waited <= bound,
        "taken over {waited:.2} s after the kill, expected within {bound:.2} s"
    );
    let fence = |l: &Line| l.field("fence").and_then(|f| f.parse::<u64>().ok());
    assert!(
        fence(&takeover) > fence(&first),
        "a higher fence: {takeover:?}"
    );
    let taker_id = takeover.field("instance_id").expect("the replica's id");
    assert_ne!(taker_id, victim_id);

    // It resumes from the checkpoint and completes the tick.
    let resumed = others[taker].wait_for("resume", Duration::from_secs(2), |l| {
        l.message().starts_with("rollup starting at batch") && l.at >= takeover.at
    });
    assert_eq!(
        resumed.field("start"),
        Some(last_batch.to_string()),
        "resumed from the last checkpoint"
    );
    others[taker].wait_for("completion", Duration::from_secs(6), |l| {
        l.is("execution finished", &id) && l.field("status").as_deref() == Some("COMPLETED")
    });
    assert!(
        seconds(&checkpointed, &takeover) > 0.0,
        "the takeover came after the kill"
    );

    // The store: the tick has one execution, completed by the taker after the victim's run
    // was abandoned; `tickguard history` shows it.
    let store = postgres.as_str();
    let history = tickguard_json(store, Some(&schema), &["history", "rollup"]);
    let of_tick: Vec<_> = history["executions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["id"] == id.as_str())
        .collect();
    assert_eq!(of_tick.len(), 1, "{history}");
    assert_eq!(of_tick[0]["status"], "COMPLETED", "{history}");
    // An owner is `{instance}#{run}`.
    let instance = |owner: &serde_json::Value| {
        let owner = owner.as_str().unwrap_or_default();
        owner.split('#').next().unwrap_or_default().to_owned()
    };
    assert_eq!(instance(&of_tick[0]["owner"]), taker_id, "{history}");
    let execution = tickguard_json(store, Some(&schema), &["execution", &id]);
    let runs: Vec<(String, String)> = execution["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|run| {
            let outcome = run["outcome"].as_str().unwrap_or_default().to_owned();
            (instance(&run["owner"]), outcome)
        })
        .collect();
    assert_eq!(
        runs,
        [
            (victim_id.clone(), "ABANDONED".to_owned()),
            (taker_id.clone(), "COMPLETED".to_owned())
        ],
        "{execution}"
    );
    let table = tickguard(store, Some(&schema), &["execution", &id]);
    assert!(
        table.contains("ABANDONED") && table.contains(&taker_id),
        "{table}"
    );
    drop(replicas);
    runtime.block_on(drop_scratch(&schema, &dir, scratch.pool()));
}

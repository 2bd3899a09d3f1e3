//! Membership that fails safe: while the RocketMQ broker is down, the member list cannot be
//! read, and every worker must keep its last good list instead of computing a ring of one and
//! running every task; after the broker returns, no task runs on two workers for longer than
//! one membership poll (1 s). (Its own test binary: stopping the broker disturbs every test
//! running beside it.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ferry_tests::cluster::{all_running, cluster};
use ferry_tests::{Worker, brokers, unique};
use serde_json::json;

/// One membership poll, plus the time a worker takes to stop a task it no longer owns and
/// this test's sampling (every worker is asked in turn).
const OVERLAP_ALLOWED: Duration = Duration::from_millis(1000 + 1500);

/// (connector task) -> the workers that say they run it now.
fn runners(workers: &[Worker], connector: &str) -> BTreeMap<u64, BTreeSet<String>> {
    let mut runners: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for w in workers {
        let (code, local) = w.request("GET", "/getAllocatedTask", None);
        assert_eq!(code, 200, "{}: {local}", w.worker_id);
        for t in local.as_array().unwrap() {
            if t["connector"] == connector {
                runners
                    .entry(t["task"].as_u64().unwrap())
                    .or_default()
                    .insert(w.worker_id.clone());
            }
        }
    }
    runners
}

/// Samples `runners` for `period`; returns the longest stretch during which some task ran on
/// two workers at once, and the worst sample.
fn longest_overlap(
    workers: &[Worker],
    connector: &str,
    period: Duration,
) -> (Duration, BTreeMap<u64, BTreeSet<String>>) {
    let end = Instant::now() + period;
    let (mut longest, mut since, mut worst) = (Duration::ZERO, None::<Instant>, BTreeMap::new());
    while Instant::now() < end {
        let sample = runners(workers, connector);
        if sample.values().any(|w| w.len() > 1) {
            let start = *since.get_or_insert_with(Instant::now);
            if start.elapsed() >= longest {
                longest = start.elapsed();
                worst = sample;
            }
        } else {
            since = None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (longest, worst)
}

#[test]
fn a_broker_outage_never_makes_a_worker_take_every_task() {
    let (_name, workers) = cluster(3, &["datagen"]);
    let connector = unique("gen");
    workers[0].create(
        &connector,
        json!({"connector-class": "datagen", "datagen.topic": unique("out-t"), "datagen.rate": "60", "tasks.num": "9"}),
    );
    let placed = all_running(&workers[0], &connector, 9, Duration::from_secs(30));
    // (The ring decides the spread from the generated names; two owners already make a task
    // on two workers observable.)
    assert!(
        placed.values().collect::<BTreeSet<_>>().len() >= 2,
        "9 tasks on one worker: {placed:?}"
    );
    let before = runners(&workers, &connector);

    brokers("rocketmq-broker-down");
    // While it is down (long enough for several membership polls to fail), nobody grows.
    let (overlap, worst) = longest_overlap(&workers, &connector, Duration::from_secs(6));
    let during = runners(&workers, &connector);
    brokers("rocketmq-broker-up");
    assert_eq!(
        overlap,
        Duration::ZERO,
        "with the broker down, tasks ran on two workers: {worst:?}"
    );
    assert_eq!(
        during, before,
        "the allocation changed while the broker was down"
    );

    // Back: the workers' connections and heartbeats return one by one; a partial member list
    // must not make two workers run one task for longer than a poll.
    let (overlap, worst) = longest_overlap(&workers, &connector, Duration::from_secs(20));
    assert!(
        overlap <= OVERLAP_ALLOWED,
        "after the broker returned, a task ran on two workers for {overlap:?}: {worst:?}"
    );
    let after = all_running(&workers[1], &connector, 9, Duration::from_secs(30));
    assert_eq!(after, placed, "the allocation after the outage differs");
    println!(
        "broker outage: no task on two workers while it was down; longest overlap after it returned {overlap:?}"
    );
}

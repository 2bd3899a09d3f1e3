//! A cluster of worker processes on loopback sharing one RocketMQ: membership, allocation,
//! config sync, failover and rolling restarts. Each test uses its own `clusterName`, so the
//! internal topics and groups of parallel tests do not mix.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ferry_tests::cluster::{all_running, allocation, cluster, wait_until_members};
use ferry_tests::kafka::{self, Outgoing};
use ferry_tests::{
    Worker, assert_complete, sink_counts, temp_dir, unique, wait_for, wait_for_records,
};
use serde_json::json;

/// Tansu answers a JoinGroup after half the session timeout (DESIGN.md §7): keep it short.
const SESSION: &str = "6000";

#[test]
fn a_connector_created_on_one_worker_runs_and_shows_on_all_within_5s() {
    let (name, workers) = cluster(3, &["datagen", "file-sink"]);
    let connector = unique("gen");
    let created = Instant::now();
    workers[0].create(
        &connector,
        json!({"connector-class": "datagen", "datagen.topic": unique("cl-t"), "datagen.rate": "60", "tasks.num": "6"}),
    );
    for w in &workers[1..] {
        wait_for("the config on every worker", Duration::from_secs(5), || {
            w.request("GET", "/getConnectors", None).1[&connector]
                .is_object()
                .then_some(())
        });
    }
    let placed = all_running(&workers[2], &connector, 6, Duration::from_secs(5));
    let elapsed = created.elapsed();
    let owners: BTreeSet<&String> = placed.values().collect();
    assert!(owners.len() >= 2, "6 tasks on one worker: {placed:?}");
    // Every worker computes the same allocation, and it is where the tasks run.
    let first = allocation(&workers[0], &connector);
    assert_eq!(first, placed);
    for w in &workers[1..] {
        assert_eq!(allocation(w, &connector), first, "workers disagree");
    }
    // The tasks each worker reports running add up to the connector's six.
    let by_worker = workers[1].request("GET", "/getAllTask/true", None).1;
    let running: usize = by_worker
        .as_object()
        .unwrap()
        .values()
        .map(|tasks| {
            tasks
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter(|t| t["connector"] == connector.as_str())
                        .count()
                })
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(running, 6, "{by_worker}");
    println!(
        "cluster {name}: created on one worker, 6 tasks running over {} workers, visible on all in {elapsed:?}",
        owners.len()
    );

    // More tasks: only the new ones start (file-sink's task configs do not depend on the count).
    let view = unique("view");
    workers[1].create(
        &view,
        json!({"connector-class": "file-sink", "rocketmq.topics": unique("cl-v"), "file.dir": temp_dir("cl-v").to_str().unwrap(), "tasks.num": "2"}),
    );
    all_running(&workers[0], &view, 2, Duration::from_secs(10));
    let started = |w: &Worker| -> Vec<i64> {
        w.status(&view)["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["started_at_ms"].as_i64().unwrap_or(0))
            .collect()
    };
    let before = started(&workers[0]);
    let (code, body) = workers[2].request("GET", &format!("/connectors/taskNum/{view}/4"), None);
    assert_eq!(code, 200, "{body}");
    all_running(&workers[0], &view, 4, Duration::from_secs(10));
    let after = started(&workers[0]);
    assert_eq!(
        after[..2],
        before[..],
        "tasks 0 and 1 were restarted by the task count change"
    );

    // A second worker with a live worker's id is refused.
    let duplicate = Worker::prepare(&["datagen"], &name, &format!("{name}-w1"));
    let (code, stderr) = duplicate.run_to_exit();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("workerId `{name}-w1`")),
        "{stderr}"
    );
}

#[test]
fn a_fourth_worker_takes_about_a_quarter_of_24_tasks() {
    let (name, mut workers) = cluster(3, &["datagen"]);
    let connector = unique("gen24");
    workers[0].create(
        &connector,
        json!({"connector-class": "datagen", "datagen.topic": unique("cl24"), "datagen.rate": "24", "tasks.num": "24"}),
    );
    let before = all_running(&workers[0], &connector, 24, Duration::from_secs(30));
    workers.push(Worker::start_in_cluster(
        &["datagen"],
        &name,
        &format!("{name}-w3"),
    ));
    wait_until_members(&workers, 4);
    let newcomer = format!("{name}-w3");
    let after = wait_for(
        "the newcomer's tasks running",
        Duration::from_secs(30),
        || {
            let after = all_running(&workers[1], &connector, 24, Duration::from_secs(30));
            after.values().any(|w| *w == newcomer).then_some(after)
        },
    );
    let moved: Vec<u64> = before
        .iter()
        .filter(|(t, w)| after[*t] != **w)
        .map(|(t, _)| *t)
        .collect();
    assert!(
        moved.iter().all(|t| after[t] == newcomer),
        "tasks moved between old workers: before {before:?} after {after:?}"
    );
    // About 6 of 24 (1/4): the exact share depends on where the generated worker names fall
    // on the ring (binomial-like spread; 1 was seen once in CI), so the bound checks the shape
    // (some move, all to the newcomer, never half), and the allocator's unit tests check the
    // ratio over 2,400 tasks.
    assert!(
        (1..=12).contains(&moved.len()),
        "{} of 24 tasks moved (expect about 6)",
        moved.len()
    );
    // Removing it again moves back exactly those tasks.
    workers.pop().unwrap().stop();
    let restored = wait_for(
        "its tasks back on the three",
        Duration::from_secs(30),
        || {
            let now = all_running(&workers[0], &connector, 24, Duration::from_secs(30));
            (!now.values().any(|w| *w == newcomer)).then_some(now)
        },
    );
    assert_eq!(
        restored, before,
        "removing the fourth worker restores the old allocation"
    );
    println!(
        "24 tasks, 3 -> 4 workers: {} tasks moved (ideal 6); 4 -> 3: the same {} moved back",
        moved.len(),
        moved.len()
    );
}

fn kafka_records(from: u64, to: u64) -> impl Iterator<Item = Outgoing> {
    (from..to).map(|i| Outgoing {
        key: format!("key-{}", i % 89).into_bytes(),
        value: format!("{i} cluster-record").into_bytes(),
        headers: vec![],
        timestamp: 1_660_000_000_000 + i as i64,
    })
}

#[test]
fn sigkill_of_a_worker_fails_its_tasks_over_and_loses_nothing() {
    let plugins = ["kafka-source", "kafka-sink", "datagen", "file-sink"];
    let (_name, mut workers) = cluster(3, &plugins);
    let (k2r, r2k) = (unique("fo-k2r"), unique("fo-r2k"));
    let (k2r_total, r2k_total) = (40_000u64, 30_000u64);
    kafka::create_topic(&k2r, 4);
    kafka::create_topic(&r2k, 4);
    kafka::produce(&k2r, kafka_records(0, k2r_total / 2));
    let out = temp_dir("fo-out");
    // RocketMQ's copy of the RocketMQ -> Kafka records, so a loss names its hop.
    let r2k_out = temp_dir("fo-r2k-out");
    let (src, view, generator, sink, r2k_view) = (
        unique("src"),
        unique("view"),
        unique("gen"),
        unique("sink"),
        unique("r2k-view"),
    );
    workers[0].create(
        &src,
        json!({"connector-class": "kafka-source", "kafka.topics": k2r, "kafka.bootstrap.server": kafka::bootstrap(),
               "tasks.num": "4", "kafka.client.session.timeout.ms": SESSION}),
    );
    workers[1].create(&view, json!({"connector-class": "file-sink", "rocketmq.topics": k2r, "file.dir": out.to_str().unwrap(), "tasks.num": "2"}));
    workers[2].create(
        &generator,
        json!({"connector-class": "datagen", "datagen.topic": r2k, "datagen.count": r2k_total.to_string(), "datagen.rate": "2000", "tasks.num": "2"}),
    );
    workers[0].create(
        &sink,
        json!({"connector-class": "kafka-sink", "rocketmq.topics": r2k, "kafka.bootstrap.server": kafka::bootstrap(), "tasks.num": "2"}),
    );
    workers[1].create(&r2k_view, json!({"connector-class": "file-sink", "rocketmq.topics": r2k, "file.dir": r2k_out.to_str().unwrap(), "tasks.num": "1"}));
    // FERRY_TEST_LOG_RECORDS=1: every worker logs each record it moves (logMsgDetail), to trace
    // where a lost record stopped.
    if std::env::var_os("FERRY_TEST_LOG_RECORDS").is_some() {
        let (code, body) = workers[0].request("PUT", "/logMsgDetail/true", None);
        assert_eq!(code, 200, "logMsgDetail: {body}");
    }
    wait_for(
        "Kafka -> RocketMQ flowing",
        Duration::from_secs(120),
        || (sink_counts(&out).len() as u64 >= k2r_total / 4).then_some(()),
    );

    // Kill the worker that runs the most tasks.
    let mut share: BTreeMap<String, usize> = BTreeMap::new();
    for c in [&src, &view, &generator, &sink] {
        for w in allocation(&workers[0], c).into_values() {
            *share.entry(w).or_default() += 1;
        }
    }
    let victim_id = share.iter().max_by_key(|(_, n)| **n).unwrap().0.clone();
    let victim = workers
        .iter()
        .position(|w| w.worker_id == victim_id)
        .unwrap();
    let before: BTreeMap<(String, u64), String> = [&src, &view, &generator, &sink]
        .iter()
        .flat_map(|c| {
            allocation(&workers[(victim + 1) % 3], c)
                .into_iter()
                .map(move |(t, w)| (((*c).clone(), t), w))
        })
        .collect();
    workers[victim].kill9();
    let killed = Instant::now();
    let observing = (victim + 1) % 3;
    let observer = &workers[observing];
    for (c, n) in [(&src, 4), (&view, 2), (&generator, 2), (&sink, 2)] {
        wait_for(
            &format!("{c} running on the survivors"),
            Duration::from_secs(15),
            || {
                let placed = all_running(observer, c, n, Duration::from_secs(15));
                (!placed.values().any(|w| *w == victim_id)).then_some(())
            },
        );
    }
    let failover = killed.elapsed();
    kafka::produce(&k2r, kafka_records(k2r_total / 2, k2r_total));

    // Back again: only its share moves back.
    workers[victim].spawn();
    wait_until_members(&workers, 3);
    let observer = &workers[observing];
    let after: BTreeMap<(String, u64), String> =
        wait_for("the victim's share back", Duration::from_secs(30), || {
            let after: BTreeMap<(String, u64), String> = [&src, &view, &generator, &sink]
                .iter()
                .flat_map(|c| {
                    allocation(observer, c)
                        .into_iter()
                        .map(move |(t, w)| (((*c).clone(), t), w))
                })
                .collect();
            after.values().any(|w| *w == victim_id).then_some(after)
        });
    assert_eq!(
        after, before,
        "after the worker returned, the allocation is the one before the kill"
    );

    wait_for_records(
        "every Kafka record in RocketMQ",
        &out,
        k2r_total,
        Duration::from_secs(300),
        || {
            format!(
                "status of {src}: {}; of {view}: {}",
                observer.status(&src),
                observer.status(&view)
            )
        },
    );
    let dups_k2r = assert_complete(&sink_counts(&out), k2r_total);
    wait_for_records(
        "every generated record in RocketMQ",
        &r2k_out,
        r2k_total,
        Duration::from_secs(120),
        || format!("status of {generator}: {}", observer.status(&generator)),
    );
    assert_complete(&sink_counts(&r2k_out), r2k_total);
    let got = kafka::read_until(&r2k, Duration::from_secs(300), |r| {
        kafka::counts_by_number(r).len() as u64 >= r2k_total
    });
    let dups_r2k = assert_complete(&kafka::counts_by_number(&got), r2k_total);
    println!(
        "failover: tasks of the killed worker running elsewhere after {failover:?}; duplicates Kafka->RocketMQ {dups_k2r}, RocketMQ->Kafka {dups_r2k}"
    );
}

#[test]
fn a_rolling_restart_of_all_three_loses_nothing() {
    let (_name, mut workers) = cluster(3, &["datagen", "file-sink"]);
    let topic = unique("roll");
    let total = 60_000u64;
    let out = temp_dir("roll-out");
    workers[0].create(
        &unique("gen"),
        json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.count": total.to_string(), "datagen.rate": "3000", "tasks.num": "3"}),
    );
    workers[1].create(&unique("view"), json!({"connector-class": "file-sink", "rocketmq.topics": topic, "file.dir": out.to_str().unwrap(), "tasks.num": "3"}));
    wait_for("records flowing", Duration::from_secs(60), || {
        (sink_counts(&out).len() > 1000).then_some(())
    });
    for i in 0..3 {
        workers[i].stop();
        workers[i].spawn();
        wait_until_members(&workers, 3);
    }
    wait_for("every record in the file", Duration::from_secs(180), || {
        (sink_counts(&out).len() as u64 >= total).then_some(())
    });
    let dups = assert_complete(&sink_counts(&out), total);
    println!("rolling restart of 3 workers under {total} records: none lost, {dups} duplicates");
}

#[test]
fn three_workers_of_a_new_cluster_started_at_once_all_come_up_on_their_own_addresses() {
    // A new clusterName: the three race to create the internal topics. Each binds its own
    // loopback address (nothing on 127.0.0.1), as three hosts would, so a worker that announced
    // the wrong address would ask itself (or nobody) instead of its peers.
    let name = unique("together");
    let mut workers: Vec<Worker> = (0..3)
        .map(|i| {
            let w = Worker::prepare(&["datagen"], &name, &format!("{name}-w{i}"));
            w.configure("httpBind", &format!("127.0.0.{}", i + 2));
            w
        })
        .collect();
    Worker::spawn_together(&mut workers);
    for (i, w) in workers.iter().enumerate() {
        assert!(
            w.addr.starts_with(&format!("127.0.0.{}:", i + 2)),
            "worker {i} listens on {}",
            w.addr
        );
    }
    wait_until_members(&workers, 3);
    for w in &workers {
        let info = w.request("GET", "/getClusterInfo", None).1;
        let announced: BTreeMap<String, String> = info["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["workerId"].as_str().unwrap().to_string(),
                    m["restAddress"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let expected: BTreeMap<String, String> = workers
            .iter()
            .map(|w| (w.worker_id.clone(), w.addr.clone()))
            .collect();
        assert_eq!(
            announced, expected,
            "announced addresses as seen from {}",
            w.worker_id
        );
    }
    let connector = unique("gen");
    workers[0].create(
        &connector,
        json!({"connector-class": "datagen", "datagen.topic": unique("tg-t"), "datagen.rate": "30", "tasks.num": "6"}),
    );
    let placed = all_running(&workers[1], &connector, 6, Duration::from_secs(20));
    assert!(
        placed.values().collect::<BTreeSet<_>>().len() >= 2,
        "6 tasks on one worker: {placed:?}"
    );
    // Status and /getAllTask/true from every worker: each task once, on the worker the
    // allocation names (asked over the announced addresses).
    for w in &workers {
        assert_eq!(
            all_running(w, &connector, 6, Duration::from_secs(10)),
            placed
        );
        let by_worker = w.request("GET", "/getAllTask/true", None).1;
        let mut seen = BTreeMap::new();
        for (worker, tasks) in by_worker.as_object().unwrap() {
            let tasks = tasks
                .as_array()
                .unwrap_or_else(|| panic!("{} could not ask {worker}: {tasks}", w.worker_id));
            for t in tasks {
                if t["connector"] == connector.as_str() {
                    let task = t["task"].as_u64().unwrap();
                    assert!(seen.insert(task, worker.clone()).is_none(), "{by_worker}");
                }
            }
        }
        assert_eq!(
            seen, placed,
            "/getAllTask/true on {}: {by_worker}",
            w.worker_id
        );
    }
}

/// Positions a worker persisted for `connector` (its `positions.json`).
fn stored_positions(worker: &Worker, connector: &str) -> serde_json::Value {
    std::fs::read(worker.store.join("positions.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map(|v| v[connector].clone())
        .unwrap_or(serde_json::Value::Null)
}

#[test]
fn a_worker_joining_after_retention_deleted_the_first_messages_learns_everything_from_a_snapshot() {
    // RocketMQ deletes messages after fileReservedTime and has no compaction. The joining
    // worker is told to skip every sync message stored before `gone` (as if deleted), so all it
    // can learn comes from the leader's snapshots published after that moment.
    let name = unique("snap");
    let mut first = Worker::prepare(&["datagen"], &name, &format!("{name}-w0"));
    first.configure("stateSnapshotIntervalMs", "500");
    first.spawn();
    let connectors: Vec<String> = (0..3).map(|_| unique("kept")).collect();
    for c in &connectors {
        first.create(
            c,
            json!({"connector-class": "datagen", "datagen.topic": unique("snap-t"), "datagen.count": "300", "datagen.rate": "3000"}),
        );
    }
    let removed = unique("removed");
    first.create(&removed, json!({"connector-class": "datagen", "datagen.topic": unique("snap-r"), "datagen.count": "1"}));
    let (code, body) = first.request("DELETE", &format!("/connectors/{removed}"), None);
    assert_eq!(code, 204, "{body}");
    for c in &connectors {
        wait_for(
            "all 300 records of each delivered",
            Duration::from_secs(60),
            || {
                let s = first.status(c);
                (s["tasks"][0]["delivered"].as_u64() == Some(300)).then_some(())
            },
        );
    }
    // Disabled, so no task on the late worker writes positions of its own.
    for c in &connectors {
        let (code, body) = first.request("GET", &format!("/connectors/single/{c}/disable"), None);
        assert_eq!(code, 200, "{body}");
    }
    let gone = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let mut late = Worker::prepare(&["datagen"], &name, &format!("{name}-w1"));
    late.env
        .push(("FERRY_TEST_SYNC_IGNORE_BEFORE_MS".into(), gone.to_string()));
    late.spawn();
    wait_for(
        "every connector on the late worker",
        Duration::from_secs(30),
        || {
            let names = late.request("GET", "/connectors", None).1;
            let names: Vec<&str> = names
                .as_array()?
                .iter()
                .filter_map(|n| n.as_str())
                .collect();
            (connectors.iter().all(|c| names.contains(&c.as_str()))
                && !names.contains(&removed.as_str()))
            .then_some(())
        },
    );
    for c in &connectors {
        // The first worker's positions are final (its connectors are disabled and done).
        let expected = wait_for(
            "the first worker's final position",
            Duration::from_secs(10),
            || {
                let p = stored_positions(&first, c);
                (p.as_object().and_then(|m| m.values().next()) == Some(&json!("299"))).then_some(p)
            },
        );
        wait_for(
            "every position on the late worker",
            Duration::from_secs(30),
            || (stored_positions(&late, c) == expected).then_some(()),
        );
    }
}

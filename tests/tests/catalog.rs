//! Config writes in a cluster are linearizable: one leader (the lowest live workerId) executes
//! every write, others forward theirs, and a write is acknowledged only after the leader read it
//! back from the config topic. So concurrent operators cannot both create one name, partial
//! updates of different keys all land, and a clock that is behind cannot undo a newer write.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_tests::cluster::{cluster, wait_until_members};
use ferry_tests::{Worker, unique, url_encode, wait_for};
use serde_json::{Value, json};

fn datagen(topic: &str) -> Value {
    json!({"connector-class": "datagen", "datagen.topic": topic, "datagen.rate": "10"})
}

#[test]
fn twenty_concurrent_creates_of_one_name_across_three_workers_give_exactly_one_201() {
    let (_name, workers) = cluster(3, &["datagen"]);
    let connector = unique("race");
    let topic = unique("race-t");
    let codes: Vec<(u16, Value)> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..20)
            .map(|i| {
                let (w, connector, topic) = (&workers[i % 3], &connector, &topic);
                s.spawn(move || {
                    let mut config = datagen(topic);
                    config["datagen.size"] = json!((100 + i).to_string());
                    w.request(
                        "POST",
                        "/connectors",
                        Some(&json!({"name": connector, "config": config})),
                    )
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let created: Vec<&(u16, Value)> = codes.iter().filter(|(c, _)| *c == 201).collect();
    let conflicts = codes.iter().filter(|(c, _)| *c == 409).count();
    assert_eq!(created.len(), 1, "{codes:?}");
    assert_eq!(conflicts, 19, "{codes:?}");
    // The one that won is the config every worker holds.
    let winner = created[0].1["config"]["datagen.size"].clone();
    for w in &workers {
        wait_for(
            "the winning config everywhere",
            Duration::from_secs(5),
            || {
                (w.request("GET", &format!("/connectors/{connector}/config"), None)
                    .1["datagen.size"]
                    == winner)
                    .then_some(())
            },
        );
    }
}

#[test]
fn concurrent_partial_updates_of_different_keys_on_different_workers_all_land() {
    let (_name, workers) = cluster(3, &["datagen"]);
    let connector = unique("merge");
    workers[0].create(&connector, datagen(&unique("merge-t")));
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..12)
            .map(|i| {
                let (w, connector) = (&workers[i % 3], &connector);
                s.spawn(move || {
                    let patch = json!({ format!("x.key{i}"): format!("v{i}") }).to_string();
                    w.request(
                        "GET",
                        &format!(
                            "/connectors/update/{connector}?config={}",
                            url_encode(&patch)
                        ),
                        None,
                    )
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|(c, _)| *c == 200), "{answers:?}");
    for w in &workers {
        // Acknowledged writes are readable at once on the worker that took them, and on the
        // others as soon as they read the topic.
        let config = wait_for("every key on every worker", Duration::from_secs(5), || {
            let config = w
                .request("GET", &format!("/connectors/{connector}/config"), None)
                .1;
            (0..12)
                .all(|i| config[format!("x.key{i}")] == format!("v{i}").as_str())
                .then_some(config)
        });
        assert_eq!(config["connector-class"], "datagen");
    }
}

#[test]
fn a_worker_with_its_clock_an_hour_behind_cannot_revert_a_newer_write() {
    // w0 (the leader: the lowest workerId) and w2 run an hour behind.
    let name = unique("skew");
    let mut workers: Vec<Worker> = (0..3)
        .map(|i| {
            let mut w = Worker::prepare(&["datagen"], &name, &format!("{name}-w{i}"));
            if i != 1 {
                w.env
                    .push(("FERRY_TEST_CLOCK_SKEW_MS".into(), "-3600000".into()));
            }
            w
        })
        .collect();
    for w in &mut workers {
        w.spawn();
    }
    wait_until_members(&workers, 3);
    let connector = unique("skewed");
    workers[1].create(&connector, datagen(&unique("skew-t")));
    let mut last = String::new();
    for round in 0..6 {
        // Writes one right after the other, through every worker in turn.
        for (i, w) in workers.iter().enumerate() {
            last = format!("{round}-{i}");
            let (code, body) = w.request(
                "PUT",
                &format!("/connectors/{connector}/config"),
                Some(&json!({"connector-class": "datagen", "datagen.topic": "skew", "datagen.rate": "10", "x.last": last})),
            );
            assert_eq!(code, 200, "{body}");
        }
    }
    let mut seen = BTreeMap::new();
    for w in &workers {
        let value = wait_for("the last write everywhere", Duration::from_secs(5), || {
            let config = w
                .request("GET", &format!("/connectors/{connector}/config"), None)
                .1;
            (config["x.last"] == last.as_str()).then_some(config["x.last"].clone())
        });
        seen.insert(w.worker_id.clone(), value);
    }
    // And it stays: nothing older arrives later to undo it.
    std::thread::sleep(Duration::from_millis(500));
    for w in &workers {
        let config = w
            .request("GET", &format!("/connectors/{connector}/config"), None)
            .1;
        assert_eq!(
            config["x.last"],
            last.as_str(),
            "{} reverted: {seen:?}",
            w.worker_id
        );
    }
}

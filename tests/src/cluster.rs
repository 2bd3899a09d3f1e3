//! Helpers for tests of several workers in one cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{Worker, unique, wait_for};

/// Starts `n` workers in one new cluster and waits until each sees all of them.
pub fn cluster(n: usize, plugins: &[&str]) -> (String, Vec<Worker>) {
    let name = unique("cl");
    let workers: Vec<Worker> = (0..n)
        .map(|i| Worker::start_in_cluster(plugins, &name, &format!("{name}-w{i}")))
        .collect();
    wait_until_members(&workers, n);
    (name, workers)
}

/// Waits until every worker lists `n` live members, each with a REST address.
pub fn wait_until_members(workers: &[Worker], n: usize) {
    let last = std::cell::RefCell::new(Vec::new());
    let seen = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(
            "every worker to see the cluster",
            Duration::from_secs(60),
            || {
                let infos: Vec<_> = workers
                    .iter()
                    .filter(|w| w.is_running())
                    .map(|w| w.request("GET", "/getClusterInfo", None).1)
                    .collect();
                let done = infos.iter().all(|info| {
                    info["workers"].as_array().is_some_and(|m| {
                        m.len() == n && m.iter().all(|w| w["restAddress"].is_string())
                    })
                });
                *last.borrow_mut() = infos;
                done.then_some(())
            },
        )
    }));
    assert!(
        seen.is_ok(),
        "the workers disagree about the cluster: {:?}",
        last.borrow()
    );
}

/// task index -> worker id, as `worker` reports the allocation of `connector`.
pub fn allocation(worker: &Worker, connector: &str) -> BTreeMap<u64, String> {
    let answer = worker
        .request("GET", &format!("/getConnectorTask/{connector}"), None)
        .1;
    answer[connector]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .map(|t| {
                    (
                        t["task"].as_u64().unwrap(),
                        t["workerId"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The connector's tasks once all `count` run (as seen from `worker`): task -> worker id.
pub fn all_running(
    worker: &Worker,
    connector: &str,
    count: usize,
    within: Duration,
) -> BTreeMap<u64, String> {
    wait_for(
        &format!("{count} tasks of {connector} running"),
        within,
        || {
            let status = worker.status(connector);
            let tasks = status["tasks"].as_array()?;
            (tasks.len() == count
                && tasks
                    .iter()
                    .all(|t| t["state"] == "RUNNING" || t["state"] == "IDLE"))
            .then(|| {
                tasks
                    .iter()
                    .map(|t| {
                        (
                            t["id"].as_u64().unwrap(),
                            t["worker_id"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            })
        },
    )
}

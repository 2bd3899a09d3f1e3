//! Local persistence under `storePathRootDir`: the cluster's connector records (the snapshot a
//! restarted worker starts from) and delivered source positions. Files are written to a temp file and renamed, so a crash leaves the old or the new
//! version, never a torn one. Positions are written only from delivered acknowledgements.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Serialize, de::DeserializeOwned};

use crate::model::ConnectorRecord;
pub use crate::model::Positions;

/// A store file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("store {path}: {reason}")]
pub struct StoreError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

/// Configs and positions, in memory and on disk.
pub struct Store {
    dir: PathBuf,
    connectors: Mutex<BTreeMap<String, ConnectorRecord>>,
    positions: Mutex<BTreeMap<String, Positions>>,
    /// REST address per worker id, as the workers announced them.
    workers: Mutex<BTreeMap<String, String>>,
    /// Positions this worker delivered since they were last published to the cluster.
    unpublished: Mutex<BTreeMap<String, Positions>>,
    /// Positions changed since the last flush.
    positions_dirty: AtomicBool,
    /// Bumped on every applied connector record, so a writer can wait to read its write back.
    applied: tokio::sync::watch::Sender<u64>,
}

impl Store {
    /// Opens (and creates) the store folder and loads what is there.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        // Connector configs may hold literal secrets: only the worker's user may read them.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                StoreError {
                    path: dir.to_path_buf(),
                    reason: format!("cannot restrict permissions to 0700: {e}"),
                }
            })?;
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            connectors: Mutex::new(read_records(&dir.join("connectors.json"))?),
            positions: Mutex::new(read_json(&dir.join("positions.json"))?),
            workers: Mutex::new(read_json(&dir.join("workers.json"))?),
            unpublished: Mutex::new(BTreeMap::new()),
            positions_dirty: AtomicBool::new(false),
            applied: tokio::sync::watch::Sender::new(0),
        })
    }

    /// The folder, for other local state (the compile cache).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every connector record, deleted ones included.
    pub fn records(&self) -> BTreeMap<String, ConnectorRecord> {
        self.connectors.lock().unwrap().clone()
    }

    /// One connector's record.
    pub fn record(&self, name: &str) -> Option<ConnectorRecord> {
        self.connectors.lock().unwrap().get(name).cloned()
    }

    /// Stores `record` if it is newer than the stored one, durably, before returning. A delete
    /// forgets the connector's positions. Returns whether it was newer.
    pub fn apply(&self, name: &str, record: ConnectorRecord) -> Result<bool, StoreError> {
        let mut all = self.connectors.lock().unwrap();
        if all
            .get(name)
            .is_some_and(|old| old.version >= record.version)
        {
            return Ok(false);
        }
        let old_epoch = all.get(name).map_or(0, ConnectorRecord::positions_epoch);
        if record.config.is_none() {
            self.positions.lock().unwrap().remove(name);
            self.positions_dirty.store(true, Ordering::Release);
        } else if let Some(reset) = record
            .positions_reset
            .as_ref()
            .filter(|r| r.epoch > old_epoch)
        {
            // An operator set the positions: they replace what this worker had.
            self.positions
                .lock()
                .unwrap()
                .insert(name.to_string(), reset.positions.clone());
            self.unpublished.lock().unwrap().remove(name);
            self.positions_dirty.store(true, Ordering::Release);
        }
        all.insert(name.to_string(), record);
        write_json(&self.dir.join("connectors.json"), &*all)?;
        drop(all);
        self.applied.send_modify(|n| *n += 1);
        Ok(true)
    }

    /// Waits until `name`'s stored record is at least `version` (read back from the config
    /// topic); false if that did not happen within `timeout`.
    pub async fn wait_for_version(
        &self,
        name: &str,
        version: &crate::model::Version,
        timeout: std::time::Duration,
    ) -> bool {
        let mut changes = self.applied.subscribe();
        let reached = async {
            loop {
                if self.record(name).is_some_and(|r| r.version >= *version) {
                    return;
                }
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, reached).await.is_ok()
    }

    /// Every connector's merged positions (deleted connectors have none), for a snapshot.
    pub fn all_positions(&self) -> BTreeMap<String, Positions> {
        self.positions.lock().unwrap().clone()
    }

    /// The REST addresses workers announced.
    pub fn worker_addresses(&self) -> BTreeMap<String, String> {
        self.workers.lock().unwrap().clone()
    }

    /// Records a worker's REST address (kept across restarts: peers announce only on change).
    pub fn put_worker_address(&self, worker: &str, rest: &str) -> Result<(), StoreError> {
        let mut all = self.workers.lock().unwrap();
        if all.get(worker).is_some_and(|r| r == rest) {
            return Ok(());
        }
        all.insert(worker.to_string(), rest.to_string());
        write_json(&self.dir.join("workers.json"), &*all)
    }

    /// The delivered positions of a connector.
    pub fn positions(&self, connector: &str) -> Positions {
        self.positions
            .lock()
            .unwrap()
            .get(connector)
            .cloned()
            .unwrap_or_default()
    }

    /// The epoch of `connector`'s positions (see [`crate::model::PositionsReset`]).
    pub fn positions_epoch(&self, connector: &str) -> u64 {
        self.record(connector).map_or(0, |r| r.positions_epoch())
    }

    /// Records positions this worker delivered (newest offset per partition wins); flushed by
    /// [`Self::flush`] and published to the cluster from [`Self::take_unpublished`].
    pub fn record_positions(
        &self,
        connector: &str,
        delivered: impl IntoIterator<Item = (String, String)>,
    ) {
        let delivered: Vec<(String, String)> = delivered.into_iter().collect();
        // A task still finishing after its connector was stopped and its positions set by an
        // operator: the operator's positions win.
        if self.record(connector).is_some_and(|r| {
            r.target() == crate::model::TargetState::Stopped && r.positions_reset.is_some()
        }) {
            return;
        }
        self.unpublished
            .lock()
            .unwrap()
            .entry(connector.to_string())
            .or_default()
            .extend(delivered.iter().cloned());
        self.merge_positions(connector, delivered);
    }

    /// Positions recorded since the last call, to publish.
    pub fn take_unpublished(&self) -> BTreeMap<String, Positions> {
        std::mem::take(&mut *self.unpublished.lock().unwrap())
    }

    /// Merges positions (from this worker or another): the newest offset per partition wins.
    pub fn merge_positions(
        &self,
        connector: &str,
        delivered: impl IntoIterator<Item = (String, String)>,
    ) {
        let mut all = self.positions.lock().unwrap();
        let entry = all.entry(connector.to_string()).or_default();
        for (partition, offset) in delivered {
            let newer = match (
                entry.get(&partition).and_then(|o| o.parse::<i64>().ok()),
                offset.parse::<i64>(),
            ) {
                (Some(old), Ok(new)) => new > old,
                _ => true,
            };
            if newer {
                entry.insert(partition, offset);
            }
        }
        self.positions_dirty.store(true, Ordering::Release);
    }

    /// Writes positions if they changed. Called periodically and at shutdown.
    pub fn flush(&self) -> Result<(), StoreError> {
        if !self.positions_dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let snapshot = self.positions.lock().unwrap().clone();
        write_json(&self.dir.join("positions.json"), &snapshot).inspect_err(|_| {
            self.positions_dirty.store(true, Ordering::Release);
        })
    }
}

/// Reads the connector records; a store written before clustering (name -> config) is read as
/// records of version 0, so any cluster update replaces them.
fn read_records(path: &Path) -> Result<BTreeMap<String, ConnectorRecord>, StoreError> {
    read_json(path).or_else(|e| {
        let old: BTreeMap<String, crate::model::ConnectorConfig> =
            read_json(path).map_err(|_| e)?;
        Ok(old
            .into_iter()
            .map(|(name, config)| {
                let record = ConnectorRecord {
                    version: Default::default(),
                    config: Some(config),
                    enabled: true,
                    generation: 0,
                    paused: false,
                    task_generations: Default::default(),
                    positions_reset: None,
                };
                (name, record)
            })
            .collect())
    })
}

fn read_json<T: DeserializeOwned + Default>(path: &Path) -> Result<T, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError {
            path: path.to_path_buf(),
            reason: format!("corrupt: {e}"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(StoreError {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// Writes `value` to a temp file, syncs it and renames it over `path`.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let err = |e: std::io::Error| StoreError {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(value).expect("store values serialize");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp).map_err(err)?;
        file.write_all(&bytes).map_err(err)?;
        file.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_from_before_clustering_is_read_as_records() {
        let dir = std::env::temp_dir().join(format!("ferry-store-old-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("connectors.json"), r#"{"c": {"k": "v"}}"#).unwrap();
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.records()["c"].config.as_ref().unwrap()["k"], "v");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn positions_keep_the_newest_and_survive_reopen() {
        let dir = std::env::temp_dir().join(format!("ferry-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        store.record_positions("c", [("t/0".to_string(), "10".to_string())]);
        store.record_positions("c", [("t/0".to_string(), "7".to_string())]);
        store.flush().unwrap();
        assert_eq!(store.take_unpublished()["c"]["t/0"], "7");
        assert!(store.take_unpublished().is_empty());
        let mut config = crate::model::ConnectorConfig::new();
        config.insert("k".into(), "v".into());
        let record = |ms, config| ConnectorRecord {
            version: crate::model::Version {
                ms,
                worker: "w".into(),
            },
            config,
            enabled: true,
            generation: 0,
            paused: false,
            task_generations: Default::default(),
            positions_reset: None,
        };
        assert!(store.apply("c", record(2, Some(config.clone()))).unwrap());
        assert!(
            !store.apply("c", record(1, None)).unwrap(),
            "older update ignored"
        );
        let reopened = Store::open(&dir).unwrap();
        assert_eq!(
            reopened.positions("c").get("t/0").map(String::as_str),
            Some("10")
        );
        assert_eq!(reopened.records()["c"].config.as_ref().unwrap()["k"], "v");
        assert!(reopened.apply("c", record(3, None)).unwrap());
        assert!(
            reopened.positions("c").is_empty(),
            "a delete forgets positions"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

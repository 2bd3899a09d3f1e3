//! A cluster of workers over RocketMQ, with no other service: membership from the broker's list
//! of `connector-cluster-group` members ([`membership`]), task allocation by consistent hashing
//! ([`allocator`]), and config and source-position sync through internal topics ([`sync`]).
//! A worker reached over REST answers for the whole cluster, asking its peers ([`peer`]) for
//! what runs elsewhere.

pub mod advertise;
pub mod allocator;
pub mod membership;
pub mod peer;
pub mod sync;

use serde::{Deserialize, Serialize};

pub use crate::model::{ConnectorRecord, Version};
use crate::rocketmq::{Hub, HubError};
use crate::task::backoff::Backoff;

pub use allocator::TaskAllocator;

/// The internal topic and group names (the seed's), with an optional `-<clusterName>` suffix so
/// several clusters can share one RocketMQ.
#[derive(Clone, Debug)]
pub struct ClusterNames {
    /// Members join this group on [`Self::cluster_topic`].
    pub cluster_group: String,
    /// The topic members subscribe to (no messages flow on it).
    pub cluster_topic: String,
    /// Connector configs and worker addresses.
    pub config_topic: String,
    /// Source positions.
    pub position_topic: String,
    /// Reserved by the seed for offsets; created, not used (positions carry source offsets).
    pub offset_topic: String,
    /// Prefix of each worker's own group reading the config and position topics.
    pub sync_group_prefix: String,
}

impl ClusterNames {
    /// The seed's names, suffixed with `-<cluster>` when a cluster name is set.
    pub fn new(cluster: Option<&str>) -> Self {
        let name = |base: &str| match cluster {
            Some(c) => format!("{base}-{c}"),
            None => base.to_string(),
        };
        ClusterNames {
            cluster_group: name("connector-cluster-group"),
            cluster_topic: name("connector-cluster-topic"),
            config_topic: name("connector-config-topic"),
            position_topic: name("connector-position-topic"),
            offset_topic: name("connector-offset-topic"),
            sync_group_prefix: name("connector-sync-group"),
        }
    }

    /// Every internal topic, for the startup check.
    pub fn topics(&self) -> [&str; 4] {
        [
            &self.cluster_topic,
            &self.config_topic,
            &self.position_topic,
            &self.offset_topic,
        ]
    }
}

/// How long start-up keeps trying to create or find the internal topics: workers of a new
/// cluster started together race to create them, and the losers see transient errors until the
/// winner's topic is routable.
pub const INTERNAL_TOPICS_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// An internal topic cannot be used; the worker cannot start.
#[derive(Debug, thiserror::Error)]
pub enum InternalTopicError {
    /// It does not exist and this worker may not create it.
    #[error(
        "internal topic `{topic}` is missing ({source}); create it or set autoCreateGroupEnable=true"
    )]
    Missing {
        /// The topic.
        topic: String,
        /// What RocketMQ said.
        source: HubError,
    },
    /// Creating it (or finding its route afterwards) kept failing until the deadline.
    #[error(
        "internal topic `{topic}` could not be created or found within {:?}; last error: {source}",
        INTERNAL_TOPICS_DEADLINE
    )]
    Unavailable {
        /// The topic.
        topic: String,
        /// The last error RocketMQ gave.
        source: HubError,
    },
}

/// Makes sure every internal topic exists and is routable. Creation is idempotent, so workers
/// started together all succeed: an error while another worker's creation settles is retried
/// with backoff until [`INTERNAL_TOPICS_DEADLINE`].
pub async fn ensure_internal_topics(
    hub: &Hub,
    names: &ClusterNames,
    auto_create: bool,
) -> Result<(), InternalTopicError> {
    let deadline = tokio::time::Instant::now() + INTERNAL_TOPICS_DEADLINE;
    for topic in names.topics() {
        let mut backoff = Backoff::new(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(2),
        );
        loop {
            match hub.ensure_topic(topic).await {
                Ok(()) => break,
                Err(source) if !auto_create => {
                    return Err(InternalTopicError::Missing {
                        topic: topic.to_string(),
                        source,
                    });
                }
                Err(source) if tokio::time::Instant::now() >= deadline => {
                    return Err(InternalTopicError::Unavailable {
                        topic: topic.to_string(),
                        source,
                    });
                }
                Err(e) => {
                    tracing::info!(topic, "internal topic not ready yet, retrying: {e}");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }
    Ok(())
}

/// A message on the config topic.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ConfigEvent {
    /// A connector was created, changed, enabled, disabled or deleted.
    Connector {
        /// Connector name.
        name: String,
        /// Its new state.
        record: ConnectorRecord,
    },
    /// The whole catalog at one moment (or one part of it, when it is large), published by
    /// the leader every `stateSnapshotIntervalMs`: RocketMQ deletes old messages
    /// (`fileReservedTime`) and has no compaction, so the retained part of the topic must
    /// always hold a full copy. Applied like single updates (newest version wins).
    Snapshot {
        /// Every connector record, deleted ones (tombstones) included.
        connectors: std::collections::BTreeMap<String, ConnectorRecord>,
        /// Every worker's announced REST address.
        workers: std::collections::BTreeMap<String, String>,
    },
    /// The seed's `logMsgDetail`: per-record logging on every worker, on or off.
    RecordLogging {
        /// On or off.
        enabled: bool,
    },
    /// A worker announces where its REST API listens.
    Worker {
        /// `workerId`.
        worker: String,
        /// `host:port`.
        rest: String,
    },
}

/// A message on the position topic: positions a worker's source tasks had delivered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PositionEvent {
    /// Connector name.
    pub connector: String,
    /// Partition -> last delivered offset.
    pub positions: crate::model::Positions,
    /// The positions' epoch when published: positions older than an operator's change of
    /// them are ignored.
    #[serde(default)]
    pub epoch: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config topic carries records as tagged JSON: every field must survive the trip
    /// (integer map keys would not).
    #[test]
    fn a_record_with_every_field_survives_the_config_topic() {
        let record = ConnectorRecord {
            version: Version {
                ms: 7,
                worker: "w".into(),
            },
            config: Some([("k".to_string(), "v".to_string())].into()),
            enabled: true,
            generation: 2,
            paused: true,
            task_generations: [("1".to_string(), 3)].into(),
            positions_reset: Some(crate::model::PositionsReset {
                epoch: 1,
                positions: [("p".to_string(), "9".to_string())].into(),
            }),
        };
        let event = ConfigEvent::Connector {
            name: "c".into(),
            record: record.clone(),
        };
        let text = serde_json::to_vec(&event).unwrap();
        match serde_json::from_slice::<ConfigEvent>(&text).unwrap() {
            ConfigEvent::Connector { record: back, .. } => assert_eq!(back, record),
            other => panic!("{other:?}"),
        }
    }
}

//! A cluster of workers over RocketMQ, with no other service: membership from the broker's list
//! of `connector-cluster-group` members ([`membership`]), task allocation by consistent hashing
//! ([`allocator`]), and config and source-position sync through internal topics ([`sync`]).
//! A worker reached over REST answers for the whole cluster, asking its peers ([`peer`]) for
//! what runs elsewhere.

pub mod allocator;
pub mod membership;
pub mod peer;
pub mod sync;

use serde::{Deserialize, Serialize};

use crate::config::ConnectorConfig;

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

/// Orders the updates of one connector: the greater version wins on every worker (last writer
/// wins; the worker id breaks ties between updates made in the same millisecond).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Wall-clock ms of the update, at least one more than any version the writer had seen.
    pub ms: u64,
    /// The worker that made it.
    pub worker: String,
}

/// The cluster-wide state of one connector, as every worker stores it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ConnectorRecord {
    /// Which update this is.
    pub version: Version,
    /// `None`: deleted (kept, so an older update arriving late cannot bring it back).
    pub config: Option<ConnectorConfig>,
    /// `false`: disabled, config kept, no tasks.
    pub enabled: bool,
    /// Bumped by a restart request: every worker restarts the connector's tasks it runs.
    #[serde(default)]
    pub generation: u64,
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
    pub positions: crate::store::Positions,
}

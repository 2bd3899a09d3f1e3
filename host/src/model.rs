//! The data every layer shares, and nothing else: connector configs and records, their
//! versions, source positions, the Kafka grant, the key hash. It imports nothing of Ferry, so
//! any module may import it without a cycle (checks and behaviour live with their owners: the
//! grant is checked in `wasm::caps::kafka`, records are ordered by `cluster`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A connector config: string pairs, as the user supplied them.
pub type ConnectorConfig = BTreeMap<String, String>;

/// Source positions of one connector: partition key -> last delivered offset.
pub type Positions = BTreeMap<String, String>;

/// Orders the updates of one connector: the greater version wins on every worker. Only the
/// leader makes versions, one write at a time, each above every version it has seen, so the
/// order is the order in which writes were acknowledged.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The leader's wall-clock ms, raised to one more than any version it had seen (a clock
    /// that is behind cannot order a write before an earlier one).
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
    /// Paused (Kafka Connect's KIP-980 `PAUSED`; only meaningful while enabled): tasks keep
    /// their place but move no records.
    #[serde(default)]
    pub paused: bool,
    /// Per-task restart generations (`POST /connectors/{name}/tasks/{id}/restart`): bumping
    /// one restarts just that task, wherever it runs. Keyed by the task index as text (the
    /// config topic's tagged JSON cannot carry integer map keys).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub task_generations: BTreeMap<String, u64>,
    /// The last operator change of the source positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions_reset: Option<PositionsReset>,
}

impl ConnectorRecord {
    /// The epoch of the positions (0 until an operator changed them).
    pub fn positions_epoch(&self) -> u64 {
        self.positions_reset.as_ref().map_or(0, |r| r.epoch)
    }
}

/// Source positions an operator set (`PATCH`/`DELETE /connectors/{name}/offsets`, KIP-875):
/// every worker replaces what it had with them when it applies the record, and ignores
/// positions published before them (older `epoch`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PositionsReset {
    /// Bumped by each change.
    pub epoch: u64,
    /// The positions to resume from (empty: from the start).
    pub positions: Positions,
}

/// What a connector is asked to do (Kafka Connect's target states, KIP-980).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetState {
    /// Tasks run and move records.
    Running,
    /// Tasks keep running where they are (guest, consumers, positions) but move no records.
    Paused,
    /// Tasks are shut down; the config is kept (the seed's `disable`).
    Stopped,
}

impl ConnectorRecord {
    /// The state the connector is asked to be in.
    pub fn target(&self) -> TargetState {
        match (self.enabled, self.paused) {
            (false, _) => TargetState::Stopped,
            (true, true) => TargetState::Paused,
            (true, false) => TargetState::Running,
        }
    }
}

/// The connector key naming its Kafka bootstrap servers (the seed's key).
pub const BOOTSTRAP_KEY: &str = "kafka.bootstrap.server";
/// Connector keys with this prefix are passed to librdkafka verbatim.
pub const CLIENT_PREFIX: &str = "kafka.client.";
/// What a connector's config allows its tasks to reach.
#[derive(Clone, Debug, Default)]
pub struct KafkaGrant {
    /// `kafka.bootstrap.server`; without it, the guest gets no Kafka client.
    pub bootstrap: Option<String>,
    /// `kafka.client.*`, without the prefix.
    pub properties: BTreeMap<String, String>,
}

impl KafkaGrant {
    /// Reads the grant from a connector config.
    pub fn from_config(config: &ConnectorConfig) -> Self {
        KafkaGrant {
            bootstrap: config.get(BOOTSTRAP_KEY).filter(|b| !b.is_empty()).cloned(),
            properties: config
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix(CLIENT_PREFIX)
                        .map(|p| (p.to_string(), v.clone()))
                })
                .collect(),
        }
    }
}

/// A stable 32-bit FNV-1a hash of a record key: the same key always picks the same queue.
pub fn key_hash(key: &[u8]) -> u32 {
    key.iter().fold(0x811c9dc5u32, |h, b| {
        (h ^ *b as u32).wrapping_mul(0x0100_0193)
    })
}

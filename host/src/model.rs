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

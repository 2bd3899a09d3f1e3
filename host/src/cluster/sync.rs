//! Config and position sync. Every change is published to the config (or position) topic, and
//! every worker reads both topics in its own consumer group (`connector-sync-group-<workerId>`,
//! from the first offset when new), so each worker sees every message. Applying is idempotent
//! and order-insensitive across queues: the newest [`super::Version`] wins per connector, the
//! newest offset per partition. RocketMQ has no compaction, so a worker persists the applied
//! state (the store's snapshot) and its group's offsets let a restarted worker read only what is
//! new; a brand-new worker reads what the broker still holds, which always includes one of the
//! leader's periodic full snapshots ([`super::ConfigEvent::Snapshot`]), so retention never
//! loses state.

use std::sync::Arc;

use super::{ClusterNames, ConfigEvent, PositionEvent};
use crate::rocketmq::{Hub, HubError, SinkConsumer};

/// A message read from one of the sync topics.
#[derive(Debug)]
pub enum SyncMessage {
    /// From the config topic.
    Config(ConfigEvent),
    /// From the position topic.
    Positions(PositionEvent),
}

/// Publishes and reads the sync topics.
pub struct ClusterSync {
    hub: Arc<Hub>,
    names: ClusterNames,
    worker_id: String,
}

impl ClusterSync {
    /// Sync over `hub` with `names`, as worker `worker_id`.
    pub fn new(hub: Arc<Hub>, names: ClusterNames, worker_id: &str) -> Self {
        ClusterSync {
            hub,
            names,
            worker_id: worker_id.to_string(),
        }
    }

    /// The internal names.
    pub fn names(&self) -> &ClusterNames {
        &self.names
    }

    /// Publishes a config event; `Ok` once the broker stored it. Events about one connector go
    /// to one queue, in order.
    pub async fn publish_config(&self, event: &ConfigEvent) -> Result<(), HubError> {
        let key = match event {
            ConfigEvent::Connector { name, .. } => name.as_str(),
            ConfigEvent::Worker { worker, .. } => worker.as_str(),
            ConfigEvent::Snapshot { .. } => "snapshot",
            ConfigEvent::RecordLogging { .. } => "record-logging",
        };
        let body = serde_json::to_vec(event).expect("config events serialize");
        self.hub
            .send_keyed(&self.names.config_topic, key, body)
            .await
    }

    /// Publishes positions delivered by this worker's tasks.
    pub async fn publish_positions(&self, event: &PositionEvent) -> Result<(), HubError> {
        let body = serde_json::to_vec(event).expect("position events serialize");
        self.hub
            .send_keyed(&self.names.position_topic, &event.connector, body)
            .await
    }

    /// This worker's reader of both sync topics.
    pub async fn reader(&self) -> Result<SinkConsumer, HubError> {
        self.hub
            .consumer(
                &format!("{}-{}", self.names.sync_group_prefix, self.worker_id),
                &[
                    self.names.config_topic.clone(),
                    self.names.position_topic.clone(),
                ],
                &format!("{}-sync", self.worker_id),
            )
            .await
    }

    /// Decodes a message of a sync topic; `None` (logged) for anything else.
    pub fn decode(&self, topic: &str, body: &[u8]) -> Option<SyncMessage> {
        let decoded = if topic == self.names.config_topic {
            serde_json::from_slice(body).map(SyncMessage::Config)
        } else if topic == self.names.position_topic {
            serde_json::from_slice(body).map(SyncMessage::Positions)
        } else {
            return None;
        };
        decoded
            .inspect_err(|e| tracing::warn!(topic, "undecodable sync message skipped: {e}"))
            .ok()
    }
}

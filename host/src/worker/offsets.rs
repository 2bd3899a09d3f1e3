//! Kafka Connect's offsets routes (KIP-875) over Ferry's two kinds of offset:
//! - a source's delivered positions (partition -> offset strings), which every worker keeps
//!   and syncs; an operator's change travels in the connector's record (a
//!   [`PositionsReset`] with a new epoch) so every worker replaces what it had, and positions
//!   published before the change are ignored;
//! - a sink's RocketMQ consumer group offsets, set on the brokers themselves;
//! - for a source granted Kafka (kafka-source, which resumes from its Kafka group's commits),
//!   a change of its positions is committed to that Kafka group too.
//!
//! Changes are allowed only while the connector is `STOPPED` (nothing may be delivering), and,
//! for a sink, once its consumers have left the group (a leaving consumer persists its
//! offsets, which would undo the change).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Worker, WorkerError};
use crate::config::ROCKETMQ_TOPICS;
use crate::model::{Positions, PositionsReset, TargetState};
use crate::task::sink::consumer_group;
use crate::wasm::PluginKind;

/// How long a change waits for a stopped sink's consumers to leave their group.
const GROUP_EMPTY_WAIT: Duration = Duration::from_secs(30);

/// One offset, in Kafka Connect's `{partition, offset}` shape.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct OffsetEntry {
    /// Sources: `{"source_partition": "<partition>"}`; sinks: `{"topic", "broker", "queue"}`.
    pub partition: serde_json::Map<String, serde_json::Value>,
    /// Sources: `{"source_offset": "<offset>"}`; sinks: `{"offset": <next offset to consume>}`.
    pub offset: serde_json::Map<String, serde_json::Value>,
}

/// `GET /connectors/{name}/offsets`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Offsets {
    /// Every partition's offset.
    pub offsets: Vec<OffsetEntry>,
}

fn object(pairs: &[(&str, serde_json::Value)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

impl Worker {
    /// A connector's kind and, for a sink, its RocketMQ topics.
    fn offsets_target(&self, name: &str) -> Result<(PluginKind, Vec<String>), WorkerError> {
        let (config, _) = self.live_config(name)?;
        let class = config
            .get(crate::config::CONNECTOR_CLASS)
            .cloned()
            .unwrap_or_default();
        let plugin =
            self.deps
                .registry
                .resolve(&class)
                .ok_or_else(|| WorkerError::UnknownClass {
                    class,
                    known: self.deps.registry.known_classes(),
                })?;
        let topics = config
            .get(ROCKETMQ_TOPICS)
            .map(|t| crate::config::comma_list(t))
            .unwrap_or_default();
        Ok((plugin.kind, topics))
    }

    /// The connector's offsets: a source's delivered positions, a sink's consumer group
    /// offsets per queue.
    pub async fn offsets(&self, name: &str) -> Result<Offsets, WorkerError> {
        let (kind, topics) = self.offsets_target(name)?;
        let offsets = match kind {
            PluginKind::Source => self
                .deps
                .store
                .positions(name)
                .into_iter()
                .map(|(partition, offset)| OffsetEntry {
                    partition: object(&[("source_partition", partition.into())]),
                    offset: object(&[("source_offset", offset.into())]),
                })
                .collect(),
            PluginKind::Sink => {
                let group = consumer_group(name);
                let mut all = Vec::new();
                for topic in &topics {
                    let offsets = self
                        .deps
                        .hub
                        .group_offsets(&group, topic)
                        .await
                        .map_err(|e| WorkerError::Cluster(e.to_string()))?;
                    all.extend(offsets.into_iter().map(|o| OffsetEntry {
                        partition: object(&[
                            ("topic", o.topic.into()),
                            ("broker", o.broker.into()),
                            ("queue", o.queue.into()),
                        ]),
                        offset: object(&[("offset", o.offset.into())]),
                    }));
                }
                all
            }
        };
        Ok(Offsets { offsets })
    }

    /// `PATCH` (`Some`: set these) or `DELETE` (`None`: back to the start) of a stopped
    /// connector's offsets, applied cluster-wide; its tasks resume from them.
    pub async fn alter_offsets(
        &self,
        name: &str,
        change: Option<Vec<OffsetEntry>>,
    ) -> Result<(), WorkerError> {
        let record = self
            .deps
            .store
            .record(name)
            .filter(|r| r.config.is_some())
            .ok_or_else(|| WorkerError::NotFound(name.to_string()))?;
        if record.target() != TargetState::Stopped {
            return Err(WorkerError::NotStopped(name.to_string()));
        }
        let (kind, topics) = self.offsets_target(name)?;
        match kind {
            PluginKind::Source => {
                let positions = match change {
                    None => Positions::new(),
                    Some(entries) => {
                        let mut positions = self.deps.store.positions(name);
                        for e in entries {
                            let partition = text_field(&e.partition, "source_partition")?;
                            match e.offset.get("source_offset") {
                                // Kafka Connect: a null offset removes the partition.
                                None | Some(serde_json::Value::Null) => {
                                    positions.remove(&partition);
                                }
                                Some(_) => {
                                    positions
                                        .insert(partition, text_field(&e.offset, "source_offset")?);
                                }
                            }
                        }
                        positions
                    }
                };
                self.commit_kafka_group(name, &self.deps.store.positions(name), &positions)
                    .await?;
                self.write(super::ConfigWrite::SetPositions {
                    name: name.to_string(),
                    reset: PositionsReset {
                        epoch: record.positions_epoch() + 1,
                        positions,
                    },
                })
                .await
                .map(drop)
            }
            PluginKind::Sink => {
                self.wait_for_empty_group(name, &topics).await?;
                let group = consumer_group(name);
                match change {
                    None => {
                        for topic in &topics {
                            self.deps
                                .hub
                                .set_group_offsets(&group, topic, None)
                                .await
                                .map_err(|e| WorkerError::Cluster(e.to_string()))?;
                        }
                    }
                    Some(entries) => {
                        let mut per_topic: std::collections::BTreeMap<
                            String,
                            Vec<(String, i32, i64)>,
                        > = Default::default();
                        for e in entries {
                            let topic = text_field(&e.partition, "topic")?;
                            if !topics.contains(&topic) {
                                return Err(WorkerError::InvalidConfig(format!(
                                    "offsets: topic `{topic}` is not one of the connector's {ROCKETMQ_TOPICS} ({})",
                                    topics.join(", ")
                                )));
                            }
                            let broker = text_field(&e.partition, "broker")?;
                            let queue = int_field(&e.partition, "queue")?;
                            let offset = int_field(&e.offset, "offset")?;
                            per_topic.entry(topic).or_default().push((
                                broker,
                                queue as i32,
                                offset,
                            ));
                        }
                        for (topic, list) in per_topic {
                            self.deps
                                .hub
                                .set_group_offsets(&group, &topic, Some(&list))
                                .await
                                .map_err(|e| WorkerError::Cluster(e.to_string()))?;
                        }
                    }
                }
                tracing::info!(connector = name, "sink offsets changed by an operator");
                Ok(())
            }
        }
    }

    /// For a source granted Kafka access (kafka-source), whose tasks resume from their Kafka
    /// consumer group's commits rather than from the host's positions: commits the changed
    /// positions (`<topic>/<partition>` -> next offset) to the group `connector-consumer-group-
    /// <name>`; a partition the change removes goes back to its earliest offset. Retries while
    /// the stopped tasks' consumers are still leaving the group (Kafka refuses the commit then).
    async fn commit_kafka_group(
        &self,
        name: &str,
        before: &Positions,
        after: &Positions,
    ) -> Result<(), WorkerError> {
        let (config, _) = self.live_config(name)?;
        let (_, settings) = self.resolved(&config)?;
        if settings.kafka.bootstrap.is_none() {
            return Ok(());
        }
        let kafka_partition = |key: &str| {
            let (topic, partition) = key.rsplit_once('/')?;
            Some((topic.to_string(), partition.parse::<i32>().ok()?))
        };
        let mut offsets = Vec::new();
        for key in before.keys().chain(after.keys()) {
            let Some((topic, partition)) = kafka_partition(key) else {
                continue;
            };
            if offsets
                .iter()
                .any(|(t, p, _)| *t == topic && *p == partition)
            {
                continue;
            }
            let next = match after.get(key) {
                Some(offset) => Some(offset.parse::<i64>().ok().filter(|o| *o >= 0).ok_or_else(
                    || {
                        WorkerError::InvalidConfig(format!(
                            "offsets: `{key}` is a Kafka partition; its source_offset must be a number >= 0, not `{offset}`"
                        ))
                    },
                )?),
                None => None,
            };
            offsets.push((topic, partition, next));
        }
        if offsets.is_empty() {
            return Ok(());
        }
        let group = consumer_group(name);
        let deadline = tokio::time::Instant::now() + GROUP_EMPTY_WAIT;
        loop {
            let (grant, list, in_group) = (settings.kafka.clone(), offsets.clone(), group.clone());
            let committed =
                tokio::task::spawn_blocking(move || grant.commit_group_offsets(&in_group, &list))
                    .await
                    .map_err(|e| WorkerError::Cluster(e.to_string()))?;
            match committed {
                Ok(()) => {
                    tracing::info!(
                        connector = name,
                        group,
                        "Kafka group offsets changed by an operator"
                    );
                    return Ok(());
                }
                Err(e) if tokio::time::Instant::now() > deadline => {
                    return Err(WorkerError::Cluster(format!(
                        "committing the offsets to Kafka group `{group}`: {e}"
                    )));
                }
                Err(e) => {
                    tracing::info!(
                        connector = name,
                        "Kafka group not ready for the change yet: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Waits until no consumer of a stopped sink is left in its group.
    async fn wait_for_empty_group(&self, name: &str, topics: &[String]) -> Result<(), WorkerError> {
        let group = consumer_group(name);
        let deadline = tokio::time::Instant::now() + GROUP_EMPTY_WAIT;
        loop {
            let mut online = 0;
            for topic in topics {
                online += self
                    .deps
                    .hub
                    .group_members(&group, topic)
                    .await
                    .map_err(|e| WorkerError::Cluster(e.to_string()))?
                    .len();
            }
            if online == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(WorkerError::StillStopping(name.to_string(), online));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn text_field(
    map: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<String, WorkerError> {
    match map.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
        _ => Err(WorkerError::InvalidConfig(format!(
            "offsets: `{key}` must be a string"
        ))),
    }
}

fn int_field(
    map: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<i64, WorkerError> {
    map.get(key)
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            WorkerError::InvalidConfig(format!("offsets: `{key}` must be a number >= 0"))
        })
}

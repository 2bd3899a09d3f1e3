//! The RocketMQ hub: one producer per worker for source tasks, one lite pull consumer per sink
//! task, and the mapping between guest records and RocketMQ messages.
//!
//! The rocketmq-rust client is built on a `RuntimeOwner`; `main.rs` runs the whole host on that
//! owner's tokio runtime, so client calls are awaited directly from host tasks (no bridging).

mod convert;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cheetah_string::CheetahString;
use rocketmq_client_rust::{
    AclClientRPCHook, BrokerAdmin, ClientRuntime, ClientRuntimeConfig, ConsumerAdmin,
    DefaultLitePullConsumer, DefaultMQAdminExt, DefaultMQProducer, MQAdminMutationExt,
    SessionCredentials, TopicAdmin,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_queue::MessageQueue;
use rocketmq_model::common::message::message_single::Message as MqMessage;
use rocketmq_runtime::ChildServiceContext;

pub use convert::{
    ORIGIN_PROPERTY, from_message_ext, to_mq_message, to_mq_message_with_body, to_mq_messages,
};

/// Errors talking to RocketMQ. Every one of them is retried by the task loops.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The client could not be created or started.
    #[error("rocketmq client: {0}")]
    Client(String),
    /// A send was not acknowledged.
    #[error("rocketmq send to {topic} queue {queue}: {reason}")]
    Send {
        /// Destination topic.
        topic: String,
        /// Destination queue id.
        queue: i32,
        /// What the client said.
        reason: String,
    },
    /// A topic has no route (yet).
    #[error("rocketmq topic {topic}: {reason}")]
    Route {
        /// The topic.
        topic: String,
        /// What the client said.
        reason: String,
    },
}

/// How to reach RocketMQ, from the worker settings.
#[derive(Clone, Debug)]
pub struct HubSettings {
    /// `namesrvAddr`.
    pub namesrv_addr: String,
    /// `workerId`, used as the clients' instance name.
    pub worker_id: String,
    /// `accessKey`/`secretKey` when `aclEnable=true`.
    pub acl: Option<(String, String)>,
    /// `autoCreateGroupEnable`: create topics that do not exist yet.
    pub auto_create: bool,
}

/// The largest message the producer sends (the broker's default `maxMessageSize`); a record
/// larger than this can never be delivered.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Queues of a topic Ferry creates.
const NEW_TOPIC_QUEUES: i32 = 8;
/// The broker's template topic for topic creation.
const TEMPLATE_TOPIC: &str = "TBW102";

/// The worker's RocketMQ clients.
pub struct Hub {
    settings: HubSettings,
    runtime: Arc<ClientRuntime>,
    /// Shared by all source tasks; sends take `&self`, so many batches are in flight at once.
    producer: DefaultMQProducer,
    /// Publish queues per topic, so a send does not look up the route each time.
    queues: Mutex<HashMap<String, Vec<MessageQueue>>>,
    /// For the member list of the cluster group.
    admin: tokio::sync::Mutex<DefaultMQAdminExt>,
}

impl Hub {
    /// Creates the client runtime and starts the producer.
    pub async fn start(
        context: ChildServiceContext,
        settings: HubSettings,
    ) -> Result<Arc<Hub>, HubError> {
        let runtime = ClientRuntime::try_new(
            context,
            ClientRuntimeConfig::default(),
            rocketmq_observability::TelemetryHandle::default(),
        )
        .map_err(|e| HubError::Client(e.to_string()))?;
        let mut builder = DefaultMQProducer::builder(runtime.clone())
            .producer_group(format!("ferry-producer-{}", settings.worker_id))
            .name_server_addr(settings.namesrv_addr.clone())
            .send_msg_timeout(10_000)
            .retry_times_when_send_failed(2)
            .max_message_size(MAX_MESSAGE_BYTES as u32);
        if let Some(hook) = acl_hook(&settings) {
            builder = builder.rpc_hook(hook);
        }
        let mut producer = builder.build();
        producer
            .start()
            .await
            .map_err(|e| HubError::Client(format!("producer start: {e}")))?;
        let admin_group = format!("ferry-admin-{}", settings.worker_id);
        let mut admin = match acl_hook(&settings) {
            Some(hook) => DefaultMQAdminExt::with_admin_ext_group_and_rpc_hook(
                runtime.clone(),
                admin_group,
                hook,
            ),
            None => DefaultMQAdminExt::with_admin_ext_group(runtime.clone(), admin_group),
        };
        admin.set_namesrv_addr(settings.namesrv_addr.as_str());
        BrokerAdmin::start(&mut admin)
            .await
            .map_err(|e| HubError::Client(format!("admin start: {e}")))?;
        Ok(Arc::new(Hub {
            settings,
            runtime,
            producer,
            queues: Mutex::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(admin),
        }))
    }

    /// The publish queues of `topic`; a missing topic is created when `autoCreateGroupEnable`.
    pub async fn queues(&self, topic: &str) -> Result<Vec<MessageQueue>, HubError> {
        if let Some(q) = self.queues.lock().unwrap().get(topic) {
            return Ok(q.clone());
        }
        let mut producer = self.producer.clone();
        let route_err = |e: rocketmq_client_rust::ClientError| HubError::Route {
            topic: topic.to_string(),
            reason: e.to_string(),
        };
        let mut queues = match producer.fetch_publish_message_queues(topic).await {
            Ok(q) => q,
            Err(e) if !self.settings.auto_create => return Err(route_err(e)),
            Err(_) => {
                tracing::info!(topic, queues = NEW_TOPIC_QUEUES, "creating RocketMQ topic");
                // Another client may be creating the same topic right now: creation is
                // idempotent, and the caller retries while its route settles.
                producer
                    .create_topic(TEMPLATE_TOPIC, topic, NEW_TOPIC_QUEUES, HashMap::new())
                    .await
                    .map_err(|e| HubError::Route {
                        topic: topic.to_string(),
                        reason: format!("creating it failed: {e}"),
                    })?;
                producer
                    .fetch_publish_message_queues(topic)
                    .await
                    .map_err(|e| HubError::Route {
                        topic: topic.to_string(),
                        reason: format!("created, but no route yet: {e}"),
                    })?
            }
        };
        if queues.is_empty() {
            return Err(HubError::Route {
                topic: topic.to_string(),
                reason: "no writable queue".into(),
            });
        }
        queues.sort_by_key(|q| (q.broker_name().to_string(), q.queue_id()));
        self.queues
            .lock()
            .unwrap()
            .insert(topic.to_string(), queues.clone());
        Ok(queues)
    }

    /// After a failed send to `queue`: looks the topic's route up again (a broker may have gone
    /// away or its queues moved). `Some(other)` when `queue` is no longer in the route: send to
    /// `other` instead (chosen from the queue id, so records of one queue stay together).
    pub async fn reroute(&self, queue: &MessageQueue) -> Option<MessageQueue> {
        let topic = queue.topic().as_str();
        self.queues.lock().unwrap().remove(topic);
        let queues = self.queues(topic).await.ok()?;
        if queues.iter().any(|q| q == queue) {
            return None;
        }
        Some(queues[queue.queue_id().unsigned_abs() as usize % queues.len()].clone())
    }

    /// The instance names of the live members of consumer group `group`, which subscribes to
    /// `topic`, as every broker serving `topic` lists them (client ids are `IP@instance`).
    /// A group with no member is an empty list.
    pub async fn group_members(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<std::collections::BTreeSet<String>, HubError> {
        let brokers = self.topic_brokers(topic).await?;
        let admin = self.admin.lock().await;
        let mut members = std::collections::BTreeSet::new();
        for (_, addr) in brokers {
            match ConsumerAdmin::examine_consumer_connection_info(&*admin, group.into(), Some(addr))
                .await
            {
                Ok(connection) => {
                    for c in connection.get_connection_set() {
                        let id = c.get_client_id();
                        if let Some(instance) = id.as_str().split('@').nth(1) {
                            members.insert(instance.to_string());
                        }
                    }
                }
                // Only the broker's explicit "consumer not online" means the group is empty;
                // any other failure is an error, so the caller keeps its last good list rather
                // than shrinking the cluster to itself.
                Err(e) if says_group_is_empty(&e) => {}
                Err(e) => return Err(HubError::Client(format!("members of {group}: {e}"))),
            }
        }
        Ok(members)
    }

    /// The master address of every broker serving `topic`, by broker name.
    async fn topic_brokers(&self, topic: &str) -> Result<Vec<(String, CheetahString)>, HubError> {
        let admin = self.admin.lock().await;
        let route = TopicAdmin::examine_topic_route_info(&*admin, topic.into())
            .await
            .map_err(|e| HubError::Route {
                topic: topic.to_string(),
                reason: e.to_string(),
            })?
            .ok_or_else(|| HubError::Route {
                topic: topic.to_string(),
                reason: "no route".into(),
            })?;
        Ok(route
            .broker_datas
            .iter()
            .filter_map(|b| {
                Some((
                    b.broker_name().to_string(),
                    b.broker_addrs().get(&0)?.clone(),
                ))
            })
            .collect())
    }

    /// Consumer group `group`'s committed offset of every queue of `topic` (queues it never
    /// committed show the broker's answer, usually 0), with each queue's max offset.
    pub async fn group_offsets(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Vec<GroupOffset>, HubError> {
        let brokers = self.topic_brokers(topic).await?;
        let admin = self.admin.lock().await;
        let mut out = Vec::new();
        for (_, addr) in brokers {
            let stats = ConsumerAdmin::examine_consume_stats(
                &*admin,
                group.into(),
                Some(topic.into()),
                None,
                Some(addr),
                None,
            )
            .await;
            let stats = match stats {
                Ok(stats) => stats,
                // A group that never consumed this topic has no offsets yet.
                Err(e) if says_group_is_empty(&e) || e.to_string().contains("not exist") => {
                    continue;
                }
                Err(e) => return Err(HubError::Client(format!("offsets of {group}: {e}"))),
            };
            for (queue, offsets) in stats.get_offset_table() {
                out.push(GroupOffset {
                    topic: queue.topic().to_string(),
                    broker: queue.broker_name().to_string(),
                    queue: queue.queue_id(),
                    offset: offsets.get_consumer_offset().max(0),
                    max_offset: offsets.get_broker_offset(),
                });
            }
        }
        out.sort_by(|a, b| (&a.topic, &a.broker, a.queue).cmp(&(&b.topic, &b.broker, b.queue)));
        Ok(out)
    }

    /// Sets consumer group `group`'s committed offset of each given queue; with `None`, of
    /// every queue of `topic` to 0 (consume from the start).
    pub async fn set_group_offsets(
        &self,
        group: &str,
        topic: &str,
        offsets: Option<&[(String, i32, i64)]>,
    ) -> Result<(), HubError> {
        let brokers = self.topic_brokers(topic).await?;
        let queues = self.queues(topic).await?;
        let wanted: Vec<(String, i32, i64)> = match offsets {
            Some(list) => list.to_vec(),
            None => queues
                .iter()
                .map(|q| (q.broker_name().to_string(), q.queue_id(), 0))
                .collect(),
        };
        // The broker refuses a plain commit below the stored offset; a conditional update
        // (expected -> new) moves it either way, and a race with a committing consumer shows
        // as a mismatch instead of being lost.
        let current = self.group_offsets(group, topic).await?;
        let admin = self.admin.lock().await;
        for (broker, queue, offset) in wanted {
            let Some((_, addr)) = brokers.iter().find(|(name, _)| *name == broker) else {
                return Err(HubError::Route {
                    topic: topic.to_string(),
                    reason: format!("no broker `{broker}` serves it"),
                });
            };
            let mut expected = current
                .iter()
                .find(|o| o.broker == broker && o.queue == queue)
                .map_or(-1, |o| o.offset);
            for attempt in 0..3 {
                let outcome = MQAdminMutationExt::reset_consumer_offset_if_current(
                    &*admin,
                    addr.clone(),
                    group.into(),
                    topic.into(),
                    queue,
                    expected,
                    offset.max(0),
                )
                .await
                .map_err(|e| {
                    HubError::Client(format!(
                        "set offset of {group} on {topic}/{broker}/{queue}: {e}"
                    ))
                })?;
                if outcome.applied {
                    break;
                }
                if attempt == 2 {
                    return Err(HubError::Client(format!(
                        "set offset of {group} on {topic}/{broker}/{queue}: it keeps changing (now {})",
                        outcome.actual_offset
                    )));
                }
                expected = outcome.actual_offset;
            }
        }
        Ok(())
    }

    /// Checks that an internal topic exists (creating it when `autoCreateGroupEnable`); the
    /// error names the topic.
    pub async fn ensure_topic(&self, topic: &str) -> Result<(), HubError> {
        self.queues(topic).await.map(drop)
    }

    /// Sends one message to the queue picked by `key` (same key, same queue, so in order).
    pub async fn send_keyed(&self, topic: &str, key: &str, body: Vec<u8>) -> Result<(), HubError> {
        let queues = self.queues(topic).await?;
        let queue = &queues[crate::model::key_hash(key.as_bytes()) as usize % queues.len()];
        let message = MqMessage::builder()
            .topic(topic)
            .body_slice(&body)
            .build_unchecked();
        self.send_batch(queue, vec![message]).await
    }

    /// Sends one batch to one queue; `Ok` means the broker stored it.
    pub async fn send_batch(
        &self,
        queue: &MessageQueue,
        messages: Vec<MqMessage>,
    ) -> Result<(), HubError> {
        let err = |reason: String| HubError::Send {
            topic: queue.topic().to_string(),
            queue: queue.queue_id(),
            reason,
        };
        let result = self
            .producer
            .send_batch_to_queue(messages, queue.clone())
            .await
            .map_err(|e| err(e.to_string()))?;
        use rocketmq_client_rust::SendStatus;
        match result.send_status {
            SendStatus::SendOk => Ok(()),
            other => Err(err(format!("broker answered {other:?}"))),
        }
    }

    /// Starts a consumer in `group` subscribed to `topics`, with auto-commit off: offsets are
    /// committed by the sink loop only after `put()` succeeded.
    pub async fn consumer(
        &self,
        group: &str,
        topics: &[String],
        instance: &str,
    ) -> Result<SinkConsumer, HubError> {
        let mut builder = DefaultLitePullConsumer::builder(self.runtime.clone())
            .consumer_group(group)
            .name_server_addr(self.settings.namesrv_addr.clone())
            .instance_name(instance)
            .auto_commit(false)
            // A new sink starts at the beginning of its topics, like Kafka Connect's `earliest`.
            .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
            .pull_batch_size(256)
            .poll_timeout_millis(500)
            // A topic created after the sink (or given more queues) is picked up within
            // seconds rather than the client's default 30 s.
            .topic_metadata_check_interval_millis(TOPIC_CHECK_MS);
        if let Some(hook) = acl_hook(&self.settings) {
            builder = builder.rpc_hook(hook);
        }
        let consumer = builder
            .build()
            .map_err(|e| HubError::Client(format!("consumer: {e}")))?;
        for topic in topics {
            consumer
                .subscribe(topic)
                .await
                .map_err(|e| HubError::Client(format!("subscribe {topic}: {e}")))?;
        }
        consumer
            .start()
            .await
            .map_err(|e| HubError::Client(format!("consumer start: {e}")))?;
        Ok(SinkConsumer { consumer })
    }
}

/// How often a sink's consumer looks for its topics' queues (created later, or grown).
const TOPIC_CHECK_MS: u64 = 3000;

/// RocketMQ's `CONSUMER_NOT_ONLINE`: the broker knows no connected member of the group.
const CONSUMER_NOT_ONLINE: i32 = 206;

/// Whether `e` is the broker (or the client, for an empty connection list) saying that a
/// consumer group has no member: the one answer that may shrink a member list.
fn says_group_is_empty(e: &rocketmq_client_rust::ClientError) -> bool {
    e.broker_response_code() == Some(CONSUMER_NOT_ONLINE)
        || e.source_ref::<rocketmq_client_rust::MQClientException>()
            .is_some_and(|x| x.response_code() == CONSUMER_NOT_ONLINE)
}

fn acl_hook(settings: &HubSettings) -> Option<Arc<rocketmq_client_rust::ClientRpcHook>> {
    settings.acl.as_ref().map(|(access, secret)| {
        Arc::new(AclClientRPCHook::new(SessionCredentials::with_keys(
            access.as_str(),
            secret.as_str(),
        ))) as Arc<rocketmq_client_rust::ClientRpcHook>
    })
}

/// One queue's committed offset in a consumer group.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GroupOffset {
    /// Topic.
    pub topic: String,
    /// Broker name.
    pub broker: String,
    /// Queue id.
    pub queue: i32,
    /// The next offset the group consumes.
    pub offset: i64,
    /// The queue's max offset (its next message's offset).
    pub max_offset: i64,
}

/// One sink task's consumer.
pub struct SinkConsumer {
    consumer: DefaultLitePullConsumer,
}

impl SinkConsumer {
    /// Waits up to `timeout_ms` for messages, then takes what else is already fetched, up to
    /// `max` (it may pass `max` by one pull). One client poll returns one pull: at most 32
    /// messages with the broker's default `maxTransferCountOnMessageInMemory`; a sink
    /// acknowledges a batch per call, so bigger batches mean fewer round trips to the
    /// destination.
    pub async fn poll(&self, max: usize, timeout_ms: u64) -> Vec<MessageExt> {
        let mut messages = self.consumer.poll_with_timeout(timeout_ms).await;
        while !messages.is_empty() && messages.len() < max {
            let more = self.consumer.poll_with_timeout(0).await;
            if more.is_empty() {
                break;
            }
            messages.extend(more);
        }
        messages
    }

    /// The next offset per (topic, broker, queue) after `messages`, for [`Self::commit`].
    pub fn next_offsets(messages: &[MessageExt]) -> HashMap<(String, String, i32), i64> {
        // Borrowed keys while counting: owned ones per message cost two allocations each.
        let mut offsets: HashMap<(&str, &str, i32), i64> = HashMap::new();
        for ext in messages {
            let next = ext.queue_offset() + 1;
            let entry = offsets
                .entry((ext.topic().as_str(), ext.broker_name(), ext.queue_id()))
                .or_insert(next);
            *entry = (*entry).max(next);
        }
        offsets
            .into_iter()
            .map(|((topic, broker, queue), next)| {
                ((topic.to_string(), broker.to_string(), queue), next)
            })
            .collect()
    }

    /// Records behind the head of the queues `messages` came from: per queue, the queue's
    /// max offset when the broker answered the pull (the client's `MAX_OFFSET` property)
    /// minus the offset after its last message here.
    pub fn lag(messages: &[MessageExt]) -> i64 {
        let mut per_queue: HashMap<(&str, &str, i32), i64> = HashMap::new();
        // A queue's last message is the least behind: read the property once per queue.
        for ext in messages.iter().rev() {
            if per_queue.contains_key(&(ext.topic().as_str(), ext.broker_name(), ext.queue_id())) {
                continue;
            }
            let Some(max) = ext
                .property(&CheetahString::from_static_str(
                    rocketmq_model::common::message::MessageConst::PROPERTY_MAX_OFFSET,
                ))
                .and_then(|v| v.parse::<i64>().ok())
            else {
                continue;
            };
            let behind = (max - ext.queue_offset() - 1).max(0);
            let entry = per_queue
                .entry((ext.topic(), ext.broker_name(), ext.queue_id()))
                .or_insert(behind);
            *entry = (*entry).min(behind);
        }
        per_queue.values().sum()
    }

    /// Commits `next offset` per queue to the broker.
    pub async fn commit(&self, offsets: HashMap<(String, String, i32), i64>) {
        let map = offsets
            .into_iter()
            .map(|((topic, broker, queue), offset)| {
                (
                    MessageQueue::from_parts(
                        CheetahString::from_string(topic),
                        CheetahString::from_string(broker),
                        queue,
                    ),
                    offset,
                )
            })
            .collect();
        self.consumer.commit_sync_with_map(map, true).await;
    }

    /// Shuts the consumer down (takes 10-17 s with this client: run it in the background).
    pub async fn shutdown(self) {
        self.consumer.shutdown().await;
    }
}

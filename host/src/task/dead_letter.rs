//! Records a task can never deliver (KIP-298 semantics). With `errors.tolerance=none` (the
//! default) such a record fails the task; with `all` it goes to the connector's dead-letter
//! topic in RocketMQ (or is skipped when none is set), optionally logged, and the task goes on.
//! A dead letter is sent before the offsets or positions past its record are committed, so a
//! crash in between sends it again rather than losing it (at least once, like every record).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::StatusCell;
use super::backoff::Backoff;
use crate::config::ErrorPolicy;
use crate::rocketmq::{Hub, MAX_MESSAGE_BYTES, to_mq_messages};
use crate::wasm::bindings::{Message, RecordBatch};
use crate::wasm::state::TaskIds;

/// Header names a dead letter carries with `errors.deadletterqueue.context.headers.enable`:
/// Kafka Connect's `__connect.errors.*` names without the leading underscores (RocketMQ
/// reserves names of that shape).
pub mod headers {
    /// The topic the record was read from (a sink's RocketMQ topic) or was bound for (a source).
    pub const TOPIC: &str = "connect.errors.topic";
    /// Its partition: RocketMQ queue id for a sink, the source partition for a source.
    pub const PARTITION: &str = "connect.errors.partition";
    /// Its offset: RocketMQ queue offset for a sink, the batch's source offset for a source.
    pub const OFFSET: &str = "connect.errors.offset";
    /// The connector's name.
    pub const CONNECTOR: &str = "connect.errors.connector.name";
    /// The task index.
    pub const TASK: &str = "connect.errors.task.id";
    /// `put` (a sink's guest refused it) or `send` (RocketMQ cannot take it).
    pub const STAGE: &str = "connect.errors.stage";
    /// The error class: `rejected` or `record-too-large`.
    pub const CLASS: &str = "connect.errors.class.name";
    /// The reason, as the guest or the host gave it.
    pub const MESSAGE: &str = "connect.errors.exception.message";
    /// Set when the value was cut to fit RocketMQ: the original value size in bytes.
    pub const VALUE_TRUNCATED: &str = "connect.errors.value.truncated.from";
}

/// Most value bytes a dead letter keeps of a record too large for RocketMQ.
const TRUNCATED_VALUE_BYTES: usize = 1024 * 1024;

/// Where a failed record came from and why it failed.
pub struct FailedRecord<'a> {
    /// `put` or `send`.
    pub stage: &'static str,
    /// `rejected` or `record-too-large`.
    pub class: &'static str,
    /// See [`headers::TOPIC`].
    pub topic: &'a str,
    /// See [`headers::PARTITION`].
    pub partition: String,
    /// See [`headers::OFFSET`].
    pub offset: String,
    /// The reason.
    pub reason: &'a str,
}

/// One task's handling of records it can never deliver.
#[derive(Clone)]
pub struct DeadLetters {
    policy: ErrorPolicy,
    hub: Arc<Hub>,
    ids: TaskIds,
    status: StatusCell,
}

impl DeadLetters {
    /// The handling `policy` asks for, sending through `hub`.
    pub fn new(policy: ErrorPolicy, hub: Arc<Hub>, ids: TaskIds, status: StatusCell) -> Self {
        DeadLetters {
            policy,
            hub,
            ids,
            status,
        }
    }

    /// Whether a failed record lets the task go on (`errors.tolerance=all`).
    pub fn tolerates(&self) -> bool {
        self.policy.tolerate
    }

    /// Takes care of one failed record the policy tolerates: logs it (`errors.log.enable`),
    /// counts it, and sends it (key, value, headers as they were, marked as copied in by this
    /// connector) to the dead-letter topic when one is set, retrying until RocketMQ stored it.
    /// `false` only if the task stopped first.
    pub async fn handle(
        &self,
        record: &Message,
        failed: &FailedRecord<'_>,
        stop: &CancellationToken,
    ) -> bool {
        self.status.metrics().error(failed.class);
        if self.policy.log {
            tracing::warn!(
                stage = failed.stage,
                class = failed.class,
                topic = failed.topic,
                partition = %failed.partition,
                offset = %failed.offset,
                dead_letter_topic = self.policy.dead_letter_topic.as_deref().unwrap_or("(none: skipped)"),
                "record cannot be delivered; tolerated (errors.tolerance=all): {}",
                failed.reason
            );
        }
        let Some(topic) = &self.policy.dead_letter_topic else {
            return true;
        };
        let one = RecordBatch {
            topic: topic.clone(),
            partition: 0,
            messages: vec![record.clone()],
        };
        let mut message = to_mq_messages(&one, topic, &self.ids.connector)
            .pop()
            .expect("one record in, one message out");
        let size = message.body_slice().len();
        let mut context = Vec::new();
        if size > MAX_MESSAGE_BYTES {
            let cut = bytes::Bytes::copy_from_slice(&message.body_slice()[..TRUNCATED_VALUE_BYTES]);
            message.set_body(Some(cut));
            // Said whatever the context-headers setting: the value is not the record's.
            context.push((headers::VALUE_TRUNCATED, size.to_string()));
        }
        if self.policy.context_headers {
            context.extend([
                (headers::TOPIC, failed.topic.to_string()),
                (headers::PARTITION, failed.partition.clone()),
                (headers::OFFSET, failed.offset.clone()),
                (headers::CONNECTOR, self.ids.connector.clone()),
                (headers::TASK, self.ids.task.to_string()),
                (headers::STAGE, failed.stage.to_string()),
                (headers::CLASS, failed.class.to_string()),
                (headers::MESSAGE, failed.reason.to_string()),
            ]);
        }
        let properties = message.properties_mut().as_map_mut();
        for (name, value) in context {
            // The RocketMQ property encoding separates pairs with \x01 and \x02.
            let value: String = value
                .chars()
                .map(|c| if c < ' ' { ' ' } else { c })
                .collect();
            properties.insert(name.into(), value.into());
        }
        let mut backoff = Backoff::for_retries();
        loop {
            let sent = match self.hub.queues(topic).await {
                Ok(queues) => {
                    let queue = &queues[self.ids.task as usize % queues.len()];
                    self.hub.send_batch(queue, vec![message.clone()]).await
                }
                Err(e) => Err(e),
            };
            match sent {
                Ok(()) => {
                    self.status.metrics().dead_letters.inc();
                    return true;
                }
                Err(e) => {
                    let reason = format!("dead-letter topic {topic}: {e}");
                    if !self
                        .status
                        .wait_to_retry(&mut backoff, "rocketmq", reason, stop)
                        .await
                    {
                        return false;
                    }
                }
            }
        }
    }
}

//! Sends a source task's records to RocketMQ, one sender per queue. Records with the same key
//! go to the same queue, and each queue has at most one send in flight, so per-key order holds;
//! many queues send in parallel, and records waiting for the same queue are merged into one
//! batch send. A failed send is retried in place (blocking only its queue) until it succeeds or
//! the task stops, looking the route up again after each failure (a queue whose broker left is
//! replaced); every caller learns through its own acknowledgement channel. A record larger than
//! RocketMQ accepts can never be sent: the task fails with `record-too-large` instead of
//! retrying forever (with `errors.tolerance=all` the source loop dead-letters such records
//! before they reach a sender). Senders keep the guest's records and build the RocketMQ
//! messages right before each send: a built copy kept for retries cost a clone of every
//! message's properties per send (issue 13 profile). Each record's value moves into `Bytes`
//! once, so no send attempt copies it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use cheetah_string::CheetahString;
use rocketmq_model::common::message::message_queue::MessageQueue;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::StatusCell;
use super::backoff::Backoff;
pub use crate::model::key_hash;
use crate::rocketmq::{Hub, HubError, MAX_MESSAGE_BYTES, to_mq_message_with_body};
use crate::wasm::bindings::Message;

/// Messages per RocketMQ batch send. A queue has one send in flight (per-key order), so a
/// task moves at most this many records per queue per broker round trip: at 256, one
/// kafka-source task stalled on that at 59-75k rec/s; at 512 it ran at 76.5-76.8k in every
/// round (BENCHMARKS.md, issue 13, 2026-12-05 afternoon).
const BATCH_MESSAGES: usize = 512;
/// Bytes per RocketMQ batch send (the broker's limit is 4 MiB; sends under 1 MiB are fastest).
const BATCH_BYTES: usize = 900 * 1024;
/// Per-message overhead counted against [`BATCH_BYTES`] (properties, headers).
const MESSAGE_OVERHEAD: usize = 200;

/// A record on its way to RocketMQ: the guest's record, its value moved into `body`.
struct Outgoing {
    /// The record; its `value` is empty (it is `body`).
    record: Message,
    body: Bytes,
}

impl From<Message> for Outgoing {
    fn from(mut record: Message) -> Self {
        let body = Bytes::from(std::mem::take(&mut record.value));
        Outgoing { record, body }
    }
}

/// Records for one queue, with the channel that reports their acknowledgement.
struct Chunk {
    messages: Vec<Outgoing>,
    acked: oneshot::Sender<()>,
}

/// The senders of one source task.
pub struct QueueDispatcher {
    hub: Arc<Hub>,
    /// The origin marker of every message (the connector's name).
    origin: Arc<str>,
    status: StatusCell,
    stop: CancellationToken,
    senders: HashMap<(String, String, i32), mpsc::UnboundedSender<Chunk>>,
}

/// Resolves once every record handed to [`QueueDispatcher::dispatch`] was acknowledged; `false`
/// if the task stopped first.
pub type Acks = Vec<oneshot::Receiver<()>>;

impl QueueDispatcher {
    /// Senders for one task of connector `origin`; they stop with `stop`.
    pub fn new(hub: Arc<Hub>, origin: &str, status: StatusCell, stop: CancellationToken) -> Self {
        QueueDispatcher {
            hub,
            origin: origin.into(),
            status,
            stop,
            senders: HashMap::new(),
        }
    }

    /// The queues of `topic` (looked up, or created with the topic): the only step of a
    /// dispatch that can fail, so a caller retries it before handing its records over.
    pub async fn queues(&self, topic: &str) -> Result<Vec<MessageQueue>, HubError> {
        self.hub.queues(topic).await
    }

    /// Queues the records of one partition batch over `queues` (from [`Self::queues`]): by key
    /// hash, or by `partition` for records without a key. Returns the acknowledgements to wait
    /// for.
    pub fn dispatch(
        &mut self,
        queues: &[MessageQueue],
        partition: i32,
        messages: Vec<Message>,
    ) -> Acks {
        let mut per_queue: Vec<Vec<Outgoing>> = (0..queues.len()).map(|_| Vec::new()).collect();
        for message in messages {
            let slot = match message.key.as_deref().map(key_hash) {
                Some(h) => h as usize % queues.len(),
                None => partition.rem_euclid(queues.len() as i32) as usize,
            };
            per_queue[slot].push(message.into());
        }
        let mut acks = Vec::new();
        for (queue, messages) in queues.iter().zip(per_queue) {
            if messages.is_empty() {
                continue;
            }
            let (acked, ack) = oneshot::channel();
            acks.push(ack);
            let _ = self.sender(queue).send(Chunk { messages, acked });
        }
        acks
    }

    fn sender(&mut self, queue: &MessageQueue) -> &mpsc::UnboundedSender<Chunk> {
        let key = (
            queue.topic().to_string(),
            queue.broker_name().to_string(),
            queue.queue_id(),
        );
        self.senders.entry(key).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(send_loop(
                self.hub.clone(),
                queue.clone(),
                self.origin.clone(),
                rx,
                self.status.clone(),
                self.stop.clone(),
            ));
            tx
        })
    }
}

/// Sends the chunks of one queue in order, merging waiting chunks into one batch send.
async fn send_loop(
    hub: Arc<Hub>,
    mut queue: MessageQueue,
    origin: Arc<str>,
    mut rx: mpsc::UnboundedReceiver<Chunk>,
    status: StatusCell,
    stop: CancellationToken,
) {
    let mut carry: Option<Chunk> = None;
    loop {
        let first = match carry.take() {
            Some(c) => c,
            None => tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                next = rx.recv() => match next { Some(c) => c, None => return },
            },
        };
        // Merge what is already waiting, within the batch limits.
        let mut count = first.messages.len();
        let mut bytes = size_of(&first.messages);
        let mut group = vec![first];
        while let Ok(next) = rx.try_recv() {
            let next_bytes = size_of(&next.messages);
            if count + next.messages.len() > BATCH_MESSAGES || bytes + next_bytes > BATCH_BYTES {
                carry = Some(next);
                break;
            }
            count += next.messages.len();
            bytes += next_bytes;
            group.push(next);
        }
        let mut acks = Vec::with_capacity(group.len());
        let mut messages = Vec::with_capacity(count);
        for chunk in group {
            acks.push(chunk.acked);
            messages.extend(chunk.messages);
        }
        if let Some(size) = messages
            .iter()
            .map(|m| m.body.len())
            .find(|size| *size > MAX_MESSAGE_BYTES)
        {
            status.fail_for_good(
                "record-too-large",
                format!(
                    "a record of {size} bytes for RocketMQ topic {} is larger than the {MAX_MESSAGE_BYTES} bytes a message may have; \
                     it can never be sent, so the task stopped (nothing after the last acknowledged record was committed)",
                    queue.topic()
                ),
            );
            return;
        }
        for batch in split(messages) {
            if !send_until_acked(&hub, &mut queue, &batch, &origin, &status, &stop).await {
                return;
            }
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

fn size_of(messages: &[Outgoing]) -> usize {
    messages
        .iter()
        .map(|m| m.body.len() + MESSAGE_OVERHEAD)
        .sum()
}

/// Sends one batch, retrying with backoff and a fresh route after each failure (`queue` is
/// replaced when its broker left the route). False only if the task stopped first.
async fn send_until_acked(
    hub: &Hub,
    queue: &mut MessageQueue,
    batch: &[Outgoing],
    origin: &Arc<str>,
    status: &StatusCell,
    stop: &CancellationToken,
) -> bool {
    let mut backoff = Backoff::for_retries();
    let origin = CheetahString::from_arc_str(origin.clone());
    loop {
        let topic = queue.topic().clone();
        let messages = batch
            .iter()
            .map(|m| to_mq_message_with_body(&m.record, m.body.clone(), &topic, &origin))
            .collect();
        match hub.send_batch(queue, messages).await {
            Ok(()) => return true,
            Err(e) => {
                if !status
                    .wait_to_retry(&mut backoff, "rocketmq", e.to_string(), stop)
                    .await
                {
                    return false;
                }
                if let Some(other) = hub.reroute(queue).await {
                    tracing::warn!(from = %queue, to = %other, "queue left the route; sending to another");
                    *queue = other;
                }
            }
        }
    }
}

/// Splits messages into batch sends under [`BATCH_MESSAGES`] and [`BATCH_BYTES`], in order.
fn split(messages: Vec<Outgoing>) -> Vec<Vec<Outgoing>> {
    let mut out: Vec<Vec<Outgoing>> = Vec::new();
    let mut bytes = 0;
    for m in messages {
        let size = m.body.len() + MESSAGE_OVERHEAD;
        match out.last_mut() {
            Some(last) if last.len() < BATCH_MESSAGES && bytes + size <= BATCH_BYTES => {
                bytes += size;
                last.push(m);
            }
            _ => {
                bytes = size;
                out.push(vec![m]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_count_and_bytes() {
        let msgs: Vec<Outgoing> = (0..600)
            .map(|i| {
                Outgoing::from(Message {
                    key: None,
                    value: vec![0u8; 1000],
                    headers: Vec::new(),
                    timestamp_ms: 0,
                    offset: i,
                })
            })
            .collect();
        let out = split(msgs);
        assert!(out.iter().all(|c| c.len() <= BATCH_MESSAGES));
        assert!(out.iter().all(|c| size_of(c) <= BATCH_BYTES));
        assert_eq!(out.iter().map(Vec::len).sum::<usize>(), 600);
    }

    #[test]
    fn key_hash_is_stable() {
        assert_eq!(key_hash(b"k1"), key_hash(b"k1"));
        assert_ne!(key_hash(b"k1"), key_hash(b"k2"));
        assert_eq!(key_hash(b""), 0x811c9dc5);
    }
}

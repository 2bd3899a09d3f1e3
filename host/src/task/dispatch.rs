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
//!
//! The senders belong to the connector, not the task: every task of a connector on this worker
//! hands its records for a queue to the same sender, so they go out in the same batch sends.
//! With a sender per task, four tasks sent four times as many batches, each a quarter the size,
//! and moved fewer records than one task (issue 13). Each record still reports to its own task:
//! a failed send shows on every task with records in it, a stopped task's records are not sent
//! any more, and a record too large fails only the task that produced it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

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

/// Records for one queue, with the channel that reports their acknowledgement and the task
/// they came from.
struct Chunk {
    messages: Vec<Outgoing>,
    acked: oneshot::Sender<()>,
    task: TaskLink,
}

/// The task a chunk came from: where a failed send shows, and whether it still wants the
/// records sent.
#[derive(Clone)]
struct TaskLink {
    status: StatusCell,
    stop: CancellationToken,
}

impl TaskLink {
    fn running(&self) -> bool {
        !self.stop.is_cancelled()
    }
}

/// The queue senders of one connector on this worker, shared by its tasks (see the module doc).
struct ConnectorSenders {
    hub: Arc<Hub>,
    /// The origin marker of every message (the connector's name).
    origin: Arc<str>,
    /// One sender per (topic, broker, queue); each ends once this is dropped (with the last
    /// task of the connector here) and what it was given is sent or dropped.
    queues: Mutex<HashMap<(String, String, i32), mpsc::UnboundedSender<Chunk>>>,
}

/// The connectors' senders on this worker, by hub and connector name. Weak: the senders end
/// with the last task holding them.
static SENDERS: LazyLock<Mutex<HashMap<(usize, String), Weak<ConnectorSenders>>>> =
    LazyLock::new(Default::default);

impl ConnectorSenders {
    /// The senders of connector `origin` on `hub`: the ones its other tasks use, or new ones.
    fn of(hub: Arc<Hub>, origin: &str) -> Arc<Self> {
        let key = (Arc::as_ptr(&hub) as usize, origin.to_owned());
        let mut open = SENDERS.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, senders| senders.strong_count() > 0);
        if let Some(senders) = open.get(&key).and_then(Weak::upgrade) {
            return senders;
        }
        let senders = Arc::new(ConnectorSenders {
            hub,
            origin: origin.into(),
            queues: Mutex::new(HashMap::new()),
        });
        open.insert(key, Arc::downgrade(&senders));
        senders
    }

    /// Hands `chunk` to the sender of `queue`, starting it on first use.
    fn send(&self, queue: &MessageQueue, chunk: Chunk) {
        let key = (
            queue.topic().to_string(),
            queue.broker_name().to_string(),
            queue.queue_id(),
        );
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let sender = queues.entry(key).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(send_loop(
                self.hub.clone(),
                queue.clone(),
                self.origin.clone(),
                rx,
            ));
            tx
        });
        let _ = sender.send(chunk);
    }
}

/// A source task's way to its connector's queue senders.
pub struct QueueDispatcher {
    hub: Arc<Hub>,
    senders: Arc<ConnectorSenders>,
    task: TaskLink,
}

/// Resolves once every record handed to [`QueueDispatcher::dispatch`] was acknowledged; `false`
/// if the task stopped first.
pub type Acks = Vec<oneshot::Receiver<()>>;

impl QueueDispatcher {
    /// The dispatcher of one task of connector `origin`: its records stop being sent once
    /// `stop` is cancelled.
    pub fn new(hub: Arc<Hub>, origin: &str, status: StatusCell, stop: CancellationToken) -> Self {
        QueueDispatcher {
            senders: ConnectorSenders::of(hub.clone(), origin),
            hub,
            task: TaskLink { status, stop },
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
            self.senders.send(
                queue,
                Chunk {
                    messages,
                    acked,
                    task: self.task.clone(),
                },
            );
        }
        acks
    }
}

/// Sends the chunks of one queue in order, merging waiting chunks into one batch send, until
/// the connector's last task here is gone.
async fn send_loop(
    hub: Arc<Hub>,
    mut queue: MessageQueue,
    origin: Arc<str>,
    mut rx: mpsc::UnboundedReceiver<Chunk>,
) {
    let mut carry: Option<Chunk> = None;
    'chunks: loop {
        let first = match carry.take() {
            Some(c) => c,
            None => match rx.recv().await {
                Some(c) => c,
                None => return,
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
        // A stopped task committed nothing after these records: they are not sent (their
        // acknowledgements are dropped).
        group.retain(|chunk| chunk.task.running() && fits(chunk, &queue));
        let mut acks = Vec::with_capacity(group.len());
        let mut tasks: Vec<TaskLink> = Vec::new();
        let mut messages = Vec::with_capacity(count);
        for chunk in group {
            acks.push(chunk.acked);
            if !tasks.iter().any(|t| t.status.is(&chunk.task.status)) {
                tasks.push(chunk.task);
            }
            messages.extend(chunk.messages);
        }
        for batch in split(messages) {
            if !send_until_acked(&hub, &mut queue, &batch, &origin, &tasks).await {
                continue 'chunks;
            }
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

/// Whether every record of `chunk` can ever be sent. A record larger than RocketMQ accepts
/// fails its task for good (retrying cannot help).
fn fits(chunk: &Chunk, queue: &MessageQueue) -> bool {
    let Some(size) = chunk
        .messages
        .iter()
        .map(|m| m.body.len())
        .find(|size| *size > MAX_MESSAGE_BYTES)
    else {
        return true;
    };
    chunk.task.status.fail_for_good(
        "record-too-large",
        format!(
            "a record of {size} bytes for RocketMQ topic {} is larger than the {MAX_MESSAGE_BYTES} bytes a message may have; \
             it can never be sent, so the task stopped (nothing after the last acknowledged record was committed)",
            queue.topic()
        ),
    );
    false
}

fn size_of(messages: &[Outgoing]) -> usize {
    messages
        .iter()
        .map(|m| m.body.len() + MESSAGE_OVERHEAD)
        .sum()
}

/// Sends one batch, retrying with backoff and a fresh route after each failure (`queue` is
/// replaced when its broker left the route). False only once none of `tasks`, whose records
/// it holds, runs any more.
async fn send_until_acked(
    hub: &Hub,
    queue: &mut MessageQueue,
    batch: &[Outgoing],
    origin: &Arc<str>,
    tasks: &[TaskLink],
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
                if !wait_to_resend(tasks, &mut backoff, e.to_string()).await {
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

/// After a failed send: every running task with records in the batch shows the failure (and
/// gives up once it lasted past its retry limit), then the backoff's delay passes. False once
/// none of them runs.
async fn wait_to_resend(tasks: &[TaskLink], backoff: &mut Backoff, error: String) -> bool {
    let running: Vec<&TaskLink> = tasks.iter().filter(|t| t.running()).collect();
    let Some((lead, others)) = running.split_first() else {
        return false;
    };
    for task in others {
        task.status
            .show_retrying("rocketmq", error.clone(), backoff.failing_for());
    }
    // The first running task waits out the delay for all (the delay is the same for each).
    lead.status
        .wait_to_retry(backoff, "rocketmq", error, &lead.stop)
        .await;
    tasks.iter().any(TaskLink::running)
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

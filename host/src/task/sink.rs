//! The sink loop: RocketMQ poll -> batches per (topic, queue) -> `put()` and `flush()` -> on Ok,
//! commit the next offsets to RocketMQ (gathered, at most every [`COMMIT_EVERY`]). A batch that was not `put()` successfully is kept and given to the
//! restarted guest, so a guest fault never skips records.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::dead_letter::{DeadLetters, FailedRecord};
use super::source::{COMMIT_EVERY, load_code, wait_after_fault};
use super::{StatusCell, TaskDeps, TaskLifecycle, TaskSpec};
use crate::metrics::TaskMetrics;
use crate::rocketmq::{SinkConsumer, from_message_ext};
use crate::wasm::bindings::{Message, RecordBatch};
use crate::wasm::{GuestFault, SinkGuest};
use rocketmq_model::common::message::message_ext::MessageExt;

/// How long one RocketMQ poll waits for messages.
const POLL_TIMEOUT_MS: u64 = 200;
/// The most records handed to one `put()`.
const MAX_PUT_RECORDS: usize = 2048;
/// While a put is in flight, how long one RocketMQ poll waits for more of the next batch
/// (the loop polls again until the put is done).
const GATHER_MS: u64 = 2;

/// Records taken from RocketMQ but not yet acknowledged by the guest.
struct Pending {
    batches: Vec<RecordBatch>,
    /// (topic, broker, queue) -> next offset to commit once `put()` succeeded.
    offsets: HashMap<(String, String, i32), i64>,
    records: u64,
    /// Value bytes of the records.
    bytes: u64,
}

/// RocketMQ offsets whose records the guest accepted (and flushed), not yet committed.
#[derive(Default)]
struct Accepted {
    offsets: HashMap<(String, String, i32), i64>,
    since: Option<std::time::Instant>,
}

impl Accepted {
    fn add(&mut self, offsets: HashMap<(String, String, i32), i64>) {
        for (queue, next) in offsets {
            let at = self.offsets.entry(queue).or_insert(next);
            *at = (*at).max(next);
        }
        self.since.get_or_insert_with(std::time::Instant::now);
    }

    /// Commits when [`COMMIT_EVERY`] passed since the oldest uncommitted acceptance, or with
    /// `now` (before the task pauses or stops).
    async fn commit(&mut self, consumer: &SinkConsumer, metrics: &TaskMetrics, now: bool) {
        let due = self.since.is_some_and(|s| s.elapsed() >= COMMIT_EVERY);
        if !self.offsets.is_empty() && (now || due) {
            self.since = None;
            let started = std::time::Instant::now();
            consumer.commit(std::mem::take(&mut self.offsets)).await;
            metrics
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
        }
    }
}

/// The consumer group of a sink connector (the seed's naming).
pub fn consumer_group(connector: &str) -> String {
    format!("connector-consumer-group-{connector}")
}

/// Runs a sink task until `stop` is cancelled.
pub async fn run(spec: TaskSpec, deps: TaskDeps, status: StatusCell, stop: CancellationToken) {
    let Some(consumer) = connect(&spec, &deps, &status, &stop).await else {
        status.stopped();
        return;
    };
    let mut plugin_rx = deps.registry.follow(&spec.plugin);
    let limits = spec.limits(&status);
    let runtime = deps.registry.runtime().clone();
    let mut restarts = Backoff::for_restarts();
    let mut retries = Backoff::for_retries();
    let dead_letters = DeadLetters::new(
        spec.settings.errors.clone(),
        deps.hub.clone(),
        spec.ids.clone(),
        status.clone(),
    );
    // Taken from RocketMQ, not yet accepted by the guest, in order. At most two: the batch being
    // `put()` and the one fetched meanwhile.
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut accepted = Accepted::default();
    'guest: while !stop.is_cancelled() {
        let plugin = plugin_rx.borrow_and_update().clone();
        status.set_state(TaskLifecycle::Starting);
        // Held while the guest lives: a second task of this plugin shares the code.
        let Some(code) = load_code(&plugin, &status, &mut restarts, &stop, &mut plugin_rx).await
        else {
            continue 'guest;
        };
        let mut guest =
            match SinkGuest::open(&runtime, &code, spec.ids.clone(), &limits, &spec.config).await {
                Ok(guest) => guest,
                Err(fault) => {
                    wait_after_fault(&status, &fault, &mut restarts, &stop, &mut plugin_rx).await;
                    continue 'guest;
                }
            };
        status.running(&plugin.sha256);
        loop {
            if stop.is_cancelled() {
                break 'guest;
            }
            accepted.commit(&consumer, status.metrics(), false).await;
            if plugin_rx.has_changed().unwrap_or(false) {
                tracing::info!("plugin changed; restarting the task on the new version");
                continue 'guest;
            }
            if status.is_paused() {
                // What was taken and not yet put stays pending (uncommitted) until resumed.
                accepted.commit(&consumer, status.metrics(), true).await;
                status.wait_while_paused(&stop).await;
                continue;
            }
            let mut batch = match pending.pop_front() {
                Some(p) => p,
                None => match take(&consumer, status.metrics()).await {
                    Some(p) => p,
                    None => continue,
                },
            };
            // Fetch the next batch while the destination acknowledges this one, and keep adding
            // to it until the put is done: what arrives during a put goes out in the next put,
            // not in the one after it (stopping at the first pull left the rest in the client's
            // cache for a whole put).
            let put_done = std::sync::atomic::AtomicBool::new(false);
            let prefetch = async {
                if !pending.is_empty() {
                    return None;
                }
                let mut next = Vec::new();
                loop {
                    let done = put_done.load(std::sync::atomic::Ordering::Relaxed);
                    let room = MAX_PUT_RECORDS.saturating_sub(next.len());
                    let timeout = match (next.is_empty(), done) {
                        (true, _) => POLL_TIMEOUT_MS,
                        (false, false) => GATHER_MS,
                        // The put is over: take what is already fetched, without waiting.
                        (false, true) => 0,
                    };
                    next.extend(consumer.poll(room, timeout).await);
                    if next.is_empty() || done || next.len() >= MAX_PUT_RECORDS {
                        break;
                    }
                }
                pending_of(next, status.metrics())
            };
            // `flush()` before the commit: only what the guest made durable is committed (a
            // sink that buffers in `put()` would otherwise lose its buffer in a crash).
            let deliver = async {
                let started = std::time::Instant::now();
                let put = put_all(&mut guest, &mut batch, &dead_letters, &stop).await;
                let flushed = match put {
                    Ok(()) => guest.flush().await,
                    Err(fault) => Err(fault),
                };
                status
                    .metrics()
                    .put_seconds
                    .observe(started.elapsed().as_secs_f64());
                put_done.store(true, std::sync::atomic::Ordering::Relaxed);
                flushed
            };
            let (put, next) = tokio::join!(deliver, prefetch);
            pending.extend(next);
            match put {
                Ok(()) => {
                    accepted.add(batch.offsets);
                    status.delivered(batch.records, batch.bytes);
                    status.metrics().batches.inc();
                    restarts.reset();
                    retries.reset();
                    // Everything put so far is flushed: a new guest can take over here.
                    if let Some((used, max)) = guest.outgrown(super::RECYCLE_AT) {
                        super::log_recycle(used, max);
                        continue 'guest;
                    }
                }
                Err(GuestFault::Retriable(reason)) => {
                    pending.push_front(batch);
                    status
                        .wait_to_retry(&mut retries, "retriable", reason, &stop)
                        .await;
                }
                Err(fault) => {
                    pending.push_front(batch);
                    wait_after_fault(&status, &fault, &mut restarts, &stop, &mut plugin_rx).await;
                    continue 'guest;
                }
            }
        }
    }
    accepted.commit(&consumer, status.metrics(), true).await;
    status.stopped();
    // The client's consumer shutdown takes 10-17 s; do not hold the caller up.
    tokio::spawn(consumer.shutdown());
}

/// `put()`s the batches of `pending`. Each record the guest rejects goes to the dead-letter
/// queue when the connector tolerates it, and the records after it are put again; `pending`
/// keeps only what is left to put (so a retry does not repeat what the guest took), and its
/// counts drop what was dead-lettered. A rejection that is not tolerated is returned as is.
async fn put_all(
    guest: &mut SinkGuest,
    pending: &mut Pending,
    dead_letters: &DeadLetters,
    stop: &CancellationToken,
) -> Result<(), GuestFault> {
    loop {
        let fault = match guest.put(&pending.batches).await {
            Ok(()) => {
                super::record_log::log_batches("rocketmq->sink", &pending.batches);
                return Ok(());
            }
            Err(fault) => fault,
        };
        let GuestFault::Rejected {
            batch,
            index,
            reason,
        } = fault
        else {
            return Err(fault);
        };
        let (b, i) = (batch as usize, index as usize);
        if pending
            .batches
            .get(b)
            .and_then(|x| x.messages.get(i))
            .is_none()
        {
            return Err(GuestFault::Returned(format!(
                "guest rejected record {index} of batch {batch}, which its put call did not have"
            )));
        }
        // What came before the rejected record was delivered.
        super::record_log::log_batches("rocketmq->sink", &pending.batches[..b]);
        pending.batches.drain(..b);
        pending.batches[0].messages.drain(..i);
        let source = &pending.batches[0];
        if !dead_letters.tolerates() {
            return Err(GuestFault::Rejected {
                batch,
                index,
                reason: format!(
                    "{} queue {} offset {}: {reason} (errors.tolerance=none)",
                    source.topic, source.partition, source.messages[0].offset
                ),
            });
        }
        let failed = FailedRecord {
            stage: "put",
            class: "rejected",
            topic: &source.topic,
            partition: source.partition.to_string(),
            offset: source.messages[0].offset.to_string(),
            reason: &reason,
        };
        if !dead_letters
            .handle(&source.messages[0], &failed, stop)
            .await
        {
            return Err(GuestFault::Retriable(
                "the task stopped before the dead-letter queue stored a rejected record".into(),
            ));
        }
        let value_bytes = pending.batches[0].messages[0].value.len() as u64;
        pending.records = pending.records.saturating_sub(1);
        pending.bytes = pending.bytes.saturating_sub(value_bytes);
        pending.batches[0].messages.remove(0);
        pending.batches.retain(|x| !x.messages.is_empty());
        if pending.batches.is_empty() {
            return Ok(());
        }
    }
}

/// Creates the task's consumer, retrying until RocketMQ answers or the task is stopped.
async fn connect(
    spec: &TaskSpec,
    deps: &TaskDeps,
    status: &StatusCell,
    stop: &CancellationToken,
) -> Option<SinkConsumer> {
    let group = consumer_group(&spec.ids.connector);
    // A fresh instance name per start: a restarted task must not wait for the previous
    // consumer's shutdown (10-17 s), during which the client refuses the group on that instance.
    static STARTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let start = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let instance = format!("{}-{}-{start}", spec.ids.connector, spec.ids.task);
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    loop {
        match deps
            .hub
            .consumer(&group, &spec.settings.rocketmq_topics, &instance)
            .await
        {
            Ok(c) => return Some(c),
            Err(e) => {
                if !status
                    .wait_to_retry(&mut backoff, "rocketmq", e.to_string(), stop)
                    .await
                {
                    return None;
                }
            }
        }
    }
}

/// Polls RocketMQ once and groups what came by (topic, queue), keeping queue order; counts
/// what came and the lag behind the head of the queues it came from.
async fn take(consumer: &SinkConsumer, metrics: &TaskMetrics) -> Option<Pending> {
    pending_of(
        consumer.poll(MAX_PUT_RECORDS, POLL_TIMEOUT_MS).await,
        metrics,
    )
}

/// Groups messages taken from RocketMQ into batches per (topic, queue) and counts them in.
fn pending_of(messages: Vec<MessageExt>, metrics: &TaskMetrics) -> Option<Pending> {
    if messages.is_empty() {
        return None;
    }
    let records = messages.len() as u64;
    let bytes = messages
        .iter()
        .map(|m| m.body().map_or(0, |b| b.len() as u64))
        .sum();
    metrics.records_in.inc_by(records);
    metrics.bytes_in.inc_by(bytes);
    metrics.lag.set(SinkConsumer::lag(&messages));
    let offsets = SinkConsumer::next_offsets(&messages);
    let mut grouped: BTreeMap<(&str, i32), Vec<Message>> = BTreeMap::new();
    for ext in &messages {
        grouped
            .entry((ext.topic().as_str(), ext.queue_id()))
            .or_default()
            .push(from_message_ext(ext));
    }
    let batches = grouped
        .into_iter()
        .map(|((topic, partition), messages)| RecordBatch {
            topic: topic.to_string(),
            partition,
            messages,
        })
        .collect();
    Some(Pending {
        batches,
        offsets,
        records,
        bytes,
    })
}

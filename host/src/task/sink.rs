//! The sink loop: RocketMQ poll -> batches per (topic, queue) -> `put()`, and `flush()` every
//! [`FLUSH_RECORDS`] records or [`FLUSH_AFTER`] -> on Ok, commit the next offsets to RocketMQ
//! (gathered, at most every [`COMMIT_EVERY`]). Batches are kept until a `flush()` confirmed them:
//! a batch that was not put, or put but not flushed, is given to the guest again (the restarted
//! guest, or the same one after a failed flush), so a guest fault never skips records.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use rocketmq_model::common::message::message_ext::MessageExt;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::dead_letter::{DeadLetters, FailedRecord};
use super::source::{COMMIT_EVERY, load_code, wait_after_fault};
use super::{StatusCell, TaskDeps, TaskLifecycle, TaskSpec};
use crate::metrics::TaskMetrics;
use crate::rocketmq::{SinkConsumer, from_message_ext};
use crate::wasm::bindings::{Message, RecordBatch};
use crate::wasm::{GuestFault, SinkGuest};

/// How long one RocketMQ poll waits for messages.
const POLL_TIMEOUT_MS: u64 = 200;
/// The most records handed to one `put()`.
const MAX_PUT_RECORDS: usize = 2048;
/// While a put is in flight, how long one RocketMQ poll waits for more of the next batch
/// (the loop polls again until the put is done).
const GATHER_MS: u64 = 2;
/// `flush()` once this many records were put since the last flush: they are held for a second
/// `put()` until then (4 puts of [`MAX_PUT_RECORDS`]; 8 MiB of 1 KiB records).
const FLUSH_RECORDS: u64 = 8192;
/// ... or once their values hold this many bytes ...
const FLUSH_BYTES: u64 = 8 << 20;
/// ... or once the oldest of them was put this long ago, or when RocketMQ has nothing more.
const FLUSH_AFTER: Duration = Duration::from_millis(50);

/// Records taken from RocketMQ but not yet acknowledged by the guest.
struct Pending {
    batches: Vec<RecordBatch>,
    /// (topic, broker, queue) -> next offset to commit once `put()` succeeded.
    offsets: HashMap<(String, String, i32), i64>,
    records: u64,
    /// Value bytes of the records.
    bytes: u64,
    /// RocketMQ store time of the oldest record (ms since the epoch, the broker's clock).
    oldest_stored_ms: i64,
}

/// One `put()` the guest took, not confirmed yet.
struct Put {
    batch: Pending,
    /// The Kafka delivery reports of what the put queued (`kafka-pipeline`), awaited off the
    /// guest so the next put does not wait for Kafka.
    reports: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

/// Puts not confirmed yet, oldest first: a put is confirmed once a `flush()` followed it and
/// the delivery reports of what it queued are in.
#[derive(Default)]
struct Unflushed {
    puts: VecDeque<Put>,
    /// How many of the oldest `puts` a `flush()` covered (they wait only for their reports).
    flushed: usize,
    records: u64,
    bytes: u64,
    /// When the oldest put no `flush()` covered was put.
    since: Option<Instant>,
}

impl Unflushed {
    fn push(
        &mut self,
        batch: Pending,
        reports: Option<tokio::task::JoinHandle<Result<(), String>>>,
    ) {
        self.records += batch.records;
        self.bytes += batch.bytes;
        self.since.get_or_insert_with(Instant::now);
        self.puts.push_back(Put { batch, reports });
    }

    /// Whether putting `next` should be followed by a flush.
    fn due_with(&self, next: &Pending) -> bool {
        self.records + next.records >= FLUSH_RECORDS
            || self.bytes + next.bytes >= FLUSH_BYTES
            || self.since.is_some_and(|s| s.elapsed() >= FLUSH_AFTER)
    }

    /// Twice a flush's worth is held: wait for Kafka before taking more (an outage makes the
    /// reports slow, and the records are kept until they are in).
    fn over_limit(&self) -> bool {
        self.records >= 2 * FLUSH_RECORDS || self.bytes >= 2 * FLUSH_BYTES
    }

    /// A `flush()` returned Ok after every put so far.
    fn flushed_all(&mut self) {
        self.flushed = self.puts.len();
        self.since = None;
    }

    /// How long a poll may wait before a flush is due (`POLL_TIMEOUT_MS` with nothing to flush,
    /// a few ms while only reports are awaited).
    fn poll_timeout_ms(&self) -> u64 {
        match self.since {
            _ if self.puts.is_empty() => POLL_TIMEOUT_MS,
            None => 5,
            Some(s) => FLUSH_AFTER.saturating_sub(s.elapsed()).as_millis().max(1) as u64,
        }
    }

    /// Confirms the flushed puts whose reports are in (with `wait`, all flushed puts, waiting
    /// for their reports): their offsets may be committed. Returns how many were confirmed. A
    /// failed report puts everything back to `pending`, to be put again.
    async fn confirm(
        &mut self,
        wait: bool,
        pending: &mut VecDeque<Pending>,
        accepted: &mut Accepted,
        status: &StatusCell,
    ) -> Result<usize, GuestFault> {
        let mut confirmed = 0;
        while self.flushed > 0 {
            let Some(put) = self.puts.front_mut() else {
                break;
            };
            let reported = match &mut put.reports {
                None => Ok(()),
                Some(reports) if wait || reports.is_finished() => reports
                    .await
                    .unwrap_or_else(|e| Err(format!("waiting for Kafka's reports failed: {e}"))),
                Some(_) => break,
            };
            if let Err(e) = reported {
                self.put_again(pending);
                return Err(GuestFault::Retriable(e));
            }
            let Put { batch, .. } = self.puts.pop_front().expect("front exists");
            self.flushed -= 1;
            self.records -= batch.records;
            self.bytes -= batch.bytes;
            accepted.add(batch.offsets);
            status.delivered(batch.records, batch.bytes);
            status.metrics().batches.inc();
            confirmed += 1;
        }
        Ok(confirmed)
    }

    /// They must be put again (a flush or a report failed, or the guest that took them is
    /// gone): back to the front of `pending`, in order. Reports still awaited are left to
    /// finish on their own.
    fn put_again(&mut self, pending: &mut VecDeque<Pending>) {
        for put in self.puts.drain(..).rev() {
            pending.push_front(put.batch);
        }
        *self = Unflushed::default();
    }
}

/// RocketMQ offsets whose records the guest accepted (and flushed), not yet committed.
#[derive(Default)]
struct Accepted {
    offsets: HashMap<(String, String, i32), i64>,
    since: Option<Instant>,
}

impl Accepted {
    fn add(&mut self, offsets: HashMap<(String, String, i32), i64>) {
        for (queue, next) in offsets {
            let at = self.offsets.entry(queue).or_insert(next);
            *at = (*at).max(next);
        }
        self.since.get_or_insert_with(Instant::now);
    }

    /// Commits when [`COMMIT_EVERY`] passed since the oldest uncommitted acceptance, or with
    /// `now` (before the task pauses or stops).
    async fn commit(&mut self, consumer: &SinkConsumer, metrics: &TaskMetrics, now: bool) {
        let due = self.since.is_some_and(|s| s.elapsed() >= COMMIT_EVERY);
        if !self.offsets.is_empty() && (now || due) {
            self.since = None;
            let started = Instant::now();
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

/// Everything a sink task took from RocketMQ and has not committed: what is left to put, what
/// was put and awaits confirmation, and the offsets of what was confirmed.
#[derive(Default)]
struct Held {
    /// Taken, not yet put, in order: the batch being put, the one fetched meanwhile, and what a
    /// failed flush or a lost guest gave back.
    pending: VecDeque<Pending>,
    unflushed: Unflushed,
    accepted: Accepted,
}

impl Held {
    /// `flush()`es what the guest took and waits for its Kafka reports (nothing to do if it
    /// took nothing): confirmed, its offsets may be committed; failed, it goes back to
    /// `pending` to be put again.
    async fn flush(
        &mut self,
        guest: &mut SinkGuest,
        status: &StatusCell,
    ) -> Result<(), GuestFault> {
        if self.unflushed.puts.is_empty() {
            return Ok(());
        }
        if self.unflushed.flushed < self.unflushed.puts.len() {
            let flushed = timed_flush(guest, status).await;
            if let Err(fault) = flushed {
                self.unflushed.put_again(&mut self.pending);
                return Err(fault);
            }
            self.unflushed.flushed_all();
        }
        self.confirm(true, status).await.map(drop)
    }

    /// See [`Unflushed::confirm`].
    async fn confirm(&mut self, wait: bool, status: &StatusCell) -> Result<usize, GuestFault> {
        self.unflushed
            .confirm(wait, &mut self.pending, &mut self.accepted, status)
            .await
    }

    /// Whatever the guest took and did not confirm is put again (the guest is gone).
    fn put_again(&mut self) {
        self.unflushed.put_again(&mut self.pending);
    }
}

/// The guest's `flush()`, timed into `ferry_task_flush_seconds`.
async fn timed_flush(guest: &mut SinkGuest, status: &StatusCell) -> Result<(), GuestFault> {
    let started = Instant::now();
    let flushed = guest.flush().await;
    status
        .metrics()
        .flush_seconds
        .observe(started.elapsed().as_secs_f64());
    flushed
}

/// Takes the delivery reports of what the guest just queued and waits for them on their own
/// tokio task.
fn await_reports(guest: &mut SinkGuest) -> Option<tokio::task::JoinHandle<Result<(), String>>> {
    use tracing::Instrument;
    let deliveries = guest.take_deliveries()?;
    Some(tokio::spawn(
        deliveries.confirm().instrument(tracing::Span::current()),
    ))
}

/// What a sink task works with besides the guest and what it holds.
struct SinkContext<'a> {
    consumer: &'a SinkConsumer,
    status: &'a StatusCell,
    dead_letters: &'a DeadLetters,
    stop: &'a CancellationToken,
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
    let cx = SinkContext {
        consumer: &consumer,
        status: &status,
        dead_letters: &dead_letters,
        stop: &stop,
    };
    let mut held = Held::default();
    'guest: while !stop.is_cancelled() {
        // Whatever the previous guest took and did not flush is lost with it.
        held.put_again();
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
                // What fails to flush here is not committed: the queues' next owner reads it.
                let _ = held.flush(&mut guest, &status).await;
                break 'guest;
            }
            held.accepted
                .commit(&consumer, status.metrics(), false)
                .await;
            if plugin_rx.has_changed().unwrap_or(false) {
                tracing::info!("plugin changed; restarting the task on the new version");
                let _ = held.flush(&mut guest, &status).await;
                continue 'guest;
            }
            if status.is_paused() {
                // What was taken and not yet put stays pending (uncommitted) until resumed.
                if let Err(fault) = held.flush(&mut guest, &status).await {
                    tracing::warn!("flush before pausing failed: {fault}");
                }
                held.accepted
                    .commit(&consumer, status.metrics(), true)
                    .await;
                status.wait_while_paused(&stop).await;
                continue;
            }
            let first_wait = held.unflushed.poll_timeout_ms();
            let next = match held.pending.pop_front() {
                Some(p) => Some(p),
                None => take(&consumer, status.metrics(), first_wait).await,
            };
            // Ok(whether something reached the destination).
            let step = match next {
                Some(batch) => {
                    put_once(&cx, &mut guest, batch, &mut held, &mut restarts, first_wait).await
                }
                // Caught up (or the flush is due): confirm what was put.
                None => held.flush(&mut guest, &status).await.map(|()| true),
            };
            let fault = match step {
                Ok(confirmed) => {
                    // Retrying ends when something reached the destination, not when a put was
                    // taken: a put only queues.
                    if confirmed {
                        retries.reset();
                    }
                    let Some((used, max)) = guest.outgrown(super::RECYCLE_AT) else {
                        continue;
                    };
                    // Once everything put so far is confirmed, a new guest can take over.
                    match held.flush(&mut guest, &status).await {
                        Ok(()) => {
                            super::log_recycle(used, max);
                            continue 'guest;
                        }
                        Err(fault) => fault,
                    }
                }
                Err(fault) => fault,
            };
            match fault {
                GuestFault::Retriable(reason) => {
                    status
                        .wait_to_retry(&mut retries, "retriable", reason, &stop)
                        .await;
                }
                fault => {
                    wait_after_fault(&status, &fault, &mut restarts, &stop, &mut plugin_rx).await;
                    continue 'guest;
                }
            }
        }
    }
    held.accepted
        .commit(&consumer, status.metrics(), true)
        .await;
    status.stopped();
    // The client's consumer shutdown takes 10-17 s; do not hold the caller up.
    tokio::spawn(consumer.shutdown());
}

/// Puts `batch`, flushing after it when due, while the next batch is fetched, then confirms
/// what Kafka acknowledged meanwhile. Returns whether something was confirmed; on a fault the
/// unconfirmed batches are back in `held.pending`, in order.
async fn put_once(
    cx: &SinkContext<'_>,
    guest: &mut SinkGuest,
    mut batch: Pending,
    held: &mut Held,
    restarts: &mut Backoff,
    first_wait: u64,
) -> Result<bool, GuestFault> {
    let status = cx.status;
    let flush_after_put = held.unflushed.due_with(&batch);
    // Fetch the next batch while this one is put (and flushed), and keep adding to it until
    // that is done: what arrives meanwhile goes out in the next put, not in the one after it
    // (stopping at the first pull left the rest in the client's cache).
    let put_done = std::sync::atomic::AtomicBool::new(false);
    let fetch_next = held.pending.is_empty();
    let prefetch = async {
        if !fetch_next {
            return None;
        }
        let mut next = Vec::new();
        loop {
            let done = put_done.load(std::sync::atomic::Ordering::Relaxed);
            let room = MAX_PUT_RECORDS.saturating_sub(next.len());
            let timeout = match (next.is_empty(), done) {
                (true, _) => first_wait,
                (false, false) => GATHER_MS,
                // The put is over: take what is already fetched, without waiting.
                (false, true) => 0,
            };
            next.extend(cx.consumer.poll(room, timeout).await);
            if next.is_empty() || done || next.len() >= MAX_PUT_RECORDS {
                break;
            }
        }
        pending_of(next, status.metrics())
    };
    // Put, then flush when due: a sink that only queues in `put()` (kafka-sink) sends the next
    // batch while the destination acknowledges this one, and `flush()` waits for the
    // acknowledgements before anything is committed.
    let deliver = async {
        observe_age(&status.metrics().put_age_seconds, batch.oldest_stored_ms);
        let started = Instant::now();
        let put = put_all(guest, &mut batch, cx.dead_letters, cx.stop).await;
        status
            .metrics()
            .put_seconds
            .observe(started.elapsed().as_secs_f64());
        // Taken before the flush, so the flush does not wait for them.
        let reports = put.as_ref().ok().and_then(|_| await_reports(guest));
        let flushed = match put {
            Ok(()) if flush_after_put => Some(timed_flush(guest, status).await),
            _ => None,
        };
        put_done.store(true, std::sync::atomic::Ordering::Relaxed);
        (put, reports, flushed)
    };
    let ((put, reports, flushed), next) = tokio::join!(deliver, prefetch);
    held.pending.extend(next);
    if let Err(fault) = put {
        // What was put before it stays with the guest: a retried put and the next flush cover
        // it, and a new guest gets it again.
        held.pending.push_front(batch);
        return Err(fault);
    }
    held.unflushed.push(batch, reports);
    restarts.reset();
    match flushed {
        Some(Err(fault)) => {
            held.put_again();
            return Err(fault);
        }
        Some(Ok(())) => held.unflushed.flushed_all(),
        None => {}
    }
    let wait = held.unflushed.over_limit();
    Ok(held.confirm(wait, status).await? > 0)
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

/// Polls RocketMQ once (waiting at most `timeout_ms`) and groups what came by (topic, queue),
/// keeping queue order; counts what came and the lag behind the head of the queues it came from.
async fn take(consumer: &SinkConsumer, metrics: &TaskMetrics, timeout_ms: u64) -> Option<Pending> {
    pending_of(consumer.poll(MAX_PUT_RECORDS, timeout_ms).await, metrics)
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
    let oldest_stored_ms = messages
        .iter()
        .map(MessageExt::store_timestamp)
        .min()
        .unwrap_or_default();
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
        oldest_stored_ms,
    })
}

/// Observes the age of a record stored at `stored_ms` (ms since the epoch), now.
fn observe_age(histogram: &prometheus_client::metrics::histogram::Histogram, stored_ms: i64) {
    // A broker clock ahead of this host's gives a negative age: count it as 0.
    histogram.observe((super::status::now_ms() - stored_ms).max(0) as f64 / 1000.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of `records` records of 1 KiB from queue 0, ending before offset `next`.
    fn batch(next: i64, records: u64) -> Pending {
        Pending {
            batches: Vec::new(),
            offsets: HashMap::from([(("t".to_string(), "b".to_string(), 0), next)]),
            records,
            bytes: records * 1024,
            oldest_stored_ms: 0,
        }
    }

    fn offsets(pending: &VecDeque<Pending>) -> Vec<i64> {
        pending.iter().map(|p| p.offsets.values().sum()).collect()
    }

    #[test]
    fn batches_put_again_go_before_what_was_pending_in_order() {
        let mut unflushed = Unflushed::default();
        unflushed.push(batch(10, 10), None);
        unflushed.push(batch(20, 10), None);
        let mut pending = VecDeque::from([batch(30, 10)]);
        unflushed.put_again(&mut pending);
        assert_eq!(offsets(&pending), [10, 20, 30]);
        assert_eq!((unflushed.records, unflushed.since), (0, None));
        assert_eq!(unflushed.poll_timeout_ms(), POLL_TIMEOUT_MS);
    }

    #[test]
    fn a_flush_is_due_by_records_bytes_or_age() {
        let mut unflushed = Unflushed::default();
        assert!(!unflushed.due_with(&batch(1, 1)));
        unflushed.push(batch(1, FLUSH_RECORDS - 10), None);
        assert!(!unflushed.due_with(&batch(2, 9)));
        assert!(unflushed.due_with(&batch(2, 10)));
        assert!(unflushed.poll_timeout_ms() <= FLUSH_AFTER.as_millis() as u64);
        assert!(!unflushed.over_limit());
        unflushed.push(batch(2, FLUSH_RECORDS + 10), None);
        assert!(unflushed.over_limit());

        let mut big = Unflushed::default();
        big.push(
            Pending {
                bytes: FLUSH_BYTES,
                ..batch(1, 1)
            },
            None,
        );
        assert!(big.due_with(&batch(2, 1)));

        let mut old = Unflushed::default();
        old.push(batch(1, 1), None);
        old.since = Some(Instant::now() - FLUSH_AFTER);
        assert!(old.due_with(&batch(2, 1)));
        assert_eq!(old.poll_timeout_ms(), 1);
    }

    /// Reports that arrive when `rx` is sent to.
    fn reports_on(
        rx: tokio::sync::oneshot::Receiver<Result<(), String>>,
    ) -> Option<tokio::task::JoinHandle<Result<(), String>>> {
        Some(tokio::spawn(async move { rx.await.unwrap() }))
    }

    #[tokio::test]
    async fn a_put_is_confirmed_once_flushed_and_its_reports_are_in() {
        let (ok_tx, ok_rx) = tokio::sync::oneshot::channel();
        let mut unflushed = Unflushed::default();
        unflushed.push(batch(10, 10), reports_on(ok_rx));
        unflushed.push(batch(20, 10), None);
        let (mut pending, mut accepted, status) =
            (VecDeque::new(), Accepted::default(), StatusCell::default());
        // Not flushed: nothing is confirmed, even without reports.
        unflushed
            .confirm(false, &mut pending, &mut accepted, &status)
            .await
            .unwrap();
        assert_eq!(unflushed.puts.len(), 2);
        unflushed.flushed_all();
        // Flushed, the first put's reports still out: it and everything after it wait.
        unflushed
            .confirm(false, &mut pending, &mut accepted, &status)
            .await
            .unwrap();
        assert_eq!((unflushed.puts.len(), status.get().delivered), (2, 0));
        ok_tx.send(Ok(())).unwrap();
        unflushed
            .confirm(true, &mut pending, &mut accepted, &status)
            .await
            .unwrap();
        assert!(unflushed.puts.is_empty());
        assert_eq!(accepted.offsets.values().copied().collect::<Vec<_>>(), [20]);
        assert_eq!((status.get().delivered, unflushed.records), (20, 0));
    }

    #[tokio::test]
    async fn a_failed_report_puts_everything_unconfirmed_again() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut unflushed = Unflushed::default();
        unflushed.push(batch(10, 10), None);
        unflushed.push(batch(20, 10), reports_on(rx));
        unflushed.push(batch(30, 10), None);
        unflushed.flushed_all();
        tx.send(Err("kafka: record 15 to t not delivered".into()))
            .unwrap();
        let (mut pending, mut accepted, status) = (
            VecDeque::from([batch(40, 10)]),
            Accepted::default(),
            StatusCell::default(),
        );
        let fault = unflushed
            .confirm(true, &mut pending, &mut accepted, &status)
            .await
            .unwrap_err();
        assert!(fault.to_string().contains("record 15"), "{fault}");
        // The first put was confirmed; the failed one and the one after it go again, in order.
        assert_eq!(accepted.offsets.values().copied().collect::<Vec<_>>(), [10]);
        assert_eq!(offsets(&pending), [20, 30, 40]);
        assert!(unflushed.puts.is_empty());
    }
}

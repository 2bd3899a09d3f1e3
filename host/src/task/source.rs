//! The source loop: `poll()` -> RocketMQ `send_batch` (several polls in flight) -> on every
//! acknowledgement, in poll order: record positions in the store, and hand them to the guest's
//! `commit()` at most every [`COMMIT_EVERY`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::dead_letter::{DeadLetters, FailedRecord};
use super::dispatch::QueueDispatcher;
use super::{StatusCell, TaskDeps, TaskLifecycle, TaskSpec};
use crate::rocketmq::MAX_MESSAGE_BYTES;
use crate::wasm::bindings::{Position, SourceBatch};
use crate::wasm::{GuestFault, SourceGuest};

/// Polls whose records may be in flight to RocketMQ at once.
const MAX_IN_FLIGHT: usize = 16;
/// Value bytes that may be in flight to RocketMQ at once: with large polls (kafka-source's
/// 4,096 records of 1 KiB are 4 MiB) the poll count alone would let a task hold 64 MiB.
/// Polling stops at this mark until the oldest poll is acknowledged.
const MAX_IN_FLIGHT_BYTES: u64 = 8 << 20;
/// How long an idle source waits before polling again: 20 ms after the first empty poll,
/// doubling to 160 ms while polls stay empty (a guest whose `poll()` returns at once would
/// otherwise be called 50 times a second: 100 idle datagen tasks took 19 % of a core).
const IDLE_WAIT: Duration = Duration::from_millis(20);
const IDLE_WAIT_MAX: Duration = Duration::from_millis(160);
/// How often acknowledged work is committed outside Ferry's own store: a source's positions
/// handed to its guest's `commit()` (kafka-source commits them to Kafka), a sink's RocketMQ
/// offsets. Each is a broker round trip that otherwise sat between two polls (issue 13:
/// latency); a crash repeats at most this much more work, it never skips any.
pub(super) const COMMIT_EVERY: Duration = Duration::from_millis(200);

/// Positions already in the store but not yet given to the guest's `commit()`: the latest per
/// source partition.
#[derive(Default)]
struct GuestCommits {
    positions: BTreeMap<String, String>,
    since: Option<Instant>,
}

impl GuestCommits {
    fn add(&mut self, delivered: Vec<Position>) {
        for p in delivered {
            self.positions.insert(p.partition, p.offset);
        }
        self.since.get_or_insert_with(Instant::now);
    }

    /// Whether to commit now: something is waiting, and `all` or [`COMMIT_EVERY`] passed.
    fn due(&self, all: bool) -> bool {
        !self.positions.is_empty()
            && (all || self.since.is_some_and(|s| s.elapsed() >= COMMIT_EVERY))
    }

    fn take(&mut self) -> Vec<Position> {
        self.since = None;
        std::mem::take(&mut self.positions)
            .into_iter()
            .map(|(partition, offset)| Position { partition, offset })
            .collect()
    }
}

/// One poll's records on their way to RocketMQ; resolves to the positions they cover.
struct Delivery {
    join: JoinHandle<Option<Vec<Position>>>,
    /// Set once `join` was awaited: `None` when the task stopped before the acknowledgement.
    outcome: Option<Option<Vec<Position>>>,
    records: u64,
    /// Value bytes of the records.
    bytes: u64,
}

impl Delivery {
    fn is_done(&self) -> bool {
        self.outcome.is_some() || self.join.is_finished()
    }

    async fn outcome(&mut self) -> Option<Vec<Position>> {
        if self.outcome.is_none() {
            self.outcome = Some((&mut self.join).await.ok().flatten());
        }
        self.outcome.clone().flatten()
    }
}

/// Runs a source task until `stop` is cancelled.
pub async fn run(spec: TaskSpec, deps: TaskDeps, status: StatusCell, stop: CancellationToken) {
    let mut plugin_rx = deps.registry.follow(&spec.plugin);
    let limits = spec.limits(&status);
    let runtime = deps.registry.runtime().clone();
    let mut restarts = Backoff::for_restarts();
    let mut retries = Backoff::for_retries();
    let mut idle = Backoff::new(IDLE_WAIT, IDLE_WAIT_MAX);
    let mut in_flight = InFlight {
        deliveries: VecDeque::new(),
        commits: GuestCommits::default(),
        deps: &deps,
        spec: &spec,
        status: &status,
    };
    let mut dispatcher = QueueDispatcher::new(
        deps.hub.clone(),
        &spec.ids.connector,
        status.clone(),
        stop.clone(),
    );
    let dead_letters = DeadLetters::new(
        spec.settings.errors.clone(),
        deps.hub.clone(),
        spec.ids.clone(),
        status.clone(),
    );
    'guest: while !stop.is_cancelled() {
        let plugin = plugin_rx.borrow_and_update().clone();
        status.set_state(TaskLifecycle::Starting);
        let committed: Vec<Position> = deps
            .store
            .positions(&spec.ids.connector)
            .into_iter()
            .map(|(partition, offset)| Position { partition, offset })
            .collect();
        // Held while the guest lives: a second task of this plugin shares the code.
        let Some(code) = load_code(&plugin, &status, &mut restarts, &stop, &mut plugin_rx).await
        else {
            continue 'guest;
        };
        let opened = SourceGuest::open(
            &runtime,
            &code,
            spec.ids.clone(),
            &limits,
            &spec.config,
            &committed,
        )
        .await;
        let mut guest = match opened {
            Ok(guest) => guest,
            Err(fault) => {
                wait_after_fault(&status, &fault, &mut restarts, &stop, &mut plugin_rx).await;
                continue 'guest;
            }
        };
        status.running(&plugin.sha256);
        loop {
            // Acknowledgements first: they free in-flight slots and advance positions.
            if let Err(fault) = in_flight.settle(false, &mut guest).await {
                wait_after_fault(&status, &fault, &mut restarts, &stop, &mut plugin_rx).await;
                continue 'guest;
            }
            if stop.is_cancelled() || plugin_rx.has_changed().unwrap_or(false) {
                // Finish what is in flight so the next guest (or the next run) starts after it.
                let _ = in_flight.settle(true, &mut guest).await;
                if plugin_rx.has_changed().unwrap_or(false) {
                    tracing::info!("plugin changed; restarting the task on the new version");
                }
                continue 'guest;
            }
            if status.is_paused() {
                // Commit what is in flight, then hold the guest where it is.
                if let Err(fault) = in_flight.settle(true, &mut guest).await {
                    wait_after_fault(&status, &fault, &mut restarts, &stop, &mut plugin_rx).await;
                    continue 'guest;
                }
                status.wait_while_paused(&stop).await;
                continue;
            }
            if in_flight.deliveries.len() >= MAX_IN_FLIGHT
                || in_flight.bytes() >= MAX_IN_FLIGHT_BYTES
            {
                wait_front(&mut in_flight.deliveries, &stop).await;
                continue;
            }
            let polled = std::time::Instant::now();
            let poll = guest.poll().await;
            status
                .metrics()
                .poll_seconds
                .observe(polled.elapsed().as_secs_f64());
            match poll {
                Ok(batches) if batches.is_empty() => {
                    retries.reset();
                    if in_flight.deliveries.is_empty() {
                        tokio::select! {
                            _ = stop.cancelled() => {}
                            _ = plugin_rx.changed() => {}
                            _ = tokio::time::sleep(idle.next_delay()) => {}
                        }
                    } else {
                        wait_front(&mut in_flight.deliveries, &stop).await;
                    }
                }
                Ok(batches) => {
                    restarts.reset();
                    retries.reset();
                    idle.reset();
                    // Batches with no records only move positions: pace them like an idle poll.
                    let moved_only = batches.iter().all(|b| b.records.messages.is_empty());
                    if moved_only {
                        tokio::select! {
                            _ = stop.cancelled() => {}
                            _ = tokio::time::sleep(IDLE_WAIT) => {}
                        }
                    }
                    if let Some(d) =
                        deliver(batches, &mut dispatcher, &dead_letters, &status, &stop).await
                    {
                        in_flight.deliveries.push_back(d);
                    }
                    if let Some((used, max)) = guest.outgrown(super::RECYCLE_AT) {
                        // As on a plugin change: the next guest starts after what is in flight.
                        let settled = in_flight.settle(true, &mut guest).await;
                        if let Err(fault) = settled {
                            wait_after_fault(&status, &fault, &mut restarts, &stop, &mut plugin_rx)
                                .await;
                        } else {
                            super::log_recycle(used, max);
                        }
                        continue 'guest;
                    }
                }
                Err(GuestFault::Retriable(reason)) => {
                    // The source is briefly unavailable (e.g. Kafka down): keep the guest, wait.
                    status
                        .wait_to_retry(&mut retries, "retriable", reason, &stop)
                        .await;
                }
                Err(fault) => {
                    // Keep what was acknowledged: settle the in-flight polls before restarting.
                    let _ = in_flight.settle(true, &mut guest).await;
                    wait_after_fault(&status, &fault, &mut restarts, &stop, &mut plugin_rx).await;
                    continue 'guest;
                }
            }
        }
    }
    status.stopped();
}

/// Waits until the oldest delivery finished (or the task is stopped).
async fn wait_front(in_flight: &mut VecDeque<Delivery>, stop: &CancellationToken) {
    if let Some(front) = in_flight.front_mut() {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = front.outcome() => {}
        }
    }
}

/// The deliveries a source task has in flight, oldest first, and the positions it owes its
/// guest's `commit()`.
struct InFlight<'a> {
    deliveries: VecDeque<Delivery>,
    commits: GuestCommits,
    deps: &'a TaskDeps,
    spec: &'a TaskSpec,
    status: &'a StatusCell,
}

impl InFlight<'_> {
    /// Value bytes of the deliveries not yet settled.
    fn bytes(&self) -> u64 {
        self.deliveries.iter().map(|d| d.bytes).sum()
    }

    /// Takes finished deliveries off the front, in order, stores their positions and commits
    /// them to the guest when due. With `all`, waits for every delivery and commits (used
    /// before a restart or stop).
    async fn settle(&mut self, all: bool, guest: &mut SourceGuest) -> Result<(), GuestFault> {
        let mut delivered = Vec::new();
        while let Some(front) = self.deliveries.front() {
            if !all && !front.is_done() {
                break;
            }
            let mut delivery = self.deliveries.pop_front().expect("front exists");
            match delivery.outcome().await {
                Some(positions) => {
                    self.status.delivered(delivery.records, delivery.bytes);
                    delivered.extend(positions);
                }
                // Cancelled before RocketMQ acknowledged: nothing after this may be committed.
                _ => {
                    self.deliveries.clear();
                    break;
                }
            }
        }
        if !delivered.is_empty() {
            self.deps.store.record_positions(
                &self.spec.ids.connector,
                delivered
                    .iter()
                    .map(|p| (p.partition.clone(), p.offset.clone())),
            );
            self.commits.add(delivered);
        }
        if !self.commits.due(all) {
            return Ok(());
        }
        let started = Instant::now();
        let committed = guest.commit(&self.commits.take()).await;
        self.status
            .metrics()
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        committed
    }
}

/// Hands one poll's batches to the queue senders (in poll order, so per-queue order holds) and
/// returns a delivery that resolves once RocketMQ acknowledged every record of the poll, with
/// the positions it covers: per source partition, the source offset of its last batch (a batch
/// with no records, e.g. all filtered out, still moves its position). Retries route lookups
/// until they succeed; `None` if the task stopped first. Records too large for RocketMQ go to
/// the dead-letter queue first when the connector tolerates them (otherwise the queue sender
/// fails the task).
async fn deliver(
    batches: Vec<SourceBatch>,
    dispatcher: &mut QueueDispatcher,
    dead_letters: &DeadLetters,
    status: &StatusCell,
    stop: &CancellationToken,
) -> Option<Delivery> {
    let mut positions = BTreeMap::new();
    let mut records = 0;
    let mut bytes = 0;
    let mut acks = Vec::new();
    let mut dead = (0, 0);
    for mut source in batches {
        positions.insert(
            source.source_partition.clone(),
            source.source_offset.clone(),
        );
        if dead_letters.tolerates() {
            let (count, size) = dead_letter_oversized(&mut source, dead_letters, stop).await?;
            dead = (dead.0 + count, dead.1 + size);
        }
        let batch = source.records;
        if batch.messages.is_empty() {
            continue;
        }
        if let Err(reason) = crate::config::check_unreserved_topic(&batch.topic) {
            status.fail_for_good(
                "invalid-config",
                format!("the guest wrote to a topic no connector may write: {reason}"),
            );
            return None;
        }
        super::record_log::log_batches("source->rocketmq", std::slice::from_ref(&batch));
        records += batch.messages.len() as u64;
        bytes += batch
            .messages
            .iter()
            .map(|m| m.value.len() as u64)
            .sum::<u64>();
        let mut backoff = Backoff::for_retries();
        let queues = loop {
            match dispatcher.queues(&batch.topic).await {
                Ok(queues) => break queues,
                Err(e) => {
                    if !status
                        .wait_to_retry(&mut backoff, "rocketmq", e.to_string(), stop)
                        .await
                    {
                        return None;
                    }
                }
            }
        };
        acks.extend(dispatcher.dispatch(&queues, batch.partition, batch.messages));
    }
    let metrics = status.metrics().clone();
    metrics.records_in.inc_by(records + dead.0);
    metrics.bytes_in.inc_by(bytes + dead.1);
    metrics.batches.inc();
    let sent = std::time::Instant::now();
    let join = tokio::spawn(async move {
        let acked = futures::future::join_all(acks).await;
        metrics.send_seconds.observe(sent.elapsed().as_secs_f64());
        acked.iter().all(Result::is_ok).then(|| {
            positions
                .into_iter()
                .map(|(partition, offset)| Position { partition, offset })
                .collect()
        })
    });
    Some(Delivery {
        join,
        outcome: None,
        records,
        bytes,
    })
}

/// Takes the records too large for RocketMQ out of `source` and hands each to the dead-letter
/// queue (value cut to fit). Returns their count and value bytes; `None` if the task stopped
/// before the dead-letter queue stored them.
async fn dead_letter_oversized(
    source: &mut SourceBatch,
    dead_letters: &DeadLetters,
    stop: &CancellationToken,
) -> Option<(u64, u64)> {
    let too_large = |m: &crate::wasm::bindings::Message| m.value.len() > MAX_MESSAGE_BYTES;
    if !source.records.messages.iter().any(too_large) {
        return Some((0, 0));
    }
    let (oversized, fit): (Vec<_>, Vec<_>) = std::mem::take(&mut source.records.messages)
        .into_iter()
        .partition(too_large);
    source.records.messages = fit;
    let mut bytes = 0;
    for m in &oversized {
        bytes += m.value.len() as u64;
        let reason = format!(
            "a record of {} bytes is larger than the {MAX_MESSAGE_BYTES} bytes a RocketMQ message may have",
            m.value.len()
        );
        let failed = FailedRecord {
            stage: "send",
            class: "record-too-large",
            topic: &source.records.topic,
            partition: source.source_partition.clone(),
            offset: source.source_offset.clone(),
            reason: &reason,
        };
        if !dead_letters.handle(m, &failed, stop).await {
            return None;
        }
    }
    Some((oversized.len() as u64, bytes))
}

/// The plugin's code for a new guest; `None` after a failure to load it was reported and
/// waited out like a guest fault (the caller starts over).
pub(super) async fn load_code(
    plugin: &crate::plugin::LoadedPlugin,
    status: &StatusCell,
    restarts: &mut Backoff,
    stop: &CancellationToken,
    plugin_rx: &mut tokio::sync::watch::Receiver<Arc<crate::plugin::LoadedPlugin>>,
) -> Option<Arc<crate::wasm::PluginCode>> {
    match plugin.code().await {
        Ok(code) => Some(code),
        Err(e) => {
            let fault = GuestFault::Returned(format!("loading the plugin's code: {e}"));
            wait_after_fault(status, &fault, restarts, stop, plugin_rx).await;
            None
        }
    }
}

/// Shows the fault and waits out the restart backoff (cut short by a stop or a new version).
pub(super) async fn wait_after_fault(
    status: &StatusCell,
    fault: &GuestFault,
    restarts: &mut Backoff,
    stop: &CancellationToken,
    plugin_rx: &mut tokio::sync::watch::Receiver<Arc<crate::plugin::LoadedPlugin>>,
) {
    let delay = restarts.next_delay();
    status.failed(fault, restarts.attempt);
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = plugin_rx.changed() => {}
        _ = tokio::time::sleep(delay) => {}
    }
}

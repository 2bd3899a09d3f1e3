//! The long-running loops that keep a worker in its cluster, as functions `main` spawns (and
//! tests can run): reading the sync topics, following the member list, publishing delivered
//! positions, and the leader's periodic snapshots of the whole state.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::Worker;
use crate::cluster::membership::{self, MemberTracker, Membership};
use crate::cluster::sync::{ClusterSync, SyncMessage};
use crate::cluster::{ConfigEvent, PositionEvent};
use crate::rocketmq::SinkConsumer;
use crate::store::Store;

/// How often positions delivered here are published to the cluster.
pub const POSITION_SYNC: Duration = Duration::from_secs(1);
/// The largest part of a config snapshot (a RocketMQ message may have 4 MiB).
const SNAPSHOT_PART_BYTES: usize = 1024 * 1024;

/// Applies what workers publish on the sync topics (this worker's own messages included: that
/// is how a write is read back). Messages stored before `ignore_before_ms` are skipped: a test
/// knob that simulates the broker having deleted them (retention).
pub async fn read_sync_topics(
    reader: SinkConsumer,
    sync: Arc<ClusterSync>,
    worker: Arc<Worker>,
    ignore_before_ms: Option<i64>,
) {
    loop {
        let messages = reader.poll(256, 500).await;
        if messages.is_empty() {
            continue;
        }
        for ext in &messages {
            if ignore_before_ms.is_some_and(|t| ext.store_timestamp() < t) {
                continue;
            }
            let body = ext.body().map(|b| b.to_vec()).unwrap_or_default();
            match sync.decode(ext.topic().as_str(), &body) {
                Some(SyncMessage::Config(event)) => worker.apply_remote(event).await,
                Some(SyncMessage::Positions(event)) => worker.apply_positions(event),
                None => {}
            }
        }
        reader.commit(SinkConsumer::next_offsets(&messages)).await;
    }
}

/// Re-reads the member list every [`membership::POLL`] and re-allocates when it changed, failing
/// safe through [`MemberTracker`] (an error or a half-rebuilt list never shrinks it). When a
/// worker joins, this one announces its REST address again (the newcomer may have missed it).
pub async fn follow_members(
    membership: Membership,
    worker: Arc<Worker>,
    sync: Arc<ClusterSync>,
    announcement: ConfigEvent,
) {
    let mut tracker = MemberTracker::new(membership.worker_id());
    let mut known = BTreeSet::new();
    loop {
        let read = membership.read().await;
        if let Err(e) = &read {
            tracing::warn!("cannot read the cluster members (keeping the last list): {e}");
        }
        worker.readiness().members_read(
            read.as_ref(),
            membership.worker_id(),
            std::time::Instant::now(),
        );
        let members = tracker.observe(read, std::time::Instant::now()).clone();
        if members.iter().any(|m| !known.contains(m))
            && let Err(e) = sync.publish_config(&announcement).await
        {
            tracing::warn!("cannot announce this worker's REST address: {e}");
        }
        known = members.clone();
        worker.members_changed(members).await;
        tokio::time::sleep(membership::POLL).await;
    }
}

/// Publishes the positions this worker's source tasks delivered, so a task moved elsewhere
/// resumes from them.
pub async fn publish_positions(sync: Arc<ClusterSync>, store: Arc<Store>) {
    loop {
        tokio::time::sleep(POSITION_SYNC).await;
        for (connector, positions) in store.take_unpublished() {
            let event = PositionEvent {
                epoch: store.positions_epoch(&connector),
                connector,
                positions,
            };
            if let Err(e) = sync.publish_positions(&event).await {
                // The positions are kept locally; another worker taking the task over repeats
                // more records (never fewer).
                tracing::warn!(connector = %event.connector, "cannot publish positions: {e}");
            }
        }
    }
}

/// While this worker leads, publishes the whole state every `every` (and as soon as it
/// becomes the leader): every connector record and worker address on the config topic, every
/// connector's merged positions on the position topic. So as long as the broker keeps
/// messages longer than `every`, a worker reading what is retained learns the whole state.
pub async fn publish_snapshots(sync: Arc<ClusterSync>, worker: Arc<Worker>, every: Duration) {
    let mut led = false;
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500).min(every)).await;
        let leads = worker.leader() == worker.id();
        let due = leads && (!led || last.elapsed() >= every);
        led = leads;
        if !due {
            continue;
        }
        match publish_snapshot(&sync, &worker.deps().store).await {
            Ok(parts) => {
                last = tokio::time::Instant::now();
                tracing::debug!(parts, "state snapshot published");
            }
            Err(e) => tracing::warn!("cannot publish the state snapshot (retrying): {e}"),
        }
    }
}

/// One snapshot of the catalog (in parts under [`SNAPSHOT_PART_BYTES`]) and of the positions.
async fn publish_snapshot(
    sync: &ClusterSync,
    store: &Store,
) -> Result<usize, crate::rocketmq::HubError> {
    let workers = store.worker_addresses();
    let mut parts = Vec::new();
    let mut part = std::collections::BTreeMap::new();
    let mut bytes = 0;
    for (name, record) in store.records() {
        let size = serde_json::to_vec(&record).map(|v| v.len()).unwrap_or(0) + name.len();
        if bytes + size > SNAPSHOT_PART_BYTES && !part.is_empty() {
            parts.push(std::mem::take(&mut part));
            bytes = 0;
        }
        bytes += size;
        part.insert(name, record);
    }
    parts.push(part);
    let count = parts.len();
    for connectors in parts {
        sync.publish_config(&ConfigEvent::Snapshot {
            connectors,
            workers: workers.clone(),
        })
        .await?;
    }
    for (connector, positions) in store.all_positions() {
        if positions.is_empty() {
            continue;
        }
        sync.publish_positions(&PositionEvent {
            epoch: store.positions_epoch(&connector),
            connector,
            positions,
        })
        .await?;
    }
    Ok(count)
}

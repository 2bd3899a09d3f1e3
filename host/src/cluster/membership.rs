//! Membership: each worker is a member of `connector-cluster-group` (a consumer on
//! `connector-cluster-topic` whose instance name is its `workerId`); the broker's list of that
//! group's members is the live worker list. A worker that stops or dies leaves the list as soon
//! as its connection closes. The list is read every [`POLL`] and on start.
//!
//! The broker's list fails safe through [`MemberTracker`]: an error keeps the last good list,
//! and after a disruption (a read error, or a list without this worker: the broker restarted
//! and lost its client table) members that are missing are kept for [`RECOVERY_GRACE`], until
//! every worker's heartbeat has registered it again, so a half-rebuilt list never makes two
//! workers run one task.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::ClusterNames;
use crate::rocketmq::{Hub, HubError, SinkConsumer};

/// How often the member list is read from the broker.
pub const POLL: Duration = Duration::from_secs(1);
/// How long after a disruption a missing member is still counted: longer than the RocketMQ
/// client's heartbeat interval (30 s), after which every live worker is registered again.
pub const RECOVERY_GRACE: Duration = Duration::from_secs(35);

/// Why this worker cannot join.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// Another live worker has this `workerId`.
    #[error(
        "workerId `{0}` is already a live member of the cluster group `{1}`: give each worker its own workerId"
    )]
    Duplicate(String, String),
    /// RocketMQ refused.
    #[error(transparent)]
    Hub(#[from] HubError),
}

/// This worker's membership.
pub struct Membership {
    hub: Arc<Hub>,
    names: ClusterNames,
    worker_id: String,
    /// Held to stay in the group; dropping it (at exit) leaves.
    _member: SinkConsumer,
}

impl Membership {
    /// Joins the group, unless a live member already has this `workerId`.
    pub async fn join(
        hub: Arc<Hub>,
        names: ClusterNames,
        worker_id: &str,
    ) -> Result<Membership, JoinError> {
        let live = hub
            .group_members(&names.cluster_group, &names.cluster_topic)
            .await?;
        if live.contains(worker_id) {
            return Err(JoinError::Duplicate(
                worker_id.to_string(),
                names.cluster_group.clone(),
            ));
        }
        let member = hub
            .consumer(
                &names.cluster_group,
                std::slice::from_ref(&names.cluster_topic),
                worker_id,
            )
            .await?;
        Ok(Membership {
            hub,
            names,
            worker_id: worker_id.to_string(),
            _member: member,
        })
    }

    /// The live members as the broker lists them now (this worker may be missing: the broker
    /// lists a new member a moment after it joined, and a restarted broker only after the next
    /// heartbeat).
    pub async fn read(&self) -> Result<BTreeSet<String>, HubError> {
        self.hub
            .group_members(&self.names.cluster_group, &self.names.cluster_topic)
            .await
    }

    /// This worker's id.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }
}

/// Turns the broker's answers into the member list to allocate by, failing safe.
#[derive(Debug)]
pub struct MemberTracker {
    worker_id: String,
    /// The list last applied.
    last: BTreeSet<String>,
    /// Until when a member missing from the broker's answer is still counted.
    disrupted_until: Option<std::time::Instant>,
}

impl MemberTracker {
    /// A tracker for worker `worker_id`, which starts alone.
    pub fn new(worker_id: &str) -> Self {
        MemberTracker {
            worker_id: worker_id.to_string(),
            last: BTreeSet::from([worker_id.to_string()]),
            disrupted_until: None,
        }
    }

    /// One read of the member list at `now`: the list to allocate by (always with this
    /// worker). An error keeps the last list; after a disruption, members still missing are
    /// kept until they are all back or [`RECOVERY_GRACE`] has passed.
    pub fn observe<E>(
        &mut self,
        read: Result<BTreeSet<String>, E>,
        now: std::time::Instant,
    ) -> &BTreeSet<String> {
        let Ok(mut live) = read else {
            self.disrupted_until = Some(now + RECOVERY_GRACE);
            return &self.last;
        };
        if !live.contains(&self.worker_id) && self.last.len() > 1 {
            // The broker does not know this (running) worker: its client table was lost.
            self.disrupted_until = Some(now + RECOVERY_GRACE);
        }
        live.insert(self.worker_id.clone());
        if let Some(until) = self.disrupted_until {
            if now < until && !live.is_superset(&self.last) {
                live.extend(self.last.iter().cloned());
            } else {
                self.disrupted_until = None;
            }
        }
        self.last = live;
        &self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_member_that_leaves_is_dropped_at_once_when_nothing_went_wrong() {
        let mut t = MemberTracker::new("a");
        let now = Instant::now();
        assert_eq!(
            *t.observe(Ok::<_, ()>(set(&["a", "b", "c"])), now),
            set(&["a", "b", "c"])
        );
        assert_eq!(
            *t.observe(Ok::<_, ()>(set(&["a", "b"])), now),
            set(&["a", "b"])
        );
    }

    #[test]
    fn errors_keep_the_last_list_and_a_half_rebuilt_list_does_not_shrink_it() {
        let mut t = MemberTracker::new("a");
        let start = Instant::now();
        t.observe(Ok::<_, ()>(set(&["a", "b", "c"])), start);
        assert_eq!(*t.observe(Err(()), start), set(&["a", "b", "c"]));
        // The broker is back with only this worker registered so far.
        assert_eq!(
            *t.observe(Ok::<_, ()>(set(&["a"])), start),
            set(&["a", "b", "c"])
        );
        // Everyone is back: the grace ends; a later departure applies at once.
        assert_eq!(
            *t.observe(Ok::<_, ()>(set(&["a", "b", "c"])), start),
            set(&["a", "b", "c"])
        );
        assert_eq!(
            *t.observe(Ok::<_, ()>(set(&["a", "c"])), start),
            set(&["a", "c"])
        );
    }

    #[test]
    fn a_broker_that_forgot_this_worker_is_a_disruption_and_the_grace_ends() {
        let mut t = MemberTracker::new("a");
        let start = Instant::now();
        t.observe(Ok::<_, ()>(set(&["a", "b", "c"])), start);
        // A restarted broker knows only b so far.
        assert_eq!(
            *t.observe(Ok::<_, ()>(set(&["b"])), start),
            set(&["a", "b", "c"])
        );
        // c really died: after the grace it is dropped.
        let later = start + RECOVERY_GRACE + Duration::from_secs(1);
        assert_eq!(
            *t.observe(Ok::<_, ()>(set(&["a", "b"])), later),
            set(&["a", "b"])
        );
        // A new member is added at once, grace or not.
        assert_eq!(
            *t.observe(Ok::<_, ()>(set(&["a", "b", "d"])), later),
            set(&["a", "b", "d"])
        );
    }
}

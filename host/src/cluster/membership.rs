//! Membership: each worker is a member of `connector-cluster-group` (a consumer on
//! `connector-cluster-topic` whose instance name is its `workerId`); the broker's list of that
//! group's members is the live worker list. A worker that stops or dies leaves the list as soon
//! as its connection closes. The list is read every [`POLL`] and on start.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::ClusterNames;
use crate::rocketmq::{Hub, HubError, SinkConsumer};

/// How often the member list is read from the broker.
pub const POLL: Duration = Duration::from_secs(1);

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

    /// The live members, this worker always among them (the broker may list a new member a
    /// moment after it joined).
    pub async fn members(&self) -> Result<BTreeSet<String>, HubError> {
        let mut live = self
            .hub
            .group_members(&self.names.cluster_group, &self.names.cluster_topic)
            .await?;
        live.insert(self.worker_id.clone());
        Ok(live)
    }
}

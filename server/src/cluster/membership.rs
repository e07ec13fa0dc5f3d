//! Membership: who is in the group, adding (as a learner, promoted to voter
//! once caught up while voters are fewer than the target) and removing
//! members, the view the admin API reports, and handing leadership over
//! before this node stops.

use super::transport::TransportError;
use super::{Cluster, Refused, paths};
use openraft::ChangeMembers;
use openraft::errors::{ChangeMembershipError, ClientWriteError, RaftError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A member more than this many entries behind the leader is not healthy,
/// and a learner is not promoted until it is within it.
const CAUGHT_UP: u64 = 100;
const HEALTHY_LAG: u64 = 1000;

/// `GET /admin/v1/cluster` (docs/admin-api.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterView {
    /// `standalone` or `cluster`.
    pub mode: String,
    /// The node that answered.
    pub node_id: u64,
    pub cluster_id: Option<String>,
    pub leader: Option<u64>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub committed_index: Option<u64>,
    /// The last entry the newest snapshot covers, and the last entry
    /// removed from the log (members behind it catch up from a snapshot).
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub members: Vec<MemberView>,
    /// A leader is known and every member is reachable and caught up.
    pub healthy: bool,
    /// The leader's last blob repair pass (clustered, local backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blobs: Option<super::blobs::BlobsReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemberView {
    pub id: u64,
    pub address: String,
    pub voter: bool,
    /// `voter` or `learner`.
    pub role: String,
    /// Highest log index the leader knows the member holds.
    pub matched: Option<u64>,
    /// Entries the member is behind the leader's log.
    pub lag: Option<u64>,
    /// Highest log index the member has applied (when it could be asked).
    pub applied: Option<u64>,
    pub reachable: bool,
    /// Blobs held, bytes, under-replicated blobs, repair and drain queues
    /// (from the leader's last repair pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blobs: Option<super::blobs::repair::MemberBlobs>,
}

/// `GET /internal/v1/info`: what a node says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeInfo {
    pub node_id: u64,
    pub cluster_id: Option<String>,
    /// It holds a membership: it belongs to a group.
    pub initialized: bool,
    pub leader: Option<u64>,
    pub state: String,
    pub applied: Option<u64>,
    pub last_log_index: Option<u64>,
}

/// `POST /internal/v1/join` and the admin API's add.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    pub id: u64,
    pub address: String,
    /// The node starts with empty storage: if its id is a member that has
    /// voted or acknowledged entries, it lost them and must be removed and
    /// added again rather than trusted.
    pub fresh: bool,
}

impl Cluster {
    pub fn info(&self) -> NodeInfo {
        let m = self.metrics();
        NodeInfo {
            node_id: self.node_id,
            cluster_id: self.cluster_id(),
            initialized: m.membership_config.voter_ids().next().is_some(),
            leader: m.current_leader,
            state: format!("{:?}", m.state),
            applied: m.last_applied.as_ref().map(|l| l.index),
            last_log_index: m.last_log_index,
        }
    }

    /// Whether this node can serve: it knows the leader and has applied
    /// what it knows to be committed.
    pub fn is_ready(&self) -> bool {
        let m = self.metrics();
        let member = m
            .membership_config
            .membership()
            .get_node(&self.node_id)
            .is_some();
        let applied = m.last_applied.as_ref().map(|l| l.index);
        let committed = m.local_committed.as_ref().map(|l| l.index);
        member && m.current_leader.is_some() && applied >= committed && self.leader_in_touch(&m)
    }

    /// Whether the leader was heard from lately: a follower cut off from it
    /// keeps naming it as leader (pre-vote elects nobody) but cannot serve.
    fn leader_in_touch(&self, m: &openraft::RaftMetrics<super::raft::types::TypeConfig>) -> bool {
        let voters = m.membership_config.membership().voter_ids().count();
        if !self.enabled || voters <= 1 && m.current_leader == Some(self.node_id) {
            return true;
        }
        let window = self.settings.peer_timeout;
        if m.current_leader == Some(self.node_id) {
            return m
                .last_quorum_acked
                .as_ref()
                .is_some_and(|acked| openraft::Instant::elapsed(&**acked) < window);
        }
        self.leader_contact
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < window)
    }

    /// Records that the leader just reached this node.
    pub fn heard_from_leader(&self) {
        *self
            .leader_contact
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
    }

    /// The view this node has; the leader's when this node leads.
    fn local_view(&self, reports: &BTreeMap<u64, NodeInfo>) -> ClusterView {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let is_leader = m.current_leader == Some(self.node_id);
        let last = m.last_log_index;
        let report = if is_leader { self.blobs_report() } else { None };
        let members: Vec<MemberView> = membership
            .nodes()
            .map(|(&id, node)| {
                let matched = if id == self.node_id {
                    last
                } else {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(&id).cloned().flatten())
                        .map(|l| l.index)
                };
                let applied = if id == self.node_id {
                    m.last_applied.as_ref().map(|l| l.index)
                } else {
                    reports.get(&id).and_then(|r| r.applied)
                };
                let reachable = id == self.node_id || reports.contains_key(&id);
                MemberView {
                    id,
                    address: node.addr.clone(),
                    voter: voters.contains(&id),
                    role: if voters.contains(&id) {
                        "voter"
                    } else {
                        "learner"
                    }
                    .into(),
                    matched,
                    lag: match (last, matched) {
                        (Some(last), Some(matched)) if is_leader => {
                            Some(last.saturating_sub(matched))
                        }
                        (Some(last), None) if is_leader => Some(last),
                        _ => None,
                    },
                    applied,
                    reachable,
                    blobs: report.as_ref().and_then(|r| r.members.get(&id).cloned()),
                }
            })
            .collect();
        let healthy = m.current_leader.is_some()
            && (!self.enabled
                || (is_leader
                    && members
                        .iter()
                        .all(|member| member.reachable && member.lag.unwrap_or(0) <= HEALTHY_LAG)));
        ClusterView {
            mode: if self.enabled {
                "cluster"
            } else {
                "standalone"
            }
            .into(),
            node_id: self.node_id,
            cluster_id: self.cluster_id(),
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: last,
            committed_index: m.local_committed.as_ref().map(|l| l.index),
            snapshot_index: m.snapshot.as_ref().map(|l| l.index),
            purged_index: m.purged.as_ref().map(|l| l.index),
            members,
            healthy,
            blobs: report,
        }
    }

    /// The leader's view when this node leads: asks every other member
    /// about itself.
    pub async fn leader_view(&self) -> ClusterView {
        let others: Vec<u64> = self
            .metrics()
            .membership_config
            .nodes()
            .map(|(&id, _)| id)
            .filter(|&id| id != self.node_id)
            .collect();
        let timeout = self.settings.peer_timeout / 2;
        let asked = futures::future::join_all(others.into_iter().map(|id| async move {
            let info: Result<NodeInfo, TransportError> =
                self.call(id, paths::INFO, &(), timeout).await;
            (id, info)
        }))
        .await;
        let reports = asked
            .into_iter()
            .filter_map(|(id, info)| info.ok().map(|info| (id, info)))
            .collect();
        self.local_view(&reports)
    }

    /// The cluster as the admin API reports it: the leader's view, from
    /// whichever node is asked.
    pub async fn view(&self) -> ClusterView {
        if !self.enabled || self.raft.is_leader() {
            return self.leader_view().await;
        }
        if let Some(leader) = self.metrics().current_leader {
            let view: Result<ClusterView, TransportError> = self
                .call(leader, paths::VIEW, &(), self.settings.peer_timeout)
                .await;
            if let Ok(mut view) = view {
                view.node_id = self.node_id;
                return view;
            }
        }
        let mut view = self.local_view(&BTreeMap::new());
        view.healthy = false;
        view
    }

    /// Adds a member, on the leader or through it.
    pub async fn admit(&self, request: JoinRequest) -> Result<(), Refused> {
        if !self.enabled {
            return Err(Refused::Conflict(
                "this server is standalone (cluster.enabled is false)".into(),
            ));
        }
        if self.raft.is_leader() {
            return self.admit_here(&request).await;
        }
        let leader = self.known_leader()?;
        let answer: Result<Result<(), Refused>, TransportError> = self
            .call(leader, paths::JOIN, &request, self.settings.request_timeout)
            .await;
        answer.map_err(|e| Refused::Unavailable(format!("cannot reach the leader: {e}")))?
    }

    /// Removes a member, on the leader or through it.
    pub async fn remove(&self, id: u64) -> Result<(), Refused> {
        if !self.enabled {
            return Err(Refused::Conflict(
                "this server is standalone (cluster.enabled is false)".into(),
            ));
        }
        if self.raft.is_leader() {
            return self.remove_here(id).await;
        }
        let leader = self.known_leader()?;
        let answer: Result<Result<(), Refused>, TransportError> = self
            .call(leader, paths::REMOVE, &id, self.settings.request_timeout)
            .await;
        answer.map_err(|e| Refused::Unavailable(format!("cannot reach the leader: {e}")))?
    }

    fn known_leader(&self) -> Result<u64, Refused> {
        self.metrics()
            .current_leader
            .ok_or_else(|| Refused::Unavailable("no leader is known".into()))
    }

    pub(crate) async fn admit_here(&self, request: &JoinRequest) -> Result<(), Refused> {
        if !self.raft.is_leader() {
            return Err(Refused::NotLeader {
                leader: self.metrics().current_leader,
            });
        }
        let m = self.metrics();
        let membership = m.membership_config.membership().clone();
        if let Some(node) = membership.get_node(&request.id) {
            let voter = membership.voter_ids().any(|v| v == request.id);
            let acknowledged = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&request.id).cloned().flatten())
                .is_some();
            if !request.fresh {
                if node.addr != request.address {
                    return Err(Refused::Conflict(format!(
                        "node {} is a member at {}, not {}",
                        request.id, node.addr, request.address
                    )));
                }
                return Ok(());
            }
            if !voter && !acknowledged {
                // Added, but it never held anything: nothing was lost.
                return Ok(());
            }
            tracing::warn!(
                node = request.id,
                "a member came back with empty storage: removing it before adding it again"
            );
            // Removing a voter also removes the node.
            let removal = if voter {
                ChangeMembers::RemoveVoters(BTreeSet::from([request.id]))
            } else {
                ChangeMembers::RemoveNodes(BTreeSet::from([request.id]))
            };
            self.change(removal).await?;
        }
        self.resolver().learn(request.id, &request.address);
        let node = openraft::BasicNode::new(&request.address);
        self.waiting_out_changes(|| async {
            self.raft
                .add_learner(request.id, node.clone(), false)
                .await
                .map(|_| ())
        })
        .await?;
        tracing::info!(node = request.id, address = %request.address, "added a learner");
        Ok(())
    }

    pub(crate) async fn remove_here(&self, id: u64) -> Result<(), Refused> {
        if !self.raft.is_leader() {
            return Err(Refused::NotLeader {
                leader: self.metrics().current_leader,
            });
        }
        let m = self.metrics();
        let membership = m.membership_config.membership();
        if membership.get_node(&id).is_none() {
            return Err(Refused::NotFound(format!("node {id} is not a member")));
        }
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        if voters.contains(&id) {
            if voters.len() == 1 {
                return Err(Refused::Conflict(format!(
                    "node {id} is the only voter: the group cannot go on without it"
                )));
            }
            self.change(ChangeMembers::RemoveVoters(BTreeSet::from([id])))
                .await?;
        } else {
            self.change(ChangeMembers::RemoveNodes(BTreeSet::from([id])))
                .await?;
        }
        tracing::info!(node = id, "removed a member");
        Ok(())
    }

    async fn change(&self, change: ChangeMembers<u64, openraft::BasicNode>) -> Result<(), Refused> {
        self.waiting_out_changes(|| async {
            self.raft
                .change_membership(change.clone(), false)
                .await
                .map(|_| ())
        })
        .await
    }

    /// Runs a membership change, waiting out one already in progress (a
    /// promotion by the keeper, a node joining by itself) until the request
    /// timeout; still busy then, it is a retryable refusal.
    async fn waiting_out_changes<F, Fut>(&self, mut attempt: F) -> Result<(), Refused>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), WriteError>>,
    {
        let deadline = tokio::time::Instant::now() + self.settings.request_timeout;
        loop {
            match attempt().await {
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(_),
                ))) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other.map_err(refused),
            }
        }
    }

    /// Promotes one caught-up learner while voters are fewer than the
    /// target: the largest odd number not above the member count, capped
    /// at `cluster.max_voters`.
    async fn promote(&self) {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let members = membership.nodes().count() as u32;
        let odd = if members % 2 == 1 {
            members
        } else {
            members - 1
        };
        let target = odd.min(self.settings.max_voters).max(1) as usize;
        if voters.len() >= target || m.membership_config.membership().get_joint_config().len() > 1 {
            return;
        }
        let Some(last) = m.last_log_index else {
            return;
        };
        let caught_up = membership.learner_ids().find(|id| {
            m.replication
                .as_ref()
                .and_then(|r| r.get(id).cloned().flatten())
                .is_some_and(|matched| matched.index + CAUGHT_UP >= last)
        });
        if let Some(id) = caught_up {
            match self
                .change(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
                .await
            {
                Ok(()) => tracing::info!(node = id, "promoted a learner to voter"),
                Err(e) => tracing::info!(node = id, error = %e, "promotion not possible yet"),
            }
        }
    }
}

/// Maps openraft's refusal of a membership change.
type WriteError =
    RaftError<super::raft::types::TypeConfig, ClientWriteError<super::raft::types::TypeConfig>>;

fn refused(e: WriteError) -> Refused {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f))
        | RaftError::APIError(ClientWriteError::LogEntryDiscarded(f)) => Refused::NotLeader {
            leader: f.leader_id,
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            e @ ChangeMembershipError::InProgress(_),
        )) => Refused::Unavailable(e.to_string()),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            Refused::Invalid(e.to_string())
        }
        RaftError::APIError(other) => Refused::Invalid(other.to_string()),
        RaftError::Fatal(fatal) => Refused::Unavailable(format!("the Raft node stopped: {fatal}")),
    }
}

/// The leader's housekeeping: promote learners that caught up.
pub async fn keep(cluster: std::sync::Arc<Cluster>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if cluster.raft.is_leader() {
            cluster.promote().await;
        }
    }
}

/// Before this node stops: if it leads and another voter is caught up,
/// hand leadership to it and wait (at most `timeout`) until it took over.
pub async fn hand_over_leadership(cluster: &Cluster, timeout: Duration) {
    if !cluster.raft.is_leader() {
        return;
    }
    let m = cluster.metrics();
    let Some(last) = m.last_log_index else {
        return;
    };
    let successor = m.membership_config.voter_ids().find(|&id| {
        id != cluster.node_id
            && m.replication
                .as_ref()
                .and_then(|r| r.get(&id).cloned().flatten())
                .is_some_and(|matched| matched.index + CAUGHT_UP >= last)
    });
    let Some(successor) = successor else {
        return;
    };
    tracing::info!(to = successor, "handing leadership over before stopping");
    if cluster
        .raft
        .trigger()
        .transfer_leader(successor)
        .await
        .is_err()
    {
        return;
    }
    let me = cluster.node_id;
    let _ = cluster
        .raft
        .wait(Some(timeout))
        .metrics(|m| m.current_leader.is_some_and(|l| l != me), "new leader")
        .await;
}

/// Transfers leadership to `to` (or to a caught-up voter), for the admin API.
pub async fn transfer_leadership(cluster: &Cluster, to: Option<u64>) -> Result<u64, Refused> {
    if !cluster.raft.is_leader() {
        return Err(Refused::NotLeader {
            leader: cluster.metrics().current_leader,
        });
    }
    let m = cluster.metrics();
    let voters: Vec<u64> = m.membership_config.voter_ids().collect();
    let target = match to {
        Some(id) if voters.contains(&id) => id,
        Some(id) => return Err(Refused::NotFound(format!("node {id} is not a voter"))),
        None => voters
            .into_iter()
            .find(|&id| id != cluster.node_id)
            .ok_or_else(|| Refused::Conflict("there is no other voter".into()))?,
    };
    cluster
        .raft
        .trigger()
        .transfer_leader(target)
        .await
        .map_err(|e| Refused::Unavailable(e.to_string()))?;
    Ok(target)
}

//! Raft membership changes that go with scaling, through the admin API.

use super::rollout::{Current, Plan};
use super::{Context, key};

use crate::admin::ClusterView;
use crate::builders;
use crate::crd::{BleepStoreCluster, RaftMember, RaftStatus};
use crate::status::{Motion, Observed, Problem};

pub(super) fn raft_status(view: &ClusterView) -> RaftStatus {
    RaftStatus {
        leader: view.leader,
        members: view
            .members
            .iter()
            .map(|m| RaftMember {
                id: m.id,
                address: m.address.clone(),
                voter: m.voter,
                draining: m.draining(),
            })
            .collect(),
        healthy: view.healthy,
    }
}

/// Why a scale-down cannot shrink the StatefulSet yet.
pub(super) enum Hold {
    /// Members are still draining their blob copies: progress, not trouble.
    Draining(String),
    Problem(Problem),
}

/// Removes the members whose pods a scale-down will delete, highest ordinal
/// first. A server that replicates blobs drains a member before it leaves
/// (the removal answers at once with the member still listed, draining), so
/// the StatefulSet shrinks — and the pod and its volume go — only once no
/// departing member is left in the group. `Err` says why it cannot shrink.
pub(super) async fn remove_departing(
    ctx: &Context,
    bsc: &BleepStoreCluster,
    current: &Current,
    view: Option<&ClusterView>,
    admin_base: &str,
    token: Option<&str>,
) -> Result<(), Hold> {
    let (Some(view), Some(token)) = (view, token) else {
        return Err(Hold::Problem(Problem::new(
            "AdminApiUnreachable",
            format!(
                "the Raft members to remove cannot be removed: no cluster view from {admin_base}"
            ),
        )));
    };
    let mut draining = Vec::new();
    for ordinal in (bsc.spec.replicas..current.replicas).rev() {
        let id = ordinal as u64;
        if !view.is_cluster() || view.member(id).is_none() {
            continue;
        }
        match ctx.admin.remove_member(admin_base, token, id).await {
            Ok(after) => match after.member(id) {
                Some(member) => {
                    let left = member.blobs.as_ref().map(|b| b.drain_queue).unwrap_or(0);
                    tracing::info!(cluster = %key(bsc), member = id, copies_left = left, "Raft member draining");
                    draining.push(format!("member {id} ({left} blob copies left to move)"));
                }
                None => tracing::info!(cluster = %key(bsc), member = id, "removed Raft member"),
            },
            Err(e) if e.status() == Some(404) => {}
            Err(e) if e.code() == Some("NotClustered") => {}
            Err(e) => {
                return Err(Hold::Problem(Problem::new(
                    "AdminApiError",
                    format!("removing Raft member {id} through {admin_base} failed: {e}"),
                )));
            }
        }
    }
    if draining.is_empty() {
        Ok(())
    } else {
        Err(Hold::Draining(format!(
            "draining before removal: {}",
            draining.join(", ")
        )))
    }
}

/// Scale-up: asks the group to add members that have not joined yet, and
/// keeps the resource progressing until they are voters.
pub(super) async fn add_missing_members(
    ctx: &Context,
    bsc: &BleepStoreCluster,
    view: &ClusterView,
    admin_base: &str,
    token: &str,
    observed: &mut Observed,
    plan: &mut Plan,
) {
    let mut waiting = Vec::new();
    for ordinal in 0..bsc.spec.replicas {
        let id = ordinal as u64;
        let address = builders::member_address(bsc, ordinal);
        match view.member(id) {
            Some(m) if m.address != address => {
                observed.problem.get_or_insert_with(|| {
                    Problem::new(
                        "MemberConflict",
                        format!(
                            "Raft member id {id} is registered with address {}, not {address}: remove it through the admin API (DELETE /admin/v1/cluster/members/{id}) so pod {ordinal} can join",
                            m.address
                        ),
                    )
                });
                waiting.push(id);
            }
            Some(m) if m.voter => {}
            Some(_) => waiting.push(id),
            None => {
                match ctx.admin.add_member(admin_base, token, id, &address).await {
                    Ok(new_view) => observed.raft = Some(raft_status(&new_view)),
                    Err(e) if e.status() == Some(409) => {
                        observed.problem.get_or_insert_with(|| {
                            Problem::new(
                                "MemberConflict",
                                format!("Raft member id {id} is taken by another address: {e}"),
                            )
                        });
                    }
                    // The pod may not be up yet: try again on the next pass.
                    Err(e) => {
                        tracing::info!(cluster = %key(bsc), member = id, error = %e, "member not added yet")
                    }
                }
                waiting.push(id);
            }
        }
    }
    if !waiting.is_empty() && plan.motion == Motion::Stable {
        plan.motion = Motion::ScalingUp {
            from: view.members.len() as i32,
            to: bsc.spec.replicas,
        };
    }
}

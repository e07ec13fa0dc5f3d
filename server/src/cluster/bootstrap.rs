//! Forming or joining a group (DESIGN §7). A node with data just starts:
//! its membership is in its log. A standalone server founds its group of
//! one. In cluster mode a node with empty storage asks its peers: if any
//! belongs to a group, it asks to join (the leader adds it as a learner);
//! only the lowest configured id, finding no group through a majority of
//! the configured peers, founds a new one. So a node whose data dir was lost
//! never starts a second cluster while its old one is reachable.

use super::membership::{JoinRequest, NodeInfo};
use super::transport::TransportError;
use super::{Cluster, Refused, paths};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Starts the node's group membership: at once when standalone, in the
/// background in cluster mode.
pub async fn start(cluster: &Arc<Cluster>) -> anyhow::Result<()> {
    let initialized = cluster
        .raft
        .is_initialized()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the Raft state: {e}"))?;
    if initialized {
        return Ok(());
    }
    if !cluster.enabled {
        found(cluster).await?;
        return Ok(());
    }
    let task = tokio::spawn(join_or_found(cluster.clone()));
    cluster
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(task);
    Ok(())
}

/// Initialises a group of this node alone.
async fn found(cluster: &Cluster) -> anyhow::Result<()> {
    let address = cluster.resolver().advertise();
    let members = BTreeMap::from([(cluster.node_id, openraft::BasicNode::new(&address))]);
    cluster
        .raft
        .initialize(members)
        .await
        .map_err(|e| anyhow::anyhow!("cannot initialise the Raft group: {e}"))?;
    cluster.new_cluster_id().await?;
    tracing::info!(node = cluster.node_id, %address, cluster_id = ?cluster.cluster_id(), "founded a new group");
    Ok(())
}

/// What one peer said when asked about itself.
enum Probe {
    Member(NodeInfo),
    Pristine,
    /// Why not (shown while the node waits: a wrong address, secret or
    /// certificate is visible in its log).
    Unreachable(String),
}

async fn probe(cluster: &Cluster, id: u64) -> Probe {
    let info: Result<NodeInfo, TransportError> = cluster
        .call(id, paths::INFO, &(), Duration::from_secs(1))
        .await;
    match info {
        Ok(info) if info.initialized => Probe::Member(info),
        Ok(_) => Probe::Pristine,
        Err(e) => Probe::Unreachable(e.to_string()),
    }
}

async fn join_or_found(cluster: Arc<Cluster>) {
    let mut pause = Duration::from_millis(200);
    let mut attempts: u64 = 0;
    loop {
        match cluster.raft.is_initialized().await {
            // Added by a leader meanwhile (its entries arrived first).
            Ok(true) => return,
            Ok(false) => {}
            Err(_) => return,
        }
        attempts += 1;
        let peers: Vec<u64> = cluster
            .resolver()
            .configured_ids()
            .into_iter()
            .filter(|&id| id != cluster.node_id)
            .collect();
        let probes = futures::future::join_all(peers.iter().map(|&id| {
            let cluster = &cluster;
            async move { (id, probe(cluster, id).await) }
        }))
        .await;
        let members: Vec<(u64, NodeInfo)> = probes
            .iter()
            .filter_map(|(id, p)| match p {
                Probe::Member(info) => Some((*id, info.clone())),
                _ => None,
            })
            .collect();
        if !members.is_empty() {
            if ask_to_join(&cluster, &members).await {
                return;
            }
        } else {
            let pristine = probes
                .iter()
                .filter(|(_, p)| matches!(p, Probe::Pristine))
                .count();
            let configured = peers.len() + 1;
            let lowest = peers.iter().all(|&id| id > cluster.node_id);
            // This node and the pristine peers it reached are a majority of
            // the configured group: no group can exist without one of them.
            if lowest && (pristine + 1) * 2 > configured {
                match found(&cluster).await {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(error = %e, "cannot found the group"),
                }
            }
        }
        if attempts % 25 == 1 {
            let unreachable: Vec<&str> = probes
                .iter()
                .filter_map(|(_, p)| match p {
                    Probe::Unreachable(why) => Some(why.as_str()),
                    _ => None,
                })
                .collect();
            tracing::info!(
                node = cluster.node_id,
                reachable_members = members.len(),
                unreachable = %unreachable.join("; "),
                "waiting to join a group (no group reachable yet, or not the node to found one)"
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(3));
    }
}

/// Asks the members found to add this node; true once one accepted.
async fn ask_to_join(cluster: &Cluster, members: &[(u64, NodeInfo)]) -> bool {
    let request = JoinRequest {
        id: cluster.node_id,
        address: cluster.resolver().advertise(),
        fresh: true,
    };
    for (id, info) in members {
        let answer: Result<Result<(), Refused>, TransportError> = cluster
            .call(*id, paths::JOIN, &request, cluster.settings.request_timeout)
            .await;
        match answer {
            Ok(Ok(())) => {
                if let Some(cluster_id) = &info.cluster_id
                    && let Err(e) = cluster.adopt_cluster_id(cluster_id).await
                {
                    tracing::warn!(error = %e, "cannot record the cluster id");
                }
                tracing::info!(
                    node = cluster.node_id,
                    via = id,
                    "asked to join; waiting for the leader's log"
                );
                return true;
            }
            Ok(Err(refused)) => {
                tracing::info!(via = id, %refused, "join refused for now")
            }
            Err(e) => tracing::debug!(via = id, error = %e, "join request failed"),
        }
    }
    false
}

//! Replicas and the rolling-update partition, decided from what the
//! StatefulSet reports.

use k8s_openapi::api::apps::v1::StatefulSet;

use crate::builders;
use crate::status::Motion;

/// What the StatefulSet currently looks like.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    pub replicas: i32,
    pub ready: i32,
    pub updated: i32,
    pub partition: i32,
    pub hash: Option<String>,
    /// The StatefulSet controller has seen the latest spec.
    pub settled: bool,
}

impl Current {
    pub fn of(sts: &StatefulSet) -> Current {
        let spec = sts.spec.clone();
        let status = sts.status.clone().unwrap_or_default();
        Current {
            replicas: spec.replicas.unwrap_or(1),
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            partition: spec
                .update_strategy
                .and_then(|s| s.rolling_update)
                .and_then(|r| r.partition)
                .unwrap_or(0),
            hash: sts
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(builders::CONFIG_HASH_ANNOTATION))
                .cloned(),
            settled: status.observed_generation.is_some()
                && status.observed_generation >= sts.metadata.generation,
        }
    }

    /// Every pod runs the latest template.
    pub fn converged(&self) -> bool {
        self.settled && self.partition == 0 && self.updated >= self.replicas
    }
}

/// The next StatefulSet replicas and partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub replicas: i32,
    pub partition: i32,
    pub motion: Motion,
    /// A new rollout starts with this pass.
    pub rollout_started: bool,
}

/// Decides replicas and the rolling-update partition. Pods roll one at a
/// time from the highest ordinal, each step only when every pod is ready and
/// the cluster reports healthy.
pub fn plan(
    current: Option<&Current>,
    desired_replicas: i32,
    desired_hash: &str,
    healthy: bool,
) -> Plan {
    let Some(current) = current else {
        return Plan {
            replicas: desired_replicas,
            partition: 0,
            motion: Motion::Creating,
            rollout_started: false,
        };
    };
    let replicas = desired_replicas;
    let scaling = match current.replicas.cmp(&desired_replicas) {
        std::cmp::Ordering::Less => Some(Motion::ScalingUp {
            from: current.replicas,
            to: desired_replicas,
        }),
        std::cmp::Ordering::Greater => Some(Motion::ScalingDown {
            from: current.replicas,
            to: desired_replicas,
        }),
        std::cmp::Ordering::Equal => None,
    };
    if current.hash.as_deref() != Some(desired_hash) {
        // A new template: update nothing yet unless the cluster is healthy,
        // then only the highest ordinal.
        let (partition, motion) = if healthy {
            (
                replicas - 1,
                Motion::RollingUpdate {
                    updated: 0,
                    replicas,
                },
            )
        } else {
            (
                replicas,
                Motion::RolloutBlocked(
                    "waiting for the cluster to be healthy before rolling".into(),
                ),
            )
        };
        return Plan {
            replicas,
            partition,
            motion: scaling.unwrap_or(motion),
            rollout_started: true,
        };
    }
    let partition = current.partition.min(replicas);
    let step_done = current.settled && current.updated >= current.replicas - current.partition;
    let (partition, motion) = if partition == 0 {
        if current.updated < current.replicas || !current.settled {
            (
                0,
                Motion::RollingUpdate {
                    updated: current.updated,
                    replicas,
                },
            )
        } else {
            (0, Motion::Stable)
        }
    } else if step_done && healthy {
        (
            partition - 1,
            Motion::RollingUpdate {
                updated: current.updated,
                replicas,
            },
        )
    } else if step_done {
        (
            partition,
            Motion::RolloutBlocked(
                "waiting for the cluster to be healthy before the next pod".into(),
            ),
        )
    } else {
        (
            partition,
            Motion::RollingUpdate {
                updated: current.updated,
                replicas,
            },
        )
    };
    Plan {
        replicas,
        partition,
        motion: scaling.unwrap_or(motion),
        rollout_started: false,
    }
}

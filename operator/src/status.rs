//! Status computation: conditions from what the reconciler observed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{BleepStoreClusterStatus, RaftStatus};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const SERVICE_MONITOR: &str = "ServiceMonitor";

/// The longest condition message or Event note written: Events are refused
/// above 1024 characters, and a condition should read as one sentence.
pub const MAX_MESSAGE: usize = 512;

/// `text` cut to at most `max` bytes on a character boundary, marked `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A problem that makes the resource Degraded.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub reason: String,
    pub message: String,
    /// Worth retrying soon (the API, the admin API, a Secret that may
    /// appear); a spec problem waits for the spec to change instead.
    pub transient: bool,
}

impl Problem {
    /// A problem that may go away by itself: retried with backoff.
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Problem {
            reason: reason.into(),
            message: truncate(&message.into(), MAX_MESSAGE),
            transient: true,
        }
    }

    /// A problem only a spec change fixes.
    pub fn in_spec(reason: &str, message: impl Into<String>) -> Self {
        Problem {
            transient: false,
            ..Problem::new(reason, message)
        }
    }
}

/// What is in motion, if anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Motion {
    Stable,
    Creating,
    ScalingUp {
        from: i32,
        to: i32,
    },
    ScalingDown {
        from: i32,
        to: i32,
    },
    RollingUpdate {
        updated: i32,
        replicas: i32,
    },
    /// A rollout waits for the cluster to become healthy.
    RolloutBlocked(String),
    /// A scale-down waits (the members to remove cannot be removed yet);
    /// nothing was changed.
    ScaleDownWaiting {
        from: i32,
        to: i32,
        why: String,
    },
}

/// Everything the status depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub generation: Option<i64>,
    pub desired_replicas: i32,
    pub replicas: i32,
    pub ready_replicas: i32,
    pub cluster_mode: bool,
    pub raft: Option<RaftStatus>,
    pub motion: Motion,
    pub problem: Option<Problem>,
    pub selector: Option<String>,
    pub endpoint: Option<String>,
    pub current_image: Option<String>,
    pub current_config_hash: Option<String>,
    /// `Some(Ok)` created, `Some(Err(message))` skipped, `None` not asked for.
    pub service_monitor: Option<Result<(), String>>,
    /// Secrets the operator generated (kept in status to tell a deleted one
    /// from one never made).
    pub generated_secrets: Vec<String>,
    pub secrets_regenerated: Option<String>,
}

/// Sets a condition, keeping `lastTransitionTime` when the status is unchanged.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if status { "True" } else { "False" }.to_string();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            if existing.status != status {
                existing.last_transition_time = now.clone();
            }
            existing.status = status;
            existing.reason = reason.into();
            existing.message = message;
            existing.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message,
            observed_generation: generation,
            last_transition_time: now.clone(),
        }),
    }
}

/// One word for `kubectl get`'s STATUS column: the Degraded reason, else
/// what is in progress, else `Ready` or why not.
fn phase(conditions: &[Condition]) -> String {
    let find = |t: &str| conditions.iter().find(|c| c.type_ == t);
    match (find(DEGRADED), find(PROGRESSING), find(READY)) {
        (Some(d), _, _) if d.status == "True" => d.reason.clone(),
        (_, Some(p), _) if p.status == "True" => p.reason.clone(),
        (_, _, Some(r)) if r.status == "True" => "Ready".into(),
        (_, _, Some(r)) => r.reason.clone(),
        _ => "Unknown".into(),
    }
}

pub fn condition<'a>(status: &'a BleepStoreClusterStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

/// The new status from the previous one and what was observed.
pub fn compute(
    previous: Option<&BleepStoreClusterStatus>,
    observed: &Observed,
    now: &Time,
) -> BleepStoreClusterStatus {
    let mut status = previous.cloned().unwrap_or_default();
    let generation = observed.generation;
    status.observed_generation = generation;
    status.replicas = observed.replicas;
    status.ready_replicas = observed.ready_replicas;
    status.selector = observed.selector.clone();
    if observed.endpoint.is_some() {
        status.endpoint = observed.endpoint.clone();
    }
    if observed.current_image.is_some() {
        status.current_image = observed.current_image.clone();
    }
    if observed.current_config_hash.is_some() {
        status.current_config_hash = observed.current_config_hash.clone();
    }
    status.cluster_mode = observed.cluster_mode;
    if observed.raft.is_some() || !observed.cluster_mode {
        status.raft = observed.raft.clone();
    }
    status.generated_secrets = observed.generated_secrets.clone();
    if observed.secrets_regenerated.is_some() {
        status.secrets_regenerated = observed.secrets_regenerated.clone();
    }

    let conditions = &mut status.conditions;
    match &observed.problem {
        Some(problem) => set_condition(
            conditions,
            DEGRADED,
            true,
            &problem.reason,
            problem.message.clone(),
            generation,
            now,
        ),
        None => set_condition(
            conditions,
            DEGRADED,
            false,
            "AsExpected",
            "no problems observed".into(),
            generation,
            now,
        ),
    }

    let (progressing, reason, message) = match &observed.motion {
        Motion::Stable => (false, "Stable", "nothing in progress".to_string()),
        Motion::Creating => (true, "Creating", "creating the cluster".to_string()),
        Motion::ScalingUp { from, to } => (
            true,
            "ScalingUp",
            format!("scaling up from {from} to {to} replicas"),
        ),
        Motion::ScalingDown { from, to } => (
            true,
            "ScalingDown",
            format!("scaling down from {from} to {to} replicas"),
        ),
        Motion::RollingUpdate { updated, replicas } => (
            true,
            "RollingUpdate",
            format!("{updated} of {replicas} pods updated"),
        ),
        Motion::RolloutBlocked(why) => (true, "RolloutWaiting", why.clone()),
        Motion::ScaleDownWaiting { from, to, why } => (
            true,
            "ScaleDownWaiting",
            truncate(
                &format!("waiting to scale down from {from} to {to} replicas: {why}"),
                MAX_MESSAGE,
            ),
        ),
    };
    set_condition(
        conditions,
        PROGRESSING,
        progressing,
        reason,
        message,
        generation,
        now,
    );

    let raft_ok = !observed.cluster_mode
        || observed
            .raft
            .as_ref()
            .is_some_and(|r| r.healthy && r.leader.is_some());
    let all_ready = observed.ready_replicas >= observed.desired_replicas
        && observed.replicas == observed.desired_replicas;
    let (ready, reason, message) = if let Some(problem) = &observed.problem {
        (false, problem.reason.as_str(), problem.message.clone())
    } else if !all_ready {
        (
            false,
            "ReplicasNotReady",
            format!(
                "{} of {} replicas ready",
                observed.ready_replicas, observed.desired_replicas
            ),
        )
    } else if !raft_ok {
        (
            false,
            "RaftUnhealthy",
            "the Raft group has no leader or is not healthy".to_string(),
        )
    } else {
        (
            true,
            "AllReplicasReady",
            format!("{} replicas ready", observed.ready_replicas),
        )
    };
    set_condition(conditions, READY, ready, reason, message, generation, now);

    match &observed.service_monitor {
        None => conditions.retain(|c| c.type_ != SERVICE_MONITOR),
        Some(Ok(())) => set_condition(
            conditions,
            SERVICE_MONITOR,
            true,
            "Created",
            "ServiceMonitor applied".into(),
            generation,
            now,
        ),
        Some(Err(message)) => set_condition(
            conditions,
            SERVICE_MONITOR,
            false,
            "CRDNotInstalled",
            message.clone(),
            generation,
            now,
        ),
    }
    status.phase = Some(phase(&status.conditions));
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    fn observed() -> Observed {
        Observed {
            generation: Some(2),
            desired_replicas: 3,
            replicas: 3,
            ready_replicas: 3,
            cluster_mode: true,
            raft: Some(RaftStatus {
                leader: Some(0),
                members: vec![],
                healthy: true,
            }),
            motion: Motion::Stable,
            problem: None,
            selector: Some("a=b".into()),
            endpoint: Some("http://demo.ns.svc:9000".into()),
            current_image: Some("img:1".into()),
            current_config_hash: Some("abc".into()),
            service_monitor: None,
            generated_secrets: vec![],
            secrets_regenerated: None,
        }
    }

    fn get<'a>(s: &'a BleepStoreClusterStatus, t: &str) -> &'a Condition {
        condition(s, t).unwrap()
    }

    #[test]
    fn phase_names_the_problem_then_the_motion_then_readiness() {
        let s = compute(None, &observed(), &at(10));
        assert_eq!(s.phase.as_deref(), Some("Ready"));
        let mut o = observed();
        o.motion = Motion::ScaleDownWaiting {
            from: 3,
            to: 1,
            why: "the admin API is unreachable".into(),
        };
        let s = compute(None, &o, &at(10));
        assert_eq!(s.phase.as_deref(), Some("ScaleDownWaiting"));
        assert!(get(&s, PROGRESSING).message.contains("from 3 to 1"));
        o.problem = Some(Problem::new("AdminApiUnreachable", "x".repeat(5000)));
        let s = compute(None, &o, &at(10));
        assert_eq!(s.phase.as_deref(), Some("AdminApiUnreachable"));
        assert!(get(&s, DEGRADED).message.len() <= MAX_MESSAGE);
        let mut o = observed();
        o.ready_replicas = 1;
        assert_eq!(
            compute(None, &o, &at(1)).phase.as_deref(),
            Some("ReplicasNotReady")
        );
        assert_eq!(truncate("héllo wörld", 9), "héllo…");
    }

    #[test]
    fn healthy_cluster_is_ready() {
        let s = compute(None, &observed(), &at(10));
        assert_eq!(get(&s, READY).status, "True");
        assert_eq!(get(&s, PROGRESSING).status, "False");
        assert_eq!(get(&s, DEGRADED).status, "False");
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(s.ready_replicas, 3);
        assert_eq!(s.endpoint.as_deref(), Some("http://demo.ns.svc:9000"));
    }

    #[test]
    fn not_ready_replicas_and_raft_without_leader() {
        let mut o = observed();
        o.ready_replicas = 2;
        let s = compute(None, &o, &at(10));
        assert_eq!(get(&s, READY).reason, "ReplicasNotReady");
        let mut o = observed();
        o.raft.as_mut().unwrap().leader = None;
        let s = compute(None, &o, &at(10));
        assert_eq!(get(&s, READY).status, "False");
        assert_eq!(get(&s, READY).reason, "RaftUnhealthy");
        // Standalone mode does not need a Raft view.
        let mut o = observed();
        o.cluster_mode = false;
        o.raft = None;
        assert_eq!(get(&compute(None, &o, &at(1)), READY).status, "True");
    }

    #[test]
    fn problems_degrade_and_unready() {
        let mut o = observed();
        o.problem = Some(Problem::new("InvalidSpec", "replicas must be at least 1"));
        let s = compute(None, &o, &at(10));
        assert_eq!(get(&s, DEGRADED).status, "True");
        assert_eq!(get(&s, DEGRADED).reason, "InvalidSpec");
        assert_eq!(get(&s, READY).status, "False");
        assert_eq!(get(&s, READY).reason, "InvalidSpec");
    }

    #[test]
    fn motion_sets_progressing() {
        let mut o = observed();
        o.motion = Motion::RollingUpdate {
            updated: 1,
            replicas: 3,
        };
        let s = compute(None, &o, &at(10));
        let c = get(&s, PROGRESSING);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "RollingUpdate")
        );
        assert!(c.message.contains("1 of 3"));
        o.motion = Motion::ScalingDown { from: 5, to: 3 };
        let s = compute(Some(&s), &o, &at(20));
        assert_eq!(get(&s, PROGRESSING).reason, "ScalingDown");
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let s1 = compute(None, &observed(), &at(10));
        let s2 = compute(Some(&s1), &observed(), &at(20));
        assert_eq!(get(&s2, READY).last_transition_time, at(10));
        let mut o = observed();
        o.ready_replicas = 1;
        let s3 = compute(Some(&s2), &o, &at(30));
        assert_eq!(get(&s3, READY).last_transition_time, at(30));
    }

    #[test]
    fn service_monitor_condition() {
        let mut o = observed();
        o.service_monitor = Some(Err("monitoring.coreos.com/v1 is not installed".into()));
        let s = compute(None, &o, &at(1));
        assert_eq!(get(&s, SERVICE_MONITOR).reason, "CRDNotInstalled");
        o.service_monitor = None;
        let s = compute(Some(&s), &o, &at(2));
        assert!(condition(&s, SERVICE_MONITOR).is_none());
    }
}

//! The reconciler: server-side apply of everything a `BleepStoreCluster`
//! owns, health-gated rolling updates, Raft-aware scaling and status.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::admin::{AdminApi, AdminError, ClusterView};
use crate::builders::{self, MANAGER};
use crate::crd::{BleepStoreCluster, BleepStoreClusterStatus, RaftMember, RaftStatus};
use crate::metrics::Metrics;
use crate::render::{self, RenderError};
use crate::status::{self, Motion, Observed, Problem};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Admin(#[from] AdminError),
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeApiError",
            Error::Admin(_) => "AdminApiError",
            Error::Other(_) => "ReconcileError",
        }
    }
}

pub struct Context {
    pub client: Client,
    pub admin: Arc<dyn AdminApi>,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// Consecutive failures per object, for exponential backoff.
    pub failures: Mutex<HashMap<String, u32>>,
    /// Replaces the admin API base URL (tests, or an operator outside the cluster).
    pub admin_base: Option<String>,
}

impl Context {
    pub fn new(client: Client, admin: Arc<dyn AdminApi>, metrics: Arc<Metrics>) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        Context {
            client,
            admin,
            metrics,
            recorder,
            failures: Mutex::new(HashMap::new()),
            admin_base: None,
        }
    }
}

fn key(bsc: &BleepStoreCluster) -> String {
    format!("{}/{}", bsc.namespace().unwrap_or_default(), bsc.name_any())
}

/// Delay before retrying after `failures` consecutive failures: 5 s doubling
/// up to 5 min.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(6);
    Duration::from_secs((5u64 << exp).min(300))
}

pub fn error_policy(bsc: Arc<BleepStoreCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx
        .failures
        .lock()
        .expect("not poisoned")
        .get(&key(&bsc))
        .copied()
        .unwrap_or(1);
    let delay = backoff(failures);
    tracing::warn!(cluster = %key(&bsc), %error, failures, ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Entry point for the controller: reconciles, then records metrics,
/// failure counts, a Warning Event and the Degraded condition on errors.
pub async fn reconcile(bsc: Arc<BleepStoreCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&bsc, &ctx).await;
    match &result {
        Ok(_) => {
            ctx.failures
                .lock()
                .expect("not poisoned")
                .remove(&key(&bsc));
            ctx.metrics.observe(started.elapsed(), None);
        }
        Err(error) => {
            *ctx.failures
                .lock()
                .expect("not poisoned")
                .entry(key(&bsc))
                .or_insert(0) += 1;
            ctx.metrics.observe(started.elapsed(), Some(error.reason()));
            publish(
                &ctx,
                &bsc,
                EventType::Warning,
                error.reason(),
                "Reconcile",
                error.to_string(),
            )
            .await;
            let previous = bsc.status.clone().unwrap_or_default();
            let observed = Observed {
                problem: Some(Problem::new(error.reason(), error.to_string())),
                ..observed_from_previous(&bsc, &previous)
            };
            if let Err(e) = write_status(&ctx, &bsc, &observed).await {
                tracing::warn!(cluster = %key(&bsc), error = %e, "could not record the failure in status");
            }
        }
    }
    result
}

fn observed_from_previous(bsc: &BleepStoreCluster, previous: &BleepStoreClusterStatus) -> Observed {
    Observed {
        generation: bsc.metadata.generation,
        desired_replicas: bsc.spec.replicas,
        replicas: previous.replicas,
        ready_replicas: previous.ready_replicas,
        cluster_mode: bsc.cluster_enabled(),
        raft: previous.raft.clone(),
        motion: Motion::Stable,
        problem: None,
        selector: Some(builders::selector_string(bsc)),
        endpoint: previous.endpoint.clone(),
        current_image: None,
        current_config_hash: None,
        service_monitor: None,
    }
}

async fn publish(
    ctx: &Context,
    bsc: &BleepStoreCluster,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &bsc.object_ref(&())).await {
        tracing::warn!(cluster = %key(bsc), error = %e, "could not publish an event");
    }
}

async fn write_status(
    ctx: &Context,
    bsc: &BleepStoreCluster,
    observed: &Observed,
) -> Result<(), Error> {
    let now = Time(Timestamp::now());
    let previous = bsc.status.as_ref();
    let new = status::compute(previous, observed, &now);
    if previous == Some(&new) {
        return Ok(());
    }
    let api: Api<BleepStoreCluster> =
        Api::namespaced(ctx.client.clone(), &bsc.namespace().unwrap_or_default());
    api.patch_status(
        &bsc.name_any(),
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": new })),
    )
    .await?;
    Ok(())
}

async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K, Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = obj
        .meta()
        .name
        .clone()
        .ok_or_else(|| Error::Other("object without a name".into()))?;
    Ok(api
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await?)
}

/// Deletes an object we own that is no longer wanted. Reads first, so a
/// steady state issues no writes, and never deletes an object someone else
/// created under the same name.
async fn delete_if_owned<K>(api: &Api<K>, name: &str, owner_uid: &str) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let existing = match api.get_opt(name).await {
        Ok(existing) => existing,
        // The resource type itself is absent (e.g. no ServiceMonitor CRD).
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(e.into()),
    };
    let Some(existing) = existing else {
        return Ok(());
    };
    let owned = existing
        .meta()
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == owner_uid);
    if !owned {
        return Ok(());
    }
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Creates the Secret once; never overwrites it. Returns its string data.
async fn ensure_secret(
    api: &Api<Secret>,
    wanted: Secret,
) -> Result<(BTreeMap<String, String>, bool), Error> {
    let name = wanted.metadata.name.clone().unwrap_or_default();
    if let Some(existing) = api.get_opt(&name).await? {
        return Ok((secret_strings(&existing), false));
    }
    match api.create(&PostParams::default(), &wanted).await {
        Ok(_) => Ok((wanted.string_data.unwrap_or_default(), true)),
        // Raced with another writer: theirs wins.
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = api.get(&name).await?;
            Ok((secret_strings(&existing), false))
        }
        Err(e) => Err(e.into()),
    }
}

fn secret_strings(secret: &Secret) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    out.extend(secret.string_data.clone().unwrap_or_default());
    out
}

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

fn raft_status(view: &ClusterView) -> RaftStatus {
    RaftStatus {
        leader: view.leader,
        members: view
            .members
            .iter()
            .map(|m| RaftMember {
                id: m.id,
                address: m.address.clone(),
                voter: m.voter,
            })
            .collect(),
        healthy: view.healthy,
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

async fn reconcile_inner(bsc: &BleepStoreCluster, ctx: &Context) -> Result<Action, Error> {
    if bsc.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove what we own.
        return Ok(Action::await_change());
    }
    let ns = bsc
        .namespace()
        .ok_or_else(|| Error::Other("BleepStoreCluster without a namespace".into()))?;
    let client = &ctx.client;
    let previous = bsc.status.clone().unwrap_or_default();
    let spec = &bsc.spec;

    let rendered = match builders::rendered_config(bsc) {
        Ok(rendered) => rendered,
        Err(err) => {
            let reason = match err {
                RenderError::BackendUnsupported(_) => "BackendUnsupported",
                RenderError::Invalid(_) => "InvalidSpec",
            };
            let already = status::condition(&previous, status::DEGRADED)
                .is_some_and(|c| c.status == "True" && c.reason == reason);
            if !already {
                publish(
                    ctx,
                    bsc,
                    EventType::Warning,
                    reason,
                    "Render",
                    err.to_string(),
                )
                .await;
            }
            let observed = Observed {
                problem: Some(Problem::new(reason, err.to_string())),
                ..observed_from_previous(bsc, &previous)
            };
            write_status(ctx, bsc, &observed).await?;
            return Ok(Action::requeue(Duration::from_secs(300)));
        }
    };

    // Secrets: generated ones are created once and never overwritten.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let (internal, _) = ensure_secret(
        &secrets,
        builders::generated_secret(
            bsc,
            builders::internal_secret_name(bsc),
            BTreeMap::from([
                (
                    render::ADMIN_TOKEN_KEY.to_string(),
                    builders::random_token(32),
                ),
                (
                    render::CLUSTER_SECRET_KEY.to_string(),
                    builders::random_token(32),
                ),
            ]),
        ),
    )
    .await?;
    let admin_token = internal
        .get(render::ADMIN_TOKEN_KEY)
        .cloned()
        .unwrap_or_default();
    let mut problem = None;
    if spec.credentials.secret_name.is_none() {
        let (_, created) = ensure_secret(
            &secrets,
            builders::generated_secret(
                bsc,
                builders::credentials_secret_name(bsc),
                BTreeMap::from([
                    (
                        render::ACCESS_KEY_KEY.to_string(),
                        builders::random_access_key(),
                    ),
                    (
                        render::SECRET_KEY_KEY.to_string(),
                        builders::random_token(20),
                    ),
                ]),
            ),
        )
        .await?;
        if created {
            publish(
                ctx,
                bsc,
                EventType::Normal,
                "CredentialsGenerated",
                "Create",
                format!(
                    "generated S3 credentials in Secret {}",
                    builders::credentials_secret_name(bsc)
                ),
            )
            .await;
        }
    } else if secrets
        .get_opt(&builders::credentials_secret_name(bsc))
        .await?
        .is_none()
    {
        problem = Some(Problem::new(
            "CredentialsSecretMissing",
            format!(
                "Secret {} named in spec.credentials.secretName does not exist",
                builders::credentials_secret_name(bsc)
            ),
        ));
    }

    apply(
        &Api::<ConfigMap>::namespaced(client.clone(), &ns),
        &builders::config_map(bsc, &rendered),
    )
    .await?;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    apply(&services, &builders::headless_service(bsc)).await?;
    apply(&services, &builders::client_service(bsc)).await?;

    // The StatefulSet: scaling through the admin API, health-gated rollout.
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let existing = sts_api.get_opt(&builders::names(bsc).statefulset).await?;
    let current = existing.as_ref().map(Current::of);
    let cluster_mode = bsc.cluster_enabled();
    let admin_base = ctx
        .admin_base
        .clone()
        .unwrap_or_else(|| builders::admin_base_url(bsc));
    let view = match (&current, cluster_mode) {
        (Some(c), true) if c.ready > 0 => {
            match ctx.admin.cluster(&admin_base, &admin_token).await {
                Ok(view) => Some(view),
                Err(e) => {
                    tracing::info!(cluster = %key(bsc), error = %e, "no cluster view");
                    None
                }
            }
        }
        _ => None,
    };
    let healthy = current.as_ref().is_some_and(|c| {
        c.settled
            && c.ready >= c.replicas
            && (!cluster_mode
                || view
                    .as_ref()
                    .is_some_and(|v| v.healthy && v.leader.is_some()))
    });
    let desired_hash = builders::config_hash(&rendered, &builders::pod_template(bsc));
    let mut plan = plan(current.as_ref(), spec.replicas, &desired_hash, healthy);

    if let Some(c) = &current
        && spec.replicas < c.replicas
        && cluster_mode
    {
        // Remove departing members from the Raft group before their pods go.
        let Some(view) = &view else {
            return Err(Error::Other(format!(
                "cannot scale down from {} to {}: the cluster view is unavailable",
                c.replicas, spec.replicas
            )));
        };
        for ordinal in (spec.replicas..c.replicas).rev() {
            let id = ordinal as u64;
            if view.is_cluster() && view.member(id).is_some() {
                match ctx.admin.remove_member(&admin_base, &admin_token, id).await {
                    Ok(_) => {}
                    Err(e) if e.status() == Some(404) => {}
                    Err(e) if e.code() == Some("NotClustered") => {}
                    Err(e) => return Err(e.into()),
                }
                tracing::info!(cluster = %key(bsc), member = id, "removed Raft member");
            }
        }
    }
    if let Some(c) = &current
        && c.replicas != spec.replicas
    {
        let (reason, verb) = if spec.replicas > c.replicas {
            ("ScalingUp", "scaling up")
        } else {
            ("ScalingDown", "scaling down")
        };
        publish(
            ctx,
            bsc,
            EventType::Normal,
            reason,
            "Scale",
            format!("{verb} from {} to {} replicas", c.replicas, spec.replicas),
        )
        .await;
    }
    if plan.rollout_started && current.is_some() {
        publish(
            ctx,
            bsc,
            EventType::Normal,
            "RollingUpdate",
            "Upgrade",
            format!("config or image changed (hash {desired_hash}); rolling pods one at a time"),
        )
        .await;
    }

    let sts = apply(
        &sts_api,
        &builders::statefulset(bsc, &rendered, plan.replicas, plan.partition),
    )
    .await?;
    if current.is_none() {
        publish(
            ctx,
            bsc,
            EventType::Normal,
            "Created",
            "Create",
            format!("created StatefulSet with {} replicas", plan.replicas),
        )
        .await;
    }

    // Scale up: ask the group to add members that have not joined yet.
    let mut raft = view.as_ref().map(raft_status);
    if cluster_mode
        && let Some(view) = &view
        && view.is_cluster()
    {
        let mut waiting = Vec::new();
        for ordinal in 0..spec.replicas {
            let id = ordinal as u64;
            match view.member(id) {
                Some(m) if m.voter => {}
                Some(_) => waiting.push(id),
                None => {
                    let address = builders::member_address(bsc, ordinal);
                    match ctx
                        .admin
                        .add_member(&admin_base, &admin_token, id, &address)
                        .await
                    {
                        Ok(new_view) => raft = Some(raft_status(&new_view)),
                        Err(e) if e.status() == Some(409) => {
                            problem = Some(Problem::new(
                                "MemberConflict",
                                format!("Raft member id {id} is taken by another address: {e}"),
                            ));
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
                to: spec.replicas,
            };
        }
    }

    // Optional objects.
    let uid = bsc.uid().unwrap_or_default();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    match builders::pdb(bsc) {
        Some(pdb) => drop(apply(&pdbs, &pdb).await?),
        None => delete_if_owned(&pdbs, &bsc.name_any(), &uid).await?,
    }
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    match builders::ingress(bsc) {
        Some(ingress) => drop(apply(&ingresses, &ingress).await?),
        None => delete_if_owned(&ingresses, &bsc.name_any(), &uid).await?,
    }
    let monitors: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &builders::service_monitor_resource());
    let service_monitor = match builders::service_monitor(bsc) {
        Some(monitor) => match apply(&monitors, &monitor).await {
            Ok(_) => Some(Ok(())),
            Err(Error::Kube(e)) if is_not_found(&e) => Some(Err(
                "the ServiceMonitor CRD (monitoring.coreos.com/v1) is not installed; skipped"
                    .to_string(),
            )),
            Err(e) => return Err(e),
        },
        None => {
            delete_if_owned(&monitors, &bsc.name_any(), &uid).await?;
            None
        }
    };

    let now_current = Current::of(&sts);
    let converged = plan.motion == Motion::Stable
        && now_current.partition == 0
        && now_current.updated >= now_current.replicas;
    let observed = Observed {
        generation: bsc.metadata.generation,
        desired_replicas: spec.replicas,
        replicas: sts.status.as_ref().map(|s| s.replicas).unwrap_or(0),
        ready_replicas: now_current.ready,
        cluster_mode,
        raft,
        motion: plan.motion.clone(),
        problem,
        selector: Some(builders::selector_string(bsc)),
        endpoint: Some(builders::endpoint(bsc)),
        current_image: converged.then(|| spec.image()),
        current_config_hash: converged.then(|| desired_hash.clone()),
        service_monitor,
    };
    write_status(ctx, bsc, &observed).await?;
    Ok(if plan.motion == Motion::Stable {
        Action::requeue(Duration::from_secs(300))
    } else {
        Action::requeue(Duration::from_secs(10))
    })
}

/// Runs the controller until shutdown.
pub async fn run(client: Client, namespace: Option<String>, ctx: Arc<Context>) {
    let (bscs, owned) = match &namespace {
        Some(ns) => (
            Api::<BleepStoreCluster>::namespaced(client.clone(), ns),
            Some(ns.clone()),
        ),
        None => (Api::<BleepStoreCluster>::all(client.clone()), None),
    };
    let owned_config =
        watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    Controller::new(bscs, watcher::Config::default().any_semantic())
        .owns(api::<StatefulSet>(&client, &owned), owned_config.clone())
        .owns(api::<Service>(&client, &owned), owned_config.clone())
        .owns(api::<ConfigMap>(&client, &owned), owned_config.clone())
        .owns(
            api::<PodDisruptionBudget>(&client, &owned),
            owned_config.clone(),
        )
        .owns(api::<Ingress>(&client, &owned), owned_config)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(cluster = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        })
        .await;
}

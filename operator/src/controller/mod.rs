//! The reconciler: applies everything a `BleepStoreCluster` owns (writing
//! only what differs), health-gated rolling updates, Raft-aware scaling and
//! status.

mod apply;
mod membership;
mod optional;
mod report;
mod revisions;
mod rollout;
mod secrets;

pub use apply::contains;
pub use rollout::{Current, Plan, plan};
pub use secrets::{REGENERATE_ANNOTATION, clusters_using};

use apply::apply;
use membership::{Hold, add_missing_members, raft_status, remove_departing};
use optional::apply_optional;
use report::{observed_from_previous, publish, write_status};
use revisions::{collect_old_revisions, ensure_config_revision};
use secrets::GeneratedSecrets;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};

use crate::admin::{AdminApi, AdminError};
use crate::builders::{self, MANAGER};
use crate::crd::BleepStoreCluster;
use crate::metrics::Metrics;
use crate::render::{self, RenderError};
use crate::status::{self, MAX_MESSAGE, Motion, Observed, Problem, truncate};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed; `action` says which.
    #[error("{action}: {}", kube_summary(source))]
    Kube { action: String, source: kube::Error },
    #[error("{0}")]
    Admin(#[from] AdminError),
    #[error("{0}")]
    Other(String),
}

/// The API's own reason and message, not a `Debug` dump of the error.
fn kube_summary(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let reason = if s.reason.is_empty() {
                "Error"
            } else {
                &s.reason
            };
            format!("{reason} ({}): {}", s.code, s.message)
        }
        other => other.to_string(),
    }
}

impl Error {
    fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Kube { action, source }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "KubeApiError",
            Error::Admin(_) => "AdminApiError",
            Error::Other(_) => "ReconcileError",
        }
    }

    /// A short message for conditions and Events.
    pub fn summary(&self) -> String {
        truncate(&self.to_string(), MAX_MESSAGE)
    }
}

pub struct Context {
    pub client: Client,
    pub admin: Arc<dyn AdminApi>,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// Consecutive failed passes per object, for exponential backoff.
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

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one more failed pass and returns the delay before the next.
    fn failed(&self, bsc: &BleepStoreCluster) -> Duration {
        let mut failures = self.failures();
        let count = failures.entry(key(bsc)).or_insert(0);
        *count += 1;
        backoff(*count)
    }
}

fn key(bsc: &BleepStoreCluster) -> String {
    format!("{}/{}", bsc.namespace().unwrap_or_default(), bsc.name_any())
}

/// Delay before retrying after `failures` consecutive failures: 5 s doubling
/// up to a minute.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(4);
    Duration::from_secs((5u64 << exp).min(60))
}

pub fn error_policy(bsc: Arc<BleepStoreCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx.failures().get(&key(&bsc)).copied().unwrap_or(1);
    let delay = backoff(failures);
    tracing::warn!(cluster = %key(&bsc), error = %error.summary(), failures, ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// How a pass ended.
struct Pass {
    observed: Observed,
}

/// Entry point for the controller: reconciles, records metrics and the
/// failure count, and writes the status (with an Event on every change of
/// the Degraded condition).
pub async fn reconcile(bsc: Arc<BleepStoreCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    if bsc.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove what we own.
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let result = reconcile_inner(&bsc, &ctx).await;
    match result {
        Ok(pass) => {
            ctx.metrics.observe(
                started.elapsed(),
                pass.observed.problem.as_ref().map(|_| "Degraded"),
            );
            write_status(&ctx, &bsc, &pass.observed).await?;
            Ok(match &pass.observed.problem {
                Some(p) if p.transient => Action::requeue(ctx.failed(&bsc)),
                Some(_) => {
                    ctx.failures().remove(&key(&bsc));
                    Action::requeue(Duration::from_secs(300))
                }
                None => {
                    ctx.failures().remove(&key(&bsc));
                    if pass.observed.motion == Motion::Stable {
                        Action::requeue(Duration::from_secs(300))
                    } else {
                        Action::requeue(Duration::from_secs(10))
                    }
                }
            })
        }
        Err(error) => {
            ctx.failed(&bsc);
            ctx.metrics.observe(started.elapsed(), Some(error.reason()));
            let previous = bsc.status.clone().unwrap_or_default();
            let observed = Observed {
                problem: Some(Problem::new(error.reason(), error.summary())),
                ..observed_from_previous(&bsc, &previous)
            };
            if let Err(e) = write_status(&ctx, &bsc, &observed).await {
                tracing::warn!(cluster = %key(&bsc), error = %e.summary(), "could not record the failure in status");
            }
            Err(error)
        }
    }
}

/// Everything one pass decided and did, for the status.
async fn reconcile_inner(bsc: &BleepStoreCluster, ctx: &Context) -> Result<Pass, Error> {
    let ns = bsc
        .namespace()
        .ok_or_else(|| Error::Other("BleepStoreCluster without a namespace".into()))?;
    let client = &ctx.client;
    let previous = bsc.status.clone().unwrap_or_default();
    let spec = &bsc.spec;
    let mut observed = observed_from_previous(bsc, &previous);

    let rendered = match builders::rendered_config(bsc) {
        Ok(rendered) => rendered,
        Err(err) => {
            let reason = match err {
                RenderError::Invalid(_) => "InvalidSpec",
            };
            observed.problem = Some(Problem::in_spec(reason, err.to_string()));
            return Ok(Pass { observed });
        }
    };

    // Secrets: generated ones are created once and never overwritten.
    let regenerate = bsc
        .annotations()
        .get(REGENERATE_ANNOTATION)
        .filter(|v| previous.secrets_regenerated.as_ref() != Some(*v))
        .cloned();
    let mut secrets = GeneratedSecrets {
        ctx,
        bsc,
        api: Api::namespaced(client.clone(), &ns),
        known: previous.generated_secrets.clone(),
        regenerate: regenerate.clone(),
        problem: None,
    };
    let internal = secrets
        .ensure(
            builders::internal_secret_name(bsc),
            "the admin token and cluster secret",
            || {
                BTreeMap::from([
                    (
                        render::ADMIN_TOKEN_KEY.to_string(),
                        builders::random_token(32),
                    ),
                    (
                        render::CLUSTER_SECRET_KEY.to_string(),
                        builders::random_token(32),
                    ),
                ])
            },
        )
        .await?;
    let admin_token = internal
        .as_ref()
        .and_then(|i| i.get(render::ADMIN_TOKEN_KEY).cloned());
    if spec.credentials.secret_name.is_none() {
        secrets
            .ensure(
                builders::credentials_secret_name(bsc),
                "S3 credentials",
                || {
                    BTreeMap::from([
                        (
                            render::ACCESS_KEY_KEY.to_string(),
                            builders::random_access_key(),
                        ),
                        (
                            render::SECRET_KEY_KEY.to_string(),
                            builders::random_token(20),
                        ),
                    ])
                },
            )
            .await?;
    } else if secrets
        .api
        .get_opt(&builders::credentials_secret_name(bsc))
        .await
        .map_err(Error::kube("reading the credentials Secret"))?
        .is_none()
    {
        secrets.problem.get_or_insert_with(|| {
            Problem::new(
                "CredentialsSecretMissing",
                format!(
                    "Secret {} named in spec.credentials.secretName does not exist",
                    builders::credentials_secret_name(bsc)
                ),
            )
        });
    }
    if let Some(problem) = check_cloud_credentials(&secrets.api, spec).await? {
        secrets.problem.get_or_insert(problem);
    }
    observed.generated_secrets = secrets.known.clone();
    observed.secrets_regenerated = regenerate;
    observed.problem = secrets.problem.take();

    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    apply(&services, &builders::headless_service(bsc)).await?;
    apply(&services, &builders::client_service(bsc)).await?;

    // The Raft view, when there is a group to ask.
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let existing = sts_api
        .get_opt(&builders::names(bsc).statefulset)
        .await
        .map_err(Error::kube("reading the StatefulSet"))?;
    let current = existing.as_ref().map(Current::of);
    let cluster_mode = bsc.cluster_enabled();
    let admin_base = ctx
        .admin_base
        .clone()
        .unwrap_or_else(|| builders::admin_base_url(bsc));
    let view = match (&current, cluster_mode, &admin_token) {
        (Some(c), true, Some(token)) if c.ready > 0 => {
            match ctx.admin.cluster(&admin_base, token).await {
                Ok(view) => Some(view),
                Err(e) => {
                    observed.problem.get_or_insert_with(|| {
                        Problem::new(
                            "AdminApiUnreachable",
                            format!(
                                "cannot read the cluster view at {admin_base}/admin/v1/cluster: {e}"
                            ),
                        )
                    });
                    None
                }
            }
        }
        _ => None,
    };
    if let Some(view) = &view {
        observed.raft = Some(raft_status(view));
    }

    // Scale-down removes departing members from the Raft group before their
    // pods go; when it cannot, nothing is changed.
    if let Some(c) = &current
        && spec.replicas < c.replicas
        && cluster_mode
        && let Err(hold) = remove_departing(
            ctx,
            bsc,
            c,
            view.as_ref(),
            &admin_base,
            admin_token.as_deref(),
        )
        .await
    {
        let why = match hold {
            Hold::Draining(why) => {
                let was_draining = bsc
                    .status
                    .as_ref()
                    .and_then(|s| status::condition(s, status::PROGRESSING))
                    .is_some_and(|c| c.message.contains("draining before removal"));
                if !was_draining {
                    publish(
                        ctx,
                        bsc,
                        EventType::Normal,
                        "Draining",
                        "Scale",
                        why.clone(),
                    )
                    .await;
                }
                why
            }
            Hold::Problem(problem) => {
                let why = problem.message.clone();
                observed.problem.get_or_insert(problem);
                why
            }
        };
        observed.motion = Motion::ScaleDownWaiting {
            from: c.replicas,
            to: spec.replicas,
            why,
        };
        observed.replicas = c.replicas;
        observed.ready_replicas = c.ready;
        return Ok(Pass { observed });
    }

    let healthy = current.as_ref().is_some_and(|c| {
        c.settled
            && c.ready >= c.replicas
            && (!cluster_mode
                || view
                    .as_ref()
                    .is_some_and(|v| v.healthy && v.leader.is_some()))
    });
    let desired_hash = builders::config_hash(&rendered, &builders::pod_template(bsc, &rendered));
    let mut plan = plan(current.as_ref(), spec.replicas, &desired_hash, healthy);
    announce(ctx, bsc, current.as_ref(), &plan, &desired_hash).await;

    // The config revision first: the StatefulSet's pods mount it.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    ensure_config_revision(&config_maps, &builders::config_map(bsc, &rendered)).await?;
    let sts = apply(
        &sts_api,
        &builders::statefulset(bsc, &rendered, plan.replicas, plan.partition),
    )
    .await?;
    let now_current = Current::of(&sts);
    if now_current.converged() && now_current.hash.as_deref() == Some(desired_hash.as_str()) {
        collect_old_revisions(
            &config_maps,
            bsc,
            &builders::config_map_name(bsc, &rendered),
        )
        .await?;
    }

    if cluster_mode
        && let (Some(view), Some(token)) = (&view, &admin_token)
        && view.is_cluster()
    {
        add_missing_members(ctx, bsc, view, &admin_base, token, &mut observed, &mut plan).await;
    }

    observed.service_monitor = apply_optional(ctx, bsc, &ns).await?;
    let converged = plan.motion == Motion::Stable && now_current.converged();
    observed.replicas = sts.status.as_ref().map(|s| s.replicas).unwrap_or(0);
    observed.ready_replicas = now_current.ready;
    observed.motion = plan.motion;
    observed.endpoint = Some(builders::endpoint(bsc));
    observed.current_image = converged.then(|| spec.image());
    observed.current_config_hash = converged.then(|| desired_hash.clone());
    Ok(Pass { observed })
}

/// Events for what a pass starts: the StatefulSet created, a scale, a rollout.
async fn announce(
    ctx: &Context,
    bsc: &BleepStoreCluster,
    current: Option<&Current>,
    plan: &Plan,
    desired_hash: &str,
) {
    let Some(c) = current else {
        publish(
            ctx,
            bsc,
            EventType::Normal,
            "Created",
            "Create",
            format!("creating the StatefulSet with {} replicas", plan.replicas),
        )
        .await;
        return;
    };
    if c.replicas != plan.replicas {
        let (reason, verb) = if plan.replicas > c.replicas {
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
            format!("{verb} from {} to {} replicas", c.replicas, plan.replicas),
        )
        .await;
    }
    if plan.rollout_started {
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
}

/// Runs the controller until SIGTERM or SIGINT.
pub async fn run(client: Client, namespace: Option<String>, ctx: Arc<Context>) {
    fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let owned_config =
        watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    let controller = Controller::new(
        api::<BleepStoreCluster>(&client, &namespace),
        watcher::Config::default().any_semantic(),
    );
    let clusters = controller.store();
    controller
        .owns(
            api::<StatefulSet>(&client, &namespace),
            owned_config.clone(),
        )
        .owns(api::<Service>(&client, &namespace), owned_config.clone())
        .owns(api::<ConfigMap>(&client, &namespace), owned_config.clone())
        .owns(
            api::<PodDisruptionBudget>(&client, &namespace),
            owned_config.clone(),
        )
        .owns(api::<Ingress>(&client, &namespace), owned_config)
        // A referenced Secret appearing, changing or going away is reconciled
        // at once, not on the next unrelated event.
        .watches(
            api::<Secret>(&client, &namespace),
            watcher::Config::default(),
            move |secret| clusters_using(&secret, &clusters.state()),
        )
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

/// The cloud backend's credentials Secret must exist and hold at least one
/// key the cloud client reads: otherwise every pod would fail its start-up,
/// and the reason would only be in their logs.
async fn check_cloud_credentials(
    api: &Api<Secret>,
    spec: &crate::crd::BleepStoreClusterSpec,
) -> Result<Option<Problem>, Error> {
    let (Some(name), Some(prefix)) = (
        builders::cloud_credentials(spec),
        builders::cloud_credential_prefix(spec),
    ) else {
        return Ok(None);
    };
    let secret = api
        .get_opt(name)
        .await
        .map_err(Error::kube("reading the backend credentials Secret"))?;
    let Some(secret) = secret else {
        return Ok(Some(Problem::new(
            "BackendCredentialsMissing",
            format!(
                "Secret {name} named in spec.storage.{}.credentialsSecret does not exist",
                spec.storage.backend.as_str()
            ),
        )));
    };
    let keys = secret
        .data
        .iter()
        .flat_map(|d| d.keys())
        .chain(secret.string_data.iter().flat_map(|d| d.keys()));
    let usable = keys.into_iter().any(|k| k.starts_with(prefix));
    Ok((!usable).then(|| {
        Problem::new(
            "BackendCredentialsInvalid",
            format!(
                "Secret {name} holds no {prefix}* key for the {} backend (see docs/operator.md, Cloud backends)",
                spec.storage.backend.as_str()
            ),
        )
    }))
}

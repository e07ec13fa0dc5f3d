//! The objects a spec may or may not ask for: PodDisruptionBudget, Ingress,
//! ServiceMonitor.

use super::apply::{apply, apply_dynamic, delete_if_owned, is_not_found};
use super::{Context, Error};

use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};

use crate::builders;
use crate::crd::BleepStoreCluster;

/// The PodDisruptionBudget, Ingress and ServiceMonitor: applied when wanted,
/// removed (if ours) when not. Returns the ServiceMonitor outcome.
pub(super) async fn apply_optional(
    ctx: &Context,
    bsc: &BleepStoreCluster,
    ns: &str,
) -> Result<Option<Result<(), String>>, Error> {
    let client = &ctx.client;
    let uid = bsc.uid().unwrap_or_default();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    match builders::pdb(bsc) {
        Some(pdb) => drop(apply(&pdbs, &pdb).await?),
        None => delete_if_owned(&pdbs, &bsc.name_any(), &uid).await?,
    }
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    match builders::ingress(bsc) {
        Some(ingress) => drop(apply(&ingresses, &ingress).await?),
        None => delete_if_owned(&ingresses, &bsc.name_any(), &uid).await?,
    }
    let monitors: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &builders::service_monitor_resource());
    Ok(match builders::service_monitor(bsc) {
        Some(monitor) => match apply_dynamic(&monitors, &monitor).await {
            Ok(()) => Some(Ok(())),
            Err(Error::Kube { source, .. }) if is_not_found(&source) => Some(Err(
                "the ServiceMonitor CRD (monitoring.coreos.com/v1) is not installed; skipped"
                    .to_string(),
            )),
            Err(e) => return Err(e),
        },
        None => {
            delete_if_owned(&monitors, &bsc.name_any(), &uid).await?;
            None
        }
    })
}

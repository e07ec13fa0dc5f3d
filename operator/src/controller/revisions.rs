//! One immutable ConfigMap per config revision, and removing the old ones
//! once no pod mounts them.

use super::Error;
use super::apply::{delete_if_owned, owned_by};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};

use crate::builders;
use crate::crd::BleepStoreCluster;

/// Creates the ConfigMap of a config revision unless it exists (revisions
/// are immutable).
pub(super) async fn ensure_config_revision(
    api: &Api<ConfigMap>,
    config_map: &ConfigMap,
) -> Result<(), Error> {
    let name = config_map.metadata.name.clone().unwrap_or_default();
    if api
        .get_opt(&name)
        .await
        .map_err(Error::kube(format!("reading ConfigMap {name}")))?
        .is_some()
    {
        return Ok(());
    }
    match api.create(&PostParams::default(), config_map).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(Error::kube(format!("creating ConfigMap {name}"))(e)),
    }
}

/// Once every pod runs the current revision, the ConfigMaps of older
/// revisions (and the unversioned `<name>-config` of earlier operator
/// versions) are no longer mounted by anything and are deleted.
pub(super) async fn collect_old_revisions(
    api: &Api<ConfigMap>,
    bsc: &BleepStoreCluster,
    current: &str,
) -> Result<(), Error> {
    let selector = format!(
        "app.kubernetes.io/instance={},{}",
        bsc.name_any(),
        builders::CONFIG_REVISION_LABEL
    );
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::kube("listing config revisions"))?;
    let uid = bsc.uid().unwrap_or_default();
    let mut old: Vec<String> = list
        .items
        .iter()
        .filter(|cm| owned_by(&cm.metadata, &uid))
        .filter_map(|cm| cm.metadata.name.clone())
        .filter(|name| name != current)
        .collect();
    old.push(format!("{}-config", bsc.name_any()));
    for name in old {
        delete_if_owned(api, &name, &uid).await?;
    }
    Ok(())
}

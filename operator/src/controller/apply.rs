//! Writing owned objects: server-side apply skipped when nothing differs,
//! and deletes that never touch what someone else created.

use super::Error;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::builders::MANAGER;

/// Whether `have` already holds everything in `want`: every field of an
/// object (recursively), every element of an array (in order). Fields the
/// API server adds (defaults, metadata) do not count as differences.
pub fn contains(have: &serde_json::Value, want: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (have, want) {
        (_, Value::Null) => true,
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| v.is_null() || h.get(k).is_some_and(|hv| contains(hv, v))),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(h, w)| contains(h, w))
        }
        (h, w) => h == w,
    }
}

pub(super) fn kind_of<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).to_string()
}

/// Server-side apply of `obj`, skipped when the object already holds
/// everything it says, so a steady cluster causes no writes.
pub(super) async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = obj
        .meta()
        .name
        .clone()
        .ok_or_else(|| Error::Other("object without a name".into()))?;
    let what = format!("{} {name}", kind_of::<K>());
    let existing = api
        .get_opt(&name)
        .await
        .map_err(Error::kube(format!("reading {what}")))?;
    if let Some(existing) = existing {
        let have = serde_json::to_value(&existing).map_err(|e| Error::Other(e.to_string()))?;
        let want = serde_json::to_value(obj).map_err(|e| Error::Other(e.to_string()))?;
        if contains(&have, &want) {
            return Ok(existing);
        }
    }
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .map_err(Error::kube(format!("applying {what}")))
}

/// Deletes an object we own that is no longer wanted. Reads first, so a
/// steady state issues no writes, and never deletes an object someone else
/// created under the same name.
pub(super) async fn delete_if_owned<K>(
    api: &Api<K>,
    name: &str,
    owner_uid: &str,
) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let existing = match api.get_opt(name).await {
        Ok(existing) => existing,
        // The resource type itself is absent (e.g. no ServiceMonitor CRD).
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(Error::kube(format!("reading {name}"))(e)),
    };
    let Some(existing) = existing else {
        return Ok(());
    };
    if !owned_by(existing.meta(), owner_uid) {
        return Ok(());
    }
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::kube(format!("deleting {name}"))(e)),
    }
}

pub(super) fn owned_by(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    uid: &str,
) -> bool {
    meta.owner_references.iter().flatten().any(|o| o.uid == uid)
}

pub(super) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// `apply` for an object of a type known only at run time.
pub(super) async fn apply_dynamic(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
) -> Result<(), Error> {
    let name = obj.name_any();
    let what = format!("ServiceMonitor {name}");
    let existing = api
        .get_opt(&name)
        .await
        .map_err(Error::kube(format!("reading {what}")))?;
    if let Some(existing) = existing {
        let have = serde_json::to_value(&existing).map_err(|e| Error::Other(e.to_string()))?;
        let want = serde_json::to_value(obj).map_err(|e| Error::Other(e.to_string()))?;
        if contains(&have, &want) {
            return Ok(());
        }
    }
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .map_err(Error::kube(format!("applying {what}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::contains;
    use serde_json::json;

    #[test]
    fn server_defaults_do_not_count_as_differences() {
        let have = json!({"metadata": {"name": "a", "resourceVersion": "7"}, "spec": {"replicas": 3, "revisionHistoryLimit": 10, "template": {"containers": [{"name": "c", "terminationMessagePath": "/dev/x"}]}}});
        assert!(contains(
            &have,
            &json!({"metadata": {"name": "a"}, "spec": {"replicas": 3, "template": {"containers": [{"name": "c"}]}}})
        ));
        assert!(!contains(&have, &json!({"spec": {"replicas": 2}})));
        assert!(!contains(
            &have,
            &json!({"spec": {"template": {"containers": [{"name": "c"}, {"name": "d"}]}}})
        ));
        assert!(
            !contains(&have, &json!({"spec": {"paused": true}})),
            "a field the server lacks is a difference"
        );
        assert!(contains(&have, &json!({"spec": {"paused": null}})));
    }
}

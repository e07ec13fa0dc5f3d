//! A small in-memory Kubernetes API behind kube's tower-test mock service,
//! and a fake admin API. Enough of the API semantics for the reconciler:
//! GET, POST (create, 409 on conflict), PUT, DELETE, server-side apply and
//! merge patches (also on `/status`), with failure injection.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bleepstore_operator::admin::{
    AdminApi, AdminError, AdminFuture, ClusterView, Member, MemberBlobs,
};
use bleepstore_operator::controller::Context;
use bleepstore_operator::crd::BleepStoreCluster;
use bleepstore_operator::metrics::Metrics;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

#[derive(Default)]
pub struct State {
    pub objects: BTreeMap<String, Value>,
    /// `METHOD path` of every request, and `admin …` lines from the fake admin.
    pub log: Vec<String>,
    /// Requests whose `METHOD path` contains the needle fail with the status
    /// and message.
    pub failures: Vec<(String, u16, String)>,
    /// Resource plurals the API server does not know (CRD not installed).
    pub unknown: Vec<String>,
    /// The reason of every Event written (created, or patched as a series).
    pub event_writes: Vec<String>,
    next_version: u64,
}

#[derive(Clone, Default)]
pub struct FakeApi {
    pub state: Arc<Mutex<State>>,
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn ok(code: u16, value: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(value).unwrap()))
        .unwrap()
}

/// RFC 7386 merge.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

impl FakeApi {
    pub fn client(&self) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = self.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let response = api.handle(request).await;
                send.send_response(response);
            }
        });
        Client::new(service, "default")
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    pub fn put(&self, path: &str, value: Value) {
        self.lock().objects.insert(path.into(), value);
    }

    pub fn fail(&self, needle: &str, code: u16) {
        self.fail_with(needle, code, "injected failure");
    }

    pub fn fail_with(&self, needle: &str, code: u16, message: &str) {
        self.lock()
            .failures
            .push((needle.into(), code, message.into()));
    }

    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    /// Requests that change something (not GET).
    pub fn writes(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| !l.starts_with("GET ") && !l.starts_with("admin cluster"))
            .collect()
    }

    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or("").to_string();
        let content_type = request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = request.into_body().collect().await.unwrap().to_bytes();
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .or_else(|_| serde_yaml_ng::from_slice(&bytes))
                .unwrap_or(Value::Null)
        };
        let mut state = self.lock();
        if path.contains("/events") && (method == Method::POST || method == Method::PATCH) {
            let reason = body["reason"]
                .as_str()
                .map(str::to_string)
                .or_else(|| {
                    let stored = path.trim_end_matches("/status");
                    state
                        .objects
                        .get(stored)
                        .and_then(|e| e["reason"].as_str().map(str::to_string))
                })
                .unwrap_or_default();
            state.event_writes.push(reason);
        }
        let line = format!("{method} {path}");
        state.log.push(line.clone());
        if let Some((_, code, message)) = state
            .failures
            .iter()
            .find(|(n, _, _)| line.contains(n.as_str()))
        {
            return status(*code, "InternalError", message);
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // /api/v1/namespaces/ns/plural[/name[/status]] or /apis/g/v/namespaces/ns/plural[/name[/status]]
        let offset = if segments[0] == "api" { 2 } else { 3 };
        let rest = &segments[offset..];
        let plural = if rest.first() == Some(&"namespaces") {
            rest.get(2).copied().unwrap_or("")
        } else {
            rest.first().copied().unwrap_or("")
        };
        if state.unknown.iter().any(|u| u == plural) {
            return status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            );
        }
        let is_status = path.ends_with("/status");
        let object_path = path.trim_end_matches("/status").to_string();
        state.next_version += 1;
        let version = state.next_version.to_string();
        match method {
            Method::GET if state.objects.contains_key(&object_path) => {
                ok(200, &state.objects[&object_path])
            }
            // A list: the objects directly under the collection path that
            // match the label selector (`k=v` and `k` terms).
            Method::GET if is_collection(rest) => {
                let selector = label_selector(&query);
                let prefix = format!("{object_path}/");
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
                    .filter(|(_, v)| selector_matches(&selector, &v["metadata"]["labels"]))
                    .map(|(_, v)| v.clone())
                    .collect();
                ok(
                    200,
                    &json!({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}),
                )
            }
            Method::GET => status(404, "NotFound", &format!("{path} not found")),
            // The API server refuses Event notes above 1024 characters.
            Method::POST
                if plural == "events" && body["note"].as_str().is_some_and(|n| n.len() > 1024) =>
            {
                status(
                    422,
                    "Invalid",
                    "note: Too long: may not be longer than 1024",
                )
            }
            Method::POST => {
                let name = body["metadata"]["name"].as_str().unwrap_or("").to_string();
                let key = format!("{path}/{name}");
                if state.objects.contains_key(&key) {
                    return status(409, "AlreadyExists", &format!("{name} already exists"));
                }
                let mut obj = body;
                obj["metadata"]["resourceVersion"] = json!(version);
                obj["metadata"]["uid"] = json!(format!("uid-{name}"));
                obj["metadata"]["generation"] = json!(1);
                state.objects.insert(key, obj.clone());
                ok(201, &obj)
            }
            Method::PUT => {
                let mut obj = body;
                obj["metadata"]["resourceVersion"] = json!(version);
                state.objects.insert(object_path, obj.clone());
                ok(200, &obj)
            }
            Method::DELETE => match state.objects.remove(&object_path) {
                Some(obj) => ok(200, &obj),
                None => status(404, "NotFound", &format!("{path} not found")),
            },
            Method::PATCH if is_status => {
                let Some(obj) = state.objects.get_mut(&object_path) else {
                    return status(404, "NotFound", &format!("{path} not found"));
                };
                let patch = json!({"status": body["status"].clone()});
                // A merge patch replaces lists (conditions) wholesale.
                obj["status"] = Value::Null;
                merge(obj, &patch);
                obj["metadata"]["resourceVersion"] = json!(version);
                ok(200, obj)
            }
            Method::PATCH if content_type.contains("apply-patch") => {
                // Server-side apply with one manager and force: the applied
                // intent replaces everything but status and server fields.
                let existing = state.objects.get(&object_path).cloned();
                let mut obj = body.clone();
                let generation = match &existing {
                    Some(old) => {
                        let current = old["metadata"]["generation"].as_i64().unwrap_or(1);
                        if old["spec"] != body["spec"] {
                            current + 1
                        } else {
                            current
                        }
                    }
                    None => 1,
                };
                if let Some(old) = &existing {
                    obj["status"] = old["status"].clone();
                    obj["metadata"]["uid"] = old["metadata"]["uid"].clone();
                    if obj["status"].is_null() {
                        obj.as_object_mut().unwrap().remove("status");
                    }
                } else {
                    let name = body["metadata"]["name"].as_str().unwrap_or("").to_string();
                    obj["metadata"]["uid"] = json!(format!("uid-{name}"));
                }
                obj["metadata"]["generation"] = json!(generation);
                obj["metadata"]["resourceVersion"] = json!(version);
                if plural == "statefulsets" {
                    server_defaults(&mut obj);
                }
                state.objects.insert(object_path, obj.clone());
                ok(if existing.is_some() { 200 } else { 201 }, &obj)
            }
            Method::PATCH => {
                let obj = state.objects.entry(object_path).or_insert(json!({}));
                merge(obj, &body);
                ok(200, obj)
            }
            _ => status(405, "MethodNotAllowed", "unsupported"),
        }
    }
}

fn is_collection(rest: &[&str]) -> bool {
    // [plural] or [namespaces, ns, plural]
    rest.len() == 1 || (rest.first() == Some(&"namespaces") && rest.len() == 3)
}

fn label_selector(query: &str) -> Vec<(String, Option<String>)> {
    let Some(raw) = query
        .split('&')
        .find_map(|p| p.strip_prefix("labelSelector="))
    else {
        return Vec::new();
    };
    let decoded = percent_decode(raw);
    decoded
        .split(',')
        .filter(|t| !t.is_empty())
        .map(|t| match t.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (t.to_string(), None),
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn selector_matches(selector: &[(String, Option<String>)], labels: &Value) -> bool {
    selector.iter().all(|(k, v)| match v {
        Some(v) => labels[k].as_str() == Some(v.as_str()),
        None => !labels[k].is_null(),
    })
}

/// What a real API server does to an applied StatefulSet that the operator
/// must not mistake for a difference: fields defaulted, and a field behind
/// a feature gate this server does not have dropped.
fn server_defaults(sts: &mut Value) {
    let spec = &mut sts["spec"];
    if spec["revisionHistoryLimit"].is_null() {
        spec["revisionHistoryLimit"] = json!(10);
    }
    if let Some(rolling) = spec["updateStrategy"]["rollingUpdate"].as_object_mut() {
        rolling.remove("maxUnavailable");
    }
    if let Some(containers) = spec["template"]["spec"]["containers"].as_array_mut() {
        for c in containers {
            c["terminationMessagePath"] = json!("/dev/termination-log");
        }
    }
}

/// The fake admin API: a Raft group whose members the test controls.
#[derive(Clone)]
pub struct FakeAdmin {
    pub view: Arc<Mutex<ClusterView>>,
    pub api: FakeApi,
    pub fail_remove: Arc<Mutex<Option<u16>>>,
    /// Removals start a drain, as a server replicating blobs does: the
    /// member stays, marked draining, until `finish_drains`.
    pub drains: Arc<Mutex<bool>>,
    /// Every call fails as if nothing listened on the port.
    pub unreachable: Arc<Mutex<bool>>,
}

impl FakeAdmin {
    pub fn new(api: &FakeApi, members: u64) -> Self {
        FakeAdmin {
            view: Arc::new(Mutex::new(ClusterView {
                mode: "cluster".into(),
                node_id: 0,
                leader: Some(0),
                members: (0..members)
                    .map(|id| Member {
                        id,
                        address: format!("demo-{id}.demo-hl.ns.svc.cluster.local:9001"),
                        voter: true,
                        blobs: None,
                    })
                    .collect(),
                healthy: true,
            })),
            api: api.clone(),
            fail_remove: Arc::new(Mutex::new(None)),
            drains: Arc::new(Mutex::new(false)),
            unreachable: Arc::new(Mutex::new(false)),
        }
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.view.lock().unwrap().healthy = healthy;
    }

    pub fn promote_all(&self) {
        for m in &mut self.view.lock().unwrap().members {
            m.voter = true;
        }
    }

    pub fn member_ids(&self) -> Vec<u64> {
        self.view
            .lock()
            .unwrap()
            .members
            .iter()
            .map(|m| m.id)
            .collect()
    }

    fn log(&self, line: String) {
        self.api.lock().log.push(line);
    }
}

impl AdminApi for FakeAdmin {
    fn cluster<'a>(&'a self, _base: &'a str, token: &'a str) -> AdminFuture<'a, ClusterView> {
        assert!(!token.is_empty(), "the admin token is sent");
        self.log("admin cluster".into());
        if *self.unreachable.lock().unwrap() {
            return Box::pin(
                async move { Err(AdminError::Unreachable("connection refused".into())) },
            );
        }
        let view = self.view.lock().unwrap().clone();
        Box::pin(async move { Ok(view) })
    }

    fn add_member<'a>(
        &'a self,
        _base: &'a str,
        _token: &'a str,
        id: u64,
        address: &'a str,
    ) -> AdminFuture<'a, ClusterView> {
        self.log(format!("admin add {id} {address}"));
        let mut view = self.view.lock().unwrap();
        if let Some(m) = view.members.iter().find(|m| m.id == id) {
            if m.address != address {
                return Box::pin(async move {
                    Err(AdminError::Status {
                        status: 409,
                        code: "MemberConflict".into(),
                        message: "id taken".into(),
                    })
                });
            }
        } else {
            view.members.push(Member {
                id,
                address: address.into(),
                voter: false,
                blobs: None,
            });
        }
        let view = view.clone();
        Box::pin(async move { Ok(view) })
    }

    fn remove_member<'a>(
        &'a self,
        _base: &'a str,
        _token: &'a str,
        id: u64,
    ) -> AdminFuture<'a, ClusterView> {
        self.log(format!("admin remove {id}"));
        if let Some(code) = *self.fail_remove.lock().unwrap() {
            return Box::pin(async move {
                Err(AdminError::Status {
                    status: code,
                    code: "InternalError".into(),
                    message: "injected".into(),
                })
            });
        }
        let mut view = self.view.lock().unwrap();
        if *self.drains.lock().unwrap() {
            if let Some(member) = view.members.iter_mut().find(|m| m.id == id) {
                member.blobs = Some(MemberBlobs {
                    blobs: 7,
                    draining: true,
                    drain_queue: 7,
                });
            }
        } else {
            view.members.retain(|m| m.id != id);
        }
        let view = view.clone();
        Box::pin(async move { Ok(view) })
    }
}

impl FakeAdmin {
    /// The drains end: draining members leave the group.
    pub fn finish_drains(&self) {
        *self.drains.lock().unwrap() = false;
        self.view.lock().unwrap().members.retain(|m| !m.draining());
    }
}

pub const NS: &str = "ns";
pub const BSC_PATH: &str = "/apis/bleepstore.io/v1alpha1/namespaces/ns/bleepstoreclusters/demo";
pub const STS_PATH: &str = "/apis/apps/v1/namespaces/ns/statefulsets/demo";

pub struct Harness {
    pub api: FakeApi,
    pub admin: FakeAdmin,
    pub ctx: Arc<Context>,
}

impl Harness {
    pub fn new(spec: Value, members: u64) -> Harness {
        let api = FakeApi::default();
        let admin = FakeAdmin::new(&api, members);
        let mut ctx = Context::new(
            api.client(),
            Arc::new(admin.clone()),
            Arc::new(Metrics::default()),
        );
        ctx.admin_base = Some("http://fake-admin".into());
        api.put(
            BSC_PATH,
            json!({
                "apiVersion": "bleepstore.io/v1alpha1",
                "kind": "BleepStoreCluster",
                "metadata": {"name": "demo", "namespace": NS, "uid": "bsc-uid", "generation": 1},
                "spec": spec,
            }),
        );
        Harness {
            api,
            admin,
            ctx: Arc::new(ctx),
        }
    }

    /// The resource as the API server stores it now.
    pub fn bsc(&self) -> Arc<BleepStoreCluster> {
        Arc::new(serde_json::from_value(self.api.get(BSC_PATH).unwrap()).unwrap())
    }

    pub fn update_spec(&self, f: impl FnOnce(&mut Value)) {
        let mut state = self.api.lock();
        let obj = state.objects.get_mut(BSC_PATH).unwrap();
        f(&mut obj["spec"]);
        let generation = obj["metadata"]["generation"].as_i64().unwrap() + 1;
        obj["metadata"]["generation"] = json!(generation);
    }

    pub async fn reconcile(
        &self,
    ) -> Result<kube::runtime::controller::Action, bleepstore_operator::controller::Error> {
        bleepstore_operator::controller::reconcile(self.bsc(), self.ctx.clone()).await
    }

    pub fn sts(&self) -> Value {
        self.api.get(STS_PATH).expect("statefulset exists")
    }

    /// Plays the StatefulSet controller: `updated` pods at the new revision,
    /// `ready` pods ready, status observed at the current generation.
    pub fn settle(&self, ready: i64, updated: i64) {
        let mut state = self.api.lock();
        let sts = state.objects.get_mut(STS_PATH).unwrap();
        let replicas = sts["spec"]["replicas"].as_i64().unwrap();
        let generation = sts["metadata"]["generation"].clone();
        sts["status"] = json!({
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "observedGeneration": generation,
        });
    }

    pub fn condition(&self, type_: &str) -> Value {
        let bsc = self.api.get(BSC_PATH).unwrap();
        bsc["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == type_).cloned())
            .unwrap_or(Value::Null)
    }

    pub fn events(&self) -> Vec<Value> {
        self.api
            .lock()
            .objects
            .iter()
            .filter(|(k, _)| k.contains("/events/"))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The ConfigMaps of config revisions, by name.
    pub fn config_maps(&self) -> BTreeMap<String, Value> {
        self.api
            .lock()
            .objects
            .iter()
            .filter(|(k, _)| k.starts_with("/api/v1/namespaces/ns/configmaps/"))
            .map(|(_, v)| {
                (
                    v["metadata"]["name"].as_str().unwrap().to_string(),
                    v.clone(),
                )
            })
            .collect()
    }

    /// How many times an Event with `reason` was written.
    pub fn event_count(&self, reason: &str) -> usize {
        self.api
            .lock()
            .event_writes
            .iter()
            .filter(|r| *r == reason)
            .count()
    }

    pub fn event_reasons(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["reason"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

//! The operator's admin client against real `bleepstore serve` processes in
//! cluster mode: the view it parses, the scale-up and scale-down calls it
//! makes, and the refusals it must understand.
//!
//! The server binary is `$BLEEPSTORE_BIN`, else `bleepstore` next to this
//! test's own build directory (`cargo build --release --workspace` makes it).

use bleepstore_operator::admin::{AdminApi, HttpAdmin};
use bleepstore_testkit::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "operator-test-token";

fn server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("BLEEPSTORE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test's path");
    // target/<profile>/deps/<test> → target/<profile>/bleepstore
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("bleepstore"))
        .expect("a build directory");
    assert!(
        path.is_file(),
        "no server binary at {} (build it: cargo build --workspace, same profile; or set BLEEPSTORE_BIN)",
        path.display()
    );
    path
}

struct Node {
    child: Child,
    ops: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path, id: u64, ops: u16, peers: &[(u64, u16)]) -> Node {
    let config = serde_json::json!({
        "server": {"s3_listen": format!("127.0.0.1:{}", free_port()), "ops_listen": format!("127.0.0.1:{ops}")},
        "storage": {"data_dir": dir.join(format!("node{id}"))},
        "auth": {"access_key": "k", "secret_key": "s", "admin_token": TOKEN},
        "logging": {"level": "warn"},
        "cluster": {
            "enabled": true, "node_id": id, "secret": "operator-test-cluster-secret",
            "heartbeat_ms": 100, "election_timeout_ms": 500,
            "peers": peers.iter().map(|(p, port)| serde_json::json!({"id": p, "address": format!("127.0.0.1:{port}")})).collect::<Vec<_>>(),
        },
    });
    let file = dir.join(format!("node{id}.yaml"));
    std::fs::write(&file, config.to_string()).unwrap();
    let child = Command::new(server_binary())
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    Node { child, ops }
}

async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn scale_up_and_down_through_the_admin_api_of_real_servers() {
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let peers: Vec<(u64, u16)> = ports
        .iter()
        .enumerate()
        .map(|(i, &p)| (i as u64, p))
        .collect();
    let first = start(dir.path(), 0, ports[0], &peers[..1]);
    let admin = HttpAdmin::default();
    let base0 = format!("http://127.0.0.1:{}", first.ops);
    let view = eventually("node 0 leading", async || {
        admin
            .cluster(&base0, TOKEN)
            .await
            .ok()
            .filter(|v| v.leader == Some(0))
    })
    .await;
    assert!(view.is_cluster());
    assert_eq!(view.members.len(), 1);

    // Scale up to three: the new pods start, the operator adds them.
    let mut others = Vec::new();
    for id in [1u64, 2] {
        others.push(start(dir.path(), id, ports[id as usize], &peers));
        let address = format!("127.0.0.1:{}", ports[id as usize]);
        let added = eventually("a node added", async || {
            admin.add_member(&base0, TOKEN, id, &address).await.ok()
        })
        .await;
        assert!(added.member(id).is_some(), "{added:?}");
        // Asking again is harmless; another address for the same id is refused.
        admin.add_member(&base0, TOKEN, id, &address).await.unwrap();
        let conflict = admin
            .add_member(&base0, TOKEN, id, "127.0.0.1:1")
            .await
            .unwrap_err();
        assert_eq!(conflict.status(), Some(409), "{conflict}");
    }
    // The view through a new node names the same leader and three voters.
    let base2 = format!("http://127.0.0.1:{}", others[1].ops);
    eventually("three voters", async || {
        admin.cluster(&base2, TOKEN).await.ok().filter(|v| {
            v.leader == Some(0) && v.members.len() == 3 && v.members.iter().all(|m| m.voter)
        })
    })
    .await;

    // Scale down: the member is drained, then leaves the group by itself;
    // the operator waits for that before the pod goes.
    let removing = admin.remove_member(&base0, TOKEN, 2).await.unwrap();
    if let Some(member) = removing.member(2) {
        assert!(member.draining(), "{member:?}");
    }
    eventually("node 2 out of the group", async || {
        admin
            .cluster(&base0, TOKEN)
            .await
            .ok()
            .filter(|v| v.member(2).is_none() && v.members.len() == 2)
    })
    .await;
    let missing = admin.remove_member(&base0, TOKEN, 2).await.unwrap_err();
    assert_eq!(missing.status(), Some(404), "{missing}");
    let wrong_token = admin.cluster(&base0, "not-the-token").await.unwrap_err();
    assert_eq!(wrong_token.status(), Some(401), "{wrong_token}");
    drop(others);
    drop(first);
}

//! In-process Raft groups: several servers in this test process, every
//! node-to-node link through an in-process TCP proxy the test can cut
//! (`cluster.dial`), writes and reads straight through `Cluster`. Elections,
//! leader loss, partitions, catch-up from the log and from a snapshot,
//! membership changes, and a second `initialize` refused.

use bleepstore::RunningServer;
use bleepstore::meta::model::BucketRecord;
use bleepstore::meta::{Command, MetaError, query};
use bleepstore_config::{Backend, Config, PeerConfig, Secret};
use bleepstore_testkit::free_addr;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A proxy for the link from one node to another: forwards while up; when
/// cut, drops its connections and refuses new ones.
struct Link {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Link {
    async fn start(target: SocketAddr) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let (flag, cuts) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Link { addr, up, cut }
    }

    fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.cut.send_modify(|n| *n += 1);
        }
    }
}

struct Node {
    id: u64,
    dir: PathBuf,
    ops: SocketAddr,
    server: Option<RunningServer>,
}

struct Group {
    nodes: BTreeMap<u64, Node>,
    links: BTreeMap<(u64, u64), Link>,
    _root: tempfile::TempDir,
}

impl Group {
    async fn new(n: u64) -> Group {
        let root = tempfile::tempdir().unwrap();
        let mut nodes = BTreeMap::new();
        for id in 0..n {
            let dir = root.path().join(format!("node{id}"));
            std::fs::create_dir_all(&dir).unwrap();
            nodes.insert(
                id,
                Node {
                    id,
                    dir,
                    ops: free_addr(),
                    server: None,
                },
            );
        }
        let mut group = Group {
            nodes,
            links: BTreeMap::new(),
            _root: root,
        };
        group.link_all().await;
        for id in 0..n {
            group.start(id).await;
        }
        let leader = group.wait_leader(None).await;
        group.wait_voters(leader, n as usize).await;
        group
    }

    /// Until the leader counts `n` voters (new members join as learners).
    async fn wait_voters(&self, leader: u64, n: usize) {
        for _ in 0..200 {
            let m = self.app(leader).cluster.metrics();
            let voters = m.membership_config.membership().voter_ids().count();
            if voters == n && m.membership_config.membership().get_joint_config().len() == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the group did not reach {n} voters");
    }

    async fn link_all(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for &a in &ids {
            for &b in &ids {
                if a != b && !self.links.contains_key(&(a, b)) {
                    let link = Link::start(self.nodes[&b].ops).await;
                    self.links.insert((a, b), link);
                }
            }
        }
    }

    fn config(&self, id: u64, peers: &[u64]) -> Config {
        let node = &self.nodes[&id];
        let mut config = Config::default();
        config.server.s3_listen = "127.0.0.1:0".parse().unwrap();
        config.server.ops_listen = node.ops;
        config.storage.backend = Backend::Local;
        config.storage.data_dir = node.dir.clone();
        config.auth.access_key = Some(Secret::new("k"));
        config.auth.secret_key = Some(Secret::new("s"));
        let cluster = &mut config.cluster;
        cluster.enabled = true;
        cluster.node_id = Some(id);
        cluster.secret = Some(Secret::new("in-process-cluster-secret"));
        cluster.peers = peers
            .iter()
            .map(|&p| PeerConfig {
                id: p,
                address: self.nodes[&p].ops.to_string(),
            })
            .collect();
        cluster.dial = self
            .links
            .iter()
            .filter(|((a, _), _)| *a == id)
            .map(|((_, b), link)| (*b, link.addr.to_string()))
            .collect();
        cluster.heartbeat_ms = 50;
        cluster.election_timeout_ms = 400;
        cluster.request_timeout_ms = 3000;
        cluster.snapshot_every = 20;
        config
    }

    async fn start_with_peers(&mut self, id: u64, peers: &[u64]) {
        let config = self.config(id, peers);
        let app = bleepstore::App::open(config).await.unwrap();
        let server = bleepstore::start(app).await.unwrap();
        self.nodes.get_mut(&id).unwrap().server = Some(server);
    }

    async fn start(&mut self, id: u64) {
        let peers: Vec<u64> = self.nodes.keys().copied().collect();
        self.start_with_peers(id, &peers).await;
    }

    async fn stop(&mut self, id: u64) {
        if let Some(server) = self.nodes.get_mut(&id).unwrap().server.take() {
            server.shutdown().await;
        }
    }

    fn app(&self, id: u64) -> &Arc<bleepstore::App> {
        &self.nodes[&id].server.as_ref().expect("node running").app
    }

    fn running(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.server.is_some())
            .map(|n| n.id)
            .collect()
    }

    /// The leader every running node (or `among`) names, once they agree.
    async fn wait_leader(&self, among: Option<&[u64]>) -> u64 {
        let group: Vec<u64> = among.map(<[u64]>::to_vec).unwrap_or_else(|| self.running());
        for _ in 0..200 {
            let leaders: Vec<Option<u64>> = group
                .iter()
                .map(|&id| self.app(id).cluster.metrics().current_leader)
                .collect();
            if let Some(Some(leader)) = leaders.first()
                && leaders.iter().all(|l| *l == Some(*leader))
                && group.contains(leader)
            {
                return *leader;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen: Vec<String> = group
            .iter()
            .map(|&id| {
                let m = self.app(id).cluster.metrics();
                format!(
                    "node {id}: {:?} term {} leader {:?}",
                    m.state, m.current_term, m.current_leader
                )
            })
            .collect();
        panic!("no agreed leader among {group:?}: {seen:?}");
    }

    /// Cuts (or restores) every link to and from `id`.
    fn isolate(&self, id: u64, up: bool) {
        for ((a, b), link) in &self.links {
            if *a == id || *b == id {
                link.set(up);
            }
        }
    }

    /// Until node `id` has applied the write that created `name`. (The
    /// writer's applied-index metric may still lag the write it answered,
    /// so it is no target to wait for.)
    async fn wait_bucket(&self, id: u64, name: &str) {
        for _ in 0..200 {
            if has_bucket(self.app(id), name).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("node {id} never applied the write of bucket {name}");
    }
}

fn bucket(name: &str) -> Command {
    let owner = bleepstore::acl::Owner {
        id: "o".into(),
        display_name: "o".into(),
    };
    Command::CreateBucket(BucketRecord {
        name: name.into(),
        owner: owner.clone(),
        region: "us-east-1".into(),
        created_ms: 1,
        acl: bleepstore::acl::Acl::private(&owner),
        settings: Default::default(),
    })
}

async fn has_bucket(app: &bleepstore::App, name: &str) -> bool {
    let name = name.to_string();
    app.meta
        .read(move |c| query::get_bucket(c, &name))
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elections_and_leader_loss() {
    let mut group = Group::new(3).await;
    let leader = group.wait_leader(None).await;
    let follower = group
        .running()
        .into_iter()
        .find(|&id| id != leader)
        .unwrap();
    // A write through a follower is forwarded and visible everywhere.
    group
        .app(follower)
        .cluster
        .write(bucket("one"))
        .await
        .unwrap();
    for id in group.running() {
        group.app(id).cluster.read_barrier().await.unwrap();
        assert!(has_bucket(group.app(id), "one").await, "node {id}");
    }
    // The leader goes away: the others elect one of themselves and go on.
    group.stop(leader).await;
    let survivors = group.running();
    let new_leader = group.wait_leader(Some(&survivors)).await;
    assert_ne!(new_leader, leader);
    group
        .app(survivors[0])
        .cluster
        .write(bucket("two"))
        .await
        .unwrap();
    // It comes back and catches up from the log.
    group.start(leader).await;
    group.wait_bucket(leader, "two").await;
    for id in group.running() {
        group.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_refuses_and_converges_when_healed() {
    let mut group = Group::new(3).await;
    let old = group.wait_leader(None).await;
    group.isolate(old, false);
    let majority: Vec<u64> = group
        .running()
        .into_iter()
        .filter(|&id| id != old)
        .collect();
    let new = group.wait_leader(Some(&majority)).await;
    group
        .app(new)
        .cluster
        .write(bucket("majority"))
        .await
        .unwrap();
    // The cut-off node can neither commit nor confirm a read.
    let refused = group.app(old).cluster.write(bucket("minority")).await;
    assert!(
        matches!(refused, Err(MetaError::Unavailable(_))),
        "{refused:?}"
    );
    let read = group.app(old).cluster.read_barrier().await;
    assert!(matches!(read, Err(MetaError::Unavailable(_))), "{read:?}");
    group.isolate(old, true);
    group.wait_bucket(old, "majority").await;
    group.app(old).cluster.read_barrier().await.unwrap();
    assert!(!has_bucket(group.app(old), "minority").await);
    for id in group.running() {
        group.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_far_behind_catches_up_from_a_snapshot() {
    let mut group = Group::new(3).await;
    let leader = group.wait_leader(None).await;
    let lagging = group
        .running()
        .into_iter()
        .find(|&id| id != leader)
        .unwrap();
    group.stop(lagging).await;
    for i in 0..60 {
        group
            .app(leader)
            .cluster
            .write(bucket(&format!("b{i:03}")))
            .await
            .unwrap();
    }
    group
        .app(leader)
        .cluster
        .raft()
        .trigger()
        .snapshot()
        .await
        .unwrap();
    for _ in 0..100 {
        if group.app(leader).cluster.metrics().purged.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        group.app(leader).cluster.metrics().purged.is_some(),
        "the log was not compacted"
    );
    group.start(lagging).await;
    group.wait_bucket(lagging, "b059").await;
    // It caught up from a snapshot (its metric may trail the install).
    let mut installed = false;
    for _ in 0..100 {
        installed = group.app(lagging).cluster.metrics().snapshot.is_some();
        if installed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(installed, "the lagging node did not install a snapshot");
    for i in 0..60 {
        assert!(has_bucket(group.app(lagging), &format!("b{i:03}")).await);
    }
    for id in group.running() {
        group.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_and_a_second_initialize_refused() {
    let mut group = Group::new(3).await;
    let leader = group.wait_leader(None).await;
    // A fourth node: linked to everyone, started knowing the others, added
    // through the cluster (what the admin API calls).
    let dir = group._root.path().join("node3");
    std::fs::create_dir_all(&dir).unwrap();
    group.nodes.insert(
        3,
        Node {
            id: 3,
            dir,
            ops: free_addr(),
            server: None,
        },
    );
    group.link_all().await;
    // The running nodes reach node 3 through their own addresses: their
    // dial maps were fixed at start, so the resolver falls back to the
    // address node 3 registers with.
    group.start_with_peers(3, &[0, 1, 2, 3]).await;
    let address = group.nodes[&3].ops.to_string();
    let join = bleepstore::cluster::membership::JoinRequest {
        id: 3,
        address,
        fresh: false,
    };
    group.app(leader).cluster.admit(join).await.unwrap();
    group
        .app(leader)
        .cluster
        .write(bucket("with-four"))
        .await
        .unwrap();
    group.wait_bucket(3, "with-four").await;
    // Removed again; the group goes on without it.
    group.app(leader).cluster.remove(3).await.unwrap();
    let members: Vec<u64> = group
        .app(leader)
        .cluster
        .metrics()
        .membership_config
        .membership()
        .nodes()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(members, vec![0, 1, 2]);
    group.stop(3).await;
    // A node that belongs to a group refuses to found another.
    let again = group
        .app(leader)
        .cluster
        .raft()
        .initialize(BTreeMap::from([(leader, openraft::BasicNode::new("x:1"))]))
        .await;
    assert!(again.is_err(), "a second initialize must be refused");
    group
        .app(leader)
        .cluster
        .write(bucket("after"))
        .await
        .unwrap();
    for id in group.running() {
        group.stop(id).await;
    }
}

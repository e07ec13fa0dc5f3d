//! The one place that turns a node id into an address to connect to
//! (DESIGN §7). In order: a `cluster.dial` override, the address
//! configuration gives the node (static peers, or the pod's DNS name), the
//! address it registered with when it joined. Names are resolved on every
//! connect (briefly cached), through `cluster.hosts` first.

use bleepstore_config::ClusterConfig;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long a successful DNS answer is reused.
const DNS_CACHE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no address is known for node {0}")]
    UnknownNode(u64),
    #[error("cannot resolve {address}: {reason}")]
    Lookup { address: String, reason: String },
}

pub struct Resolver {
    self_id: u64,
    ops_port: u16,
    config: ClusterConfig,
    fallback_advertise: String,
    registered: RwLock<BTreeMap<u64, String>>,
    cache: Mutex<HashMap<String, (Instant, SocketAddr)>>,
}

impl Resolver {
    /// `ops_listen` is this node's operations listener: its port is the
    /// port of derived peer addresses, and it is the advertised address of
    /// last resort.
    pub fn new(config: &ClusterConfig, ops_listen: SocketAddr) -> Self {
        Resolver {
            self_id: config.resolved_node_id(),
            ops_port: ops_listen.port(),
            config: config.clone(),
            fallback_advertise: ops_listen.to_string(),
            registered: RwLock::new(BTreeMap::new()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn self_id(&self) -> u64 {
        self.self_id
    }

    /// The address this node tells others to reach it at.
    pub fn advertise(&self) -> String {
        self.config
            .advertise
            .clone()
            .or_else(|| self.config.peer_address(self.self_id, self.ops_port))
            .unwrap_or_else(|| self.fallback_advertise.clone())
    }

    /// The ids configuration lists as members.
    pub fn configured_ids(&self) -> Vec<u64> {
        let mut ids = self.config.configured_ids();
        if !ids.contains(&self.self_id) {
            ids.push(self.self_id);
            ids.sort_unstable();
        }
        ids
    }

    /// Remembers the address a member registered with (join, admin API, or
    /// the membership in the log), for ids configuration does not know.
    pub fn learn(&self, id: u64, address: &str) {
        let mut registered = self.registered.write().unwrap_or_else(|e| e.into_inner());
        registered.insert(id, address.to_string());
    }

    /// The address configuration gives `id`, ignoring dial overrides: what
    /// a member is expected to register with.
    pub fn configured_address(&self, id: u64) -> Option<String> {
        if id == self.self_id {
            return Some(self.advertise());
        }
        self.config.peer_address(id, self.ops_port)
    }

    /// The `host:port` to connect to for `id`.
    pub fn dial_address(&self, id: u64) -> Result<String, ResolveError> {
        if let Some(address) = self.config.dial.get(&id) {
            return Ok(address.clone());
        }
        if let Some(address) = self.configured_address(id) {
            return Ok(address);
        }
        self.registered
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
            .ok_or(ResolveError::UnknownNode(id))
    }

    /// The socket address to connect to for `id`, resolved now.
    pub async fn socket_addr(&self, id: u64) -> Result<SocketAddr, ResolveError> {
        let address = self.dial_address(id)?;
        self.resolve(&address).await
    }

    /// Resolves `host:port` through `cluster.hosts`, then DNS.
    pub async fn resolve(&self, address: &str) -> Result<SocketAddr, ResolveError> {
        if let Ok(addr) = address.parse::<SocketAddr>() {
            return Ok(addr);
        }
        let lookup_error = |reason: String| ResolveError::Lookup {
            address: address.to_string(),
            reason,
        };
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| lookup_error("not host:port".into()))?;
        let port: u16 = port.parse().map_err(|_| lookup_error("bad port".into()))?;
        if let Some(mapped) = self.config.hosts.get(host) {
            if let Ok(addr) = mapped.parse::<SocketAddr>() {
                return Ok(addr);
            }
            if let Ok(ip) = mapped.parse::<std::net::IpAddr>() {
                return Ok(SocketAddr::new(ip, port));
            }
            return Err(lookup_error(format!(
                "cluster.hosts maps it to {mapped:?}, which is not an address"
            )));
        }
        if let Some((at, addr)) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(address)
            && at.elapsed() < DNS_CACHE
        {
            return Ok(*addr);
        }
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| lookup_error(e.to_string()))?
            .next()
            .ok_or_else(|| lookup_error("no addresses".into()))?;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(address.to_string(), (Instant::now(), addr));
        Ok(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bleepstore_config::PeerConfig;

    fn kubernetes() -> ClusterConfig {
        ClusterConfig {
            enabled: true,
            pod_name: Some("store-1".into()),
            namespace: Some("team-a".into()),
            statefulset: Some("store".into()),
            headless_service: Some("store-hl".into()),
            replicas: 3,
            ..ClusterConfig::default()
        }
    }

    #[tokio::test]
    async fn kubernetes_peers_are_pod_dns_names_and_dial_overrides_win() {
        let mut config = kubernetes();
        config.dial.insert(2, "127.0.0.1:7002".into());
        config.hosts.insert(
            "store-0.store-hl.team-a.svc.cluster.local".into(),
            "127.0.0.5".into(),
        );
        let r = Resolver::new(&config, "0.0.0.0:9001".parse().unwrap());
        assert_eq!(r.self_id(), 1);
        assert_eq!(
            r.advertise(),
            "store-1.store-hl.team-a.svc.cluster.local:9001"
        );
        assert_eq!(r.configured_ids(), vec![0, 1, 2]);
        assert_eq!(
            r.dial_address(0).unwrap(),
            "store-0.store-hl.team-a.svc.cluster.local:9001"
        );
        assert_eq!(
            r.socket_addr(0).await.unwrap(),
            "127.0.0.5:9001".parse().unwrap()
        );
        assert_eq!(
            r.socket_addr(2).await.unwrap(),
            "127.0.0.1:7002".parse().unwrap()
        );
        // Ordinals beyond the initial replica count are still pods.
        assert_eq!(
            r.dial_address(7).unwrap(),
            "store-7.store-hl.team-a.svc.cluster.local:9001"
        );
    }

    #[tokio::test]
    async fn static_peers_and_registered_addresses() {
        let config = ClusterConfig {
            enabled: true,
            node_id: Some(0),
            peers: vec![
                PeerConfig {
                    id: 0,
                    address: "127.0.0.1:7000".into(),
                },
                PeerConfig {
                    id: 1,
                    address: "127.0.0.1:7001".into(),
                },
            ],
            ..ClusterConfig::default()
        };
        let r = Resolver::new(&config, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(r.advertise(), "127.0.0.1:7000");
        assert!(matches!(
            r.dial_address(3),
            Err(ResolveError::UnknownNode(3))
        ));
        r.learn(3, "127.0.0.1:7003");
        assert_eq!(r.dial_address(3).unwrap(), "127.0.0.1:7003");
        assert!(r.resolve("no-such-host.invalid:1").await.is_err());
    }
}

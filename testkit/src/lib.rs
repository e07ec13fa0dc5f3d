//! Helpers shared by the tests, examples and benchmarks of every crate.

use std::fs::{File, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// Linux hands out ephemeral ports from 32768 up; these lie below.
const PORTS: std::ops::Range<u32> = 20_000..32_000;

/// A free port on 127.0.0.1 for a server a test starts.
///
/// A port taken by binding port 0 comes from the ephemeral range, and between
/// releasing it and the server binding it any outgoing connection or proxy
/// listener may be handed the same port ("Address already in use"). Ports
/// below that range are never handed out by the kernel on its own; the start
/// differs per process so tests running in parallel rarely pick the same one.
///
/// A port that is free when it is picked can still be picked by another test
/// process before this one's server binds it, so each port handed out is also
/// reserved machine-wide: an exclusive lock on a file named after it, held
/// until this process exits (tests/lib/ports.py takes the same locks).
pub fn free_port() -> u16 {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let seed = std::process::id().wrapping_mul(2_654_435_761) ^ nanos;
    let span = PORTS.end - PORTS.start;
    for _ in 0..span {
        let step = CALLS.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919);
        let port = (PORTS.start + seed.wrapping_add(step) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && reserve(port) {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 below the ephemeral range")
}

/// Locks `port`'s reservation file for the rest of this process's life;
/// false when another process holds it. Without a usable lock directory the
/// port is taken unreserved rather than failing the test.
fn reserve(port: u16) -> bool {
    static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("bleepstore-test-ports");
    if std::fs::create_dir_all(&dir).is_err() {
        return true;
    }
    let Ok(file) = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{port}.lock")))
    else {
        return true;
    };
    if file.try_lock().is_err() {
        return false;
    }
    HELD.lock().unwrap_or_else(|e| e.into_inner()).push(file);
    true
}

/// [`free_port`] as a socket address.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_bindable_and_distinct() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        for &p in &ports {
            assert!(PORTS.contains(&u32::from(p)));
            TcpListener::bind(("127.0.0.1", p)).unwrap();
        }
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
    }
}

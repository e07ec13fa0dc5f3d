//! S3 throughput side by side: the local backend, the memory backend and a
//! three-node cluster on this machine, for small, medium and large objects,
//! in one run. Prints figures; asserts nothing.
//!
//! ```sh
//! cargo build --release -p bleepstore --examples
//! taskset -c 0 target/release/examples/bench_s3            # servers run on core 1
//! taskset -c 0 target/release/examples/bench_s3 --seconds 3 --repeats 1 --sizes 4KiB
//! taskset -c 0 target/release/examples/bench_s3 --setups cluster3 --load-only
//! ```
//!
//! The client is a small warp-like load generator (SigV4 with
//! UNSIGNED-PAYLOAD over pooled HTTP/1.1 connections, a fixed number of
//! requests in flight). Each server process is started with `taskset -c 1`
//! when the machine has two or more cores. Server CPU per request comes
//! from /proc (user + system time of every server process), RSS from
//! VmRSS / VmHWM.

use bleepstore::auth::sigv4::{sign, signing_key, string_to_sign};
use bleepstore_testkit::free_port;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret-0123456789";
const REGION: &str = "us-east-1";

struct Args {
    seconds: u64,
    repeats: usize,
    concurrency: usize,
    sizes: Vec<u64>,
    setups: Vec<String>,
    binary: PathBuf,
    /// Skip cluster3's repair and rebalance phases (minutes): load figures only.
    load_only: bool,
}

fn parse_size(s: &str) -> u64 {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number.parse().expect("a size like 4KiB");
    n * match unit {
        "" | "B" => 1,
        "KiB" | "K" => 1024,
        "MiB" | "M" => 1024 * 1024,
        other => panic!("unknown unit {other}"),
    }
}

fn args() -> Args {
    let mut args = Args {
        seconds: 8,
        repeats: 3,
        concurrency: 16,
        sizes: vec![4 * 1024, 1024 * 1024, 64 * 1024 * 1024],
        setups: vec!["local".into(), "memory".into(), "cluster3".into()],
        binary: std::env::current_exe()
            .ok()
            .and_then(|p| p.parent()?.parent().map(|d| d.join("bleepstore")))
            .unwrap_or_else(|| PathBuf::from("bleepstore")),
        load_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match flag.as_str() {
            "--seconds" => args.seconds = value().parse().expect("seconds"),
            "--repeats" => args.repeats = value().parse().expect("repeats"),
            "--concurrency" => args.concurrency = value().parse().expect("concurrency"),
            "--sizes" => args.sizes = value().split(',').map(parse_size).collect(),
            "--setups" => args.setups = value().split(',').map(str::to_string).collect(),
            "--bin" => args.binary = PathBuf::from(value()),
            "--load-only" => args.load_only = true,
            other => panic!(
                "unknown flag {other} (--seconds --repeats --concurrency --sizes --setups --bin)"
            ),
        }
    }
    args
}

/// One server process.
struct Server {
    child: Child,
    s3_port: u16,
    ops_port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pinned(binary: &Path) -> Command {
    // The machine's cores, not this process's: the bench itself usually runs
    // under `taskset -c 0`, which available_parallelism() would report.
    let second_core = Path::new("/sys/devices/system/cpu/cpu1").exists();
    if second_core && Path::new("/usr/bin/taskset").exists() {
        let mut c = Command::new("/usr/bin/taskset");
        c.arg("-c").arg("1").arg(binary);
        c
    } else {
        Command::new(binary)
    }
}

/// A setup: its servers, and the time from start to the first answer.
struct Setup {
    servers: Vec<Server>,
    /// Each server's config file and data dir, to restart it.
    files: Vec<(PathBuf, PathBuf)>,
    first_answer: Duration,
    _dir: tempfile::TempDir,
}

const ADMIN_TOKEN: &str = "bench-admin-token";

fn spawn_server(binary: &Path, file: &Path) -> Child {
    pinned(binary)
        .arg("serve")
        .arg("--config")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

fn wait_health(port: u16, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

fn start_setup(args: &Args, name: &str) -> Setup {
    let dir = tempfile::tempdir().expect("a temp dir");
    let nodes = if name == "cluster3" { 3 } else { 1 };
    let ports: Vec<(u16, u16)> = (0..nodes).map(|_| (free_port(), free_port())).collect();
    let mut servers = Vec::new();
    let mut files = Vec::new();
    let started = Instant::now();
    for (i, (s3, ops)) in ports.iter().enumerate() {
        let data = dir.path().join(format!("node{i}"));
        let mut config = serde_json::json!({
            "server": {"s3_listen": format!("127.0.0.1:{s3}"), "ops_listen": format!("127.0.0.1:{ops}")},
            "storage": {"data_dir": data, "backend": if name == "memory" {"memory"} else {"local"}},
            "auth": {"access_key": KEY, "secret_key": SECRET, "admin_token": ADMIN_TOKEN},
            "logging": {"level": "warn"},
            "limits": {"max_object_size": "1GiB"},
        });
        if nodes > 1 {
            config["cluster"] = serde_json::json!({
                "enabled": true, "node_id": i, "secret": "bench-cluster-secret",
                "replication_factor": 3, "repair": {"interval_secs": 1, "bandwidth": "0"},
                "peers": ports.iter().enumerate().map(|(id, (_, ops))| serde_json::json!({"id": id, "address": format!("127.0.0.1:{ops}")})).collect::<Vec<_>>(),
            });
        }
        let file = dir.path().join(format!("node{i}.yaml"));
        std::fs::write(&file, config.to_string()).expect("write config");
        let child = spawn_server(&args.binary, &file);
        files.push((file, data));
        servers.push(Server {
            child,
            s3_port: *s3,
            ops_port: *ops,
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first_answer = Duration::ZERO;
    for (i, server) in servers.iter().enumerate() {
        assert!(
            wait_health(server.ops_port, deadline),
            "{name}: node {i} not ready"
        );
        if i == 0 {
            first_answer = started.elapsed();
        }
    }
    if nodes > 1 {
        // Until all three are voters (they join as learners).
        std::thread::sleep(Duration::from_secs(3));
    }
    Setup {
        servers,
        files,
        first_answer,
        _dir: dir,
    }
}

/// Bytes of the blob files under a data dir.
fn blob_bytes(data: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => walk(&e.path()),
                _ => e.metadata().map(|m| m.len()).unwrap_or(0),
            })
            .sum()
    }
    walk(&data.join("blobs"))
}

/// The cluster view's blob report, from node `via`'s admin API.
fn blobs_report(ops_port: u16) -> Option<serde_json::Value> {
    let (_, body) = admin_call(ops_port, "GET", "/admin/v1/cluster", "")?;
    let view: serde_json::Value = serde_json::from_str(&body).ok()?;
    view.get("blobs").cloned()
}

/// Sends an admin call to an ops port: the answer's status and body.
fn admin_call(ops_port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", ops_port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// A setup's config file, as JSON.
fn read_config(file: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(file).ok()?;
    serde_json::from_str(&text).ok()
}

/// Prints client throughput while the cluster copies blobs against the
/// same load without copying.
fn print_interference(what: &str, busy: Figure, quiet: Figure, after: String) {
    println!(
        "{what}: {:.0} MiB/s vs {:.0} MiB/s without = {:.0} % (target ≥ 80 %; {after})",
        busy.mib_per_s,
        quiet.mib_per_s,
        busy.mib_per_s / quiet.mib_per_s.max(f64::MIN_POSITIVE) * 100.0,
    );
}

/// Stops node `i` of a setup, empties its data dir and starts it again
/// with its config file as it now is.
fn restart_empty(args: &Args, setup: &mut Setup, i: usize) {
    let (file, data) = setup.files[i].clone();
    let _ = setup.servers[i].child.kill();
    let _ = setup.servers[i].child.wait();
    let _ = std::fs::remove_dir_all(&data);
    setup.servers[i].child = spawn_server(&args.binary, &file);
}

/// Client 1 MiB PUT throughput of one run of the bench's load.
fn put_mib_load(
    args: &Args,
    setup: &Setup,
    runtime: &tokio::runtime::Runtime,
    load: Load,
    prefix: &str,
) -> Figure {
    let mib = 1024 * 1024;
    let written = Arc::new((0..args.concurrency).map(|_| AtomicU64::new(0)).collect());
    let objects = Objects {
        prefix: prefix.into(),
        body: Bytes::from(vec![7u8; mib]),
        keys: 64,
    };
    figure(
        &runtime.block_on(put_phase(load, &pids(setup), objects, written)),
        mib as u64,
    )
}

/// Client 1 MiB PUT throughput while the cluster grows from 3 to 5 nodes
/// and rebalances (the blobs whose placement moved are copied to the new
/// nodes at the default 64 MiB/s limit per receiving node, and the surplus
/// copies dropped), against `quiet`: the same load with no copying.
fn rebalance_interference(
    args: &Args,
    setup: &mut Setup,
    runtime: &tokio::runtime::Runtime,
    load: impl Fn() -> Load,
    quiet: Figure,
) {
    let Some(template) = read_config(&setup.files[0].0) else {
        return;
    };
    let root = setup.files[0]
        .1
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut peers = template["cluster"]["peers"].clone();
    let new_ids = [3u64, 4];
    let mut added = Vec::new();
    for id in new_ids {
        let (s3, ops) = (free_port(), free_port());
        if let Some(list) = peers.as_array_mut() {
            list.push(serde_json::json!({"id": id, "address": format!("127.0.0.1:{ops}")}));
        }
        added.push((id, s3, ops));
    }
    for (id, s3, ops) in &added {
        let data = root.join(format!("node{id}"));
        let mut config = template.clone();
        config["server"]["s3_listen"] = format!("127.0.0.1:{s3}").into();
        config["server"]["ops_listen"] = format!("127.0.0.1:{ops}").into();
        config["storage"]["data_dir"] = data.display().to_string().into();
        config["cluster"]["node_id"] = (*id).into();
        config["cluster"]["peers"] = peers.clone();
        config["cluster"]["repair"]["bandwidth"] = "64MiB".into();
        let file = root.join(format!("node{id}.yaml"));
        let _ = std::fs::write(&file, config.to_string());
        setup.servers.push(Server {
            child: spawn_server(&args.binary, &file),
            s3_port: *s3,
            ops_port: *ops,
        });
        setup.files.push((file, data));
    }
    let leader_ops = setup.servers[0].ops_port;
    let mut joined = true;
    for (id, _, ops) in &added {
        let body = format!(r#"{{"id": {id}, "address": "127.0.0.1:{ops}"}}"#);
        joined &= admin_call(leader_ops, "POST", "/admin/v1/cluster/members", &body)
            .is_some_and(|(status, _)| status == 200);
        joined &= wait_health(*ops, Instant::now() + Duration::from_secs(60));
    }
    // Let the new members catch up and the copying start.
    std::thread::sleep(Duration::from_secs(3));
    let busy = put_mib_load(args, setup, runtime, load(), "during-rebalance");
    let misplaced = blobs_report(leader_ops)
        .and_then(|r| r["misplaced"].as_u64())
        .unwrap_or(0);
    print_interference(
        "cluster 3→5 1MiB PUT during the rebalance at the default 64 MiB/s limit",
        busy,
        quiet,
        format!(
            "{misplaced} blobs still misplaced after the run{}; clients use nodes 0–2",
            if joined {
                ""
            } else {
                "; a new node did not join in time"
            }
        ),
    );
}

/// Client 1 MiB PUT throughput while node 2 receives repair copies at the
/// default bandwidth limit, against the same load without a repair. Returns
/// the figure without a repair.
fn repair_interference(
    args: &Args,
    setup: &mut Setup,
    runtime: &tokio::runtime::Runtime,
    load: impl Fn() -> Load,
) -> Figure {
    let quiet = put_mib_load(args, setup, runtime, load(), "quiet");
    // Node 2 comes back empty with the default limit of 64 MiB/s.
    let file = setup.files[2].0.clone();
    let Some(mut config) = read_config(&file) else {
        return quiet;
    };
    config["cluster"]["repair"]["bandwidth"] = "64MiB".into();
    let _ = std::fs::write(&file, config.to_string());
    restart_empty(args, setup, 2);
    let ready = wait_health(
        setup.servers[2].ops_port,
        Instant::now() + Duration::from_secs(30),
    );
    // Let the rejoin settle and the copying start.
    std::thread::sleep(Duration::from_secs(3));
    let busy = put_mib_load(args, setup, runtime, load(), "during-repair");
    let copying = blobs_report(setup.servers[0].ops_port)
        .and_then(|r| r["under_replicated"].as_u64())
        .unwrap_or(0);
    print_interference(
        "cluster3 1MiB PUT during a repair at the default 64 MiB/s limit",
        busy,
        quiet,
        format!(
            "{copying} blobs still under-replicated after the run{}",
            if ready {
                ""
            } else {
                "; node 2 was not ready in time"
            }
        ),
    );
    quiet
}

/// Repair throughput: node 2 of the cluster loses its data dir and comes
/// back empty; the time until the repair has copied everything back to it.
fn repair_throughput(args: &Args, setup: &mut Setup) {
    let data = setup.files[2].1.clone();
    let started = Instant::now();
    restart_empty(args, setup, 2);
    let deadline = started + Duration::from_secs(600);
    let ops = setup.servers[0].ops_port;
    // Settled: a pass that began after the restart finds nothing to do.
    let restarted_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let Some(report) = blobs_report(ops) else {
            continue;
        };
        let finished = report["finished_ms"].as_u64().unwrap_or(0);
        let seconds = report["seconds"].as_f64().unwrap_or(0.0);
        let began = finished.saturating_sub((seconds * 1000.0) as u64);
        let copied = blob_bytes(&data);
        if began > restarted_ms + 2500
            && report["under_replicated"].as_u64() == Some(0)
            && copied > 0
        {
            let took = started.elapsed().as_secs_f64();
            println!(
                "cluster3 repair: {:.0} MiB copied back to an emptied node in {took:.1} s = {:.0} MiB/s (unthrottled; the default cluster.repair.bandwidth is 64 MiB/s per node)",
                copied as f64 / 1048576.0,
                copied as f64 / 1048576.0 / took
            );
            return;
        }
    }
    println!("cluster3 repair: not settled within 10 minutes");
}

/// User + system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The server's own pid (under taskset, the child execs the binary, same pid).
fn pids(setup: &Setup) -> Vec<u32> {
    setup.servers.iter().map(|s| s.child.id()).collect()
}

struct Signer {
    key: [u8; 32],
    date: String,
    amz_date: String,
}

impl Signer {
    fn new() -> Signer {
        let now = time::OffsetDateTime::now_utc();
        let amz_date = now
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .expect("a formatted date");
        let date = amz_date[..8].to_string();
        Signer {
            key: signing_key(SECRET, &date, REGION, "s3"),
            amz_date,
            date,
        }
    }

    fn request(
        &self,
        method: &str,
        port: u16,
        path: &str,
        body: Bytes,
    ) -> hyper::Request<Full<Bytes>> {
        let host = format!("127.0.0.1:{port}");
        let canonical = format!(
            "{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:{}\n\nhost;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD",
            self.amz_date
        );
        let scope = format!("{}/{REGION}/s3/aws4_request", self.date);
        let to_sign = string_to_sign(&self.amz_date, &scope, &canonical);
        let signature = sign(&self.key, &to_sign);
        hyper::Request::builder()
            .method(method)
            .uri(format!("http://{host}{path}"))
            .header("host", host)
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .header("x-amz-date", &self.amz_date)
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={KEY}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}"
                ),
            )
            .header("content-length", body.len())
            .body(Full::new(body))
            .expect("a request")
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn send(client: &HttpClient, request: hyper::Request<Full<Bytes>>) -> Result<u64, String> {
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let mut body = response.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Some(data) = frame.data_ref() {
            n += data.len() as u64;
        }
    }
    if status.is_success() {
        Ok(n)
    } else {
        Err(format!("status {status}"))
    }
}

struct Phase {
    ops: u64,
    errors: u64,
    seconds: f64,
    latencies: Vec<Duration>,
    cpu: f64,
}

/// Runs `op` from `concurrency` workers for `seconds`.
async fn phase<F, Fut>(concurrency: usize, seconds: u64, pids: &[u32], op: F) -> Phase
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<u64, String>> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let cpu_before: f64 = pids.iter().map(|&p| cpu_seconds(p)).sum();
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (op, stop, errors) = (op.clone(), stop.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match op(w, n).await {
                    Ok(_) => latencies.push(t.elapsed()),
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 1;
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after: f64 = pids.iter().map(|&p| cpu_seconds(p)).sum();
    latencies.sort();
    Phase {
        ops: latencies.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        seconds: elapsed,
        latencies,
        cpu: cpu_after - cpu_before,
    }
}

/// Who sends the load, and how much of it.
struct Load {
    client: HttpClient,
    signer: Arc<Signer>,
    ports: Arc<Vec<u16>>,
    concurrency: usize,
    seconds: u64,
}

/// What a PUT phase writes: `keys` keys per worker under `prefix`.
struct Objects {
    prefix: String,
    body: Bytes,
    keys: u64,
}

/// PUTs for `load.seconds`, spread over the ports; `written[w]` counts the
/// keys worker `w` wrote.
async fn put_phase(
    load: Load,
    pids: &[u32],
    objects: Objects,
    written: Arc<Vec<AtomicU64>>,
) -> Phase {
    let Load {
        client,
        signer,
        ports,
        concurrency,
        seconds,
    } = load;
    let Objects { prefix, body, keys } = objects;
    phase(concurrency, seconds, pids, move |w, n| {
        let key = format!("/bench/{prefix}-{w}-{}", n % keys);
        let port = ports[(w + n as usize) % ports.len()];
        let request = signer.request("PUT", port, &key, body.clone());
        let (client, written) = (client.clone(), written.clone());
        async move {
            let r = send(&client, request).await;
            if r.is_ok() {
                written[w].fetch_max(n + 1, Ordering::Relaxed);
            }
            r
        }
    })
    .await
}

fn percentile(latencies: &[Duration], p: f64) -> Duration {
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
    latencies[i]
}

#[derive(Clone, Copy, Default)]
struct Figure {
    ops_per_s: f64,
    mib_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us: f64,
    errors: u64,
}

fn figure(p: &Phase, size: u64) -> Figure {
    let ops_per_s = p.ops as f64 / p.seconds;
    Figure {
        ops_per_s,
        mib_per_s: ops_per_s * size as f64 / (1024.0 * 1024.0),
        p50_ms: percentile(&p.latencies, 0.50).as_secs_f64() * 1e3,
        p99_ms: percentile(&p.latencies, 0.99).as_secs_f64() * 1e3,
        cpu_us: if p.ops > 0 {
            p.cpu / p.ops as f64 * 1e6
        } else {
            0.0
        },
        errors: p.errors,
    }
}

/// The best of the repeats (by ops/s), as warp's summaries do for a run.
fn best(figures: &[Figure]) -> Figure {
    figures
        .iter()
        .copied()
        .max_by(|a, b| a.ops_per_s.total_cmp(&b.ops_per_s))
        .unwrap_or_default()
}

fn label(size: u64) -> String {
    if size >= 1024 * 1024 {
        format!("{}MiB", size / (1024 * 1024))
    } else {
        format!("{}KiB", size / 1024)
    }
}

/// The disk's own bandwidth for 1 MiB writes ending in fdatasync.
fn disk_bandwidth(dir: &Path) -> f64 {
    use std::io::Write;
    let path = dir.join("bench-disk-probe");
    let chunk = vec![0x5au8; 1024 * 1024];
    let total = 256;
    let started = Instant::now();
    let mut file = std::fs::File::create(&path).expect("probe file");
    for _ in 0..total {
        file.write_all(&chunk).expect("write");
    }
    file.sync_data().expect("fdatasync");
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    total as f64 / secs
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let probe_dir = tempfile::tempdir_in(".").expect("a temp dir here");
    let disk = disk_bandwidth(probe_dir.path());
    println!(
        "# bleepstore bench: {} s runs, best of {}, {} in flight",
        args.seconds, args.repeats, args.concurrency
    );
    println!("disk fdatasync bandwidth (1 MiB writes): {disk:.0} MiB/s");
    println!(
        "{:<9} {:>6} {:>4} {:>10} {:>9} {:>9} {:>9} {:>11} {:>7}",
        "setup", "size", "op", "ops/s", "MiB/s", "p50 ms", "p99 ms", "cpu µs/op", "errors"
    );
    let mut results: Vec<(String, u64, &str, Figure)> = Vec::new();
    for name in &args.setups {
        let mut setup = start_setup(&args, name);
        let pids = pids(&setup);
        let idle_rss: u64 = pids.iter().map(|&p| status_kib(p, "VmRSS:")).sum();
        // RSS also counts the pages of the executable mapped in (shared,
        // reclaimable page cache); the private part is the process's own.
        let idle_private: u64 = pids.iter().map(|&p| status_kib(p, "RssAnon:")).sum();
        let ports: Arc<Vec<u16>> = Arc::new(setup.servers.iter().map(|s| s.s3_port).collect());
        let client: HttpClient = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build_http();
        let signer = Arc::new(Signer::new());
        runtime.block_on(async {
            let create = signer.request("PUT", ports[0], "/bench", Bytes::new());
            send(&client, create).await.expect("create the bucket");
        });
        for &size in &args.sizes {
            // Large objects: fewer in flight and a small key space, so the
            // memory backend holds a bounded amount.
            let (concurrency, keys) = if size >= 16 * 1024 * 1024 {
                (args.concurrency.min(4), 8u64)
            } else {
                (args.concurrency, u64::MAX)
            };
            let body = Bytes::from((0..size).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
            let mut puts = Vec::new();
            let mut gets = Vec::new();
            for repeat in 0..args.repeats {
                // Signatures are dated: a fresh signer per repeat stays
                // within the server's clock-skew window on long runs.
                let signer = Arc::new(Signer::new());
                // How many keys each worker wrote: its GETs read only those.
                let written: Arc<Vec<AtomicU64>> =
                    Arc::new((0..concurrency).map(|_| AtomicU64::new(0)).collect());
                let p = runtime.block_on(put_phase(
                    Load {
                        client: client.clone(),
                        signer: signer.clone(),
                        ports: ports.clone(),
                        concurrency,
                        seconds: args.seconds,
                    },
                    &pids,
                    Objects {
                        prefix: format!("{}-{repeat}", label(size)),
                        body: body.clone(),
                        keys,
                    },
                    written.clone(),
                ));
                puts.push(figure(&p, size));
                let g = {
                    let (client, signer, ports) = (client.clone(), signer.clone(), ports.clone());
                    let spans: Vec<u64> = written
                        .iter()
                        .map(|n| n.load(Ordering::Relaxed).clamp(1, keys))
                        .collect();
                    runtime.block_on(phase(concurrency, args.seconds, &pids, move |w, n| {
                        // Worker w reads back the keys it wrote.
                        let key = format!("/bench/{}-{repeat}-{w}-{}", label(size), n % spans[w]);
                        let port = ports[(w * 7 + n as usize) % ports.len()];
                        let request = signer.request("GET", port, &key, Bytes::new());
                        let client = client.clone();
                        async move { send(&client, request).await }
                    }))
                };
                gets.push(figure(&g, size));
            }
            for (op, figures) in [("PUT", &puts), ("GET", &gets)] {
                let f = best(figures);
                println!(
                    "{:<9} {:>6} {:>4} {:>10.0} {:>9.1} {:>9.2} {:>9.2} {:>11.0} {:>7}",
                    name,
                    label(size),
                    op,
                    f.ops_per_s,
                    f.mib_per_s,
                    f.p50_ms,
                    f.p99_ms,
                    f.cpu_us,
                    f.errors
                );
                results.push((name.clone(), size, op, f));
            }
        }
        let peak_rss: u64 = pids.iter().map(|&p| status_kib(p, "VmHWM:")).sum();
        if name == "cluster3" && !args.load_only {
            repair_throughput(&args, &mut setup);
            let load = || Load {
                client: client.clone(),
                signer: Arc::new(Signer::new()),
                ports: ports.clone(),
                concurrency: args.concurrency,
                seconds: args.seconds,
            };
            let quiet = repair_interference(&args, &mut setup, &runtime, load);
            rebalance_interference(&args, &mut setup, &runtime, load, quiet);
        }
        println!(
            "{name}: first answer {:.1} ms after start; RSS idle {:.1} MiB ({:.1} MiB private), peak under load {:.1} MiB ({} process{})",
            setup.first_answer.as_secs_f64() * 1e3,
            idle_rss as f64 / 1024.0,
            idle_private as f64 / 1024.0,
            peak_rss as f64 / 1024.0,
            pids.len(),
            if pids.len() == 1 { "" } else { "es" }
        );
    }
    let find = |setup: &str, size: u64, op: &str| {
        results
            .iter()
            .find(|(s, z, o, _)| s == setup && *z == size && *o == op)
            .map(|(_, _, _, f)| *f)
    };
    println!("# ratios against the targets");
    let ratio = |what: &str, a: Option<Figure>, b: Option<Figure>, target: f64| {
        if let (Some(a), Some(b)) = (a, b)
            && b.ops_per_s > 0.0
        {
            let r = a.ops_per_s / b.ops_per_s;
            println!(
                "{what}: {:.0} % (target ≥ {:.0} %)",
                r * 100.0,
                target * 100.0
            );
        }
    };
    let small = 4 * 1024;
    ratio(
        "local 4KiB PUT / memory 4KiB PUT",
        find("local", small, "PUT"),
        find("memory", small, "PUT"),
        0.70,
    );
    ratio(
        "cluster3 4KiB PUT / local 4KiB PUT",
        find("cluster3", small, "PUT"),
        find("local", small, "PUT"),
        0.50,
    );
    ratio(
        "cluster3 4KiB GET / local 4KiB GET",
        find("cluster3", small, "GET"),
        find("local", small, "GET"),
        0.70,
    );
    let mib = 1024 * 1024;
    ratio(
        "cluster3 1MiB PUT / local 1MiB PUT (three copies on one disk)",
        find("cluster3", mib, "PUT"),
        find("local", mib, "PUT"),
        1.0 / 3.0,
    );
    ratio(
        "cluster3 1MiB GET / local 1MiB GET",
        find("cluster3", mib, "GET"),
        find("local", mib, "GET"),
        0.80,
    );
    ratio(
        "cluster3 64MiB PUT / local 64MiB PUT",
        find("cluster3", 64 * mib, "PUT"),
        find("local", 64 * mib, "PUT"),
        1.0 / 3.0,
    );
    ratio(
        "cluster3 64MiB GET / local 64MiB GET",
        find("cluster3", 64 * mib, "GET"),
        find("local", 64 * mib, "GET"),
        0.80,
    );
    if let Some(f) = find("local", 1024 * 1024, "PUT") {
        println!(
            "local 1MiB PUT: {:.0} MiB/s = {:.0} % of the disk's fdatasync bandwidth (target ≥ 50 %)",
            f.mib_per_s,
            f.mib_per_s / disk * 100.0
        );
    }
    if let Some(f) = find("local", small, "GET") {
        println!(
            "local 4KiB GET: {:.0} µs of server CPU per request (target ≤ 80)",
            f.cpu_us
        );
    }
}

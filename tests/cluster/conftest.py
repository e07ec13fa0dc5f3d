"""Cluster harness: real `bleepstore serve` processes on loopback forming a
Raft group, every node-to-node link routed through a proxy of the test's own
(`cluster.dial`), boto3 clients per node, and the admin API.

The binary comes from $BLEEPSTORE_BIN (default
$HOME/.cache/bleepstore-target/release/bleepstore).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from ports import free_port
from botocore.config import Config

from netproxy import Links

ROOT_KEY = "cluster-root-key"
ROOT_SECRET = "cluster-root-secret-0123456789"
ADMIN_TOKEN = "cluster-admin-token-0123456789"
CLUSTER_SECRET = "cluster-secret-0123456789abcdef"
REGION = "us-east-1"
DEFAULT_BIN = Path.home() / ".cache/bleepstore-target/release/bleepstore"

# Shorter than the defaults so elections and failovers take a second or two.
TIMINGS = {"heartbeat_ms": 100, "election_timeout_ms": 800, "request_timeout_ms": 8000}



def wait_for(what: str, check, timeout: float = 30.0, interval: float = 0.1):
    """Polls `check` until it returns something truthy; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


def client_for(endpoint: str, read_timeout: float = 20, attempts: int = 1, verify=None):
    cfg = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"max_attempts": attempts, "mode": "standard"},
        connect_timeout=3,
        read_timeout=read_timeout,
    )
    return boto3.session.Session(
        aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET, region_name=REGION
    ).client("s3", endpoint_url=endpoint, config=cfg, verify=verify)


class Node:
    def __init__(self, cluster: "Cluster", node_id: int):
        self.cluster = cluster
        self.id = node_id
        self.s3_port = free_port()
        self.ops_port = free_port()
        self.root = cluster.workdir / f"node{node_id}"
        self.data_dir = self.root / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file = self.root / "config.yaml"
        self.log_file = self.root / "server.log"
        self.proc: subprocess.Popen | None = None
        self.extra: dict = {}
        # Environment variables of its own (a pod's identity, say).
        self.env: dict[str, str] = {}
        # With server.tls in `extra`: the CA file clients verify it with.
        self.tls_ca: Path | None = None
        self._s3 = None

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.extra.get("server", {}).get("tls") else "http"
        return f"{scheme}://127.0.0.1:{self.s3_port}"

    @property
    def ops(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ops_port}"

    @property
    def s3(self):
        if self._s3 is None:
            self._s3 = client_for(self.endpoint, verify=str(self.tls_ca) if self.tls_ca else None)
        return self._s3

    def write_config(self, cluster_section: dict) -> None:
        cfg = {
            "server": {"s3_listen": f"127.0.0.1:{self.s3_port}", "ops_listen": self.address},
            "storage": {"data_dir": str(self.data_dir)},
            "auth": {"access_key": ROOT_KEY, "secret_key": ROOT_SECRET, "admin_token": ADMIN_TOKEN},
            "logging": {"level": os.environ.get("BLEEPSTORE_CLUSTER_LOG", "info")},
        }
        for section, values in self.extra.items():
            cfg.setdefault(section, {}).update(values)
        cfg["cluster"] = cluster_section
        self.config_file.write_text(json.dumps(cfg, indent=2))

    def start(self, wait_ready: bool = True, timeout: float = 30.0) -> None:
        assert self.proc is None, f"node {self.id} already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLEEPSTORE_")}
        env.update(self.env)
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [str(self.cluster.binary), "serve", "--config", str(self.config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        if wait_ready:
            self.wait_ready(timeout)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"node {self.id} exited:\n{self.log_tail()}")
            with urllib.request.urlopen(self.ops + "/ready", timeout=1) as r:
                return r.status == 200

        try:
            wait_for(f"node {self.id} ready", ready, timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- node {self.id} log ---\n{self.log_tail()}") from None

    def stop(self, sig: int = signal.SIGKILL, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def wipe(self) -> None:
        assert self.proc is None
        shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(parents=True)

    def admin(self, method: str, path: str, body: dict | None = None, timeout: float = 20):
        """(status, parsed JSON) of an admin call on this node's ops port."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.ops + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {ADMIN_TOKEN}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")

    def view(self) -> dict:
        status, body = self.admin("GET", "/admin/v1/cluster", timeout=5)
        assert status == 200, body
        return body

    def metrics(self) -> str:
        with urllib.request.urlopen(self.ops + "/metrics", timeout=5) as r:
            return r.read().decode()

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Cluster:
    """Nodes with ids 0..n-1 listed as each other's static peers; every
    link a→b goes through links[(a, b)]."""

    def __init__(self, workdir: Path, binary: Path):
        self.workdir = workdir
        self.binary = binary
        self.nodes: dict[int, Node] = {}
        self.links = Links()
        self.settings: dict = dict(TIMINGS)

    def add_node(self, node_id: int) -> Node:
        node = Node(self, node_id)
        self.nodes[node_id] = node
        for other in self.nodes.values():
            if other.id != node_id:
                self.links.add(node_id, other.id, other.ops_port)
                self.links.add(other.id, node_id, node.ops_port)
        return node

    def cluster_section(self, node: Node, peers: list[int]) -> dict:
        return {
            "enabled": True,
            "node_id": node.id,
            "secret": CLUSTER_SECRET,
            "peers": [{"id": p, "address": self.nodes[p].address} for p in sorted(peers)],
            "dial": {str(b): proxy.address for (a, b), proxy in self.links.links.items() if a == node.id},
            **self.settings,
        }

    def configure(self, node: Node, peers: list[int] | None = None) -> None:
        peers = sorted(self.nodes) if peers is None else peers
        node.write_config(self.cluster_section(node, peers))

    def start(self, n: int, **settings) -> "Cluster":
        self.settings.update(settings)
        for i in range(n):
            self.add_node(i)
        return self.launch()

    def launch(self) -> "Cluster":
        """Configures and starts every node added, and waits until all are
        ready voters."""
        for node in self.nodes.values():
            self.configure(node)
            node.start(wait_ready=False)
        for node in self.nodes.values():
            node.wait_ready()
        self.wait_members(set(self.nodes))
        return self

    def grow(self, ids: list[int]) -> None:
        """Starts new nodes and adds them through the leader's admin API
        (every node's dial map changes: links to the new nodes exist now)."""
        for i in ids:
            self.add_node(i)
        for node in self.nodes.values():
            self.configure(node, peers=sorted(self.nodes))
        for i in ids:
            self.nodes[i].start(wait_ready=False)
            status, body = self.leader().admin(
                "POST", "/admin/v1/cluster/members", {"id": i, "address": self.nodes[i].address}
            )
            assert status == 200, body
        for i in ids:
            self.nodes[i].wait_ready(60)

    def running(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.running()]

    def any_node(self) -> Node:
        return random.choice(self.running())

    def leader(self, among: list[Node] | None = None, timeout: float = 20) -> Node:
        """The node every running node (or `among`) agrees leads."""

        group = among or self.running()

        def agreed():
            leaders = {n.view()["leader"] for n in group}
            if len(leaders) == 1 and None not in leaders:
                leader = self.nodes[leaders.pop()]
                return leader if leader.running() and leader in group else None
            return None

        return wait_for("an agreed leader", agreed, timeout)

    def followers(self) -> list[Node]:
        leader = self.leader()
        return [n for n in self.running() if n.id != leader.id]

    def wait_members(self, voters: set[int], timeout: float = 40) -> dict:
        """Until some node reports exactly `voters` as voters, all caught up."""

        def settled():
            view = self.any_node().view()
            got = {m["id"] for m in view["members"] if m["role"] == "voter"}
            lagging = [m for m in view["members"] if m.get("lag") not in (0, None)]
            return view if got == voters and view["healthy"] and not lagging else None

        return wait_for(f"voters {sorted(voters)}", settled, timeout)

    def wait_applied(self, nodes: list[Node] | None = None, timeout: float = 30) -> None:
        """Until every running node has applied what the leader committed."""

        def caught_up():
            view = self.leader().view()
            committed = view["committed_index"]
            applied = {m["id"]: m.get("applied") for m in view["members"]}
            return all((applied.get(n.id) or 0) >= committed for n in (nodes or self.running()))

        wait_for("every node applied the log", caught_up, timeout)

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
        self.links.close()


@pytest.fixture(scope="session", autouse=True)
def _isolate_boto_env():
    saved = dict(os.environ)
    for k in list(os.environ):
        if k.startswith("AWS_"):
            del os.environ[k]
    os.environ.update(
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
    )
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def binary() -> Path:
    path = Path(os.environ.get("BLEEPSTORE_BIN", DEFAULT_BIN))
    if not path.is_file():
        pytest.exit(f"bleepstore binary not found at {path} (set BLEEPSTORE_BIN)", 2)
    return path


@pytest.fixture
def make_cluster(binary, request):
    """Clusters of the test's own, stopped (by PID) and removed afterwards;
    logs of a failed test are kept and their path printed."""
    made: list[Cluster] = []
    workdir = Path(tempfile.mkdtemp(prefix="bleepstore-cluster-"))

    def make() -> Cluster:
        cluster = Cluster(workdir / f"c{len(made)}", binary)
        cluster.workdir.mkdir(parents=True)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(f"\ncluster logs kept in {workdir}")
        for cluster in made:
            for node in cluster.nodes.values():
                print(f"--- node {node.id} ---\n{node.log_tail(30)}")
    elif os.environ.get("BLEEPSTORE_KEEP_TMP") != "1":
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def unique_bucket() -> str:
    return f"cl-{uuid.uuid4().hex[:12]}"

"""The Kubernetes-shaped bootstrap: three nodes configured exactly as the
operator renders them for a three-replica BleepStoreCluster (the rendered
ConfigMap, and the pod identity the StatefulSet passes in the environment),
no static peers. Only what a pod gets from its cluster differs here: its own
ports on 127.0.0.1 instead of an IP of its own, files in a temporary
directory instead of mounted Secrets, and `cluster.hosts` standing in for
the headless Service's DNS records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ADMIN_TOKEN, CLUSTER_SECRET, ROOT_KEY, ROOT_SECRET, TIMINGS, Node, unique_bucket
from workload import verify_acknowledged

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "manifests/examples/three-node-local.yaml"
NAMESPACE = "team-a"


def operator_binary() -> Path:
    default = Path.home() / ".cache/bleepstore-target/release/bleepstore-operator"
    path = Path(os.environ.get("BLEEPSTORE_OPERATOR_BIN", default))
    if not path.is_file():
        pytest.fail(f"operator binary not found at {path} (set BLEEPSTORE_OPERATOR_BIN)")
    return path


def rendered() -> tuple[dict, dict]:
    """The server config the operator renders for the example, and the
    StatefulSet it would apply."""
    out = subprocess.run(
        [str(operator_binary()), "render", str(EXAMPLE)],
        check=True, capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "RUST_BACKTRACE": "0"},
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    statefulset = next(d for d in docs if d["kind"] == "StatefulSet")
    return yaml.safe_load(config_map["data"]["config.yaml"]), statefulset


def test_pods_configured_as_the_operator_renders_form_one_group(make_cluster):
    config, statefulset = rendered()
    sts = statefulset["metadata"]["name"]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    env_names = [e["name"] for e in container["env"]]
    assert "BLEEPSTORE_CLUSTER_POD_NAME" in env_names and "BLEEPSTORE_CLUSTER_NAMESPACE" in env_names
    replicas = statefulset["spec"]["replicas"]
    assert replicas == 3 and config["cluster"]["replicas"] == 3
    assert "peers" not in config["cluster"]

    cluster = make_cluster()
    pods = []
    for i in range(replicas):
        pod = Node(cluster, i)
        pod.env = {"BLEEPSTORE_CLUSTER_POD_NAME": f"{sts}-{i}", "BLEEPSTORE_CLUSTER_NAMESPACE": NAMESPACE}
        cluster.nodes[i] = pod
        pods.append(pod)
    secrets = cluster.workdir / "secrets"
    secrets.mkdir()
    files = {"access-key": ROOT_KEY, "secret-key": ROOT_SECRET, "admin-token": ADMIN_TOKEN,
             "cluster-secret": CLUSTER_SECRET}
    for name, value in files.items():
        (secrets / name).write_text(value + "\n")
    domain = config["cluster"].get("cluster_domain", "cluster.local")
    service = config["cluster"]["headless_service"]
    hosts = {f"{sts}-{p.id}.{service}.{NAMESPACE}.svc.{domain}": p.address for p in pods}
    for pod in pods:
        mine = json.loads(json.dumps(config))
        mine["server"]["s3_listen"] = f"127.0.0.1:{pod.s3_port}"
        mine["server"]["ops_listen"] = pod.address
        mine["storage"]["data_dir"] = str(pod.data_dir)
        for section in ("auth", "cluster"):
            for field, value in list(mine[section].items()):
                if field.endswith("_file"):
                    mine[section][field] = str(secrets / Path(value).name)
        mine["cluster"]["hosts"] = hosts
        mine["cluster"].update(TIMINGS)
        mine["logging"] = {"level": "info", "format": "text"}
        pod.config_file.write_text(json.dumps(mine, indent=2))
    # Pods start in any order (podManagementPolicy Parallel), pod-0 last.
    for pod in reversed(pods):
        pod.start(wait_ready=False)
    for pod in pods:
        pod.wait_ready(60)
    view = cluster.wait_members({0, 1, 2})
    cluster_id = view["cluster_id"]
    for member in view["members"]:
        assert member["address"].startswith(f"{sts}-{member['id']}.{service}.{NAMESPACE}.svc."), member

    bucket = unique_bucket()
    pods[2].s3.create_bucket(Bucket=bucket)
    acked = {}
    for i in range(10):
        pods[i % 3].s3.put_object(Bucket=bucket, Key=f"k{i}", Body=f"v{i}".encode())
        acked[f"k{i}"] = f"v{i}".encode()

    # pod-0 comes back on an empty volume: it must rejoin, not found anew.
    pods[0].stop(signal.SIGKILL)
    pods[0].wipe()
    pods[0].start()
    cluster.wait_members({0, 1, 2})
    cluster.wait_applied()
    assert {p.view()["cluster_id"] for p in pods} == {cluster_id}
    objects = {k: v for i, (k, v) in enumerate(acked.items()) if i % 3 != 0}
    verify_acknowledged(pods[0], bucket, objects)

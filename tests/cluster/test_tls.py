"""Node-to-node TLS: with `server.tls`, nodes call each other over TLS
(every call carries the cluster secret) and refuse node-to-node calls over
plain HTTP, while probes and scrapers may still use plain HTTP on the
operations port. A peer must show this node's own certificate, or one that
chains to a trusted CA and names the peer (or this node's names)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import CLUSTER_SECRET, unique_bucket, wait_for


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, as `openssl req -x509`
    makes it by default (a CA certificate used as a server's)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert))
    return cert, key


def issued(directory: Path, ca: tuple[Path, Path], name: str, san: str) -> tuple[Path, Path]:
    """A server certificate for `san`, issued by `ca`."""
    cert, key, csr = (directory / f"{name}.{ext}" for ext in ("crt", "key", "csr"))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
    ext = directory / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
            "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return cert, key


def use_tls(node, cert: Path, key: Path, ca: Path) -> None:
    node.extra.setdefault("server", {})["tls"] = {"cert_file": str(cert), "key_file": str(key)}
    node.tls_ca = ca


def internal_call(node, scheme: str = "http") -> tuple[int, str]:
    """A node-to-node call (a node's info) with the right secret."""
    req = urllib.request.Request(f"{scheme}://127.0.0.1:{node.ops_port}/internal/v1/info",
                                 data=b"\x80", method="POST")
    req.add_header("x-bleepstore-cluster-secret", CLUSTER_SECRET)
    req.add_header("x-bleepstore-node", "9")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def round_trip(cluster) -> None:
    """A blob written through a follower is readable, byte for byte, through
    every node (so it crossed the node-to-node links: forwarding, the read
    index, the replicated blob writes)."""
    follower = cluster.followers()[0]
    bucket = unique_bucket()
    follower.s3.create_bucket(Bucket=bucket)
    body = os.urandom(300_000)  # above inline_max: a replicated blob
    follower.s3.put_object(Bucket=bucket, Key="k", Body=body)
    for node in cluster.nodes.values():
        got = node.s3.get_object(Bucket=bucket, Key="k")["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()


def test_one_shared_self_signed_certificate(make_cluster, tmp_path):
    cluster = make_cluster()
    cert, key = self_signed(tmp_path, "shared")
    for i in range(3):
        use_tls(cluster.add_node(i), cert, key, cert)
    cluster.launch()
    round_trip(cluster)

    node = cluster.nodes[0]
    # Node-to-node calls over plain HTTP are refused, whatever they carry.
    status, text = internal_call(node)
    assert status == 403 and "TLS" in text, (status, text)
    # Probes, metrics and the admin API still answer plain HTTP.
    assert node.view()["healthy"] is True
    with urllib.request.urlopen(node.ops + "/ready", timeout=5) as r:
        assert r.status == 200
    assert "bleepstore_raft_term" in node.metrics()


def test_per_node_certificates_from_a_ca(make_cluster, tmp_path):
    """Certificates of their own for each node's address, as a private CA
    (cert-manager, say) issues them: peers are named, not numbered, and the
    links still go through the test's proxies (`cluster.dial`), so the name
    checked is the peer's, not the address dialled."""
    cluster = make_cluster()
    ca = self_signed(tmp_path, "ca")
    names = {i: f"node{i}.peers.test" for i in range(3)}
    for i in range(3):
        node = cluster.add_node(i)
        cert, key = issued(tmp_path, ca, f"node{i}", f"DNS:{names[i]},IP:127.0.0.1")
        use_tls(node, cert, key, ca[0])
    cluster.settings.update(
        peers=[{"id": i, "address": f"{names[i]}:{n.ops_port}"} for i, n in cluster.nodes.items()],
        hosts={name: "127.0.0.1" for name in names.values()},
        tls_ca_file=str(ca[0]),
    )
    cluster.launch()
    round_trip(cluster)


def test_a_node_with_an_untrusted_certificate_is_not_talked_to(make_cluster, tmp_path):
    cluster = make_cluster()
    cert, key = self_signed(tmp_path, "members")
    stranger, stranger_key = self_signed(tmp_path, "stranger")
    for i in range(3):
        node = cluster.add_node(i)
        if i == 2:
            use_tls(node, stranger, stranger_key, stranger)
        else:
            use_tls(node, cert, key, cert)
    for node in cluster.nodes.values():
        cluster.configure(node)
    members = [cluster.nodes[0], cluster.nodes[1]]
    for node in members:
        node.start(wait_ready=False)
    for node in members:
        node.wait_ready()
    leader = cluster.leader(among=members)
    bucket = unique_bucket()
    leader.s3.create_bucket(Bucket=bucket)
    leader.s3.put_object(Bucket=bucket, Key="k", Body=b"only for members")

    # Started once the members listen, so its first attempt to join (which
    # it logs, with the reasons) meets their certificates, not a refused
    # connection.
    outsider = cluster.nodes[2]
    outsider.start(wait_ready=False)
    # It trusts no member and no member trusts it: it never joins, never
    # becomes ready, and says why it waits.
    wait_for("the outsider to log the certificate it refused",
             lambda: "invalid peer certificate" in outsider.log_tail(400), timeout=20)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(outsider.ops + "/ready", timeout=5)
    assert refused.value.code == 503
    assert {m["id"] for m in leader.view()["members"]} == {0, 1}
    assert leader.s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"only for members"

"""Replicated blobs: every blob that is not inline lives on
`replication_factor` nodes, survives the loss of a node and of a disk, is
checked on every read and by the scrub, is copied back by the repair, moved
off a member before it leaves, and rebalanced after a scale-up. Bytes are
verified by SHA-256 end to end; copies are counted on disk."""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import REGION, ROOT_KEY, ROOT_SECRET, unique_bucket, wait_for

# Fast repair and scrub passes for the tests.
FAST = {"repair": {"interval_secs": 1, "concurrency": 4, "bandwidth": "0"}, "scrub": {"interval_secs": 2}}
MIB = 1024 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_files(node) -> dict[str, Path]:
    root = node.data_dir / "blobs"
    if not root.exists():
        return {}
    return {p.name: p for p in root.glob("*/*/*") if p.is_file()}


def copies(nodes) -> Counter:
    """How many nodes hold each blob file."""
    count: Counter = Counter()
    for node in nodes:
        count.update(blob_files(node).keys())
    return count


def put_objects(node, bucket: str, n: int, size: int, prefix: str = "o") -> dict[str, bytes]:
    objects = {f"{prefix}{i}": os.urandom(size) for i in range(n)}
    for key, body in objects.items():
        node.s3.put_object(Bucket=bucket, Key=key, Body=body)
    return objects


def verify(node, bucket: str, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        got = node.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert sha(got) == sha(body), f"{key} through node {node.id}"


def wait_replicated(cluster, nodes, blobs: int, factor: int, timeout: float = 60) -> Counter:
    """Until exactly `blobs` blob files exist, each on `factor` of `nodes`,
    and the leader's last repair pass saw nothing left to do."""

    def settled():
        count = copies(nodes)
        if len(count) != blobs or set(count.values()) != {factor}:
            return None
        report = cluster.leader().view().get("blobs")
        if not report or report["blobs"] != blobs or report["under_replicated"] or report["misplaced"]:
            return None
        return count

    return wait_for(f"{blobs} blobs × {factor} copies", settled, timeout, interval=0.5)


def test_three_copies_on_three_nodes_and_reads_through_every_node(make_cluster):
    cluster = make_cluster().start(3, replication_factor=3, **FAST)
    bucket = unique_bucket()
    entry = cluster.nodes[1]
    entry.s3.create_bucket(Bucket=bucket)
    objects = put_objects(entry, bucket, 6, 300 * 1024)
    # The PUT wrote every copy itself: no repair was needed to get there.
    count = copies(cluster.nodes.values())
    assert len(count) == 6 and set(count.values()) <= {2, 3}, count
    wait_replicated(cluster, cluster.nodes.values(), 6, 3)
    for node in cluster.nodes.values():
        verify(node, bucket, objects)
    view = cluster.leader().view()
    per_member = {m["id"]: m["blobs"] for m in view["members"]}
    assert all(b["blobs"] == 6 and b["bytes"] >= 6 * 300 * 1024 for b in per_member.values()), per_member
    assert view["blobs"]["replication_factor"] == 3
    # Overwrites and deletes free the blobs on every holder.
    entry.s3.put_object(Bucket=bucket, Key="o0", Body=b"x" * (100 * 1024))
    entry.s3.delete_object(Bucket=bucket, Key="o1")
    # o0's old blob is freed and a new one written; o1's blob is freed.
    wait_for("freed copies removed everywhere",
             lambda: len(copies(cluster.nodes.values())) == 5 and set(copies(cluster.nodes.values()).values()) == {3},
             30, interval=0.3)


def test_factor_three_on_five_nodes_places_exactly_three_copies(make_cluster):
    cluster = make_cluster().start(5, replication_factor=3, **FAST)
    bucket = unique_bucket()
    cluster.nodes[0].s3.create_bucket(Bucket=bucket)
    objects = put_objects(cluster.nodes[2], bucket, 15, 64 * 1024)
    count = wait_replicated(cluster, cluster.nodes.values(), 15, 3)
    held = {n.id: len(blob_files(n)) for n in cluster.nodes.values()}
    assert sum(held.values()) == 45 and all(v > 0 for v in held.values()), held
    for node in cluster.nodes.values():
        verify(node, bucket, objects)
    assert len(count) == 15


def signed_put(node, bucket: str, key: str, chunks, size: int, pause: float) -> tuple[int, bytes]:
    """A PUT streamed slowly in chunks (UNSIGNED-PAYLOAD), for faults mid-body."""
    url = f"{node.endpoint}/{bucket}/{key}"
    request = AWSRequest(method="PUT", url=url, headers={
        "Content-Length": str(size),
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
    })
    SigV4Auth(Credentials(ROOT_KEY, ROOT_SECRET), "s3", REGION).add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", node.s3_port, timeout=60)
    conn.putrequest("PUT", f"/{bucket}/{key}", skip_accept_encoding=True)
    for name, value in request.headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    try:
        for chunk in chunks:
            conn.send(chunk)
            time.sleep(pause)
        response = conn.getresponse()
        return response.status, response.read()
    except OSError as e:
        return 0, str(e).encode()
    finally:
        conn.close()


def test_kill_9_of_a_target_while_a_64_mib_put_streams(make_cluster):
    cluster = make_cluster().start(3, replication_factor=3, **FAST)
    bucket = unique_bucket()
    entry = cluster.nodes[0]
    entry.s3.create_bucket(Bucket=bucket)
    body = os.urandom(64 * MIB)
    chunks = [body[i:i + MIB] for i in range(0, len(body), MIB)]
    victim = next(n for n in cluster.followers() if n.id != entry.id)
    result = {}

    def upload():
        result["put"] = signed_put(entry, bucket, "big", chunks, len(body), pause=0.03)

    uploader = threading.Thread(target=upload)
    uploader.start()
    time.sleep(0.8)  # mid-stream: about a third of the body is through
    victim.stop(signal.SIGKILL)
    uploader.join(120)
    status, answer = result["put"]
    survivors = [n for n in cluster.nodes.values() if n.running()]
    if status == 200:
        # Acknowledged: a write quorum holds it, and it reads back whole.
        count = copies(survivors)
        assert max(count.values(), default=0) >= 2, count
        for node in survivors:
            got = node.s3.get_object(Bucket=bucket, Key="big")["Body"].read()
            assert sha(got) == sha(body)
    else:
        # Refused: nothing was committed.
        assert status in (0, 500, 503), (status, answer)
        with pytest.raises(ClientError):
            entry.s3.head_object(Bucket=bucket, Key="big")
    # The target comes back and the repair restores three copies.
    victim.start()
    cluster.wait_members({0, 1, 2})
    if status == 200:
        wait_replicated(cluster, cluster.nodes.values(), 1, 3, timeout=90)
        got = victim.s3.get_object(Bucket=bucket, Key="big")["Body"].read()
        assert sha(got) == sha(body)


def test_writes_fail_with_503_when_fewer_than_a_quorum_take_them(make_cluster):
    cluster = make_cluster().start(3, replication_factor=3, **FAST)
    bucket = unique_bucket()
    entry = cluster.nodes[0]
    entry.s3.create_bucket(Bucket=bucket)
    # Two targets cannot store anything: their temp dir is not a directory.
    broken = [cluster.nodes[1], cluster.nodes[2]]
    for node in broken:
        tmp = node.data_dir / "tmp"
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
        tmp.write_text("not a directory")
    with pytest.raises(ClientError) as refused:
        entry.s3.put_object(Bucket=bucket, Key="k", Body=os.urandom(MIB))
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    with pytest.raises(ClientError):
        entry.s3.head_object(Bucket=bucket, Key="k")
    assert copies(cluster.nodes.values()) == Counter(), "the copy that was made is removed"
    # Small objects travel in the command and still work.
    entry.s3.put_object(Bucket=bucket, Key="small", Body=b"inline")
    for node in broken:
        tmp = node.data_dir / "tmp"
        tmp.unlink()
        tmp.mkdir()
    objects = put_objects(entry, bucket, 1, MIB)
    verify(cluster.nodes[2], bucket, objects)


def test_writes_route_around_a_down_target_and_the_repair_moves_the_copy_back(make_cluster):
    cluster = make_cluster().start(5, replication_factor=3, **FAST)
    bucket = unique_bucket()
    writer = cluster.leader()
    writer.s3.create_bucket(Bucket=bucket)
    down = next(n for n in cluster.followers() if n.id != writer.id)
    down.stop(signal.SIGKILL)
    live = [n for n in cluster.nodes.values() if n is not down]
    # The leader's heartbeats find the node gone within a heartbeat or two.
    time.sleep(1.5)
    objects = put_objects(writer, bucket, 12, 128 * 1024)
    # Every blob still got all three copies: the writes whose placement
    # names the down node went to the next-ranked live member instead (the
    # repair alone would only ever copy to the down node itself).
    wait_for("three copies of each blob on the live nodes",
             lambda: len(copies(live)) == 12 and set(copies(live).values()) == {3}, 20, interval=0.3)
    for node in live:
        verify(node, bucket, objects)
    # Back, the node gets the copies its placement names and the stand-ins'
    # copies go: exactly three of each, each on its placement.
    down.start()
    wait_replicated(cluster, cluster.nodes.values(), 12, 3, timeout=60)
    verify(down, bucket, objects)


def test_a_destroyed_data_dir_is_replaced_and_gets_its_copies_back(make_cluster):
    cluster = make_cluster().start(3, replication_factor=3, **FAST)
    bucket = unique_bucket()
    writer = cluster.nodes[0]
    writer.s3.create_bucket(Bucket=bucket)
    objects = put_objects(writer, bucket, 10, 200 * 1024)
    wait_replicated(cluster, cluster.nodes.values(), 10, 3)
    lost = cluster.nodes[2]
    lost.stop(signal.SIGKILL)
    lost.wipe()
    # Clients keep writing while the node is gone; everything stays readable.
    more = put_objects(writer, bucket, 5, 200 * 1024, prefix="during")
    for node in (cluster.nodes[0], cluster.nodes[1]):
        verify(node, bucket, {**objects, **more})
    # The replacement: the same id with an empty disk rejoins by itself.
    lost.start()
    cluster.wait_members({0, 1, 2})
    wait_replicated(cluster, cluster.nodes.values(), 15, 3, timeout=90)
    verify(lost, bucket, {**objects, **more})


def test_a_flipped_byte_is_detected_not_served_and_repaired(make_cluster):
    cluster = make_cluster().start(3, replication_factor=3, **FAST)
    bucket = unique_bucket()
    cluster.nodes[0].s3.create_bucket(Bucket=bucket)
    body = os.urandom(MIB)
    cluster.nodes[0].s3.put_object(Bucket=bucket, Key="read", Body=body)
    wait_replicated(cluster, cluster.nodes.values(), 1, 3)
    reader = cluster.nodes[1]
    (name, path), = blob_files(reader).items()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    # A read through the node with the bad copy never returns the bad bytes:
    # the stream is cut before its last chunk (or, once the copy is dropped,
    # comes whole from another holder).
    try:
        got = reader.s3.get_object(Bucket=bucket, Key="read")["Body"].read()
    except Exception:
        got = None
    assert got is None or sha(got) == sha(body), "a corrupt copy was served"
    wait_for("the bad copy replaced",
             lambda: sha(blob_files(reader)[name].read_bytes()) == sha(body) if name in blob_files(reader) else False,
             60, interval=0.3)
    verify(reader, bucket, {"read": body})
    dropped = [line for line in reader.metrics().splitlines()
               if line.startswith("bleepstore_blob_copies_dropped_total")]
    assert dropped and float(dropped[0].split()[-1]) >= 1, dropped
    # The scrub finds a bad copy nobody reads.
    body2 = os.urandom(512 * 1024)
    cluster.nodes[0].s3.put_object(Bucket=bucket, Key="scrub", Body=body2)
    wait_replicated(cluster, cluster.nodes.values(), 2, 3)
    idle = cluster.nodes[2]
    files = blob_files(idle)
    target = next(p for n, p in files.items() if n != name)
    data = bytearray(target.read_bytes())
    data[0] ^= 0xFF
    target.write_bytes(bytes(data))
    wait_for("the scrub replaced the bad copy",
             lambda: target.exists() and sha(target.read_bytes()) == sha(body2), 60, interval=0.3)
    metrics = idle.metrics()
    bad = [line for line in metrics.splitlines() if line.startswith("bleepstore_scrub_bad_copies_total")]
    assert bad and float(bad[0].split()[-1]) >= 1, bad


def test_a_member_is_drained_before_it_leaves(make_cluster):
    cluster = make_cluster().start(5, replication_factor=3, **FAST)
    bucket = unique_bucket()
    cluster.nodes[0].s3.create_bucket(Bucket=bucket)
    objects = put_objects(cluster.nodes[0], bucket, 12, 128 * 1024)
    wait_replicated(cluster, cluster.nodes.values(), 12, 3)
    leaving = cluster.nodes[4]
    held_before = len(blob_files(leaving))
    assert held_before > 0
    status, view = cluster.nodes[0].admin("DELETE", "/admin/v1/cluster/members/4")
    assert status == 202, view
    member = next(m for m in view["members"] if m["id"] == 4)
    assert member["blobs"]["draining"] and member["blobs"]["drain_queue"] == held_before, member
    wait_for("node 4 drained and removed",
             lambda: 4 not in {m["id"] for m in cluster.nodes[0].view()["members"]}, 60, interval=0.3)
    staying = [cluster.nodes[i] for i in (0, 1, 2, 3)]
    count = copies(staying)
    assert len(count) == 12 and set(count.values()) == {3}, count
    leaving.stop(signal.SIGTERM)
    for node in staying:
        verify(node, bucket, objects)
    status, _ = cluster.nodes[0].admin("DELETE", "/admin/v1/cluster/members/4")
    assert status == 404
    # `force` removes at once, without a drain: the repair then restores the
    # copies the member took with it.
    status, view = cluster.nodes[0].admin("DELETE", "/admin/v1/cluster/members/3?force=true")
    assert status == 200, view
    assert 3 not in {m["id"] for m in view["members"]}
    cluster.nodes[3].stop(signal.SIGKILL)
    wait_replicated(cluster, [cluster.nodes[i] for i in (0, 1, 2)], 12, 3)
    for node in (cluster.nodes[0], cluster.nodes[2]):
        verify(node, bucket, objects)


def test_scale_three_to_five_rebalances(make_cluster):
    cluster = make_cluster().start(3, replication_factor=3, **FAST)
    bucket = unique_bucket()
    cluster.nodes[0].s3.create_bucket(Bucket=bucket)
    objects = put_objects(cluster.nodes[0], bucket, 30, 64 * 1024)
    wait_replicated(cluster, cluster.nodes.values(), 30, 3)
    cluster.grow([3, 4])
    cluster.wait_members({0, 1, 2, 3, 4})
    wait_replicated(cluster, cluster.nodes.values(), 30, 3, timeout=90)
    held = {n.id: len(blob_files(n)) for n in cluster.nodes.values()}
    assert held[3] > 0 and held[4] > 0 and sum(held.values()) == 90, held
    for node in (cluster.nodes[4], cluster.nodes[1]):
        verify(node, bucket, objects)
    report = cluster.leader().view()["blobs"]
    assert report["copies_made"] >= 0 and report["blobs"] == 30, report


def test_the_orphan_sweep_removes_copies_no_metadata_lists_on_that_node(make_cluster):
    cluster = make_cluster()
    for i in range(3):
        cluster.add_node(i).extra = {"storage": {"orphan_grace_secs": 1, "sweep_interval_secs": 1}}
    cluster.start(0, replication_factor=2, **FAST)
    bucket = unique_bucket()
    cluster.nodes[0].s3.create_bucket(Bucket=bucket)
    objects = put_objects(cluster.nodes[0], bucket, 6, 100 * 1024)
    count = wait_replicated(cluster, cluster.nodes.values(), 6, 2)
    # A copy on a node the metadata does not list for it (as a repair whose
    # command never committed leaves), and a blob nothing references.
    listed = {n.id: set(blob_files(n)) for n in cluster.nodes.values()}
    name = next(b for b in count if any(b not in listed[n] for n in listed))
    stranger = next(n for n in cluster.nodes.values() if name not in listed[n.id])
    source = next(p for n in cluster.nodes.values() for b, p in blob_files(n).items() if b == name)
    stray = stranger.data_dir / "blobs" / name[:2] / name[2:4] / name
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(source.read_bytes())
    orphan = "f" * 32
    lonely = stranger.data_dir / "blobs" / "ff" / "ff" / orphan
    lonely.parent.mkdir(parents=True, exist_ok=True)
    lonely.write_bytes(b"nobody refers to this")
    old = time.time() - 3600
    for path in (stray, lonely):
        os.utime(path, (old, old))
    wait_for("the stray copy and the orphan swept",
             lambda: not stray.exists() and not lonely.exists(), 30, interval=0.3)
    count = copies(cluster.nodes.values())
    assert len(count) == 6 and set(count.values()) == {2}, count
    for node in cluster.nodes.values():
        verify(node, bucket, objects)

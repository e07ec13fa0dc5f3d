"""Three nodes answer as one endpoint: what one node acknowledged, every
node shows at once, and every object is readable through every node."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest
from botocore.exceptions import ClientError

from conftest import unique_bucket


@pytest.fixture
def three(make_cluster):
    return make_cluster().start(3)


def code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def test_view_reports_leader_roles_and_lag(three):
    view = three.nodes[1].view()
    assert view["mode"] == "cluster"
    assert view["leader"] in three.nodes
    assert view["term"] >= 1
    assert view["healthy"] is True
    assert sorted(m["id"] for m in view["members"]) == [0, 1, 2]
    for member in view["members"]:
        assert member["role"] == "voter"
        assert member["lag"] == 0
        assert member["matched"] == view["committed_index"]
    # Every node names the same leader and cluster id.
    views = [n.view() for n in three.nodes.values()]
    assert len({v["leader"] for v in views}) == 1
    assert len({v["cluster_id"] for v in views}) == 1


def test_writes_through_one_node_are_visible_through_the_others_at_once(three):
    n0, n1, n2 = (three.nodes[i] for i in range(3))
    bucket = unique_bucket()
    n1.s3.create_bucket(Bucket=bucket)
    for i in range(20):
        body = os.urandom(100 + i)
        via = three.nodes[i % 3]
        put = via.s3.put_object(Bucket=bucket, Key=f"k{i}", Body=body)
        # The very next request, through another node, sees it.
        other = three.nodes[(i + 1) % 3]
        got = other.s3.get_object(Bucket=bucket, Key=f"k{i}")
        assert got["Body"].read() == body
        assert got["ETag"] == put["ETag"]
        third = three.nodes[(i + 2) % 3]
        assert third.s3.head_object(Bucket=bucket, Key=f"k{i}")["ContentLength"] == len(body)
    for node in (n0, n1, n2):
        keys = [o["Key"] for o in node.s3.list_objects_v2(Bucket=bucket)["Contents"]]
        assert sorted(keys) == sorted(f"k{i}" for i in range(20))
    n2.s3.delete_object(Bucket=bucket, Key="k0")
    with pytest.raises(ClientError) as e:
        n0.s3.head_object(Bucket=bucket, Key="k0")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert bucket in [b["Name"] for b in n0.s3.list_buckets()["Buckets"]]


def test_large_objects_ranges_and_multipart_stream_from_the_holder(three):
    n0, n1, n2 = (three.nodes[i] for i in range(3))
    bucket = unique_bucket()
    n0.s3.create_bucket(Bucket=bucket)
    big = os.urandom(9 * 1024 * 1024 + 7)
    n0.s3.put_object(Bucket=bucket, Key="big", Body=big)
    for node in (n1, n2):
        got = node.s3.get_object(Bucket=bucket, Key="big")["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest()
        part = node.s3.get_object(Bucket=bucket, Key="big", Range="bytes=5000000-5000099")
        assert part["Body"].read() == big[5000000:5000100]
    # A multipart upload whose parts arrive through different nodes: each
    # part's blob stays where it was written, the object reads everywhere.
    upload = n0.s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    parts, data = [], []
    for number, node in enumerate((n0, n1, n2), start=1):
        chunk = os.urandom(5 * 1024 * 1024 if number < 3 else 1234)
        data.append(chunk)
        etag = node.s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload, PartNumber=number, Body=chunk
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    n1.s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    whole = b"".join(data)
    for node in (n0, n1, n2):
        assert node.s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == whole
    # A server-side copy through a node that holds none of the source.
    n2.s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "big"})
    assert n1.s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == big


def test_racing_creates_through_different_nodes_let_exactly_one_win(three):
    bucket = unique_bucket()
    three.nodes[0].s3.create_bucket(Bucket=bucket)
    for round_ in range(5):
        key = f"race-{round_}"
        results: dict[int, object] = {}
        barrier = threading.Barrier(3)

        def create(node_id: int):
            node = three.nodes[node_id]
            barrier.wait()
            try:
                node.s3.put_object(
                    Bucket=bucket, Key=key, Body=f"from {node_id}".encode(), IfNoneMatch="*"
                )
                results[node_id] = "ok"
            except ClientError as e:
                results[node_id] = code(e)

        threads = [threading.Thread(target=create, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        winners = [i for i, r in results.items() if r == "ok"]
        assert len(winners) == 1, results
        assert all(r in ("PreconditionFailed", "ConditionalRequestConflict") for i, r in results.items() if i not in winners), results
        body = three.nodes[(round_ + 1) % 3].s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == f"from {winners[0]}".encode()


def test_if_match_is_a_compare_and_set_across_nodes(three):
    bucket = unique_bucket()
    n0, n1, n2 = (three.nodes[i] for i in range(3))
    n0.s3.create_bucket(Bucket=bucket)
    etag = n0.s3.put_object(Bucket=bucket, Key="counter", Body=b"0")["ETag"]
    # Both writers read the same ETag; only the first swap may succeed.
    n1.s3.put_object(Bucket=bucket, Key="counter", Body=b"1", IfMatch=etag)
    with pytest.raises(ClientError) as e:
        n2.s3.put_object(Bucket=bucket, Key="counter", Body=b"2", IfMatch=etag)
    assert code(e.value) == "PreconditionFailed"
    assert n0.s3.get_object(Bucket=bucket, Key="counter")["Body"].read() == b"1"

    # Many concurrent increments through all nodes: with CAS, none is lost.
    def incrementer(node, times, done):
        for _ in range(times):
            while True:
                got = node.s3.get_object(Bucket=bucket, Key="counter")
                value = int(got["Body"].read())
                try:
                    node.s3.put_object(
                        Bucket=bucket, Key="counter", Body=str(value + 1).encode(), IfMatch=got["ETag"]
                    )
                    done.append(1)
                    break
                except ClientError as e:
                    if code(e) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                        raise

    done: list[int] = []
    threads = [threading.Thread(target=incrementer, args=(n, 6, done)) for n in (n0, n1, n2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(done) == 18
    assert int(n2.s3.get_object(Bucket=bucket, Key="counter")["Body"].read()) == 1 + 18


def test_a_bad_copy_is_never_served(three):
    """A copy that lost bytes on a holder is never served as the object."""
    bucket = unique_bucket()
    n0 = three.nodes[0]
    n0.s3.create_bucket(Bucket=bucket)
    body = os.urandom(300_000)
    n0.s3.put_object(Bucket=bucket, Key="victim", Body=body)
    blobs = [p for p in (n0.data_dir / "blobs").rglob("*") if p.is_file() and p.stat().st_size == len(body)]
    assert len(blobs) == 1, blobs
    data = bytearray(blobs[0].read_bytes())
    data[1000] ^= 0xFF
    blobs[0].write_bytes(bytes(data))
    # Through every node: the CRC32C check fails on the bad copy and the
    # response is cut, or the bytes come from a good copy; never the bad ones.
    for node in three.nodes.values():
        try:
            got = node.s3.get_object(Bucket=bucket, Key="victim")["Body"].read()
        except Exception:
            got = None
        assert got is None or got == body, f"node {node.id} served a bad copy"


def test_readiness_and_local_reads(make_cluster):
    cluster = make_cluster().start(3, read_consistency="local")
    bucket = unique_bucket()
    cluster.nodes[0].s3.create_bucket(Bucket=bucket)
    cluster.nodes[0].s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    cluster.wait_applied()
    # With local reads a node answers from what it applied.
    assert cluster.nodes[2].s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"

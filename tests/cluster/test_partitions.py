"""Partitions made with the link proxies: a cut-off minority refuses writes
and linearizable reads with 503 (never a stale answer), the majority goes
on, and the minority rejoins and converges when the network heals."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from conftest import client_for, unique_bucket, wait_for
from linearizability import check
from workload import History


def refused_with_503(call) -> bool:
    try:
        call()
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    return False


@pytest.mark.parametrize("mode", ["drop", "reset"])
def test_an_isolated_leader_stops_answering_and_rejoins(make_cluster, mode):
    cluster = make_cluster().start(3)
    bucket = unique_bucket()
    old = cluster.leader()
    old.s3.create_bucket(Bucket=bucket)
    old.s3.put_object(Bucket=bucket, Key="k", Body=b"before")
    cluster.links.isolate(old.id, mode)
    majority = [n for n in cluster.running() if n.id != old.id]
    new = cluster.leader(among=majority, timeout=30)
    assert new.id != old.id
    new.s3.put_object(Bucket=bucket, Key="k", Body=b"after")
    # The old leader must not answer from its stale state as if current.
    minority = client_for(old.endpoint, read_timeout=30)
    assert refused_with_503(lambda: minority.get_object(Bucket=bucket, Key="k"))
    assert refused_with_503(lambda: minority.put_object(Bucket=bucket, Key="x", Body=b"x"))
    assert refused_with_503(lambda: minority.head_object(Bucket=bucket, Key="k"))
    cluster.links.heal()
    wait_for(
        "the old leader to serve the new value",
        lambda: old.s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"after",
        30,
    )
    assert cluster.leader().id in cluster.nodes
    cluster.wait_members({0, 1, 2})


def test_one_way_partitions(make_cluster):
    cluster = make_cluster().start(3)
    bucket = unique_bucket()
    leader = cluster.leader()
    leader.s3.create_bucket(Bucket=bucket)
    # The leader can no longer reach anyone, though everyone reaches it:
    # followers stop hearing heartbeats and elect a new leader, whose higher
    # term makes the old one step down.
    cluster.links.isolate(leader.id, "drop", one_way="out")
    others = [n for n in cluster.running() if n.id != leader.id]
    new = wait_for(
        "a new leader among the others",
        lambda: (lambda l: l if l.id != leader.id else None)(cluster.leader(among=others)),
        30,
    )
    new.s3.put_object(Bucket=bucket, Key="one-way", Body=b"v1")
    for node in others:
        assert node.s3.get_object(Bucket=bucket, Key="one-way")["Body"].read() == b"v1"
    cluster.links.heal()
    cluster.wait_members({0, 1, 2})
    assert leader.s3.get_object(Bucket=bucket, Key="one-way")["Body"].read() == b"v1"
    # A follower that cannot be reached (but can call out) falls behind and
    # catches up once healed; the majority never stops.
    follower = cluster.followers()[0]
    cluster.links.isolate(follower.id, "drop", one_way="in")
    for i in range(10):
        cluster.leader().s3.put_object(Bucket=bucket, Key=f"in-{i}", Body=b"x")
    cluster.links.heal()
    cluster.wait_applied()
    assert follower.s3.get_object(Bucket=bucket, Key="in-9")["Body"].read() == b"x"


def test_linearizable_history_across_a_partition_and_a_crash(make_cluster):
    """PUT / conditional PUT / DELETE / GET on a few keys through random
    nodes while the leader is partitioned away and healed, then killed:
    the recorded history must be linearizable, per key."""
    cluster = make_cluster().start(3)
    bucket = unique_bucket()
    cluster.nodes[0].s3.create_bucket(Bucket=bucket)
    history = History(cluster, bucket, keys=["a", "b", "c"])

    def faults():
        time.sleep(3)
        leader = cluster.leader()
        cluster.links.isolate(leader.id, "drop")
        time.sleep(4)
        cluster.links.heal()
        time.sleep(3)
        cluster.leader().stop()
        time.sleep(3)
        for node in cluster.nodes.values():
            if not node.running():
                node.start(wait_ready=False)

    history.run(threads=5, seconds=16, during=faults)
    known = [op for op in history.ops if op.known]
    assert len(known) > 100, f"too few completed operations ({len(known)})"
    assert any(op.kind == "get" and op.result is not None for op in known)
    assert check(history.ops) == [], "the history is not linearizable"

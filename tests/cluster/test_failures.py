"""Crashes and restarts under write load: no acknowledged write is lost,
writes resume within seconds, stopped nodes catch up (from the log, or from
a snapshot when the log was compacted past them), and a node whose data dir
was lost rejoins its cluster instead of founding a second one."""

from __future__ import annotations

import signal
import time

from conftest import unique_bucket, wait_for
from workload import Writers, verify_acknowledged

# How long writes may stall after the leader dies: an election timeout or
# two, plus the clients' own retry onto another node.
FAILOVER_BOUND = 15.0


def test_kill_9_of_the_leader_under_load(make_cluster):
    cluster = make_cluster().start(3)
    bucket = unique_bucket()
    cluster.nodes[0].s3.create_bucket(Bucket=bucket)
    with Writers(cluster, bucket, count=4) as writers:
        wait_for("some writes", lambda: len(writers.acked) >= 30)
        leader = cluster.leader()
        killed_at = time.monotonic()
        leader.stop(signal.SIGKILL)
        new_leader = cluster.leader()
        assert new_leader.id != leader.id
        resumed = wait_for("writes after the kill", lambda: writers.first_ack_after(killed_at), 30)
        assert resumed - killed_at < FAILOVER_BOUND, f"writes stalled {resumed - killed_at:.1f}s"
        wait_for("more writes on the survivors", lambda: writers.acks_after(killed_at) >= 30)
    for node in cluster.running():
        verify_acknowledged(node, bucket, writers.acked)
    # The old leader restarts, catches up from the log, and serves it all.
    leader.start()
    cluster.wait_applied()
    verify_acknowledged(leader, bucket, writers.acked)
    view = leader.view()
    assert sorted(m["id"] for m in view["members"] if m["role"] == "voter") == [0, 1, 2]


def test_kill_9_of_a_follower_and_rolling_restart(make_cluster):
    cluster = make_cluster().start(3)
    bucket = unique_bucket()
    cluster.nodes[1].s3.create_bucket(Bucket=bucket)
    with Writers(cluster, bucket, count=3) as writers:
        wait_for("some writes", lambda: len(writers.acked) >= 20)
        follower = cluster.followers()[0]
        follower.stop(signal.SIGKILL)
        mark = time.monotonic()
        wait_for("writes without the follower", lambda: writers.acks_after(mark) >= 20)
        follower.start()
        # Rolling restart: SIGTERM each node in turn, the leader hands over
        # leadership before it exits, clients keep writing.
        for node in list(cluster.nodes.values()):
            node.stop(signal.SIGTERM)
            mark = time.monotonic()
            wait_for(f"writes while node {node.id} restarts", lambda: writers.acks_after(mark) >= 5, 30)
            node.start()
            cluster.wait_applied()
    for node in cluster.nodes.values():
        verify_acknowledged(node, bucket, writers.acked)
    # Nothing was applied twice: the listing has exactly the acknowledged keys
    # plus, at most, writes whose acknowledgement the client never saw.
    listed = []
    for page in cluster.nodes[0].s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        listed += [o["Key"] for o in page.get("Contents", [])]
    assert len(listed) == len(set(listed))
    assert len(listed) <= len(writers.acked) + len(writers.errors)


def test_a_node_far_behind_catches_up_from_a_snapshot(make_cluster):
    cluster = make_cluster().start(3, snapshot_every=40)
    bucket = unique_bucket()
    leader = cluster.leader()
    leader.s3.create_bucket(Bucket=bucket)
    lagging = cluster.followers()[0]
    lagging.stop(signal.SIGKILL)
    acked = {}
    for i in range(150):
        body = f"v{i}".encode()
        node = cluster.running()[i % 2]
        node.s3.put_object(Bucket=bucket, Key=f"k{i:03d}", Body=body)
        acked[f"k{i:03d}"] = body
    status, _ = cluster.leader().admin("POST", "/admin/v1/cluster/snapshot")
    assert status == 202
    behind = max(m["matched"] or 0 for m in cluster.leader().view()["members"] if m["id"] == lagging.id)
    wait_for(
        "the log compacted past the stopped node",
        lambda: (cluster.leader().view()["purged_index"] or 0) > behind,
    )
    lagging.start()
    cluster.wait_applied()
    verify_acknowledged(lagging, bucket, acked)
    # The entries it missed were gone from the leader's log: it can only
    # have caught up by installing a snapshot that covers them.
    purged = cluster.leader().view()["purged_index"]
    assert (lagging.view()["snapshot_index"] or 0) >= purged


def test_a_wiped_node_rejoins_instead_of_founding_a_second_cluster(make_cluster):
    cluster = make_cluster().start(3)
    bucket = unique_bucket()
    survivor = cluster.nodes[1]
    survivor.s3.create_bucket(Bucket=bucket)
    acked = {}
    for i in range(20):
        survivor.s3.put_object(Bucket=bucket, Key=f"k{i}", Body=f"v{i}".encode())
        acked[f"k{i}"] = f"v{i}".encode()
    cluster_id = survivor.view()["cluster_id"]
    # Node 0 is the one that founds a cluster on a pristine start: losing its
    # disk is the dangerous case.
    node0 = cluster.nodes[0]
    node0.stop(signal.SIGKILL)
    node0.wipe()
    node0.start()
    cluster.wait_members({0, 1, 2})
    cluster.wait_applied()
    assert node0.view()["cluster_id"] == cluster_id
    assert {n.view()["cluster_id"] for n in cluster.running()} == {cluster_id}
    # It serves the metadata and the blobs other nodes hold.
    verify_acknowledged(node0, bucket, acked)
    survivor.s3.put_object(Bucket=bucket, Key="after", Body=b"after")
    assert node0.s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"after"

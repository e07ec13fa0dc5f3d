"""Scaling without downtime through the admin API: a standalone server with
data becomes the first member of a cluster, then 1 → 3 → 5 → 3 members
while a client keeps writing and reading."""

from __future__ import annotations

import signal
import time

from conftest import unique_bucket, wait_for
from workload import Writers, verify_acknowledged


def test_standalone_with_data_grows_to_three_then_five_then_shrinks_to_three(make_cluster):
    cluster = make_cluster()
    first = cluster.add_node(0)
    # A standalone server (cluster mode off) that already holds data.
    first.write_config({"enabled": False})
    first.start()
    bucket = unique_bucket()
    first.s3.create_bucket(Bucket=bucket)
    before = {f"old-{i}": f"old {i}".encode() for i in range(25)}
    for key, body in before.items():
        first.s3.put_object(Bucket=bucket, Key=key, Body=body)
    first.stop(signal.SIGTERM)
    # The same data dir in cluster mode: a group of one, listing only itself.
    cluster.configure(first, peers=[0])
    first.start()
    verify_acknowledged(first, bucket, before)
    assert first.view()["mode"] == "cluster"

    with Writers(cluster, bucket, count=2, pause=0.02) as writers:
        cluster.grow([1, 2])
        cluster.wait_members({0, 1, 2})
        cluster.grow([3, 4])
        cluster.wait_members({0, 1, 2, 3, 4})
        mark = time.monotonic()
        wait_for("writes on five nodes", lambda: writers.acks_after(mark) >= 10)
        # Shrink: remove two members (one of them the leader, if it is 3 or 4,
        # hands over first), then stop them.
        for i in (4, 3):
            # Drained first (202), then out of the group by itself.
            status, body = cluster.nodes[0].admin("DELETE", f"/admin/v1/cluster/members/{i}")
            assert status == 202, body
            wait_for(f"node {i} out of the membership",
                     lambda: i not in {m["id"] for m in cluster.nodes[0].view()["members"]}, 30)
            cluster.nodes[i].stop(signal.SIGTERM)
        cluster.wait_members({0, 1, 2})
        mark = time.monotonic()
        wait_for("writes on three nodes again", lambda: writers.acks_after(mark) >= 10)
    acked = {**before, **writers.acked}
    for i in (0, 1, 2):
        verify_acknowledged(cluster.nodes[i], bucket, acked)


def test_membership_changes_are_validated(make_cluster):
    cluster = make_cluster().start(3)
    leader = cluster.leader()
    status, body = leader.admin("POST", "/admin/v1/cluster/members", {"id": 9, "address": "no-port"})
    assert status == 400 and body["error"] == "MalformedRequest", body
    status, body = leader.admin("POST", "/admin/v1/cluster/members", {"id": 1, "address": "127.0.0.1:1"})
    assert status == 409, body
    status, body = leader.admin("DELETE", "/admin/v1/cluster/members/77")
    assert status == 404, body
    status, body = cluster.nodes[1].admin("GET", "/admin/v1/cluster")
    assert status == 200
    # Without the token, nothing.
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(leader.ops + "/admin/v1/cluster", timeout=5)
        raise AssertionError("the admin API answered without a token")
    except urllib.error.HTTPError as e:
        assert e.code == 401


def test_leadership_transfer_and_readiness(make_cluster):
    cluster = make_cluster().start(3)
    leader = cluster.leader()
    target = next(n for n in cluster.nodes.values() if n.id != leader.id)
    status, body = leader.admin("POST", "/admin/v1/cluster/leader", {"to": target.id})
    assert status in (200, 202), body
    wait_for("the new leader", lambda: cluster.leader().id == target.id, 20)
    # A node that lost the group is not ready.
    cluster.links.isolate(leader.id, "reset")
    import urllib.error
    import urllib.request

    def not_ready():
        try:
            urllib.request.urlopen(leader.ops + "/ready", timeout=2)
            return False
        except urllib.error.HTTPError as e:
            return e.code == 503

    wait_for("an isolated follower reports not ready", not_ready, 30)
    cluster.links.heal()
    leader.wait_ready()

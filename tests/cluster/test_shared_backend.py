"""A cluster on a shared (cloud) backend: three nodes on one moto bucket.
Each blob is stored once and read by every node from the bucket; a blob an
overwrite frees is deleted only after `storage.shared_free_delay_secs`,
because a GET through another node may still be streaming it."""

from __future__ import annotations

import hashlib
import os
import time
import uuid

import boto3
import pytest
from botocore.config import Config

from conftest import unique_bucket, wait_for

MIB = 1024 * 1024


@pytest.fixture
def moto_endpoint() -> str:
    endpoint = os.environ.get("BLEEPSTORE_TEST_S3_ENDPOINT")
    if not endpoint:
        if os.environ.get("BLEEPSTORE_REQUIRE_EMULATORS") == "1":
            pytest.fail("BLEEPSTORE_TEST_S3_ENDPOINT is not set (tests/backends/emulators.py up)")
        pytest.skip("no moto (BLEEPSTORE_TEST_S3_ENDPOINT); scripts/test.sh starts one")
    return endpoint


def upstream(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(s3={"addressing_style": "path"}))


def upstream_keys(client, bucket: str, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_nodes_share_one_copy_and_freed_blobs_outlive_other_nodes_readers(make_cluster, moto_endpoint):
    bucket = os.environ.get("BLEEPSTORE_TEST_BUCKET", "bleepstore-blobs")
    prefix = f"cluster-{uuid.uuid4().hex[:8]}/"
    storage = {
        "backend": "aws", "inline_max": 0, "shared_free_delay_secs": 4,
        "aws": {"bucket": bucket, "endpoint": moto_endpoint, "region": "us-east-1",
                "force_path_style": True, "prefix": prefix,
                "access_key_id": {"value": "testing"}, "secret_access_key": {"value": "testing"}},
    }
    cluster = make_cluster()
    for i in range(3):
        cluster.add_node(i).extra = {"storage": storage}
    cluster.start(0)
    moto = upstream(moto_endpoint)
    leader, follower = cluster.leader(), cluster.followers()[0]
    name = unique_bucket()
    leader.s3.create_bucket(Bucket=name)
    first = os.urandom(8 * MIB)
    leader.s3.put_object(Bucket=name, Key="k", Body=first)
    assert len(upstream_keys(moto, bucket, prefix)) == 1, "one copy for the whole cluster"
    cluster.wait_applied()
    for node in cluster.nodes.values():
        got = node.s3.get_object(Bucket=name, Key="k")["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(first).digest(), f"node {node.id}"

    # A reader on a follower is mid-stream when the leader overwrites.
    stream = follower.s3.get_object(Bucket=name, Key="k")["Body"]
    head = stream.read(MIB)
    leader.s3.put_object(Bucket=name, Key="k", Body=b"second")
    cluster.wait_applied()
    assert len(upstream_keys(moto, bucket, prefix)) == 2, "the freed blob waits out the delay"
    assert head + stream.read() == first, "the follower's reader got the whole old object"
    for node in cluster.nodes.values():
        assert node.s3.get_object(Bucket=name, Key="k")["Body"].read() == b"second"
    wait_for("the freed blob deleted after the delay",
             lambda: len(upstream_keys(moto, bucket, prefix)) == 1, 20, interval=0.3)

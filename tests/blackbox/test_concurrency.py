"""Concurrent writers, large bodies and blob accounting on disk."""

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

from conftest import ROOT_KEY, ROOT_SECRET, client_for


def blob_files(srv):
    return [p for p in (srv.data_dir / "blobs").rglob("*") if p.is_file()]


def test_large_put_with_expect_continue(s3, bucket, signed):
    data = os.urandom(12 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="large", Body=data)
    got = s3.get_object(Bucket=bucket, Key="large")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    r = signed("PUT", f"/{bucket}/expect", body=b"e" * 2_000_000, headers={"Expect": "100-continue"})
    assert r.status == 200
    assert s3.head_object(Bucket=bucket, Key="expect")["ContentLength"] == 2_000_000


def test_concurrent_overwrites_are_atomic_and_leak_nothing(private_server):
    srv = private_server()
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    c.create_bucket(Bucket="race")
    bodies = {}

    def writer(n):
        w = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
        for i in range(15):
            data = os.urandom(20_000 + n * 100 + i)
            bodies[hashlib.md5(data).hexdigest()] = data
            w.put_object(Bucket="race", Key="hot", Body=data)
            w.copy_object(Bucket="race", Key=f"copy-{n}", CopySource={"Bucket": "race", "Key": "hot"})
            got = w.get_object(Bucket="race", Key="hot")
            body = got["Body"].read()
            # Whatever version is read, its bytes match its ETag.
            assert f'"{hashlib.md5(body).hexdigest()}"' == got["ETag"]

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(writer, n) for n in range(4)]
    errors = [f.exception() for f in futures if f.exception()]
    assert not errors, errors
    listed = c.list_objects_v2(Bucket="race")["Contents"]
    assert sorted(o["Key"] for o in listed) == ["copy-0", "copy-1", "copy-2", "copy-3", "hot"]
    for o in listed:
        body = c.get_object(Bucket="race", Key=o["Key"])["Body"].read()
        assert body == bodies[o["ETag"].strip('"')]
    # Every replaced blob was freed: at most one blob per live object remains.
    distinct = {o["ETag"] for o in listed}
    assert len(blob_files(srv)) == len(distinct), (len(blob_files(srv)), len(distinct))
    for o in listed:
        c.delete_object(Bucket="race", Key=o["Key"])
    assert blob_files(srv) == []
    c.delete_bucket(Bucket="race")


def test_delete_bucket_frees_nothing_it_should_not(private_server):
    srv = private_server()
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    c.create_bucket(Bucket="one")
    c.create_bucket(Bucket="two")
    data = os.urandom(64 * 1024)  # above storage.inline_max: a blob file
    c.put_object(Bucket="one", Key="k", Body=data)
    c.copy_object(Bucket="two", Key="k", CopySource={"Bucket": "one", "Key": "k"})
    c.delete_object(Bucket="one", Key="k")
    c.delete_bucket(Bucket="one")
    assert c.get_object(Bucket="two", Key="k")["Body"].read() == data
    assert len(blob_files(srv)) == 1

"""Crash and shutdown behaviour of the real process on its own data dir."""

import hashlib
import os
import signal
import socket
import threading
import time

from conftest import ROOT_KEY, ROOT_SECRET, client_for


def test_sigkill_mid_upload_leaves_only_complete_objects(private_server):
    srv = private_server()
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    c.create_bucket(Bucket="crash")
    sent: dict[str, bytes] = {}
    for i in range(5):  # some objects that are certainly complete
        data = os.urandom(50_000 + i)
        c.put_object(Bucket="crash", Key=f"done-{i}", Body=data)
        sent[f"done-{i}"] = data

    stop = threading.Event()
    lock = threading.Lock()
    started = threading.Barrier(5)

    def writer(n: int):
        w = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
        started.wait(timeout=10)
        i = 0
        while not stop.is_set() and i < 200:
            key = f"w{n}-{i}"
            data = os.urandom(256 * 1024 + n * 1000 + i)
            with lock:
                sent[key] = data
            try:
                w.put_object(Bucket="crash", Key=key, Body=data)
            except Exception:
                return
            i += 1

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    started.wait(timeout=10)

    # Also hold a connection mid-body so the kill certainly lands during an upload.
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="PUT", url=f"{srv.endpoint}/crash/half")
    req.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    req.headers["Content-Length"] = str(4 * 1024 * 1024)
    S3SigV4Auth(Credentials(ROOT_KEY, ROOT_SECRET), "s3", "us-east-1").add_auth(req)
    sock = socket.create_connection(("127.0.0.1", srv.s3_port), timeout=5)
    head = ["PUT /crash/half HTTP/1.1", f"Host: 127.0.0.1:{srv.s3_port}"]
    head += [f"{k}: {v}" for k, v in req.headers.items() if k.lower() != "host"]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + os.urandom(1024 * 1024))

    # Wait (bounded) until a temp file of an in-flight write is on disk.
    tmp_dir = srv.data_dir / "tmp"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(tmp_dir.iterdir()):
        time.sleep(0.01)
    assert any(tmp_dir.iterdir()), "no upload was in flight"
    srv.kill(signal.SIGKILL)
    stop.set()
    sock.close()
    for t in threads:
        t.join(timeout=30)

    srv.start()
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    listed = [o for p in c.get_paginator("list_objects_v2").paginate(Bucket="crash") for o in p.get("Contents", [])]
    keys = {o["Key"] for o in listed}
    assert {f"done-{i}" for i in range(5)} <= keys
    assert "half" not in keys
    for o in listed:
        data = sent[o["Key"]]
        assert o["Size"] == len(data), o["Key"]
        body = c.get_object(Bucket="crash", Key=o["Key"])["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest(), o["Key"]
        assert o["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert list(tmp_dir.iterdir()) == [], "temp files of interrupted writes remain"
    # The store keeps working after recovery.
    c.put_object(Bucket="crash", Key="after", Body=b"alive")
    assert c.get_object(Bucket="crash", Key="after")["Body"].read() == b"alive"


def test_sigterm_graceful_shutdown(private_server):
    srv = private_server()
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    c.create_bucket(Bucket="term")
    c.put_object(Bucket="term", Key="k", Body=b"persisted")
    start = time.monotonic()
    rc = srv.kill(signal.SIGTERM, timeout=15)
    elapsed = time.monotonic() - start
    assert rc == 0, srv.log_tail()
    assert elapsed < 5, f"SIGTERM took {elapsed:.1f}s on an idle server"
    # Ports are released and the data is there after a restart.
    srv.start()
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    assert c.get_object(Bucket="term", Key="k")["Body"].read() == b"persisted"


def test_sigterm_drains_in_flight_request(private_server):
    srv = private_server()
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    c.create_bucket(Bucket="drain")
    data = os.urandom(8 * 1024 * 1024)
    result = {}

    def upload():
        try:
            result["etag"] = c.put_object(Bucket="drain", Key="big", Body=data)["ETag"]
        except Exception as e:  # noqa: BLE001
            result["error"] = e

    t = threading.Thread(target=upload)
    t.start()
    tmp_dir = srv.data_dir / "tmp"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(tmp_dir.iterdir()) and t.is_alive():
        time.sleep(0.005)
    rc = srv.kill(signal.SIGTERM, timeout=30)
    t.join(timeout=30)
    assert rc == 0, srv.log_tail()
    srv.start()
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    if "etag" in result:
        # Acknowledged → durable.
        assert c.get_object(Bucket="drain", Key="big")["Body"].read() == data
    else:
        assert c.list_objects_v2(Bucket="drain")["KeyCount"] in (0, 1)
    assert list(tmp_dir.iterdir()) == []


def _blob_files(srv) -> list:
    return [p for p in (srv.data_dir / "blobs").rglob("*") if p.is_file()]


def test_small_objects_live_in_the_metadata_and_survive_kill_9(private_server):
    """Objects up to storage.inline_max (16 KiB) are stored with their
    metadata: no blob file, every read path works, a crash keeps them, and
    overwrites and deletes free them."""
    srv = private_server()
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    c.create_bucket(Bucket="inline")
    small = {f"s{i}": os.urandom(i * 997) for i in range(1, 17)}  # up to 15.6 KiB
    for key, data in small.items():
        c.put_object(Bucket="inline", Key=key, Body=data)
    c.put_object(Bucket="inline", Key="exact", Body=b"e" * 16 * 1024)
    c.put_object(Bucket="inline", Key="sealed", Body=b"secret" * 100, ServerSideEncryption="AES256")
    assert _blob_files(srv) == []
    c.put_object(Bucket="inline", Key="big", Body=b"b" * (16 * 1024 + 1))
    assert len(_blob_files(srv)) == 1
    srv.kill(signal.SIGKILL)
    srv.start()
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)  # new ports after a restart
    for key, data in small.items():
        assert c.get_object(Bucket="inline", Key=key)["Body"].read() == data
    got = c.get_object(Bucket="inline", Key="s10", Range="bytes=100-199")["Body"].read()
    assert got == small["s10"][100:200]
    assert c.get_object(Bucket="inline", Key="sealed")["Body"].read() == b"secret" * 100
    c.copy_object(Bucket="inline", Key="copy", CopySource={"Bucket": "inline", "Key": "s5"})
    assert c.get_object(Bucket="inline", Key="copy")["Body"].read() == small["s5"]
    c.put_object(Bucket="inline", Key="s1", Body=b"replaced")
    assert c.get_object(Bucket="inline", Key="s1")["Body"].read() == b"replaced"
    c.delete_object(Bucket="inline", Key="s2")
    assert len(_blob_files(srv)) == 1


def test_inline_max_zero_stores_every_object_as_a_blob(private_server):
    srv = private_server(storage={"inline_max": 0})
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    c.create_bucket(Bucket="noinline")
    c.put_object(Bucket="noinline", Key="tiny", Body=b"tiny")
    assert len(_blob_files(srv)) == 1
    assert c.get_object(Bucket="noinline", Key="tiny")["Body"].read() == b"tiny"

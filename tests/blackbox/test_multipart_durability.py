"""Multipart uploads under concurrency, crashes and expiry, on servers of
their own so blob accounting on disk is exact."""

import hashlib
import os
import signal
import threading
import time

import pytest

from conftest import ROOT_KEY, ROOT_SECRET, client_for
from helpers import s3_error

KiB = 1024
MiB = 1024 * KiB
# Parts this small are allowed by configuring the server's minimum.
SMALL = {"min_part_size": 64 * KiB}


def blob_files(srv) -> list:
    return [p for p in (srv.data_dir / "blobs").rglob("*") if p.is_file()]


def etag_of(parts: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def upload_all(c, bucket, key, parts, threads=True):
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etags = {}

    def put(n, data):
        etags[n] = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data)["ETag"]

    workers = [threading.Thread(target=put, args=(i + 1, d)) for i, d in enumerate(parts)]
    for w in workers:
        w.start() if threads else w.run()
    for w in workers:
        if threads:
            w.join(timeout=60)
    done = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
    return upload_id, done


def test_parallel_parts_and_racing_completions(private_server):
    srv = private_server(multipart=SMALL)
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET, max_pool_connections=20)
    c.create_bucket(Bucket="race")
    a_parts = [os.urandom(64 * KiB + i) for i in range(8)]
    b_parts = [os.urandom(96 * KiB + i) for i in range(6)]
    a_id, a_done = upload_all(c, "race", "k", a_parts)
    b_id, b_done = upload_all(c, "race", "k", b_parts)
    assert len(a_done) == 8 and len(b_done) == 6

    results = {}

    def complete(name, upload_id, done):
        results[name] = c.complete_multipart_upload(
            Bucket="race", Key="k", UploadId=upload_id, MultipartUpload={"Parts": done}
        )["ETag"]

    racers = [
        threading.Thread(target=complete, args=("a", a_id, a_done)),
        threading.Thread(target=complete, args=("b", b_id, b_done)),
    ]
    for t in racers:
        t.start()
    for t in racers:
        t.join(timeout=60)
    assert results == {"a": etag_of(a_parts), "b": etag_of(b_parts)}

    # Whichever committed last won, whole; the loser's blobs are gone.
    got = c.get_object(Bucket="race", Key="k")
    body = got["Body"].read()
    assert (body, got["ETag"]) in [
        (b"".join(a_parts), etag_of(a_parts)),
        (b"".join(b_parts), etag_of(b_parts)),
    ]
    winner = a_parts if body == b"".join(a_parts) else b_parts
    assert len(blob_files(srv)) == len(winner)
    assert "Uploads" not in c.list_multipart_uploads(Bucket="race")


def test_abort_during_inflight_parts_leaves_nothing(private_server):
    srv = private_server(multipart=SMALL)
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET, max_pool_connections=20)
    c.create_bucket(Bucket="abort")
    upload_id = c.create_multipart_upload(Bucket="abort", Key="k")["UploadId"]
    outcomes = []
    started = threading.Barrier(7)

    def put(n):
        w = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
        started.wait(timeout=10)
        try:
            w.upload_part(Bucket="abort", Key="k", UploadId=upload_id, PartNumber=n, Body=os.urandom(2 * MiB))
            outcomes.append("ok")
        except Exception as e:  # NoSuchUpload once the abort won
            outcomes.append(e.response["Error"]["Code"])

    workers = [threading.Thread(target=put, args=(n,)) for n in range(1, 7)]
    for w in workers:
        w.start()
    started.wait(timeout=10)
    c.abort_multipart_upload(Bucket="abort", Key="k", UploadId=upload_id)
    for w in workers:
        w.join(timeout=60)
    assert len(outcomes) == 6 and set(outcomes) <= {"ok", "NoSuchUpload"}
    with s3_error("NoSuchUpload", 404):
        c.list_parts(Bucket="abort", Key="k", UploadId=upload_id)
    # Every part, finished before or after the abort, left no blob behind.
    assert blob_files(srv) == []
    c.delete_bucket(Bucket="abort")


def test_sigkill_while_parts_stream_and_while_completing(private_server):
    srv = private_server(multipart=SMALL)
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    c.create_bucket(Bucket="crash")
    parts = [os.urandom(128 * KiB + i) for i in range(4)]
    upload_id, done = upload_all(c, "crash", "resumable", parts, threads=False)

    # A large part is streaming when the server dies.
    streaming = c.create_multipart_upload(Bucket="crash", Key="interrupted")["UploadId"]

    def slow_part():
        try:
            w = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
            w.upload_part(Bucket="crash", Key="interrupted", UploadId=streaming, PartNumber=1,
                          Body=os.urandom(64 * MiB))
        except Exception:
            pass

    t = threading.Thread(target=slow_part, daemon=True)
    t.start()
    tmp = srv.data_dir / "tmp"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any(tmp.iterdir()):
        time.sleep(0.01)
    assert any(tmp.iterdir()), "the part never started streaming"
    srv.kill(signal.SIGKILL)
    t.join(timeout=30)

    srv.start()
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    assert list(tmp.iterdir()) == []
    # Both uploads survived the crash: one resumable, one abortable.
    listed = {u["UploadId"] for u in c.list_multipart_uploads(Bucket="crash")["Uploads"]}
    assert listed == {upload_id, streaming}
    assert c.list_parts(Bucket="crash", Key="interrupted", UploadId=streaming).get("Parts", []) == []
    c.abort_multipart_upload(Bucket="crash", Key="interrupted", UploadId=streaming)
    assert len(blob_files(srv)) == len(parts), "only the resumable upload's parts remain"

    # Kill while CompleteMultipartUpload commits: afterwards the upload either
    # completed whole or is still there to complete; never a torn object.
    def complete():
        try:
            c.complete_multipart_upload(Bucket="crash", Key="resumable", UploadId=upload_id,
                                        MultipartUpload={"Parts": done})
        except Exception:
            pass

    t = threading.Thread(target=complete, daemon=True)
    t.start()
    srv.kill(signal.SIGKILL)
    t.join(timeout=30)
    srv.start()
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    uploads = [u["UploadId"] for u in c.list_multipart_uploads(Bucket="crash").get("Uploads", [])]
    if uploads:
        assert uploads == [upload_id]
        with s3_error("NoSuchKey", 404):
            c.get_object(Bucket="crash", Key="resumable")
        c.complete_multipart_upload(Bucket="crash", Key="resumable", UploadId=upload_id,
                                    MultipartUpload={"Parts": done})
    got = c.get_object(Bucket="crash", Key="resumable")
    assert got["ETag"] == etag_of(parts)
    assert got["Body"].read() == b"".join(parts)
    assert len(blob_files(srv)) == len(parts)


def test_expired_uploads_are_aborted_and_freed(private_server):
    srv = private_server(
        multipart={"upload_expiry_secs": 1},
        storage={"sweep_interval_secs": 1},
    )
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    c.create_bucket(Bucket="expiry")
    upload_id = c.create_multipart_upload(Bucket="expiry", Key="old")["UploadId"]
    c.upload_part(Bucket="expiry", Key="old", UploadId=upload_id, PartNumber=1, Body=b"x" * 100_000)
    assert len(blob_files(srv)) == 1
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "Uploads" in c.list_multipart_uploads(Bucket="expiry"):
        time.sleep(0.2)
    assert "Uploads" not in c.list_multipart_uploads(Bucket="expiry")
    assert blob_files(srv) == []
    with s3_error("NoSuchUpload", 404):
        c.upload_part(Bucket="expiry", Key="old", UploadId=upload_id, PartNumber=2, Body=b"late")

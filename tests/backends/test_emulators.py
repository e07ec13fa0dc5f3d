"""The harness itself: each emulator really stores and returns an object, the
upload styles the backends will use work against it, and kill/restart do
what fault tests expect."""

from __future__ import annotations

import os
import urllib.parse

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from botocore.exceptions import ClientError

import emulators

MiB = 1024 * 1024


def http() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # loopback only: no proxies, no CA bundles from the machine
    return s


# --- moto (S3) ---------------------------------------------------------------

def test_moto_put_get(moto, bucket):
    s3 = moto.client()
    s3.put_object(Bucket=bucket, Key="dir/hello.txt", Body=b"hello s3")
    assert s3.get_object(Bucket=bucket, Key="dir/hello.txt")["Body"].read() == b"hello s3"
    assert "dir/hello.txt" in moto.list_keys(bucket, prefix="dir/")
    s3.delete_object(Bucket=bucket, Key="dir/hello.txt")
    assert moto.list_keys(bucket, prefix="dir/") == []


def test_moto_multipart(moto, bucket):
    s3 = moto.client()
    key = "mpu/object"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = [os.urandom(5 * MiB), b"tail"]
    etags = [s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=i + 1, Body=p)["ETag"]
             for i, p in enumerate(parts)]
    # Pending uploads are visible, so "nothing left upstream" can check them too.
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])] == [up]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
    obj = s3.get_object(Bucket=bucket, Key=key)
    assert obj["Body"].read() == b"".join(parts)
    assert obj["ETag"].endswith('-2"')
    s3.delete_object(Bucket=bucket, Key=key)


def test_moto_enforces_min_part_size(moto, bucket):
    # Like AWS, moto rejects a non-last part under 5 MiB, at Complete time.
    s3 = moto.client()
    up = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key="small", UploadId=up, PartNumber=n, Body=b"x")["ETag"]
             for n in (1, 2)]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=up, MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": t} for n, t in zip((1, 2), etags)]})
    assert e.value.response["Error"]["Code"] == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=up)


# --- Azurite (Azure Blob) ----------------------------------------------------

def test_azurite_put_get(azurite, bucket):
    container = azurite.client().get_container_client(bucket)
    container.upload_blob("dir/hello.txt", b"hello azure", overwrite=True)
    assert container.download_blob("dir/hello.txt").readall() == b"hello azure"
    assert azurite.list_keys(bucket, prefix="dir/") == ["dir/hello.txt"]
    container.delete_blob("dir/hello.txt")
    assert azurite.list_keys(bucket, prefix="dir/") == []


def test_azurite_block_list(azurite, bucket):
    blob = azurite.client().get_blob_client(bucket, "blocks/object")
    blocks = {"YmxvY2stMDAwMQ==": os.urandom(MiB), "YmxvY2stMDAwMg==": b"tail"}
    for block_id, data in blocks.items():
        blob.stage_block(block_id, data)
    # Staged but uncommitted blocks are not a blob: listings do not show them.
    assert azurite.list_keys(bucket, prefix="blocks/") == []
    assert len(blob.get_block_list("uncommitted")[1]) == 2
    blob.commit_block_list(list(blocks))
    assert blob.download_blob().readall() == b"".join(blocks.values())
    blob.delete_blob()


# --- fake-gcs-server (GCS JSON API) -------------------------------------------

def gcs_object_url(gcs, bucket, key, upload=False):
    q = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
    if upload:
        return f"{gcs.endpoint}/upload/storage/v1/b/{q(bucket)}/o"
    return f"{gcs.endpoint}/storage/v1/b/{q(bucket)}/o/{q(key)}"


def test_fake_gcs_put_get(fake_gcs, bucket):
    s = http()
    r = s.post(gcs_object_url(fake_gcs, bucket, None, upload=True),
               params={"uploadType": "media", "name": "dir/hello.txt"}, data=b"hello gcs", timeout=10)
    assert r.status_code == 200, r.text
    r = s.get(gcs_object_url(fake_gcs, bucket, "dir/hello.txt"), params={"alt": "media"}, timeout=10)
    assert r.status_code == 200 and r.content == b"hello gcs"
    assert fake_gcs.list_keys(bucket, prefix="dir/") == ["dir/hello.txt"]
    # Real GCS answers a delete with 204; fake-gcs-server with 200.
    assert s.delete(gcs_object_url(fake_gcs, bucket, "dir/hello.txt"), timeout=10).status_code in (200, 204)
    assert fake_gcs.list_keys(bucket, prefix="dir/") == []


def test_fake_gcs_resumable(fake_gcs, bucket):
    s = http()
    r = s.post(gcs_object_url(fake_gcs, bucket, None, upload=True),
               params={"uploadType": "resumable", "name": "resumable/object"},
               json={"name": "resumable/object"}, timeout=10)
    assert r.status_code == 200, r.text
    session = r.headers["Location"]
    # -external-url makes the session URL point at this emulator's port.
    assert session.startswith(fake_gcs.endpoint + "/"), session
    data = os.urandom(3 * 256 * 1024 + 10)
    chunk = 256 * 1024  # GCS wants non-final chunks in multiples of 256 KiB
    for start in range(0, len(data), chunk):
        body = data[start:start + chunk]
        end = start + len(body) - 1
        total = len(data) if end == len(data) - 1 else "*"
        r = s.put(session, data=body, headers={"Content-Range": f"bytes {start}-{end}/{total}"}, timeout=10)
        assert r.status_code == (200 if total != "*" else 308), (start, r.status_code, r.text)
    r = s.get(gcs_object_url(fake_gcs, bucket, "resumable/object"), params={"alt": "media"}, timeout=10)
    assert r.content == data
    s.delete(gcs_object_url(fake_gcs, bucket, "resumable/object"), timeout=10)


# --- lifecycle: fresh instances, so the session ones are left alone ---------------

@pytest.mark.parametrize("start", [emulators.start_moto, emulators.start_azurite, emulators.start_fake_gcs],
                         ids=["moto", "azurite", "fake_gcs"])
def test_kill_restart_stop(start):
    e = start("lifecycle")
    try:
        port, pid = e.port, e.pid
        os.kill(pid, 0)
        e.kill()
        assert not e.running()
        with pytest.raises(OSError):
            emulators._http("GET", e.endpoint, timeout=2)
        e.restart()
        assert (e.port, e.running()) == (port, True) and e.pid != pid
        assert e.list_keys("lifecycle") == []  # bucket recreated, state gone
        pid = e.pid
        e.stop()
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # the whole process group is gone
    finally:
        e.close()


def test_azurite_rejects_wrong_key(azurite, bucket):
    # Azurite checks shared-key signatures, so a backend's auth is exercised for real.
    import base64

    from azure.storage.blob import BlobServiceClient

    bad = BlobServiceClient(azurite.endpoint, credential={
        "account_name": emulators.AZURE_ACCOUNT, "account_key": base64.b64encode(os.urandom(64)).decode()},
        retry_total=0)
    with pytest.raises(HttpResponseError) as e:
        bad.get_container_client(bucket).get_container_properties()
    assert e.value.status_code == 403

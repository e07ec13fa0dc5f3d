"""The real bleepstore binary on cloud backends, against the emulators:
upstream faults (503s, an emulator killed mid-upload, wrong credentials at
start-up) and a backend per storage class."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from ports import free_port

BIN = Path(os.environ.get("BLEEPSTORE_BIN", Path.home() / ".cache/bleepstore-target/release/bleepstore"))
KEY, SECRET = "backend-test-key", "backend-test-secret-0123456789"
AZURE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
MiB = 1024 * 1024


class Server:
    def __init__(self, storage: dict, **sections: dict):
        self.dir = Path(tempfile.mkdtemp(prefix="bleepstore-backend-"))
        self.s3_port, self.ops_port = free_port(), free_port()
        storage = {"data_dir": str(self.dir / "data"), "inline_max": 0, **storage}
        config = {
            "server": {"s3_listen": f"127.0.0.1:{self.s3_port}", "ops_listen": f"127.0.0.1:{self.ops_port}"},
            "auth": {"access_key": KEY, "secret_key": SECRET},
            "logging": {"level": "info"},
            "storage": storage,
            **sections,
        }
        (self.dir / "config.yaml").write_text(json.dumps(config))
        self.log = self.dir / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_", "GOOGLE_"))}
        env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(BIN), "serve", "--config", str(self.dir / "config.yaml")],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )

    def ready(self) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ops_port}/ready", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError as e:
            return 0, str(e)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()[-2000:]}")
            if self.ready()[0] == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"server not ready: {self.log.read_text()[-2000:]}")

    def client(self):
        return boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{self.s3_port}", region_name="us-east-1",
            aws_access_key_id=KEY, aws_secret_access_key=SECRET,
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def servers():
    started: list[Server] = []

    def start(storage: dict, wait: bool = True, **sections: dict) -> Server:
        s = Server(storage, **sections)
        started.append(s)
        if wait:
            s.wait_ready()
        return s

    yield start
    for s in started:
        s.stop()


def aws_section(endpoint: str, prefix: str) -> dict:
    return {
        "bucket": "bleepstore-blobs", "endpoint": endpoint, "region": "us-east-1",
        "force_path_style": True, "prefix": prefix, "part_size": "5MiB", "max_attempts": 2,
        "access_key_id": {"value": "testing"}, "secret_access_key": {"value": "testing"},
    }


class FaultProxy:
    """A TCP proxy in front of an emulator that can switch to answering
    every request with 503 SlowDown (closing the connections it forwards)."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.failing = False
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def fail(self, failing: bool) -> None:
        with self.lock:
            self.failing = failing
            if failing:
                for c in self.conns:
                    try:
                        c.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                self.conns.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if self.failing:
            client.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = client.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
                client.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n"
                               b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            except OSError:
                pass
            client.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target))
        with self.lock:
            self.conns += [client, upstream]

        def pump(a: socket.socket, b: socket.socket) -> None:
            try:
                while chunk := a.recv(65536):
                    b.sendall(chunk)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
        pump(upstream, client)

    def close(self) -> None:
        self.sock.close()


def code(e: ClientError) -> tuple[int, str]:
    return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]


def test_an_upstream_answering_503_becomes_slowdown_and_not_ready(servers, moto):
    proxy = FaultProxy(moto.port)
    try:
        server = servers({"backend": "aws", "aws": aws_section(f"http://127.0.0.1:{proxy.port}", "faults-503/")})
        s3 = server.client()
        s3.create_bucket(Bucket="bkt")
        s3.put_object(Bucket="bkt", Key="before", Body=b"x" * 1000)
        proxy.fail(True)
        with pytest.raises(ClientError) as put:
            s3.put_object(Bucket="bkt", Key="during", Body=b"y" * 1000)
        assert code(put.value) == (503, "SlowDown")
        with pytest.raises(ClientError) as get:
            s3.get_object(Bucket="bkt", Key="before")
        assert code(get.value) == (503, "SlowDown")
        # Nothing was committed for the failed PUT.
        with pytest.raises(ClientError) as head:
            s3.head_object(Bucket="bkt", Key="during")
        assert code(head.value)[0] == 404
        deadline = time.monotonic() + 30
        while server.ready()[0] == 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        status, reason = server.ready()
        assert status == 503 and "storage backend default (aws)" in reason, reason
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{server.ops_port}/metrics", timeout=5).read().decode()
        assert 'bleepstore_backend_up{backend="default",kind="aws"} 0' in metrics
        proxy.fail(False)
        server.wait_ready(timeout=30)
        assert s3.get_object(Bucket="bkt", Key="before")["Body"].read() == b"x" * 1000
        s3.put_object(Bucket="bkt", Key="after", Body=b"z")
    finally:
        proxy.close()


def test_the_emulator_killed_mid_upload_fails_the_put_cleanly(servers, moto):
    server = servers({"backend": "aws", "aws": aws_section(moto.endpoint, "faults-kill/")})
    s3 = server.client()
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="kept", Body=b"k" * 10_000)
    killer = threading.Timer(0.3, moto.kill)
    killer.start()
    with pytest.raises(ClientError) as put:
        s3.put_object(Bucket="bkt", Key="big", Body=os.urandom(64 * MiB))
    killer.join()
    assert code(put.value)[0] in (500, 503), put.value.response
    with pytest.raises(ClientError) as head:
        s3.head_object(Bucket="bkt", Key="big")
    assert code(head.value)[0] == 404
    assert server.proc.poll() is None, "the server survives its upstream dying"
    moto.restart()
    server.wait_ready(timeout=30)
    assert moto.list_keys(prefix="faults-kill/") == []
    s3.put_object(Bucket="bkt", Key="again", Body=b"a" * 10_000)
    assert len(moto.list_keys(prefix="faults-kill/")) == 1


def wait_exit(server: Server, timeout: float = 30) -> str:
    try:
        server.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("the server started with an unusable backend")
    assert server.proc.returncode != 0
    return server.log.read_text()


def test_wrong_credentials_stop_the_start_up_naming_the_backend(servers, azurite):
    bad = {
        "container": "bleepstore-blobs", "account": "devstoreaccount1", "endpoint": azurite.endpoint,
        "access_key": {"value": "d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXkgd3Jvbmcga2V5IQ=="},
    }
    log = wait_exit(servers({"backend": "azure", "azure": bad}, wait=False))
    assert "storage backend default (azure)" in log and "credentials" in log, log[-2000:]
    assert AZURE_KEY not in log and "d3Jvbmcga2V5" not in log, "secrets never reach the log"


def test_a_missing_upstream_bucket_stops_the_start_up(servers, moto):
    section = aws_section(moto.endpoint, "x/") | {"bucket": "no-such-bucket"}
    log = wait_exit(servers({"backend": "aws", "aws": section}, wait=False))
    assert "storage backend default (aws)" in log and "does not exist" in log, log[-2000:]


def test_storage_classes_pick_backends_and_a_copy_moves_the_bytes(servers, moto):
    prefix = f"classes-{uuid.uuid4().hex[:8]}/"
    server = servers({
        "backend": "local",
        "backends": {"archive": {"type": "aws", **aws_section(moto.endpoint, prefix)}},
        "classes": {"GLACIER": "archive", "STANDARD_IA": "archive"},
    })
    s3 = server.client()
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="hot", Body=b"h" * 5000)
    assert moto.list_keys(prefix=prefix) == []
    s3.put_object(Bucket="bkt", Key="cold", Body=b"c" * 5000, StorageClass="GLACIER")
    assert len(moto.list_keys(prefix=prefix)) == 1
    assert s3.head_object(Bucket="bkt", Key="cold")["StorageClass"] == "GLACIER"
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]}
    assert listed == {"hot": "STANDARD", "cold": "GLACIER"}
    # Multipart parts go where the upload's class says.
    up = s3.create_multipart_upload(Bucket="bkt", Key="mp", StorageClass="STANDARD_IA")
    part = s3.upload_part(Bucket="bkt", Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"m" * 1000)
    s3.complete_multipart_upload(Bucket="bkt", Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert len(moto.list_keys(prefix=prefix)) == 2
    # A copy onto itself with a new class moves the bytes off the archive.
    s3.copy_object(Bucket="bkt", Key="cold", CopySource={"Bucket": "bkt", "Key": "cold"}, StorageClass="STANDARD")
    assert s3.get_object(Bucket="bkt", Key="cold")["Body"].read() == b"c" * 5000
    deadline = time.monotonic() + 10
    while len(moto.list_keys(prefix=prefix)) != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(moto.list_keys(prefix=prefix)) == 1, "the old archive blob was freed upstream"
    with pytest.raises(ClientError) as bad:
        s3.put_object(Bucket="bkt", Key="x", Body=b"x", StorageClass="FROZEN")
    assert code(bad.value) == (400, "InvalidStorageClass")


def test_a_start_up_sweep_spares_blobs_other_nodes_wrote_to_a_shared_backend(servers, moto):
    # Two servers on one upstream prefix, as the nodes of a cluster are: a
    # blob the second has never heard of (here: the first's; in a cluster: a
    # write still in flight elsewhere) is older than the second's process but
    # younger than the grace period, so its start-up sweep must leave it.
    prefix = f"shared-{uuid.uuid4().hex[:8]}/"
    first = servers({"backend": "aws", "aws": aws_section(moto.endpoint, prefix)})
    s3 = first.client()
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="k", Body=b"v" * 5000)
    assert len(moto.list_keys(prefix=prefix)) == 1
    second = servers({"backend": "aws", "aws": aws_section(moto.endpoint, prefix)})
    deadline = time.monotonic() + 20
    while "start-up orphan sweep done" not in second.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "start-up orphan sweep done" in second.log.read_text(), second.log.read_text()[-2000:]
    assert len(moto.list_keys(prefix=prefix)) == 1
    assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == b"v" * 5000


def test_only_ciphertext_reaches_the_upstream_and_versions_keep_their_bytes(servers, moto):
    prefix = f"sse-{uuid.uuid4().hex[:8]}/"
    keyring = {"default_key": "k1", "keys": [{"id": "k1", "value": base64.b64encode(bytes(range(32))).decode()}]}
    server = servers({"backend": "aws", "aws": aws_section(moto.endpoint, prefix)}, encryption=keyring)
    s3 = server.client()
    s3.create_bucket(Bucket="enc")
    s3.put_bucket_versioning(Bucket="enc", VersioningConfiguration={"Status": "Enabled"})
    plain = b"plaintext that must never reach the cloud " * 200
    first = s3.put_object(Bucket="enc", Key="k", Body=plain, ServerSideEncryption="AES256")
    second = s3.put_object(Bucket="enc", Key="k", Body=b"v2 " + plain, ServerSideEncryption="aws:kms")
    upstream = moto.client()
    keys = moto.list_keys(prefix=prefix)
    assert len(keys) == 2, "each version keeps its own blob"
    for key in keys:
        stored = upstream.get_object(Bucket="bleepstore-blobs", Key=key)["Body"].read()
        assert b"plaintext that must never" not in stored, "only ciphertext upstream"
    assert s3.get_object(Bucket="enc", Key="k", VersionId=first["VersionId"])["Body"].read() == plain
    got = s3.get_object(Bucket="enc", Key="k", VersionId=second["VersionId"])
    assert got["Body"].read() == b"v2 " + plain and got["ServerSideEncryption"] == "aws:kms"
    ranged = s3.get_object(Bucket="enc", Key="k", VersionId=first["VersionId"], Range="bytes=100-199")
    assert ranged["Body"].read() == plain[100:200]
    s3.delete_object(Bucket="enc", Key="k", VersionId=first["VersionId"])
    deadline = time.monotonic() + 10
    while len(moto.list_keys(prefix=prefix)) != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(moto.list_keys(prefix=prefix)) == 1, "the removed version's blob is freed upstream"

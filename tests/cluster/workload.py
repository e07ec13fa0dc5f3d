"""Client load for fault tests: writers that keep putting fresh keys through
random live nodes and remember exactly which writes were acknowledged, and a
recorder of operation histories for the linearizability checker."""

from __future__ import annotations

import math
import random
import threading
import time
import uuid

from botocore.exceptions import ClientError

from linearizability import ABSENT, Op


class Writers:
    """`count` threads writing new keys (each once, with a unique body)
    through a random running node; a failed write is retried on another
    node under a new key, so an acknowledged key has exactly one value."""

    def __init__(self, cluster, bucket: str, count: int = 3, pause: float = 0.0):
        self.cluster = cluster
        self.bucket = bucket
        self.count = count
        self.pause = pause
        self.acked: dict[str, bytes] = {}
        self.ack_times: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def __enter__(self):
        for w in range(self.count):
            t = threading.Thread(target=self._run, args=(w,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _run(self, w: int) -> None:
        n = 0
        while not self._stop.is_set():
            running = self.cluster.running()
            if not running:
                time.sleep(0.1)
                continue
            node = random.choice(running)
            key = f"w{w}/{n:06d}-{uuid.uuid4().hex[:6]}"
            body = f"{key}:{uuid.uuid4().hex}".encode()
            n += 1
            try:
                node.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
            except Exception as e:  # noqa: BLE001 - unknown outcome, key abandoned
                with self._lock:
                    self.errors.append(f"node {node.id}: {type(e).__name__}: {e}"[:200])
                time.sleep(0.05)
                continue
            with self._lock:
                self.acked[key] = body
                self.ack_times.append(time.monotonic())
            if self.pause:
                time.sleep(self.pause)

    def acks_after(self, moment: float) -> int:
        with self._lock:
            return sum(1 for t in self.ack_times if t > moment)

    def first_ack_after(self, moment: float) -> float | None:
        with self._lock:
            later = [t for t in self.ack_times if t > moment]
        return min(later) if later else None


def verify_acknowledged(node, bucket: str, acked: dict[str, bytes]) -> None:
    """Every acknowledged write is listed and reads back exactly, via `node`."""
    listed = set()
    for page in node.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        listed.update(o["Key"] for o in page.get("Contents", []))
    missing = sorted(set(acked) - listed)
    assert not missing, f"node {node.id} lost {len(missing)} acknowledged writes, e.g. {missing[:5]}"
    for key, body in acked.items():
        got = node.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert got == body, f"node {node.id}: {key} reads back wrong"


class History:
    """Records PUT / conditional PUT / DELETE / GET on a few keys, through
    random nodes, from several threads, for the linearizability checker."""

    def __init__(self, cluster, bucket: str, keys: list[str]):
        self.cluster = cluster
        self.bucket = bucket
        self.keys = keys
        self.ops: list[Op] = []
        self._lock = threading.Lock()

    def run(self, threads: int, seconds: float, during=None) -> None:
        stop = time.monotonic() + seconds
        workers = [threading.Thread(target=self._worker, args=(stop,), daemon=True) for _ in range(threads)]
        for t in workers:
            t.start()
        if during:
            during()
        for t in workers:
            t.join(seconds + 60)

    def _record(self, op: Op) -> None:
        with self._lock:
            self.ops.append(op)

    def _worker(self, stop: float) -> None:
        # Values are unique, so an ETag names the value it was computed from.
        etags: dict[str, str] = {}
        while time.monotonic() < stop:
            running = self.cluster.running()
            if not running:
                time.sleep(0.05)
                continue
            node = random.choice(running)
            key = random.choice(self.keys)
            kind = random.choices(["put", "create", "cas", "delete", "get"], [3, 2, 3, 1, 6])[0]
            value = uuid.uuid4().hex
            op = Op(key, kind, time.monotonic())
            try:
                if kind == "get":
                    try:
                        got = node.s3.get_object(Bucket=self.bucket, Key=key)
                        op.result = got["Body"].read().decode()
                        etags[op.result] = got["ETag"]
                    except ClientError as e:
                        if e.response["Error"]["Code"] != "NoSuchKey":
                            raise
                        op.result = ABSENT
                elif kind == "delete":
                    node.s3.delete_object(Bucket=self.bucket, Key=key)
                    op.result = "ok"
                else:
                    op.value = value
                    extra = {}
                    if kind == "create":
                        extra["IfNoneMatch"] = "*"
                    if kind == "cas":
                        # Swap from the last value this thread saw, if any.
                        seen = [v for v in etags if v]
                        if not seen:
                            op.kind, kind = "put", "put"
                        else:
                            op.expect = random.choice(seen[-3:])
                            extra["IfMatch"] = etags[op.expect]
                    try:
                        node.s3.put_object(Bucket=self.bucket, Key=key, Body=value.encode(), **extra)
                        op.result = "ok"
                    except ClientError as e:
                        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
                        if kind in ("create", "cas") and status in (404, 409, 412):
                            op.result = "failed"
                        else:
                            raise
                op.end = time.monotonic()
            except Exception:  # noqa: BLE001 - outcome unknown
                op.end = math.inf
                time.sleep(0.02)
            self._record(op)

"""Peak memory of the server while a large object goes through the aws
backend (moto): PUT (multipart, as aws-cli and boto3 send it) and GET of
SIZE bytes, printing the server's peak RSS. A benchmark, not a test:

    source tests/backends/env.sh
    BLEEPSTORE_BIN=… $backends_venv/bin/python tests/backends/bench_rss.py [--mib 1024]

Target (issue 11): under 150 MB for 1 GiB."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent / "lib")]

import emulators  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402
from test_server_backends import Server, aws_section  # noqa: E402

MiB = 1024 * 1024


class Pattern:
    """A readable file-like body of `size` bytes that is never in memory."""

    def __init__(self, size: int):
        self.size, self.pos = size, 0
        self.block = hashlib.sha256(b"bleepstore").digest() * (MiB // 32)

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        out = (self.block * (n // len(self.block) + 2))[self.pos % len(self.block):][:n]
        self.pos += n
        return out

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = {0: pos, 1: self.pos + pos, 2: self.size + pos}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--mib", type=int, default=1024)
    size = args.parse_args().mib * MiB
    moto = emulators.start_moto(emulators.DEFAULT_BUCKET)
    server = Server({"backend": "aws", "aws": aws_section(moto.endpoint, "bench/")})
    try:
        server.wait_ready()
        s3 = server.client()
        s3.create_bucket(Bucket="bench")
        idle = peak_rss_mib(server.proc.pid)
        transfer = TransferConfig(multipart_chunksize=16 * MiB, max_concurrency=4)
        start = time.monotonic()
        s3.upload_fileobj(Pattern(size), "bench", "big", Config=transfer)
        put_s = time.monotonic() - start
        after_put = peak_rss_mib(server.proc.pid)
        start = time.monotonic()
        got = 0
        body = s3.get_object(Bucket="bench", Key="big")["Body"]
        while chunk := body.read(MiB):
            got += len(chunk)
        get_s = time.monotonic() - start
        assert got == size, (got, size)
        print(f"object {size // MiB} MiB through the aws backend (moto)")
        print(f"  PUT {put_s:.1f} s ({size / MiB / put_s:.0f} MiB/s), GET {get_s:.1f} s ({size / MiB / get_s:.0f} MiB/s)")
        print(f"  server peak RSS: idle {idle:.0f} MiB, after PUT {after_put:.0f} MiB, after GET {peak_rss_mib(server.proc.pid):.0f} MiB (target < 150 MB)")
    finally:
        server.stop()
        moto.close()


if __name__ == "__main__":
    main()

"""Ports for test servers.

A port handed out by binding port 0 comes from the kernel's ephemeral range,
so between releasing it and the server binding it any outgoing connection or
proxy listener may take it ("Address already in use"). These ports come from
below that range, where the kernel never hands out ports on its own.

A port free when picked can still be picked by another test process before
this one's server binds it, so each port handed out is also reserved
machine-wide with an exclusive lock on a file named after it, held until the
process exits; testkit's free_port (the Rust tests) takes the same locks.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile

_LOW, _HIGH = 20000, 32000  # Linux's ephemeral range starts at 32768
_handed_out: set[int] = set()
_held: list[int] = []  # open lock files, kept for the process's life


def _reserve(port: int) -> bool:
    directory = os.path.join(tempfile.gettempdir(), "bleepstore-test-ports")
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(os.path.join(directory, f"{port}.lock"), os.O_CREAT | os.O_WRONLY, 0o644)
    except OSError:
        return True  # no lock directory: take the port unreserved
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held.append(fd)
    return True


def free_port() -> int:
    for _ in range(1000):
        port = random.randrange(_LOW, _HIGH)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if not _reserve(port):
            continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")

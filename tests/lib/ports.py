"""Ports for test servers.

A port handed out by binding port 0 comes from the kernel's ephemeral range,
so between releasing it and the server binding it any outgoing connection or
proxy listener may take it ("Address already in use"). These ports come from
below that range, where the kernel never hands out ports on its own.
"""

from __future__ import annotations

import random
import socket

_LOW, _HIGH = 20000, 32000  # Linux's ephemeral range starts at 32768
_handed_out: set[int] = set()


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
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")

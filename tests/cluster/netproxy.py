"""TCP proxies for the links between cluster nodes.

Each node reaches each other node through a proxy of its own
(`cluster.dial: {peer: proxy}`), so a test can cut, black-hole or delay the
link from one node to another without touching the other direction.

Connections are made by the sending side only (every node-to-node call is a
request and its response on a connection the caller opened), so cutting
a→b stops a's calls to b while b's calls to a still work: a one-way partition.
"""

from __future__ import annotations

import socket
import threading
import time


class LinkProxy:
    """Forwards 127.0.0.1:<port> to a target port. Modes:
    - "pass": forward;
    - "drop": hold connections open without forwarding a byte (a black hole:
      the caller waits for its timeout), existing connections go silent;
    - "reset": refuse new connections and close existing ones;
    and `delay` seconds added before every forwarded chunk."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.mode = "pass"
        self.delay = 0.0
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, mode: str, delay: float | None = None) -> None:
        assert mode in ("pass", "drop", "reset"), mode
        with self._lock:
            self.mode = mode
            if delay is not None:
                self.delay = delay
            conns = list(self._conns) if mode != "pass" else []
            if mode == "reset":
                self._conns.clear()
        for c in conns:
            if mode == "reset":
                _close(c)
        # "drop" leaves the sockets open; the pumps stop forwarding.

    def close(self) -> None:
        self._closed = True
        _close(self._listener)
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            _close(c)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "reset":
                _close(client)
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._conns += [client, upstream]
        pair = (client, upstream)
        threading.Thread(target=self._pump, args=(client, upstream, pair), daemon=True).start()
        self._pump(upstream, client, pair)

    def _pump(self, src: socket.socket, dst: socket.socket, pair) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while self.mode == "drop" and not self._closed:
                    time.sleep(0.05)
                if self.mode == "reset" or self._closed:
                    break
                if self.delay:
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in pair:
                _close(s)
            with self._lock:
                self._conns = [c for c in self._conns if c not in pair]


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


class Links:
    """The proxies of a cluster: links[(a, b)] carries a's calls to b."""

    def __init__(self):
        self.links: dict[tuple[int, int], LinkProxy] = {}

    def add(self, a: int, b: int, target_port: int) -> LinkProxy:
        proxy = LinkProxy(target_port)
        self.links[(a, b)] = proxy
        return proxy

    def set(self, a: int, b: int, mode: str, delay: float | None = None) -> None:
        self.links[(a, b)].set(mode, delay)

    def isolate(self, node: int, mode: str = "drop", one_way: str | None = None) -> None:
        """Cuts `node` off: both directions, or only its calls out
        (one_way="out") or only calls to it (one_way="in")."""
        for (a, b), proxy in self.links.items():
            outgoing, incoming = a == node, b == node
            if (outgoing and one_way in (None, "out")) or (incoming and one_way in (None, "in")):
                proxy.set(mode)

    def heal(self) -> None:
        for proxy in self.links.values():
            proxy.set("pass", 0.0)

    def close(self) -> None:
        for proxy in self.links.values():
            proxy.close()

"""Slow clients are cut off by the configured timeouts instead of holding a
connection (and a request) forever."""

import socket
import time

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ROOT_KEY, ROOT_SECRET, client_for

TIMEOUTS = {"header_timeout_secs": 1, "body_idle_timeout_secs": 1}


def read_all(sock: socket.socket, limit: float) -> bytes:
    sock.settimeout(limit)
    chunks = []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except (socket.timeout, ConnectionResetError):
        pass
    return b"".join(chunks)


def test_stalled_headers_are_dropped(private_server):
    srv = private_server(limits=TIMEOUTS)
    sock = socket.create_connection(("127.0.0.1", srv.s3_port), timeout=5)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes the headers
    started = time.monotonic()
    read_all(sock, limit=10)
    assert time.monotonic() - started < 8, "the server kept a header-stalled connection open"
    sock.close()


def test_stalled_body_fails_with_request_timeout_and_stores_nothing(private_server):
    srv = private_server(limits=TIMEOUTS)
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    c.create_bucket(Bucket="slow")
    req = AWSRequest(method="PUT", url=f"{srv.endpoint}/slow/stalled")
    req.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    req.headers["Content-Length"] = "1000"
    S3SigV4Auth(Credentials(ROOT_KEY, ROOT_SECRET), "s3", "us-east-1").add_auth(req)
    sock = socket.create_connection(("127.0.0.1", srv.s3_port), timeout=5)
    head = ["PUT /slow/stalled HTTP/1.1", f"Host: 127.0.0.1:{srv.s3_port}"]
    head += [f"{k}: {v}" for k, v in req.headers.items() if k.lower() != "host"]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"x" * 10)  # then nothing
    response = read_all(sock, limit=10)
    sock.close()
    assert b" 400 " in response.split(b"\r\n", 1)[0], response[:200]
    assert b"<Code>RequestTimeout</Code>" in response
    assert "Contents" not in c.list_objects_v2(Bucket="slow")
    assert list((srv.data_dir / "tmp").iterdir()) == []

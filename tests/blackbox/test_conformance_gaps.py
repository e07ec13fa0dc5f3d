"""Regression tests for places where the server once answered differently
from AWS (seen from real clients or Ceph's s3-tests)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import socket
import urllib.error
import urllib.request
from email.utils import format_datetime

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from conftest import REGION, ROOT_KEY, ROOT_SECRET, presign_url
from helpers import parse_error, s3_error

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def send_exact(server, method: str, path: str, headers: dict, body: bytes = b"") -> tuple[int, bytes]:
    """Sends exactly these headers (no Content-Length added) and returns the
    status and body of the answer."""
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", server.s3_port), timeout=10) as sock:
        sock.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def sigv4_headers(server, method: str, path: str, extra: dict | None = None) -> dict:
    req = AWSRequest(method=method, url=server.endpoint + path, headers=dict(extra or {}))
    req.headers["X-Amz-Content-SHA256"] = EMPTY_SHA256
    S3SigV4Auth(Credentials(ROOT_KEY, ROOT_SECRET), "s3", REGION).add_auth(req)
    headers = {k: v for k, v in req.prepare().headers.items() if k.lower() != "content-length"}
    headers["Host"] = f"127.0.0.1:{server.s3_port}"
    return headers


def test_sigv2_bucket_requests_signed_as_bucket_slash(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    v2 = boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION,
                      aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET,
                      config=Config(signature_version="s3", s3={"addressing_style": "path"},
                                    retries={"max_attempts": 1}))
    assert [o["Key"] for o in v2.list_objects(Bucket=bucket)["Contents"]] == ["k"]
    assert v2.get_bucket_acl(Bucket=bucket)["Owner"]
    assert v2.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"


def test_sigv4_with_an_rfc2822_date_header_and_no_x_amz_date(server, bucket):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    date_header = format_datetime(now).replace("+0000", "-0000")  # as botocore writes it
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    host = f"127.0.0.1:{server.s3_port}"
    canonical = "\n".join([
        "GET", f"/{bucket}", "",
        f"date:{date_header}", f"host:{host}", f"x-amz-content-sha256:{EMPTY_SHA256}", "",
        "date;host;x-amz-content-sha256", EMPTY_SHA256,
    ])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{ROOT_SECRET}".encode()
    for part in (amz_date[:8], REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    status, body = send_exact(server, "GET", f"/{bucket}", {
        "Host": host, "Date": date_header, "x-amz-content-sha256": EMPTY_SHA256,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={ROOT_KEY}/{scope}, "
                         f"SignedHeaders=date;host;x-amz-content-sha256, Signature={signature}",
    })
    assert status == 200, body


def test_part_number_beyond_the_parts_is_invalid_part(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"p" * 100)
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="mp", PartNumber=1)["Body"].read() == b"p" * 100
    with s3_error("InvalidPart", 400):
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)


def test_a_malformed_checksum_value_is_bad_digest(s3, bucket):
    with s3_error("BadDigest", 400):
        s3.put_object(Bucket=bucket, Key="ck", Body=b"data", ChecksumAlgorithm="SHA256", ChecksumSHA256="bad")
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="ck")


def test_presigned_expiry_beyond_a_week_is_forbidden(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    url = presign_url(server, "GET", f"/{bucket}/k", expires=7 * 24 * 3600 + 1)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 403
    assert parse_error(err.value.read())["Code"] == "AuthorizationQueryParametersError"
    ok = presign_url(server, "GET", f"/{bucket}/k", expires=7 * 24 * 3600)
    with urllib.request.urlopen(ok, timeout=10) as r:
        assert r.read() == b"v"


@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD"])
def test_a_key_that_is_not_utf8_is_400(signed, bucket, method):
    r = signed(method, f"/{bucket}/bad%FF%FEkey")
    assert r.status == 400
    if method != "HEAD":
        assert parse_error(r.body)["Code"] == "InvalidURI"


def test_non_ascii_metadata_round_trips(s3, bucket):
    # What s3-tests' test_object_set_get_unicode_metadata sends: a raw header
    # value (http.client writes it as Latin-1).
    def set_header(params, **_):
        params["headers"]["x-amz-meta-meta1"] = "Hello World\xe9"
        params["headers"]["x-amz-meta-check"] = "\u2713"

    s3.meta.events.register("before-call.s3.PutObject", set_header)
    try:
        s3.put_object(Bucket=bucket, Key="meta", Body=b"x")
    finally:
        s3.meta.events.unregister("before-call.s3.PutObject", set_header)
    assert s3.get_object(Bucket=bucket, Key="meta")["Metadata"]["meta1"] == "Hello World\xe9"
    assert s3.head_object(Bucket=bucket, Key="meta")["Metadata"]["meta1"] == "Hello World\xe9"
    # Beyond Latin-1, MIME-encoded (RFC 2047) as AWS returns it.
    assert s3.head_object(Bucket=bucket, Key="meta")["Metadata"]["check"] == "=?UTF-8?B?4pyT?="
    copied = s3.copy_object(Bucket=bucket, Key="meta2", CopySource={"Bucket": bucket, "Key": "meta"})
    assert copied["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.head_object(Bucket=bucket, Key="meta2")["Metadata"]["meta1"] == "Hello World\xe9"


def test_torrent_of_a_missing_key_is_no_such_key(s3, bucket):
    with s3_error("NoSuchKey", 404):
        s3.get_object_torrent(Bucket=bucket, Key="missing")
    s3.put_object(Bucket=bucket, Key="there", Body=b"v")
    with s3_error("NotImplemented", 501):
        s3.get_object_torrent(Bucket=bucket, Key="there")


def test_delete_objects_needs_an_integrity_header(signed, s3, bucket):
    s3.put_object(Bucket=bucket, Key="d", Body=b"v")
    body = b"<Delete><Object><Key>d</Key></Object></Delete>"
    r = signed("POST", f"/{bucket}", query="delete", body=body)
    assert r.status == 400 and parse_error(r.body)["Code"] == "InvalidRequest", r.body
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"v", "nothing was deleted"
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    r = signed("POST", f"/{bucket}", query="delete", body=body, headers={"Content-MD5": md5})
    assert r.status == 200, r.body
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="d")


def test_a_put_without_content_length_is_411(server, s3, bucket):
    path = f"/{bucket}/no-length"
    status, body = send_exact(server, "PUT", path, sigv4_headers(server, "PUT", path))
    assert status == 411 and parse_error(body)["Code"] == "MissingContentLength", body
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="no-length")


def test_a_header_section_above_8_kib_is_400(signed, bucket):
    r = signed("GET", f"/{bucket}", headers={"x-padding": "p" * 9000})
    assert r.status == 400 and parse_error(r.body)["Code"] == "RequestHeaderSectionTooLarge", r.body
    assert signed("GET", f"/{bucket}", headers={"x-padding": "p" * 6000}).status == 200


def test_conditional_delete_object_is_checked_atomically(signed, s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"12345")
    head = s3.head_object(Bucket=bucket, Key="c")
    modified = head["ResponseMetadata"]["HTTPHeaders"]["last-modified"]
    for headers in ({"If-Match": '"0123456789abcdef0123456789abcdef"'},
                    {"x-amz-if-match-size": "4"},
                    {"x-amz-if-match-last-modified-time": "Mon, 01 Jan 2001 00:00:00 GMT"}):
        r = signed("DELETE", f"/{bucket}/c", headers=headers)
        assert r.status == 412 and parse_error(r.body)["Code"] == "PreconditionFailed", (headers, r.body)
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"12345", "nothing was deleted"
    r = signed("DELETE", f"/{bucket}/c", headers={
        "If-Match": put["ETag"], "x-amz-if-match-size": "5", "x-amz-if-match-last-modified-time": modified})
    assert r.status == 204, r.body
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="c")
    r = signed("DELETE", f"/{bucket}/c", headers={"x-amz-if-match-size": "5"})
    assert r.status == 404 and parse_error(r.body)["Code"] == "NoSuchKey"
    r = signed("DELETE", f"/{bucket}/c", headers={"x-amz-if-match-size": "five"})
    assert r.status == 400


def test_conditional_delete_objects_refuses_per_key(s3, bucket):
    a = s3.put_object(Bucket=bucket, Key="a", Body=b"aaa")
    s3.put_object(Bucket=bucket, Key="b", Body=b"bbb")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "ETag": a["ETag"], "Size": 3},
        {"Key": "b", "ETag": '"0123456789abcdef0123456789abcdef"'},
        {"Key": "gone", "Size": 1},
    ]})
    assert [d["Key"] for d in out.get("Deleted", [])] == ["a"]
    errors = {e["Key"]: e["Code"] for e in out.get("Errors", [])}
    assert errors == {"b": "PreconditionFailed", "gone": "NoSuchKey"}
    assert s3.get_object(Bucket=bucket, Key="b")["Body"].read() == b"bbb"

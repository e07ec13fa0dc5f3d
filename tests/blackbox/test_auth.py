"""Authentication: signatures, keys, presigned URLs, clock skew."""

import datetime as dt
import hashlib
import http.client
import os
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from conftest import ROOT_KEY, ROOT_SECRET, client_for, presign_url
from helpers import parse_error, s3_error


def http_get(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def stamp(delta: dt.timedelta = dt.timedelta()) -> str:
    return (dt.datetime.now(dt.timezone.utc) + delta).strftime("%Y%m%dT%H%M%SZ")


def test_wrong_secret(server, bucket):
    c = client_for(server.endpoint, ROOT_KEY, "not-the-secret")
    with s3_error("SignatureDoesNotMatch", 403):
        c.list_objects_v2(Bucket=bucket)
    with s3_error("SignatureDoesNotMatch", 403):
        c.put_object(Bucket=bucket, Key="k", Body=b"x")


def test_unknown_access_key(server, bucket, s3):
    c = client_for(server.endpoint, "NO-SUCH-KEY", ROOT_SECRET)
    with s3_error("InvalidAccessKeyId", 403):
        c.list_buckets()
    with s3_error("InvalidAccessKeyId", 403):
        c.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_signed_request_helper_works(signed, bucket):
    r = signed("PUT", f"/{bucket}/raw", body=b"raw body")
    assert r.status == 200, r.body
    r = signed("GET", f"/{bucket}/raw")
    assert r.status == 200 and r.body == b"raw body"


def test_tampered_body_rejected(server, bucket, s3):
    # Signed for one payload hash, sends another body.
    req = AWSRequest(method="PUT", url=f"{server.endpoint}/{bucket}/t", data=b"original")
    req.headers["X-Amz-Content-SHA256"] = hashlib.sha256(b"original").hexdigest()
    SigV4Auth(Credentials(ROOT_KEY, ROOT_SECRET), "s3", "us-east-1").add_auth(req)
    headers = dict(req.prepare().headers)
    conn = http.client.HTTPConnection("127.0.0.1", server.s3_port, timeout=10)
    conn.request("PUT", f"/{bucket}/t", body=b"tampered", headers=headers)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    assert r.status in (400, 403)
    assert parse_error(body)["Code"] in ("XAmzContentSHA256Mismatch", "SignatureDoesNotMatch")
    with s3_error("NoSuchKey"):
        s3.get_object(Bucket=bucket, Key="t")


@pytest.mark.parametrize("delta_minutes", [-60, 60])
def test_clock_skew(signed, bucket, delta_minutes):
    r = signed("GET", f"/{bucket}", timestamp=stamp(dt.timedelta(minutes=delta_minutes)))
    assert r.status == 403
    assert parse_error(r.body)["Code"] == "RequestTimeTooSkewed"


def test_small_skew_accepted(signed, bucket):
    r = signed("GET", f"/{bucket}", timestamp=stamp(dt.timedelta(minutes=-5)))
    assert r.status == 200, r.body


def test_malformed_authorization_header(raw, bucket):
    r = raw("GET", f"/{bucket}", headers={"Authorization": "AWS4-HMAC-SHA256 garbage"})
    assert r.status in (400, 403)
    assert parse_error(r.body)["Code"] in ("AuthorizationHeaderMalformed", "AccessDenied", "InvalidArgument")


def test_unsupported_auth_scheme(raw, bucket):
    r = raw("GET", f"/{bucket}", headers={"Authorization": "Bearer abc"})
    assert r.status in (400, 403)
    parse_error(r.body)


def presigner(server, **cfg):
    return client_for(server.endpoint, ROOT_KEY, ROOT_SECRET, **cfg)


def test_presigned_get_and_put(server, s3, bucket):
    p = presigner(server)
    data = os.urandom(3000)
    put_url = p.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=300)
    assert "X-Amz-Signature=" in put_url
    status, _, _ = http_get(put_url, method="PUT", data=data)
    assert status == 200
    get_url = p.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=300)
    status, headers, body = http_get(get_url)
    assert status == 200 and body == data
    # Overrides are part of the signed query.
    url = p.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "pre", "ResponseContentType": "text/presigned"}, ExpiresIn=300
    )
    status, headers, body = http_get(url)
    assert status == 200 and headers["content-type"] == "text/presigned"


def test_presigned_url_tampered(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    url = presigner(server).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a"}, ExpiresIn=300)
    status, _, body = http_get(url.replace(f"/{bucket}/a?", f"/{bucket}/b?"))
    assert status == 403
    assert parse_error(body)["Code"] == "SignatureDoesNotMatch"


def test_presigned_url_expired(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="old", Body=b"x")
    url = presign_url(server, "GET", f"/{bucket}/old", 60, stamp(dt.timedelta(minutes=-10)))
    status, _, body = http_get(presign_url(server, "GET", f"/{bucket}/old", 60))
    assert status == 200 and body == b"x"
    status, _, body = http_get(url)
    assert status == 403
    err = parse_error(body)
    assert err["Code"] == "AccessDenied"
    assert "expired" in err["Message"].lower()


def test_presigned_url_expiry_too_long(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = presigner(server).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=8 * 24 * 3600
    )
    status, _, body = http_get(url)
    assert status in (400, 403)
    assert parse_error(body)["Code"] in ("AuthorizationQueryParametersError", "AccessDenied")


def test_presigned_wrong_secret(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    bad = client_for(server.endpoint, ROOT_KEY, "wrong")
    url = bad.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60)
    status, _, body = http_get(url)
    assert status == 403 and parse_error(body)["Code"] == "SignatureDoesNotMatch"


@pytest.mark.sigv2
def test_presigned_sigv2(server, s3, bucket):
    # boto3's default signature for generate_presigned_url on S3 is SigV2
    # ("s3" signer, query auth with AWSAccessKeyId/Signature/Expires).
    s3.put_object(Bucket=bucket, Key="v2", Body=b"sigv2 body")
    p = boto3.session.Session(
        aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET, region_name="us-east-1"
    ).client("s3", endpoint_url=server.endpoint,
             config=Config(signature_version="s3", s3={"addressing_style": "path"}))
    url = p.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "v2"}, ExpiresIn=300)
    assert "Signature=" in url and "AWSAccessKeyId=" in url
    status, _, body = http_get(url)
    assert status == 200 and body == b"sigv2 body"
    status, _, body = http_get(url.replace("/v2?", "/v3?"))
    assert status == 403

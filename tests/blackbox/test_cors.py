"""Bucket CORS: the configuration calls, browser preflights (OPTIONS) and
the CORS headers on actual responses, presigned URLs included."""

from __future__ import annotations

import urllib.parse

import pytest

from helpers import s3_error

RULES = {"CORSRules": [
    {"AllowedMethods": ["GET"], "AllowedOrigins": ["*suffix"]},
    {"AllowedMethods": ["GET"], "AllowedOrigins": ["start*end"]},
    {"AllowedMethods": ["PUT", "POST"], "AllowedOrigins": ["https://*.example.com"],
     "AllowedHeaders": ["x-amz-meta-*", "Content-Type"], "ExposeHeaders": ["ETag", "x-amz-request-id"],
     "MaxAgeSeconds": 600},
]}


def allow(r) -> tuple[str | None, str | None]:
    return r.header("access-control-allow-origin"), r.header("access-control-allow-methods")


def test_cors_configuration_round_trips_and_is_removed(s3, bucket):
    with s3_error("NoSuchCORSConfiguration", 404):
        s3.get_bucket_cors(Bucket=bucket)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert [r["AllowedOrigins"] for r in got] == [["*suffix"], ["start*end"], ["https://*.example.com"]]
    assert got[2]["AllowedHeaders"] == ["x-amz-meta-*", "Content-Type"] and got[2]["MaxAgeSeconds"] == 600
    s3.delete_bucket_cors(Bucket=bucket)
    with s3_error("NoSuchCORSConfiguration", 404):
        s3.get_bucket_cors(Bucket=bucket)


@pytest.mark.parametrize("rules, code", [
    ({"CORSRules": [{"AllowedMethods": ["PATCH"], "AllowedOrigins": ["*"]}]}, "InvalidRequest"),
    ({"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*.*"]}]}, "InvalidRequest"),
])
def test_bad_cors_configurations_are_refused(s3, bucket, rules, code):
    with s3_error(code, 400):
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=rules)


def test_only_the_bucket_owner_manages_cors(s3, s3_alt, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    with s3_error("AccessDenied", 403):
        s3_alt.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)


def test_preflights_are_answered_from_the_rules(raw, s3, bucket):
    obj = f"/{bucket}/k"
    # No Origin, or no method: 400, configured or not.
    assert raw("OPTIONS", obj).status == 400
    assert raw("OPTIONS", obj, {"Origin": "a.suffix"}).status == 400
    # No rules yet: forbidden.
    assert raw("OPTIONS", obj, {"Origin": "a.suffix", "Access-Control-Request-Method": "GET"}).status == 403
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    ok = raw("OPTIONS", obj, {"Origin": "foo.suffix", "Access-Control-Request-Method": "GET"})
    assert ok.status == 200 and allow(ok) == ("foo.suffix", "GET")
    assert "Origin" in ok.header("vary")
    assert raw("OPTIONS", obj, {"Origin": "foo.suffix.get", "Access-Control-Request-Method": "GET"}).status == 403
    assert raw("OPTIONS", obj, {"Origin": "0start1end", "Access-Control-Request-Method": "GET"}).status == 403
    assert raw("OPTIONS", obj, {"Origin": "foo.suffix", "Access-Control-Request-Method": "PUT"}).status == 403
    put = raw("OPTIONS", obj, {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
                                "Access-Control-Request-Headers": "Content-Type, X-Amz-Meta-Owner"})
    assert put.status == 200 and allow(put) == ("https://app.example.com", "PUT, POST")
    assert put.header("access-control-allow-headers") == "content-type, x-amz-meta-owner"
    assert put.header("access-control-max-age") == "600"
    assert put.header("access-control-expose-headers") == "ETag, x-amz-request-id"
    refused = raw("OPTIONS", obj, {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
                                   "Access-Control-Request-Headers": "x-amz-date"})
    assert refused.status == 403 and allow(refused) == (None, None)


def test_actual_responses_carry_the_granted_headers_errors_included(raw, s3, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    s3.put_object(Bucket=bucket, Key="k", Body=b"v", ACL="public-read")
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    assert allow(raw("GET", f"/{bucket}/k")) == (None, None), "no Origin, no CORS headers"
    got = raw("GET", f"/{bucket}/k", {"Origin": "my.suffix"})
    assert got.status == 200 and got.body == b"v" and allow(got) == ("my.suffix", "GET")
    assert allow(raw("GET", f"/{bucket}/k", {"Origin": "other.origin"})) == (None, None)
    missing = raw("GET", f"/{bucket}/missing", {"Origin": "my.suffix"})
    assert missing.status == 404 and allow(missing) == ("my.suffix", "GET")
    # A PUT from an origin only allowed to GET gets no grant.
    put = raw("PUT", f"/{bucket}/p", {"Origin": "my.suffix", "Content-Length": "0"}, b"")
    assert put.status == 403 and allow(put) == (None, None)


def test_wildcard_origin_is_answered_with_a_star(raw, s3, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]})
    r = raw("GET", f"/{bucket}", {"Origin": "example.origin"})
    assert r.status == 200 and allow(r) == ("*", "GET")
    assert r.header("access-control-allow-credentials") is None


def test_preflight_of_a_presigned_url(raw, s3, bucket):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up"}, ExpiresIn=600)
    target = urllib.parse.urlsplit(url)
    path = f"{target.path}?{target.query}"
    assert raw("OPTIONS", path).status == 400
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedMethods": ["PUT"], "AllowedOrigins": ["example"]}]})
    r = raw("OPTIONS", path, {"Origin": "example", "Access-Control-Request-Method": "PUT"})
    assert r.status == 200 and allow(r) == ("example", "PUT")
    # The presigned PUT itself, from that origin, works and is granted.
    put = raw("PUT", path, {"Origin": "example", "Content-Length": "2"}, b"hi")
    assert put.status == 200 and allow(put) == ("example", "PUT")
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"hi"

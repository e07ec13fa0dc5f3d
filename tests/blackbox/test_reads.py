"""Ranged, part-numbered and conditional reads; response header overrides."""

import datetime as dt
import email.utils
import os

import pytest
from botocore.exceptions import ClientError

from helpers import parse_error, s3_error

DATA = os.urandom(10_000)


@pytest.fixture
def obj(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="r", Body=DATA, ContentType="application/x-orig")
    head = s3.head_object(Bucket=bucket, Key="r")
    return bucket, "r", put["ETag"], head["LastModified"]


@pytest.mark.parametrize(
    "spec,start,end",
    [("bytes=0-0", 0, 0), ("bytes=10-99", 10, 99), ("bytes=9000-", 9000, 9999), ("bytes=-100", 9900, 9999),
     ("bytes=9990-20000", 9990, 9999), ("bytes=-20000", 0, 9999)],
)
def test_ranges(s3, obj, spec, start, end):
    bucket, key, _, _ = obj
    r = s3.get_object(Bucket=bucket, Key=key, Range=spec)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["Body"].read() == DATA[start : end + 1]
    assert r["ContentRange"] == f"bytes {start}-{end}/{len(DATA)}"
    assert r["ContentLength"] == end - start + 1


@pytest.mark.parametrize("spec", ["bytes=10000-", "bytes=10000-10001", "bytes=99999999999999-"])
def test_unsatisfiable_range(signed, obj, spec):
    bucket, key, _, _ = obj
    r = signed("GET", f"/{bucket}/{key}", headers={"Range": spec})
    assert r.status == 416
    assert r.header("content-range") == f"bytes */{len(DATA)}"
    assert parse_error(r.body)["Code"] == "InvalidRange"


@pytest.mark.parametrize(
    "spec", ["bytes=5-2", "bytes=0-1,5-6", "items=0-5", "bytes=abc", "bytes=" + "9" * 400, "bytes=-"]
)
def test_ignored_range_serves_whole_object(signed, obj, spec):
    bucket, key, _, _ = obj
    r = signed("GET", f"/{bucket}/{key}", headers={"Range": spec})
    assert r.status == 200
    assert r.body == DATA


def test_range_on_empty_object(s3, bucket, signed):
    s3.put_object(Bucket=bucket, Key="e", Body=b"")
    r = signed("GET", f"/{bucket}/e", headers={"Range": "bytes=0-"})
    assert r.status == 416
    assert r.header("content-range") == "bytes */0"


def test_part_number_one_of_simple_object(s3, obj):
    bucket, key, etag, _ = obj
    r = s3.get_object(Bucket=bucket, Key=key, PartNumber=1)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["Body"].read() == DATA
    assert r["ContentRange"] == f"bytes 0-{len(DATA) - 1}/{len(DATA)}"
    h = s3.head_object(Bucket=bucket, Key=key, PartNumber=1)
    assert h["ContentLength"] == len(DATA)
    with s3_error("InvalidPart", 400):
        s3.get_object(Bucket=bucket, Key=key, PartNumber=2)
    with pytest.raises(ClientError) as head:
        s3.head_object(Bucket=bucket, Key=key, PartNumber=2)
    assert head.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_part_number_with_range_rejected(signed, obj):
    bucket, key, _, _ = obj
    r = signed("GET", f"/{bucket}/{key}", query="partNumber=1", headers={"Range": "bytes=0-1"})
    assert r.status == 400
    assert parse_error(r.body)["Code"] == "InvalidRequest"


def _http_date(t: dt.datetime) -> str:
    return email.utils.format_datetime(t.astimezone(dt.timezone.utc), usegmt=True)


def test_conditional_get(s3, obj):
    bucket, key, etag, modified = obj
    before = _http_date(modified - dt.timedelta(days=1))
    after = _http_date(modified + dt.timedelta(days=1))
    ok = lambda **kw: s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read() == DATA  # noqa: E731

    assert ok(IfMatch=etag)
    assert ok(IfMatch=f'"nope", {etag}')
    assert ok(IfMatch="*")
    assert ok(IfNoneMatch='"other"')
    assert ok(IfModifiedSince=before)
    assert ok(IfUnmodifiedSince=after)
    with s3_error("PreconditionFailed", 412):
        s3.get_object(Bucket=bucket, Key=key, IfMatch='"other"')
    with s3_error("PreconditionFailed", 412):
        s3.get_object(Bucket=bucket, Key=key, IfUnmodifiedSince=before)
    with s3_error("304", 304):
        s3.get_object(Bucket=bucket, Key=key, IfNoneMatch=etag)
    with s3_error("304", 304):
        s3.get_object(Bucket=bucket, Key=key, IfModifiedSince=after)
    # RFC 7232 precedence: If-Match wins over If-Unmodified-Since...
    assert ok(IfMatch=etag, IfUnmodifiedSince=before)
    # ...and If-None-Match over If-Modified-Since.
    assert ok(IfNoneMatch='"other"', IfModifiedSince=after)
    with s3_error("304", 304):
        s3.get_object(Bucket=bucket, Key=key, IfNoneMatch=etag, IfModifiedSince=before)
    # A failed If-Match (412) beats a matching If-None-Match (304).
    with s3_error("PreconditionFailed", 412):
        s3.get_object(Bucket=bucket, Key=key, IfMatch='"other"', IfNoneMatch=etag)
    # S3: If-Match true + If-Modified-Since false → 304.
    with s3_error("304", 304):
        s3.get_object(Bucket=bucket, Key=key, IfMatch=etag, IfModifiedSince=after)


def test_not_modified_response_shape(signed, obj):
    bucket, key, etag, _ = obj
    for method in ("GET", "HEAD"):
        r = signed(method, f"/{bucket}/{key}", headers={"If-None-Match": etag})
        assert r.status == 304
        assert r.body == b""
        assert r.header("etag") == etag
        assert r.header("last-modified")
        assert r.header("x-amz-request-id")


def test_conditional_head(s3, obj):
    bucket, key, etag, modified = obj
    assert s3.head_object(Bucket=bucket, Key=key, IfMatch=etag)["ETag"] == etag
    with s3_error("412", 412):
        s3.head_object(Bucket=bucket, Key=key, IfMatch='"zzz"')
    with s3_error("304", 304):
        s3.head_object(Bucket=bucket, Key=key, IfNoneMatch=etag)
    with s3_error("412", 412):
        s3.head_object(Bucket=bucket, Key=key, IfUnmodifiedSince=_http_date(modified - dt.timedelta(hours=1)))


def test_response_header_overrides(s3, obj):
    bucket, key, _, _ = obj
    r = s3.get_object(
        Bucket=bucket,
        Key=key,
        ResponseContentType="text/override",
        ResponseContentLanguage="fr",
        ResponseExpires=dt.datetime(2036, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        ResponseCacheControl="no-store",
        ResponseContentDisposition="inline; filename=y",
        ResponseContentEncoding="gzip-not-really",
    )
    h = r["ResponseMetadata"]["HTTPHeaders"]
    assert r["ContentType"] == "text/override"
    assert r["ContentLanguage"] == "fr"
    assert h["expires"] == "Wed, 02 Jan 2036 03:04:05 GMT"
    assert r["CacheControl"] == "no-store"
    assert r["ContentDisposition"] == "inline; filename=y"
    assert h["content-encoding"] == "gzip-not-really"
    assert r["Body"].read() == DATA
    # The stored value is untouched.
    assert s3.head_object(Bucket=bucket, Key=key)["ContentType"] == "application/x-orig"


def test_response_overrides_refused_for_anonymous(s3, s3_anon, obj):
    bucket, key, _, _ = obj
    s3.put_object_acl(Bucket=bucket, Key=key, ACL="public-read")
    assert s3_anon.get_object(Bucket=bucket, Key=key)["Body"].read() == DATA
    with s3_error("InvalidRequest", 400):
        s3_anon.get_object(Bucket=bucket, Key=key, ResponseContentType="text/evil")


def test_get_unknown_version_id(s3, obj):
    bucket, key, _, _ = obj
    with pytest.raises(Exception) as info:
        s3.get_object(Bucket=bucket, Key=key, VersionId="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
    err = info.value.response
    assert err["Error"]["Code"] in ("NoSuchVersion", "InvalidArgument")
    assert err["ResponseMetadata"]["HTTPStatusCode"] in (400, 404)


def test_delete_unknown_version_id(s3, obj):
    bucket, key, _, _ = obj
    # Not an id this server could have issued: refused before any lookup.
    with s3_error("InvalidArgument", 400):
        s3.delete_object(Bucket=bucket, Key=key, VersionId="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
    # A well-formed id of a version that is not there: deleting it is a no-op.
    s3.delete_object(Bucket=bucket, Key=key, VersionId="f" * 32)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == DATA

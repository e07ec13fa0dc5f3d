"""Object PUT/GET/HEAD/DELETE: metadata, content headers, storage class,
digests, flexible checksums, conditional writes, attributes, keys."""

import base64
import hashlib
import os
import zlib

import pytest
from awscrt import checksums as crt_checksums

from helpers import parse_error, s3_error, xml_root


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_put_get_head_delete_roundtrip(s3, bucket):
    data = os.urandom(100_000)
    put = s3.put_object(Bucket=bucket, Key="obj", Body=data)
    etag = f'"{hashlib.md5(data).hexdigest()}"'
    assert put["ETag"] == etag
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == data
    assert got["ETag"] == etag
    assert got["ContentLength"] == len(data)
    assert got["ContentType"] == "binary/octet-stream"
    assert got["AcceptRanges"] == "bytes"
    head = s3.head_object(Bucket=bucket, Key="obj")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == etag
    assert head["LastModified"] == got["LastModified"]
    d = s3.delete_object(Bucket=bucket, Key="obj")
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 204
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="obj")
    with s3_error("404", 404):
        s3.head_object(Bucket=bucket, Key="obj")
    # Deleting a missing key succeeds, as in S3.
    assert s3.delete_object(Bucket=bucket, Key="obj")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_empty_object(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert put["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ContentLength"] == 0


def test_overwrite_replaces_bytes_and_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first", Metadata={"a": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"second!", ContentType="text/plain")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"second!"
    assert got["Metadata"] == {}
    assert got["ContentType"] == "text/plain"


def test_user_metadata_and_content_headers(s3, bucket):
    s3.put_object(
        Bucket=bucket,
        Key="meta",
        Body=b"payload",
        Metadata={"color": "blue", "multi-word": "hello world"},
        ContentType="text/x-test; charset=utf-8",
        ContentEncoding="identity",
        ContentDisposition='attachment; filename="x.txt"',
        ContentLanguage="de-DE",
        CacheControl="max-age=60, private",
        Expires="Wed, 21 Oct 2037 07:28:00 GMT",
        WebsiteRedirectLocation="/elsewhere",
    )
    for r in (s3.head_object(Bucket=bucket, Key="meta"), s3.get_object(Bucket=bucket, Key="meta")):
        h = r["ResponseMetadata"]["HTTPHeaders"]
        assert r["Metadata"] == {"color": "blue", "multi-word": "hello world"}
        assert r["ContentType"] == "text/x-test; charset=utf-8"
        assert r["ContentEncoding"] == "identity"
        assert r["ContentDisposition"] == 'attachment; filename="x.txt"'
        assert r["ContentLanguage"] == "de-DE"
        assert r["CacheControl"] == "max-age=60, private"
        assert h["expires"] == "Wed, 21 Oct 2037 07:28:00 GMT"
        assert r["WebsiteRedirectLocation"] == "/elsewhere"
        assert "x-amz-storage-class" not in h


def test_metadata_too_large(s3, bucket):
    with s3_error("MetadataTooLarge", 400):
        s3.put_object(Bucket=bucket, Key="big-meta", Body=b"x", Metadata={"m": "v" * 2100})
    with s3_error("NoSuchKey"):
        s3.get_object(Bucket=bucket, Key="big-meta")


@pytest.mark.parametrize("cls", ["STANDARD_IA", "REDUCED_REDUNDANCY", "GLACIER_IR"])
def test_storage_class_stored_and_reported(s3, bucket, cls):
    s3.put_object(Bucket=bucket, Key="sc", Body=b"x", StorageClass=cls)
    assert s3.head_object(Bucket=bucket, Key="sc")["StorageClass"] == cls
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert listed[0]["StorageClass"] == cls
    attrs = s3.get_object_attributes(Bucket=bucket, Key="sc", ObjectAttributes=["StorageClass"])
    assert attrs["StorageClass"] == cls


def test_standard_storage_class_listed(s3, bucket):
    s3.put_object(Bucket=bucket, Key="std", Body=b"x")
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["StorageClass"] == "STANDARD"
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="std")


def test_invalid_storage_class(s3, bucket):
    with s3_error("InvalidStorageClass", 400):
        s3.put_object(Bucket=bucket, Key="sc", Body=b"x", StorageClass="PLATINUM")
    with s3_error("NoSuchKey"):
        s3.get_object(Bucket=bucket, Key="sc")


def test_content_md5_good(s3, bucket):
    data = b"digest me"
    s3.put_object(Bucket=bucket, Key="md5", Body=data, ContentMD5=md5_b64(data))
    assert s3.get_object(Bucket=bucket, Key="md5")["Body"].read() == data


def test_content_md5_bad_digest(s3, bucket):
    with s3_error("BadDigest", 400):
        s3.put_object(Bucket=bucket, Key="md5", Body=b"digest me", ContentMD5=md5_b64(b"other"))
    with s3_error("NoSuchKey"):
        s3.get_object(Bucket=bucket, Key="md5")


@pytest.mark.parametrize("value", ["not-base64!!", base64.b64encode(b"short").decode()])
def test_content_md5_invalid_digest(signed, bucket, value):
    r = signed("PUT", f"/{bucket}/md5", body=b"abc", headers={"Content-MD5": value})
    assert r.status == 400
    assert parse_error(r.body)["Code"] == "InvalidDigest"


def _expected_checksum(algorithm: str, data: bytes) -> str:
    if algorithm == "CRC32":
        raw = zlib.crc32(data).to_bytes(4, "big")
    elif algorithm == "CRC32C":
        raw = crt_checksums.crc32c(data).to_bytes(4, "big")
    elif algorithm == "CRC64NVME":
        raw = crt_checksums.crc64nvme(data).to_bytes(8, "big")
    elif algorithm == "SHA1":
        raw = hashlib.sha1(data).digest()
    else:
        raw = hashlib.sha256(data).digest()
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_flexible_checksums(s3, bucket, algorithm):
    data = os.urandom(70_000)
    expected = _expected_checksum(algorithm, data)
    field = f"Checksum{algorithm}"
    put = s3.put_object(Bucket=bucket, Key="ck", Body=data, ChecksumAlgorithm=algorithm)
    assert put[field] == expected
    got = s3.get_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got[field] == expected
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-type"] == "FULL_OBJECT"
    head = s3.head_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert head[field] == expected
    attrs = s3.get_object_attributes(Bucket=bucket, Key="ck", ObjectAttributes=["Checksum", "ETag", "ObjectSize"])
    assert attrs["Checksum"][field] == expected
    assert attrs["ObjectSize"] == len(data)
    assert attrs["ETag"] == hashlib.md5(data).hexdigest()
    # Without ChecksumMode the checksum is not sent.
    plain = s3.head_object(Bucket=bucket, Key="ck")
    assert f"x-amz-checksum-{algorithm.lower()}" not in plain["ResponseMetadata"]["HTTPHeaders"]


def test_wrong_checksum_header_rejected(signed, bucket, s3):
    data = b"checksum body"
    bad = _expected_checksum("SHA256", b"something else")
    r = signed("PUT", f"/{bucket}/bad-ck", body=data, headers={"x-amz-checksum-sha256": bad})
    assert r.status == 400, r.body
    assert parse_error(r.body)["Code"] in ("BadDigest", "InvalidRequest")
    with s3_error("NoSuchKey"):
        s3.get_object(Bucket=bucket, Key="bad-ck")


def test_conditional_put_if_none_match(s3, bucket):
    s3.put_object(Bucket=bucket, Key="once", Body=b"1", IfNoneMatch="*")
    with s3_error("PreconditionFailed", 412):
        s3.put_object(Bucket=bucket, Key="once", Body=b"2", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"1"


def test_conditional_put_if_match(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="cas", Body=b"v1")["ETag"]
    with s3_error("PreconditionFailed", 412):
        s3.put_object(Bucket=bucket, Key="cas", Body=b"v2", IfMatch='"00000000000000000000000000000000"')
    new = s3.put_object(Bucket=bucket, Key="cas", Body=b"v2", IfMatch=etag)["ETag"]
    assert new != etag
    assert s3.get_object(Bucket=bucket, Key="cas")["Body"].read() == b"v2"


def test_conditional_put_if_match_missing_key(s3, bucket):
    with s3_error("NoSuchKey", 404):
        s3.put_object(Bucket=bucket, Key="absent", Body=b"v", IfMatch='"abc"')


def test_conditional_delete_if_match(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="d", Body=b"v1")["ETag"]
    with s3_error("PreconditionFailed", 412):
        s3.delete_object(Bucket=bucket, Key="d", IfMatch='"ffffffffffffffffffffffffffffffff"')
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"v1"
    s3.delete_object(Bucket=bucket, Key="d", IfMatch=etag)
    with s3_error("NoSuchKey"):
        s3.get_object(Bucket=bucket, Key="d")


def test_get_object_attributes(s3, bucket):
    data = b"attributes!"
    s3.put_object(Bucket=bucket, Key="attr", Body=data, StorageClass="STANDARD")
    r = s3.get_object_attributes(Bucket=bucket, Key="attr", ObjectAttributes=["ETag", "ObjectSize", "StorageClass"])
    assert r["ETag"] == hashlib.md5(data).hexdigest()
    assert r["ObjectSize"] == len(data)
    assert r["StorageClass"] == "STANDARD"
    assert r["LastModified"].year >= 2024
    assert "ObjectParts" not in r


def test_get_object_attributes_errors(s3, bucket, signed):
    s3.put_object(Bucket=bucket, Key="attr", Body=b"x")
    r = signed("GET", f"/{bucket}/attr", query="attributes")
    assert r.status == 400 and parse_error(r.body)["Code"] == "InvalidArgument"
    r = signed("GET", f"/{bucket}/attr", query="attributes", headers={"x-amz-object-attributes": "Color"})
    assert r.status == 400 and parse_error(r.body)["Code"] == "InvalidArgument"
    with s3_error("NoSuchKey", 404):
        s3.get_object_attributes(Bucket=bucket, Key="nope", ObjectAttributes=["ETag"])


def test_entity_too_large(private_server, make_client):
    from conftest import ROOT_KEY, ROOT_SECRET, client_for

    srv = private_server(max_object_size=1024)
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    c.create_bucket(Bucket="limits")
    c.put_object(Bucket="limits", Key="ok", Body=b"x" * 1024)
    with s3_error("EntityTooLarge", 400):
        c.put_object(Bucket="limits", Key="big", Body=b"x" * 1025)
    with s3_error("NoSuchKey"):
        c.get_object(Bucket="limits", Key="big")
    assert [o["Key"] for o in c.list_objects_v2(Bucket="limits")["Contents"]] == ["ok"]


KEYS = [
    "unicode/ünïcödé/日本語/😀.txt",
    "with space/and  two",
    "plus+sign+key",
    "percent%20literal%2F",
    "../dotdot",
    "a/../b",
    "a/./b",
    "a//double//slash",
    "trailing/",
    "question?mark#hash",
    "ampersand&equals=semi;colon",
    "tilde~star*quote'paren()",
    "xml<special>&\"chars\"",
    "k" * 1024,
]


@pytest.mark.parametrize("key", KEYS, ids=range(len(KEYS)))
def test_odd_keys_roundtrip(s3, bucket, key):
    data = key.encode()[:100] + b"!"
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(data)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    assert [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]] == [key]
    s3.delete_object(Bucket=bucket, Key=key)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_key_too_long(s3, bucket):
    with s3_error("KeyTooLongError", 400):
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    # 1024 bytes of UTF-8, not 1024 characters.
    with s3_error("KeyTooLongError", 400):
        s3.put_object(Bucket=bucket, Key="é" * 513, Body=b"x")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_get_object_xml_error_document(raw, signed, bucket):
    r = signed("GET", f"/{bucket}/missing-key")
    assert r.status == 404
    err = parse_error(r.body)
    assert err["Code"] == "NoSuchKey"
    assert err["Message"]
    assert err["Key"] == "missing-key"
    assert err["Resource"] == f"/{bucket}/missing-key"
    assert err["RequestId"] == r.header("x-amz-request-id")
    assert r.header("content-type") == "application/xml"

"""DeleteObjects and CopyObject."""

import base64
import datetime as dt
import hashlib
import os

from conftest import unique_name
from helpers import parse_error, s3_error, xml_root


def test_delete_objects_verbose(s3, bucket):
    for k in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "missing"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["a", "b", "missing"]
    assert "Errors" not in r
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["c"]


def test_delete_objects_quiet(s3, bucket):
    for k in ("a", "b"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}], "Quiet": True})
    assert "Deleted" not in r and "Errors" not in r
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def _delete_body(keys):
    inner = "".join(f"<Object><Key>{k}</Key></Object>" for k in keys)
    return f"<Delete>{inner}</Delete>".encode()


def _md5_header(body: bytes) -> dict:
    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}


def test_delete_objects_over_1000_keys(signed, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k0", Body=b"x")
    body = _delete_body([f"k{i}" for i in range(1001)])
    r = signed("POST", f"/{bucket}", query="delete", body=body, headers=_md5_header(body))
    assert r.status == 400
    assert parse_error(r.body)["Code"] == "MalformedXML"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1


def test_delete_objects_exactly_1000_keys(signed, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k999", Body=b"x")
    body = _delete_body([f"k{i}" for i in range(1000)])
    r = signed("POST", f"/{bucket}", query="delete", body=body, headers=_md5_header(body))
    assert r.status == 200, r.body
    assert len(xml_root(r.body).findall("Deleted")) == 1000
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects_malformed(signed, bucket):
    for body in (b"<Delete><Object><Key>a</Key></Object>", b"not xml at all", b"<Delete></Delete>",
                 b"<Other><Object><Key>a</Key></Object></Other>"):
        r = signed("POST", f"/{bucket}", query="delete", body=body, headers=_md5_header(body))
        assert r.status == 400, (body, r.body)
        assert parse_error(r.body)["Code"] == "MalformedXML", body


def test_delete_objects_denied_for_other_user(s3, s3_alt, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    try:
        r = s3_alt.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}]})
        assert r.get("Errors") and r["Errors"][0]["Code"] == "AccessDenied"
    except Exception as e:  # a whole-request AccessDenied is also S3 behaviour
        assert "AccessDenied" in str(e)
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"x"


def test_copy_same_bucket_copy_directive(s3, bucket):
    data = os.urandom(5000)
    s3.put_object(Bucket=bucket, Key="src", Body=data, Metadata={"m": "1"}, ContentType="text/src",
                  StorageClass="STANDARD_IA")
    r = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert r["CopyObjectResult"]["LastModified"].year >= 2024
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == data
    assert got["Metadata"] == {"m": "1"}
    assert got["ContentType"] == "text/src"
    # Storage class is not copied unless asked for.
    assert got.get("StorageClass") is None


def test_copy_cross_bucket_replace_directive(s3, bucket):
    other = unique_name("dst")
    s3.create_bucket(Bucket=other)
    try:
        s3.put_object(Bucket=bucket, Key="src", Body=b"hello", Metadata={"m": "1"}, ContentType="text/src")
        s3.copy_object(
            Bucket=other, Key="dst", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
            Metadata={"n": "2"}, ContentType="text/new", StorageClass="STANDARD_IA",
        )
        got = s3.get_object(Bucket=other, Key="dst")
        assert got["Body"].read() == b"hello"
        assert got["Metadata"] == {"n": "2"}
        assert got["ContentType"] == "text/new"
        assert got["StorageClass"] == "STANDARD_IA"
        # The source is untouched.
        assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"m": "1"}
        s3.delete_object(Bucket=other, Key="dst")
    finally:
        s3.delete_bucket(Bucket=other)


def test_copy_to_itself(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"x", Metadata={"a": "1"})
    with s3_error("InvalidRequest", 400):
        s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"})
    # Allowed when it changes something.
    s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"},
                   MetadataDirective="REPLACE", Metadata={"a": "2"})
    got = s3.get_object(Bucket=bucket, Key="self")
    assert got["Metadata"] == {"a": "2"} and got["Body"].read() == b"x"


def test_copy_missing_source(s3, bucket):
    with s3_error("NoSuchKey", 404):
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "nope"})
    with s3_error("NoSuchBucket", 404):
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": unique_name("none"), "Key": "nope"})


def test_copy_invalid_directive(signed, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    r = signed("PUT", f"/{bucket}/dst", headers={"x-amz-copy-source": f"/{bucket}/src",
                                                  "x-amz-metadata-directive": "MERGE"})
    assert r.status == 400
    assert parse_error(r.body)["Code"] == "InvalidArgument"


def test_copy_source_conditions(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="src", Body=b"cond")
    etag = put["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="src")["LastModified"]
    src = {"Bucket": bucket, "Key": "src"}
    earlier = modified - dt.timedelta(days=1)
    later = modified + dt.timedelta(days=1)
    s3.copy_object(Bucket=bucket, Key="d1", CopySource=src, CopySourceIfMatch=etag)
    s3.copy_object(Bucket=bucket, Key="d2", CopySource=src, CopySourceIfNoneMatch='"other"')
    s3.copy_object(Bucket=bucket, Key="d3", CopySource=src, CopySourceIfModifiedSince=earlier)
    s3.copy_object(Bucket=bucket, Key="d4", CopySource=src, CopySourceIfUnmodifiedSince=later)
    for kw in ({"CopySourceIfMatch": '"other"'}, {"CopySourceIfNoneMatch": etag},
               {"CopySourceIfModifiedSince": later}, {"CopySourceIfUnmodifiedSince": earlier}):
        with s3_error("PreconditionFailed", 412):
            s3.copy_object(Bucket=bucket, Key="bad", CopySource=src, **kw)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["d1", "d2", "d3", "d4", "src"]


def test_copy_requires_read_on_source(s3, s3_alt, bucket):
    s3.put_object(Bucket=bucket, Key="secret", Body=b"s")
    alt_bucket = unique_name("altcp")
    s3_alt.create_bucket(Bucket=alt_bucket)
    try:
        with s3_error("AccessDenied", 403):
            s3_alt.copy_object(Bucket=alt_bucket, Key="stolen", CopySource={"Bucket": bucket, "Key": "secret"})
        assert s3_alt.list_objects_v2(Bucket=alt_bucket)["KeyCount"] == 0
    finally:
        s3_alt.delete_bucket(Bucket=alt_bucket)


def test_copy_source_url_encoded_key(s3, bucket):
    key = "dir/ünï cöde+plus%.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"enc")
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key="copied")["Body"].read() == b"enc"


def test_self_copy_keeps_bytes(s3, bucket):
    """Copying an object onto itself must not free the blob both records share."""
    data = os.urandom(20_000)
    s3.put_object(Bucket=bucket, Key="self", Body=data)
    s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"},
                   StorageClass="STANDARD_IA")
    got = s3.get_object(Bucket=bucket, Key="self")
    assert got["StorageClass"] == "STANDARD_IA"
    assert got["Body"].read() == data
    s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"},
                   MetadataDirective="REPLACE", ContentType="text/again")
    assert s3.get_object(Bucket=bucket, Key="self")["Body"].read() == data


def test_copies_survive_source_overwrite_and_delete(s3, bucket):
    data = os.urandom(10_000)
    s3.put_object(Bucket=bucket, Key="orig", Body=data)
    s3.copy_object(Bucket=bucket, Key="c1", CopySource={"Bucket": bucket, "Key": "orig"})
    s3.copy_object(Bucket=bucket, Key="c2", CopySource={"Bucket": bucket, "Key": "c1"})
    s3.put_object(Bucket=bucket, Key="orig", Body=b"new")
    s3.delete_object(Bucket=bucket, Key="c1")
    assert s3.get_object(Bucket=bucket, Key="c2")["Body"].read() == data
    assert s3.get_object(Bucket=bucket, Key="orig")["Body"].read() == b"new"

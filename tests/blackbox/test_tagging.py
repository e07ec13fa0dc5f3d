"""Object and bucket tagging: the ?tagging subresources, x-amz-tagging on PUT,
copy (TaggingDirective) and multipart, versioned buckets, S3's limits,
permissions, and real clients (awscli, s3cmd)."""

import base64
import hashlib
import json

import pytest

from helpers import parse_error, s3_error, s3_error_in

# AWS has answered both InvalidTag and BadRequest for too many tags over the
# years ("Object tags cannot be greater than 10" is a BadRequest today).
TOO_MANY = ("InvalidTag", "BadRequest")


def tag_set(tags: dict) -> dict:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}


def as_dict(tagset: list) -> dict:
    return {t["Key"]: t["Value"] for t in tagset}


def object_tags(s3, bucket, key, **kw) -> dict:
    return as_dict(s3.get_object_tagging(Bucket=bucket, Key=key, **kw)["TagSet"])


def bucket_tags(s3, bucket) -> dict:
    return as_dict(s3.get_bucket_tagging(Bucket=bucket)["TagSet"])


def numbered(n: int) -> dict:
    return {f"key{i}": f"value{i}" for i in range(n)}


def md5_header(body: bytes) -> dict:
    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}


# ------------------------------------------------------------- object tagging


def test_object_tagging_roundtrip(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert object_tags(s3, bucket, "k") == {}
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"a": "1", "b": "two words"}))
    assert object_tags(s3, bucket, "k") == {"a": "1", "b": "two words"}
    assert s3.head_object(Bucket=bucket, Key="k")["TagCount"] == 2
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 2
    # A PUT replaces the whole set.
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"c": "3"}))
    assert object_tags(s3, bucket, "k") == {"c": "3"}
    r = s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert object_tags(s3, bucket, "k") == {}
    assert "TagCount" not in s3.head_object(Bucket=bucket, Key="k")
    # Tagging does not touch the bytes.
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_put_object_with_tagging_header(s3, bucket):
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"x", Tagging="a=1&b=x%20y&empty=")
    assert object_tags(s3, bucket, "tagged") == {"a": "1", "b": "x y", "empty": ""}
    for r in (s3.head_object(Bucket=bucket, Key="tagged"), s3.get_object(Bucket=bucket, Key="tagged")):
        assert r["TagCount"] == 3
        assert r["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "3"
    s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    for r in (s3.head_object(Bucket=bucket, Key="plain"), s3.get_object(Bucket=bucket, Key="plain")):
        assert "TagCount" not in r
        assert "x-amz-tagging-count" not in r["ResponseMetadata"]["HTTPHeaders"]


def test_tagging_missing_key(s3, bucket):
    with s3_error("NoSuchKey", 404):
        s3.get_object_tagging(Bucket=bucket, Key="missing")
    with s3_error("NoSuchKey", 404):
        s3.put_object_tagging(Bucket=bucket, Key="missing", Tagging=tag_set({"a": "1"}))


def test_tagging_in_versioned_bucket(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1", Tagging="v=1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"2", Tagging="v=2")["VersionId"]

    latest = s3.get_object_tagging(Bucket=bucket, Key="k")
    assert as_dict(latest["TagSet"]) == {"v": "2"} and latest["VersionId"] == v2
    old = s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=v1)
    assert as_dict(old["TagSet"]) == {"v": "1"} and old["VersionId"] == v1

    r = s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=v1, Tagging=tag_set({"x": "y"}))
    assert r["VersionId"] == v1
    assert object_tags(s3, bucket, "k", VersionId=v1) == {"x": "y"}
    assert object_tags(s3, bucket, "k") == {"v": "2"}

    r = s3.delete_object_tagging(Bucket=bucket, Key="k", VersionId=v1)
    assert r["VersionId"] == v1
    assert object_tags(s3, bucket, "k", VersionId=v1) == {}
    assert object_tags(s3, bucket, "k", VersionId=v2) == {"v": "2"}

    r = s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"now": "latest"}))
    assert r["VersionId"] == v2
    assert object_tags(s3, bucket, "k", VersionId=v2) == {"now": "latest"}
    # Tagging changes no version: still exactly two.
    assert [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]] == [v2, v1]
    assert s3.head_object(Bucket=bucket, Key="k", VersionId=v1).get("TagCount") is None


# ----------------------------------------------------- copy and multipart


def test_copy_tagging_directive(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="a=1&b=2")
    src = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="default", CopySource=src)
    s3.copy_object(Bucket=bucket, Key="copy", CopySource=src, TaggingDirective="COPY")
    s3.copy_object(Bucket=bucket, Key="replace", CopySource=src, TaggingDirective="REPLACE", Tagging="c=3")
    s3.copy_object(Bucket=bucket, Key="cleared", CopySource=src, TaggingDirective="REPLACE")
    assert object_tags(s3, bucket, "default") == {"a": "1", "b": "2"}
    assert object_tags(s3, bucket, "copy") == {"a": "1", "b": "2"}
    assert object_tags(s3, bucket, "replace") == {"c": "3"}
    assert object_tags(s3, bucket, "cleared") == {}
    assert object_tags(s3, bucket, "src") == {"a": "1", "b": "2"}


def test_invalid_tagging_directive(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="a=1")
    with s3_error("InvalidArgument", 400):
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                       TaggingDirective="MOVE")
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="dst")


def test_multipart_upload_tagging(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="mp=yes&n=2")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"part")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert object_tags(s3, bucket, "mp") == {"mp": "yes", "n": "2"}
    assert s3.head_object(Bucket=bucket, Key="mp")["TagCount"] == 2


# ------------------------------------------------------------------- limits


@pytest.mark.parametrize("tags", [
    numbered(10),
    {"k" * 128: "v"},
    {"k": "v" * 256},
    {"k": ""},
], ids=["10-tags", "128-char-key", "256-char-value", "empty-value"])
def test_object_tag_limits_accepted(s3, bucket, tags):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(tags))
    assert object_tags(s3, bucket, "k") == tags


@pytest.mark.parametrize("tagset,codes", [
    (tag_set(numbered(11))["TagSet"], TOO_MANY),
    ([{"Key": "k" * 129, "Value": "v"}], ("InvalidTag",)),
    ([{"Key": "k", "Value": "v" * 257}], ("InvalidTag",)),
    ([{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}], ("InvalidTag",)),
    ([{"Key": "aws:reserved", "Value": "v"}], ("InvalidTag",)),
], ids=["11-tags", "129-char-key", "257-char-value", "duplicate-key", "aws-prefix"])
def test_object_tag_limits_refused(s3, bucket, tagset, codes):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="keep=me")
    with s3_error_in(codes, 400):
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": tagset})
    assert object_tags(s3, bucket, "k") == {"keep": "me"}


@pytest.mark.parametrize("body", [
    b"<Tagging><TagSet><Tag><Key>a</Key>",
    b"not xml",
    b"<Tagging><TagSet><Tag><Value>no key</Value></Tag></TagSet></Tagging>",
], ids=["truncated", "garbage", "tag-without-key"])
def test_malformed_object_tagging_xml(signed, s3, bucket, body):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="keep=me")
    r = signed("PUT", f"/{bucket}/k", query="tagging", body=body, headers=md5_header(body))
    assert r.status == 400, r.body
    # A Tag without a Key is schema-invalid XML in AWS (MalformedXML); some
    # stores call it InvalidTag.
    assert parse_error(r.body)["Code"] in ("MalformedXML", "InvalidTag")
    assert object_tags(s3, bucket, "k") == {"keep": "me"}


@pytest.mark.parametrize("header", [
    "&".join(f"k{i}=v" for i in range(11)),
    "k" * 129 + "=v",
    "k=" + "v" * 257,
    "a=1&a=2",
], ids=["11-tags", "129-char-key", "257-char-value", "duplicate-key"])
def test_tagging_header_limits(s3, bucket, header):
    # The header form is refused with InvalidTag or (too many tags) BadRequest;
    # AWS answers InvalidArgument for some malformed headers.
    with s3_error_in(("InvalidTag", "BadRequest", "InvalidArgument"), 400):
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging=header)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="k")


# ------------------------------------------------------------- bucket tagging


def test_bucket_tagging_roundtrip(s3, bucket):
    with s3_error("NoSuchTagSet", 404):
        s3.get_bucket_tagging(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"env": "test", "team": "storage"}))
    assert bucket_tags(s3, bucket) == {"env": "test", "team": "storage"}
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"only": "this"}))
    assert bucket_tags(s3, bucket) == {"only": "this"}
    r = s3.delete_bucket_tagging(Bucket=bucket)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with s3_error("NoSuchTagSet", 404):
        s3.get_bucket_tagging(Bucket=bucket)


def test_bucket_tagging_fifty_tags(s3, bucket):
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(numbered(50)))
    assert bucket_tags(s3, bucket) == numbered(50)


@pytest.mark.parametrize("tagset,codes", [
    (tag_set(numbered(51))["TagSet"], TOO_MANY),
    ([{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}], ("InvalidTag",)),
    ([{"Key": "k" * 129, "Value": "v"}], ("InvalidTag",)),
    ([{"Key": "aws:reserved", "Value": "v"}], ("InvalidTag",)),
], ids=["51-tags", "duplicate-key", "129-char-key", "aws-prefix"])
def test_bucket_tag_limits_refused(s3, bucket, tagset, codes):
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"keep": "me"}))
    with s3_error_in(codes, 400):
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tagset})
    assert bucket_tags(s3, bucket) == {"keep": "me"}


# -------------------------------------------------------------- permissions


def test_other_user_cannot_touch_tags(s3, s3_alt, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="owner=root")
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"owner": "root"}))
    with s3_error("AccessDenied", 403):
        s3_alt.get_object_tagging(Bucket=bucket, Key="k")
    with s3_error("AccessDenied", 403):
        s3_alt.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"owner": "alt"}))
    with s3_error("AccessDenied", 403):
        s3_alt.delete_object_tagging(Bucket=bucket, Key="k")
    with s3_error("AccessDenied", 403):
        s3_alt.get_bucket_tagging(Bucket=bucket)
    with s3_error("AccessDenied", 403):
        s3_alt.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"owner": "alt"}))
    with s3_error("AccessDenied", 403):
        s3_alt.delete_bucket_tagging(Bucket=bucket)
    assert object_tags(s3, bucket, "k") == {"owner": "root"}
    assert bucket_tags(s3, bucket) == {"owner": "root"}


# ------------------------------------------------------------------ clients


def test_awscli_tagging(cli, s3, bucket, tmp_path):
    f = tmp_path / "f.txt"
    f.write_bytes(b"tagged by the cli")
    cli.aws("s3api", "put-object", "--bucket", bucket, "--key", "k", "--body", str(f), "--tagging", "a=1&b=2")
    got = json.loads(cli.aws("s3api", "get-object-tagging", "--bucket", bucket, "--key", "k").stdout)
    assert as_dict(got["TagSet"]) == {"a": "1", "b": "2"}
    cli.aws("s3api", "put-object-tagging", "--bucket", bucket, "--key", "k",
            "--tagging", "TagSet=[{Key=k,Value=v}]")
    got = json.loads(cli.aws("s3api", "get-object-tagging", "--bucket", bucket, "--key", "k").stdout)
    assert as_dict(got["TagSet"]) == {"k": "v"}
    assert object_tags(s3, bucket, "k") == {"k": "v"}
    cli.aws("s3api", "delete-object-tagging", "--bucket", bucket, "--key", "k")
    assert object_tags(s3, bucket, "k") == {}

    cli.aws("s3api", "put-bucket-tagging", "--bucket", bucket, "--tagging", "TagSet=[{Key=env,Value=ci}]")
    got = json.loads(cli.aws("s3api", "get-bucket-tagging", "--bucket", bucket).stdout)
    assert as_dict(got["TagSet"]) == {"env": "ci"}
    cli.aws("s3api", "delete-bucket-tagging", "--bucket", bucket)
    missing = cli.aws("s3api", "get-bucket-tagging", "--bucket", bucket, check=False)
    assert missing.returncode != 0 and b"NoSuchTagSet" in missing.stderr


def test_s3cmd_tagging(cli, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    cli.s3cmd("settagging", f"s3://{bucket}/k", "color=blue&size=xl")
    assert object_tags(s3, bucket, "k") == {"color": "blue", "size": "xl"}
    out = cli.s3cmd("gettagging", f"s3://{bucket}/k").stdout.decode()
    assert "color:\tblue" in out and "size:\txl" in out
    cli.s3cmd("deltagging", f"s3://{bucket}/k")
    assert object_tags(s3, bucket, "k") == {}
    cli.s3cmd("settagging", f"s3://{bucket}", "env=s3cmd")
    assert bucket_tags(s3, bucket) == {"env": "s3cmd"}

"""Multipart upload, through the API and through real clients.

"""

import hashlib
import json
import os

import boto3.s3.transfer
import pytest

from conftest import unique_name
from helpers import s3_error

pytestmark = [pytest.mark.multipart]

MiB = 1024 * 1024


def multipart_etag(parts: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def upload_parts(s3, bucket, key, parts, **create_kw):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create_kw)["UploadId"]
    done = []
    for n, data in enumerate(parts, start=1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data)["ETag"]
        assert etag == f'"{hashlib.md5(data).hexdigest()}"'
        done.append({"PartNumber": n, "ETag": etag})
    return upload_id, done


def test_api_roundtrip(s3, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1234)]
    upload_id, done = upload_parts(s3, bucket, "mp", parts, ContentType="text/mp", Metadata={"m": "1"})
    r = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id,
                                     MultipartUpload={"Parts": done})
    assert r["ETag"] == multipart_etag(parts)
    assert r["Key"] == "mp" and r["Bucket"] == bucket
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == b"".join(parts)
    assert got["ContentType"] == "text/mp" and got["Metadata"] == {"m": "1"}
    assert got["ETag"] == multipart_etag(parts)
    # Part reads.
    p2 = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert p2["Body"].read() == parts[1]
    assert p2["PartsCount"] == 3
    assert p2["ContentRange"] == f"bytes {5 * MiB}-{10 * MiB - 1}/{10 * MiB + 1234}"
    attrs = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectSize"])
    assert attrs["ObjectSize"] == 10 * MiB + 1234
    # The upload is gone.
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_object_attributes_parts(s3, bucket):
    parts = [os.urandom(5 * MiB), b"tail"]
    upload_id, done = upload_parts(s3, bucket, "attrs", parts)
    s3.complete_multipart_upload(Bucket=bucket, Key="attrs", UploadId=upload_id, MultipartUpload={"Parts": done})
    attrs = s3.get_object_attributes(Bucket=bucket, Key="attrs", ObjectAttributes=["ObjectParts"], MaxParts=1)
    assert [p["PartNumber"] for p in attrs["ObjectParts"]["Parts"]] == [1]
    assert attrs["ObjectParts"]["Parts"][0]["Size"] == 5 * MiB
    assert attrs["ObjectParts"]["IsTruncated"] is True
    assert attrs["ObjectParts"]["TotalPartsCount"] == 2


def test_list_uploads_and_parts_and_abort(s3, bucket):
    u1 = s3.create_multipart_upload(Bucket=bucket, Key="a/one")["UploadId"]
    u2 = s3.create_multipart_upload(Bucket=bucket, Key="b/two")["UploadId"]
    for n in (1, 2, 3):
        s3.upload_part(Bucket=bucket, Key="a/one", UploadId=u1, PartNumber=n, Body=bytes([n]) * 100)
    ups = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert sorted((u["Key"], u["UploadId"]) for u in ups) == sorted([("a/one", u1), ("b/two", u2)])
    ups = s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")["Uploads"]
    assert [u["Key"] for u in ups] == ["a/one"]
    parts = s3.list_parts(Bucket=bucket, Key="a/one", UploadId=u1)
    assert [p["PartNumber"] for p in parts["Parts"]] == [1, 2, 3]
    assert all(p["Size"] == 100 for p in parts["Parts"])
    page = s3.list_parts(Bucket=bucket, Key="a/one", UploadId=u1, MaxParts=2)
    assert page["IsTruncated"] is True and [p["PartNumber"] for p in page["Parts"]] == [1, 2]
    rest = s3.list_parts(Bucket=bucket, Key="a/one", UploadId=u1, PartNumberMarker=page["NextPartNumberMarker"])
    assert [p["PartNumber"] for p in rest["Parts"]] == [3]
    s3.abort_multipart_upload(Bucket=bucket, Key="a/one", UploadId=u1)
    s3.abort_multipart_upload(Bucket=bucket, Key="b/two", UploadId=u2)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    with s3_error("NoSuchUpload", 404):
        s3.list_parts(Bucket=bucket, Key="a/one", UploadId=u1)
    with s3_error("NoSuchUpload", 404):
        s3.upload_part(Bucket=bucket, Key="a/one", UploadId=u1, PartNumber=4, Body=b"x")
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="a/one")


def test_entity_too_small(s3, bucket):
    parts = [b"a" * 1024, b"b" * 1024]
    upload_id, done = upload_parts(s3, bucket, "small", parts)
    with s3_error("EntityTooSmall", 400):
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=upload_id,
                                     MultipartUpload={"Parts": done})
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=upload_id)


def test_invalid_part_and_order(s3, bucket):
    parts = [os.urandom(5 * MiB), b"tail"]
    upload_id, done = upload_parts(s3, bucket, "bad", parts)
    with s3_error("InvalidPart", 400):
        s3.complete_multipart_upload(
            Bucket=bucket, Key="bad", UploadId=upload_id,
            MultipartUpload={"Parts": [done[0], {"PartNumber": 2, "ETag": '"00000000000000000000000000000000"'}]})
    with s3_error("InvalidPart", 400):  # part 3 was never uploaded
        s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=upload_id,
                                     MultipartUpload={"Parts": [done[0], {"PartNumber": 3, "ETag": done[1]["ETag"]}]})
    with s3_error("InvalidPartOrder", 400):
        s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=upload_id,
                                     MultipartUpload={"Parts": [done[1], done[0]]})
    # Still completable after the failures.
    s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=upload_id, MultipartUpload={"Parts": done})
    assert s3.get_object(Bucket=bucket, Key="bad")["Body"].read() == b"".join(parts)


def test_complete_unknown_upload(s3, bucket):
    with s3_error("NoSuchUpload", 404):
        s3.complete_multipart_upload(Bucket=bucket, Key="x", UploadId="no-such-upload",
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"a"'}]})


def test_upload_part_copy(s3, bucket):
    src = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    r1 = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    r2 = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes={5 * MiB}-{6 * MiB - 1}")
    s3.complete_multipart_upload(
        Bucket=bucket, Key="dst", UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r1["CopyPartResult"]["ETag"]},
                                   {"PartNumber": 2, "ETag": r2["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == src


def test_boto3_transfer_manager(s3, bucket, tmp_path):
    data = os.urandom(23 * MiB + 17)
    f = tmp_path / "big.bin"
    f.write_bytes(data)
    cfg = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB,
                                           max_concurrency=4, use_threads=True)
    s3.upload_file(str(f), bucket, "big.bin", Config=cfg)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-5"')
    out = tmp_path / "out.bin"
    s3.download_file(bucket, "big.bin", str(out), Config=cfg)  # ranged, parallel
    assert out.read_bytes() == data


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])
def test_transfer_manager_with_checksum(make_client, bucket, tmp_path, algorithm):
    c = make_client()
    data = os.urandom(11 * MiB)
    f = tmp_path / "ck.bin"
    f.write_bytes(data)
    cfg = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    c.upload_file(str(f), bucket, "ck.bin", Config=cfg, ExtraArgs={"ChecksumAlgorithm": algorithm})
    h = c.head_object(Bucket=bucket, Key="ck.bin", ChecksumMode="ENABLED")
    assert h["ContentLength"] == len(data)
    assert h["ResponseMetadata"]["HTTPHeaders"].get(f"x-amz-checksum-{algorithm.lower()}")


def test_awscli_large_cp(cli, s3, bucket, tmp_path):
    data = os.urandom(9 * MiB + 5)  # above the CLI's 8 MiB multipart threshold
    f = tmp_path / "cli.bin"
    f.write_bytes(data)
    cli.aws("s3", "cp", str(f), f"s3://{bucket}/cli.bin")
    head = s3.head_object(Bucket=bucket, Key="cli.bin")
    assert head["ContentLength"] == len(data) and "-" in head["ETag"]
    out = tmp_path / "back.bin"
    cli.aws("s3", "cp", f"s3://{bucket}/cli.bin", str(out))
    assert out.read_bytes() == data
    listed = json.loads(cli.aws("s3api", "list-multipart-uploads", "--bucket", bucket).stdout or "{}")
    assert not listed.get("Uploads")


def test_rclone_multipart(cli, s3, bucket, tmp_path):
    data = os.urandom(12 * MiB)
    f = tmp_path / "rc.bin"
    f.write_bytes(data)
    cli.rclone("copyto", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", str(f), f":s3:{bucket}/rc.bin")
    assert s3.get_object(Bucket=bucket, Key="rc.bin")["Body"].read() == data
    cli.rclone("check", "--one-way", str(tmp_path), f":s3:{bucket}", "--include", "rc.bin", "--size-only")


def test_s3cmd_multipart(cli, s3, bucket, tmp_path):
    data = os.urandom(11 * MiB)
    f = tmp_path / "s3cmd.bin"
    f.write_bytes(data)
    cli.s3cmd("put", "--multipart-chunk-size-mb=5", str(f), f"s3://{bucket}/s3cmd.bin")
    head = s3.head_object(Bucket=bucket, Key="s3cmd.bin")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-3"')
    out = tmp_path / "s3cmd.out"
    cli.s3cmd("get", f"s3://{bucket}/s3cmd.bin", str(out))
    assert out.read_bytes() == data


def test_other_user_cannot_complete(s3, s3_alt, bucket):
    parts = [b"x" * 100]
    upload_id, done = upload_parts(s3, bucket, "priv", parts)
    with s3_error("AccessDenied", 403):
        s3_alt.complete_multipart_upload(Bucket=bucket, Key="priv", UploadId=upload_id,
                                         MultipartUpload={"Parts": done})
    with s3_error("AccessDenied", 403):
        s3_alt.list_multipart_uploads(Bucket=bucket)
    s3.abort_multipart_upload(Bucket=bucket, Key="priv", UploadId=upload_id)


def test_delete_bucket_after_abort(s3):
    b = unique_name("mpdel")
    s3.create_bucket(Bucket=b)
    u = s3.create_multipart_upload(Bucket=b, Key="k")["UploadId"]
    s3.abort_multipart_upload(Bucket=b, Key="k", UploadId=u)
    s3.delete_bucket(Bucket=b)


"""Behaviours clients and conformance suites rely on beyond the basics:
expected-owner checks, conditional writes by ETag, multipart completion
checksums and retries, aws-chunked as a mere label, v1 listing encoding."""

import base64
import hashlib
import os
import zlib

from awscrt import checksums as crt_checksums

from helpers import s3_error

MiB = 1024 * 1024


def test_expected_bucket_owner_mismatch_is_denied(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    assert s3.head_object(Bucket=bucket, Key="k", ExpectedBucketOwner=owner)["ContentLength"] == 1
    with s3_error("AccessDenied", 403):
        s3.get_object(Bucket=bucket, Key="k", ExpectedBucketOwner="someone-else")
    with s3_error("AccessDenied", 403):
        s3.list_objects_v2(Bucket=bucket, ExpectedBucketOwner="someone-else")


def test_if_none_match_etag_on_put(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["ETag"]
    with s3_error("PreconditionFailed", 412):
        s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch=etag)
    s3.put_object(Bucket=bucket, Key="k", Body=b"three", IfNoneMatch='"some-other-etag"')
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"three"


def upload(s3, bucket, key, parts, **create):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    done = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data,
                           **({"ChecksumAlgorithm": create["ChecksumAlgorithm"]} if "ChecksumAlgorithm" in create else {}))
        entry = {"PartNumber": n, "ETag": r["ETag"]}
        for name in ("ChecksumCRC32", "ChecksumSHA256"):
            if name in r:
                entry[name] = r[name]
        done.append(entry)
    return upload_id, done


def test_complete_checks_the_stated_full_object_checksum(s3, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(1000)]
    whole = base64.b64encode(zlib.crc32(b"".join(parts)).to_bytes(4, "big")).decode()
    upload_id, done = upload(s3, bucket, "full", parts, ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    with s3_error("BadDigest", 400):
        s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=upload_id,
                                     MultipartUpload={"Parts": done}, ChecksumCRC32="AAAAAA==")
    r = s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=upload_id,
                                     MultipartUpload={"Parts": done}, ChecksumCRC32=whole)
    assert r["ChecksumCRC32"] == whole
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == whole and head["ChecksumType"] == "FULL_OBJECT"


def test_composite_checksum_with_part_count_suffix(s3, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(10)]
    upload_id, done = upload(s3, bucket, "comp", parts, ChecksumAlgorithm="SHA256")
    raw = b"".join(base64.b64decode(p["ChecksumSHA256"]) for p in done)
    composite = base64.b64encode(hashlib.sha256(raw).digest()).decode() + "-2"
    r = s3.complete_multipart_upload(Bucket=bucket, Key="comp", UploadId=upload_id,
                                     MultipartUpload={"Parts": done}, ChecksumSHA256=composite)
    assert r["ChecksumSHA256"] == composite
    attrs = s3.get_object_attributes(Bucket=bucket, Key="comp", ObjectAttributes=["Checksum"])
    assert attrs["Checksum"]["ChecksumSHA256"] == composite
    part = s3.get_object(Bucket=bucket, Key="comp", PartNumber=1, ChecksumMode="ENABLED")
    assert part["ChecksumSHA256"] == done[0]["ChecksumSHA256"]
    assert part["ChecksumType"] == "COMPOSITE"


def test_retried_completion_returns_the_same_object(s3, bucket):
    parts = [os.urandom(5 * MiB), b"tail"]
    upload_id, done = upload(s3, bucket, "retry", parts)
    first = s3.complete_multipart_upload(Bucket=bucket, Key="retry", UploadId=upload_id, MultipartUpload={"Parts": done})
    again = s3.complete_multipart_upload(Bucket=bucket, Key="retry", UploadId=upload_id, MultipartUpload={"Parts": done})
    assert again["ETag"] == first["ETag"]
    assert s3.get_object(Bucket=bucket, Key="retry")["Body"].read() == b"".join(parts)


def test_aws_chunked_content_encoding_on_a_plain_body_is_a_label(signed, s3, bucket):
    body = b"plain body"
    r = signed("PUT", f"/{bucket}/label", body=body,
               headers={"Content-Encoding": "gzip, aws-chunked"})
    assert r.status == 200, r.body
    head = s3.head_object(Bucket=bucket, Key="label")
    assert head["ContentEncoding"] == "gzip"
    assert s3.get_object(Bucket=bucket, Key="label")["Body"].read() == body


def test_v1_listing_keeps_prefix_plain_with_url_encoding(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a b/c", Body=b"x")
    r = s3.list_objects(Bucket=bucket, Prefix="a b/", EncodingType="url")
    assert r["Prefix"] == "a b/"
    # Asked for explicitly, keys stay encoded for the caller to decode.
    assert [o["Key"] for o in r["Contents"]] == ["a%20b/c"]


def test_crc64nvme_default_checksum_is_stored(s3, bucket):
    data = os.urandom(1000)
    s3.put_object(Bucket=bucket, Key="default", Body=data, ChecksumAlgorithm="CRC64NVME")
    head = s3.head_object(Bucket=bucket, Key="default", ChecksumMode="ENABLED")
    expected = base64.b64encode(crt_checksums.crc64nvme(data).to_bytes(8, "big")).decode()
    assert head["ChecksumCRC64NVME"] == expected

"""Server-side encryption: SSE-C (customer keys), SSE-S3 and SSE-KMS (the
server's keyring), bucket default encryption, ranges and multipart across
64 KiB boundaries, copies between modes, what is refused, what is on disk
(no plaintext, no keys), tampered ciphertext, master key rotation through the
admin API, and real clients (awscli, rclone).

Every server gets the keyring from conftest (bb-key-1 default, bb-key-2) with
the TLS requirement of SSE-C switched off, unless a test configures its own."""

import base64
import hashlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from conftest import ENCRYPTION_KEYS, ROOT_KEY, ROOT_SECRET, Cli, client_for, keyring, write_config
from helpers import parse_error, s3_error, s3_error_in

KiB = 1024
MiB = 1024 * KiB
KEY_A = hashlib.sha256(b"bleepstore sse-c key A").digest()
KEY_B = hashlib.sha256(b"bleepstore sse-c key B").digest()
# Parts this small are allowed by configuring the server's minimum.
SMALL_PARTS = {"min_part_size": 1024}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def key_md5(key: bytes) -> str:
    return b64(hashlib.md5(key).digest())


def ssec(key: bytes = KEY_A) -> dict:
    """boto3 arguments for SSE-C; boto3 base64-encodes the key and adds its MD5."""
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def copy_source_ssec(key: bytes) -> dict:
    return {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": key}


def status_of(err: ClientError) -> int:
    return err.response["ResponseMetadata"]["HTTPStatusCode"]


# mode -> (arguments for writes, arguments every read and part upload needs)
MODES = {
    "sse-c": (ssec(KEY_A), ssec(KEY_A)),
    "sse-s3": ({"ServerSideEncryption": "AES256"}, {}),
    "sse-kms": ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "bb-key-2"}, {}),
}


def assert_mode(resp: dict, mode: str, key: bytes = KEY_A, kms_key: str = "bb-key-2") -> None:
    """The encryption a response reports: "plain", "sse-c" (with `key`),
    "sse-s3" or "sse-kms" (with `kms_key`)."""
    if mode == "plain":
        assert "ServerSideEncryption" not in resp and "SSECustomerAlgorithm" not in resp, resp
    elif mode == "sse-c":
        assert resp["SSECustomerAlgorithm"] == "AES256", resp
        assert resp["SSECustomerKeyMD5"] == key_md5(key), resp
    elif mode == "sse-s3":
        assert resp["ServerSideEncryption"] == "AES256", resp
        assert "SSEKMSKeyId" not in resp and "SSECustomerAlgorithm" not in resp, resp
    else:
        assert resp["ServerSideEncryption"] == "aws:kms", resp
        assert resp["SSEKMSKeyId"] == kms_key, resp


def assert_not_stored(s3, bucket, key) -> None:
    with s3_error("404", 404):
        s3.head_object(Bucket=bucket, Key=key)


def multipart_upload(c, bucket, key, parts, create_kw, part_kw) -> tuple[dict, list[dict]]:
    """Uploads and completes; `part_kw` goes to every part and the completion.
    Returns the CreateMultipartUpload response and the UploadPart responses."""
    created = c.create_multipart_upload(Bucket=bucket, Key=key, **create_kw)
    upload_id = created["UploadId"]
    responses = [c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data, **part_kw)
                 for n, data in enumerate(parts, start=1)]
    done = [{"PartNumber": n, "ETag": r["ETag"]} for n, r in enumerate(responses, start=1)]
    c.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done},
                                **part_kw)
    return created, responses


@pytest.fixture
def small_parts(private_server):
    """A server of its own that accepts 1 KiB parts, with a bucket "sse"."""
    srv = private_server(multipart=SMALL_PARTS)
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    c.create_bucket(Bucket="sse")
    return c


# ------------------------------------------------------- every mode, alike


@pytest.mark.parametrize("mode", MODES)
def test_roundtrip(s3, bucket, mode):
    write, read = MODES[mode]
    data = os.urandom(100_000)
    assert_mode(s3.put_object(Bucket=bucket, Key="k", Body=data, **write), mode)
    got = s3.get_object(Bucket=bucket, Key="k", **read)
    assert got["Body"].read() == data
    assert_mode(got, mode)
    head = s3.head_object(Bucket=bucket, Key="k", **read)
    assert head["ContentLength"] == len(data)
    assert_mode(head, mode)
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["Size"] == len(data)


RANGES = [  # (Range header, first byte, last byte) of a 300_000-byte object
    ("bytes=65530-65545", 65530, 65545),  # across the first 64 KiB boundary
    ("bytes=0-0", 0, 0),
    ("bytes=-10", 299_990, 299_999),
    ("bytes=299990-", 299_990, 299_999),
    ("bytes=60000-200000", 60_000, 200_000),  # spans three 64 KiB chunks
    ("bytes=65536-131071", 65_536, 131_071),  # exactly the second chunk
    ("bytes=131072-131072", 131_072, 131_072),
    ("bytes=0-299999", 0, 299_999),
]


@pytest.mark.parametrize("mode", MODES)
def test_range_reads(s3, bucket, mode):
    write, read = MODES[mode]
    data = os.urandom(300_000)
    s3.put_object(Bucket=bucket, Key="k", Body=data, **write)
    for header, first, last in RANGES:
        r = s3.get_object(Bucket=bucket, Key="k", Range=header, **read)
        assert r["Body"].read() == data[first:last + 1], header
        assert r["ContentRange"] == f"bytes {first}-{last}/{len(data)}", header
        assert r["ContentLength"] == last - first + 1


@pytest.mark.parametrize("mode", MODES)
def test_multipart(small_parts, mode):
    c = small_parts
    write, read = MODES[mode]
    parts = [os.urandom(70_000), os.urandom(70_000), os.urandom(1000)]
    created, part_responses = multipart_upload(c, "sse", "mp", parts, write, read)
    for r in (created, *part_responses):
        assert_mode(r, mode)
    whole = b"".join(parts)
    got = c.get_object(Bucket="sse", Key="mp", **read)
    assert got["Body"].read() == whole
    assert_mode(got, mode)
    p2 = c.get_object(Bucket="sse", Key="mp", PartNumber=2, **read)
    assert p2["Body"].read() == parts[1] and p2["PartsCount"] == 3
    across = c.get_object(Bucket="sse", Key="mp", Range="bytes=69990-140010", **read)["Body"].read()
    assert across == whole[69_990:140_011]


# -------------------------------------------------------------------- SSE-C


def test_ssec_read_needs_the_right_key(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret", **ssec(KEY_A))
    with s3_error("InvalidRequest", 400):
        s3.get_object(Bucket=bucket, Key="k")
    with s3_error("400", 400):
        s3.head_object(Bucket=bucket, Key="k")
    with s3_error("AccessDenied", 403):
        s3.get_object(Bucket=bucket, Key="k", **ssec(KEY_B))
    with s3_error("403", 403):
        s3.head_object(Bucket=bucket, Key="k", **ssec(KEY_B))
    assert s3.get_object(Bucket=bucket, Key="k", **ssec(KEY_A))["Body"].read() == b"secret"


def test_ssec_etag_is_not_the_plaintext_md5(s3, bucket):
    data = os.urandom(10_000)
    etag = s3.put_object(Bucket=bucket, Key="k", Body=data, **ssec(KEY_A))["ETag"]
    assert etag.strip('"') != hashlib.md5(data).hexdigest()
    assert s3.head_object(Bucket=bucket, Key="k", **ssec(KEY_A))["ETag"] == etag


def test_sse_s3_etag_is_the_plaintext_md5(s3, bucket):
    # As in AWS: SSE-S3 objects written by PUT keep the MD5 ETag (clients
    # such as rclone and s3cmd verify uploads with it).
    data = os.urandom(10_000)
    etag = s3.put_object(Bucket=bucket, Key="k", Body=data, ServerSideEncryption="AES256")["ETag"]
    assert etag == f'"{hashlib.md5(data).hexdigest()}"'


def _ssec_headers(key: bytes | None = KEY_A, algorithm: str | None = "AES256", md5: str | None = None) -> dict:
    headers = {}
    if algorithm is not None:
        headers["x-amz-server-side-encryption-customer-algorithm"] = algorithm
    if key is not None:
        headers["x-amz-server-side-encryption-customer-key"] = b64(key)
        headers["x-amz-server-side-encryption-customer-key-MD5"] = md5 or key_md5(key)
    return headers


@pytest.mark.parametrize("headers,codes", [
    (_ssec_headers(md5=key_md5(KEY_B)), ("InvalidArgument",)),
    (_ssec_headers(algorithm=None), ("InvalidArgument",)),
    (_ssec_headers(key=None), ("InvalidArgument",)),
    # AWS: InvalidEncryptionAlgorithmError; InvalidArgument elsewhere.
    (_ssec_headers(algorithm="AES128"), ("InvalidEncryptionAlgorithmError", "InvalidArgument")),
    (_ssec_headers(key=KEY_A[:16]), ("InvalidArgument",)),
    ({**_ssec_headers(), "x-amz-server-side-encryption-customer-key": "%%% not base64 %%%"}, ("InvalidArgument",)),
], ids=["md5-mismatch", "key-without-algorithm", "algorithm-without-key", "wrong-algorithm", "16-byte-key",
        "key-not-base64"])
def test_ssec_bad_headers(signed, s3, bucket, headers, codes):
    r = signed("PUT", f"/{bucket}/k", body=b"payload", headers=headers)
    assert r.status == 400, r.body
    assert parse_error(r.body)["Code"] in codes
    assert_not_stored(s3, bucket, "k")


def test_ssec_upload_part_needs_the_key(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp", **ssec(KEY_A))["UploadId"]
    with s3_error_in(("InvalidRequest", "InvalidArgument"), 400):
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"part")
    with pytest.raises(ClientError) as info:  # AWS: 400 or 403 for a key other than the upload's
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"part", **ssec(KEY_B))
    assert 400 <= status_of(info.value) < 500
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"part",
                          **ssec(KEY_A))["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}, **ssec(KEY_A))
    assert s3.get_object(Bucket=bucket, Key="mp", **ssec(KEY_A))["Body"].read() == b"part"
    with s3_error("InvalidRequest", 400):
        s3.get_object(Bucket=bucket, Key="mp")


def test_ssec_copies(s3, bucket):
    data = os.urandom(150_000)
    s3.put_object(Bucket=bucket, Key="src", Body=data, **ssec(KEY_A))
    src = {"Bucket": bucket, "Key": "src"}
    with s3_error_in(("InvalidRequest", "InvalidArgument"), 400):  # no source key
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=src)
    with pytest.raises(ClientError) as info:  # the wrong source key (AWS: 403)
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=src, **copy_source_ssec(KEY_B))
    assert 400 <= status_of(info.value) < 500
    assert_not_stored(s3, bucket, "dst")

    # (a) to plaintext
    assert_mode(s3.copy_object(Bucket=bucket, Key="plain", CopySource=src, **copy_source_ssec(KEY_A)), "plain")
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == data
    assert_mode(s3.head_object(Bucket=bucket, Key="plain"), "plain")
    # (b) to SSE-S3
    r = s3.copy_object(Bucket=bucket, Key="managed", CopySource=src, ServerSideEncryption="AES256",
                       **copy_source_ssec(KEY_A))
    assert_mode(r, "sse-s3")
    assert s3.get_object(Bucket=bucket, Key="managed")["Body"].read() == data
    # (c) to SSE-C with another key
    r = s3.copy_object(Bucket=bucket, Key="rekeyed", CopySource=src, **copy_source_ssec(KEY_A), **ssec(KEY_B))
    assert_mode(r, "sse-c", key=KEY_B)
    assert s3.get_object(Bucket=bucket, Key="rekeyed", **ssec(KEY_B))["Body"].read() == data
    with s3_error("AccessDenied", 403):
        s3.get_object(Bucket=bucket, Key="rekeyed", **ssec(KEY_A))
    # ... and back, in place (a copy onto itself that changes the key is allowed)
    s3.copy_object(Bucket=bucket, Key="rekeyed", CopySource={"Bucket": bucket, "Key": "rekeyed"},
                   **copy_source_ssec(KEY_B), **ssec(KEY_A))
    assert s3.get_object(Bucket=bucket, Key="rekeyed", **ssec(KEY_A))["Body"].read() == data
    # plaintext and SSE-S3 back to SSE-C
    for source in ("plain", "managed"):
        s3.copy_object(Bucket=bucket, Key=f"{source}-sealed", CopySource={"Bucket": bucket, "Key": source},
                       **ssec(KEY_B))
        assert s3.get_object(Bucket=bucket, Key=f"{source}-sealed", **ssec(KEY_B))["Body"].read() == data
        with s3_error("InvalidRequest", 400):
            s3.get_object(Bucket=bucket, Key=f"{source}-sealed")


# ---------------------------------------------------------- SSE-S3, SSE-KMS


def test_copies_between_managed_modes(s3, bucket):
    data = os.urandom(150_000)
    s3.put_object(Bucket=bucket, Key="0-plain", Body=data)
    steps = [("1-sse-s3", {"ServerSideEncryption": "AES256"}, "sse-s3"),
             ("2-sse-kms", {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "bb-key-2"}, "sse-kms"),
             ("3-plain", {}, "plain")]
    source = "0-plain"
    for key, kw, mode in steps:
        r = s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": source}, **kw)
        assert_mode(r, mode)
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == data, key
        assert_mode(got, mode)
        source = key


def test_copy_in_place_changes_encryption(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"was plaintext")
    s3.copy_object(Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "k"}, ServerSideEncryption="AES256")
    head = s3.head_object(Bucket=bucket, Key="k")
    assert_mode(head, "sse-s3")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"was plaintext"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("value", ["AES256", "aws:kms"])
def test_sse_header_on_read_refused(signed, s3, bucket, method, value):
    # AWS: x-amz-server-side-encryption belongs to writes; on GET/HEAD it is a 400.
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="AES256")
    r = signed(method, f"/{bucket}/k", headers={"x-amz-server-side-encryption": value})
    assert r.status == 400, r.body
    if method == "GET":
        assert parse_error(r.body)["Code"] in ("InvalidArgument", "InvalidRequest")


def test_kms_default_key(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms")
    assert_mode(r, "sse-kms", kms_key="bb-key-1")
    assert_mode(s3.head_object(Bucket=bucket, Key="k"), "sse-kms", kms_key="bb-key-1")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_kms_context_and_bucket_key(s3, bucket):
    context = {"project": "bleepstore", "stage": "test"}
    r = s3.put_object(Bucket=bucket, Key="k", Body=b"with context", ServerSideEncryption="aws:kms",
                      SSEKMSKeyId="bb-key-2", SSEKMSEncryptionContext=b64(json.dumps(context).encode()),
                      BucketKeyEnabled=True)
    assert_mode(r, "sse-kms")
    # AWS may add its own pairs (aws:s3:arn) to the context it reports.
    echoed = json.loads(base64.b64decode(r["SSEKMSEncryptionContext"]))
    assert context.items() <= echoed.items()
    assert r["BucketKeyEnabled"] is True
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["BucketKeyEnabled"] is True
    assert_mode(head, "sse-kms")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"with context"


@pytest.mark.parametrize("kw,statuses,codes", [
    ({"SSEKMSKeyId": "bb-key-2"}, (400,), ("InvalidArgument",)),
    ({"ServerSideEncryption": "AES256", "SSEKMSKeyId": "bb-key-2"}, (400,), ("InvalidArgument",)),
    ({"ServerSideEncryption": "AES512"}, (400,), ("InvalidArgument",)),
    ({"ServerSideEncryption": "AES256", **ssec(KEY_A)}, (400,), ("InvalidArgument",)),
    # AWS: KMS.NotFoundException (400).
    ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "no-such-key"}, (400,),
     ("KMS.NotFoundException", "InvalidArgument", "KMSNotFoundException")),
    ({"ServerSideEncryption": "aws:kms", "SSEKMSEncryptionContext": "not base64 json!"}, (400,),
     ("InvalidArgument",)),
    # Dual-layer KMS is not offered: refused, never silently downgraded.
    ({"ServerSideEncryption": "aws:kms:dsse"}, (400, 501), ("NotImplemented", "InvalidArgument")),
], ids=["kms-key-without-kms", "kms-key-with-aes256", "unknown-algorithm", "sse-s3-and-sse-c",
        "unknown-kms-key", "bad-context", "dsse"])
def test_refused_encryption_requests(s3, bucket, kw, statuses, codes):
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", **kw)
    err = info.value.response
    assert status_of(info.value) in statuses and err["Error"]["Code"] in codes, err
    assert_not_stored(s3, bucket, "k")


# --------------------------------------------------- bucket default encryption


def set_default(s3, bucket, algorithm, kms_key=None, bucket_key=None):
    default = {"SSEAlgorithm": algorithm}
    if kms_key:
        default["KMSMasterKeyID"] = kms_key
    rule = {"ApplyServerSideEncryptionByDefault": default}
    if bucket_key is not None:
        rule["BucketKeyEnabled"] = bucket_key
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})


def default_rule(s3, bucket) -> dict:
    return s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]


def test_no_bucket_encryption_configured(s3, bucket):
    with s3_error("ServerSideEncryptionConfigurationNotFoundError", 404):
        s3.get_bucket_encryption(Bucket=bucket)


def test_bucket_default_sse_s3(s3, bucket):
    set_default(s3, bucket, "AES256")
    assert default_rule(s3, bucket)["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert_mode(s3.put_object(Bucket=bucket, Key="default", Body=b"d"), "sse-s3")
    assert_mode(s3.head_object(Bucket=bucket, Key="default"), "sse-s3")
    assert s3.get_object(Bucket=bucket, Key="default")["Body"].read() == b"d"
    # Explicit headers win over the default.
    assert_mode(s3.put_object(Bucket=bucket, Key="kms", Body=b"k", **MODES["sse-kms"][0]), "sse-kms")
    assert_mode(s3.put_object(Bucket=bucket, Key="ssec", Body=b"c", **ssec(KEY_A)), "sse-c")
    with s3_error("InvalidRequest", 400):
        s3.get_object(Bucket=bucket, Key="ssec")
    assert s3.get_object(Bucket=bucket, Key="ssec", **ssec(KEY_A))["Body"].read() == b"c"
    # Multipart uploads and copies without headers get the default too.
    multipart_upload(s3, bucket, "mp", [b"part"], {}, {})
    assert_mode(s3.head_object(Bucket=bucket, Key="mp"), "sse-s3")
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "kms"})
    assert_mode(s3.head_object(Bucket=bucket, Key="copied"), "sse-s3")

    r = s3.delete_bucket_encryption(Bucket=bucket)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with s3_error("ServerSideEncryptionConfigurationNotFoundError", 404):
        s3.get_bucket_encryption(Bucket=bucket)
    assert_mode(s3.put_object(Bucket=bucket, Key="after", Body=b"a"), "plain")
    assert_mode(s3.head_object(Bucket=bucket, Key="after"), "plain")
    # Objects written earlier keep their encryption.
    assert_mode(s3.head_object(Bucket=bucket, Key="default"), "sse-s3")
    assert s3.get_object(Bucket=bucket, Key="default")["Body"].read() == b"d"


def test_bucket_default_kms(s3, bucket):
    set_default(s3, bucket, "aws:kms", kms_key="bb-key-2", bucket_key=True)
    rule = default_rule(s3, bucket)
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "bb-key-2"}
    assert rule["BucketKeyEnabled"] is True
    r = s3.put_object(Bucket=bucket, Key="k", Body=b"kms by default")
    assert_mode(r, "sse-kms")
    head = s3.head_object(Bucket=bucket, Key="k")
    assert_mode(head, "sse-kms")
    assert head["BucketKeyEnabled"] is True
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kms by default"
    # Without a key id the keyring's default key is used.
    set_default(s3, bucket, "aws:kms")
    assert_mode(s3.put_object(Bucket=bucket, Key="k2", Body=b"x"), "sse-kms", kms_key="bb-key-1")


@pytest.mark.parametrize("default", [
    {"SSEAlgorithm": "AES512"},
    {"SSEAlgorithm": "AES256", "KMSMasterKeyID": "bb-key-2"},
], ids=["unknown-algorithm", "kms-key-with-aes256"])
def test_invalid_bucket_encryption(s3, bucket, default):
    with s3_error_in(("MalformedXML", "InvalidArgument", "InvalidRequest"), 400):
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": default}]})
    with s3_error("ServerSideEncryptionConfigurationNotFoundError", 404):
        s3.get_bucket_encryption(Bucket=bucket)


# ---------------------------------------------------- servers of their own


def own_client(srv):
    return client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)


def test_ssec_refused_over_plain_http(private_server):
    srv = private_server(encryption={"require_tls_for_sse_c": True})
    c = own_client(srv)
    c.create_bucket(Bucket="tls")
    with s3_error("InvalidRequest", 400):
        c.put_object(Bucket="tls", Key="k", Body=b"x", **ssec(KEY_A))
    assert_not_stored(c, "tls", "k")
    # Only SSE-C needs TLS.
    assert_mode(c.put_object(Bucket="tls", Key="k", Body=b"x", ServerSideEncryption="AES256"), "sse-s3")


def test_no_keyring_refuses_managed_encryption(private_server):
    srv = private_server(encryption=None)
    c = own_client(srv)
    c.create_bucket(Bucket="nokeys")
    for kw in ({"ServerSideEncryption": "AES256"}, {"ServerSideEncryption": "aws:kms"}):
        with pytest.raises(ClientError) as info:
            c.put_object(Bucket="nokeys", Key="k", Body=b"x", **kw)
        assert status_of(info.value) in (400, 501), info.value.response
        assert_not_stored(c, "nokeys", "k")
    c.put_object(Bucket="nokeys", Key="plain", Body=b"fine")
    assert c.get_object(Bucket="nokeys", Key="plain")["Body"].read() == b"fine"


MARKER = b"BLEEPSTORE-PLAINTEXT-MARKER-"


def files_containing(root: Path, needles: dict[str, bytes]) -> list[tuple[str, str]]:
    """(needle name, file) for every needle found in any file under root."""
    hits = []
    for path in sorted(root.rglob("*")):
        try:
            content = path.read_bytes() if path.is_file() else None
        except FileNotFoundError:  # a temp file that just went away
            continue
        if content is not None:
            hits += [(name, str(path.relative_to(root))) for name, n in needles.items() if n in content]
    return hits


def test_no_plaintext_or_keys_at_rest(private_server):
    srv = private_server(multipart={"min_part_size": 64 * KiB})
    c = own_client(srv)
    c.create_bucket(Bucket="rest")
    data = MARKER * 5000
    c.put_object(Bucket="rest", Key="sse-c", Body=data, **ssec(KEY_A))
    c.put_object(Bucket="rest", Key="sse-s3", Body=data, ServerSideEncryption="AES256")
    c.put_object(Bucket="rest", Key="sse-kms", Body=data, ServerSideEncryption="aws:kms", SSEKMSKeyId="bb-key-2")
    multipart_upload(c, "rest", "mp-sse-s3", [data, data[:1000]], {"ServerSideEncryption": "AES256"}, {})
    assert c.get_object(Bucket="rest", Key="sse-c", **ssec(KEY_A))["Body"].read() == data
    for key in ("sse-s3", "sse-kms"):
        assert c.get_object(Bucket="rest", Key=key)["Body"].read() == data
    assert c.get_object(Bucket="rest", Key="mp-sse-s3")["Body"].read() == data + data[:1000]

    needles = {"marker": MARKER, "64-byte slice": data[1001:1065],
               "SSE-C key": KEY_A, "SSE-C key (base64)": b64(KEY_A).encode()}
    for kid, raw in ENCRYPTION_KEYS.items():
        needles[f"master key {kid}"] = raw
        needles[f"master key {kid} (base64)"] = b64(raw).encode()
    assert files_containing(srv.data_dir, needles) == []

    # The scan is real: a plaintext object's bytes are found.
    c.put_object(Bucket="rest", Key="plain", Body=data)
    assert files_containing(srv.data_dir, {"marker": MARKER}), "the plaintext object's bytes were not found"


def test_tampered_ciphertext_is_never_served(private_server):
    srv = private_server()
    c = own_client(srv)
    c.create_bucket(Bucket="tamper")
    data = os.urandom(200 * KiB)
    c.put_object(Bucket="tamper", Key="k", Body=data, ServerSideEncryption="AES256")
    blobs = [p for p in (srv.data_dir / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1, blobs
    with open(blobs[0], "r+b") as f:
        f.seek(blobs[0].stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))

    def read(**kw) -> bytes | None:
        """The body, or None when the request or the body failed."""
        try:
            return c.get_object(Bucket="tamper", Key="k", **kw)["Body"].read()
        except ClientError as e:
            assert status_of(e) >= 400
            return None
        except BotoCoreError:  # connection cut mid-body, short body
            return None

    whole = read()
    assert whole is None or len(whole) < len(data), "tampered object served in full"
    # A range around the middle of the plaintext covers the tampered byte for
    # any chunking of 4 KiB or more.
    mid, span = len(data) // 2, 16 * KiB
    part = read(Range=f"bytes={mid - span // 2}-{mid + span // 2 - 1}")
    assert part is None or len(part) < span, "tampered range served in full"
    # The server is still there.
    c.put_object(Bucket="tamper", Key="after", Body=b"ok")
    assert c.get_object(Bucket="tamper", Key="after")["Body"].read() == b"ok"


ROTATION_KEYS = {"k1": hashlib.sha256(b"rotation k1").digest(), "k2": hashlib.sha256(b"rotation k2").digest()}
TOKEN = "tok"


def rotation_config(default: str, *ids: str) -> dict:
    return {"encryption": keyring(default, {i: ROTATION_KEYS[i] for i in ids}), "auth": {"admin_token": TOKEN}}


def reconfigure(srv, **cfg):
    write_config(srv.config_file, **cfg)
    srv.restart()
    return own_client(srv)


def admin(srv, method: str, path: str, body: dict | None = None, token: str | None = TOKEN):
    req = urllib.request.Request(srv.ops + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


def data_key_counts(srv) -> tuple[str, dict[str, int]]:
    status, view = admin(srv, "GET", "/admin/v1/encryption/keys")
    assert status == 200, view
    return view["default"], {k["id"]: k["data_keys"] for k in view["keys"]}


@pytest.mark.slow
def test_master_key_rotation(private_server):
    srv = private_server(**rotation_config("k1", "k1"))
    c = own_client(srv)
    c.create_bucket(Bucket="rot")
    a, b = os.urandom(50_000), os.urandom(60_000)
    c.put_object(Bucket="rot", Key="a", Body=a, ServerSideEncryption="AES256")
    default, counts = data_key_counts(srv)
    assert default == "k1" and counts["k1"] >= 1

    # k2 becomes the default; k1 stays in the keyring for old objects.
    c = reconfigure(srv, **rotation_config("k2", "k1", "k2"))
    assert c.get_object(Bucket="rot", Key="a")["Body"].read() == a
    c.put_object(Bucket="rot", Key="b", Body=b, ServerSideEncryption="AES256")
    default, counts = data_key_counts(srv)
    assert default == "k2" and counts["k1"] >= 1 and counts["k2"] >= 1
    for token in (None, "wrong"):
        status, _ = admin(srv, "GET", "/admin/v1/encryption/keys", token=token)
        assert status in (401, 403)
        status, _ = admin(srv, "POST", "/admin/v1/encryption/rewrap", {"to": "k2"}, token=token)
        assert status in (401, 403)

    # Without k1 (and before any re-wrap) object a cannot be read: an error, never wrong bytes.
    c = reconfigure(srv, **rotation_config("k2", "k2"))
    with pytest.raises(ClientError) as info:
        c.get_object(Bucket="rot", Key="a")["Body"].read()
    assert 400 <= status_of(info.value) < 600
    assert c.get_object(Bucket="rot", Key="b")["Body"].read() == b

    # With k1 back, re-wrap everything to k2 ...
    c = reconfigure(srv, **rotation_config("k2", "k1", "k2"))
    status, result = admin(srv, "POST", "/admin/v1/encryption/rewrap", {"to": "k2"})
    assert status == 200, result
    assert isinstance(result["rewrapped"], int) and result["rewrapped"] >= 1
    _, counts = data_key_counts(srv)
    assert counts.get("k1", 0) == 0 and counts["k2"] >= 2
    # ... after which k1 can leave the keyring.
    c = reconfigure(srv, **rotation_config("k2", "k2"))
    assert c.get_object(Bucket="rot", Key="a")["Body"].read() == a
    assert c.get_object(Bucket="rot", Key="b")["Body"].read() == b


# ------------------------------------------------------------------ clients


@pytest.fixture
def key_file(tmp_path) -> Path:
    f = tmp_path / "sse-c.key"
    f.write_bytes(KEY_A)
    return f


def awscli_sse_args(mode: str, key_file: Path) -> tuple[list[str], list[str]]:
    """(upload arguments, download arguments) of `aws s3 cp` for a mode."""
    if mode == "sse-c":
        args = ["--sse-c", "AES256", "--sse-c-key", f"fileb://{key_file}"]
        return args, args
    if mode == "sse-s3":
        return ["--sse", "AES256"], []
    return ["--sse", "aws:kms", "--sse-kms-key-id", "bb-key-2"], []


@pytest.mark.parametrize("size", [100_000, 9 * MiB + 5], ids=["single", "multipart"])  # CLI threshold: 8 MiB
@pytest.mark.parametrize("mode", MODES)
def test_awscli_cp(cli, s3, bucket, tmp_path, key_file, mode, size):
    data = os.urandom(size)
    src, out = tmp_path / "src.bin", tmp_path / "out.bin"
    src.write_bytes(data)
    up, down = awscli_sse_args(mode, key_file)
    cli.aws("s3", "cp", str(src), f"s3://{bucket}/k", *up)
    head = s3.head_object(Bucket=bucket, Key="k", **MODES[mode][1])
    assert head["ContentLength"] == size
    assert_mode(head, mode)
    cli.aws("s3", "cp", f"s3://{bucket}/k", str(out), *down)
    assert out.read_bytes() == data


RCLONE_SSEC_KEY = "0123456789abcdef0123456789ABCDEF"  # 32 characters: rclone takes the raw key


def rclone_sse_flags(mode: str) -> list[str]:
    if mode == "sse-c":
        # SSE-C ETags are not MD5s; rclone's own check would misfire, the test compares bytes.
        return ["--s3-sse-customer-algorithm", "AES256", "--s3-sse-customer-key", RCLONE_SSEC_KEY,
                "--s3-sse-customer-key-md5", key_md5(RCLONE_SSEC_KEY.encode()), "--ignore-checksum"]
    return ["--s3-server-side-encryption", "AES256"]


def rclone_round_trip(cli, s3, bucket, tmp_path, mode, size):
    data = os.urandom(size)
    src, out = tmp_path / "src.bin", tmp_path / "out.bin"
    src.write_bytes(data)
    flags = rclone_sse_flags(mode) + ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"]
    cli.rclone("copyto", *flags, str(src), f":s3:{bucket}/k")
    if mode == "sse-c":
        key = RCLONE_SSEC_KEY.encode()
        assert_mode(s3.head_object(Bucket=bucket, Key="k", **ssec(key)), "sse-c", key=key)
        with s3_error("400", 400):
            s3.head_object(Bucket=bucket, Key="k")
    else:
        assert_mode(s3.head_object(Bucket=bucket, Key="k"), "sse-s3")
    download_flags = rclone_sse_flags(mode) if mode == "sse-c" else []
    cli.rclone("copyto", *download_flags, f":s3:{bucket}/k", str(out))
    assert out.read_bytes() == data


@pytest.mark.parametrize("size", [300_000, 12 * MiB], ids=["single", "multipart"])
def test_rclone_sse_s3(cli, s3, bucket, tmp_path, size):
    rclone_round_trip(cli, s3, bucket, tmp_path, "sse-s3", size)


class TlsServer:
    """A server seen through its HTTPS endpoint, for clients that refuse to
    send SSE-C keys over plain HTTP (rclone does)."""

    def __init__(self, server, cert):
        self.server, self.cert = server, cert
        self.s3_port = server.s3_port

    @property
    def endpoint(self) -> str:
        return self.server.endpoint.replace("http://", "https://")


@pytest.mark.parametrize("size", [300_000, 12 * MiB], ids=["single", "multipart"])
def test_rclone_sse_c_over_tls(private_server, certificate, tmp_path, size):
    cert, key = certificate
    # The secure default: SSE-C only over TLS.
    srv = private_server(
        server={"tls": {"cert_file": str(cert), "key_file": str(key)}},
        encryption={"require_tls_for_sse_c": True},
    )
    tls = TlsServer(srv, cert)
    s3 = boto3.session.Session(
        aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET, region_name="us-east-1"
    ).client("s3", endpoint_url=tls.endpoint, verify=str(cert),
             config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    s3.create_bucket(Bucket="tls-ssec")

    class TlsCli(Cli):
        def rclone(self, *args, **kw):
            return super().rclone("--ca-cert", str(cert), *args, **kw)

    rclone_round_trip(TlsCli(tls, tmp_path), s3, "tls-ssec", tmp_path, "sse-c", size)

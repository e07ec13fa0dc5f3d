"""Bucket lifecycle: the configuration calls with S3's validation, and the
worker applying rules on a server whose lifecycle "day" is one second —
expiration by prefix, tag and size, noncurrent versions, lone delete
markers, incomplete multipart uploads, x-amz-expiration, object lock."""

from __future__ import annotations

import time
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import client_for, ROOT_KEY, ROOT_SECRET
from helpers import s3_error


def rule(rule_id, **parts):
    return {"ID": rule_id, "Status": "Enabled", "Filter": parts.pop("Filter", {"Prefix": ""}), **parts}


def test_configuration_round_trips_and_is_removed(s3, bucket):
    with s3_error("NoSuchLifecycleConfiguration", 404):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    rules = [
        rule("logs", Filter={"And": {"Prefix": "logs/", "Tags": [{"Key": "keep", "Value": "no"}],
                                     "ObjectSizeGreaterThan": 10}},
             Expiration={"Days": 30},
             NoncurrentVersionExpiration={"NoncurrentDays": 7, "NewerNoncurrentVersions": 2}),
        rule("uploads", AbortIncompleteMultipartUpload={"DaysAfterInitiation": 3}),
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Date": "2031-01-01T00:00:00Z"}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [r["ID"] for r in got] == ["logs", "uploads", "off"]
    assert got[0]["Filter"]["And"]["Prefix"] == "logs/" and got[0]["Expiration"]["Days"] == 30
    assert got[0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7, "NewerNoncurrentVersions": 2}
    assert got[1]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 3
    assert got[2]["Status"] == "Disabled" and got[2]["Expiration"]["Date"].year == 2031
    s3.delete_bucket_lifecycle(Bucket=bucket)
    with s3_error("NoSuchLifecycleConfiguration", 404):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)


@pytest.mark.parametrize("bad, code, status", [
    (rule("r", Expiration={"Days": 0}), "InvalidArgument", 400),
    (rule("r", Expiration={"Date": "2031-01-01T12:00:00Z"}), "InvalidArgument", 400),
    (rule("r"), "InvalidRequest", 400),
    (rule("x" * 256, Expiration={"Days": 1}), "InvalidArgument", 400),
    (rule("r", Transitions=[{"Days": 30, "StorageClass": "GLACIER"}]), "NotImplemented", 501),
])
def test_bad_rules_are_refused(s3, bucket, bad, code, status):
    with s3_error(code, status):
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [bad]})


def test_rule_ids_must_be_unique(s3, bucket):
    same = [rule("a", Expiration={"Days": 1}), rule("a", Expiration={"Days": 2})]
    with s3_error("InvalidArgument", 400):
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": same})


@pytest.fixture
def quick(private_server):
    srv = private_server(lifecycle={"debug_day_secs": 1, "interval_secs": 1})
    s3 = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    name = f"lc-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return srv, s3, name


def keys(s3, bucket) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def eventually(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        assert time.monotonic() < deadline, "lifecycle did not act in time"
        time.sleep(0.5)


def test_current_versions_expire_by_prefix_tag_and_size(quick):
    srv, s3, bucket = quick
    s3.put_object(Bucket=bucket, Key="logs/a", Body=b"x" * 100)
    s3.put_object(Bucket=bucket, Key="logs/tiny", Body=b"x")
    s3.put_object(Bucket=bucket, Key="keep/b", Body=b"x" * 100)
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"x", Tagging="expire=yes")
    s3.put_object(Bucket=bucket, Key="untagged", Body=b"x")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        rule("logs", Filter={"And": {"Prefix": "logs/", "ObjectSizeGreaterThan": 10}}, Expiration={"Days": 2}),
        rule("tags", Filter={"Tag": {"Key": "expire", "Value": "yes"}}, Expiration={"Days": 2}),
    ]})
    head = s3.head_object(Bucket=bucket, Key="logs/a")
    assert 'rule-id="logs"' in head["ResponseMetadata"]["HTTPHeaders"]["x-amz-expiration"]
    put = s3.put_object(Bucket=bucket, Key="logs/new", Body=b"x" * 100)
    assert 'rule-id="logs"' in put["ResponseMetadata"]["HTTPHeaders"]["x-amz-expiration"]
    assert "x-amz-expiration" not in s3.head_object(Bucket=bucket, Key="keep/b")["ResponseMetadata"]["HTTPHeaders"]
    eventually(lambda: keys(s3, bucket) == ["keep/b", "logs/tiny", "untagged"])
    metrics = urllib.request.urlopen(f"{srv.ops}/metrics", timeout=5).read().decode()
    assert 'bleepstore_lifecycle_actions_total{action="expired"}' in metrics


def test_versioned_buckets_keep_history_as_the_rules_say(quick):
    _, s3, bucket = quick
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"2", b"3", b"4"):
        s3.put_object(Bucket=bucket, Key="doc", Body=body)
    s3.put_object(Bucket=bucket, Key="gone", Body=b"g")
    s3.delete_object(Bucket=bucket, Key="gone")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        rule("history", NoncurrentVersionExpiration={"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}),
        rule("markers", Filter={"Prefix": "gone"}, Expiration={"ExpiredObjectDeleteMarker": True}),
        rule("gone-versions", Filter={"Prefix": "gone"}, NoncurrentVersionExpiration={"NoncurrentDays": 1}),
    ]})

    def settled():
        listing = s3.list_object_versions(Bucket=bucket)
        versions = [(v["Key"], v["IsLatest"]) for v in listing.get("Versions", [])]
        markers = listing.get("DeleteMarkers", [])
        return sorted(versions) == [("doc", False), ("doc", True)] and not markers

    eventually(settled)
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"4"


def test_incomplete_uploads_are_aborted(quick):
    _, s3, bucket = quick
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=1, Body=b"p")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        rule("mpu", AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1})]})
    eventually(lambda: not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"))
    with pytest.raises(ClientError):
        s3.list_parts(Bucket=bucket, Key="big", UploadId=upload)


def test_locked_versions_are_not_expired(quick):
    srv, s3, _ = quick
    bucket = f"lc-lock-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object(Bucket=bucket, Key="held", Body=b"h", ObjectLockLegalHoldStatus="ON")
    old = s3.put_object(Bucket=bucket, Key="held", Body=b"h2")
    s3.put_object(Bucket=bucket, Key="free", Body=b"f")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        rule("all", NoncurrentVersionExpiration={"NoncurrentDays": 1}, Expiration={"Days": 1})]})

    def held_only():
        versions = s3.list_object_versions(Bucket=bucket).get("Versions", [])
        return [v["Key"] for v in versions if v["Key"] == "free"] == [] and any(
            v["Key"] == "held" and v["VersionId"] != old["VersionId"] for v in versions)

    eventually(held_only)
    metrics = urllib.request.urlopen(f"{srv.ops}/metrics", timeout=5).read().decode()
    assert 'bleepstore_lifecycle_actions_total{action="skipped"}' in metrics

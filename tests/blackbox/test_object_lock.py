"""Object Lock: the bucket configuration and its default retention, per-version
retention and legal holds, what they refuse (and who may bypass governance
mode), DeleteObjects with locked versions, multipart and copy, awscli.

COMPLIANCE retention cannot be lifted by anyone, so the tests here only set
COMPLIANCE retention a few seconds long and wait for it to expire."""

import datetime as dt
import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ALT_OWNER_ID, empty_and_delete
from helpers import s3_error

DAY = dt.timedelta(days=1)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def whole_seconds_from_now(delta: dt.timedelta) -> dt.datetime:
    """now + delta, rounded up to a whole second (S3 dates have no finer
    precision to compare)."""
    return (utcnow() + delta + dt.timedelta(seconds=1)).replace(microsecond=0)


def assert_close(got: dt.datetime, want: dt.datetime, slack: float = 1.0) -> None:
    assert abs((got - want).total_seconds()) <= slack, (got, want)


@pytest.fixture
def lock_bucket(s3, bucket_name):
    s3.create_bucket(Bucket=bucket_name, ObjectLockEnabledForBucket=True)
    yield bucket_name
    empty_and_delete(s3, bucket_name)


def lock_config(mode=None, days=None, years=None, enabled="Enabled") -> dict:
    cfg = {"ObjectLockEnabled": enabled}
    if mode is not None:
        retention = {"Mode": mode}
        if days is not None:
            retention["Days"] = days
        if years is not None:
            retention["Years"] = years
        cfg["Rule"] = {"DefaultRetention": retention}
    return cfg


def put_locked(s3, bucket, key, mode="GOVERNANCE", until=None, body=b"locked", **kw) -> str:
    """PUT with retention (default: GOVERNANCE for a day); returns the version id."""
    until = until or whole_seconds_from_now(DAY)
    return s3.put_object(Bucket=bucket, Key=key, Body=body, ObjectLockMode=mode,
                         ObjectLockRetainUntilDate=until, **kw)["VersionId"]


def retention_of(s3, bucket, key, vid) -> dict:
    return s3.get_object_retention(Bucket=bucket, Key=key, VersionId=vid)["Retention"]


def set_retention(s3, bucket, key, vid, mode, until, **kw):
    return s3.put_object_retention(Bucket=bucket, Key=key, VersionId=vid,
                                   Retention={"Mode": mode, "RetainUntilDate": until}, **kw)


def set_hold(s3, bucket, key, vid, status):
    s3.put_object_legal_hold(Bucket=bucket, Key=key, VersionId=vid, LegalHold={"Status": status})


def version_exists(s3, bucket, key, vid) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key, VersionId=vid)
        return True
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
        return False


def wait_until(moment: dt.datetime, limit: float = 15.0) -> None:
    delay = (moment - utcnow()).total_seconds() + 0.5
    assert delay <= limit, "retention longer than this test may wait"
    time.sleep(max(delay, 0))


def my_id(s3) -> str:
    return s3.list_buckets()["Owner"]["ID"]


# ------------------------------------------------------ bucket configuration


def test_lock_bucket_is_versioned(s3, lock_bucket):
    assert s3.get_bucket_versioning(Bucket=lock_bucket)["Status"] == "Enabled"
    cfg = s3.get_object_lock_configuration(Bucket=lock_bucket)["ObjectLockConfiguration"]
    assert cfg["ObjectLockEnabled"] == "Enabled"
    assert "Rule" not in cfg


@pytest.mark.parametrize("retention", [{"Mode": "GOVERNANCE", "Days": 1}, {"Mode": "COMPLIANCE", "Years": 1}])
def test_default_retention_config_roundtrip(s3, lock_bucket, retention):
    s3.put_object_lock_configuration(
        Bucket=lock_bucket,
        ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}})
    cfg = s3.get_object_lock_configuration(Bucket=lock_bucket)["ObjectLockConfiguration"]
    assert cfg == {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}}
    # Back to no default (no object is written while a COMPLIANCE default is set).
    s3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration=lock_config())
    assert "Rule" not in s3.get_object_lock_configuration(Bucket=lock_bucket)["ObjectLockConfiguration"]


@pytest.mark.parametrize("cfg,code", [
    (lock_config("GOVERNANCE", days=1, years=1), "MalformedXML"),
    (lock_config("GOVERNANCE", days=0), "InvalidRetentionPeriod"),
    (lock_config("GOVERNANCE", days=-1), "InvalidRetentionPeriod"),
    (lock_config("COMPLIANCE", years=0), "InvalidRetentionPeriod"),
    (lock_config("governance", days=1), "MalformedXML"),  # modes are case-sensitive
    (lock_config("abc", days=1), "MalformedXML"),
    (lock_config(enabled="Disabled"), "MalformedXML"),
    (lock_config(enabled="enabled"), "MalformedXML"),
], ids=["days-and-years", "zero-days", "negative-days", "zero-years", "lowercase-mode", "bad-mode",
        "disabled", "lowercase-enabled"])
def test_invalid_lock_configuration(s3, lock_bucket, cfg, code):
    with s3_error(code, 400):
        s3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration=cfg)
    assert s3.get_object_lock_configuration(Bucket=lock_bucket)["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled"}


def test_lock_configuration_needs_versioning(s3, bucket):
    with s3_error("InvalidBucketState", 409):
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=lock_config("GOVERNANCE", days=1))
    with s3_error("ObjectLockConfigurationNotFoundError", 404):
        s3.get_object_lock_configuration(Bucket=bucket)


def test_enable_lock_on_versioned_bucket(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=lock_config("GOVERNANCE", days=1))
    cfg = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert cfg["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}
    # Versioning of a lock bucket cannot be suspended.
    with s3_error("InvalidBucketState", 409):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_cannot_suspend_versioning_of_lock_bucket(s3, lock_bucket):
    with s3_error("InvalidBucketState", 409):
        s3.put_bucket_versioning(Bucket=lock_bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=lock_bucket)["Status"] == "Enabled"


# ------------------------------------------------------- lock headers on PUT


def test_put_object_with_lock_headers(s3, lock_bucket):
    until = whole_seconds_from_now(DAY)
    vid = put_locked(s3, lock_bucket, "k", until=until, ObjectLockLegalHoldStatus="ON")
    try:
        for r in (s3.head_object(Bucket=lock_bucket, Key="k"), s3.get_object(Bucket=lock_bucket, Key="k")):
            assert r["VersionId"] == vid
            assert r["ObjectLockMode"] == "GOVERNANCE"
            assert_close(r["ObjectLockRetainUntilDate"], until)
            assert r["ObjectLockLegalHoldStatus"] == "ON"
        ret = retention_of(s3, lock_bucket, "k", vid)
        assert ret["Mode"] == "GOVERNANCE"
        assert_close(ret["RetainUntilDate"], until)
    finally:
        set_hold(s3, lock_bucket, "k", vid, "OFF")


@pytest.mark.parametrize("kw", [
    {"ObjectLockMode": "GOVERNANCE"},
    {"ObjectLockRetainUntilDate": whole_seconds_from_now(DAY)},
    {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)},
], ids=["mode-without-date", "date-without-mode", "date-in-the-past"])
def test_incomplete_lock_headers(s3, lock_bucket, kw):
    with s3_error("InvalidArgument", 400):
        s3.put_object(Bucket=lock_bucket, Key="k", Body=b"x", **kw)
    assert "Versions" not in s3.list_object_versions(Bucket=lock_bucket)


@pytest.mark.parametrize("kw", [
    {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": whole_seconds_from_now(DAY)},
    {"ObjectLockLegalHoldStatus": "ON"},
], ids=["retention", "legal-hold"])
def test_lock_headers_need_a_lock_bucket(s3, bucket, kw):
    with s3_error("InvalidRequest", 400):
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", **kw)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="k")


def test_default_retention_applies_to_new_versions(s3, lock_bucket):
    s3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration=lock_config("GOVERNANCE", days=1))
    before = utcnow()
    vid = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"x")["VersionId"]
    head = s3.head_object(Bucket=lock_bucket, Key="k", VersionId=vid)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert before + DAY - dt.timedelta(seconds=60) <= head["ObjectLockRetainUntilDate"] <= utcnow() + DAY + dt.timedelta(seconds=60)
    assert retention_of(s3, lock_bucket, "k", vid)["Mode"] == "GOVERNANCE"
    with s3_error("AccessDenied", 403):
        s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid)
    # An explicit retention wins over the default.
    until = whole_seconds_from_now(3 * DAY)
    vid2 = put_locked(s3, lock_bucket, "k", until=until)
    assert_close(s3.head_object(Bucket=lock_bucket, Key="k", VersionId=vid2)["ObjectLockRetainUntilDate"], until)


# ------------------------------------------------ retention and legal hold API


def test_retention_and_legal_hold_by_version(s3, lock_bucket):
    v1 = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"1")["VersionId"]
    v2 = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"2")["VersionId"]
    with s3_error("NoSuchObjectLockConfiguration", 404):
        s3.get_object_retention(Bucket=lock_bucket, Key="k", VersionId=v1)
    until = whole_seconds_from_now(DAY)
    set_retention(s3, lock_bucket, "k", v1, "GOVERNANCE", until)
    ret = retention_of(s3, lock_bucket, "k", v1)
    assert ret["Mode"] == "GOVERNANCE"
    assert_close(ret["RetainUntilDate"], until)
    assert s3.head_object(Bucket=lock_bucket, Key="k", VersionId=v1)["ObjectLockMode"] == "GOVERNANCE"
    with s3_error("NoSuchObjectLockConfiguration", 404):  # the current version v2 has none
        s3.get_object_retention(Bucket=lock_bucket, Key="k")
    assert "ObjectLockMode" not in s3.head_object(Bucket=lock_bucket, Key="k")

    set_hold(s3, lock_bucket, "k", v2, "ON")
    assert s3.get_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=v2)["LegalHold"]["Status"] == "ON"
    assert s3.get_object_legal_hold(Bucket=lock_bucket, Key="k")["LegalHold"]["Status"] == "ON"
    assert s3.head_object(Bucket=lock_bucket, Key="k", VersionId=v2)["ObjectLockLegalHoldStatus"] == "ON"
    # AWS answers NoSuchObjectLockConfiguration for a version that never had a hold.
    with s3_error("NoSuchObjectLockConfiguration", 404):
        s3.get_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=v1)
    set_hold(s3, lock_bucket, "k", v2, "OFF")
    assert s3.get_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=v2)["LegalHold"]["Status"] == "OFF"


def test_retention_api_needs_a_lock_bucket(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with s3_error("InvalidRequest", 400):
        s3.get_object_retention(Bucket=bucket, Key="k")
    with s3_error("InvalidRequest", 400):
        s3.put_object_retention(Bucket=bucket, Key="k",
                                Retention={"Mode": "GOVERNANCE", "RetainUntilDate": whole_seconds_from_now(DAY)})
    with s3_error("InvalidRequest", 400):
        s3.get_object_legal_hold(Bucket=bucket, Key="k")
    with s3_error("InvalidRequest", 400):
        s3.put_object_legal_hold(Bucket=bucket, Key="k", LegalHold={"Status": "ON"})
    assert "ObjectLockMode" not in s3.head_object(Bucket=bucket, Key="k")


def test_malformed_hold_and_retention(s3, lock_bucket):
    vid = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"x")["VersionId"]
    with s3_error("MalformedXML", 400):
        set_hold(s3, lock_bucket, "k", vid, "on")
    with s3_error("MalformedXML", 400):
        set_retention(s3, lock_bucket, "k", vid, "governance", whole_seconds_from_now(DAY))
    with s3_error("NoSuchObjectLockConfiguration", 404):
        s3.get_object_retention(Bucket=lock_bucket, Key="k", VersionId=vid)


# ------------------------------------------------------------------ refusals


def test_governance_blocks_version_delete_unless_bypassed(s3, lock_bucket):
    vid = put_locked(s3, lock_bucket, "k")
    with s3_error("AccessDenied", 403):
        s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid)
    assert version_exists(s3, lock_bucket, "k", vid)
    r = s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid, BypassGovernanceRetention=True)
    assert r["VersionId"] == vid
    assert not version_exists(s3, lock_bucket, "k", vid)


def test_alt_user_cannot_bypass_governance(s3, s3_alt, lock_bucket):
    s3.put_bucket_acl(Bucket=lock_bucket, GrantFullControl=f"id={ALT_OWNER_ID},id={my_id(s3)}")
    vid = put_locked(s3, lock_bucket, "k")
    free = s3.put_object(Bucket=lock_bucket, Key="free", Body=b"x")["VersionId"]
    with s3_error("AccessDenied", 403):
        s3_alt.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid, BypassGovernanceRetention=True)
    assert version_exists(s3, lock_bucket, "k", vid)
    # The grant itself works: alt may delete a version that is not locked.
    s3_alt.delete_object(Bucket=lock_bucket, Key="free", VersionId=free)
    assert not version_exists(s3, lock_bucket, "free", free)


@pytest.mark.slow
def test_compliance_retention_binds_everyone_until_it_expires(s3, lock_bucket):
    until = whole_seconds_from_now(dt.timedelta(seconds=3))
    vid = put_locked(s3, lock_bucket, "k", mode="COMPLIANCE", until=until)
    for bypass in (False, True):
        with s3_error("AccessDenied", 403):
            s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid, BypassGovernanceRetention=bypass)
        with s3_error("AccessDenied", 403):  # shorten
            set_retention(s3, lock_bucket, "k", vid, "COMPLIANCE", until - dt.timedelta(seconds=1),
                          BypassGovernanceRetention=bypass)
        with s3_error("AccessDenied", 403):  # weaken to governance
            set_retention(s3, lock_bucket, "k", vid, "GOVERNANCE", until, BypassGovernanceRetention=bypass)
    extended = until + dt.timedelta(seconds=1)
    set_retention(s3, lock_bucket, "k", vid, "COMPLIANCE", extended)
    ret = retention_of(s3, lock_bucket, "k", vid)
    assert ret["Mode"] == "COMPLIANCE"
    assert_close(ret["RetainUntilDate"], extended)
    wait_until(extended)
    s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid)
    assert not version_exists(s3, lock_bucket, "k", vid)


def test_governance_retention_changes(s3, lock_bucket):
    until = whole_seconds_from_now(2 * DAY)
    vid = put_locked(s3, lock_bucket, "k", until=until)
    shorter = until - DAY
    with s3_error("AccessDenied", 403):
        set_retention(s3, lock_bucket, "k", vid, "GOVERNANCE", shorter)
    assert_close(retention_of(s3, lock_bucket, "k", vid)["RetainUntilDate"], until)
    set_retention(s3, lock_bucket, "k", vid, "GOVERNANCE", shorter, BypassGovernanceRetention=True)
    assert_close(retention_of(s3, lock_bucket, "k", vid)["RetainUntilDate"], shorter)
    longer = until + DAY  # extending needs no bypass
    set_retention(s3, lock_bucket, "k", vid, "GOVERNANCE", longer)
    assert_close(retention_of(s3, lock_bucket, "k", vid)["RetainUntilDate"], longer)


def test_governance_to_compliance_needs_bypass(s3, lock_bucket):
    # Seconds only: if the server wrongly accepts, the COMPLIANCE lock expires soon.
    until = whole_seconds_from_now(dt.timedelta(seconds=3))
    vid = put_locked(s3, lock_bucket, "k", until=until)
    with s3_error("AccessDenied", 403):
        set_retention(s3, lock_bucket, "k", vid, "COMPLIANCE", until)
    assert retention_of(s3, lock_bucket, "k", vid)["Mode"] == "GOVERNANCE"


def test_legal_hold_blocks_delete_until_released(s3, lock_bucket):
    vid = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"x", ObjectLockLegalHoldStatus="ON")["VersionId"]
    for bypass in (False, True):  # a legal hold is not governance retention
        with s3_error("AccessDenied", 403):
            s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid, BypassGovernanceRetention=bypass)
    assert version_exists(s3, lock_bucket, "k", vid)
    set_hold(s3, lock_bucket, "k", vid, "OFF")
    s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid)
    assert not version_exists(s3, lock_bucket, "k", vid)


def test_delete_without_version_id_adds_a_marker(s3, lock_bucket):
    vid = put_locked(s3, lock_bucket, "k", ObjectLockLegalHoldStatus="ON")
    try:
        r = s3.delete_object(Bucket=lock_bucket, Key="k")
        assert r["DeleteMarker"] is True and r["VersionId"] != vid
        with s3_error("NoSuchKey", 404):
            s3.get_object(Bucket=lock_bucket, Key="k")
        assert s3.get_object(Bucket=lock_bucket, Key="k", VersionId=vid)["Body"].read() == b"locked"
        # The marker itself is not locked.
        s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=r["VersionId"])
        assert s3.get_object(Bucket=lock_bucket, Key="k")["VersionId"] == vid
    finally:
        set_hold(s3, lock_bucket, "k", vid, "OFF")


def test_delete_objects_reports_locked_versions(s3, lock_bucket):
    locked = put_locked(s3, lock_bucket, "locked")
    free = s3.put_object(Bucket=lock_bucket, Key="free", Body=b"x")["VersionId"]
    r = s3.delete_objects(Bucket=lock_bucket, Delete={"Objects": [
        {"Key": "locked", "VersionId": locked}, {"Key": "free", "VersionId": free}]})
    assert [(d["Key"], d["VersionId"]) for d in r["Deleted"]] == [("free", free)]
    assert [(e["Key"], e.get("VersionId"), e["Code"]) for e in r["Errors"]] == [("locked", locked, "AccessDenied")]
    assert version_exists(s3, lock_bucket, "locked", locked)
    assert not version_exists(s3, lock_bucket, "free", free)
    r = s3.delete_objects(Bucket=lock_bucket, BypassGovernanceRetention=True,
                          Delete={"Objects": [{"Key": "locked", "VersionId": locked}]})
    assert "Errors" not in r
    assert not version_exists(s3, lock_bucket, "locked", locked)


# --------------------------------------------------------- multipart and copy


def test_multipart_upload_with_retention(s3, lock_bucket):
    until = whole_seconds_from_now(DAY)
    upload_id = s3.create_multipart_upload(Bucket=lock_bucket, Key="mp", ObjectLockMode="GOVERNANCE",
                                           ObjectLockRetainUntilDate=until)["UploadId"]
    etag = s3.upload_part(Bucket=lock_bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"part")["ETag"]
    done = s3.complete_multipart_upload(Bucket=lock_bucket, Key="mp", UploadId=upload_id,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    vid = done["VersionId"]
    head = s3.head_object(Bucket=lock_bucket, Key="mp", VersionId=vid)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert_close(head["ObjectLockRetainUntilDate"], until)
    with s3_error("AccessDenied", 403):
        s3.delete_object(Bucket=lock_bucket, Key="mp", VersionId=vid)


def test_copy_object_with_lock_headers(s3, lock_bucket):
    src = s3.put_object(Bucket=lock_bucket, Key="src", Body=b"source")["VersionId"]
    until = whole_seconds_from_now(DAY)
    r = s3.copy_object(Bucket=lock_bucket, Key="dst", CopySource={"Bucket": lock_bucket, "Key": "src"},
                       ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until,
                       ObjectLockLegalHoldStatus="ON")
    vid = r["VersionId"]
    try:
        head = s3.head_object(Bucket=lock_bucket, Key="dst", VersionId=vid)
        assert head["ObjectLockMode"] == "GOVERNANCE"
        assert_close(head["ObjectLockRetainUntilDate"], until)
        assert head["ObjectLockLegalHoldStatus"] == "ON"
        assert "ObjectLockMode" not in s3.head_object(Bucket=lock_bucket, Key="src", VersionId=src)
        with s3_error("AccessDenied", 403):
            s3.delete_object(Bucket=lock_bucket, Key="dst", VersionId=vid, BypassGovernanceRetention=True)
    finally:
        set_hold(s3, lock_bucket, "dst", vid, "OFF")


# ------------------------------------------------------------------- awscli


def test_awscli_retention_and_legal_hold(cli, s3, lock_bucket):
    vid = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"x")["VersionId"]
    until = whole_seconds_from_now(DAY)
    retention = json.dumps({"Mode": "GOVERNANCE", "RetainUntilDate": until.strftime("%Y-%m-%dT%H:%M:%SZ")})
    cli.aws("s3api", "put-object-retention", "--bucket", lock_bucket, "--key", "k", "--version-id", vid,
            "--retention", retention)
    got = json.loads(cli.aws("s3api", "get-object-retention", "--bucket", lock_bucket, "--key", "k",
                             "--version-id", vid).stdout)["Retention"]
    assert got["Mode"] == "GOVERNANCE"
    parsed = dt.datetime.fromisoformat(got["RetainUntilDate"].replace("Z", "+00:00"))
    assert_close(parsed, until)
    assert_close(retention_of(s3, lock_bucket, "k", vid)["RetainUntilDate"], until)

    cli.aws("s3api", "put-object-legal-hold", "--bucket", lock_bucket, "--key", "k", "--version-id", vid,
            "--legal-hold", "Status=ON")
    hold = json.loads(cli.aws("s3api", "get-object-legal-hold", "--bucket", lock_bucket, "--key", "k",
                              "--version-id", vid).stdout)
    assert hold["LegalHold"]["Status"] == "ON"
    refused = cli.aws("s3api", "delete-object", "--bucket", lock_bucket, "--key", "k", "--version-id", vid,
                      "--bypass-governance-retention", check=False)
    assert refused.returncode != 0 and b"AccessDenied" in refused.stderr
    cli.aws("s3api", "put-object-legal-hold", "--bucket", lock_bucket, "--key", "k", "--version-id", vid,
            "--legal-hold", "Status=OFF")
    cli.aws("s3api", "delete-object", "--bucket", lock_bucket, "--key", "k", "--version-id", vid,
            "--bypass-governance-retention")
    assert not version_exists(s3, lock_bucket, "k", vid)

"""Bucket lifecycle: naming rules, ownership, location, emptiness."""

import pytest

from conftest import ROOT_KEY, ROOT_SECRET, client_for, ALT_NAME, empty_and_delete, unique_name
from helpers import parse_error, s3_error, xml_root


def test_create_head_delete(s3, bucket_name):
    r = s3.create_bucket(Bucket=bucket_name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["Location"] == f"/{bucket_name}"
    h = s3.head_bucket(Bucket=bucket_name)
    assert h["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    s3.delete_bucket(Bucket=bucket_name)
    with s3_error("404", 404):
        s3.head_bucket(Bucket=bucket_name)


def test_head_missing_bucket_is_404_without_body(raw, signed):
    r = signed("HEAD", f"/{unique_name('missing')}")
    assert r.status == 404
    assert r.body == b""


@pytest.mark.parametrize(
    "name",
    ["ab", "a" * 64, "My-Bucket", "my_bucket", "-abc", "abc-", "a..b", "a.-b", "192.168.1.1",
     "xn--abc", "abc-s3alias"],
)
def test_invalid_bucket_names(signed, name):
    r = signed("PUT", f"/{name}")
    assert r.status == 400, r.body
    err = parse_error(r.body)
    assert err["Code"] == "InvalidBucketName"
    assert err["RequestId"] == r.header("x-amz-request-id")


@pytest.mark.parametrize("shape", ["three", "max63", "dots", "ipish"])
def test_valid_edge_bucket_names(s3, shape):
    u = unique_name("v")  # v-<12 hex>
    name = {
        "three": u[2:5],
        "max63": (u + "a" * 63)[:63],
        "dots": f"{u}.b.1",
        "ipish": f"192.168.1.{u[2:6]}",
    }[shape]
    empty_and_delete(s3, name)
    s3.create_bucket(Bucket=name)
    try:
        s3.head_bucket(Bucket=name)
        assert name in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    finally:
        s3.delete_bucket(Bucket=name)


def test_location_constraint(s3, bucket_name):
    s3.create_bucket(Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    try:
        assert s3.get_bucket_location(Bucket=bucket_name)["LocationConstraint"] == "eu-west-1"
        h = s3.head_bucket(Bucket=bucket_name)
        assert h["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "eu-west-1"
    finally:
        s3.delete_bucket(Bucket=bucket_name)


def test_default_location_is_empty_constraint(s3, bucket, signed):
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] is None
    r = signed("GET", f"/{bucket}", query="location")
    assert r.status == 200
    root = xml_root(r.body)
    assert root.tag == "LocationConstraint" and not (root.text or "").strip()


def test_invalid_location_constraint(signed, bucket_name):
    body = (b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<LocationConstraint>bad region!</LocationConstraint></CreateBucketConfiguration>")
    r = signed("PUT", f"/{bucket_name}", body=body)
    assert r.status == 400
    assert parse_error(r.body)["Code"] == "InvalidLocationConstraint"


def test_malformed_create_bucket_body(signed, bucket_name):
    r = signed("PUT", f"/{bucket_name}", body=b"<CreateBucketConfiguration><Loc")
    assert r.status == 400
    assert parse_error(r.body)["Code"] == "MalformedXML"


def test_recreating_own_bucket_in_us_east_1(s3, bucket):
    # S3's us-east-1 behaviour: same ACL is a no-op that keeps the contents,
    # a different ACL is a conflict.
    s3.put_object(Bucket=bucket, Key="kept", Body=b"still here")
    s3.create_bucket(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"still here"
    with s3_error("BucketAlreadyExists", 409):
        s3.create_bucket(Bucket=bucket, ACL="public-read")
    assert len(s3.get_bucket_acl(Bucket=bucket)["Grants"]) == 1


def test_bucket_already_owned_by_you_outside_us_east_1(private_server):
    srv = private_server(server={"region": "eu-west-1"})
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    c.create_bucket(Bucket="owned", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with s3_error("BucketAlreadyOwnedByYou", 409):
        c.create_bucket(Bucket="owned", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})


def test_bucket_already_exists_for_other_user(s3_alt, bucket):
    with s3_error("BucketAlreadyExists", 409):
        s3_alt.create_bucket(Bucket=bucket)


def test_delete_non_empty_bucket(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with s3_error("BucketNotEmpty", 409):
        s3.delete_bucket(Bucket=bucket)
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)
    with s3_error("NoSuchBucket", 404):
        s3.delete_bucket(Bucket=bucket)


def test_other_user_cannot_delete_bucket(s3_alt, bucket, s3):
    with s3_error("AccessDenied", 403):
        s3_alt.delete_bucket(Bucket=bucket)
    s3.head_bucket(Bucket=bucket)


def test_list_buckets_per_owner(s3, s3_alt, bucket):
    alt_bucket = unique_name("alt")
    s3_alt.create_bucket(Bucket=alt_bucket)
    try:
        mine = s3.list_buckets()
        theirs = s3_alt.list_buckets()
        mine_names = {b["Name"] for b in mine["Buckets"]}
        their_names = {b["Name"] for b in theirs["Buckets"]}
        assert bucket in mine_names and alt_bucket not in mine_names
        assert alt_bucket in their_names and bucket not in their_names
        assert theirs["Owner"]["DisplayName"] == ALT_NAME
        assert mine["Owner"]["ID"] != theirs["Owner"]["ID"]
        for b in mine["Buckets"]:
            assert b["CreationDate"].year >= 2024
    finally:
        s3_alt.delete_bucket(Bucket=alt_bucket)


def test_list_buckets_anonymous_denied(s3_anon):
    with s3_error("AccessDenied", 403):
        s3_anon.list_buckets()


def test_get_bucket_versioning_unset(s3, bucket):
    r = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in r


def test_operations_on_missing_bucket(s3):
    name = unique_name("nope")
    with s3_error("NoSuchBucket", 404):
        s3.list_objects_v2(Bucket=name)
    with s3_error("NoSuchBucket", 404):
        s3.put_object(Bucket=name, Key="k", Body=b"x")
    with s3_error("NoSuchBucket", 404):
        s3.get_bucket_location(Bucket=name)

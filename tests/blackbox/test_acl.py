"""Canned ACLs, grant headers, AccessControlPolicy documents and what they
let the second user and anonymous requesters do."""

import pytest

from conftest import ALT_EMAIL, ALT_NAME, ALT_OWNER_ID
from helpers import parse_error, s3_error

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


def grants(acl):
    out = set()
    for g in acl["Grants"]:
        grantee = g["Grantee"]
        who = grantee.get("URI") or grantee.get("ID")
        out.add((grantee["Type"], who, g["Permission"]))
    return out


def my_id(s3):
    return s3.list_buckets()["Owner"]["ID"]


def test_default_acl_is_private(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    me = my_id(s3)
    for acl in (s3.get_bucket_acl(Bucket=bucket), s3.get_object_acl(Bucket=bucket, Key="k")):
        assert acl["Owner"]["ID"] == me
        assert grants(acl) == {("CanonicalUser", me, "FULL_CONTROL")}


def test_private_object_denied_to_others(s3, s3_alt, s3_anon, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    with s3_error("AccessDenied", 403):
        s3_alt.get_object(Bucket=bucket, Key="k")
    with s3_error("AccessDenied", 403):
        s3_anon.get_object(Bucket=bucket, Key="k")
    with s3_error("AccessDenied", 403):
        s3_alt.list_objects_v2(Bucket=bucket)
    with s3_error("AccessDenied", 403):
        s3_alt.put_object(Bucket=bucket, Key="alt", Body=b"x")
    with s3_error("AccessDenied", 403):
        s3_alt.get_bucket_acl(Bucket=bucket)
    # A missing key in a bucket one cannot list is 403, not 404.
    with s3_error("AccessDenied", 403):
        s3_anon.get_object(Bucket=bucket, Key="missing")


def test_public_read_object(s3, s3_alt, s3_anon, bucket):
    s3.put_object(Bucket=bucket, Key="pub", Body=b"public", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="priv", Body=b"private")
    assert s3_anon.get_object(Bucket=bucket, Key="pub")["Body"].read() == b"public"
    assert s3_alt.get_object(Bucket=bucket, Key="pub")["Body"].read() == b"public"
    assert s3_anon.head_object(Bucket=bucket, Key="pub")["ContentLength"] == 6
    with s3_error("AccessDenied", 403):
        s3_anon.get_object(Bucket=bucket, Key="priv")
    acl = s3.get_object_acl(Bucket=bucket, Key="pub")
    assert ("Group", ALL_USERS, "READ") in grants(acl)
    # Read is not write.
    with s3_error("AccessDenied", 403):
        s3_anon.put_object(Bucket=bucket, Key="pub", Body=b"vandal")
    with s3_error("AccessDenied", 403):
        s3_anon.delete_object(Bucket=bucket, Key="pub")
    assert s3.get_object(Bucket=bucket, Key="pub")["Body"].read() == b"public"


def test_public_read_bucket_lists_anonymously(s3, s3_anon, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with s3_error("AccessDenied", 403):
        s3_anon.list_objects_v2(Bucket=bucket)
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert [o["Key"] for o in s3_anon.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    # Listing the bucket does not make its private objects readable.
    with s3_error("AccessDenied", 403):
        s3_anon.get_object(Bucket=bucket, Key="k")
    # But a missing key is now an honest 404.
    with s3_error("NoSuchKey", 404):
        s3_anon.get_object(Bucket=bucket, Key="missing")


def test_authenticated_read(s3, s3_alt, s3_anon, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"auth", ACL="authenticated-read")
    assert s3_alt.get_object(Bucket=bucket, Key="k")["Body"].read() == b"auth"
    with s3_error("AccessDenied", 403):
        s3_anon.get_object(Bucket=bucket, Key="k")
    assert ("Group", AUTH_USERS, "READ") in grants(s3.get_object_acl(Bucket=bucket, Key="k"))


def test_public_read_write_bucket(s3, s3_anon, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    s3_anon.put_object(Bucket=bucket, Key="anon", Body=b"from anon")
    listed = s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"]
    assert [o["Key"] for o in listed] == ["anon"]
    # The object belongs to the anonymous writer; the bucket owner may still delete it.
    s3.delete_object(Bucket=bucket, Key="anon")


def test_bucket_owner_full_control_canned(s3, s3_alt, bucket):
    s3.put_bucket_acl(Bucket=bucket, GrantWrite=f"id={ALT_OWNER_ID}")
    s3_alt.put_object(Bucket=bucket, Key="alt-obj", Body=b"alt", ACL="bucket-owner-full-control")
    acl = s3_alt.get_object_acl(Bucket=bucket, Key="alt-obj")
    assert acl["Owner"]["ID"] == ALT_OWNER_ID
    assert ("CanonicalUser", my_id(s3), "FULL_CONTROL") in grants(acl)
    assert s3.get_object(Bucket=bucket, Key="alt-obj")["Body"].read() == b"alt"


def test_invalid_canned_acl(s3, bucket):
    with s3_error("InvalidArgument", 400):
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="world-writable")


def test_canned_and_grant_headers_conflict(signed, bucket):
    r = signed("PUT", f"/{bucket}/k", body=b"x",
               headers={"x-amz-acl": "public-read", "x-amz-grant-read": f"id={ALT_OWNER_ID}"})
    assert r.status == 400
    assert parse_error(r.body)["Code"] == "InvalidRequest"


def test_grant_headers(s3, s3_alt, bucket):
    s3.put_object(Bucket=bucket, Key="g", Body=b"granted", GrantRead=f'id="{ALT_OWNER_ID}"')
    assert s3_alt.get_object(Bucket=bucket, Key="g")["Body"].read() == b"granted"
    with s3_error("AccessDenied", 403):
        s3_alt.get_object_acl(Bucket=bucket, Key="g")
    s3.put_object_acl(Bucket=bucket, Key="g", GrantReadACP=f"emailAddress={ALT_EMAIL}",
                      GrantRead=f"id={ALT_OWNER_ID}")
    acl = s3_alt.get_object_acl(Bucket=bucket, Key="g")
    assert ("CanonicalUser", ALT_OWNER_ID, "READ_ACP") in grants(acl)
    names = {g["Grantee"].get("DisplayName") for g in acl["Grants"]}
    assert ALT_NAME in names


def test_grant_unknown_email_or_id(s3, bucket):
    with s3_error("UnresolvableGrantByEmailAddress", 400):
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", GrantRead="emailAddress=nobody@example.com")
    with s3_error("InvalidArgument", 400):
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", GrantRead="id=" + "0" * 64)


def test_bucket_write_grant(s3, s3_alt, bucket):
    with s3_error("AccessDenied", 403):
        s3_alt.put_object(Bucket=bucket, Key="w", Body=b"x")
    s3.put_bucket_acl(Bucket=bucket, GrantWrite=f"id={ALT_OWNER_ID}", GrantFullControl=f"id={my_id(s3)}")
    s3_alt.put_object(Bucket=bucket, Key="w", Body=b"x")
    # Write on the bucket is not read on it.
    with s3_error("AccessDenied", 403):
        s3_alt.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["w"]


def test_access_control_policy_document(s3, s3_alt, bucket):
    s3.put_object(Bucket=bucket, Key="doc", Body=b"doc")
    me = my_id(s3)
    policy = {
        "Owner": {"ID": me},
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": me}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "CanonicalUser", "ID": ALT_OWNER_ID}, "Permission": "READ"},
            {"Grantee": {"Type": "Group", "URI": AUTH_USERS}, "Permission": "READ_ACP"},
        ],
    }
    s3.put_object_acl(Bucket=bucket, Key="doc", AccessControlPolicy=policy)
    got = grants(s3.get_object_acl(Bucket=bucket, Key="doc"))
    assert got == {("CanonicalUser", me, "FULL_CONTROL"), ("CanonicalUser", ALT_OWNER_ID, "READ"),
                   ("Group", AUTH_USERS, "READ_ACP")}
    assert s3_alt.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"doc"
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={**policy, "Grants": policy["Grants"][:2]})
    assert [o["Key"] for o in s3_alt.list_objects_v2(Bucket=bucket)["Contents"]] == ["doc"]


@pytest.mark.parametrize(
    "body",
    [b"<AccessControlPolicy><Owner>", b"not xml",
     b"<Wrong><Owner><ID>x</ID></Owner><AccessControlList/></Wrong>"],
)
def test_malformed_acl_document(signed, bucket, body):
    r = signed("PUT", f"/{bucket}", query="acl", body=body)
    assert r.status == 400, r.body
    assert parse_error(r.body)["Code"] in ("MalformedACLError", "MalformedXML")


def test_invalid_permission_in_policy(signed, s3, bucket):
    me = my_id(s3)
    body = (
        '<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Owner><ID>{me}</ID></Owner><AccessControlList><Grant>"
        '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
        f"<ID>{me}</ID></Grantee><Permission>EVERYTHING</Permission></Grant></AccessControlList>"
        "</AccessControlPolicy>"
    ).encode()
    r = signed("PUT", f"/{bucket}", query="acl", body=body)
    assert r.status == 400
    assert parse_error(r.body)["Code"] in ("MalformedACLError", "InvalidArgument")
    # The ACL is unchanged.
    assert grants(s3.get_bucket_acl(Bucket=bucket)) == {("CanonicalUser", me, "FULL_CONTROL")}


def test_alt_with_write_acp_can_change_acl(s3, s3_alt, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", GrantWriteACP=f"id={ALT_OWNER_ID}",
                  GrantFullControl=f"id={my_id(s3)}")
    s3_alt.put_object_acl(Bucket=bucket, Key="k", ACL="public-read")
    assert ("Group", ALL_USERS, "READ") in grants(s3.get_object_acl(Bucket=bucket, Key="k"))

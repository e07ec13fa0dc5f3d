"""Bucket policies, Block Public Access and Object Ownership, through real
clients: policies stored and refused, anonymous and cross-user access they
grant, explicit denies over ACLs, the common condition keys, and the
settings that limit public access and ACLs."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import ALT_OWNER_ID
from helpers import s3_error


def doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def stmt(effect, action, resource, principal="*", **extra) -> dict:
    return {"Effect": effect, "Principal": principal, "Action": action, "Resource": resource, **extra}


def arn(bucket, path=None):
    return f"arn:aws:s3:::{bucket}" + (f"/{path}" if path is not None else "")


def code_of(fn, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as e:
        fn(*args, **kwargs)
    return e.value.response["Error"]["Code"]


def test_a_policy_is_stored_as_given_and_removed(s3, bucket):
    with s3_error("NoSuchBucketPolicy", 404):
        s3.get_bucket_policy(Bucket=bucket)
    text = doc(stmt("Allow", "s3:GetObject", arn(bucket, "*")))
    s3.put_bucket_policy(Bucket=bucket, Policy=text)
    assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == text
    s3.delete_bucket_policy(Bucket=bucket)
    with s3_error("NoSuchBucketPolicy", 404):
        s3.get_bucket_policy(Bucket=bucket)


@pytest.mark.parametrize("policy, words", [
    ("{not json", "valid JSON"),
    (json.dumps({"Version": "2012-10-17"}), "Statement"),
    (doc({"Sid": "reader", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{b}/*"}),
     'Missing required field Principal in statement "reader"'),
    (doc(stmt("Allow", "s3:GetObject", "arn:aws:s3:::{b}/*"), stmt("Allow", "s3:GetObject", "arn:aws:s3:::elsewhere/*")),
     "invalid resource arn:aws:s3:::elsewhere/* in statement 2"),
    (doc(stmt("Allow", "iam:CreateUser", "arn:aws:s3:::{b}")), "invalid action"),
    (doc(stmt("Allow", "s3:*", "arn:aws:s3:::{b}", Condition={"IpAddress": {"aws:SourceIp": "not-an-ip"}})),
     "not-an-ip"),
    (doc(stmt("Allow", "s3:*", "arn:aws:s3:::{b}", Condition={"StringMatches": {"s3:prefix": "a"}})),
     "Invalid Condition type"),
])
def test_malformed_policies_are_refused_naming_the_statement(s3, bucket, policy, words):
    with pytest.raises(ClientError) as e:
        s3.put_bucket_policy(Bucket=bucket, Policy=policy.replace("{b}", bucket))
    error = e.value.response["Error"]
    assert error["Code"] == "MalformedPolicy"
    assert words in error["Message"]


def test_anonymous_read_of_a_prefix_through_a_policy(s3, s3_anon, bucket):
    s3.put_object(Bucket=bucket, Key="public/a.txt", Body=b"open")
    s3.put_object(Bucket=bucket, Key="private/b.txt", Body=b"closed")
    s3.put_bucket_policy(Bucket=bucket, Policy=doc(stmt("Allow", "s3:GetObject", arn(bucket, "public/*"))))
    assert s3_anon.get_object(Bucket=bucket, Key="public/a.txt")["Body"].read() == b"open"
    assert code_of(s3_anon.get_object, Bucket=bucket, Key="private/b.txt") == "AccessDenied"
    assert code_of(s3_anon.list_objects_v2, Bucket=bucket) == "AccessDenied"
    # Without ListBucket a reader must not learn which keys are missing.
    assert code_of(s3_anon.get_object, Bucket=bucket, Key="public/missing") == "AccessDenied"
    assert code_of(s3_anon.put_object, Bucket=bucket, Key="public/x", Body=b"") == "AccessDenied"
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True


def test_list_permission_scoped_by_prefix_decides_404_or_403(s3, s3_alt, bucket):
    s3.put_bucket_policy(Bucket=bucket, Policy=doc(stmt(
        "Allow", "s3:ListBucket", arn(bucket), {"AWS": ALT_OWNER_ID},
        Condition={"StringLike": {"s3:prefix": "home/alt/*"}})))
    s3.put_object(Bucket=bucket, Key="home/alt/notes", Body=b"n")
    listed = s3_alt.list_objects_v2(Bucket=bucket, Prefix="home/alt/")
    assert [o["Key"] for o in listed["Contents"]] == ["home/alt/notes"]
    assert code_of(s3_alt.list_objects_v2, Bucket=bucket, Prefix="home/") == "AccessDenied"
    assert code_of(s3_alt.list_objects_v2, Bucket=bucket) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        s3_alt.head_object(Bucket=bucket, Key="home/alt/missing")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        s3_alt.head_object(Bucket=bucket, Key="etc/missing")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_explicit_deny_wins_over_acls_and_binds_the_owner(s3, s3_alt, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    s3.put_object(Bucket=bucket, Key="secret/plan", Body=b"s", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="open/doc", Body=b"o", ACL="public-read")
    s3.put_bucket_policy(Bucket=bucket, Policy=doc(
        stmt("Deny", ["s3:GetObject", "s3:DeleteObject"], arn(bucket, "secret/*"))))
    assert code_of(s3_alt.get_object, Bucket=bucket, Key="secret/plan") == "AccessDenied"
    assert code_of(s3.get_object, Bucket=bucket, Key="secret/plan") == "AccessDenied"
    assert code_of(s3.delete_object, Bucket=bucket, Key="secret/plan") == "AccessDenied"
    assert s3_alt.get_object(Bucket=bucket, Key="open/doc")["Body"].read() == b"o"
    # The owner can always repair the policy that locks it out.
    s3.put_bucket_policy(Bucket=bucket, Policy=doc(
        stmt("Deny", ["s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"], arn(bucket))))
    assert code_of(s3_alt.get_bucket_policy, Bucket=bucket) == "AccessDenied"
    s3.get_bucket_policy(Bucket=bucket)
    s3.delete_bucket_policy(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="secret/plan")["Body"].read() == b"s"


def test_a_policy_grants_another_user_writes_under_conditions(s3, s3_alt, bucket):
    s3.put_bucket_policy(Bucket=bucket, Policy=doc(
        stmt("Allow", ["s3:PutObject", "s3:GetObject"], arn(bucket, "uploads/*"), {"AWS": f"arn:aws:iam::{ALT_OWNER_ID}:root"}),
        stmt("Deny", "s3:PutObject", arn(bucket, "*"),
             Condition={"StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}}),
    ))
    assert code_of(s3_alt.put_object, Bucket=bucket, Key="uploads/plain", Body=b"x") == "AccessDenied"
    s3_alt.put_object(Bucket=bucket, Key="uploads/sealed", Body=b"x", ServerSideEncryption="AES256")
    assert s3_alt.get_object(Bucket=bucket, Key="uploads/sealed")["ServerSideEncryption"] == "AES256"
    assert code_of(s3_alt.put_object, Bucket=bucket, Key="other", Body=b"x", ServerSideEncryption="AES256") == "AccessDenied"
    # The owner is bound by the Deny too.
    assert code_of(s3.put_object, Bucket=bucket, Key="mine", Body=b"x") == "AccessDenied"


def test_source_ip_and_secure_transport_conditions(s3, s3_anon, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    s3.put_bucket_policy(Bucket=bucket, Policy=doc(stmt(
        "Allow", "s3:GetObject", arn(bucket, "*"), Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}})))
    assert s3_anon.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
    s3.put_bucket_policy(Bucket=bucket, Policy=doc(stmt(
        "Allow", "s3:GetObject", arn(bucket, "*"), Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})))
    assert code_of(s3_anon.get_object, Bucket=bucket, Key="k") == "AccessDenied"
    # The usual "TLS only" policy refuses this plain-HTTP endpoint, owner included.
    s3.put_bucket_policy(Bucket=bucket, Policy=doc(stmt(
        "Deny", "s3:*", [arn(bucket), arn(bucket, "*")], Condition={"Bool": {"aws:SecureTransport": "false"}})))
    assert code_of(s3.get_object, Bucket=bucket, Key="k") == "AccessDenied"
    s3.delete_bucket_policy(Bucket=bucket)


def test_multi_object_delete_is_judged_per_key(s3, bucket):
    for key in ("keep/a", "tmp/b"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    s3.put_bucket_policy(Bucket=bucket, Policy=doc(stmt("Deny", "s3:DeleteObject", arn(bucket, "keep/*"))))
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "keep/a"}, {"Key": "tmp/b"}]})
    assert [d["Key"] for d in result.get("Deleted", [])] == ["tmp/b"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("keep/a", "AccessDenied")]
    s3.head_object(Bucket=bucket, Key="keep/a")


def test_copy_sources_follow_their_own_buckets_policy(s3, s3_alt, bucket):
    s3.put_object(Bucket=bucket, Key="shared/src", Body=b"copy me")
    s3.put_object(Bucket=bucket, Key="closed/src", Body=b"no")
    target = f"bb-alt-{uuid.uuid4().hex[:10]}"
    s3_alt.create_bucket(Bucket=target)
    try:
        assert code_of(s3_alt.copy_object, Bucket=target, Key="c",
                       CopySource={"Bucket": bucket, "Key": "shared/src"}) == "AccessDenied"
        s3.put_bucket_policy(Bucket=bucket, Policy=doc(stmt(
            "Allow", "s3:GetObject", arn(bucket, "shared/*"), {"AWS": ALT_OWNER_ID})))
        s3_alt.copy_object(Bucket=target, Key="c", CopySource={"Bucket": bucket, "Key": "shared/src"})
        assert s3_alt.get_object(Bucket=target, Key="c")["Body"].read() == b"copy me"
        assert code_of(s3_alt.copy_object, Bucket=target, Key="d",
                       CopySource={"Bucket": bucket, "Key": "closed/src"}) == "AccessDenied"
    finally:
        s3_alt.delete_object(Bucket=target, Key="c")
        s3_alt.delete_bucket(Bucket=target)


def test_object_tag_conditions(s3, s3_alt, bucket):
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"t", Tagging="share=yes")
    s3.put_object(Bucket=bucket, Key="untagged", Body=b"u")
    s3.put_bucket_policy(Bucket=bucket, Policy=doc(
        stmt("Allow", "s3:GetObject", arn(bucket, "*"), {"AWS": ALT_OWNER_ID},
             Condition={"StringEquals": {"s3:ExistingObjectTag/share": "yes"}}),
        stmt("Allow", "s3:PutObjectTagging", arn(bucket, "*"), {"AWS": ALT_OWNER_ID},
             Condition={"StringEquals": {"s3:RequestObjectTag/team": "blue"}}),
    ))
    assert s3_alt.get_object(Bucket=bucket, Key="tagged")["Body"].read() == b"t"
    assert code_of(s3_alt.get_object, Bucket=bucket, Key="untagged") == "AccessDenied"
    tagging = lambda team: {"TagSet": [{"Key": "team", "Value": team}]}  # noqa: E731
    assert code_of(s3_alt.put_object_tagging, Bucket=bucket, Key="untagged", Tagging=tagging("red")) == "AccessDenied"
    s3_alt.put_object_tagging(Bucket=bucket, Key="untagged", Tagging=tagging("blue"))
    assert s3.get_object_tagging(Bucket=bucket, Key="untagged")["TagSet"] == tagging("blue")["TagSet"]


def test_bucket_settings_can_be_delegated_by_policy(s3, s3_alt, bucket):
    assert code_of(s3_alt.get_bucket_versioning, Bucket=bucket) == "AccessDenied"
    s3.put_bucket_policy(Bucket=bucket, Policy=doc(stmt(
        "Allow", "s3:GetBucket*", arn(bucket), {"AWS": ALT_OWNER_ID})))
    s3_alt.get_bucket_versioning(Bucket=bucket)
    assert code_of(s3_alt.put_bucket_versioning, Bucket=bucket,
                   VersioningConfiguration={"Status": "Enabled"}) == "AccessDenied"


BLOCK_ALL = {"BlockPublicAcls": True, "IgnorePublicAcls": True,
             "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


def test_public_access_block_round_trips(s3, bucket):
    with s3_error("NoSuchPublicAccessBlockConfiguration", 404):
        s3.get_public_access_block(Bucket=bucket)
    conf = dict(BLOCK_ALL, RestrictPublicBuckets=False)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=conf)
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == conf
    s3.delete_public_access_block(Bucket=bucket)
    with s3_error("NoSuchPublicAccessBlockConfiguration", 404):
        s3.get_public_access_block(Bucket=bucket)


def test_block_public_acls_and_policies_refuse_them(s3, bucket):
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=BLOCK_ALL)
    assert code_of(s3.put_bucket_acl, Bucket=bucket, ACL="public-read") == "AccessDenied"
    assert code_of(s3.put_object, Bucket=bucket, Key="k", Body=b"", ACL="public-read") == "AccessDenied"
    assert code_of(s3.create_multipart_upload, Bucket=bucket, Key="k", ACL="authenticated-read") == "AccessDenied"
    s3.put_object(Bucket=bucket, Key="k", Body=b"", ACL="private")
    assert code_of(s3.put_bucket_policy, Bucket=bucket,
                   Policy=doc(stmt("Allow", "s3:GetObject", arn(bucket, "*")))) == "AccessDenied"
    # A policy naming a principal is not public.
    s3.put_bucket_policy(Bucket=bucket, Policy=doc(stmt(
        "Allow", "s3:GetObject", arn(bucket, "*"), {"AWS": ALT_OWNER_ID})))


def test_ignore_public_acls_and_restrict_public_buckets_stop_public_reads(s3, s3_anon, bucket):
    s3.put_object(Bucket=bucket, Key="acl", Body=b"a", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="pol", Body=b"p")
    s3.put_bucket_policy(Bucket=bucket, Policy=doc(stmt("Allow", "s3:GetObject", arn(bucket, "pol"))))
    assert s3_anon.get_object(Bucket=bucket, Key="acl")["Body"].read() == b"a"
    assert s3_anon.get_object(Bucket=bucket, Key="pol")["Body"].read() == b"p"
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "IgnorePublicAcls": True, "RestrictPublicBuckets": True})
    assert code_of(s3_anon.get_object, Bucket=bucket, Key="acl") == "AccessDenied"
    assert code_of(s3_anon.get_object, Bucket=bucket, Key="pol") == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key="pol")["Body"].read() == b"p"
    s3.delete_public_access_block(Bucket=bucket)
    assert s3_anon.get_object(Bucket=bucket, Key="acl")["Body"].read() == b"a"


def ownership(s3, bucket):
    return s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"][0]["ObjectOwnership"]


def controls(mode):
    return {"Rules": [{"ObjectOwnership": mode}]}


def test_bucket_owner_enforced_disables_acls(s3, s3_alt, s3_anon, bucket):
    with s3_error("OwnershipControlsNotFoundError", 404):
        s3.get_bucket_ownership_controls(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="was-public", Body=b"w", ACL="public-read")
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    with s3_error("InvalidBucketAclWithObjectOwnership", 400):
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=controls("BucketOwnerEnforced"))
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=controls("BucketOwnerEnforced"))
    assert ownership(s3, bucket) == "BucketOwnerEnforced"
    # Object ACLs no longer count.
    assert code_of(s3_anon.get_object, Bucket=bucket, Key="was-public") == "AccessDenied"
    s3.put_bucket_policy(Bucket=bucket, Policy=doc(stmt(
        "Allow", ["s3:PutObject", "s3:GetObjectAcl"], arn(bucket, "*"), {"AWS": ALT_OWNER_ID})))
    s3_alt.put_object(Bucket=bucket, Key="by-alt", Body=b"x")
    s3_alt.put_object(Bucket=bucket, Key="by-alt-bofc", Body=b"x", ACL="bucket-owner-full-control")
    root_id = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    for key in ("by-alt", "by-alt-bofc"):
        assert s3.get_object_acl(Bucket=bucket, Key=key)["Owner"]["ID"] == root_id
    assert code_of(s3_alt.put_object, Bucket=bucket, Key="k", Body=b"", ACL="private") == "AccessControlListNotSupported"
    assert code_of(s3.put_bucket_acl, Bucket=bucket, ACL="private") == "AccessControlListNotSupported"
    assert code_of(s3.put_object_acl, Bucket=bucket, Key="by-alt", ACL="private") == "AccessControlListNotSupported"
    s3.delete_bucket_ownership_controls(Bucket=bucket)
    with s3_error("OwnershipControlsNotFoundError", 404):
        s3.get_bucket_ownership_controls(Bucket=bucket)


def test_bucket_owner_preferred_takes_objects_written_with_bucket_owner_full_control(s3, s3_alt, bucket):
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=controls("BucketOwnerPreferred"))
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    s3_alt.put_object(Bucket=bucket, Key="given", Body=b"", ACL="bucket-owner-full-control")
    s3_alt.put_object(Bucket=bucket, Key="kept", Body=b"")
    root_id = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    assert s3.get_object_acl(Bucket=bucket, Key="given")["Owner"]["ID"] == root_id
    assert s3_alt.get_object_acl(Bucket=bucket, Key="kept")["Owner"]["ID"] == ALT_OWNER_ID


def test_ownership_can_be_chosen_at_creation(s3):
    name = f"bb-own-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerEnforced")
    try:
        assert ownership(s3, name) == "BucketOwnerEnforced"
    finally:
        s3.delete_bucket(Bucket=name)
    with s3_error("InvalidBucketAclWithObjectOwnership", 400):
        s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerEnforced", ACL="public-read")

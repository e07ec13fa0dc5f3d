"""Browser form uploads (POST Object): boto3's generate_presigned_post
(SigV4) and hand-built SigV2 forms posted as multipart/form-data by
`requests` as a browser would, policy
conditions, anonymous uploads a policy or ACL allows, the success_action_*
fields, metadata, tags, encryption and checksums carried as form fields."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import xml.etree.ElementTree as ET

import pytest
import requests

from conftest import ROOT_KEY, ROOT_SECRET


class Answer:
    """A response, as the tests read it."""

    def __init__(self, r: requests.Response):
        self.status, self.data, self.headers = r.status_code, r.content, r.headers


def send(server, bucket, **kwargs) -> Answer:
    kwargs.setdefault("allow_redirects", False)
    return Answer(requests.post(f"{server.endpoint}/{bucket}", timeout=30, **kwargs))


def post(server, bucket, fields, file=b"hello", filename="f.txt") -> Answer:
    """The form a browser sends: fields in order, the file last."""
    form = [(k, (None, v)) for k, v in fields.items()]
    form.append(("file", (filename, file, "application/octet-stream")))
    return send(server, bucket, files=form)


def code(r) -> str:
    return ET.fromstring(r.data).findtext("Code")


def presigned(s3, bucket, key, fields=None, conditions=None, expires=600):
    return s3.generate_presigned_post(bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires)


def test_a_boto3_presigned_post_uploads_the_file(server, s3, bucket):
    form = presigned(s3, bucket, "uploads/${filename}", conditions=[["content-length-range", 1, 1 << 20]])
    r = post(server, bucket, form["fields"], b"form bytes", filename="photo.jpg")
    assert r.status == 204, r.data
    obj = s3.get_object(Bucket=bucket, Key="uploads/photo.jpg")
    assert obj["Body"].read() == b"form bytes"
    assert r.headers["ETag"] == obj["ETag"]
    assert r.headers["Location"].endswith(f"/{bucket}/uploads/photo.jpg")


def test_a_large_file_streams_through(server, s3, bucket):
    data = hashlib.sha256(b"seed").digest() * (12 * 1024 * 1024 // 32)
    form = presigned(s3, bucket, "big")
    r = post(server, bucket, form["fields"], data)
    assert r.status == 204, r.data
    got = s3.get_object(Bucket=bucket, Key="big")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_metadata_tags_encryption_and_acl_come_from_fields(server, s3, s3_anon, bucket):
    fields = {
        "Content-Type": "text/plain",
        "Cache-Control": "max-age=60",
        "x-amz-meta-origin": "browser",
        "acl": "public-read",
        "x-amz-server-side-encryption": "AES256",
        "tagging": "<Tagging><TagSet><Tag><Key>team</Key><Value>blue</Value></Tag></TagSet></Tagging>",
        "x-amz-storage-class": "STANDARD",
    }
    form = presigned(s3, bucket, "doc.txt", fields=fields, conditions=[{k: v} for k, v in fields.items()])
    r = post(server, bucket, form["fields"], b"text")
    assert r.status == 204, r.data
    head = s3.head_object(Bucket=bucket, Key="doc.txt")
    assert head["ContentType"] == "text/plain" and head["CacheControl"] == "max-age=60"
    assert head["Metadata"] == {"origin": "browser"}
    assert head["ServerSideEncryption"] == "AES256"
    assert s3.get_object_tagging(Bucket=bucket, Key="doc.txt")["TagSet"] == [{"Key": "team", "Value": "blue"}]
    assert s3_anon.get_object(Bucket=bucket, Key="doc.txt")["Body"].read() == b"text"


def test_success_action_status_and_redirect(server, s3, bucket):
    form = presigned(s3, bucket, "a", fields={"success_action_status": "201"},
                     conditions=[{"success_action_status": "201"}])
    r = post(server, bucket, form["fields"])
    assert r.status == 201
    doc = ET.fromstring(r.data)
    assert doc.tag == "PostResponse" and doc.findtext("Key") == "a" and doc.findtext("Bucket") == bucket
    target = "https://app.example.com/done?from=form"
    form = presigned(s3, bucket, "b", fields={"success_action_redirect": target},
                     conditions=[{"success_action_redirect": target}])
    r = post(server, bucket, form["fields"])
    assert r.status == 303
    etag = s3.head_object(Bucket=bucket, Key="b")["ETag"]
    assert r.headers["Location"] == f"{target}&bucket={bucket}&key=b&etag=" + etag.replace('"', "%22")


def sigv2_form(policy: dict, **fields) -> dict:
    encoded = base64.b64encode(json.dumps(policy).encode()).decode()
    signature = base64.b64encode(hmac.new(ROOT_SECRET.encode(), encoded.encode(), hashlib.sha1).digest()).decode()
    return {**fields, "AWSAccessKeyId": ROOT_KEY, "policy": encoded, "signature": signature}


def expires(seconds: int) -> str:
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_sigv2_forms_and_policy_conditions(server, s3, bucket):
    conditions = [{"bucket": bucket}, ["starts-with", "$key", "user/"], ["content-length-range", 2, 10]]
    ok = sigv2_form({"expiration": expires(600), "conditions": conditions}, key="user/x")
    assert post(server, bucket, ok).status == 204
    assert s3.get_object(Bucket=bucket, Key="user/x")["Body"].read() == b"hello"
    # Each refusal, as AWS gives it.
    r = post(server, bucket, sigv2_form({"expiration": expires(600), "conditions": conditions}, key="other/x"))
    assert (r.status, code(r)) == (403, "AccessDenied") and b"Policy Condition failed" in r.data
    r = post(server, bucket, sigv2_form({"expiration": expires(-60), "conditions": conditions}, key="user/x"))
    assert (r.status, code(r)) == (403, "AccessDenied") and b"expired" in r.data
    r = post(server, bucket, sigv2_form({"expiration": expires(600), "conditions": conditions},
                                        key="user/x", **{"x-amz-meta-extra": "1"}))
    assert (r.status, code(r)) == (403, "AccessDenied") and b"Extra input fields" in r.data
    assert code(post(server, bucket, ok, file=b"this is too long")) == "EntityTooLarge"
    assert code(post(server, bucket, ok, file=b"x")) == "EntityTooSmall"
    r = post(server, bucket, sigv2_form({"conditions": conditions}, key="user/x"))
    assert (r.status, code(r)) == (400, "InvalidPolicyDocument")
    tampered = dict(ok, signature=base64.b64encode(b"0" * 20).decode())
    assert (lambda r: (r.status, code(r)))(post(server, bucket, tampered)) == (403, "SignatureDoesNotMatch")
    assert code(post(server, bucket, dict(ok, AWSAccessKeyId="nobody"))) == "InvalidAccessKeyId"
    no_key = {k: v for k, v in ok.items() if k != "key"}
    assert (lambda r: (r.status, code(r)))(post(server, bucket, no_key)) == (400, "InvalidArgument")


def test_checksum_fields_are_verified(server, s3, bucket):
    good = base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
    form = presigned(s3, bucket, "c")
    r = post(server, bucket, dict(form["fields"], **{"x-amz-checksum-sha256": good}))
    assert r.status == 204, r.data
    bad = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    r = post(server, bucket, dict(form["fields"], **{"x-amz-checksum-sha256": bad}))
    assert (r.status, code(r)) == (400, "BadDigest")


def test_anonymous_posts_need_a_grant(server, s3, bucket):
    r = post(server, bucket, {"key": "anon"})
    assert (r.status, code(r)) == (403, "AccessDenied")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/drop/*"}]}))
    assert post(server, bucket, {"key": "drop/anon"}).status == 204
    assert code(post(server, bucket, {"key": "elsewhere"})) == "AccessDenied"
    s3.delete_bucket_policy(Bucket=bucket)


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", None])
def test_a_post_that_is_not_a_form_is_refused(server, bucket, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    r = send(server, bucket, data=b"key=x", headers=headers)
    assert (r.status, code(r)) == (412, "PreconditionFailed")


def test_a_form_without_a_file_is_refused(server, s3, bucket):
    form = presigned(s3, bucket, "k")
    r = send(server, bucket, files=[(k, (None, v)) for k, v in form["fields"].items()])
    assert (r.status, code(r)) == (400, "InvalidArgument")

"""S3 versioning: bucket state, a version id on every write, reads and deletes
by version id, delete markers, suspended buckets, ListObjectVersions (prefix,
delimiter, paging, URL encoding), DeleteObjects with versions, conditional
writes, copies of old versions, per-version ACLs and attributes, real clients
(awscli, rclone), and SIGKILL under versioned overwrites."""

import base64
import hashlib
import json
import os
import signal
import threading
import time
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from conftest import ROOT_KEY, ROOT_SECRET, client_for
from helpers import parse_error, s3_error, xml_root

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


# ------------------------------------------------------------------ helpers


def set_versioning(s3, bucket, status):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


@pytest.fixture
def vbucket(s3, bucket):
    """A bucket with versioning Enabled (emptied of all versions afterwards)."""
    set_versioning(s3, bucket, "Enabled")
    return bucket


def put(s3, bucket, key, body, **kw) -> str:
    """PUT into a versioning-enabled bucket; returns the new version id."""
    vid = s3.put_object(Bucket=bucket, Key=key, Body=body, **kw)["VersionId"]
    assert isinstance(vid, str) and vid and vid != "null", vid
    return vid


def body_of(s3, bucket, key, **kw) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def error_headers(info) -> dict:
    return info.value.response["ResponseMetadata"]["HTTPHeaders"]


def version_ids(s3, bucket, key) -> list[str]:
    """Version ids of `key` (not delete markers), in listing order."""
    r = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return [v["VersionId"] for v in r.get("Versions", []) if v["Key"] == key]


def ordered_listing(signed, bucket, query="versions") -> list[tuple]:
    """ListObjectVersions in document order, which boto3 loses by splitting
    Version and DeleteMarker elements: (kind, key, version id, is latest)."""
    r = signed("GET", f"/{bucket}", query=query)
    assert r.status == 200, r.body
    return [
        (el.tag, el.findtext("Key"), el.findtext("VersionId"), el.findtext("IsLatest") == "true")
        for el in xml_root(r.body)
        if el.tag in ("Version", "DeleteMarker")
    ]


def md5_header(body: bytes) -> dict:
    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}


# ------------------------------------------------------ bucket versioning state


def test_new_bucket_has_no_versioning_status(s3, bucket):
    r = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in r and "MFADelete" not in r


def test_enable_suspend_reenable(s3, bucket):
    for status in ("Enabled", "Suspended", "Enabled"):
        set_versioning(s3, bucket, status)
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == status


def test_mfa_delete_refused(s3, bucket):
    # AWS answers 400 InvalidRequest or 403 AccessDenied without an MFA device;
    # BleepStore has no MFA at all. Either way: a 4xx, and nothing changes.
    with pytest.raises(ClientError) as info:
        s3.put_bucket_versioning(Bucket=bucket,
                                 VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"})
    status = info.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert 400 <= status < 500, info.value.response
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


@pytest.mark.parametrize("body", [
    b"not xml at all",
    b"<VersioningConfiguration><Status>Enabled</Status>",
    b"<Versioning><Status>Enabled</Status></Versioning>",
])
def test_malformed_versioning_xml(signed, s3, bucket, body):
    r = signed("PUT", f"/{bucket}", query="versioning", body=body, headers=md5_header(body))
    assert r.status == 400, r.body
    assert parse_error(r.body)["Code"] == "MalformedXML"
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


def test_invalid_versioning_status(signed, s3, bucket):
    body = (b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<Status>Sometimes</Status></VersioningConfiguration>")
    r = signed("PUT", f"/{bucket}", query="versioning", body=body, headers=md5_header(body))
    assert r.status == 400, r.body
    # AWS documents IllegalVersioningConfigurationException; schema validation
    # failures are MalformedXML elsewhere. Either is a correct refusal.
    assert parse_error(r.body)["Code"] in ("MalformedXML", "IllegalVersioningConfigurationException")
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


# ---------------------------------------------------------- writes and reads


def test_every_write_returns_a_version_id(s3, signed, vbucket):
    ids = [put(s3, vbucket, "k", b"one"), put(s3, vbucket, "k", b"two")]
    put(s3, vbucket, "src", b"copied")
    copy = s3.copy_object(Bucket=vbucket, Key="k", CopySource={"Bucket": vbucket, "Key": "src"})
    ids.append(copy["VersionId"])
    upload_id = s3.create_multipart_upload(Bucket=vbucket, Key="k")["UploadId"]
    etag = s3.upload_part(Bucket=vbucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"multi")["ETag"]
    done = s3.complete_multipart_upload(Bucket=vbucket, Key="k", UploadId=upload_id,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    ids.append(done["VersionId"])
    deleted = s3.delete_object(Bucket=vbucket, Key="k")
    assert deleted["DeleteMarker"] is True
    ids.append(deleted["VersionId"])

    assert all(isinstance(v, str) and v and v != "null" for v in ids), ids
    assert len(set(ids)) == len(ids), ids
    # Newest first, IsLatest only on the newest (the delete marker).
    listing = [e for e in ordered_listing(signed, vbucket) if e[1] == "k"]
    expected_kinds = ["DeleteMarker"] + ["Version"] * 4
    assert [(kind, vid) for kind, _, vid, _ in listing] == list(zip(expected_kinds, reversed(ids)))
    assert [latest for *_, latest in listing] == [True, False, False, False, False]

    r = s3.list_object_versions(Bucket=vbucket, Prefix="k")
    assert [v["VersionId"] for v in r["Versions"]] == ids[3::-1]
    assert not any(v["IsLatest"] for v in r["Versions"])
    assert [(m["VersionId"], m["IsLatest"]) for m in r["DeleteMarkers"]] == [(ids[4], True)]
    sizes = [v["Size"] for v in r["Versions"]]
    assert sizes == [len(b"multi"), len(b"copied"), len(b"two"), len(b"one")]
    assert r["Versions"][3]["ETag"] == f'"{hashlib.md5(b"one").hexdigest()}"'


def test_get_and_head_by_version_id(s3, vbucket):
    v1 = put(s3, vbucket, "k", b"first version")
    v2 = put(s3, vbucket, "k", b"second")
    old = s3.get_object(Bucket=vbucket, Key="k", VersionId=v1)
    assert old["Body"].read() == b"first version" and old["VersionId"] == v1
    head = s3.head_object(Bucket=vbucket, Key="k", VersionId=v1)
    assert head["ContentLength"] == len(b"first version") and head["VersionId"] == v1
    latest = s3.get_object(Bucket=vbucket, Key="k")
    assert latest["Body"].read() == b"second" and latest["VersionId"] == v2
    assert s3.head_object(Bucket=vbucket, Key="k")["VersionId"] == v2


def test_null_version_from_before_versioning(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"unversioned")
    set_versioning(s3, bucket, "Enabled")
    v = put(s3, bucket, "k", b"versioned")
    assert body_of(s3, bucket, "k", VersionId="null") == b"unversioned"
    head = s3.head_object(Bucket=bucket, Key="k", VersionId="null")
    assert head["VersionId"] == "null" and head["ContentLength"] == len(b"unversioned")
    listed = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [(x["VersionId"], x["IsLatest"]) for x in listed] == [(v, True), ("null", False)]
    # Deleting the null version removes it permanently.
    r = s3.delete_object(Bucket=bucket, Key="k", VersionId="null")
    assert r["VersionId"] == "null"
    assert version_ids(s3, bucket, "k") == [v]
    with s3_error("NoSuchVersion", 404):
        s3.get_object(Bucket=bucket, Key="k", VersionId="null")


def test_delete_marker_hides_the_object(s3, vbucket):
    v1 = put(s3, vbucket, "k", b"alive")
    d = s3.delete_object(Bucket=vbucket, Key="k")
    marker = d["VersionId"]
    assert d["DeleteMarker"] is True and marker != v1

    with s3_error("NoSuchKey", 404) as info:
        s3.get_object(Bucket=vbucket, Key="k")
    assert error_headers(info).get("x-amz-delete-marker") == "true"
    assert error_headers(info).get("x-amz-version-id") == marker
    with s3_error("404", 404) as info:
        s3.head_object(Bucket=vbucket, Key="k")
    assert error_headers(info).get("x-amz-delete-marker") == "true"
    # A delete marker addressed by its id is not an object: 405.
    with s3_error("MethodNotAllowed", 405) as info:
        s3.get_object(Bucket=vbucket, Key="k", VersionId=marker)
    assert error_headers(info).get("x-amz-delete-marker") == "true"
    with s3_error("405", 405) as info:
        s3.head_object(Bucket=vbucket, Key="k", VersionId=marker)
    assert error_headers(info).get("x-amz-delete-marker") == "true"

    assert body_of(s3, vbucket, "k", VersionId=v1) == b"alive"
    assert s3.list_objects_v2(Bucket=vbucket)["KeyCount"] == 0

    # Deleting the marker brings the object back.
    r = s3.delete_object(Bucket=vbucket, Key="k", VersionId=marker)
    assert r["DeleteMarker"] is True and r["VersionId"] == marker
    got = s3.get_object(Bucket=vbucket, Key="k")
    assert got["Body"].read() == b"alive" and got["VersionId"] == v1
    assert "DeleteMarkers" not in s3.list_object_versions(Bucket=vbucket)


def test_delete_specific_version(s3, vbucket):
    v1 = put(s3, vbucket, "k", b"one")
    v2 = put(s3, vbucket, "k", b"two")
    v3 = put(s3, vbucket, "k", b"three")
    r = s3.delete_object(Bucket=vbucket, Key="k", VersionId=v2)
    assert r["VersionId"] == v2 and not r.get("DeleteMarker")
    with s3_error("NoSuchVersion", 404):
        s3.get_object(Bucket=vbucket, Key="k", VersionId=v2)
    assert version_ids(s3, vbucket, "k") == [v3, v1]
    # Deleting the current version makes the previous one current again.
    s3.delete_object(Bucket=vbucket, Key="k", VersionId=v3)
    got = s3.get_object(Bucket=vbucket, Key="k")
    assert got["Body"].read() == b"one" and got["VersionId"] == v1
    listed = s3.list_object_versions(Bucket=vbucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in listed["Versions"]] == [(v1, True)]
    assert "DeleteMarkers" not in listed


def test_unknown_version_ids(s3, vbucket):
    put(s3, vbucket, "a", b"a")
    other_key_version = put(s3, vbucket, "b", b"b")
    gone = put(s3, vbucket, "a", b"a2")
    s3.delete_object(Bucket=vbucket, Key="a", VersionId=gone)
    for vid in (other_key_version, gone):  # well-formed ids that do not name a version of "a"
        with s3_error("NoSuchVersion", 404):
            s3.get_object(Bucket=vbucket, Key="a", VersionId=vid)
        with s3_error("404", 404):
            s3.head_object(Bucket=vbucket, Key="a", VersionId=vid)


def test_malformed_version_id(s3, vbucket):
    put(s3, vbucket, "k", b"x")
    with s3_error("InvalidArgument", 400):
        s3.get_object(Bucket=vbucket, Key="k", VersionId="not-a-version")
    with s3_error("400", 400):
        s3.head_object(Bucket=vbucket, Key="k", VersionId="not-a-version")
    with s3_error("InvalidArgument", 400):
        s3.delete_object(Bucket=vbucket, Key="k", VersionId="not-a-version")
    assert body_of(s3, vbucket, "k") == b"x"


# ------------------------------------------------------------------ suspended


def test_suspended_bucket_writes_the_null_version(s3, vbucket):
    v1 = put(s3, vbucket, "k", b"enabled-era")
    set_versioning(s3, vbucket, "Suspended")
    for body in (b"suspended-1", b"suspended-2"):
        r = s3.put_object(Bucket=vbucket, Key="k", Body=body)
        # AWS sends x-amz-version-id: null here; a missing header means the same.
        assert r.get("VersionId", "null") == "null"
    listed = s3.list_object_versions(Bucket=vbucket)["Versions"]
    assert [(v["VersionId"], v["IsLatest"]) for v in listed] == [("null", True), (v1, False)]
    assert body_of(s3, vbucket, "k") == b"suspended-2"
    assert body_of(s3, vbucket, "k", VersionId="null") == b"suspended-2"
    assert body_of(s3, vbucket, "k", VersionId=v1) == b"enabled-era"


def test_suspended_delete_puts_a_null_delete_marker(s3, vbucket):
    v1 = put(s3, vbucket, "k", b"enabled-era")
    set_versioning(s3, vbucket, "Suspended")
    s3.put_object(Bucket=vbucket, Key="k", Body=b"null version")
    d = s3.delete_object(Bucket=vbucket, Key="k")
    assert d["DeleteMarker"] is True and d.get("VersionId", "null") == "null"
    listed = s3.list_object_versions(Bucket=vbucket)
    # The marker replaced the null version; the enabled-era version remains.
    assert [(m["VersionId"], m["IsLatest"]) for m in listed["DeleteMarkers"]] == [("null", True)]
    assert [(v["VersionId"], v["IsLatest"]) for v in listed["Versions"]] == [(v1, False)]
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=vbucket, Key="k")
    # Enabled again: new writes get fresh ids above the null marker.
    set_versioning(s3, vbucket, "Enabled")
    v3 = put(s3, vbucket, "k", b"enabled again")
    assert v3 not in (v1, "null")
    assert body_of(s3, vbucket, "k") == b"enabled again"


# -------------------------------------------------------- ListObjectVersions


def test_list_versions_prefix_and_delimiter(s3, vbucket):
    for key in ("a/1", "a/1", "a/2", "b/1", "top"):
        put(s3, vbucket, key, key.encode())
    s3.delete_object(Bucket=vbucket, Key="b/1")

    r = s3.list_object_versions(Bucket=vbucket, Prefix="a/")
    assert [v["Key"] for v in r["Versions"]] == ["a/1", "a/1", "a/2"]
    assert "DeleteMarkers" not in r

    r = s3.list_object_versions(Bucket=vbucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "b/"]
    assert [v["Key"] for v in r["Versions"]] == ["top"]
    assert "DeleteMarkers" not in r

    r = s3.list_object_versions(Bucket=vbucket, Prefix="b/", Delimiter="/")
    assert [v["Key"] for v in r["Versions"]] == ["b/1"]
    assert [(m["Key"], m["IsLatest"]) for m in r["DeleteMarkers"]] == [("b/1", True)]


def _build_history(s3, bucket) -> list[tuple[str, str, str]]:
    """Three keys with interleaved versions and delete markers, one of them
    with a null version from before versioning was enabled. Returns the
    expected listing: (kind, key, version id), keys ascending, newest first."""
    created = {"k0": [], "k1": [], "k2": []}
    s3.put_object(Bucket=bucket, Key="k0", Body=b"pre-versioning")
    created["k0"].append(("Version", "null"))
    set_versioning(s3, bucket, "Enabled")
    for round_ in range(4):
        for key in created:
            created[key].append(("Version", put(s3, bucket, key, f"{key}-{round_}".encode())))
        if round_ == 1:  # a marker in the middle of k1's history
            created["k1"].append(("DeleteMarker", s3.delete_object(Bucket=bucket, Key="k1")["VersionId"]))
    created["k2"].append(("DeleteMarker", s3.delete_object(Bucket=bucket, Key="k2")["VersionId"]))
    return [(kind, key, vid) for key in sorted(created) for kind, vid in reversed(created[key])]


def _page_entries(page) -> list[tuple[str, str, str]]:
    return ([("Version", v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
            + [("DeleteMarker", m["Key"], m["VersionId"]) for m in page.get("DeleteMarkers", [])])


def _assert_pages_tile(pages, expected, page_size):
    """Each page is the next contiguous slice of `expected` (boto3 splits a
    page into Versions and DeleteMarkers, so order within a page is checked
    per list), no page is larger than asked, and together they cover it all."""
    position = {entry: i for i, entry in enumerate(expected)}
    at = 0
    for page in pages:
        entries = _page_entries(page)
        assert len(entries) <= page_size
        for group in ("Versions", "DeleteMarkers"):
            idx = [position[e] for e in _page_entries({group: page.get(group, [])})]
            assert idx == sorted(idx), f"{group} out of order in a page"
        assert sorted(position[e] for e in entries) == list(range(at, at + len(entries)))
        at += len(entries)
    assert at == len(expected)


def test_list_versions_full_listing_order(s3, signed, bucket):
    expected = _build_history(s3, bucket)
    listing = ordered_listing(signed, bucket)
    assert [(kind, key, vid) for kind, key, vid, _ in listing] == expected
    first_of_key = [i == 0 or listing[i - 1][1] != e[1] for i, e in enumerate(listing)]
    assert [latest for *_, latest in listing] == first_of_key


@pytest.mark.parametrize("page_size", [2, 3])
def test_list_versions_paginator(s3, bucket, page_size):
    expected = _build_history(s3, bucket)
    pages = list(s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": page_size}))
    assert len(pages) == -(-len(expected) // page_size)
    _assert_pages_tile(pages, expected, page_size)


def test_list_versions_manual_markers(s3, bucket):
    expected = _build_history(s3, bucket)
    pages, kw = [], {}
    for _ in range(len(expected) + 2):  # bounded
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=3, **kw)
        pages.append(page)
        if not page["IsTruncated"]:
            break
        assert len(_page_entries(page)) == 3
        kw = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
        assert page["NextKeyMarker"] in ("k0", "k1", "k2")
    assert pages[-1]["IsTruncated"] is False and "NextKeyMarker" not in pages[-1]
    _assert_pages_tile(pages, expected, 3)
    # A KeyMarker alone starts after every version of that key.
    after = s3.list_object_versions(Bucket=bucket, KeyMarker="k1")
    _assert_pages_tile([after], [e for e in expected if e[1] == "k2"], 5)


def test_list_versions_url_encoding(s3, vbucket):
    key = "dir one/ünï cöde+plus.txt"
    put(s3, vbucket, key, b"1")
    put(s3, vbucket, key, b"2")
    r = s3.list_object_versions(Bucket=vbucket, EncodingType="url")  # boto3 does not decode this
    assert r["EncodingType"] == "url"
    encoded = [v["Key"] for v in r["Versions"]]
    assert len(encoded) == 2
    for e in encoded:
        assert " " not in e and e.isascii() and "+plus" not in e, e
        assert urllib.parse.unquote_plus(e) == key
    r = s3.list_object_versions(Bucket=vbucket, EncodingType="url", Delimiter="/")
    assert [urllib.parse.unquote_plus(p["Prefix"]) for p in r["CommonPrefixes"]] == ["dir one/"]
    assert " " not in r["CommonPrefixes"][0]["Prefix"]
    # boto3's own (auto) encoding round-trips the key.
    assert [v["Key"] for v in s3.list_object_versions(Bucket=vbucket)["Versions"]] == [key, key]


def test_list_objects_shows_only_current_versions(s3, vbucket):
    put(s3, vbucket, "a", b"old a")
    put(s3, vbucket, "a", b"new a!")
    put(s3, vbucket, "b", b"b")
    s3.delete_object(Bucket=vbucket, Key="b")
    put(s3, vbucket, "c", b"c")
    for listed in (s3.list_objects_v2(Bucket=vbucket)["Contents"], s3.list_objects(Bucket=vbucket)["Contents"]):
        assert [o["Key"] for o in listed] == ["a", "c"]
        assert listed[0]["Size"] == len(b"new a!")
        assert listed[0]["ETag"] == f'"{hashlib.md5(b"new a!").hexdigest()}"'


# ------------------------------------------------------------ DeleteObjects


def test_delete_objects_with_version_ids(s3, vbucket):
    va1 = put(s3, vbucket, "a", b"a1")
    va2 = put(s3, vbucket, "a", b"a2")
    put(s3, vbucket, "b", b"b1")
    marker_b = s3.delete_object(Bucket=vbucket, Key="b")["VersionId"]
    vc1 = put(s3, vbucket, "c", b"c1")

    r = s3.delete_objects(Bucket=vbucket, Delete={"Objects": [
        {"Key": "a", "VersionId": va1}, {"Key": "b", "VersionId": marker_b}, {"Key": "c"}]})
    assert "Errors" not in r
    deleted = {d["Key"]: d for d in r["Deleted"]}
    assert deleted["a"]["VersionId"] == va1 and not deleted["a"].get("DeleteMarker")
    assert deleted["b"]["VersionId"] == marker_b
    assert deleted["b"]["DeleteMarker"] is True and deleted["b"]["DeleteMarkerVersionId"] == marker_b
    assert deleted["c"]["DeleteMarker"] is True
    new_marker = deleted["c"]["DeleteMarkerVersionId"]
    assert new_marker not in (vc1, va1, va2, marker_b)

    assert version_ids(s3, vbucket, "a") == [va2]
    assert body_of(s3, vbucket, "b") == b"b1"  # its marker is gone
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=vbucket, Key="c")
    markers = s3.list_object_versions(Bucket=vbucket, Prefix="c")["DeleteMarkers"]
    assert [m["VersionId"] for m in markers] == [new_marker]


# ------------------------------------------------------- conditional writes


def test_if_none_match_on_versioned_bucket(s3, vbucket):
    put(s3, vbucket, "k", b"v1")
    with s3_error("PreconditionFailed", 412):
        s3.put_object(Bucket=vbucket, Key="k", Body=b"v2", IfNoneMatch="*")
    s3.delete_object(Bucket=vbucket, Key="k")
    # The current version is a delete marker: the key counts as absent.
    r = s3.put_object(Bucket=vbucket, Key="k", Body=b"v3", IfNoneMatch="*")
    assert r["VersionId"]
    assert body_of(s3, vbucket, "k") == b"v3"


def test_if_match_on_versioned_bucket(s3, vbucket):
    old_etag = s3.put_object(Bucket=vbucket, Key="k", Body=b"old")["ETag"]
    cur_etag = s3.put_object(Bucket=vbucket, Key="k", Body=b"current")["ETag"]
    with s3_error("PreconditionFailed", 412):  # an older version's ETag does not count
        s3.put_object(Bucket=vbucket, Key="k", Body=b"x", IfMatch=old_etag)
    r = s3.put_object(Bucket=vbucket, Key="k", Body=b"newest", IfMatch=cur_etag)
    assert r["VersionId"]
    assert body_of(s3, vbucket, "k") == b"newest"
    assert len(version_ids(s3, vbucket, "k")) == 3


# -------------------------------------------------------- copies of versions


def test_copy_object_from_old_version(s3, vbucket):
    v1 = put(s3, vbucket, "src", b"old bytes")
    put(s3, vbucket, "src", b"new bytes")
    r = s3.copy_object(Bucket=vbucket, Key="dst", CopySource={"Bucket": vbucket, "Key": "src", "VersionId": v1})
    assert r["CopySourceVersionId"] == v1
    assert r["VersionId"] not in (v1, "null")
    assert body_of(s3, vbucket, "dst") == b"old bytes"
    assert body_of(s3, vbucket, "dst", VersionId=r["VersionId"]) == b"old bytes"


def test_copy_from_delete_marker(s3, vbucket):
    put(s3, vbucket, "src", b"x")
    marker = s3.delete_object(Bucket=vbucket, Key="src")["VersionId"]
    with s3_error("NoSuchKey", 404):
        s3.copy_object(Bucket=vbucket, Key="dst", CopySource={"Bucket": vbucket, "Key": "src"})
    with pytest.raises(ClientError) as info:
        s3.copy_object(Bucket=vbucket, Key="dst", CopySource={"Bucket": vbucket, "Key": "src", "VersionId": marker})
    # AWS: 400 InvalidRequest ("may not specifically refer to a delete marker");
    # some stores answer 405 MethodNotAllowed as for GET of a marker.
    err = info.value.response
    assert err["Error"]["Code"] in ("InvalidRequest", "MethodNotAllowed"), err
    assert err["ResponseMetadata"]["HTTPStatusCode"] in (400, 405)
    assert "Versions" not in s3.list_object_versions(Bucket=vbucket, Prefix="dst")


def test_upload_part_copy_from_old_version(s3, vbucket):
    old = os.urandom(3000)
    v1 = put(s3, vbucket, "src", old)
    put(s3, vbucket, "src", b"newer")
    upload_id = s3.create_multipart_upload(Bucket=vbucket, Key="mp")["UploadId"]
    r = s3.upload_part_copy(Bucket=vbucket, Key="mp", UploadId=upload_id, PartNumber=1,
                            CopySource={"Bucket": vbucket, "Key": "src", "VersionId": v1})
    assert r["CopySourceVersionId"] == v1
    done = s3.complete_multipart_upload(
        Bucket=vbucket, Key="mp", UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]})
    assert done["VersionId"]
    assert body_of(s3, vbucket, "mp") == old


# --------------------------------------------- ACLs and attributes by version


def test_acl_by_version(s3, s3_anon, vbucket):
    v1 = put(s3, vbucket, "k", b"public old")
    v2 = put(s3, vbucket, "k", b"private new")
    s3.put_object_acl(Bucket=vbucket, Key="k", VersionId=v1, ACL="public-read")

    def grantees(vid):
        acl = s3.get_object_acl(Bucket=vbucket, Key="k", VersionId=vid)
        return {g["Grantee"].get("URI") for g in acl["Grants"]}

    assert ALL_USERS in grantees(v1)
    assert ALL_USERS not in grantees(v2)
    assert body_of(s3_anon, vbucket, "k", VersionId=v1) == b"public old"
    with s3_error("AccessDenied", 403):
        s3_anon.get_object(Bucket=vbucket, Key="k")
    with s3_error("AccessDenied", 403):
        s3_anon.get_object(Bucket=vbucket, Key="k", VersionId=v2)


def test_object_attributes_by_version(s3, vbucket):
    v1 = put(s3, vbucket, "k", b"aaa")
    v2 = put(s3, vbucket, "k", b"bbbbbb")
    for vid, data in ((v1, b"aaa"), (v2, b"bbbbbb")):
        r = s3.get_object_attributes(Bucket=vbucket, Key="k", VersionId=vid, ObjectAttributes=["ETag", "ObjectSize"])
        assert r["VersionId"] == vid
        assert r["ObjectSize"] == len(data)
        assert r["ETag"] == hashlib.md5(data).hexdigest()


# ---------------------------------------------------------------- DeleteBucket


def test_delete_bucket_with_only_old_versions(s3, vbucket):
    v = put(s3, vbucket, "k", b"x")
    marker = s3.delete_object(Bucket=vbucket, Key="k")["VersionId"]
    assert s3.list_objects_v2(Bucket=vbucket)["KeyCount"] == 0
    with s3_error("BucketNotEmpty", 409):
        s3.delete_bucket(Bucket=vbucket)
    s3.delete_object(Bucket=vbucket, Key="k", VersionId=v)
    with s3_error("BucketNotEmpty", 409):  # the delete marker alone still counts
        s3.delete_bucket(Bucket=vbucket)
    s3.delete_object(Bucket=vbucket, Key="k", VersionId=marker)
    s3.delete_bucket(Bucket=vbucket)
    with s3_error("NoSuchBucket", 404):
        s3.get_bucket_versioning(Bucket=vbucket)


# ------------------------------------------------------------------ clients


def test_awscli_versioning(cli, s3, bucket, tmp_path):
    cli.aws("s3api", "put-bucket-versioning", "--bucket", bucket,
            "--versioning-configuration", "Status=Enabled")
    state = json.loads(cli.aws("s3api", "get-bucket-versioning", "--bucket", bucket).stdout)
    assert state["Status"] == "Enabled"
    ids = []
    for i in range(2):
        f = tmp_path / f"v{i}"
        f.write_bytes(f"version {i}".encode())
        out = json.loads(cli.aws("s3api", "put-object", "--bucket", bucket, "--key", "k", "--body", str(f)).stdout)
        ids.append(out["VersionId"])
    deleted = json.loads(cli.aws("s3api", "delete-object", "--bucket", bucket, "--key", "k").stdout)
    assert deleted["DeleteMarker"] is True
    listed = json.loads(cli.aws("s3api", "list-object-versions", "--bucket", bucket).stdout)
    assert [v["VersionId"] for v in listed["Versions"]] == ids[::-1]
    assert [(m["VersionId"], m["IsLatest"]) for m in listed["DeleteMarkers"]] == [(deleted["VersionId"], True)]
    out = tmp_path / "old"
    cli.aws("s3api", "get-object", "--bucket", bucket, "--key", "k", "--version-id", ids[0], str(out))
    assert out.read_bytes() == b"version 0"
    assert len(version_ids(s3, bucket, "k")) == 2


def test_rclone_lists_old_versions(cli, s3, vbucket):
    sizes = []
    for i in range(3):
        data = b"d" * (100 + i)
        put(s3, vbucket, "doc.txt", data)
        sizes.append(len(data))
        time.sleep(0.02)  # rclone names old versions after their LastModified
    put(s3, vbucket, "other.bin", b"o" * 7)
    sizes.append(7)
    current = json.loads(cli.rclone("lsjson", "-R", f":s3:{vbucket}").stdout)
    assert sorted(e["Name"] for e in current) == ["doc.txt", "other.bin"]
    every = json.loads(cli.rclone("lsjson", "-R", "--s3-versions", f":s3:{vbucket}").stdout)
    assert len(every) == 4, every
    assert sorted(e["Size"] for e in every) == sorted(sizes)


# -------------------------------------------------------------------- crash


@pytest.mark.slow
def test_sigkill_during_versioned_overwrites(private_server):
    srv = private_server()
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    c.create_bucket(Bucket="vcrash")
    set_versioning(c, "vcrash", "Enabled")
    keys = ["a", "b", "c"]
    attempted: dict[str, dict[str, int]] = {k: {} for k in keys}  # key -> sha256 -> size
    acked: list[tuple[str, str, str]] = []  # (key, version id, sha256)
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int):
        w = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
        for i in range(1000):
            if stop.is_set():
                return
            key = keys[(n + i) % len(keys)]
            data = os.urandom(10_000 + (n * 7919 + i * 131) % 150_000)
            digest = hashlib.sha256(data).hexdigest()
            with lock:
                attempted[key][digest] = len(data)
            try:
                vid = w.put_object(Bucket="vcrash", Key=key, Body=data)["VersionId"]
            except Exception:
                return
            with lock:
                acked.append((key, vid, digest))

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(acked) < 60:
        time.sleep(0.01)
    assert acked, "no write was acknowledged"
    srv.kill(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(timeout=30)

    srv.start()
    c = client_for(srv.endpoint, ROOT_KEY, ROOT_SECRET)
    listed = {}
    for page in c.get_paginator("list_object_versions").paginate(Bucket="vcrash"):
        assert not page.get("DeleteMarkers")
        for v in page.get("Versions", []):
            listed[(v["Key"], v["VersionId"])] = v
    for key, vid, digest in acked:
        assert (key, vid) in listed, f"acknowledged version {key}@{vid} lost"
        body = body_of(c, "vcrash", key, VersionId=vid)
        assert hashlib.sha256(body).hexdigest() == digest, f"{key}@{vid} has the wrong bytes"
    acked_ids = {(k, v) for k, v, _ in acked}
    for (key, vid), v in listed.items():
        if (key, vid) in acked_ids:
            continue
        # Unacknowledged but listed: it must be one complete write.
        body = body_of(c, "vcrash", key, VersionId=vid)
        digest = hashlib.sha256(body).hexdigest()
        assert attempted[key].get(digest) == len(body) == v["Size"], f"partial version {key}@{vid}"
    for key in keys:
        latest = [v for (k, _), v in listed.items() if k == key and v["IsLatest"]]
        assert len(latest) == (1 if any(k == key for k, _ in listed) else 0), key
    # Still writable, with fresh version ids.
    vid = c.put_object(Bucket="vcrash", Key="a", Body=b"after")["VersionId"]
    assert ("a", vid) not in listed
    assert body_of(c, "vcrash", "a") == b"after"

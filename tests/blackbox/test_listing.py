"""ListObjects v1/v2 and ListObjectVersions."""

import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import unique_name
from helpers import parse_error, s3_error, xml_root

TREE = [
    "a.txt",
    "b/1.txt",
    "b/2.txt",
    "b/c/3.txt",
    "d/4.txt",
    "e",
    "e/5.txt",
    "f+g/6 7.txt",
]


@pytest.fixture
def tree(s3, bucket):
    for k in TREE:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    return bucket


def test_list_v2_basic(s3, tree):
    r = s3.list_objects_v2(Bucket=tree)
    assert [o["Key"] for o in r["Contents"]] == sorted(TREE)
    assert r["KeyCount"] == len(TREE)
    assert r["IsTruncated"] is False
    assert r["Name"] == tree
    assert r["MaxKeys"] == 1000
    first = r["Contents"][0]
    assert first["Size"] == len(b"a.txt")
    assert first["ETag"].startswith('"') and len(first["ETag"]) == 34
    assert "Owner" not in first


def test_list_v2_prefix_delimiter(s3, tree):
    r = s3.list_objects_v2(Bucket=tree, Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["a.txt", "e"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/", "d/", "e/", "f+g/"]
    assert r["KeyCount"] == 6
    r = s3.list_objects_v2(Bucket=tree, Prefix="b/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["b/1.txt", "b/2.txt"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/c/"]
    assert r["Prefix"] == "b/"
    r = s3.list_objects_v2(Bucket=tree, Prefix="zzz")
    assert "Contents" not in r and r["KeyCount"] == 0
    # A delimiter other than '/'.
    r = s3.list_objects_v2(Bucket=tree, Delimiter=".")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a.", "b/1.", "b/2.", "b/c/3.", "d/4.", "e/5.", "f+g/6 7."]
    assert [o["Key"] for o in r["Contents"]] == ["e"]


def test_list_v2_max_keys_and_continuation(s3, tree):
    seen = []
    token = None
    pages = 0
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket=tree, MaxKeys=3, **kw)
        pages += 1
        assert r["KeyCount"] == len(r.get("Contents", []))
        assert r["KeyCount"] <= 3
        seen += [o["Key"] for o in r.get("Contents", [])]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
        assert pages < 10
    assert seen == sorted(TREE)
    assert pages == 3


def test_list_v2_max_keys_with_common_prefixes(s3, tree):
    seen_keys, seen_prefixes, token = [], [], None
    for _ in range(10):
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket=tree, MaxKeys=2, Delimiter="/", **kw)
        assert r["KeyCount"] <= 2
        seen_keys += [o["Key"] for o in r.get("Contents", [])]
        seen_prefixes += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert seen_keys == ["a.txt", "e"]
    assert seen_prefixes == ["b/", "d/", "e/", "f+g/"]


def test_list_v2_start_after(s3, tree):
    r = s3.list_objects_v2(Bucket=tree, StartAfter="b/2.txt")
    assert [o["Key"] for o in r["Contents"]] == [k for k in sorted(TREE) if k > "b/2.txt"]
    assert r["StartAfter"] == "b/2.txt"


def test_list_v2_max_keys_zero(s3, tree):
    r = s3.list_objects_v2(Bucket=tree, MaxKeys=0)
    assert r["KeyCount"] == 0
    assert "Contents" not in r


def test_list_v2_fetch_owner(s3, tree):
    r = s3.list_objects_v2(Bucket=tree, FetchOwner=True)
    owners = {o["Owner"]["ID"] for o in r["Contents"]}
    assert len(owners) == 1
    me = s3.list_buckets()["Owner"]["ID"]
    assert owners == {me}


def test_list_v2_invalid_continuation_token(signed, tree):
    r = signed("GET", f"/{tree}", query="continuation-token=%21%21garbage&list-type=2")
    assert r.status == 400
    assert parse_error(r.body)["Code"] == "InvalidArgument"


def test_list_negative_max_keys(signed, tree):
    r = signed("GET", f"/{tree}", query="list-type=2&max-keys=-1")
    assert r.status == 400
    assert parse_error(r.body)["Code"] == "InvalidArgument"


def test_list_v1_marker(s3, tree):
    r = s3.list_objects(Bucket=tree, MaxKeys=3)
    assert [o["Key"] for o in r["Contents"]] == sorted(TREE)[:3]
    assert r["IsTruncated"] is True
    # Without a delimiter S3 omits NextMarker; the client uses the last key.
    r2 = s3.list_objects(Bucket=tree, Marker=r["Contents"][-1]["Key"])
    assert [o["Key"] for o in r2["Contents"]] == sorted(TREE)[3:]
    assert r2["Marker"] == r["Contents"][-1]["Key"]
    owner = r["Contents"][0]["Owner"]
    assert owner["ID"] == s3.list_buckets()["Owner"]["ID"]


def test_list_v1_delimiter_next_marker(s3, tree):
    r = s3.list_objects(Bucket=tree, Delimiter="/", MaxKeys=2)
    assert r["IsTruncated"] is True
    assert r["NextMarker"]
    items = [o["Key"] for o in r.get("Contents", [])] + [p["Prefix"] for p in r.get("CommonPrefixes", [])]
    assert sorted(items) == ["a.txt", "b/"]
    r2 = s3.list_objects(Bucket=tree, Delimiter="/", Marker=r["NextMarker"])
    items2 = [o["Key"] for o in r2.get("Contents", [])] + [p["Prefix"] for p in r2.get("CommonPrefixes", [])]
    assert sorted(items2) == ["d/", "e", "e/", "f+g/"]


def test_encoding_type_url(signed, s3, bucket):
    keys = ["sp ace/x", "ü/y", "plus+z", "amp&q"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"1")
    r = signed("GET", f"/{bucket}", query="delimiter=%2F&encoding-type=url&list-type=2")
    assert r.status == 200
    root = xml_root(r.body)
    assert root.findtext("EncodingType") == "url"
    listed = [urllib.parse.unquote(p.findtext("Prefix")) for p in root.iter("CommonPrefixes")]
    listed += [urllib.parse.unquote(c.findtext("Key")) for c in root.iter("Contents")]
    assert sorted(listed) == sorted(["sp ace/", "ü/", "plus+z", "amp&q"])
    raw_keys = [c.findtext("Key") for c in root.iter("Contents")]
    assert "plus%2Bz" in raw_keys and "amp%26q" in raw_keys
    # boto3 decodes for us when it asked for url encoding (its default).
    r = s3.list_objects_v2(Bucket=bucket)
    assert sorted(o["Key"] for o in r["Contents"]) == sorted(keys)
    r = s3.list_objects(Bucket=bucket)
    assert sorted(o["Key"] for o in r["Contents"]) == sorted(keys)


def test_invalid_encoding_type(signed, bucket):
    r = signed("GET", f"/{bucket}", query="encoding-type=base64")
    assert r.status == 400
    assert parse_error(r.body)["Code"] == "InvalidArgument"


def test_utf8_binary_ordering(s3, bucket):
    keys = ["a", "B", "Z", "_", "é", "日", "😀", "\uffef", "a0", "a/", "a-"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    got = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert got == sorted(keys, key=lambda k: k.encode("utf-8"))


@pytest.mark.slow
def test_paginate_1200_keys(s3, bucket):
    keys = [f"p/{i:05d}" for i in range(1200)]

    def put(k):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, keys))
    for op, kw in (("list_objects_v2", {}), ("list_objects", {}), ("list_objects_v2", {"Prefix": "p/"})):
        pages = list(s3.get_paginator(op).paginate(Bucket=bucket, **kw))
        got = [o["Key"] for p in pages for o in p.get("Contents", [])]
        assert got == keys, op
        assert len(pages) == 2
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 500}))
    assert [len(p["Contents"]) for p in pages] == [500, 500, 200]
    r = s3.list_objects_v2(Bucket=bucket, MaxKeys=5000)
    assert r["KeyCount"] == 1000 and r["IsTruncated"]


def test_list_object_versions(s3, bucket):
    s3.put_object(Bucket=bucket, Key="v1", Body=b"one")
    s3.put_object(Bucket=bucket, Key="v2", Body=b"two")
    r = s3.list_object_versions(Bucket=bucket)
    versions = r["Versions"]
    assert [v["Key"] for v in versions] == ["v1", "v2"]
    for v in versions:
        assert v["VersionId"] == "null"
        assert v["IsLatest"] is True
    assert "DeleteMarkers" not in r
    r = s3.list_object_versions(Bucket=bucket, Prefix="v2")
    assert [v["Key"] for v in r["Versions"]] == ["v2"]
    pages = list(s3.get_paginator("list_object_versions").paginate(Bucket=bucket, PaginationConfig={"PageSize": 1}))
    assert [v["Key"] for p in pages for v in p.get("Versions", [])] == ["v1", "v2"]


def test_get_with_version_id_null(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"data"


def test_list_missing_bucket(s3):
    with s3_error("NoSuchBucket", 404):
        s3.list_objects(Bucket=unique_name("gone"))

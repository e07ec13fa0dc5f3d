"""Smoke flows with real command-line clients: awscli, rclone, s3cmd."""

import filecmp
import json
import os
from pathlib import Path

import pytest

from conftest import clean_env, unique_name


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "top.txt": b"top level\n",
        "dir/a.bin": os.urandom(70_000),
        "dir/sub/b.txt": b"nested " * 100,
        "dir/sub/space name.txt": b"spaces\n",
        "ünï/cöde.txt": "unicode ✓\n".encode(),
        "empty.dat": b"",
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def assert_same_tree(a: Path, b: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        assert (b / rel).read_bytes() == data, rel
    got = sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    assert got == sorted(files), got
    match, mismatch, errors = filecmp.cmpfiles(a, b, list(files), shallow=False)
    assert sorted(match) == sorted(files) and not mismatch and not errors


# ------------------------------------------------------------------- awscli


def test_awscli_flow(cli, s3, tmp_path):
    b = unique_name("awscli")
    out = cli.aws("s3", "mb", f"s3://{b}").stdout.decode()
    assert f"make_bucket: {b}" in out
    src = tmp_path / "src"
    files = make_tree(src)
    single = tmp_path / "single.txt"
    single.write_bytes(b"single file\n")
    cli.aws("s3", "cp", str(single), f"s3://{b}/single.txt")
    assert s3.get_object(Bucket=b, Key="single.txt")["Body"].read() == b"single file\n"
    ls = cli.aws("s3", "ls", f"s3://{b}/").stdout.decode()
    assert "single.txt" in ls

    cli.aws("s3", "sync", str(src), f"s3://{b}/tree/")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix="tree/")["Contents"])
    assert keys == sorted(f"tree/{k}" for k in files)
    # A second sync uploads nothing.
    again = cli.aws("s3", "sync", str(src), f"s3://{b}/tree/").stdout.decode()
    assert "upload:" not in again

    dst = tmp_path / "dst"
    cli.aws("s3", "sync", f"s3://{b}/tree/", str(dst))
    assert_same_tree(src, dst, files)

    down = tmp_path / "down.txt"
    cli.aws("s3", "cp", f"s3://{b}/single.txt", str(down))
    assert down.read_bytes() == b"single file\n"

    rec = cli.aws("s3", "ls", "--recursive", f"s3://{b}/").stdout.decode()
    assert "tree/dir/sub/space name.txt" in rec

    # s3api calls
    head = json.loads(cli.aws("s3api", "head-object", "--bucket", b, "--key", "single.txt").stdout)
    assert head["ContentLength"] == 12
    listed = json.loads(cli.aws("s3api", "list-objects-v2", "--bucket", b, "--prefix", "tree/dir/",
                                "--delimiter", "/").stdout)
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["tree/dir/sub/"]
    cli.aws("s3api", "put-object", "--bucket", b, "--key", "api.txt", "--body", str(single),
            "--metadata", "k=v", "--content-type", "text/plain")
    head = json.loads(cli.aws("s3api", "head-object", "--bucket", b, "--key", "api.txt").stdout)
    assert head["Metadata"] == {"k": "v"} and head["ContentType"] == "text/plain"
    loc = json.loads(cli.aws("s3api", "get-bucket-location", "--bucket", b).stdout)
    assert loc["LocationConstraint"] is None
    failed = cli.aws("s3api", "get-object", "--bucket", b, "--key", "missing", str(tmp_path / "x"), check=False)
    assert failed.returncode != 0 and b"NoSuchKey" in failed.stderr

    rb_fail = cli.aws("s3", "rb", f"s3://{b}", check=False)
    assert rb_fail.returncode != 0 and b"BucketNotEmpty" in rb_fail.stderr
    cli.aws("s3", "rm", "--recursive", f"s3://{b}/")
    assert s3.list_objects_v2(Bucket=b)["KeyCount"] == 0
    cli.aws("s3", "rb", f"s3://{b}")
    assert b not in {x["Name"] for x in s3.list_buckets()["Buckets"]}


def test_awscli_wrong_credentials(cli, bucket):
    p = cli.aws("s3", "ls", f"s3://{bucket}/", check=False,
                env=clean_env(AWS_SECRET_ACCESS_KEY="wrong-secret"))
    assert p.returncode != 0
    assert b"SignatureDoesNotMatch" in p.stderr


# ------------------------------------------------------------------- rclone


def test_rclone_flow(cli, s3, tmp_path):
    b = unique_name("rclone")
    cli.rclone("mkdir", f":s3:{b}")
    assert b in {x["Name"] for x in s3.list_buckets()["Buckets"]}
    src = tmp_path / "src"
    files = make_tree(src)
    cli.rclone("copy", str(src), f":s3:{b}/copy")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"])
    assert keys == sorted(f"copy/{k}" for k in files)
    ls = cli.rclone("ls", f":s3:{b}/copy").stdout.decode()
    assert "70000 dir/a.bin" in ls
    # rclone verifies MD5s against ETags on its own; check it agrees.
    cli.rclone("check", str(src), f":s3:{b}/copy")

    (src / "top.txt").write_bytes(b"changed\n")
    (src / "dir/sub/b.txt").unlink()
    del files["dir/sub/b.txt"]
    files["top.txt"] = b"changed\n"
    cli.rclone("sync", str(src), f":s3:{b}/copy")
    assert s3.get_object(Bucket=b, Key="copy/top.txt")["Body"].read() == b"changed\n"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"])
    assert keys == sorted(f"copy/{k}" for k in files)

    dst = tmp_path / "dst"
    cli.rclone("copy", f":s3:{b}/copy", str(dst))
    assert_same_tree(src, dst, files)

    cli.rclone("delete", f":s3:{b}/copy")
    assert s3.list_objects_v2(Bucket=b)["KeyCount"] == 0
    cli.rclone("rmdir", f":s3:{b}")
    assert b not in {x["Name"] for x in s3.list_buckets()["Buckets"]}


def test_rclone_copyto_with_clean_env(cli, bucket, s3):
    """The harness gives rclone a clean env; a copyto with it must work."""
    f = cli.tmp / "one.txt"
    f.write_bytes(b"one")
    env = clean_env()
    assert "AWS_CA_BUNDLE" not in env
    cli.rclone("copyto", str(f), f":s3:{bucket}/one.txt", env=env)
    assert s3.get_object(Bucket=bucket, Key="one.txt")["Body"].read() == b"one"


# ------------------------------------------------------------------- s3cmd


def test_s3cmd_flow(cli, s3, tmp_path):
    b = unique_name("s3cmd")
    out = cli.s3cmd("mb", f"s3://{b}").stdout.decode()
    assert f"s3://{b}/" in out
    f = tmp_path / "file.bin"
    data = os.urandom(123_456)
    f.write_bytes(data)
    cli.s3cmd("put", str(f), f"s3://{b}/dir/file.bin")
    assert s3.get_object(Bucket=b, Key="dir/file.bin")["Body"].read() == data
    ls = cli.s3cmd("ls", f"s3://{b}/dir/").stdout.decode()
    assert f"s3://{b}/dir/file.bin" in ls
    la = cli.s3cmd("ls", "--recursive", f"s3://{b}").stdout.decode()
    assert "123456" in la
    got = tmp_path / "got.bin"
    cli.s3cmd("get", f"s3://{b}/dir/file.bin", str(got))
    assert got.read_bytes() == data
    info = cli.s3cmd("info", f"s3://{b}/dir/file.bin").stdout.decode()
    assert "123456" in info
    cli.s3cmd("setacl", "--acl-public", f"s3://{b}/dir/file.bin")
    acl = s3.get_object_acl(Bucket=b, Key="dir/file.bin")
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in acl["Grants"])
    cli.s3cmd("del", f"s3://{b}/dir/file.bin")
    assert s3.list_objects_v2(Bucket=b)["KeyCount"] == 0
    cli.s3cmd("rb", f"s3://{b}")
    assert b not in {x["Name"] for x in s3.list_buckets()["Buckets"]}


def test_s3cmd_sync(cli, s3, bucket, tmp_path):
    src = tmp_path / "src"
    files = make_tree(src)
    cli.s3cmd("sync", str(src) + "/", f"s3://{bucket}/synced/")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted(f"synced/{k}" for k in files)
    dst = tmp_path / "dst"
    dst.mkdir()
    cli.s3cmd("sync", f"s3://{bucket}/synced/", str(dst) + "/")
    assert_same_tree(src, dst, files)


@pytest.mark.parametrize("tool", ["aws", "s3cmd"])
def test_missing_bucket_errors(cli, tool):
    b = unique_name("gone")
    if tool == "aws":
        p = cli.aws("s3", "ls", f"s3://{b}/", check=False)
    else:
        p = cli.s3cmd("ls", f"s3://{b}/", check=False)
    assert p.returncode != 0
    assert b"NoSuchBucket" in p.stderr + p.stdout

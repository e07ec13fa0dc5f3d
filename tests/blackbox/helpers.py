"""Assertion helpers shared by the black-box tests."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError


@contextlib.contextmanager
def s3_error(code: str, status: int | None = None):
    """Expects the block to fail with S3 error `code` (and HTTP `status`)."""
    with pytest.raises(ClientError) as info:
        yield info
    err = info.value.response
    got = err.get("Error", {}).get("Code")
    got_status = err.get("ResponseMetadata", {}).get("HTTPStatusCode")
    assert got == code, f"expected {code}, got {got} ({got_status}): {err}"
    if status is not None:
        assert got_status == status, f"expected HTTP {status} for {code}, got {got_status}"


def parse_error(body: bytes) -> dict[str, str]:
    """The fields of an S3 <Error> document; asserts it is well-formed."""
    root = ET.fromstring(body)
    assert root.tag == "Error", body
    return {child.tag: (child.text or "") for child in root}


def strip_ns(tag: str) -> str:
    return tag.split("}", 1)[1] if "}" in tag else tag


def xml_root(body: bytes) -> ET.Element:
    root = ET.fromstring(body)
    for el in root.iter():
        el.tag = strip_ns(el.tag)
    return root


@contextlib.contextmanager
def s3_error_in(codes: tuple[str, ...], status: int | None = None):
    """Like s3_error, for errors where S3 implementations (or AWS's own
    documentation and behaviour) disagree on the code: any of `codes`."""
    with pytest.raises(ClientError) as info:
        yield info
    err = info.value.response
    got = err.get("Error", {}).get("Code")
    got_status = err.get("ResponseMetadata", {}).get("HTTPStatusCode")
    assert got in codes, f"expected one of {codes}, got {got} ({got_status}): {err}"
    if status is not None:
        assert got_status == status, f"expected HTTP {status} for {got}, got {got_status}"

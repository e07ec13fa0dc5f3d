"""TLS on the S3 port (`server.tls`), as the operator configures it from a
Kubernetes Secret: certificate and key files, HTTPS only."""

import boto3
import pytest
import urllib3
from botocore.config import Config

from conftest import ROOT_KEY, ROOT_SECRET


def test_s3_over_https(private_server, certificate):
    cert, key = certificate
    srv = private_server(server={"tls": {"cert_file": str(cert), "key_file": str(key)}})
    https = srv.endpoint.replace("http://", "https://")
    c = boto3.session.Session(
        aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET, region_name="us-east-1"
    ).client("s3", endpoint_url=https, verify=str(cert),
             config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    c.create_bucket(Bucket="secure")
    c.put_object(Bucket="secure", Key="k", Body=b"over tls")
    assert c.get_object(Bucket="secure", Key="k")["Body"].read() == b"over tls"

    # Plain HTTP on the TLS port gets no S3 answer.
    plain = urllib3.PoolManager(retries=False, timeout=5)
    with pytest.raises(Exception):
        plain.request("GET", srv.endpoint + "/")


def test_unreadable_certificate_stops_startup(private_server, tmp_path):
    missing = tmp_path / "nope.crt"
    with pytest.raises(RuntimeError) as info:
        private_server(server={"tls": {"cert_file": str(missing), "key_file": str(missing)}})
    assert "server.tls.cert_file" in str(info.value)

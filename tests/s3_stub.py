"""moto's S3 server on 127.0.0.1 with log objects uploaded from a local folder (real boto3)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer


def aws_test_env(mp: pytest.MonkeyPatch, tmp: Path) -> None:
    """Placeholder credentials in the environment; no config or credential file of the user."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        mp.delenv(name, raising=False)
    mp.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    mp.setenv("AWS_CONFIG_FILE", str(tmp / "aws-config"))
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "aws-credentials"))
    mp.setenv("AWS_EC2_METADATA_DISABLED", "true")


@contextlib.contextmanager
def s3_server() -> Iterator[tuple[str, Any]]:
    """(endpoint URL, boto3 S3 client) of a fresh moto server; stopped afterwards."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        yield url, boto3.client("s3", region_name="us-east-1", endpoint_url=url)
    finally:
        server.stop()


def upload_tree(client: Any, bucket: str, prefix: str, root: Path) -> list[str]:
    """Upload every file under ``root`` to ``s3://bucket/prefix/<relative path>``; its keys."""
    keys = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(root).as_posix()}"
        client.upload_file(str(path), bucket, key)
        keys.append(key)
    return keys

"""Shared fixtures: real clients against the real emulator on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from emulator import Emulator

LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"
QUESTION = [{"role": "user", "content": [{"text": "What is the meaning of life?"}]}]


def bedrock_client(url: str, **config: Any) -> Any:
    """A boto3 bedrock-runtime client configured for measurement: no retries."""
    cfg = Config(retries={"total_max_attempts": 1}, **config)
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret-example",
        config=cfg,
    )


@pytest.fixture(scope="module")
def fast_emulator() -> Iterator[Emulator]:
    """The fast profile, no quotas, no faults."""
    with Emulator("fast") as emu:
        yield emu


@pytest.fixture(scope="module")
def client(fast_emulator: Emulator) -> Any:
    """A boto3 client for ``fast_emulator``."""
    return bedrock_client(fast_emulator.url)

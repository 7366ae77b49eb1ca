"""Shared fixtures: real clients against the real emulator on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
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


# -- the checkout guard: tests write only under tmp dirs ----------------------------------------
ROOT = Path(__file__).resolve().parent.parent
_TOOL_DIRS = {".git", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis"}


def checkout_files(root: Path = ROOT) -> set[str]:
    """Every file of the checkout, minus tool caches and build metadata."""
    found: set[str] = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [
            d
            for d in dirs
            if d not in _TOOL_DIRS and d != "__pycache__" and not d.endswith(".egg-info")
        ]
        found.update(os.path.relpath(os.path.join(folder, f), root) for f in files)
    return found


def pytest_sessionstart(session: pytest.Session) -> None:
    """Note the checkout's files before any test runs."""
    session.config.stash[_BEFORE] = checkout_files()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a test left files in the checkout (e.g. ``runs/<id>``): tests must
    write under ``tmp_path``."""
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    new = sorted(checkout_files() - before)
    if new:
        shown = ", ".join(new[:5]) + (f" and {len(new) - 5} more" if len(new) > 5 else "")
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"tests wrote into the checkout: {shown}; write under tmp_path instead"
        if reporter is not None:
            reporter.write_line(f"ERROR: {message}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_BEFORE = pytest.StashKey[set[str]]()

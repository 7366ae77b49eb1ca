"""``--ray``: a failure to join the cluster is one line with the fix (a SweepError, exit 2), not
"unexpected ConnectionError … a bug in llmcap". The exception chains are Ray 2.60's own, as
``ray.init`` raises them (a real loopback reproduction needs a head registered beyond
127.0.0.1, which the tests never start)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.config import SweepError
from bench.distributed import connect_cluster
from llmcap.errors import EXIT_USAGE, describe

NO_NODE = (
    "No node info found matching attributes: '127.0.0.1' when trying to resolve node to connect to."
)
NO_TOKEN = (
    "Failed to connect to GCS. Last connection error: Traceback (most recent call last):\n"
    "ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken: Authentication token is "
    "missing or incorrect."
)


class FakeRay:
    """``ray.init`` failing as Ray 2.60's does: a ConnectionError chained to ``cause``."""

    def __init__(self, cause: Exception | None) -> None:
        self.cause = cause
        self.kwargs: dict[str, Any] = {}

    def init(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        error = ConnectionError(f"Failed to connect to Ray cluster at {kwargs['address']}")
        if self.cause is None:
            raise error
        raise error from self.cause


def _fail(address: str, cause: Exception | None) -> tuple[FakeRay, SweepError]:
    ray = FakeRay(cause)
    with pytest.raises(SweepError) as info:
        connect_cluster(ray, address)
    return ray, info.value


def test_a_head_registered_beyond_loopback_names_the_loopback_command() -> None:
    ray, error = _fail("127.0.0.1:6379", RuntimeError(NO_NODE))
    assert ray.kwargs == {
        "address": "127.0.0.1:6379", "log_to_driver": False, "_node_ip_address": "127.0.0.1",
    }  # fmt: skip
    line = describe(error)
    assert line.code == EXIT_USAGE and "\n" not in line.line
    assert line.line.startswith("error: --ray 127.0.0.1:6379: the cluster has no node on 127.0.0.1")
    assert (
        "`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 ray start --head --node-ip-address 127.0.0.1 "
        "--port 6379`"
    ) in line.line
    assert "bug" not in line.line


def test_other_join_failures() -> None:
    _, error = _fail("127.0.0.1:6379", RuntimeError(NO_TOKEN))
    assert "requires a Ray auth token" in str(error) and "RAY_AUTH_MODE=token" in str(error)
    _, error = _fail("10.0.0.5:6379", RuntimeError(NO_NODE.replace("127.0.0.1", "10.0.0.9")))
    assert "this machine is not a node of that cluster" in str(error)
    assert "ray start --address 10.0.0.5:6379" in str(error)
    _, error = _fail("10.0.0.5:6379", None)
    assert str(error) == (
        "--ray 10.0.0.5:6379: could not join the Ray cluster (Failed to connect to Ray cluster "
        "at 10.0.0.5:6379) — check it is up: ray status --address 10.0.0.5:6379"
    )
    assert "\n" not in str(error)

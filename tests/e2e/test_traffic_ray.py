"""The traffic analysis on Ray Data, on a two-node Ray cluster on loopback: the same aggregates
as DuckDB's, to the request and the token (latency percentiles to float rounding), and so the
same analysis."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from capacity.usage import (
    TRAFFIC_GROUPINGS,
    SyntheticLogs,
    _traffic,
    aggregate_traffic,
    analyze_traffic,
    load_requests,
    write_invocation_logs,
)
from tests.e2e.test_ray_cluster import cluster

__all__ = ["cluster"]  # the two-node loopback cluster fixture, shared with the --ray test

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is not installed: pip install -e '.[distributed]' (or '.[test]')",
    ),
    pytest.mark.skipif(shutil.which("ss") is None, reason="needs the ss command (iproute2)"),
    pytest.mark.timeout(420),
]
FLOATS = {"latency_sum", "latency_s_p50", "latency_s_p90", "latency_s_p99"}


def test_ray_data_gives_duckdbs_answer(
    cluster: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address, _marker = cluster
    spec = SyntheticLogs(
        requests=4000,
        models=("m.a", "anthropic.claude-sonnet-4-20250514-v1:0"),
        rate_per_s=20.0,
        throttled_share=0.05,
        records_per_file=400,
    )
    write_invocation_logs(tmp_path, spec)
    table = load_requests(tmp_path)
    local = aggregate_traffic(table)
    # One Ray session (each costs ~10 s here): the analysis's own aggregates are compared.
    seen: list[dict[str, pd.DataFrame]] = []

    def keep(*args: Any, **kwargs: Any) -> dict[str, pd.DataFrame]:
        seen.append(aggregate_traffic(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(_traffic, "aggregate_traffic", keep)
    on_ray = analyze_traffic(table, executor="ray", ray_address=address)
    (remote,) = seen
    import ray  # after aggregate_ray has set up the loopback driver, before ray's import

    assert not ray.is_initialized()  # each call connected, then disconnected
    for g in TRAFFIC_GROUPINGS:
        a, b = local[g.name], remote[g.name]
        exact = [c for c in a.columns if c not in FLOATS]
        pd.testing.assert_frame_equal(a[exact], b[exact], check_exact=True, obj=g.name)
        floats = [c for c in a.columns if c in FLOATS]
        pd.testing.assert_frame_equal(a[floats], b[floats], rtol=1e-12, obj=g.name)
    assert len(local["minute"]) >= 8 and local["minute"]["latency_n"].sum() > 0
    on_duckdb = analyze_traffic(table)
    assert on_ray.executor == "ray"
    d, r = on_duckdb.to_dict(), on_ray.to_dict()
    assert (d.pop("executor"), r.pop("executor")) == ("duckdb", "ray")
    assert_same(d, r, "analysis")


def assert_same(a: object, b: object, where: str) -> None:
    """Equal, floats to 1e-12 relative (sums of latencies depend on the order of addition)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-12, nan_ok=True), where
    else:
        assert a == b, where

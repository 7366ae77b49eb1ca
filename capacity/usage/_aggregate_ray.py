"""The second executor of the traffic aggregates: Ray Data (``pip install 'llmcap[distributed]'``).

It computes the tables of ``capacity.usage._aggregate.GROUPINGS`` — the same groupings, the
same per-row columns (``DERIVED``'s Arrow forms) — with Ray Data's group-by: the request table
is split into blocks that the cluster's workers derive and aggregate; only the aggregates come
back. Latency percentiles use Ray's exact ``Quantile`` (linear interpolation, as DuckDB's
``quantile_cont``).
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from capacity.usage._aggregate import (
    DERIVED,
    GROUPINGS,
    LATENCY_QUANTILES,
    Grouping,
    latency_column,
    normalise,
)
from capacity.usage._requests import RequestTable


def derive(batch: pa.Table) -> pa.Table:
    """``batch`` with every ``DERIVED`` column (Arrow forms) and ``latency_ok`` (the latency of
    served requests, null otherwise)."""
    for name, (_sql, arrow) in DERIVED.items():
        batch = batch.append_column(name, arrow(batch))
    ok = pc.equal(batch["status"], "ok")
    return batch.append_column(
        "latency_ok", pc.if_else(ok, batch["latency_s"], pa.scalar(None, pa.float64()))
    )


def aggregate_ray(
    table: RequestTable, address: str | None = None, blocks: int = 8
) -> dict[str, pd.DataFrame]:
    """Every table of ``GROUPINGS`` computed by Ray Data on the cluster at ``address`` (the
    running one when Ray is initialised; a local one when None), sorted by its keys."""
    loopback = address is not None and _on_loopback(address)
    if loopback:
        # Ray would replace 127.0.0.1 by this machine's address unless it treats the host as
        # stand-alone, which this variable (read when ray is imported) asks for; the driver
        # then stays on loopback, as bench/distributed.py does for --ray.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.enable_operator_progress_bars = False
    started = not ray.is_initialized()
    if started:
        extra: dict[str, Any] = {"_node_ip_address": "127.0.0.1"} if loopback else {}
        ray.init(address=address, log_to_driver=False, include_dashboard=False, **extra)
    try:
        ds = ray.data.from_arrow(table.arrow).repartition(blocks)
        derived = ds.map_batches(derive, batch_format="pyarrow").materialize()
        return {g.name: normalise(_run(derived, g), g) for g in GROUPINGS}
    finally:
        if started:
            ray.shutdown()


def _on_loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost")


def _run(ds: Any, g: Grouping) -> pd.DataFrame:
    from ray.data.aggregate import Count, Quantile, Sum

    if g.values:
        fields = g.values

        def values(batch: pa.Table) -> pa.Table:
            parts = []
            for f in fields:
                t = batch.filter(pc.and_(pc.equal(batch["status"], "ok"), pc.is_valid(batch[f])))
                parts.append(
                    pa.table(
                        {
                            "model_id": t["model_id"],
                            "field": pa.repeat(pa.scalar(f), t.num_rows),
                            "value": pc.cast(t[f], pa.int64()),
                            "requests": t["requests"],
                        }
                    )
                )
            return pa.concat_tables(parts)

        sub = ds.map_batches(values, batch_format="pyarrow")
        return _groupby(sub, list(g.keys), [Sum("requests", alias_name="requests")])
    aggs: list[Any] = [Sum(s, alias_name=s) for s in g.sums]
    if g.latency:
        aggs += [
            Count("latency_ok", ignore_nulls=True, alias_name="latency_n"),
            Sum("latency_ok", alias_name="latency_sum"),
        ]
        aggs += [
            Quantile("latency_ok", q=q, alias_name=latency_column(q)) for q in LATENCY_QUANTILES
        ]
    return _groupby(ds, list(g.keys), aggs)


def _groupby(ds: Any, keys: list[str], aggs: list[Any]) -> pd.DataFrame:
    nullable = [k for k in keys if k == "error_code"]
    if nullable:  # group-by keys must not be null: a marker stands in for "no code"
        ds = ds.map_batches(_mark_null, batch_format="pyarrow")
    frame: pd.DataFrame = ds.groupby(keys, num_partitions=PARTITIONS).aggregate(*aggs).to_pandas()
    if nullable:
        frame["error_code"] = frame["error_code"].where(frame["error_code"] != _NO_CODE, None)
    return frame


_NO_CODE = "\x00none"
PARTITIONS = 4
"""Hash partitions of each group-by (the aggregates are small: a few suffice)."""


def _mark_null(batch: pa.Table) -> pa.Table:
    i = batch.schema.get_field_index("error_code")
    return batch.set_column(i, "error_code", pc.fill_null(batch["error_code"], _NO_CODE))

"""What the traffic analysis aggregates — one definition — and its DuckDB executor.

From the normalised requests, each executor computes the same tables, grouped by model:

- ``second`` and ``minute``: per period (``epoch_ms // 1000`` and ``// 60000``, UTC), the
  requests that arrived (every status), ``ok``, ``throttled``, ``error`` counts and the token
  sums of the served (``ok``) requests; ``minute`` adds the count, sum and the 50th/90th/99th
  percentiles (linear interpolation) of the served requests' logged latency;
- ``arrivals``: requests per millisecond (for inter-arrival gaps);
- ``values``: per ``field`` and ``value``, how many served requests had that value of
  ``input_tokens``, ``output_tokens``, ``cache_read_tokens``, ``cache_write_tokens``,
  ``prompt_tokens`` (input + cache read + cache write) and ``max_tokens`` (where known) — exact
  distributions, from which every percentile and histogram is computed once, in
  ``capacity.usage._traffic``;
- ``codes``: requests per status and error code.

``DERIVED`` names each per-row column with its SQL form and its Arrow form side by side;
``capacity.usage._aggregate_ray`` runs the same ``GROUPINGS`` on Ray Data, and a test checks
that both executors return identical tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from capacity.usage._duck import connect
from capacity.usage._requests import RequestTable

ArrowFn = Callable[[pa.Table], pa.Array]


def _served(col: str) -> ArrowFn:
    return lambda t: pc.if_else(pc.equal(t["status"], "ok"), t[col], 0)


def _is(status: str) -> ArrowFn:
    return lambda t: pc.cast(pc.equal(t["status"], status), pa.int64())


def _ms(t: pa.Table) -> pa.Array:
    return pc.cast(t["timestamp"], pa.int64())


def _prompt(t: pa.Table) -> pa.Array:
    return pc.add(pc.add(t["input_tokens"], t["cache_read_tokens"]), t["cache_write_tokens"])


DERIVED: Final[dict[str, tuple[str, ArrowFn]]] = {
    # Milliseconds since the epoch are never negative here, so integer division is the floor.
    "ms": ("epoch_ms(timestamp)", _ms),
    "second": ("epoch_ms(timestamp) // 1000", lambda t: pc.divide(_ms(t), 1000)),
    "minute": ("epoch_ms(timestamp) // 60000", lambda t: pc.divide(_ms(t), 60000)),
    "requests": ("1::BIGINT", lambda t: pa.repeat(pa.scalar(1, pa.int64()), t.num_rows)),
    "ok": ("(status = 'ok')::BIGINT", _is("ok")),
    "throttled": ("(status = 'throttled')::BIGINT", _is("throttled")),
    "error": ("(status = 'error')::BIGINT", _is("error")),
    **{
        f"ok_{c}": (f"CASE WHEN status = 'ok' THEN {c} ELSE 0 END", _served(c))
        for c in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
    },
    "prompt_tokens": ("input_tokens + cache_read_tokens + cache_write_tokens", _prompt),
}
RATE_SUMS: Final = (
    "requests",
    "ok",
    "throttled",
    "error",
    "ok_input_tokens",
    "ok_cache_read_tokens",
    "ok_cache_write_tokens",
    "ok_output_tokens",
)
VALUE_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "prompt_tokens",
    "max_tokens",
)
LATENCY_QUANTILES: Final = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class Grouping:
    """One aggregate table: group ``keys``, sum ``sums``; ``latency`` adds the served
    requests' latency count, sum and ``LATENCY_QUANTILES``; ``values`` makes it the value
    counts (keys ``model_id``, ``field``, ``value``) of those fields over served requests,
    where known."""

    name: str
    keys: tuple[str, ...]
    sums: tuple[str, ...]
    latency: bool = False
    values: tuple[str, ...] = ()


GROUPINGS: Final = (
    Grouping("second", ("model_id", "second"), RATE_SUMS),
    Grouping("minute", ("model_id", "minute"), RATE_SUMS, latency=True),
    Grouping("arrivals", ("model_id", "ms"), ("requests",)),
    Grouping("codes", ("model_id", "status", "error_code"), ("requests",)),
    Grouping("values", ("model_id", "field", "value"), ("requests",), values=VALUE_FIELDS),
)


def latency_column(q: float) -> str:
    """The name of a latency percentile column (``latency_s_p50``…)."""
    return f"latency_s_p{round(q * 100):d}"


def _sql(g: Grouping) -> str:
    if g.values:
        parts = []
        for f in g.values:
            value = DERIVED[f][0] if f in DERIVED else f
            parts.append(
                f"SELECT model_id, '{f}' AS field, {value} AS value, count(*)::BIGINT AS "
                f"requests FROM requests WHERE status = 'ok' AND {value} IS NOT NULL GROUP BY ALL"
            )
        return " UNION ALL ".join(parts)
    keys = [k if k not in DERIVED else f"{DERIVED[k][0]} AS {k}" for k in g.keys]
    sums = [f"sum({DERIVED[s][0]})::BIGINT AS {s}" for s in g.sums]
    if g.latency:
        ok = "FILTER (WHERE status = 'ok')"
        sums += [f"count(latency_s) {ok} AS latency_n", f"sum(latency_s) {ok} AS latency_sum"]
        sums += [
            f"quantile_cont(latency_s, {q}) {ok} AS {latency_column(q)}" for q in LATENCY_QUANTILES
        ]
    return f"SELECT {', '.join(keys + sums)} FROM requests GROUP BY ALL ORDER BY ALL"


def columns(g: Grouping) -> list[str]:
    """The columns of ``g``'s table, in order."""
    if g.values:
        return ["model_id", "field", "value", "requests"]
    extra = []
    if g.latency:
        extra = ["latency_n", "latency_sum", *(latency_column(q) for q in LATENCY_QUANTILES)]
    return [*g.keys, *g.sums, *extra]


def normalise(frame: pd.DataFrame, g: Grouping) -> pd.DataFrame:
    """``frame`` with ``g``'s columns in order, plain dtypes (counts int64, keys as Python
    strings or int64), sorted by its keys: one executor's table equals the other's."""
    frame = frame.reindex(columns=columns(g))  # an empty result may come without columns
    for c in frame.columns:
        if c in ("model_id", "status", "error_code", "field"):
            frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
        elif c in ("latency_sum", *(latency_column(q) for q in LATENCY_QUANTILES)):
            frame[c] = frame[c].astype(float)
        else:
            frame[c] = frame[c].astype("int64")
    keys = list(g.keys)
    sort = frame[keys].copy()
    if "error_code" in sort:
        sort["error_code"] = sort["error_code"].fillna("")  # no code sorts first
    return frame.loc[sort.sort_values(keys, kind="stable").index].reset_index(drop=True)


def aggregate_duckdb(table: RequestTable, threads: int | None = None) -> dict[str, pd.DataFrame]:
    """Every table of ``GROUPINGS`` computed by DuckDB over ``table``, sorted by its keys."""
    con = connect(threads)
    con.register("requests", table.arrow)
    return {g.name: normalise(con.sql(_sql(g)).df(), g) for g in GROUPINGS}


EXECUTORS: Final = ("duckdb", "ray")

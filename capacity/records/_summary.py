"""Per-level summaries of request records: one row per (prompt_label, level).

Latency and tps statistics use ``ok`` requests only; percentiles are linear interpolation
(numpy's default). System throughput of a level is Σ tokens of its ok requests over its window
(first send → last end); in-flight concurrency is the exact sweep-line, time-weighted. Levels that
appear in several runs pool them: windows and request-seconds add up (clocks are per run).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from capacity.records._derive import (
    ConcurrencyStats,
    concurrency_stats,
    interval_end_s,
    mean_in_flight,
    plateau_window,
)
from capacity.records._schema import (
    PERCENTILES,
    SEED_SUMMARY_COLUMNS,
    STATUSES,
    TPS_LOW_PERCENTILES,
)
from capacity.records._validate import ensure_records

Floats = npt.NDArray[np.float64]


def _stat_columns(metric: str, unit: str, percentiles: tuple[int, ...]) -> list[str]:
    return [f"{metric}_{s}{unit}" for s in ("mean", "min", "max")] + [
        f"{metric}_p{p}{unit}" for p in percentiles
    ]


SUMMARY_COLUMNS: tuple[str, ...] = (
    "prompt_label",
    "level",
    "model_id",
    "mode",
    "n",
    *(f"n_{s}" for s in STATUSES),
    "n_tps_undefined",
    "input_tokens_mean",
    "output_tokens_mean",
    "temperature",
    "max_tokens",
    *_stat_columns("tps", "", (*TPS_LOW_PERCENTILES, *PERCENTILES)),
    *_stat_columns("ttft", "_s", PERCENTILES),
    *_stat_columns("ttlt", "_s", PERCENTILES),
    "e2e_mean_s",
    "e2e_p95_s",
    "duration_s",
    "output_tps",
    "input_tps",
    "achieved_rpm",
    "achieved_tpm",
    "sent_rpm",
    "throttle_rate",
    "error_rate",
    "concurrency_mean",
    "concurrency_max",
    "active_at_start_mean",
    "plateau_share",
    "concurrency_plateau_mean",
)
"""Columns of ``summarize``'s result, in order."""


def _stats(values: Floats, metric: str, unit: str, percentiles: tuple[int, ...]) -> dict[str, Any]:
    names = _stat_columns(metric, unit, percentiles)
    x = values[np.isfinite(values)]
    if x.size == 0:
        return dict.fromkeys(names, np.nan)
    q = np.percentile(x, percentiles)
    return dict(zip(names, [x.mean(), x.min(), x.max(), *q], strict=True))


_FLOAT_COLUMNS = (
    "tps",
    "ttft_s",
    "ttlt_s",
    "e2e_s",
    "input_tokens",
    "output_tokens",
    "start_s",
    "temperature",
    "max_tokens",
    "active_at_start",
    "level",
)
_TEXT_COLUMNS = ("prompt_label", "model_id", "mode", "run_id", "status")


class _Columns:
    """The record columns a summary needs, as numpy arrays; text factorised to int codes."""

    def __init__(self, recs: pd.DataFrame) -> None:
        self.values = {c: recs[c].to_numpy(dtype=np.float64) for c in _FLOAT_COLUMNS}
        self.end = interval_end_s(recs)
        self.codes: dict[str, npt.NDArray[np.intp]] = {}
        self.uniques: dict[str, list[str]] = {}
        for c in _TEXT_COLUMNS:
            codes, uniques = pd.factorize(recs[c], use_na_sentinel=True)
            self.codes[c] = np.asarray(codes)
            self.uniques[c] = [str(u) for u in uniques]

    def text(self, column: str, idx: npt.NDArray[np.intp]) -> str:
        """The distinct non-null values of ``column`` at ``idx``, sorted and comma-joined."""
        codes = np.unique(self.codes[column][idx])
        return ",".join(sorted(self.uniques[column][c] for c in codes if c >= 0))

    def is_status(self, status: str, idx: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
        """Which rows at ``idx`` have ``status``."""
        names = self.uniques["status"]
        if status not in names:
            return np.zeros(idx.size, dtype=bool)
        return np.asarray(self.codes["status"][idx] == names.index(status), dtype=bool)


def _group_row(cols: _Columns, idx: npt.NDArray[np.intp]) -> dict[str, Any]:
    ok = cols.is_status("ok", idx)
    counts = {f"n_{s}": int(np.count_nonzero(cols.is_status(s, idx))) for s in STATUSES}
    n = idx.size
    col = {c: v[idx] for c, v in cols.values.items()}
    start, end, runs = col["start_s"], cols.end[idx], cols.codes["run_id"][idx]
    stats = ConcurrencyStats.combine(
        [concurrency_stats(start[runs == r], end[runs == r]) for r in np.unique(runs)]
    )
    duration = stats.duration_s
    out_tokens = np.nansum(col["output_tokens"][ok])
    in_tokens = np.nansum(col["input_tokens"][ok])
    per_min = 60.0 / duration if duration > 0 else np.nan
    row: dict[str, Any] = {
        "prompt_label": cols.text("prompt_label", idx),
        "level": float(col["level"][0]),
        "model_id": cols.text("model_id", idx),
        "mode": cols.text("mode", idx),
        "n": n,
        **counts,
        "n_tps_undefined": int(np.count_nonzero(ok & ~np.isfinite(col["tps"]))),
        "input_tokens_mean": _mean(col["input_tokens"][ok]),
        "output_tokens_mean": _mean(col["output_tokens"][ok]),
        "temperature": _median(col["temperature"]),
        "max_tokens": _median(col["max_tokens"]),
        **_stats(col["tps"][ok], "tps", "", (*TPS_LOW_PERCENTILES, *PERCENTILES)),
        **_stats(col["ttft_s"][ok], "ttft", "_s", PERCENTILES),
        **_stats(col["ttlt_s"][ok], "ttlt", "_s", PERCENTILES),
        "e2e_mean_s": _mean(col["e2e_s"][ok]),
        "e2e_p95_s": _percentile(col["e2e_s"][ok], 95),
        "duration_s": duration,
        "output_tps": out_tokens * per_min / 60.0,
        "input_tps": in_tokens * per_min / 60.0,
        "achieved_rpm": counts["n_ok"] * per_min,
        "achieved_tpm": (out_tokens + in_tokens) * per_min,
        "sent_rpm": n * per_min,
        "throttle_rate": counts["n_throttled"] / n,
        "error_rate": (counts["n_error"] + counts["n_timeout"]) / n,
        "concurrency_mean": stats.mean,
        "concurrency_max": stats.max,
        "active_at_start_mean": _mean(col["active_at_start"]),
        **_plateau(start, end, runs, _mean(col["e2e_s"][ok])),
    }
    return row


def _plateau(
    start: Floats, end: Floats, runs: npt.NDArray[np.intp], latency_s: float
) -> dict[str, float]:
    """How much of the level ran in steady state: the share of requests sent inside the plateau
    window (``plateau_window``) and the mean in-flight count over it (first run of the level)."""
    first = runs == runs[0]
    lo, hi = plateau_window(start[first], latency_s)
    if not hi > lo:
        return {"plateau_share": 0.0, "concurrency_plateau_mean": np.nan}
    inside = (start[first] >= lo) & (start[first] <= hi)
    return {
        "plateau_share": float(inside.mean()),
        "concurrency_plateau_mean": mean_in_flight(start[first], end[first], lo, hi),
    }


def _mean(x: Floats) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else np.nan


def _median(x: Floats) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else np.nan


def _percentile(x: Floats, p: float) -> float:
    x = x[np.isfinite(x)]
    return float(np.percentile(x, p)) if x.size else np.nan


def summarize(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (prompt_label, level): counts by status, tps and latency statistics, system
    throughput, achieved RPM/TPM, throttle and error rates, and in-flight concurrency.

    Columns are ``SUMMARY_COLUMNS``; rows are ordered by prompt size (mean input tokens), then
    level. ``capacity.seed_table`` renames the seed's columns to its headings.
    """
    recs = ensure_records(records)
    cols = _Columns(recs)
    keys = pd.DataFrame({"label": cols.codes["prompt_label"], "level": cols.values["level"]})
    groups = keys.groupby(["label", "level"], sort=False, dropna=False).indices
    rows = [_group_row(cols, np.asarray(idx, dtype=np.intp)) for idx in groups.values()]
    out = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    if not out.empty:
        size = out.groupby("prompt_label", dropna=False)["input_tokens_mean"].transform("median")
        out = (
            out.assign(_size=size.fillna(np.inf))
            .sort_values(["_size", "prompt_label", "level"], kind="stable")
            .drop(columns="_size")
            .reset_index(drop=True)
        )
    out["prompt_label"] = out["prompt_label"].astype("string")
    out.attrs["percentiles"] = "linear interpolation (numpy default)"
    return out


def seed_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with the seed's column headings (Model, Concurrent Calls, …), plus Prompt."""
    table = summary[["prompt_label", *SEED_SUMMARY_COLUMNS]].rename(
        columns={"prompt_label": "Prompt", **SEED_SUMMARY_COLUMNS}
    )
    return table.reset_index(drop=True)


def compare_prompts(summary: pd.DataFrame) -> pd.DataFrame | None:
    """The seed's small-vs-large system throughput table: output tokens/s of the smallest and
    the largest prompt at each level both measured, and the difference in %.

    ``None`` when fewer than two prompt sizes are present. ``attrs["prompts"]`` holds the two
    labels (small, large).
    """
    sizes = summary.groupby("prompt_label", sort=False)["input_tokens_mean"].median()
    if len(sizes) < 2:
        return None
    small, large = sizes.idxmin(), sizes.idxmax()
    a = summary[summary["prompt_label"] == small].set_index("level")["output_tps"]
    b = summary[summary["prompt_label"] == large].set_index("level")["output_tps"]
    levels = a.index.intersection(b.index).sort_values()
    table = pd.DataFrame(
        {
            "level": levels.to_numpy(dtype=np.float64),
            "small_output_tps": a.loc[levels].to_numpy(),
            "large_output_tps": b.loc[levels].to_numpy(),
        }
    )
    table["difference_pct"] = 100.0 * (table["large_output_tps"] / table["small_output_tps"] - 1)
    table.attrs["prompts"] = (str(small), str(large))
    return table

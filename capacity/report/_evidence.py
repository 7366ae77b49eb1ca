"""The report's evidence from measured runs (section 9): the summary rows per prompt size and
level, the throttle history, the measured figures, what the runs were measured against, and
how far the target lies from the measured range."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from capacity.figures import png_bytes
from capacity.figures.justification import plot_quota_ask
from capacity.planning import Quota, QuotaRequest, Slo, Workload, fmt
from capacity.prediction import Predictor
from capacity.predictors import PredictorInfo
from capacity.report._model import FigureImage, plain

__all__ = [
    "EVIDENCE_COLUMNS",
    "context_words",
    "evidence_figures",
    "evidence_rows",
    "measured_range",
    "png_base64",
    "throttle_rows",
]

EVIDENCE_COLUMNS = (
    "prompt_label",
    "level",
    "n",
    "n_ok",
    "input_tokens_mean",
    "output_tokens_mean",
    "tps_p50",
    "ttft_p50_s",
    "ttft_p95_s",
    "ttlt_p95_s",
    "output_tps",
    "achieved_rpm",
    "achieved_tpm",
    "concurrency_mean",
    "throttle_rate",
)
"""Summary columns quoted as evidence (``capacity.summarize``), per prompt size and level."""


def png_base64(fig: Any) -> str:
    """A figure as base64 PNG, as the report embeds it."""
    return base64.b64encode(png_bytes(fig)).decode("ascii")


def evidence_figures(
    current: Quota,
    request: QuotaRequest,
    workload: Workload,
    model: Predictor | None,
    slo: Slo | None,
    records: pd.DataFrame | None,
    *,
    ask_chart: bool = True,
) -> tuple[FigureImage, ...]:
    """The planner's chart of the ask (``plot_quota_ask``, unless ``ask_chart`` is False) and
    the measured figures of the runs: speed and TTFT vs requests in flight, and with a fitted
    model the system throughput with its USL fit."""
    from capacity.figures import plot_scaling, plot_throughput
    from capacity.fitting import CapacityModel

    out = []
    if ask_chart:
        out.append(
            FigureImage(
                "quota_ask",
                "Users supported today and with the requested quota, both on the "
                "supported-users curve (raised quotas scale together); each raise as its own "
                "step; latency at the target beside it.",
                png_base64(plot_quota_ask(current, request, workload, model, slo)),
            )
        )
    if records is not None and len(records):
        fitted = model if isinstance(model, CapacityModel) else None
        curves = (
            "with the fitted curves."
            if fitted is not None
            else "measured only: the latency model has no per-prompt fitted curves to draw."
        )
        out.append(
            FigureImage(
                "scaling",
                "Measured per-request tokens/s and TTFT vs requests in flight (bands: p10-p90), "
                + curves,
                png_base64(plot_scaling(records, fitted)),
            )
        )
        if fitted is not None:
            out.append(
                FigureImage(
                    "throughput",
                    "System output throughput vs requests in flight: measured points, the USL "
                    "fit and its band, and the knees.",
                    png_base64(plot_throughput(records, fitted)),
                )
            )
    return tuple(out)


Rows = tuple[dict[str, Any], ...]


def evidence_rows(summary: pd.DataFrame | None) -> tuple[tuple[str, ...], Rows]:
    """The evidence table: the quoted summary columns and their rows (none without runs)."""
    if summary is None or summary.empty:
        return (), ()
    cols = tuple(c for c in EVIDENCE_COLUMNS if c in summary.columns)
    rows = tuple(plain(r) for r in summary[list(cols)].to_dict("records"))
    return cols, rows


def throttle_rows(summary: pd.DataFrame | None) -> Rows:
    """The summary rows (prompt size and level) where requests were throttled."""
    if summary is None or summary.empty or "n_throttled" not in summary.columns:
        return ()
    hit = summary[pd.to_numeric(summary["n_throttled"], errors="coerce").fillna(0) > 0]
    cols = [c for c in ("prompt_label", "level", "n", "n_throttled", "throttle_rate") if c in hit]
    return tuple(plain(r) for r in hit[cols].to_dict("records"))


def measured_range(
    latency: Mapping[str, Any] | None, model: Predictor | None, info: PredictorInfo | None
) -> str:
    if model is None:
        return "No fitted model: latency is assumed, not measured; the SLO is not checked."
    if latency is None:
        return "The fitted endpoint cannot carry the target at all (see the reason)."
    top = latency.get("measured_max_inflight")
    n = float(latency["inflight"])
    measured = f"measured up to {fmt(top)} requests in flight" if top is not None else "measured"
    if latency.get("extrapolated"):
        factor = f" (×{n / float(top):.1f})" if top else ""
        return (
            f"The evidence was {measured}; the target's busiest minute runs {fmt(n)} in flight, "
            f"beyond it{factor}: the latency there is extrapolated from "
            + ("the twin's serving model." if info and info.is_twin else "the fitted curves.")
        )
    return (
        f"The evidence was {measured}; the target's busiest minute runs {fmt(n)} in flight, "
        "within the measured range."
    )


def context_words(given: str | None, summary: pd.DataFrame | None, current: Quota) -> str:
    """What the evidence was measured against; a note when it ran above today's quota."""
    text = (given or "").strip() or "The evidence's endpoint and quota were not recorded."
    if summary is not None and "achieved_tpm" in summary and len(summary):
        top = float(pd.to_numeric(summary["achieved_tpm"], errors="coerce").max())
        if math.isfinite(top) and top > current.runtime_tpm:
            text += (
                f" The measurements reached {fmt(top)} tokens per minute, above today's quota "
                f"of {fmt(current.runtime_tpm)}: they show what the endpoint serves, not what "
                "the account may send today."
            )
    return text

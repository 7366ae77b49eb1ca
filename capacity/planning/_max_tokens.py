"""Choosing ``max_tokens``: small enough to free admission capacity, large enough not to truncate.

Bedrock reserves input + max_tokens against TPM when it admits a request, so an oversized
``max_tokens`` (or an unset one, which reserves the model maximum) cuts how many requests fit
per minute. The recommendation is the ``quantile`` of the observed output lengths by the
inverse of the empirical CDF (numpy's "inverted_cdf": the smallest observed length v with
F(v) ≥ quantile, so at most a fraction 1 − quantile of the observed outputs exceed it), rounded
up; the admission gain is reservation(current) / reservation(new) − 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from capacity.planning._inputs import PlanInputError
from capacity.planning._loadcurve import fmt

if TYPE_CHECKING:  # records arrive as DataFrames; planning itself never imports pandas
    import pandas as pd


@dataclass(frozen=True)
class MaxTokensAdvice:
    """The recommended ``max_tokens`` and what it gains.

    ``truncated_share`` is the share of observed outputs that reached ``current_max_tokens``
    (None when it is unknown); ``admission_gain`` = (input + current) / (input + recommended) − 1,
    the relative increase in reservations per minute (None without a current value).
    """

    max_tokens: int
    quantile: float
    n: int
    observed_max: float
    current_max_tokens: float | None
    truncated_share: float | None
    input_tokens: float | None
    admission_gain: float | None
    formulas: dict[str, str]
    notes: tuple[str, ...]


def _outputs(
    data: pd.DataFrame | Iterable[float],
) -> tuple[np.ndarray, float | None, float | None, list[str]]:
    notes: list[str] = []
    if not hasattr(data, "columns"):  # an iterable of output lengths, not a records frame
        values = np.asarray(list(data), dtype=float)
        return values, None, None, notes
    data = cast("pd.DataFrame", data)
    if "output_tokens" not in data.columns:
        raise PlanInputError("records need an output_tokens column to recommend max_tokens")
    frame = data
    if "status" in frame.columns:
        frame = frame[frame["status"] == "ok"]
        notes.append(f"{len(frame)} ok requests of {len(data)} records")
    current = None
    if "max_tokens" in frame.columns and frame["max_tokens"].notna().any():
        settings = frame["max_tokens"].dropna()
        current = float(settings.max())
        if settings.nunique() > 1:
            notes.append(
                f"records use several max_tokens values; compared with the largest, {current:g}"
            )
    mean_input = None
    if "input_tokens" in frame.columns and frame["input_tokens"].notna().any():
        mean_input = float(frame["input_tokens"].mean())
    values = frame["output_tokens"].dropna().to_numpy(dtype=float)
    return values, current, mean_input, notes


def recommend_max_tokens(
    records_or_output_tokens: pd.DataFrame | Iterable[float],
    quantile: float = 0.999,
    *,
    current_max_tokens: float | None = None,
    input_tokens: float | None = None,
) -> MaxTokensAdvice:
    """The ``max_tokens`` that truncates at most a fraction 1 − ``quantile`` of requests.

    Takes a records DataFrame (ok rows' ``output_tokens``; ``max_tokens`` and mean
    ``input_tokens`` are read from it when not given) or a sequence of output token counts.
    """
    if not 0 < quantile < 1:
        raise PlanInputError(f"quantile must be in (0, 1), got {quantile!r}")
    values, current, mean_input, notes = _outputs(records_or_output_tokens)
    current = current if current_max_tokens is None else float(current_max_tokens)
    mean_input = mean_input if input_tokens is None else float(input_tokens)
    if values.size == 0:
        raise PlanInputError("no output token counts to recommend max_tokens from")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise PlanInputError("output token counts must be finite and >= 0")
    if current is not None and current <= 0:
        raise PlanInputError(f"current_max_tokens must be > 0, got {current!r}")
    if mean_input is not None and mean_input < 0:
        raise PlanInputError(f"input_tokens must be >= 0, got {mean_input!r}")
    q_value = float(np.quantile(values, quantile, method="inverted_cdf"))
    recommended = max(1, math.ceil(q_value))
    formulas = {
        "max_tokens": f"ceil(quantile(output_tokens, {quantile:g}, method='inverted_cdf')) = "
        f"ceil({fmt(q_value)}) = {recommended}"
    }
    n = int(values.size)
    if n * (1 - quantile) < 1:
        notes.append(
            f"only {n} outputs: the {quantile:g} quantile is the sample maximum, so the "
            f"truncation rate is only known to be below about 1/{n + 1}"
        )
    truncated = None
    gain = None
    if current is not None:
        truncated = float(np.mean(values >= current))
        if truncated > 1 - quantile:
            notes.append(
                f"{truncated:.2%} of outputs reached the current max_tokens ({fmt(current)}): "
                "their true length is unknown: raise max_tokens, re-measure, then recommend again"
            )
        base = 0.0 if mean_input is None else mean_input
        gain = (base + current) / (base + recommended) - 1
        formulas["admission_gain"] = (
            f"(input + current) / (input + recommended) - 1 = ({fmt(base)} + {fmt(current)}) / "
            f"({fmt(base)} + {recommended}) - 1 = {fmt(gain)}"
        )
        if mean_input is None:
            notes.append("input tokens unknown: the admission gain counts max_tokens alone")
    return MaxTokensAdvice(
        max_tokens=recommended,
        quantile=quantile,
        n=n,
        observed_max=float(values.max()),
        current_max_tokens=current,
        truncated_share=truncated,
        input_tokens=mean_input,
        admission_gain=gain,
        formulas=formulas,
        notes=tuple(notes),
    )

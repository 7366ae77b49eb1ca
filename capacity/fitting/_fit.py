"""``fit_capacity``: records → a ``CapacityModel`` (USL and latency quantile curves per prompt).

Curves are fitted against the **measured** in-flight concurrency of each level by default (the
time-weighted sweep-line mean): the seed's interval-mode "level" is a batch size per interval,
and the requests actually in flight are several times more (docs/architecture.md, "Load modes").
``concurrency="offered"`` uses the level itself, which is right only for closed-loop
(concurrency-mode) sweeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from capacity.errors import FitError
from capacity.fitting._model import CapacityModel
from capacity.fitting._prompt import Basis, PromptModel
from capacity.fitting._quantile import QuantileCurve, fit_quantile_curves
from capacity.fitting._usl import fit_usl
from capacity.records import ensure_records, summarize

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _CurveSettings:
    quantiles: tuple[float, ...]
    n_boot: int
    max_rows_per_level: int
    level: float
    seed: int

    def fit(
        self, n: Floats, values: Floats, metric: str, qs: Sequence[float]
    ) -> tuple[QuantileCurve, ...]:
        return fit_quantile_curves(
            n, values, qs, metric=metric, n_boot=self.n_boot,
            max_rows_per_level=self.max_rows_per_level, level=self.level, seed=self.seed,
        )  # fmt: skip


def fit_capacity(
    records: pd.DataFrame,
    *,
    concurrency: Basis = "measured",
    quantiles: Sequence[float] = (0.5, 0.95, 0.99),
    n_boot: int = 200,
    max_rows_per_level: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> CapacityModel:
    """Fit, per prompt size, the USL of median per-request tps and of system throughput, and
    quantile curves of TTFT and TTLT (``quantiles``) and of the 5th percentile of tps.

    ``n_boot`` bootstrap replicates give the quantile curves' intervals; quantile regressions use
    at most ``max_rows_per_level`` rows per level (seeded subsample). Levels without ok requests
    are left out (a note says so). Raises ``FitError`` when a prompt has too few usable levels.
    """
    if concurrency not in ("measured", "offered"):
        raise ValueError(f"concurrency must be 'measured' or 'offered', got {concurrency!r}")
    recs = ensure_records(records)
    summary = summarize(recs)
    if summary.empty:
        raise FitError("no records to fit")
    notes: list[str] = []
    modes = set(",".join(summary["mode"].astype(str)).split(",")) - {""}
    if concurrency == "offered" and modes & {"interval", "rate", "sequential"}:
        notes.append(
            f"offered levels of {'/'.join(sorted(modes))} mode are not in-flight "
            "concurrency: prefer concurrency='measured'"
        )
    settings = _CurveSettings(tuple(quantiles), n_boot, max_rows_per_level, level, seed)
    prompts = [
        _fit_prompt(recs, summary[summary["prompt_label"] == label], concurrency, settings, notes)
        for label in pd.unique(summary["prompt_label"])
    ]
    model_ids = sorted(set(",".join(summary["model_id"].astype(str)).split(",")) - {""})
    return CapacityModel(
        prompts=tuple(sorted(prompts, key=lambda p: p.input_tokens)),
        concurrency=concurrency,
        model_id=",".join(model_ids),
        notes=tuple(notes),
        modes=tuple(sorted(modes)),
    )


def _fit_prompt(
    recs: pd.DataFrame, part: pd.DataFrame, basis: Basis, settings: _CurveSettings, notes: list[str]
) -> PromptModel:
    """The curves of one prompt size from its summary rows and its ok records."""
    label = str(part["prompt_label"].iloc[0])
    usable = part[(part["n_ok"] > 0) & np.isfinite(part["tps_p50"]) & (part["output_tps"] > 0)]
    if len(usable) < len(part):
        skipped = ", ".join(f"{v:g}" for v in sorted(set(part["level"]) - set(usable["level"])))
        notes.append(
            f"prompt {label!r}: levels {skipped} have no ok requests with a measurable tps "
            "and are left out"
        )
    n = usable["concurrency_mean" if basis == "measured" else "level"].to_numpy(np.float64)
    try:
        decode = fit_usl(n, usable["tps_p50"].to_numpy(np.float64))
        throughput = fit_usl(n, usable["output_tps"].to_numpy(np.float64) / n)
    except FitError as exc:
        raise FitError(f"prompt {label!r}: {exc}") from exc
    mine = ((recs["prompt_label"] == label) & (recs["status"] == "ok")).to_numpy(
        dtype=bool, na_value=False
    )
    levels = usable["level"].to_numpy(np.float64)
    row_n = _map_levels(recs["level"].to_numpy(np.float64)[mine], levels, n)

    def values(column: str) -> Floats:
        return recs[column].to_numpy(dtype=np.float64)[mine]

    return PromptModel(
        prompt_label=label,
        input_tokens=float(np.nanmean(usable["input_tokens_mean"])),
        output_tokens=float(np.nanmean(usable["output_tokens_mean"])),
        decode=decode,
        throughput=throughput,
        ttft=settings.fit(row_n, values("ttft_s"), "ttft_s", settings.quantiles),
        ttlt=settings.fit(row_n, values("ttlt_s"), "ttlt_s", settings.quantiles),
        tps_low=settings.fit(row_n, values("tps"), "tps", (0.05,))[0],
        levels=tuple(map(float, levels)),
        concurrency=tuple(map(float, n)),
        n_requests=int(part["n"].sum()),
    )


def _map_levels(row_level: Floats, levels: Floats, n: Floats) -> Floats:
    """Each row's concurrency: ``n`` of its level, NaN for levels left out."""
    order = np.argsort(levels)
    pos = np.clip(np.searchsorted(levels[order], row_level), 0, levels.size - 1)
    hit = levels[order][pos] == row_level
    return np.where(hit, n[order][pos], np.nan)

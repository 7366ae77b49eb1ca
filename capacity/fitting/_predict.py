"""Predictions and knees of a ``CapacityModel``: prompt-size interpolation and SLO search.

Quantities at concurrency N come from each measured prompt size's curves and are interpolated
linearly in input tokens between the two nearest sizes (extrapolated linearly from the two
nearest outside them, and flagged). Latency quantiles are then rearranged so that they never
cross (p50 ≤ p95 ≤ p99, TTLT ≥ TTFT; Chernozhukov et al. 2010), the tps tail stays below the
median, and negatives are clamped to 0 with a note.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from capacity.fitting._prompt import Knees, PromptModel, extrapolation_note, is_close_size
from capacity.fitting._usl import EXTRAPOLATION_LIMIT
from capacity.planning import MAX_CONCURRENCY, LoadCurve, Slo, Workload
from capacity.prediction import Prediction, Predictor

Floats = npt.NDArray[np.float64]


def _bracket(prompts: Sequence[PromptModel], size: float) -> tuple[list[PromptModel], float, str]:
    """The one or two prompt models to use, the weight of the second, and a note."""
    ordered = sorted(prompts, key=lambda p: p.input_tokens)
    for pm in ordered:
        if is_close_size(size, pm.input_tokens):
            return [pm], 0.0, ""
    if len(ordered) == 1:
        only = ordered[0]
        return (
            [only],
            0.0,
            (
                f"only {only.input_tokens:.0f}-token prompts were measured: "
                f"used unchanged for {size:.0f}-token prompts"
            ),
        )
    sizes = [p.input_tokens for p in ordered]
    if size < sizes[0] or size > sizes[-1]:
        a, b = (ordered[0], ordered[1]) if size < sizes[0] else (ordered[-2], ordered[-1])
        verb = "extrapolated linearly from"
    else:
        i = int(np.searchsorted(sizes, size)) - 1
        a, b = ordered[i], ordered[i + 1]
        verb = "interpolated between"
    w = (size - a.input_tokens) / (b.input_tokens - a.input_tokens)
    note = (
        f"{size:.0f}-token prompts {verb} the measured {a.input_tokens:.0f}- and "
        f"{b.input_tokens:.0f}-token prompts"
    )
    return [a, b], w, note


def blend(
    prompts: Sequence[PromptModel], n: Floats, input_tokens: float
) -> tuple[dict[str, Floats], list[str], bool]:
    """Raw quantities at concurrencies ``n`` for ``input_tokens`` prompts, notes, and whether
    the prompt size was extrapolated (before rearrangement; see ``finish``)."""
    used, w, note = _bracket(prompts, input_tokens)
    notes = [note] if note else []
    extrapolated = note.startswith("only") or "extrapolated" in note
    if len(used) == 1:
        return used[0].curves_at(n), notes, extrapolated
    va, vb = used[0].curves_at(n), used[1].curves_at(n)
    values = {k: (1.0 - w) * va[k] + w * vb[k] for k in va if k in vb}
    return values, notes, extrapolated


def _quantile_keys(values: Mapping[str, object], metric: str) -> list[tuple[float, str]]:
    return sorted((float(k[len(metric) + 1 :]), k) for k in values if k.startswith(metric + "_"))


def finish(values: dict[str, Floats], notes: list[str]) -> dict[str, Floats]:
    """Rearrange quantiles so they never cross, keep tps_p5 ≤ tps_p50, clamp negatives."""
    out = dict(values)
    for metric in ("ttft", "ttlt"):
        keys = _quantile_keys(out, metric)
        if keys:
            stacked = np.sort(np.vstack([out[k] for _, k in keys]), axis=0)
            out.update({k: stacked[i] for i, (_, k) in enumerate(keys)})
    for q, key in _quantile_keys(out, "ttlt"):
        ttft_key = f"ttft_{q!r}"
        if ttft_key in out:
            out[key] = np.maximum(out[key], out[ttft_key])
    out["tps_p5"] = np.minimum(out["tps_p5"], out["tps_p50"])
    negative = [k for k, v in out.items() if np.any(v < 0)]
    if negative:
        notes.append(
            f"negative predictions clamped to 0: {', '.join(sorted(negative))} "
            "(far outside the measured range)"
        )
        out = {k: np.maximum(v, 0.0) for k, v in out.items()}
    return out


def predict_point(
    prompts: Sequence[PromptModel], concurrency: float, input_tokens: float
) -> Prediction:
    """``CapacityModel.predict``: one operating point from the fitted ``prompts``."""
    for name, value in (("concurrency", concurrency), ("input_tokens", input_tokens)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}")
    raw, notes, extrapolated = blend(prompts, np.array([float(concurrency)]), input_tokens)
    used = _bracket(prompts, input_tokens)[0]
    for pm in used:
        note = extrapolation_note(pm, concurrency)
        if note:
            notes.append(note)
            extrapolated = True
    v = {k: float(a[0]) for k, a in finish(raw, notes).items()}
    return Prediction(
        concurrency=float(concurrency),
        input_tokens=float(input_tokens),
        tps_p50=v["tps_p50"],
        tps_p5=v["tps_p5"],
        system_output_tps=v["system_output_tps"],
        ttft_s={q: v[k] for q, k in _quantile_keys(v, "ttft")},
        ttlt_s={q: v[k] for q, k in _quantile_keys(v, "ttlt")},
        extrapolated=extrapolated,
        notes=tuple(notes),
        output_tokens=float(np.mean([pm.output_tokens for pm in used])),
        measured_concurrency_max=min(pm.n_max for pm in used),
    )


def find_knees(
    prompts: Sequence[PromptModel],
    model: Predictor,
    input_tokens: float,
    slo: Slo | None,
    output_tokens: float | None,
    efficiency: float,
) -> Knees:
    """``CapacityModel.knees``: N* and the SLO limit on the planner's capacity curve of
    ``model`` (the model the fitted ``prompts`` belong to)."""
    used, w, note = _bracket(prompts, input_tokens)
    notes = [note] if note else []
    effs = [pm.throughput.concurrency_at_efficiency(efficiency) for pm in used]
    if len(used) == 2:
        eff = (1 - w) * effs[0] + w * effs[1] if all(map(math.isfinite, effs)) else math.inf
    else:
        eff = effs[0]
    out = (
        float(np.mean([pm.output_tokens for pm in used]))
        if output_tokens is None
        else output_tokens
    )
    curve = LoadCurve(
        Workload(input_tokens=max(input_tokens, 1.0), output_tokens=out, max_tokens=out), model
    )
    n_max = max(pm.n_max for pm in used)
    peak = curve.n_peak
    if peak >= curve.n_valid and curve.n_valid >= MAX_CONCURRENCY:
        peak = math.inf
        notes.append(
            f"requests/s still rise at {MAX_CONCURRENCY:,.0f} in flight (the search limit): "
            "no peak identified"
        )
    elif peak > EXTRAPOLATION_LIMIT * n_max:
        notes.append(
            f"N* ({peak:.3g}) lies beyond 1.5× the largest measured concurrency ({n_max:.3g}): "
            "an extrapolation"
        )
    slo_n = None
    if slo is not None:
        slo_n = curve.slo_limit(slo)
        if slo_n == 0:
            notes.append(f"no concurrency meets {slo.describe()}: it fails with one in flight")
        elif slo_n >= curve.n_valid and curve.n_valid >= MAX_CONCURRENCY:
            notes.append(
                f"{slo.describe()} holds at every in-flight count searched (to "
                f"{MAX_CONCURRENCY:,.0f}): the SLO limit is a lower bound, not a capacity"
            )
        elif slo_n > EXTRAPOLATION_LIMIT * n_max:
            notes.append(
                f"the SLO limit ({slo_n:.3g}) lies beyond 1.5× the largest measured "
                "concurrency: an extrapolation"
            )
    recommended = min(peak, slo_n) if slo_n is not None else peak
    return Knees(
        input_tokens=float(input_tokens),
        output_tokens=out,
        peak_concurrency=peak,
        efficient_concurrency=eff,
        efficiency=efficiency,
        slo_concurrency=slo_n,
        recommended_concurrency=recommended,
        slo="" if slo is None else slo.describe(),
        notes=tuple(notes),
    )

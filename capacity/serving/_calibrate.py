"""Calibration of the serving model to a measured probe: the twin's fit (docs/twin.md).

A probe is a few load levels of any mode. Each (run, mode, level, prompt) group becomes a
``ProbeCell``: its schedule (arrival offsets, or the closed loop's concurrency) and its measured
per-request statistics (TTFT, TPOT, TTLT; p50 and p90) with bootstrap standard errors over
batches. Calibration simulates every cell in virtual time with the serving model
(``capacity.serving._engine``) and fits the step-time and gateway coefficients by weighted least
squares on log-ratios (scipy's trust-region reflective solver on log-coefficients), with weak
first-principles priors, from a closed-form start. Common random numbers (one seed for every
evaluation) make the objective a deterministic function of the coefficients. Replica counts are
profiled on a small grid: every count whose fit is not significantly worse is kept as a member of
the twin, so predictions carry that ambiguity. Parameter uncertainty is the Gauss–Newton
covariance at each member's optimum, scaled by the fit's own residual variance.

This module imports numpy and scipy; pandas only when records are passed. It is loaded on first
use of ``capacity.serving.calibrate`` (never by ``import capacity.planning``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from capacity.errors import CapacityError
from capacity.serving._modelerror import ModelError, in_probe_sigma, per_log_ratio
from capacity.serving._profile import ServingModel
from capacity.serving._simulate import (
    SimRequest,
    SimResult,
    simulate,
    simulate_closed_loop,
    simulate_sequential,
)

if TYPE_CHECKING:
    import pandas as pd

Floats = npt.NDArray[np.float64]

STATS = (
    "ttft_p50", "ttft_p90", "tpot_p50", "tpot_p90", "ttlt_p50", "ttlt_p90", "gap_p50",
    "ttft_mean", "tpot_mean", "ttlt_mean", "speed_mean", "ttft_p95", "tpot_p95", "ttlt_p95",
    "system_tps",
)  # fmt: skip
"""Per-cell statistics the fit can match: seconds, but ``speed_mean`` (the mean over requests
of output tokens / TTLT, TTFT included: OCI's and LLMPerf's per-request speed) and
``system_tps`` (the endpoint's output tokens/s while the load was steady) in tokens/s. A cell
matches the statistics it has: a probe's records give p50s and p90s (and ``gap_p50``),
a published table its means, medians and percentiles. ``gap_p50`` is the median over
requests of each one's longest interval between consecutive output chunks (``max_gap_s``): one
step that carried another request's prefill chunk, so it sees prefill interference (c_f) apart
from KV reads (c_kv) even at a light probe, where per-request TPOT averages them over hundreds
of steps. A cell without it (published aggregates, runs recorded before the column) fits
without it. Means are compared with simulated means, never with medians."""

CENTRES = ("p50", "mean")
"""Statistics a tail (p90, p95) is compared against, as log(tail / centre), in this order."""

RECORD_NEEDS = (
    "run_id", "mode", "level", "prompt_label", "batch", "status", "start_s", "first_token_s",
    "last_token_s", "ttft_s", "tpot_s", "ttlt_s", "input_tokens", "output_tokens",
)  # fmt: skip
"""Columns of validated request records that calibration reads."""

OPEN_MODES = ("interval", "rate")
CLOSED_MODES = ("concurrency", "sequential")

FITTED = ("t_w_s", "c_b_s", "c_kv_s", "c_f_s", "alpha0_s", "alpha_in_s", "alpha_jitter_cv")
"""Coefficients calibration estimates (on a log scale)."""

HELD = {
    "c_a_s": "attention floor c_a·ctx_max: hidden under t_w + c_kv·K at any realistic context",
    "step_jitter_cv": "per-request TPOT averages hundreds of steps, so step jitter is invisible",
    "chunk_budget_tokens": "prefill chunk budget: held at the prior (4096 tokens)",
    "max_running": "running-sequence limit: only a lower bound unless the probe queued",
}
"""Coefficients held at their prior, with the reason the probe cannot pin them down."""

PRIOR_SD = math.log(10.0)
"""Prior standard deviation of each log-coefficient: one decade either way."""

SE_FLOOR = 0.02
"""Smallest standard error of a log-statistic: the serving model's own approximation error."""

SPREAD_FLOOR = 0.005
"""The same for a tail's spread over the median, log(p90 / p50)."""

REPLICA_GRID = (1, 2, 3, 4, 6, 8)
REFINED = 2
"""Replica counts refined on the whole probe (the best of the coarse pass), whatever the number
of workers: a twin does not depend on how many processes fitted it."""
COARSE_REQUESTS, COARSE_SPAN_S = 60, 8.0
FINE_REQUESTS, FINE_SPAN_S = 120, 25.0
"""Steady-state requests per cell simulated by the coarse pass and the refinement (per
evaluation; the observed statistics use every measured request)."""
DEFAULT_MODEL_ID = "us.meta.llama3-3-70b-instruct-v1:0"


class CalibrationError(CapacityError, ValueError):
    """The probe cannot calibrate a twin; the message names what it lacks and the fix."""


@dataclass(frozen=True)
class ProbeCell:
    """One measured (mode, level, prompt) group, reduced to what calibration needs.

    ``arrivals_s`` are the open-loop send offsets from the group's first request (interval and
    rate modes); closed-loop modes (concurrency, sequential) use ``level`` and ``n_requests``.
    ``warm_s``: results of requests sent before it are not compared (the ramp into steady
    state); ``sim_until_s``: the simulation sends requests up to this offset only.
    ``observed`` maps a statistic of ``STATS`` to its value; ``se`` to its log-scale standard
    error (bootstrap over batches; the fit adds the simulation's and the model's own errors);
    ``output_tps`` in ``observed`` is shown, never fitted (``system_tps`` is fitted).
    A cell built from published aggregates has only the statistics it was given.
    ``input_sd``/``output_sd``: the standard deviations of normally distributed lengths (0:
    fixed lengths), drawn per request with a fixed seed (``cell_lengths``).
    ``concurrency``: the in-flight count a closed-loop cell is simulated at (NaN: its level);
    a published sweep whose client kept fewer requests in flight than its nominal level sets
    it from Little's law.
    """

    label: str
    mode: str
    level: float
    input_tokens: int
    output_tokens: int
    n_requests: int
    observed: Mapping[str, float]
    se: Mapping[str, float]
    arrivals_s: tuple[float, ...] = ()
    batches: int = 0
    warm_s: float = 0.0
    sim_until_s: float = math.inf
    inflight: float = math.nan
    compared: int = 0
    input_sd: float = 0.0
    output_sd: float = 0.0
    concurrency: float = math.nan

    @property
    def closed_level(self) -> int:
        """The in-flight count a closed-loop simulation of the cell keeps."""
        return max(1, round(self.level if math.isnan(self.concurrency) else self.concurrency))

    def simulated_count(self) -> int:
        """How many requests a simulation of the cell compares (about)."""
        if self.mode in OPEN_MODES:
            return sum(1 for t in self.arrivals_s if self.warm_s <= t < self.sim_until_s)
        level = self.closed_level
        if self.mode == "concurrency":
            return min(self.n_requests, level + max(150, 3 * level)) - level
        return level * min(self.batches, 1 + math.ceil(150 / level))

    def to_dict(self) -> dict[str, Any]:
        """JSON form: everything a simulation of the cell needs (``from_dict`` reads it back)."""
        return {
            "label": self.label,
            "mode": self.mode,
            "level": self.level,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "n_requests": self.n_requests,
            "inflight": _json_float(self.inflight),
            "observed": dict(self.observed),
            "se": dict(self.se),
            "arrivals_s": list(self.arrivals_s),
            "batches": self.batches,
            "warm_s": self.warm_s,
            "sim_until_s": _json_float(self.sim_until_s),
            "compared": self.compared,
            "input_sd": self.input_sd,
            "output_sd": self.output_sd,
            "concurrency": _json_float(self.concurrency),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ProbeCell:
        """Inverse of ``to_dict`` (files written before the schedule was kept load without it:
        their cells describe the probe but cannot be re-simulated)."""

        def num(key: str, default: float) -> float:
            value = raw.get(key)
            return default if value is None else float(value)

        return cls(
            label=str(raw["label"]),
            mode=str(raw["mode"]),
            level=float(raw["level"]),
            input_tokens=int(raw["input_tokens"]),
            output_tokens=int(raw["output_tokens"]),
            n_requests=int(raw["n_requests"]),
            observed={str(k): float(v) for k, v in raw["observed"].items()},
            se={str(k): float(v) for k, v in raw.get("se", {}).items()},
            arrivals_s=tuple(float(t) for t in raw.get("arrivals_s", ())),
            batches=int(raw.get("batches", 0)),
            warm_s=num("warm_s", 0.0),
            sim_until_s=num("sim_until_s", math.inf),
            inflight=num("inflight", math.nan),
            compared=int(raw.get("compared", 0)),
            input_sd=num("input_sd", 0.0),
            output_sd=num("output_sd", 0.0),
            concurrency=num("concurrency", math.nan),
        )

    def centre(self, metric: str) -> float | None:
        """The cell's p50 of ``metric`` (``ttft``, ``tpot``, ``ttlt``), else its mean, else None."""
        for kind in CENTRES:
            value = self.observed.get(f"{metric}_{kind}")
            if value is not None:
                return value
        return None


def _json_float(x: float) -> float | None:
    """JSON has no NaN or infinity: None stands for both (the reader knows which it meant)."""
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class Member:
    """One fitted alternative (a replica count) of the twin, with its coefficient covariance."""

    serving: ServingModel
    names: tuple[str, ...]
    log_cov: tuple[tuple[float, ...], ...]
    chi2: float
    weight: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "serving": dataclasses.asdict(self.serving),
            "names": list(self.names),
            "log_cov": [list(r) for r in self.log_cov],
            "chi2": self.chi2,
            "weight": self.weight,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Member:
        """Inverse of ``to_dict``."""
        return cls(
            serving=ServingModel(**raw["serving"]),
            names=tuple(raw["names"]),
            log_cov=tuple(tuple(float(x) for x in r) for r in raw["log_cov"]),
            chi2=float(raw["chi2"]),
            weight=float(raw["weight"]),
        )


@dataclass(frozen=True)
class Identification:
    """What the probe pinned down: 90 % intervals of the fitted coefficients and the rest."""

    intervals: Mapping[str, tuple[float, float, float]]  # name → (low, estimate, high)
    not_identified: Mapping[str, str]  # name → why
    replicas_consistent: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "not_identified": dict(self.not_identified),
            "replicas_consistent": list(self.replicas_consistent),
        }


# ---------------------------------------------------------------------------------------------
# Probe cells from records


def probe_cells(records: pd.DataFrame) -> list[ProbeCell]:
    """The probe's cells from validated request records (``capacity.records.load_records``).

    Raises ``CalibrationError`` naming what the probe lacks: successful streamed requests, at
    least two load levels, token counts. (capacity.serving sits below capacity.records, so it
    reads the validated frame's columns and does not validate it itself.)
    """
    missing = sorted(set(RECORD_NEEDS) - set(records.columns))
    if missing:
        raise CalibrationError(
            f"the probe's records lack {', '.join(missing)}; load them with "
            "capacity.records.load_records (or validate_records), which derives them"
        )
    frame = records
    if frame.empty:
        raise CalibrationError("the probe has no records; run one with `llmcap probe`")
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        counts = frame["status"].value_counts().to_dict()
        raise CalibrationError(
            f"no request of the probe succeeded (statuses: {counts}); probe at levels the "
            "quota admits (`llmcap probe --budget-tpm` plans one)"
        )
    multi = ok[ok["output_tokens"].to_numpy(float) >= 2]
    tpot = multi["tpot_s"].to_numpy(float)
    streamed = multi[np.isfinite(tpot) & (tpot > 0)]
    if len(streamed) < 0.5 * len(multi) or multi.empty:
        raise CalibrationError(
            "the probe's records have no streaming timestamps (first token = last token: a "
            "non-streaming API?); TTFT and TPOT need streaming: probe with ConverseStream"
        )
    if not np.isfinite(streamed["input_tokens"].to_numpy(float)).any():
        raise CalibrationError(
            "the probe's records have no input token counts; record the usage Bedrock reports"
        )
    cells: list[ProbeCell] = []
    keys = ["run_id", "mode", "level", "prompt_label"]
    for (run_id, mode, level, label), group in frame.groupby(keys, sort=True, observed=True):
        good = group[(group["status"] == "ok") & np.isfinite(group["first_token_s"])]
        good = good[good["tpot_s"].to_numpy(float) > 0]
        if len(good) < 5:
            continue
        cells.append(_cell_from_group(str(run_id), str(mode), float(str(level)), str(label), good))
    if not cells:
        raise CalibrationError(
            "no (level, prompt) group of the probe has 5 successful streamed requests with two "
            "or more output tokens; run longer levels"
        )
    levels = sorted({c.level for c in cells})
    if len(levels) < 2:
        raise CalibrationError(
            f"the probe has one load level ({levels[0]:g}); a twin needs at least two to see "
            "how the endpoint slows with load: probe e.g. --levels 1,5,10"
        )
    return cells


def _quantiles(x: Floats) -> tuple[float, float]:
    return float(np.quantile(x, 0.5)), float(np.quantile(x, 0.9))


def _cell_from_group(
    run_id: str, mode: str, level: float, label: str, g: pd.DataFrame
) -> ProbeCell:
    g = g.sort_values("start_s")
    start = g["start_s"].to_numpy(float)
    offsets = start - start.min()
    ttlt = g["ttlt_s"].to_numpy(float)
    batch = g["batch"].to_numpy(int)
    input_tokens = round(float(np.nanmedian(g["input_tokens"].to_numpy(float))))
    output_tokens = round(float(np.median(g["output_tokens"].to_numpy(float))))
    span = float(g["last_token_s"].max() - g["start_s"].min())
    inflight = float(np.sum(ttlt)) / span if span > 0 else math.nan  # Little's law
    n = len(g)
    if mode in OPEN_MODES:
        warm = 1.5 * float(np.quantile(ttlt, 0.9))
        keep = offsets >= warm
        if keep.sum() < 30:
            warm, keep = 0.0, np.ones(n, dtype=bool)
        # Simulate enough steady state for ~150 compared requests (or everything).
        after = np.sort(offsets[keep])
        until = float(after[min(len(after) - 1, 150)]) + 1e-9 if len(after) > 150 else math.inf
    elif mode in CLOSED_MODES:
        rank = np.arange(n)
        warm_n = int(level) if mode == "concurrency" else 0
        keep = rank >= warm_n
        if keep.sum() < 5:
            keep = np.ones(n, dtype=bool)
        warm, until = 0.0, math.inf
    else:
        raise CalibrationError(
            f"records of mode {mode!r}: calibration knows {OPEN_MODES + CLOSED_MODES}"
        )
    kept = g[keep]
    observed, se = _stats_with_se(kept, batch[keep])
    if span > 0:  # shown in figures, not fitted (it follows from the schedule and the TTLTs)
        observed["output_tps"] = float(g["output_tokens"].sum()) / span
    return ProbeCell(
        label=f"{run_id}:{mode}:{level:g}:{label}",
        mode=mode,
        level=level,
        input_tokens=input_tokens,
        output_tokens=max(output_tokens, 2),
        n_requests=n,
        observed=observed,
        se=se,
        arrivals_s=tuple(float(x) for x in offsets) if mode in OPEN_MODES else (),
        batches=int(batch.max()) + 1,
        warm_s=warm,
        sim_until_s=until,
        inflight=inflight,
        compared=int(keep.sum()),
    )


def _stats_with_se(
    g: pd.DataFrame, batch: npt.NDArray[np.int64]
) -> tuple[dict[str, float], dict[str, float]]:
    cols = {"ttft": g["ttft_s"].to_numpy(float), "tpot": g["tpot_s"].to_numpy(float),
            "ttlt": g["ttlt_s"].to_numpy(float)}  # fmt: skip
    observed: dict[str, float] = {}
    for name, x in cols.items():
        observed[f"{name}_p50"], observed[f"{name}_p90"] = _quantiles(x)
    gap = g["max_gap_s"].to_numpy(float) if "max_gap_s" in g.columns else np.full(len(g), np.nan)
    has_gap = bool(np.mean(np.isfinite(gap)) >= 0.9)  # runs recorded before the column: none
    if has_gap:
        observed["gap_p50"] = float(np.nanmedian(gap))
    # Bootstrap over batches (requests of one batch share their load): SE of log-statistics.
    rng = np.random.default_rng(0)
    ids = np.unique(batch)
    members = [np.flatnonzero(batch == b) for b in ids]
    reps: dict[str, list[float]] = {s: [] for s in observed}
    for _ in range(40):
        pick = np.concatenate([members[i] for i in rng.integers(0, len(ids), len(ids))])
        for name, x in cols.items():
            p50, p90 = _quantiles(x[pick])
            reps[f"{name}_p50"].append(math.log(p50))
            reps[f"{name}_p90"].append(math.log(p90) - math.log(p50))  # the spread's SE
        if has_gap:
            reps["gap_p50"].append(math.log(float(np.nanmedian(gap[pick]))))
    se = {s: max(float(np.std(v)), 1e-3) for s, v in reps.items()}
    return observed, se


# ---------------------------------------------------------------------------------------------
# Simulating a cell


def _profile(serving: ServingModel) -> Any:
    from capacity.serving._profile import ModelSpec, Profile

    return Profile(name="twin", models=(ModelSpec("twin"),), serving=serving)


def cell_lengths(cell: ProbeCell, n: int, seed: int = 0) -> list[tuple[int, int]]:
    """Each request's (input tokens, output tokens) for a cell of random lengths: normal draws
    with the cell's means and standard deviations, at least one token (LLMPerf's rule), from a
    generator fixed by ``seed`` (common random numbers across evaluations). Empty for fixed
    lengths."""
    if cell.input_sd <= 0 and cell.output_sd <= 0:
        return []
    import random

    rng = random.Random(seed * 7919 + 17)
    out: list[tuple[int, int]] = []
    for _ in range(n):
        n_in = rng.gauss(cell.input_tokens, cell.input_sd) if cell.input_sd > 0 else 0.0
        n_out = rng.gauss(cell.output_tokens, cell.output_sd) if cell.output_sd > 0 else 0.0
        out.append((
            max(1, round(n_in)) if cell.input_sd > 0 else cell.input_tokens,
            max(1, round(n_out)) if cell.output_sd > 0 else cell.output_tokens,
        ))  # fmt: skip
    return out


def simulate_cell(serving: ServingModel, cell: ProbeCell, seed: int = 0) -> list[SimResult]:
    """The cell's schedule through ``serving`` in virtual time (its compared requests only)."""
    return _simulate_cell(serving, cell, seed)[1]


def _simulate_cell(
    serving: ServingModel, cell: ProbeCell, seed: int
) -> tuple[list[SimResult], list[SimResult]]:
    """Every simulated request of the cell, and the compared ones (after the warm-up)."""
    profile = _profile(serving)
    if cell.mode in OPEN_MODES:
        times = [t for t in cell.arrivals_s if t < cell.sim_until_s]
        lengths = cell_lengths(cell, len(times), seed) or [
            (cell.input_tokens, cell.output_tokens)
        ] * len(times)
        requests = [
            SimRequest(t, n_in, n_out) for t, (n_in, n_out) in zip(times, lengths, strict=True)
        ]
        results = simulate(profile, requests, seed=seed)
        return results, [r for r in results if r.start_s >= cell.warm_s and r.status == "ok"]
    level = cell.closed_level
    if cell.mode == "concurrency":
        n = min(cell.n_requests, level + max(150, 3 * level))
        results = simulate_closed_loop(
            profile, level, n, input_tokens=cell.input_tokens, max_tokens=cell.output_tokens,
            seed=seed, lengths=cell_lengths(cell, n, seed),
        )  # fmt: skip
        results.sort(key=lambda r: r.start_s)
        return results, results[level:] if len(results) > level + 5 else results
    batches = min(cell.batches, 1 + math.ceil(150 / level))
    results = simulate_sequential(
        profile, level, max(batches, 1), input_tokens=cell.input_tokens,
        max_tokens=cell.output_tokens, seed=seed,
    )  # fmt: skip
    return results, results


def cell_stats(serving: ServingModel, cell: ProbeCell, seed: int = 0) -> dict[str, float]:
    """``result_stats`` of the cell simulated through ``serving``, with ``system_tps``: output
    tokens emitted per second while the load was steady, from the first compared request's
    start to the last request's (tokens counted as emitted evenly between each request's first
    and last token, so a round of completions bunched at one edge does not bias it), and
    ``inflight``, the time-weighted mean of requests in flight over the same window."""
    everything, compared = _simulate_cell(serving, cell, seed)
    out = result_stats(compared)
    out["inflight"] = math.nan
    ok = [r for r in everything if r.status == "ok"]
    if compared and ok:
        t0, t1 = min(r.start_s for r in compared), max(r.start_s for r in everything)
        out["system_tps"] = system_tps(ok, t0, t1)
        if t1 > t0:
            held = sum(max(0.0, min(r.last_token_s, t1) - max(r.start_s, t0)) for r in ok)
            out["inflight"] = held / (t1 - t0)
    return out


def system_tps(results: Sequence[SimResult], t0: float, t1: float) -> float:
    """Output tokens/s of ``results`` emitted within [t0, t1] (NaN for an empty window): the
    first token at the first-token time, the others evenly until the last token."""
    if t1 <= t0:
        return math.nan
    first = np.array([r.first_token_s for r in results])
    last = np.array([r.last_token_s for r in results])
    n = np.array([r.output_tokens for r in results], dtype=float)
    span = np.maximum(last - first, 1e-12)
    inside = np.clip(np.minimum(last, t1) - np.maximum(first, t0), 0.0, None) / span
    tokens = (n - 1) * np.where(last > first, inside, 0.0) + ((first >= t0) & (first <= t1))
    return float(np.sum(tokens)) / (t1 - t0)


def result_stats(results: Sequence[SimResult]) -> dict[str, float]:
    """p50/p90/p95 and means of TTFT, TPOT and TTLT, the mean per-request speed (output tokens
    / TTLT) and the median longest inter-token gap of simulated results (NaN when there are
    none; ``system_tps`` needs the schedule: ``cell_stats``)."""
    out = dict.fromkeys(STATS, math.nan)
    ok = [r for r in results if r.status == "ok" and r.output_tokens >= 1]
    multi = [r for r in ok if r.output_tokens >= 2]
    if not multi:
        return out
    cols = {
        "ttft": np.array([r.ttft_s for r in ok]),
        "tpot": np.array([r.tpot_s for r in multi]),
        "ttlt": np.array([r.ttlt_s for r in ok]),
    }
    for name, x in cols.items():
        out[f"{name}_p50"], out[f"{name}_p90"], out[f"{name}_p95"] = (
            float(v) for v in np.quantile(x, (0.5, 0.9, 0.95))
        )
        out[f"{name}_mean"] = float(np.mean(x))
    out["speed_mean"] = float(np.mean([r.output_tokens / r.ttlt_s for r in ok if r.ttlt_s > 0]))
    gap = np.array([r.max_gap_s for r in multi])
    gap = gap[np.isfinite(gap)]
    out["gap_p50"] = float(np.median(gap)) if gap.size else math.nan
    return out


# ---------------------------------------------------------------------------------------------
# The fit


@dataclass
class _Problem:
    cells: list[ProbeCell]
    names: tuple[str, ...]
    prior: Floats  # log prior centres of ``names``
    base: ServingModel
    seed: int
    evals: int = 0
    keys: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys = [(i, s) for i, c in enumerate(self.cells) for s in STATS if s in c.observed]
        # A tail (p90, p95) enters as its spread over the cell's p50 (or, without one, its
        # mean), log(tail / centre): far better measured than the tail itself, and it carries
        # how unevenly load falls on requests.
        bases = [_tail_base(self.cells[i], s) for i, s in self.keys]
        self.spread = np.array([b is not None for b in bases])
        self.base_index = np.array(
            [self.keys.index((i, b)) if b is not None else k
             for k, ((i, _), b) in enumerate(zip(self.keys, bases, strict=True))]
        )  # fmt: skip
        self.tpot_index = {i: k for k, (i, s) in enumerate(self.keys) if s == "tpot_p50"}
        self.obs = self._transform(
            np.array([math.log(self.cells[i].observed[s]) for i, s in self.keys])
        )
        # The simulation's own sampling error adds to the measurement's: a simulated statistic
        # over m requests has the variance of a measured one over n, times n / m.
        ratio = [
            c.compared / max(c.simulated_count(), 1) if c.compared else 0.0 for c in self.cells
        ]
        # The model's own approximation error (SE_FLOOR) adds in quadrature.
        self.se = np.array(
            [
                math.sqrt(
                    self.cells[i].se[s] ** 2 * (1.0 + ratio[i])
                    + (SPREAD_FLOOR if sp else SE_FLOOR) ** 2
                )
                for (i, s), sp in zip(self.keys, self.spread, strict=True)
            ]
        )

    def _transform(self, logs: Floats) -> Floats:
        out: Floats = np.where(self.spread, logs - logs[self.base_index], logs)
        return out

    def model(self, x: Floats) -> ServingModel:
        values: dict[str, Any] = {n: float(v) for n, v in zip(self.names, np.exp(x), strict=True)}
        return dataclasses.replace(self.base, **values)

    def predicted(self, x: Floats) -> Floats:
        self.evals += 1
        serving = self.model(x)
        stats = [cell_stats(serving, c, self.seed) for c in self.cells]
        out = np.array([stats[i][s] for i, s in self.keys])
        bad = ~np.isfinite(out) | (out <= 0)
        out[bad] = 1e3  # a coefficient set that produced nothing: a large, finite miss
        return self._with_noise(self._transform(np.log(out)))

    def _with_noise(self, pred: Floats) -> Floats:
        """Add measurement noise to the simulated tail spreads: per metric, the part of the
        measured spread the model cannot produce in any cell, even the lightest (client timing
        jitter, network), added in quadrature; and to the longest gaps, added. A clean probe
        has none."""
        out = pred.copy()
        z = 1.2816  # log(p90 / p50) of a lognormal is z·σ
        for metric in ("ttft", "tpot", "ttlt"):
            idx = [
                k for k, (i, s) in enumerate(self.keys) if self.spread[k]
                and s == f"{metric}_p90" and f"{metric}_p50" in self.cells[i].observed
            ]  # fmt: skip
            if not idx:
                continue
            sim = np.maximum(pred[idx], 0.0) / z
            obs = np.maximum(self.obs[idx], 0.0) / z
            noise2 = max(0.0, float(np.min(obs**2 - sim**2)))
            out[idx] = z * np.sqrt(sim**2 + noise2)
        # A stream the client read late (a busy event loop, the network) shows a gap longer
        # than any step by that delay. Where every step is an ordinary one (no prefill chunk
        # among them) the longest gap is an ordinary step plus the worst delay; where a prefill
        # step stands out, the delay hardly adds to it. So a cell's longest gap is at least its
        # TPOT plus the smallest excess of the measured longest gap over TPOT in any cell: the
        # step jitter and delay no cell of the model explains (close to the jitter's own extreme
        # for a clean probe, where the floor changes nothing).
        pairs = [(k, self.tpot_index[i]) for k, (i, s) in enumerate(self.keys)
                 if s == "gap_p50" and i in self.tpot_index]  # fmt: skip
        if pairs:
            gap_k, tpot_k = (list(t) for t in zip(*pairs, strict=True))
            sim_gap, sim_tpot = np.exp(pred[gap_k]), np.exp(pred[tpot_k])
            excess = max(0.0, float(np.min(np.exp(self.obs[gap_k]) - sim_tpot)))
            out[gap_k] = np.log(np.maximum(sim_gap, sim_tpot + excess))
        return out

    def residuals(self, x: Floats) -> Floats:
        data = (self.predicted(x) - self.obs) / self.se
        prior = (x - self.prior) / PRIOR_SD
        return np.concatenate([data, prior])


def _tail_base(cell: ProbeCell, stat: str) -> str | None:
    """The statistic a tail (``*_p90``, ``*_p95``) is compared against: the cell's p50 of the
    same metric, else its mean; None for a statistic that is no tail or has no centre."""
    metric, _, kind = stat.rpartition("_")
    if kind not in ("p90", "p95"):
        return None
    for centre in CENTRES:
        if f"{metric}_{centre}" in cell.observed:
            return f"{metric}_{centre}"
    return None


def unloaded_times(cell: ProbeCell) -> tuple[float, float]:
    """A cell's typical (TTFT, TPOT) in seconds, from whatever it measured: its p50s or means,
    else TTLT split by its output length (TTFT then taken as 5 % of TTLT), else its per-request
    speed; defaults 0.3 s and 10 ms. Used for starting points and priors, not fitted."""
    ttft, tpot, ttlt = cell.centre("ttft"), cell.centre("tpot"), cell.centre("ttlt")
    if ttlt is None and "speed_mean" in cell.observed:
        ttlt = cell.output_tokens / cell.observed["speed_mean"]
    if ttft is None:
        ttft = 0.05 * ttlt if ttlt is not None else 0.3
    if tpot is None:
        tpot = max(ttlt - ttft, 1e-3) / max(cell.output_tokens - 1, 1) if ttlt else 0.01
    return ttft, tpot


def _closed_form_start(cells: Sequence[ProbeCell]) -> dict[str, float]:
    """Mean-value start: unloaded TPOT ≈ t_w + c_b; unloaded TTFT ≈ α0 + α_in·P + c_f·P."""
    low = min(cells, key=lambda c: (c.level, c.input_tokens))
    ttft_small, tpot = unloaded_times(low)
    t_w = 0.97 * tpot
    c_f = t_w / 1000.0  # the roofline ridge of a large GPU node: ~1,000 tokens per step
    small = [c for c in cells if c.level == low.level]
    big = max(small, key=lambda c: c.input_tokens)
    alpha_in = 1e-7
    if big.input_tokens > low.input_tokens + 100:
        slope = (unloaded_times(big)[0] - ttft_small) / (big.input_tokens - low.input_tokens)
        alpha_in = max(slope - c_f, 1e-7)
    alpha0 = max(ttft_small - alpha_in * low.input_tokens - c_f * low.input_tokens - t_w, 1e-3)
    jitter = 0.05
    if "ttft_p90" in low.observed and "ttft_p50" in low.observed:
        spread = low.observed["ttft_p90"] / low.observed["ttft_p50"] - 1
        jitter = min(max(spread / 1.2816, 0.01), 0.5)
    return {
        "t_w_s": t_w,
        "c_b_s": t_w * 2e-3,
        "c_kv_s": t_w * 1e-6,
        "c_f_s": c_f,
        "alpha0_s": alpha0,
        "alpha_in_s": alpha_in,
        "alpha_jitter_cv": jitter,
    }


def _load_start(
    cells: Sequence[ProbeCell], start: Mapping[str, float], replicas: int
) -> dict[str, float]:
    """The closed-form start with the probe's slowdown under load explained, for ``replicas``:
    TPOT grows by (c_b + c_kv·context)·ΔB from the lightest to the heaviest cell of a prompt,
    with B the requests in flight per replica; half of the growth goes to each term (never
    below the start's first-principles ratios). A start that already slows with load lets the
    coarse pass's few iterations rank replica counts by their fit, not by their distance from
    a start that does not (the coarse pass fits from both starts and keeps the better: a
    slowdown that prefill interference explains, as the longest gaps show, is better fitted
    from the plain start)."""
    out = dict(start)
    slopes: list[tuple[float, float]] = []  # (growth per request per replica, context)
    for size in {c.input_tokens for c in cells}:
        same = sorted((c for c in cells if c.input_tokens == size), key=_load)
        if len(same) < 2 or not _load(same[-1]) > _load(same[0]):
            continue
        light, heavy = unloaded_times(same[0])[1], unloaded_times(same[-1])[1]
        per_replica = (_load(same[-1]) - _load(same[0])) / replicas
        slopes.append(((heavy - light) / per_replica, size + same[0].output_tokens / 2))
    if slopes:
        slope, context = max(slopes)
        if slope > 0:
            out["c_b_s"] = max(start["c_b_s"], slope / 2)
            out["c_kv_s"] = max(start["c_kv_s"], slope / 2 / context)
    return out


def _load(cell: ProbeCell) -> float:
    """Requests in flight in a cell: measured, else the closed loop's level, else the open
    loop's arrival rate × its latency (Little's law)."""
    if math.isfinite(cell.inflight):
        return cell.inflight
    if cell.mode in CLOSED_MODES:
        return float(cell.closed_level)
    span = max(cell.arrivals_s, default=0.0) - min(cell.arrivals_s, default=0.0)
    ttft, tpot = unloaded_times(cell)
    rate = len(cell.arrivals_s) / span if span > 0 else cell.level
    return rate * (ttft + tpot * (cell.output_tokens - 1))


def _priors(start: Mapping[str, float]) -> dict[str, float]:
    """First-principles prior centres, relative to the measured unloaded step time."""
    t_w = start["t_w_s"]
    return {
        "t_w_s": t_w,
        "c_b_s": t_w * 2e-3,  # per-sequence overhead: 4–30 µs against a 7–12 ms weight read
        "c_kv_s": t_w * 1e-6,  # KV read per token: ~7–20 ns against the same weight read
        "c_f_s": t_w / 1000.0,  # compute per token: the roofline ridge ~1,000 tokens/step
        "alpha0_s": start["alpha0_s"],
        "alpha_in_s": max(start["alpha_in_s"], 1e-6),
        "alpha_jitter_cv": start["alpha_jitter_cv"],
    }


@dataclass(frozen=True)
class _Fit:
    replicas: int
    x: Floats
    chi2: float  # the data's part of the objective
    cov: Floats
    names: tuple[str, ...]
    base: ServingModel
    penalty: float = 0.0  # the priors' part

    @property
    def objective(self) -> float:
        """What the fit minimised, data and priors: replica counts are compared on it (a count
        that fits only with implausible coefficients is that much less likely)."""
        return self.chi2 + self.penalty


def _fit_one(
    problem: _Problem, x0: Floats, lo: Floats, hi: Floats, max_nfev: int
) -> tuple[Floats, float, Floats, float]:
    from scipy.optimize import least_squares

    res = least_squares(
        problem.residuals, np.clip(x0, lo + 1e-9, hi - 1e-9), bounds=(lo, hi),
        method="trf", diff_step=0.02, x_scale=1.0, max_nfev=max_nfev, xtol=1e-3, ftol=1e-4,
    )  # fmt: skip
    jac = np.asarray(res.jac, dtype=float)
    chi2 = float(np.sum(res.fun[: len(problem.obs)] ** 2))
    dof = max(len(problem.obs) - len(problem.names), 1)
    scale = max(1.0, chi2 / dof)
    try:
        cov = np.linalg.inv(jac.T @ jac) * scale
    except np.linalg.LinAlgError:
        cov = np.eye(len(x0)) * PRIOR_SD**2
    penalty = float(np.sum(res.fun[len(problem.obs) :] ** 2))
    return np.asarray(res.x, dtype=float), chi2, cov, penalty


def _fit_task(
    cells: list[ProbeCell], names: tuple[str, ...], prior: Floats, base: ServingModel,
    seed: int, x0: Floats, bounds: tuple[Floats, Floats], max_nfev: int,
) -> tuple[_Fit, int, float]:  # fmt: skip
    t0 = time.perf_counter()
    problem = _Problem(cells, names, prior, base, seed)
    x, chi2, cov, penalty = _fit_one(problem, x0, bounds[0], bounds[1], max_nfev)
    fit = _Fit(base.replicas, x, chi2, cov, names, base, penalty)
    return fit, problem.evals, time.perf_counter() - t0


def _short(cell: ProbeCell, compared: int, span_s: float) -> ProbeCell:
    """The cell simulated for about ``compared`` steady-state requests, or ``span_s`` seconds
    of arrivals after the warm-up if that is shorter (but at least 15 requests): simulation
    cost grows with virtual time, and the light levels carry little information per second."""
    if cell.mode not in OPEN_MODES:
        return cell
    after = sorted(t for t in cell.arrivals_s if t >= cell.warm_s)
    until = after[compared] if len(after) > compared else math.inf
    until = min(until, cell.warm_s + span_s)
    if len(after) > 15:
        until = max(until, after[15])
    return dataclasses.replace(cell, sim_until_s=min(cell.sim_until_s, until + 1e-9))


def _run_tasks(
    tasks: list[tuple[Any, ...]], workers: int, say: Callable[[str], None], what: str,
    task: Callable[..., tuple[_Fit, int, float]] | None = None,
) -> tuple[list[_Fit], int]:  # fmt: skip
    fits: list[_Fit] = []
    evals = 0

    def done(fit: _Fit, n: int, secs: float) -> None:
        nonlocal evals
        evals += n
        fits.append(fit)
        limit = f", max_running {fit.base.max_running}" if fit.base.max_running < 4096 else ""
        say(f"{what} replicas {fit.replicas}{limit}: chi2 {fit.chi2:.1f} ({n} simulations, "
            f"{secs:.1f} s)")  # fmt: skip

    if workers > 1 and len(tasks) > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
            futures = [pool.submit(task or _fit_task, *t) for t in tasks]
            for fut in as_completed(futures):
                done(*fut.result())
    else:
        for t in tasks:
            done(*(task or _fit_task)(*t))
    # Ties broken by the configuration, not by which process finished first.
    return sorted(fits, key=lambda f: (f.objective, f.replicas, f.base.max_running)), evals


@dataclass(frozen=True)
class Calibration:
    """What ``fit_probe`` found: the fields of the ``Twin`` that ``calibrate`` builds from it."""

    members: tuple[Member, ...]
    cells: tuple[ProbeCell, ...]
    identification: Identification
    output_tokens: int
    meta: dict[str, Any]
    model_ids: tuple[str, ...]
    ensemble: tuple[ServingModel, ...]
    model_id: str | None


def fit_probe(
    probe: pd.DataFrame | Sequence[ProbeCell],
    *,
    replicas: Sequence[int] | None = None,
    chunk_budget_tokens: int = 4096,
    seed: int = 0,
    max_nfev: int = 8,
    workers: int = 2,
    progress: Callable[[str], None] | None = None,
) -> Calibration:
    """Fit the serving model to a probe (records or ``ProbeCell``s): ``calibrate`` (in
    ``_twin.py``) wraps the result in a ``Twin``.

    ``replicas`` is the grid of replica counts to profile (default 1, 2, 3, 4, 6, 8): a coarse
    pass fits each on a shortened probe, the best few are refined on the whole probe, and every
    count whose fit is not significantly worse than the best (Δχ² < 3.84 after scaling by the
    best fit's χ²/dof) stays in the twin as a member, weighted by exp(−Δ/2) of its objective (the
    data's χ² plus the priors' penalty: a count that fits only with implausible coefficients
    weighs less). ``workers``
    processes share the grid (the twin is the same for any number of them). ``max_nfev``
    bounds the solver's iterations per replica count. The model's own error is measured too
    (``capacity.serving._modelerror``): the fit's misfit beyond the measurement errors and, with
    three or more load levels, the miss at the heaviest level of a refit without it. The probe's
    records name its model (``Twin.model_id``) when they name exactly one.
    """
    t0 = time.perf_counter()
    cells = list(probe) if isinstance(probe, Sequence) else probe_cells(probe)
    model_ids: tuple[str, ...] = ()
    if not isinstance(probe, Sequence) and "model_id" in probe.columns:
        model_ids = tuple(str(m) for m in probe["model_id"].dropna().unique())
    _check_cells(cells)
    say = progress or (lambda _msg: None)
    names = FITTED if any("ttft_p90" in c.observed for c in cells) else FITTED[:-1]
    start = _closed_form_start(cells)
    prior = _priors(start)
    xp = np.log([prior[n] for n in names])
    lo = np.log([1e-12 if n != "alpha_jitter_cv" else 1e-3 for n in names])
    hi = np.log([10.0 if n != "alpha_jitter_cv" else 1.0 for n in names])
    base = ServingModel(
        chunk_budget_tokens=chunk_budget_tokens, max_running=4096,
        step_jitter_cv=0.03, alpha_jitter_cv=start["alpha_jitter_cv"],
        c_a_s=start["t_w_s"] * 7.5e-7,
    )  # fmt: skip
    grid = tuple(replicas) if replicas else REPLICA_GRID
    short = [_short(c, COARSE_REQUESTS, COARSE_SPAN_S) for c in cells]
    # The coarse pass fits every count on shortened cells for a few iterations; where nothing
    # could be shortened (closed loops, published aggregates) it costs what a refinement
    # costs, and a truncated fit would rank counts by how far they got, not by how well they
    # fit: it then runs as long as a refinement.
    nfev = 3 if short != cells else max_nfev
    coarse = [
        (short, names, xp, dataclasses.replace(base, replicas=r), seed,
         [np.log([start[n] for n in names]),
          np.log([_load_start(cells, start, r)[n] for n in names])], (lo, hi), nfev,
         _limit_candidates(cells, r))
        for r in grid
    ]  # fmt: skip
    fits, evals = _run_tasks(coarse, workers, say, "coarse", _coarse_task)
    dof = max(sum(len(c.observed) for c in cells) - len(names), 1)
    reach = 4 * 3.84 * max(1.0, fits[0].chi2 / dof)
    keep = [f for f in fits if f.objective - fits[0].objective <= reach][:REFINED]
    fine_cells = [_short(c, FINE_REQUESTS, FINE_SPAN_S) for c in cells]
    fine = [(fine_cells, names, xp, f.base, seed, f.x, (lo, hi), max_nfev) for f in keep]
    refined, n = _run_tasks(fine, workers, say, "refined")
    evals += n
    best = refined[0].chi2
    scale = max(1.0, best / dof)
    cells = [
        _with_inflight(
            c, _Problem(cells, names, xp, refined[0].base, seed).model(refined[0].x), seed
        )
        for c in cells
    ]
    running_bound = (
        max((c.inflight for c in cells if not math.isnan(c.inflight)), default=0.0)
        / refined[0].replicas
    )
    refined, limit_note, n = _try_running_limits(
        refined, cells, fine_cells, names, xp, seed, (lo, hi), max_nfev, scale, say
    )
    evals += n
    best, best_objective = refined[0].chi2, refined[0].objective
    members: list[Member] = []
    for f in refined:
        delta = (f.objective - best_objective) / scale
        if delta > 3.84:
            continue
        serving = _Problem(cells, names, xp, f.base, seed).model(f.x)
        members.append(
            Member(serving, names, tuple(tuple(float(v) for v in row) for row in f.cov),
                   f.chi2, math.exp(-delta / 2))
        )  # fmt: skip
    # Coarse-pass counts within reach of the best that were not refined are reported too.
    close = sorted(
        {f.replicas for f in fits if (f.objective - best_objective) / scale <= 3.84}
        - {m.serving.replicas for m in members}
    )
    total = sum(m.weight for m in members)
    members = [dataclasses.replace(m, weight=m.weight / total) for m in members]
    ident = _identification(members, xp, cells, close, limit_note)
    ensemble, n = _ensemble(members, fine_cells, names, seed, best, scale, workers, say)
    evals += n
    model_error, n = _model_error(refined[0], cells, fine_cells, names, xp, seed, (lo, hi),
                                  max_nfev, say)  # fmt: skip
    evals += n
    fit_s = time.perf_counter() - t0
    say(f"calibrated in {fit_s:.1f} s ({evals} simulations)")
    return Calibration(
        members=tuple(members),
        cells=tuple(cells),
        identification=ident,
        output_tokens=int(np.median([c.output_tokens for c in cells])),
        meta={
            "fit_seconds": round(fit_s, 2),
            "simulations": evals,
            "chi2_per_dof": best / dof,
            "running_lower_bound": running_bound if limit_note.startswith("only") else None,
            "model_error": model_error.to_dict(),
        },
        model_ids=tuple(dict.fromkeys((*model_ids, DEFAULT_MODEL_ID))) if model_ids else (),
        ensemble=ensemble,
        model_id=model_ids[0] if len(model_ids) == 1 else None,
    )


def _model_error(
    fit: _Fit, cells: Sequence[ProbeCell], fine_cells: list[ProbeCell], names: tuple[str, ...],
    prior: Floats, seed: int, bounds: tuple[Floats, Floats], max_nfev: int,
    say: Callable[[str], None],
) -> tuple[ModelError, int]:  # fmt: skip
    """The serving model's error on this probe (docs/twin.md, "Bands"): the best fit's misfit
    beyond the measurement errors, and the miss at the heaviest level of a refit without it."""
    problem = _Problem(fine_cells, names, prior, fit.base, seed)

    def level_terms(p: _Problem, x: Floats) -> tuple[list[str], Floats, Floats]:
        keep = [k for k in range(len(p.keys)) if not p.spread[k]]
        miss = (p.predicted(x) - p.obs)[keep]
        return [p.keys[k][1] for k in keep], miss, p.se[keep] ** 2 - SE_FLOOR**2

    stats, resid, var = level_terms(problem, fit.x)
    inside = in_probe_sigma(stats, resid.tolist(), var.tolist(), SE_FLOOR)
    levels = sorted({c.level for c in cells})
    if len(levels) < 3:
        basis = (
            "the fit's misfit only: with two load levels none can be left out to measure the "
            "error beyond the probe; a third level measures it"
        )
        return ModelError(inside, {}, basis, SE_FLOOR), problem.evals
    top = levels[-1]
    kept = [c for c in fine_cells if c.level != top]
    held = [c for c in fine_cells if c.level == top]
    nfev = max(3, max_nfev // 2)
    refit, n, _ = _fit_task(kept, names, prior, fit.base, seed, fit.x, bounds, nfev)
    test = _Problem(held, names, prior, fit.base, seed)
    stats, miss, var = level_terms(test, refit.x)

    def peak(subset: Sequence[ProbeCell]) -> float:
        return max((c.inflight for c in subset if math.isfinite(c.inflight)), default=math.nan)

    ratio = peak([c for c in cells if c.level == top]) / peak([c for c in cells if c.level != top])
    beyond, counts = (
        per_log_ratio(stats, miss.tolist(), var.tolist(), ratio) if ratio > 0 else ({}, {})
    )
    from scipy.stats import t as student

    t90 = {fam: float(student.ppf(0.95, n)) for fam, n in counts.items()}
    misses = ", ".join(f"{s} {m:+.1%}" for s, m in zip(stats, np.expm1(miss).tolist(), strict=True))
    say(f"model error: level {top:g} from the rest: {misses}")
    basis = (
        f"the fit's misfit, and a refit without level {top:g} that predicted it at "
        f"{ratio:.1f}× the in-flight count of the rest"
    )
    return ModelError(inside, beyond, basis, SE_FLOOR, t90), problem.evals + n + test.evals


def _with_inflight(cell: ProbeCell, serving: ServingModel, seed: int) -> ProbeCell:
    """The cell with its mean in-flight count (Little's law) simulated when it was not measured."""
    if not math.isnan(cell.inflight):
        return cell
    results = [r for r in simulate_cell(serving, cell, seed) if r.status == "ok"]
    if not results:
        return cell
    span = max(r.last_token_s for r in results) - min(r.start_s for r in results)
    inflight = sum(r.ttlt_s for r in results) / span if span > 0 else math.nan
    return dataclasses.replace(cell, inflight=inflight)


def _try_running_limits(
    refined: list[_Fit], cells: list[ProbeCell], fine_cells: list[ProbeCell],
    names: tuple[str, ...], prior: Floats, seed: int, bounds: tuple[Floats, Floats],
    max_nfev: int, scale: float, say: Callable[[str], None],
) -> tuple[list[_Fit], str, int]:  # fmt: skip
    """A running-sequence limit shows as TTFT queueing once the probe's load exceeds it: try
    limits below the probe's peak per replica; keep one only if it fits significantly better."""
    top = refined[0]
    peak = max((c.inflight for c in cells if not math.isnan(c.inflight)), default=0.0)
    per_replica = peak / top.replicas
    bound = (
        f"only a lower bound: at the probe's peak about {per_replica:.0f} requests per replica "
        "were in flight without TTFT queueing; a lower limit would have shown"
    )
    candidates = _limit_candidates(cells, top.replicas)
    if top.base.max_running < 4096:  # the coarse pass found the limit already
        note = (
            f"pinned near {top.base.max_running} per replica by the probe's TTFT queueing "
            f"(tried {', '.join(map(str, candidates))}; the limit is on a coarse grid)"
        )
        return refined, note, 0
    if not candidates:
        return refined, bound, 0
    (chi2, m), evals = _best_limit(fine_cells, names, prior, top, seed, candidates)
    if chi2 > top.chi2 - 3.84 * scale:
        return refined, bound, evals
    fit, n, secs = _fit_task(fine_cells, names, prior, dataclasses.replace(top.base, max_running=m),
                             seed, top.x, bounds, max_nfev)  # fmt: skip
    evals += n
    say(f"running limit {m} per replica: chi2 {fit.chi2:.1f} ({n} simulations, {secs:.1f} s)")
    if fit.chi2 > top.chi2 - 3.84 * scale:
        return refined, bound, evals
    note = (
        f"pinned near {m} per replica by the probe's TTFT queueing (tried "
        f"{', '.join(map(str, candidates))}; the limit is on a coarse grid)"
    )
    return [fit], note, evals


def _limit_candidates(cells: Sequence[ProbeCell], replicas: int) -> list[int]:
    """Running-sequence limits per replica to try: fractions of the probe's peak in-flight count
    per replica, and the running count the probe's queueing cells imply."""
    peak = max((c.inflight for c in cells if not math.isnan(c.inflight)), default=0.0)
    per_replica = peak / replicas
    # Sequences *running* (decoding) in a cell, by Little's law on the decode phase:
    # completions/s × (TTLT − TTFT). Where TTFT queues, this is the limit times the replicas.
    running = [r for r in map(_running, cells) if r is not None]
    quotas = {max(1, math.ceil(q * per_replica)) for q in (0.3, 0.5, 0.7, 0.9)}
    if running:
        k = max(running) / replicas
        quotas |= {max(1, round(f * k)) for f in (0.8, 1.0, 1.25)}
    if per_replica < 2:
        return []
    return sorted(m for m in quotas if m < per_replica)


def _running(cell: ProbeCell) -> float | None:
    """Sequences decoding in a cell by Little's law, completions/s × decode time (None when the
    cell lacks the endpoint's throughput or a decode time)."""
    tps = cell.observed.get("output_tps", cell.observed.get("system_tps"))
    ttft, tpot, ttlt = cell.centre("ttft"), cell.centre("tpot"), cell.centre("ttlt")
    if tpot is not None:
        decode = tpot * (cell.output_tokens - 1)
    elif ttlt is not None and ttft is not None:
        decode = ttlt - ttft
    else:
        return None
    return None if tps is None else tps / cell.output_tokens * decode


def _best_limit(
    cells: list[ProbeCell], names: tuple[str, ...], prior: Floats, fit: _Fit, seed: int,
    candidates: Sequence[int],
) -> tuple[tuple[float, int], int]:  # fmt: skip
    """(χ², limit) of the best candidate limit at ``fit``'s coefficients, and the simulations."""
    evals = 0
    trials: list[tuple[float, int]] = []
    for m in candidates:
        problem = _Problem(cells, names, prior, dataclasses.replace(fit.base, max_running=m), seed)
        r = problem.residuals(fit.x)[: len(problem.obs)]
        evals += problem.evals
        trials.append((float(np.sum(r**2)), m))
    return min(trials), evals


def _coarse_task(
    cells: list[ProbeCell], names: tuple[str, ...], prior: Floats, base: ServingModel,
    seed: int, starts: Sequence[Floats], bounds: tuple[Floats, Floats], max_nfev: int,
    limits: Sequence[int],
) -> tuple[_Fit, int, float]:  # fmt: skip
    """The coarse fit of one replica count: the better of the fits from each of ``starts`` (the
    few iterations of the coarse pass do not travel far, so one start can leave a count far
    from its optimum); when it fails a goodness-of-fit test (χ² beyond dof + 3·√(2·dof), a
    p-value near 0.002) and a running-sequence limit fits significantly better, the fit with
    that limit: a probe that queued cannot rank replica counts without it."""
    tries = [_fit_task(cells, names, prior, base, seed, x0, bounds, max_nfev) for x0 in starts]
    fit = min((t[0] for t in tries), key=lambda f: f.objective)
    evals, secs = sum(t[1] for t in tries), sum(t[2] for t in tries)
    dof = max(sum(len(c.observed) for c in cells) - len(names), 1)
    if not limits or fit.chi2 <= dof + 3 * math.sqrt(2 * dof):
        return fit, evals, secs
    t0 = time.perf_counter()
    (chi2, m), n = _best_limit(cells, names, prior, fit, seed, limits)
    evals += n
    if chi2 > fit.chi2 - 3.84 * max(1.0, fit.chi2 / dof):
        return fit, evals, secs + time.perf_counter() - t0
    limited, n, more = _fit_task(
        cells, names, prior, dataclasses.replace(base, max_running=m), seed, fit.x, bounds,
        max_nfev,
    )  # fmt: skip
    return limited, evals + n, secs + time.perf_counter() - t0 + more


def draw_coefficients(
    members: Sequence[Member], n: int, seed: int = 0, shrink: float = 1.0
) -> list[ServingModel]:
    """``n`` coefficient sets drawn from the members (by weight) and their log-covariances
    (scaled by ``shrink``²)."""
    rng = np.random.default_rng(seed)
    counts = [round(m.weight * n) for m in members]
    counts[0] += n - sum(counts)
    out: list[ServingModel] = []
    for m, k in zip(members, counts, strict=True):
        cov = np.array(m.log_cov) * shrink**2
        centre = np.log([float(getattr(m.serving, name)) for name in m.names])
        for z in rng.multivariate_normal(np.zeros(len(centre)), cov, size=max(k, 0)):
            values = np.exp(centre + z)
            changes: dict[str, Any] = {n: float(v) for n, v in zip(m.names, values, strict=True)}
            if "alpha_jitter_cv" in changes:
                changes["alpha_jitter_cv"] = min(changes["alpha_jitter_cv"], 1.0)
            out.append(dataclasses.replace(m.serving, **changes))
    return out


def _chi2_task(
    serving: ServingModel, cells: list[ProbeCell], names: tuple[str, ...], seed: int
) -> float:
    problem = _Problem(cells, names, np.zeros(len(names)), serving, seed)
    x = np.log([float(getattr(serving, n)) for n in names])
    return float(np.sum(problem.residuals(x)[: len(problem.obs)] ** 2))


def _ensemble(
    members: Sequence[Member], cells: list[ProbeCell], names: tuple[str, ...], seed: int,
    best: float, scale: float, workers: int, say: Callable[[str], None], draws: int = 16,
) -> tuple[tuple[ServingModel, ...], int]:  # fmt: skip
    """Coefficient draws that still fit the probe: Δχ² within the joint 90 % region.

    The Gauss–Newton covariance is a local, linear picture; the serving model's max() terms make
    it wrong far from the optimum (a draw with a large per-sequence cost would have slowed the
    probe's heaviest level). Each draw is simulated on the probe and kept only if it fits."""
    from scipy.stats import chi2 as chi2_dist

    limit = best + scale * float(chi2_dist.ppf(0.90, len(names)))
    kept: list[ServingModel] = [m.serving for m in members]
    evals = 0
    for attempt, shrink in enumerate((1.0, 0.5)):
        candidates = draw_coefficients(members, draws, seed + 101 * (attempt + 1), shrink)
        args = [(s, cells, names, seed) for s in candidates]
        if workers > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=workers) as pool:
                scores = list(pool.map(_chi2_task, *zip(*args, strict=True)))
        else:
            scores = [_chi2_task(*a) for a in args]
        evals += len(args)
        kept += [s for s, c in zip(candidates, scores, strict=True) if c <= limit]
        say(f"ensemble: {sum(c <= limit for c in scores)} of {draws} draws fit the probe "
            f"(shrink {shrink:g})")  # fmt: skip
        if len(kept) >= 8:
            break
    return tuple(kept), evals


def _check_cells(cells: Sequence[ProbeCell]) -> None:
    if not cells:
        raise CalibrationError("the probe has no cells to calibrate on")
    levels = {c.level for c in cells}
    if len(levels) < 2:
        raise CalibrationError(
            f"the probe has one load level ({next(iter(levels)):g}); a twin needs at least two "
            "to see how the endpoint slows with load: probe e.g. --levels 1,5,10"
        )
    timed = [
        c for c in cells
        if any(c.centre(m) is not None for m in ("tpot", "ttlt")) or "speed_mean" in c.observed
    ]  # fmt: skip
    if len(timed) < len(cells):
        missing = ", ".join(c.label for c in cells if c not in timed)
        raise CalibrationError(
            f"cells {missing} have no per-request time (TPOT/ITL, TTLT/e2e or tokens/s); give "
            "each level its median or mean TTFT and TPOT (or e2e latency)"
        )


def _identification(
    members: Sequence[Member],
    prior: Floats,
    cells: Sequence[ProbeCell],
    close: Sequence[int],
    running_note: str,
) -> Identification:
    best = members[0]
    cov = np.array(best.log_cov)
    intervals: dict[str, tuple[float, float, float]] = {}
    not_identified: dict[str, str] = dict(HELD)
    for i, name in enumerate(best.names):
        value = float(getattr(best.serving, name))
        sd = math.sqrt(max(cov[i, i], 0.0))
        # Across members (replica counts) too: the interval covers every consistent member.
        lows = [value * math.exp(-1.645 * sd)]
        highs = [value * math.exp(1.645 * sd)]
        for m in members[1:]:
            v = float(getattr(m.serving, name))
            s = math.sqrt(max(m.log_cov[i][i], 0.0))
            lows.append(v * math.exp(-1.645 * s))
            highs.append(v * math.exp(1.645 * s))
        low, high = min(lows), max(highs)
        intervals[name] = (low, value, high)
        if sd > 0.6 * PRIOR_SD:
            not_identified[name] = (
                f"the probe barely informs it (90 % interval {low:.3g}–{high:.3g}: mostly the "
                "prior); probe heavier load or a wider prompt range"
            )
        elif high / low > 4:
            not_identified[name] = f"loosely pinned: 90 % interval {low:.3g}–{high:.3g}"
    if running_note.startswith("pinned"):
        limit = float(best.serving.max_running)
        intervals["max_running"] = (limit * 0.7, limit, limit * 1.4)
        not_identified.pop("max_running")
    else:
        not_identified["max_running"] = running_note
    if len({c.input_tokens for c in cells}) < 2:
        not_identified["alpha_in_s"] = (
            "the probe used one prompt size: TTFT's per-input-token term is the prior; "
            "probe two prompt sizes"
        )
    consistent = tuple(sorted({m.serving.replicas for m in members} | set(close)))
    if len(consistent) > 1:
        not_identified["replicas"] = (
            f"replica counts {', '.join(map(str, consistent))} fit the probe equally well; "
            "predictions carry that spread"
        )
    return Identification(intervals, not_identified, consistent)


def records_from_results(
    results: Sequence[SimResult],
    *,
    mode: str,
    level: float,
    label: str,
    offset_s: float = 0.0,
    run_id: str = "simulated",
    model_id: str = DEFAULT_MODEL_ID,
    max_tokens: int | None = None,
) -> pd.DataFrame:
    """Simulated results as (unvalidated) request records: a virtual probe for tests and
    benchmarks. The virtual stream closes at its last token."""
    import pandas as pd

    ok = np.array([r.status == "ok" for r in results], dtype=bool)
    start = np.array([r.start_s for r in results], dtype=float) + offset_s
    first = np.array([r.first_token_s for r in results], dtype=float) + offset_s
    last = np.array([r.last_token_s for r in results], dtype=float) + offset_s
    gap = np.array([r.max_gap_s for r in results], dtype=float)
    return pd.DataFrame(
        {
            "run_id": run_id,
            "provider": "simulated",
            "model_id": model_id,
            "prompt_label": label,
            "mode": mode,
            "level": float(level),
            "batch": [r.batch for r in results],
            "max_tokens": max_tokens or max((r.output_tokens for r in results), default=0),
            "start_s": start,
            "first_token_s": np.where(ok, first, np.nan),
            "last_token_s": np.where(ok, last, np.nan),
            "end_s": np.where(ok, last, start),
            "max_gap_s": np.where(ok, gap, np.nan),
            "input_tokens": [float(r.input_tokens) for r in results],
            "output_tokens": [float(r.output_tokens) if o else np.nan
                              for r, o in zip(results, ok, strict=True)],
            "status": [r.status for r in results],
        }
    )  # fmt: skip

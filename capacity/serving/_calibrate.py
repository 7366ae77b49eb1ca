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
from capacity.serving._client_load import check_client_load
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

    from capacity.serving._twin import Twin

Floats = npt.NDArray[np.float64]

STATS = ("ttft_p50", "ttft_p90", "tpot_p50", "tpot_p90", "ttlt_p50", "ttlt_p90", "gap_p50")
"""Per-cell statistics the fit matches (seconds). ``gap_p50`` is the median over requests of each
one's longest interval between consecutive output chunks (``max_gap_s``): one step that carried
another request's prefill chunk, so it sees prefill interference (c_f) apart from KV reads
(c_kv) even at a light probe, where per-request TPOT averages them over hundreds of steps. A
cell without it (published medians, runs recorded before the column) fits without it."""

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
    ``observed`` maps a statistic of ``STATS`` to seconds; ``se`` to its log-scale standard
    error (bootstrap over batches; the fit adds the simulation's and the model's own errors).
    A cell built from published medians has only the statistics it was given.
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

    def simulated_count(self) -> int:
        """How many requests a simulation of the cell compares (about)."""
        if self.mode in OPEN_MODES:
            return sum(1 for t in self.arrivals_s if self.warm_s <= t < self.sim_until_s)
        level = max(1, round(self.level))
        if self.mode == "concurrency":
            return min(self.n_requests, level + max(150, 3 * level)) - level
        return level * min(self.batches, 1 + math.ceil(150 / level))

    def to_dict(self) -> dict[str, Any]:
        """JSON form, without the arrival list (kept as its count and span)."""
        return {
            "label": self.label,
            "mode": self.mode,
            "level": self.level,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "n_requests": self.n_requests,
            "inflight": None if math.isnan(self.inflight) else self.inflight,
            "observed": dict(self.observed),
        }


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
    reads the validated frame's columns and does not validate it itself.) Raises
    ``ClientOverloadError`` when the client's own stalls distorted a level (``check_client_load``).
    """
    check_client_load(records)
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


def simulate_cell(serving: ServingModel, cell: ProbeCell, seed: int = 0) -> list[SimResult]:
    """The cell's schedule through ``serving`` in virtual time (its compared requests only)."""
    profile = _profile(serving)
    if cell.mode in OPEN_MODES:
        requests = [
            SimRequest(t, cell.input_tokens, cell.output_tokens)
            for t in cell.arrivals_s
            if t < cell.sim_until_s
        ]
        results = simulate(profile, requests, seed=seed)
        return [r for r in results if r.start_s >= cell.warm_s and r.status == "ok"]
    level = max(1, round(cell.level))
    if cell.mode == "concurrency":
        n = min(cell.n_requests, level + max(150, 3 * level))
        results = simulate_closed_loop(
            profile, level, n, input_tokens=cell.input_tokens, max_tokens=cell.output_tokens,
            seed=seed,
        )  # fmt: skip
        results.sort(key=lambda r: r.start_s)
        return results[level:] if len(results) > level + 5 else results
    batches = min(cell.batches, 1 + math.ceil(150 / level))
    return simulate_sequential(
        profile, level, max(batches, 1), input_tokens=cell.input_tokens,
        max_tokens=cell.output_tokens, seed=seed,
    )  # fmt: skip


def result_stats(results: Sequence[SimResult]) -> dict[str, float]:
    """p50/p90 of TTFT, TPOT and TTLT and the median longest inter-token gap of simulated
    results (NaN when there are none)."""
    ok = [r for r in results if r.status == "ok" and r.output_tokens >= 2]
    if not ok:
        return dict.fromkeys(STATS, math.nan)
    cols = {
        "ttft": np.array([r.ttft_s for r in ok]),
        "tpot": np.array([r.tpot_s for r in ok]),
        "ttlt": np.array([r.ttlt_s for r in ok]),
    }
    out: dict[str, float] = {}
    for name, x in cols.items():
        out[f"{name}_p50"], out[f"{name}_p90"] = _quantiles(x)
    gap = np.array([r.max_gap_s for r in ok])
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
        # A p90 enters as its spread over the p50, log(p90 / p50): far better measured than
        # the p90 itself, and it carries how unevenly load falls on requests.
        self.spread = np.array(
            [s.endswith("_p90") and s[:-3] + "p50" in self.cells[i].observed for i, s in self.keys]
        )
        self.base_index = np.array(
            [self.keys.index((i, s[:-3] + "p50")) if sp else k
             for k, ((i, s), sp) in enumerate(zip(self.keys, self.spread, strict=True))]
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
        stats = [result_stats(simulate_cell(serving, c, self.seed)) for c in self.cells]
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
                k for k, (_, s) in enumerate(self.keys) if self.spread[k] and s.startswith(metric)
            ]
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


def _closed_form_start(cells: Sequence[ProbeCell]) -> dict[str, float]:
    """Mean-value start: unloaded TPOT ≈ t_w + c_b; unloaded TTFT ≈ α0 + α_in·P + c_f·P."""
    low = min(cells, key=lambda c: (c.level, c.input_tokens))
    tpot = low.observed.get("tpot_p50", 0.01)
    t_w = 0.97 * tpot
    c_f = t_w / 1000.0  # the roofline ridge of a large GPU node: ~1,000 tokens per step
    small = [c for c in cells if c.level == low.level]
    big = max(small, key=lambda c: c.input_tokens)
    ttft_small = low.observed.get("ttft_p50", 0.3)
    alpha_in = 1e-7
    if big.input_tokens > low.input_tokens + 100 and "ttft_p50" in big.observed:
        slope = (big.observed["ttft_p50"] - ttft_small) / (big.input_tokens - low.input_tokens)
        alpha_in = max(slope - c_f, 1e-7)
    alpha0 = max(ttft_small - alpha_in * low.input_tokens - c_f * low.input_tokens - t_w, 1e-3)
    jitter = 0.05
    if "ttft_p90" in low.observed:
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
    chi2: float
    cov: Floats
    names: tuple[str, ...]
    base: ServingModel


def _fit_one(
    problem: _Problem, x0: Floats, lo: Floats, hi: Floats, max_nfev: int
) -> tuple[Floats, float, Floats]:
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
    return np.asarray(res.x, dtype=float), chi2, cov


def _fit_task(
    cells: list[ProbeCell], names: tuple[str, ...], prior: Floats, base: ServingModel,
    seed: int, x0: Floats, bounds: tuple[Floats, Floats], max_nfev: int,
) -> tuple[_Fit, int, float]:  # fmt: skip
    t0 = time.perf_counter()
    problem = _Problem(cells, names, prior, base, seed)
    x, chi2, cov = _fit_one(problem, x0, bounds[0], bounds[1], max_nfev)
    return _Fit(base.replicas, x, chi2, cov, names, base), problem.evals, time.perf_counter() - t0


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
    return sorted(fits, key=lambda f: f.chi2), evals


def calibrate(
    probe: pd.DataFrame | Sequence[ProbeCell],
    *,
    replicas: Sequence[int] | None = None,
    chunk_budget_tokens: int = 4096,
    seed: int = 0,
    max_nfev: int = 8,
    workers: int = 2,
    progress: Callable[[str], None] | None = None,
) -> Twin:
    """Fit the serving model to a probe (records or ``ProbeCell``s); returns the ``Twin``.

    ``replicas`` is the grid of replica counts to profile (default 1, 2, 3, 4, 6, 8): a coarse
    pass fits each on a shortened probe, the best few are refined on the whole probe, and every
    count whose fit is not significantly worse than the best (Δχ² < 3.84 after scaling by the
    best fit's χ²/dof) stays in the twin as a member, weighted by its likelihood. ``workers``
    processes share the grid. ``max_nfev`` bounds the solver's iterations per replica count.
    """
    from capacity.serving._twin import Twin

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
    x0 = np.log([start[n] for n in names])
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
    coarse = [
        (short, names, xp, dataclasses.replace(base, replicas=r), seed, x0, (lo, hi), 3,
         _limit_candidates(cells, r))
        for r in grid
    ]  # fmt: skip
    fits, evals = _run_tasks(coarse, workers, say, "coarse", _coarse_task)
    best = fits[0].chi2
    dof = max(sum(len(c.observed) for c in cells) - len(names), 1)
    # The two best (or one per worker) are refined, however many workers share the work.
    keep = [f for f in fits if f.chi2 - best <= 4 * 3.84 * max(1.0, best / dof)][: max(2, workers)]
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
    best = refined[0].chi2
    members: list[Member] = []
    for f in refined:
        delta = (f.chi2 - best) / scale
        if delta > 3.84:
            continue
        serving = _Problem(cells, names, xp, f.base, seed).model(f.x)
        members.append(
            Member(serving, names, tuple(tuple(float(v) for v in row) for row in f.cov),
                   f.chi2, math.exp(-delta / 2))
        )  # fmt: skip
    # Coarse-pass counts within reach of the best that were not refined are reported too.
    close = sorted(
        {f.replicas for f in fits if (f.chi2 - best) / scale <= 3.84}
        - {m.serving.replicas for m in members}
    )
    total = sum(m.weight for m in members)
    members = [dataclasses.replace(m, weight=m.weight / total) for m in members]
    ident = _identification(members, xp, cells, close, limit_note)
    ensemble, n = _ensemble(members, fine_cells, names, seed, best, scale, workers, say)
    evals += n
    fit_s = time.perf_counter() - t0
    say(f"calibrated in {fit_s:.1f} s ({evals} simulations)")
    return Twin(
        members=tuple(members),
        cells=tuple(cells),
        identification=ident,
        output_tokens=int(np.median([c.output_tokens for c in cells])),
        meta={
            "fit_seconds": round(fit_s, 2),
            "simulations": evals,
            "chi2_per_dof": best / dof,
            "running_lower_bound": running_bound if limit_note.startswith("only") else None,
        },
        model_ids=tuple(dict.fromkeys((*model_ids, DEFAULT_MODEL_ID))) if model_ids else (),
        ensemble=ensemble,
    )


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
    running = [
        c.observed["output_tps"] / c.output_tokens
        * (c.observed["ttlt_p50"] - c.observed["ttft_p50"])
        for c in cells
        if {"output_tps", "ttlt_p50", "ttft_p50"} <= set(c.observed)
    ]  # fmt: skip
    quotas = {max(1, math.ceil(q * per_replica)) for q in (0.3, 0.5, 0.7, 0.9)}
    if running:
        k = max(running) / replicas
        quotas |= {max(1, round(f * k)) for f in (0.8, 1.0, 1.25)}
    if per_replica < 2:
        return []
    return sorted(m for m in quotas if m < per_replica)


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
    seed: int, x0: Floats, bounds: tuple[Floats, Floats], max_nfev: int,
    limits: Sequence[int],
) -> tuple[_Fit, int, float]:  # fmt: skip
    """The coarse fit of one replica count; when it fails a goodness-of-fit test (χ² beyond
    dof + 3·√(2·dof), a p-value near 0.002) and a running-sequence limit fits significantly
    better, the fit with that limit: a probe that queued cannot rank replica counts without it."""
    fit, evals, secs = _fit_task(cells, names, prior, base, seed, x0, bounds, max_nfev)
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
    if not any("tpot_p50" in c.observed for c in cells) or not any(
        "ttft_p50" in c.observed for c in cells
    ):
        raise CalibrationError("the probe needs median TTFT and TPOT (or tokens/s) per level")


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

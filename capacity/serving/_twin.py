"""The digital twin: a calibrated serving model that predicts far beyond its probe (docs/twin.md).

A ``Twin`` holds one or more fitted members (replica counts the probe could not tell apart),
each with the covariance of its log-coefficients, and the probe it was fitted on. It simulates
any schedule (interval, sequential, closed loop, rate; with or without a quota) in virtual time,
forecasts per-level statistics with intervals from the parameter uncertainty, and is a
``capacity.prediction.Predictor`` for the quota planner. Every answer says when it extrapolates
beyond what the probe measured.

``twin.json`` is versioned (``format: llmcap-twin``) and is also a valid emulator profile: its
top-level keys are a profile's, so ``llmcap emulate --profile twin.json`` serves the twin.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from capacity.errors import ModelFileError
from capacity.prediction import Prediction
from capacity.serving._calibrate import (
    STATS,
    Identification,
    Member,
    ProbeCell,
    cell_stats,
    draw_coefficients,
    fit_probe,
)
from capacity.serving._modelerror import ModelError
from capacity.serving._models import is_profile_id
from capacity.serving._profile import (
    OutputLength,
    Profile,
    QuotaConfig,
    ServingModel,
    spec_for,
)
from capacity.serving._simulate import (
    SimRequest,
    SimResult,
    interval_schedule,
    rate_schedule,
    simulate,
    simulate_closed_loop,
    simulate_sequential,
)

if TYPE_CHECKING:
    import pandas as pd

TWIN_FORMAT = "llmcap-twin"
TWIN_VERSION = 1
MODES = ("interval", "sequential", "concurrency", "rate")
EXTRAPOLATION_RATIO = 1.5
"""A point is extrapolated when its in-flight count (or prompt size) is beyond 1.5× the probe's."""

NEAR_SATURATION = 0.8
"""Prefill utilisation above which a forecast is flagged as near saturation: queueing grows as
ρ / (1 − ρ), so at 0.8 a 25 % error in the prefill cost (the probe pins it loosely) is enough to
tip the level into overload."""

PREDICT_GRID = tuple(sorted({*range(1, 17), *(round(16 * 1.12**k) for k in range(1, 57)), 10_000}))
"""In-flight counts ``Twin.predict`` simulates (then interpolates between)."""

DEFAULT_MODEL_IDS = ("us.meta.llama3-3-70b-instruct-v1:0", "meta.llama3-3-70b-instruct-v1:0")

FORECAST_STATS = (
    "tps_p50",
    "tps_p5",
    "ttft_p50",
    "ttft_p95",
    "ttlt_p50",
    "ttlt_p95",
    "output_tps",
    "inflight",
    "throttled",
)
"""What a forecast reports per level: per-request tokens/s (median, 5th percentile), TTFT and
TTLT (median, p95; s), the endpoint's output tokens/s, mean requests in flight, throttled share."""


@dataclass(frozen=True)
class Forecast:
    """The twin's forecast of one level: each statistic as (low, estimate, high), a 90 % band.

    ``values`` is the band a reader is given; ``model_values`` the same band without the case
    of a batch/KV limit the probe could not see (``cliff``: that case's statistics, present
    only beyond the probe's lower bound on the limit)."""

    mode: str
    level: float
    input_tokens: int
    output_tokens: int
    values: Mapping[str, tuple[float, float, float]]
    extrapolation: float  # predicted in-flight / the probe's largest (≤ 1: inside the probe)
    extrapolated: bool
    notes: tuple[str, ...] = ()
    model_values: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)
    cliff: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``values``: the band; ``model_values``: the same without the saturation
        the probe could not see; ``cliff``: that case's statistics, when it applies)."""

        def band(v: Mapping[str, tuple[float, float, float]]) -> dict[str, dict[str, float]]:
            return {k: {"low": b[0], "estimate": b[1], "high": b[2]} for k, b in v.items()}

        return {
            "mode": self.mode,
            "level": self.level,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "values": band(self.values),
            "model_values": band(self.model_values),
            "cliff": dict(self.cliff),
            "extrapolation": self.extrapolation,
            "extrapolated": self.extrapolated,
            "notes": list(self.notes),
        }


def prefill_utilisation(
    serving: ServingModel, rate: float, input_tokens: int, output_tokens: int, inflight: float
) -> float:
    """Share of each replica's time that prefill needs at ``rate`` requests/s (> 1: overload).

    A replica prefills at most a chunk per step; a step that carries a chunk lasts
    ``c_b·B + max(t_w + c_kv·K, c_f·(B + chunk))`` (B decoding sequences and K KV tokens per
    replica, from the in-flight count), so prefill needs ``rate·P / (replicas·chunk)`` of them
    per second and replica.
    """
    r = max(serving.replicas, 1)
    chunk = max(serving.chunk_budget_tokens, 1)
    b = max(inflight, 0.0) / r if math.isfinite(inflight) else 0.0
    kv = b * (input_tokens + output_tokens / 2)
    step = serving.c_b_s * b + max(
        serving.t_w_s + max(serving.c_a_s * (input_tokens + output_tokens), serving.c_kv_s * kv),
        serving.c_f_s * (b + chunk),
    )
    return rate * input_tokens / (r * chunk) * step


def run_stats(results: Sequence[SimResult]) -> dict[str, float]:
    """Forecast statistics of one simulated level (see ``FORECAST_STATS``)."""
    ok = [r for r in results if r.status == "ok"]
    out = dict.fromkeys(FORECAST_STATS, math.nan)
    if not results:
        return out
    out["throttled"] = 1.0 - len(ok) / len(results)
    if not ok:
        return out
    import numpy as np

    tps = np.array([r.tps for r in ok if r.output_tokens >= 2])
    ttft = np.array([r.ttft_s for r in ok])
    ttlt = np.array([r.ttlt_s for r in ok])
    if tps.size:
        out["tps_p50"] = float(np.median(tps))
        out["tps_p5"] = float(np.quantile(tps, 0.05))
    out["ttft_p50"], out["ttft_p95"] = (float(np.quantile(ttft, q)) for q in (0.5, 0.95))
    out["ttlt_p50"], out["ttlt_p95"] = (float(np.quantile(ttlt, q)) for q in (0.5, 0.95))
    span = max(r.last_token_s for r in ok) - min(r.start_s for r in results)
    if span > 0:
        out["output_tps"] = sum(r.output_tokens for r in ok) / span
        out["inflight"] = float(np.sum(ttlt)) / span
    return out


def _weighted_stats(
    stats: Sequence[Mapping[str, float]],
    weights: Sequence[float],
    keys: Sequence[str] = FORECAST_STATS,
) -> dict[str, float]:
    """Per statistic, the weighted geometric mean of the finite positive values (the weighted
    arithmetic mean for a share that may be zero, the throttled one); NaN when none is."""
    out: dict[str, float] = {}
    for name in keys:
        pairs = [
            (s[name], w) for s, w in zip(stats, weights, strict=True) if math.isfinite(s[name])
        ]
        total = sum(w for _, w in pairs)
        if not pairs or total <= 0:
            out[name] = math.nan
        elif name == "throttled" or any(x <= 0 for x, _ in pairs):
            out[name] = sum(x * w for x, w in pairs) / total
        else:
            out[name] = math.exp(sum(math.log(x) * w for x, w in pairs) / total)
    return out


def _nanmin(a: float, b: float) -> float:
    return a if not math.isfinite(b) else b if not math.isfinite(a) else min(a, b)


def _nanmax(a: float, b: float) -> float:
    return a if not math.isfinite(b) else b if not math.isfinite(a) else max(a, b)


@dataclass(frozen=True)
class Twin:
    """A calibrated serving model with its uncertainty and its probe (``calibrate`` builds one).

    ``model_id`` is the model the probe measured (from its records; None when they named none
    or several): a plan on the twin names it, its scope and its quota code. ``model_ids`` are
    the ids the twin serves as an emulator profile."""

    members: tuple[Member, ...]
    cells: tuple[ProbeCell, ...]
    identification: Identification
    output_tokens: int
    meta: Mapping[str, Any] = field(default_factory=dict)
    ensemble: tuple[ServingModel, ...] = ()
    model_ids: tuple[str, ...] = ()
    model_id: str | None = None
    _cache: dict[tuple[int, int], Prediction] = field(
        default_factory=dict, compare=False, repr=False
    )
    SOURCE: ClassVar[str] = (
        "The latency curve came from a calibrated digital twin (twin.json, `llmcap twin fit`; "
        "docs/twin.md): the step-time serving model with coefficients fitted to a probe, "
        "simulated in closed loop at each in-flight count."
    )

    # -- the model -----------------------------------------------------------------------------

    @property
    def serving(self) -> ServingModel:
        """The best member's coefficients."""
        return self.members[0].serving

    @property
    def scope(self) -> str | None:
        """``cross-region`` for a geo/global inference profile id (``us.``…), ``on-demand`` for
        a plain model id, None without a model id."""
        if self.model_id is None:
            return None
        return "cross-region" if is_profile_id(self.model_id) else "on-demand"

    @property
    def model_error(self) -> ModelError:
        """The serving model's measured error on the probe (``capacity.serving._modelerror``)."""
        return ModelError.from_dict(self.meta.get("model_error"))

    def profile(
        self, serving: ServingModel | None = None, quotas: QuotaConfig | None = None
    ) -> Profile:
        """An emulator profile of the twin (the best member unless ``serving`` is given)."""
        return Profile(
            name="twin",
            description="A digital twin calibrated by `llmcap twin fit` (docs/twin.md).",
            models=tuple(spec_for(m) for m in self.model_ids or DEFAULT_MODEL_IDS),
            prompt_overhead_tokens=0,
            serving=serving or self.serving,
            output=OutputLength(),
            quotas=quotas or QuotaConfig(),
        )

    def samples(self, n: int, seed: int = 0) -> list[ServingModel]:
        """``n`` coefficient sets for prediction bands: the probe-consistent ensemble that
        calibration kept (evenly thinned to ``n``), else draws from the members' covariances."""
        if self.ensemble:
            if n >= len(self.ensemble):
                return list(self.ensemble)
            step = len(self.ensemble) / max(n, 1)
            return [self.ensemble[int(i * step)] for i in range(n)]
        return draw_coefficients(self.members, n, seed)

    def replica_summary(self) -> str:
        """The members' replica counts with their posterior weights, e.g. ``2 (70%), 3 (30%)``."""
        return ", ".join(f"{m.serving.replicas} ({m.weight:.0%})" for m in self.members)

    def describe(self) -> tuple[str, ...]:
        """What the twin knows, one line each: its probe, replicas, coefficients (90 %
        intervals) and what the probe could not pin down (``twin fit`` prints the same)."""
        ident = self.identification
        lo, hi = self.probe_prompts
        lines = [
            f"probe: {len(self.cells)} levels, {sum(c.n_requests for c in self.cells):,} "
            f"requests, prompts of {lo:,}–{hi:,} input tokens, {self.output_tokens} output "
            f"tokens, up to {self.probe_inflight:.1f} requests in flight",
            f"replicas: {self.replica_summary()} (members, by posterior weight); counts "
            f"consistent with the probe: {', '.join(map(str, ident.replicas_consistent))}",
        ]
        for name, (low, est, high) in ident.intervals.items():
            why = ident.not_identified.get(name)
            lines.append(
                f"{name} = {est:.4g} (90 % interval {low:.4g}–{high:.4g})"
                + (f": {why}" if why else "")
            )
        lines += [
            f"{name}: {why}"
            for name, why in ident.not_identified.items()
            if name not in ident.intervals
        ]
        bound = self.running_lower_bound
        if bound is not None:
            shown = bound * self.serving.replicas
            lines.append(
                f"capacity limit: not seen: the probe held {shown:.0f} requests in flight "
                "without queueing, so the endpoint saturates somewhere above that; forecasts "
                f"beyond {shown:.0f} in flight carry that case in their band and say so"
            )
        elif "max_running" in ident.intervals:
            limit = ident.intervals["max_running"][1] * self.serving.replicas
            lines.append(
                f"capacity limit: seen: about {limit:.0f} requests run at once (queueing beyond)"
            )
        lines.append(self.model_error.describe())
        return (*self._origin(), *lines)

    def _origin(self) -> tuple[str, ...]:
        """Where the twin's probe came from: the model (and its quota scope) or the published
        sweep it was calibrated on."""
        out = []
        source = self.meta.get("source")
        if isinstance(source, Mapping):
            out.append(
                f"calibrated on published aggregates: {source.get('sweep')} ({source.get('model')}"
                f"; {source.get('serving')}; {source.get('url')}), levels ≤ "
                f"{float(source.get('max_level', math.nan)):g}"
            )
        if self.model_id is not None:
            out.append(f"model: {self.model_id} ({self.scope} quotas)")
        return tuple(out)

    # -- simulation ----------------------------------------------------------------------------

    def simulate(
        self,
        schedule: Iterable[SimRequest],
        *,
        quotas: QuotaConfig | None = None,
        seed: int = 0,
        serving: ServingModel | None = None,
    ) -> list[SimResult]:
        """Open-loop arrivals through the twin (and ``quotas``, Bedrock's rules) in virtual time.

        ``SimRequest.input_tokens`` is the server-side prompt count (the twin adds no overhead).
        """
        return simulate(self.profile(serving, quotas), schedule, seed=seed)

    def run(
        self,
        mode: str,
        level: float,
        input_tokens: int,
        output_tokens: int | None = None,
        *,
        batches: int = 60,
        interval_s: float = 1.0,
        duration_s: float = 60.0,
        n_requests: int | None = None,
        quotas: QuotaConfig | None = None,
        seed: int = 0,
        serving: ServingModel | None = None,
    ) -> list[SimResult]:
        """One level of a sweep in ``mode`` (as ``llmcap bench`` would drive it), simulated."""
        out = output_tokens or self.output_tokens
        lvl = max(1, round(level))
        if mode == "interval":
            schedule = interval_schedule(
                lvl, batches, interval_s, input_tokens=input_tokens, max_tokens=out
            )
            return self.simulate(schedule, quotas=quotas, seed=seed, serving=serving)
        if mode == "rate":
            schedule = rate_schedule(
                level, duration_s, input_tokens=input_tokens, max_tokens=out, seed=seed
            )
            return self.simulate(schedule, quotas=quotas, seed=seed, serving=serving)
        profile = self.profile(serving, quotas)
        if mode == "concurrency":
            n = n_requests or max(200, 6 * lvl)
            return simulate_closed_loop(
                profile, lvl, n, input_tokens=input_tokens, max_tokens=out, seed=seed
            )
        if mode == "sequential":
            return simulate_sequential(
                profile, lvl, batches, input_tokens=input_tokens, max_tokens=out, seed=seed
            )
        raise ValueError(f"mode {mode!r}: choose one of {', '.join(MODES)}")

    # -- forecasts -----------------------------------------------------------------------------

    @property
    def probe_inflight(self) -> float:
        """The largest mean in-flight count the probe measured (or simulated for its cells)."""
        known = [c.inflight for c in self.cells if not math.isnan(c.inflight)]
        if known:
            return max(known)
        return float(self.meta.get("probe_inflight", max(c.level for c in self.cells)))

    @property
    def probe_prompts(self) -> tuple[int, int]:
        """Smallest and largest prompt (input tokens) of the probe."""
        sizes = [c.input_tokens for c in self.cells]
        return min(sizes), max(sizes)

    def extrapolation_notes(self, inflight: float, input_tokens: float) -> tuple[float, list[str]]:
        """How far beyond the probe a point is (in-flight ratio) and what to say about it."""
        ratio = inflight / self.probe_inflight if self.probe_inflight > 0 else math.inf
        notes: list[str] = []
        if ratio > EXTRAPOLATION_RATIO:
            notes.append(
                f"extrapolated: {inflight:.0f} requests in flight is {ratio:.1f}× the most the "
                f"probe measured ({self.probe_inflight:.0f}); the serving model carries it, "
                "the probe does not"
            )
        lo, hi = self.probe_prompts
        if input_tokens > hi * EXTRAPOLATION_RATIO or input_tokens < lo / EXTRAPOLATION_RATIO:
            notes.append(
                f"extrapolated: prompts of {input_tokens:.0f} tokens are outside the probe's "
                f"{lo}–{hi}"
            )
        if self.beyond_limit(inflight):
            notes.append(self._unseen_limit_note(inflight))
        for name, why in self.identification.not_identified.items():
            if name in ("replicas", "c_f_s", "c_kv_s", "c_b_s"):
                notes.append(f"{name}: {why}")
        return ratio, notes

    def forecast(
        self,
        mode: str,
        level: float,
        input_tokens: int,
        output_tokens: int | None = None,
        *,
        samples: int = 10,
        batches: int = 60,
        duration_s: float = 60.0,
        quotas: QuotaConfig | None = None,
        seed: int = 0,
    ) -> Forecast:
        """Per-level statistics (``FORECAST_STATS``) with 90 % bands.

        The estimate averages the members (replica counts the probe cannot tell apart) by their
        likelihood weights, geometrically (the fit's errors are on a log scale); the band spans
        the probe-consistent ensemble and the members, widened by the model's measured error
        (``Twin.model_error``), and, beyond a running limit the probe could not see, by the
        endpoint saturating at the probe's load (see ``forecast_cell``)."""
        kw: dict[str, Any] = {"batches": batches, "duration_s": duration_s, "quotas": quotas,
                              "seed": seed}  # fmt: skip
        out = output_tokens or self.output_tokens

        def stats_of(serving: ServingModel) -> dict[str, float]:
            results = self.run(mode, level, input_tokens, out, serving=serving, **kw)
            if mode == "concurrency":  # the ramp (every request sent at once) is no steady state
                results = sorted(results, key=lambda r: r.start_s)[max(1, round(level)) :]
            return run_stats(results)

        return self._forecast(stats_of, FORECAST_STATS, mode, level, input_tokens, out,
                              samples, seed)  # fmt: skip

    def forecast_cell(self, cell: ProbeCell, *, samples: int = 10, seed: int = 0) -> Forecast:
        """A forecast of ``cell``'s statistics (``observed``'s keys, e.g. a published level's
        means and system throughput) on the cell's own schedule and lengths: the same simulation
        and statistics calibration compares, so a held-out level is predicted like for like.
        Also gives ``inflight`` and ``output_tps`` (the system throughput)."""
        keys = tuple(dict.fromkeys((*(k for k in cell.observed if k in STATS), "inflight",
                                    "output_tps")))  # fmt: skip

        def stats_of(serving: ServingModel) -> dict[str, float]:
            got = cell_stats(serving, cell, seed)
            got["output_tps"] = got["system_tps"]
            return got

        return self._forecast(stats_of, keys, cell.mode, cell.level, cell.input_tokens,
                              cell.output_tokens, samples, seed)  # fmt: skip

    def _forecast(
        self, stats_of: Callable[[ServingModel], dict[str, float]], keys: Sequence[str],
        mode: str, level: float, input_tokens: int, output_tokens: int, samples: int, seed: int,
    ) -> Forecast:  # fmt: skip
        """The estimate, bands and notes of one level from ``stats_of`` a coefficient set."""
        import numpy as np

        per_member = [stats_of(m.serving) for m in self.members]
        centre = _weighted_stats(per_member, [m.weight for m in self.members], keys)
        sets = self.samples(samples, seed)
        draws = [stats_of(s) for s in sets]
        ratio, notes = self.extrapolation_notes(centre["inflight"], input_tokens)
        error = self.model_error
        model_values: dict[str, tuple[float, float, float]] = {}
        for name in keys:
            xs = np.array([d[name] for d in [*draws, *per_member]] + [centre[name]])
            xs = xs[np.isfinite(xs)]
            if not xs.size:
                model_values[name] = (math.nan, math.nan, math.nan)
                continue
            low, high = (float(np.quantile(xs, q)) for q in (0.05, 0.95))
            band = (min(low, centre[name]), centre[name], max(high, centre[name]))
            model_values[name] = error.widen(name, ratio, band)
        cliff = self._cliff(stats_of, centre["inflight"])
        values = dict(model_values)
        if cliff:
            values = {k: (_nanmin(lo, cliff[k]), est, _nanmax(hi, cliff[k]))
                      for k, (lo, est, hi) in model_values.items()}  # fmt: skip
            notes = [n for n in notes if not n.startswith("unverified:")]
            notes.append(self._unseen_limit_note(centre["inflight"], cliff.get("output_tps")))
        notes += self._saturation_notes(
            mode, level, input_tokens, output_tokens,
            [*(m.serving for m in self.members), *sets], [*per_member, *draws],
        )  # fmt: skip
        return Forecast(
            mode, float(level), int(input_tokens), int(output_tokens), values, ratio,
            any(n.startswith("extrapolated") for n in notes), tuple(notes),
            model_values=model_values, cliff=cliff,
        )  # fmt: skip

    # -- the capacity limit the probe could not see --------------------------------------------

    @property
    def running_lower_bound(self) -> float | None:
        """Requests per replica the probe held in flight without queueing, when its
        running-sequence limit was not identified (None when it was, or is unknown)."""
        if "max_running" not in self.identification.not_identified:
            return None
        bound = self.meta.get("running_lower_bound")
        return None if bound is None else float(bound)

    def beyond_limit(self, inflight: float) -> bool:
        """Whether ``inflight`` needs more requests per replica than the probe showed run
        without queueing (so a batch/KV limit the probe could not see may cap it)."""
        bound = self.running_lower_bound
        return bound is not None and inflight / self.serving.replicas > bound * 1.05

    def _cliff(
        self, stats_of: Callable[[ServingModel], dict[str, float]], inflight: float
    ) -> dict[str, float]:
        """The worst case consistent with the probe beyond its lower bound: the best member with
        its running limit at the bound (empty when the point is within it)."""
        bound = self.running_lower_bound
        if bound is None or not math.isfinite(inflight) or not self.beyond_limit(inflight):
            return {}
        limited = dataclasses.replace(self.serving, max_running=max(1, math.floor(bound)))
        return stats_of(limited)

    def _unseen_limit_note(self, inflight: float, capped_tps: float | None = None) -> str:
        """What a point beyond the probe's lower bound on the running limit must say."""
        shown = (self.running_lower_bound or 0.0) * self.serving.replicas
        at = ""
        if capped_tps is not None and capped_tps > 0:
            at = (
                f" (at the probe's {shown:.0f}: {capped_tps:,.0f} output tokens/s; the band "
                "includes that case)"
            )
        return (
            f"unverified: the probe cannot see where this endpoint saturates: it held "
            f"{shown:.0f} requests in flight without queueing, and {inflight:.0f} would need "
            f"more; a batch/KV limit in between would cap throughput and queue TTFT{at}: "
            f"measure at {inflight:.0f} in flight or accept the risk"
        )

    def _saturation_notes(
        self, mode: str, level: float, input_tokens: int, output_tokens: int,
        sets: Sequence[ServingModel], stats: Sequence[Mapping[str, float]],
    ) -> list[str]:  # fmt: skip
        """A note when the level is near saturation for any probe-consistent coefficient set.

        Near the knee a small change in the prefill cost flips a level from stable to overloaded
        (TTFT explodes), and a probe at low utilisation pins that cost only loosely: the
        forecast's own estimate is then not to be trusted, whatever its band says."""
        rhos = []
        for serving, st in zip(sets, stats, strict=True):
            delivered = st["output_tps"] / max(output_tokens, 1)
            limited = st["inflight"] > serving.replicas * serving.max_running
            # Open modes offer `level` requests/s (interval: a batch every second, ``run``'s
            # default); a closed loop, or a queue at the running limit, admits what completes.
            rate = level if mode in ("interval", "rate") and not limited else delivered
            if math.isfinite(rate):
                rhos.append(
                    prefill_utilisation(serving, rate, input_tokens, output_tokens, st["inflight"])
                )
        if not rhos or max(rhos) < NEAR_SATURATION:
            return []
        lo, hi = min(rhos), max(rhos)
        share = sum(r >= 1.0 for r in rhos) / len(rhos)
        return [
            f"near saturation: prefill would take {lo:.0%}–{hi:.0%} of each replica's time "
            f"across coefficient sets that fit the probe ({share:.0%} of them overloaded); "
            "near the knee TTFT can grow without bound and the estimate is unreliable"
        ]

    def predict(self, concurrency: float, input_tokens: float) -> Prediction:
        """Closed loop at ``concurrency`` in flight (``Predictor``): the best member, no band.

        The twin simulates a fixed ladder of in-flight counts (``PREDICT_GRID``: whole numbers
        up to 16, then 12 % steps to 10,000) once per prompt size and interpolates between its
        rungs (linearly in log N), so a planner's hundreds of queries cost a few simulations.
        """
        n = min(max(float(concurrency), 1.0), PREDICT_GRID[-1])
        i = bisect.bisect_left(PREDICT_GRID, n)
        hi_n = PREDICT_GRID[i]
        b = self._predict_whole(hi_n, round(input_tokens))
        if hi_n == n or i == 0:
            return b
        lo_n = PREDICT_GRID[i - 1]
        a = self._predict_whole(lo_n, round(input_tokens))
        w = math.log(n / lo_n) / math.log(hi_n / lo_n)

        def mix(x: float, y: float) -> float:
            return (1 - w) * x + w * y

        return Prediction(
            concurrency=n,
            input_tokens=float(input_tokens),
            tps_p50=mix(a.tps_p50, b.tps_p50),
            tps_p5=mix(a.tps_p5, b.tps_p5),
            system_output_tps=mix(a.system_output_tps, b.system_output_tps),
            ttft_s={q: mix(a.ttft_s[q], b.ttft_s[q]) for q in a.ttft_s},
            ttlt_s={q: mix(a.ttlt_s[q], b.ttlt_s[q]) for q in a.ttlt_s},
            extrapolated=a.extrapolated or b.extrapolated,
            notes=b.notes,
            measured_concurrency_max=b.measured_concurrency_max,
            source=b.source,
        )

    def _predict_whole(self, n: int, input_tokens: int) -> Prediction:
        key = (n, input_tokens)
        if key in self._cache:
            return self._cache[key]
        import numpy as np

        results = self.run("concurrency", n, input_tokens, n_requests=n + max(150, n))
        results.sort(key=lambda r: r.start_s)
        steady = results[n:]
        tps = np.array([r.tps for r in steady if r.output_tokens >= 2])
        ttft = np.array([r.ttft_s for r in steady])
        ttlt = np.array([r.ttlt_s for r in steady])
        qs = (0.5, 0.95, 0.99)
        span = max(r.last_token_s for r in steady) - min(r.start_s for r in steady)
        ratio, notes = self.extrapolation_notes(float(n), input_tokens)
        pred = Prediction(
            concurrency=float(n),
            input_tokens=float(input_tokens),
            tps_p50=float(np.median(tps)),
            tps_p5=float(np.quantile(tps, 0.05)),
            system_output_tps=sum(r.output_tokens for r in steady) / span,
            ttft_s={q: float(np.quantile(ttft, q)) for q in qs},
            ttlt_s={q: float(np.quantile(ttlt, q)) for q in qs},
            extrapolated=ratio > EXTRAPOLATION_RATIO or (len(notes) > 0 and "prompts" in notes[0]),
            notes=(f"digital twin: closed-loop simulation, {self.output_tokens} output tokens",
                   *notes),
            measured_concurrency_max=self.probe_inflight,
            source="the calibrated twin",
        )  # fmt: skip
        self._cache[key] = pred
        return pred

    # -- fit quality ---------------------------------------------------------------------------

    def fit_quality(self, seed: int = 0) -> list[dict[str, Any]]:
        """Per probe cell: measured vs the twin's simulation of the same schedule."""
        rows: list[dict[str, Any]] = []
        for c in self.cells:
            got = cell_stats(self.serving, c, seed)
            row: dict[str, Any] = {
                "cell": c.label,
                "level": c.level,
                "input_tokens": c.input_tokens,
            }
            for s in STATS:
                if s in c.observed:
                    row[s] = {"measured": c.observed[s], "twin": got[s],
                              "error": got[s] / c.observed[s] - 1}  # fmt: skip
            rows.append(row)
        return rows

    # -- files ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON form: an emulator profile plus the twin's own section."""
        profile = self.profile()
        return {
            "format": TWIN_FORMAT,
            "version": TWIN_VERSION,
            "name": profile.name,
            "description": profile.description,
            "models": [{"model_id": m.model_id} for m in profile.models],
            "prompt_overhead_tokens": 0,
            "tokens_per_event": 1,
            "serving": dataclasses.asdict(profile.serving),
            "output": dataclasses.asdict(profile.output),
            "quotas": dataclasses.asdict(profile.quotas),
            "faults": {},
            "twin": {
                "output_tokens": self.output_tokens,
                "members": [m.to_dict() for m in self.members],
                "ensemble": [dataclasses.asdict(s) for s in self.ensemble],
                "identification": self.identification.to_dict(),
                "cells": [c.to_dict() for c in self.cells],
                "meta": dict(self.meta),
                "model_id": self.model_id,
                "scope": self.scope,
            },
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``twin.json``."""
        target = Path(path)
        target.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        return target

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], origin: str = "<dict>") -> Twin:
        """Inverse of ``to_dict``; raises ``ModelFileError`` naming the problem."""
        if raw.get("format") != TWIN_FORMAT:
            raise ModelFileError(f'{origin}: not a twin file (no "format": "{TWIN_FORMAT}")')
        if raw.get("version") != TWIN_VERSION:
            raise ModelFileError(
                f"{origin}: twin format version {raw.get('version')!r}; this llmcap reads "
                f"version {TWIN_VERSION}: refit with `llmcap twin fit`"
            )
        try:
            t = raw["twin"]
            ident = t["identification"]
            cells = tuple(ProbeCell.from_dict(c) for c in t["cells"])
            return cls(
                members=tuple(Member.from_dict(m) for m in t["members"]),
                cells=cells,
                identification=Identification(
                    {
                        k: (float(v[0]), float(v[1]), float(v[2]))
                        for k, v in ident["intervals"].items()
                    },
                    dict(ident["not_identified"]),
                    tuple(int(r) for r in ident["replicas_consistent"]),
                ),
                output_tokens=int(t["output_tokens"]),
                meta=dict(t.get("meta", {})),
                ensemble=tuple(ServingModel(**s) for s in t.get("ensemble", [])),
                model_ids=tuple(m["model_id"] for m in raw.get("models", [])),
                model_id=None if t.get("model_id") is None else str(t["model_id"]),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelFileError(f"{origin}: malformed twin file ({exc!r}); refit it") from exc


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
    """The ``Twin`` of a probe (records or ``ProbeCell``s): ``fit_probe`` fits the serving
    model (replica counts, coefficients, their intervals, the model's own error), the twin
    holds what it found."""
    c = fit_probe(
        probe, replicas=replicas, chunk_budget_tokens=chunk_budget_tokens, seed=seed,
        max_nfev=max_nfev, workers=workers, progress=progress,
    )  # fmt: skip
    return Twin(
        members=c.members, cells=c.cells, identification=c.identification,
        output_tokens=c.output_tokens, meta=c.meta, model_ids=c.model_ids,
        ensemble=c.ensemble, model_id=c.model_id,
    )  # fmt: skip


def is_twin_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a JSON file tagged ``"format": "llmcap-twin"``."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and raw.get("format") == TWIN_FORMAT


def load_twin(path: str | os.PathLike[str]) -> Twin:
    """Read ``twin.json``; raises ``ModelFileError`` naming the file and the fix."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelFileError(f"{p}: cannot read the twin file ({exc.strerror})") from exc
    except ValueError as exc:
        raise ModelFileError(f"{p}: not JSON ({exc}); write it with `llmcap twin fit`") from exc
    if not isinstance(raw, dict):
        raise ModelFileError(f"{p}: a twin file is a JSON object")
    return Twin.from_dict(raw, origin=str(p))

"""The twin and the USL against real engines: fit on a published sweep's light levels, predict
every heavier level, and say how far each model reaches (docs/accuracy.md).

For every sweep of ``data/reference/published_sweeps.csv`` with two or more levels: calibrate a
twin on the levels ≤ 10 (≤ 16 where 10 is not published; no per-sweep tuning), forecast every
heavier level on its own schedule and statistics (``Twin.forecast_cell``), and compare TTFT,
the per-request figure (ITL where published, else the per-request speed where its definition
is consistent, else the mean end-to-end latency) and the endpoint's output tokens/s; band
coverage is counted with and without the case of a capacity limit the probe could not see.
Beside it, the USL ``CapacityModel`` (``capacity.fitting.fit_capacity``) fitted on requests that
reproduce the same light levels' aggregates, predicted at each heavier level's in-flight count
(an advantage the twin does not get in interval mode, where it must predict that count).
``--emulator`` runs the same pipeline on a closed-loop sweep of the built-in emulator's default
profile: the emulator shares the twin's equations, so that row measures the fitting, not the
model.

    python benchmarks/real_accuracy.py                         # every sweep; minutes
    python benchmarks/real_accuracy.py --only nim-l33-70b-2xh100-5000-500 --figures docs/img
    python benchmarks/real_accuracy.py --emulator               # the emulator beside them
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from capacity.errors import FitError
from capacity.fitting import CapacityModel, fit_capacity
from capacity.records import validate_records
from capacity.serving import (
    DEFAULT_PROFILE,
    Forecast,
    ProbeCell,
    PublishedLevel,
    Twin,
    calibrate,
    cell_stats,
    load_profile,
    published_cells,
    read_published,
)

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "data" / "reference" / "published_sweeps.csv"
WINDOW = (2.5, 5.0)
"""Held-out levels at 2.5–5× the probe's heaviest level are the acceptance window."""
GOALS = {"system": 0.10, "per-request": 0.10, "ttft": 0.20}


@dataclass(frozen=True)
class Point:
    """One held-out statistic: measured, the twin's estimate and bands, the USL's estimate."""

    sweep: str
    level: float
    prompt: int
    ratio: float  # held-out level / the heaviest fitted level
    metric: str  # ttft, per-request, system
    stat: str
    measured: float
    twin: float
    band: tuple[float, float]  # model + coefficient error
    full_band: tuple[float, float]  # with the unseen capacity limit
    warned: bool  # the forecast said it cannot see saturation
    usl: float

    @property
    def error(self) -> float:
        return self.twin / self.measured - 1

    @property
    def usl_error(self) -> float:
        return self.usl / self.measured - 1

    @property
    def inside(self) -> bool:
        return self.band[0] <= self.measured <= self.band[1]

    @property
    def inside_full(self) -> bool:
        return self.full_band[0] <= self.measured <= self.full_band[1]


def fit_limit(levels: Sequence[float]) -> float:
    """The probe: levels ≤ 10, or ≤ 16 where 10 is not published."""
    return 10.0 if 10.0 in levels else 16.0


def per_request_stat(cell: ProbeCell) -> str | None:
    """The per-request figure compared: ITL, else the speed, else the end-to-end latency."""
    for stat in ("tpot_mean", "tpot_p50", "speed_mean", "ttlt_mean", "ttlt_p50"):
        if stat in cell.observed:
            return stat
    return None


def compared_stats(cell: ProbeCell) -> dict[str, str]:
    """metric → the cell's statistic for it."""
    out = {}
    ttft = next((s for s in ("ttft_mean", "ttft_p50") if s in cell.observed), None)
    if ttft:
        out["ttft"] = ttft
    per = per_request_stat(cell)
    if per:
        out["per-request"] = per
    if "system_tps" in cell.observed:
        out["system"] = "system_tps"
    return out


# -- the USL beside the twin ------------------------------------------------------------------


def usl_records(cells: Sequence[ProbeCell]) -> pd.DataFrame:
    """Requests that reproduce each cell's aggregates: every request of a level has its TTFT and
    TPOT (a TTFT the source does not give is taken as 5 % of the latency), sent as the level
    was (a closed loop keeping its in-flight count, or the interval batches)."""
    frames = []
    for cell in cells:
        ttft = next((cell.observed[s] for s in ("ttft_mean", "ttft_p50") if s in cell.observed),
                    None)  # fmt: skip
        tpot = next((cell.observed[s] for s in ("tpot_mean", "tpot_p50") if s in cell.observed),
                    None)  # fmt: skip
        e2e = next((cell.observed[s] for s in ("ttlt_mean", "ttlt_p50") if s in cell.observed),
                   None)  # fmt: skip
        if e2e is None and "speed_mean" in cell.observed:
            e2e = cell.output_tokens / cell.observed["speed_mean"]
        if ttft is None:
            ttft = 0.05 * (e2e if e2e is not None else 1.0)
        if e2e is None:
            e2e = ttft + (cell.output_tokens - 1) * (tpot or 0.01)
        if cell.mode == "interval":
            start = np.array(cell.arrivals_s)
        else:
            lanes, per_lane = cell.closed_level, 20
            start = np.array([k * e2e + lane * e2e / lanes for lane in range(lanes)
                              for k in range(per_lane)])  # fmt: skip
        n = len(start)
        frames.append(
            pd.DataFrame(
                {
                    "run_id": "published",
                    "provider": "published",
                    "model_id": "published",
                    "prompt_label": str(cell.input_tokens),
                    "mode": cell.mode,
                    "level": float(cell.level),
                    "batch": np.arange(n),
                    "max_tokens": cell.output_tokens,
                    "start_s": start,
                    "first_token_s": start + ttft,
                    "last_token_s": start + e2e,
                    "end_s": start + e2e,
                    "input_tokens": float(cell.input_tokens),
                    "output_tokens": float(cell.output_tokens),
                    "status": "ok",
                }
            )
        )
    return validate_records(pd.concat(frames, ignore_index=True), source="published aggregates")


def usl_value(model: CapacityModel | None, cell: ProbeCell, stat: str, inflight: float) -> float:
    """The USL model's figure for ``stat`` at ``inflight`` (NaN without a model)."""
    if model is None or not math.isfinite(inflight):
        return math.nan
    p = model.predict(inflight, cell.input_tokens)
    if stat.startswith("ttft"):
        return p.ttft_s[0.5]
    if stat.startswith("tpot"):
        return 1.0 / p.tps_p50
    if stat == "speed_mean":
        return cell.output_tokens / p.ttlt_s[0.5]
    if stat.startswith("ttlt"):
        return p.ttlt_s[0.5]
    return p.system_output_tps


# -- one sweep ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    """A sweep's twin, its forecasts of every level and the held-out points."""

    name: str
    twin: Twin
    fitted: float
    cells: list[ProbeCell]
    forecasts: list[Forecast]
    points: list[Point]
    usl_note: str
    usl: CapacityModel | None


def run_sweep(name: str, cells: list[ProbeCell], samples: int, workers: int) -> SweepResult:
    """Fit on the light levels, forecast every level, collect the held-out points."""
    limit = fit_limit(sorted({c.level for c in cells}))
    light = [c for c in cells if c.level <= limit]
    heaviest = max(c.level for c in light)
    twin = calibrate(light, workers=workers)
    try:
        usl: CapacityModel | None = fit_capacity(usl_records(light), n_boot=20)
        usl_note = "fitted"
    except FitError as exc:
        usl, usl_note = None, f"not fitted: {exc}"
    forecasts = [twin.forecast_cell(c, samples=samples) for c in cells]
    points = []
    for cell, fc in zip(cells, forecasts, strict=True):
        if cell.level <= limit:
            continue
        inflight = cell.inflight if math.isfinite(cell.inflight) else fc.values["inflight"][1]
        warned = any("cannot see where this endpoint saturates" in n for n in fc.notes)
        for metric, stat in compared_stats(cell).items():
            lo, est, hi = fc.model_values[stat]
            flo, _, fhi = fc.values[stat]
            points.append(
                Point(name, cell.level, cell.input_tokens, cell.level / heaviest, metric, stat,
                      cell.observed[stat], est, (lo, hi), (flo, fhi), warned,
                      usl_value(usl, cell, stat, inflight))
            )  # fmt: skip
    return SweepResult(name, twin, limit, cells, forecasts, points, usl_note, usl)


def print_sweep(res: SweepResult) -> None:
    """The held-out table of one sweep."""
    t = res.twin
    print(f"\n== {res.name}: fit on levels ≤ {res.fitted:g} ({t.meta['fit_seconds']} s; "
          f"replicas {t.replica_summary()}); USL {res.usl_note}")  # fmt: skip
    for line in t.describe():
        if line.startswith(("capacity limit", "model error", "replicas")):
            print(f"   {line}")
    print(f"   {'level':>6}{'prompt':>7}{'x':>6}  {'metric':<12}{'stat':<11}{'measured':>10}"
          f"{'twin':>10}{'err':>7}  {'90 % band':<21}{'in':>4}{'+cliff':>7}{'USL':>10}"
          f"{'err':>7}")  # fmt: skip
    for p in res.points:
        usl = "-" if math.isnan(p.usl) else f"{p.usl:.4g}"
        usl_err = "" if math.isnan(p.usl) else f"{p.usl_error:+.0%}"
        band = f"[{p.band[0]:.3g}, {p.band[1]:.3g}]"
        print(f"   {p.level:>6g}{p.prompt:>7}{p.ratio:>5.1f}×  {p.metric:<12}{p.stat:<11}"
              f"{p.measured:>10.4g}{p.twin:>10.4g}{p.error:>+7.0%}  {band:<21}"
              f"{'in' if p.inside else 'OUT':>4}{'in' if p.inside_full else 'OUT':>7}"
              f"{usl:>10}{usl_err:>7}{'  (warns)' if p.warned else ''}")  # fmt: skip


def summarize(points: Sequence[Point]) -> None:
    """The acceptance figures over every sweep's held-out points."""
    print("\n== Summary over the published sweeps")
    lo, hi = WINDOW
    window = [p for p in points if lo <= p.ratio <= hi]
    print(f"   at {lo:g}–{hi:g}× the probe's heaviest level ({len(window)} points):")
    for metric, goal in GOALS.items():
        errs = [abs(p.error) for p in window if p.metric == metric]
        usl = [abs(p.usl_error) for p in window if p.metric == metric and math.isfinite(p.usl)]
        if not errs:
            continue
        med = statistics.median(errs)
        verdict = "met" if med <= goal else "NOT met"
        usl_text = f"; USL {statistics.median(usl):.1%} ({len(usl)} points)" if usl else ""
        print(f"     {metric:<12} median |error| {med:.1%} over {len(errs)} points "
              f"(goal ≤ {goal:.0%}: {verdict}){usl_text}")  # fmt: skip
    for name, subset in (("2.5–5×", window), ("every held-out level", list(points))):
        if subset:
            inside = sum(p.inside for p in subset) / len(subset)
            full = sum(p.inside_full for p in subset) / len(subset)
            print(f"   90 % band coverage, {name}: {inside:.0%} of {len(subset)} (model band), "
                  f"{full:.0%} with the unseen capacity limit (goal ≥ 80 %)")  # fmt: skip
    wrong = [p for p in points if not p.inside_full and not p.warned]
    print(f"   confident wrong answers (truth outside the band, no saturation warning): "
          f"{len(wrong)} of {len(points)}")  # fmt: skip
    for p in wrong:
        print(f"     {p.sweep} level {p.level:g} {p.stat}: {p.error:+.0%}")


# -- the figure -----------------------------------------------------------------------------


def figure(res: SweepResult, folder: Path) -> Path:
    """Measured points, fit points, the twin's forecast with its bands and the USL."""
    from matplotlib.figure import Figure

    from capacity.figures import save_figure

    metrics = [m for m in ("ttft", "per-request", "system")
               if any(m in compared_stats(c) for c in res.cells)]  # fmt: skip
    fig = Figure(figsize=(4.2 * len(metrics), 3.6), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    prompts = sorted({c.input_tokens for c in res.cells})
    colours = ("#1f77b4", "#d62728", "#2ca02c")
    for ax, metric in zip(axes, metrics, strict=True):
        for k, size in enumerate(prompts):
            pairs = [(c, f) for c, f in zip(res.cells, res.forecasts, strict=True)
                     if c.input_tokens == size and metric in compared_stats(c)]  # fmt: skip
            stat = compared_stats(pairs[0][0])[metric]
            x = np.array([c.level for c, _ in pairs])
            y = np.array([c.observed[stat] for c, _ in pairs])
            est = np.array([f.model_values[stat][1] for _, f in pairs])
            band = np.array([f.model_values[stat][::2] for _, f in pairs])
            full = np.array([f.values[stat][::2] for _, f in pairs])
            col = colours[k % len(colours)]
            tag = f" ({size} in)" if len(prompts) > 1 else ""
            ax.fill_between(x, full[:, 0], full[:, 1], color=col, alpha=0.08,
                            label="band with the unseen limit" if k == 0 else None)  # fmt: skip
            ax.fill_between(x, band[:, 0], band[:, 1], color=col, alpha=0.25,
                            label="twin 90 % band" if k == 0 else None)  # fmt: skip
            ax.plot(x, est, "-", color=col, label=f"twin{tag}")
            fit = x <= res.fitted
            ax.plot(x[fit], y[fit], "o", color=col, label=f"fitted{tag}")
            ax.plot(x[~fit], y[~fit], "s", mfc="none", color="black",
                    label="held out" if k == 0 else None)  # fmt: skip
            if res.usl is not None:
                usl = [usl_value(res.usl, c, stat, c.inflight if math.isfinite(c.inflight)
                                 else f.values["inflight"][1]) for c, f in pairs]  # fmt: skip
                ax.plot(x, usl, "--", color="grey", label="USL" if k == 0 else None)
        ax.axvline(max(c.level for c in res.cells if c.level <= res.fitted), color="grey",
                   lw=0.8, ls=":")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("level (requests in flight; interval: batch per second)")
        ax.set_title({"ttft": "TTFT (s)", "per-request": stat_title(res.cells),
                      "system": "endpoint output tokens/s"}[metric], fontsize=10)  # fmt: skip
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7, loc="best")
    fitted = ", ".join(f"{lv:g}" for lv in sorted({c.level for c in res.cells
                                                    if c.level <= res.fitted}))  # fmt: skip
    fig.suptitle(f"{res.name}: fitted on levels {fitted}, the rest held out", fontsize=11)
    return save_figure(fig, folder / f"accuracy_{res.name}.png")


def stat_title(cells: Sequence[ProbeCell]) -> str:
    stat = per_request_stat(cells[0]) or ""
    return {"tpot_mean": "mean ITL (s)", "tpot_p50": "median TPOT (s)",
            "speed_mean": "mean output tokens / e2e (tokens/s)",
            "ttlt_mean": "mean end-to-end latency (s)"}.get(stat, stat)  # fmt: skip


# -- the emulator, through the same pipeline ------------------------------------------------


def emulator_cells(seed: int = 3) -> list[ProbeCell]:
    """A closed-loop sweep of the default emulator profile as published-style cells: mean TTFT,
    ITL, end-to-end latency and the endpoint's output tokens/s per level (1,024 input and 256
    output tokens)."""
    profile = load_profile(DEFAULT_PROFILE)
    cells = []
    for level in (1, 2, 4, 8, 16, 32, 64, 128):
        base = ProbeCell(label=f"emulator:concurrency:{level}:1024", mode="concurrency",
                         level=float(level), input_tokens=1024, output_tokens=256,
                         n_requests=level + max(200, 4 * level), observed={}, se={},
                         inflight=float(level))  # fmt: skip
        got = cell_stats(profile.serving, base, seed)
        observed = {k: got[k] for k in ("ttft_mean", "tpot_mean", "ttlt_mean", "system_tps")}
        cells.append(replace(base, observed=observed, se=dict.fromkeys(observed, 0.03)))
    return cells


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="one sweep id")
    parser.add_argument("--figures", type=Path, help="write one figure per sweep here")
    parser.add_argument("--samples", type=int, default=8, help="coefficient draws per forecast")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--emulator", action="store_true", help="also the emulator's sweep")
    args = parser.parse_args()
    t0 = time.perf_counter()
    rows: dict[str, list[PublishedLevel]] = {}
    for r in read_published(TABLE):
        rows.setdefault(r.sweep, []).append(r)
    points: list[Point] = []
    for name, part in rows.items():
        if args.only and name != args.only:
            continue
        if len({r.level for r in part}) < 2:
            print(f"\n== {name}: one level ({part[0].level:g}): a sanity anchor, nothing to fit")
            continue
        res = run_sweep(name, published_cells(part), args.samples, args.workers)
        print_sweep(res)
        points += res.points
        if args.figures:
            print(f"   figure: {figure(res, args.figures)}")
        sys.stdout.flush()
    if points:
        summarize(points)
    if args.emulator:
        res = run_sweep("emulator-default-closed-loop", emulator_cells(), args.samples,
                        args.workers)  # fmt: skip
        print("\n(the emulator shares the twin's equations: this measures the fitting)")
        print_sweep(res)
        summarize(res.points)
        if args.figures:
            print(f"   figure: {figure(res, args.figures)}")
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

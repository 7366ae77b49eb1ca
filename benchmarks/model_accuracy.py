"""Held-out accuracy of the capacity model on emulator sweeps, and the seed blog's figures.

Sweeps the default emulator profile in virtual time — closed loop (``simulate_closed_loop``) and
the seed's interval mode (a batch of ``level`` requests every 1 s for 60 s) — at levels
1, 5, 10, 20, 30, 40, 50 with the small (8-token) and large (5,992-token) prompts and 350
output tokens. Fits ``capacity.fit_capacity`` on levels ≤ 30 only, predicts the median
per-request tps and the system output throughput at the *measured* in-flight concurrency of
levels 40 and 50, and prints the errors (target: within ±10 %). Then fits the USL to the seed
blog's published per-level medians and prints what it finds.

    python benchmarks/model_accuracy.py
    python benchmarks/model_accuracy.py --seed 3 --profile fast
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from capacity.fitting import Basis, fit_capacity, fit_usl
from capacity.records import summarize, validate_records
from emulator import (
    DEFAULT_PROFILE,
    Profile,
    SimResult,
    interval_schedule,
    load_profile,
    simulate,
    simulate_closed_loop,
)

ROOT = Path(__file__).resolve().parent.parent
SEED_FIGURES = ROOT / "data" / "reference" / "seed_blog_figures.csv"
LEVELS = (1, 5, 10, 20, 30, 40, 50)
PROMPTS = {"small": 8, "large": 5992}
MAX_TOKENS = 350
FIT_MAX_LEVEL = 30
TARGET = 0.10


def to_records(
    results: Sequence[SimResult], *, label: str, level: int, mode: str, offset_s: float
) -> pd.DataFrame:
    """SimResults as records in our schema (the virtual stream closes at its last token)."""
    start = np.array([r.start_s for r in results]) + offset_s
    first = np.array([r.first_token_s for r in results]) + offset_s
    last = np.array([r.last_token_s for r in results]) + offset_s
    ok = np.array([r.status == "ok" for r in results])
    return pd.DataFrame(
        {
            "run_id": f"emulator-{mode}",
            "provider": "emulator",
            "model_id": "llama3.3-70b",
            "prompt_label": label,
            "mode": mode,
            "level": float(level),
            "batch": [r.batch for r in results],
            "max_tokens": MAX_TOKENS,
            "temperature": 0.5,
            "start_s": start,
            "first_token_s": first,
            "last_token_s": last,
            "end_s": np.where(ok, last, start),
            "input_tokens": [float(r.input_tokens) for r in results],
            "output_tokens": [
                float(r.output_tokens) if r.status == "ok" else np.nan for r in results
            ],
            "status": [r.status for r in results],
        }
    )


def sweep(profile: Profile, mode: str, seed: int) -> pd.DataFrame:
    """Both prompts at every level, levels run one after another on one clock."""
    frames, clock = [], 0.0
    for label, prompt_tokens in PROMPTS.items():
        for level in LEVELS:
            if mode == "concurrency":
                n_requests = max(400, 30 * level)
                results = simulate_closed_loop(
                    profile,
                    level,
                    n_requests,
                    input_tokens=prompt_tokens,
                    max_tokens=MAX_TOKENS,
                    seed=seed,
                )
            else:
                schedule = interval_schedule(
                    level, 60, 1.0, input_tokens=prompt_tokens, max_tokens=MAX_TOKENS
                )
                results = simulate(profile, schedule, seed=seed)
            frame = to_records(results, label=label, level=level, mode=mode, offset_s=clock)
            clock = float(np.nanmax(frame["end_s"])) + 1.0
            frames.append(frame)
    return validate_records(pd.concat(frames, ignore_index=True), source=f"emulator {mode}")


class Row(NamedTuple):
    """One held-out level: measured vs predicted median tps and system output tokens/s."""

    prompt: str
    level: float
    n: float
    tps: float
    tps_pred: float
    tps_err: float
    x: float
    x_pred: float
    x_err: float
    beyond: float  # N / the largest fitted N


def held_out(records: pd.DataFrame, basis: Basis) -> tuple[list[Row], float]:
    """Fit on levels ≤ 30, predict the held-out levels at their concurrency."""
    truth = summarize(records)
    model = fit_capacity(records[records["level"] <= FIT_MAX_LEVEL], concurrency=basis)
    rows: list[Row] = []
    for r in truth[truth["level"] > FIT_MAX_LEVEL].to_dict(orient="records"):
        n = float(r["concurrency_mean"] if basis == "measured" else r["level"])
        p = model.predict(n, float(r["input_tokens_mean"]))
        tps, x = float(r["tps_p50"]), float(r["output_tps"])
        rows.append(
            Row(
                str(r["prompt_label"]),
                float(r["level"]),
                n,
                tps,
                p.tps_p50,
                p.tps_p50 / tps - 1,
                x,
                p.system_output_tps,
                p.system_output_tps / x - 1,
                n / model.prompt(str(r["prompt_label"])).n_max,
            )
        )
    worst = max(max(abs(r.tps_err), abs(r.x_err)) for r in rows)
    return rows, worst


def print_table(title: str, rows: list[Row]) -> None:
    """The held-out comparison."""
    print(title)
    print(
        f"{'prompt':<7}{'level':>6}{'N':>8}{'N/fit max':>10} | "
        f"{'tps meas':>9}{'pred':>8}{'err':>8} | "
        f"{'out tok/s meas':>15}{'pred':>9}{'err':>8}"
    )
    for label, level, n, t, tp, te, x, xp, xe, beyond in rows:
        print(
            f"{label:<7}{level:>6.0f}{n:>8.1f}{beyond:>9.2f}× | {t:>9.1f}{tp:>8.1f}{te:>+8.1%} | "
            f"{x:>15,.0f}{xp:>9,.0f}{xe:>+8.1%}"
        )


def seed_medians() -> pd.DataFrame:
    """The blog's per-level median tps (levels 1, 10, 30, 50) per prompt."""
    figures = pd.read_csv(SEED_FIGURES)
    rows = figures[(figures["metric"] == "tps") & (figures["statistic"] == "median")]
    return rows.rename(columns={"value": "median_tps"})[["prompt_label", "level", "median_tps"]]


def seed_findings() -> None:
    """USL fits to the blog's per-level medians (its level = batch size per second)."""
    print(
        "\nSeed blog medians (interval mode; N = the blog's level, as it plotted them;"
        " X = N × median tps, the blog's own throughput)"
    )
    print(
        f"{'prompt':<7}{'λ':>7}{'σ':>9}{'κ':>10}{'R²':>7}{'N*':>6}{'E(50)':>7}{'N(E=.8)':>8}"
        f"{'X(30)':>7}{'X(50)':>7}{'X gain 30→50':>13}  (linear scaling: +67%)"
    )
    for label, part in seed_medians().groupby("prompt_label", sort=False):
        fit = fit_usl(part["level"], part["median_tps"])
        x30, x50 = fit.throughput(30.0), fit.throughput(50.0)
        print(
            f"{label:<7}{fit.lam:>7.1f}{fit.sigma:>9.5f}{fit.kappa:>10.2e}{fit.r2:>7.3f}"
            f"{fit.peak_concurrency():>6.0f}{fit.efficiency(50.0):>7.2f}"
            f"{fit.concurrency_at_efficiency(0.8):>8.0f}{x30:>7.0f}{x50:>7.0f}"
            f"{x50 / x30 - 1:>+13.0%}"
        )
        for warning in fit.warnings:
            print(f"  {label}: {warning}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=DEFAULT_PROFILE)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    profile = load_profile(args.profile)
    t0 = time.perf_counter()
    worst = 0.0
    runs: tuple[tuple[str, Basis], ...] = (
        ("concurrency", "measured"),
        ("interval", "measured"),
        ("concurrency", "offered"),
    )
    for mode, basis in runs:
        records = sweep(profile, mode, args.seed)
        rows, w = held_out(records, basis)
        worst = max(worst, w) if basis == "measured" else worst
        print_table(
            f"\n{mode} mode, profile {profile.name}, fit on levels ≤ {FIT_MAX_LEVEL}, "
            f"N = {basis} concurrency:",
            rows,
        )
    verdict = "within" if worst <= TARGET else "OUTSIDE"
    print(f"\nlargest held-out error (measured basis): {worst:.1%}: {verdict} the ±10% target")
    seed_findings()
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0 if worst <= TARGET and not math.isnan(worst) else 1


if __name__ == "__main__":
    sys.exit(main())

"""How far can a twin calibrated on a small probe see? Held-out accuracy, robustness and speed.

Probes are virtual-time runs of known emulator profiles (the truth is the profile, simulated
with another seed), except ``--live RUN...``, which fits real records of the emulator.

    python benchmarks/twin_accuracy.py                  # (a)–(e), prints tables; several minutes
    python benchmarks/twin_accuracy.py --only a,b       # a subset
    python benchmarks/twin_accuracy.py --only c --profile prefill --verbose   # one shape of (c)
    python benchmarks/twin_accuracy.py --live runs/x runs/y   # a live probe of the default profile
    python benchmarks/twin_accuracy.py --figures docs/img     # also write the figures

(a) default profile: fit on interval-mode levels 1, 5, 10 (both prompts), predict 30 and 50;
(b) the seed blog's published medians: fit on levels 1 and 10, predict 30 and 50;
(c) three other shapes: more replicas, a low running-sequence limit, a costlier prefill;
(d) robustness: 5 % timing noise and 2 % lost requests; a probe that cannot identify;
(e) speed: calibration of the 3-level probe, one prediction.
The target is 10 % on median tps, median TTFT and output tokens/s (15 % under noise).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from capacity.records import load_records, validate_records
from capacity.serving import (
    DEFAULT_PROFILE,
    ProbeCell,
    Profile,
    Twin,
    calibrate,
    interval_schedule,
    load_profile,
    simulate,
)
from capacity.serving._calibrate import records_from_results
from capacity.serving._twin import run_stats

ROOT = Path(__file__).resolve().parent.parent
MEDIANS = ROOT / "data" / "reference" / "seed_blog_interval_medians.csv"
PROMPTS = {"small": 8, "large": 5992}  # + the profile's 35-token template = 43 and 6,027
PROBE_LEVELS = (1, 5, 10)
HELD_OUT = (30, 50)
KEYS = ("tps_p50", "ttft_p50", "output_tps")
MAX_TOKENS = 350


def probe(
    profile: Profile,
    levels: Sequence[int] = PROBE_LEVELS,
    *,
    prompts: dict[str, int] = PROMPTS,
    batches: int = 60,
    seed: int = 11,
) -> pd.DataFrame:
    """Interval-mode probe records of ``profile`` (virtual time, levels one after another)."""
    frames, clock = [], 0.0
    for label, tokens in prompts.items():
        for level in levels:
            schedule = interval_schedule(level, batches, input_tokens=tokens, max_tokens=MAX_TOKENS)
            results = simulate(profile, schedule, seed=seed)
            frame = records_from_results(
                results, mode="interval", level=level, label=label, offset_s=clock
            )
            clock = float(frame["end_s"].max()) + 1.0
            frames.append(frame)
    return validate_records(pd.concat(frames, ignore_index=True), source=f"{profile.name} probe")


def truth(profile: Profile, level: int, prompt_tokens: int, seed: int = 5) -> dict[str, float]:
    """The held-out level measured on the profile itself (another seed)."""
    schedule = interval_schedule(level, 60, input_tokens=prompt_tokens, max_tokens=MAX_TOKENS)
    return run_stats(simulate(profile, schedule, seed=seed))


def held_out(twin: Twin, profile: Profile, title: str, limit: float) -> float:
    """Print twin vs truth at the held-out levels; returns the largest error."""
    print(f"\n{title}")
    print(f"  {'prompt':<7}{'level':>6} | " + " | ".join(f"{k:>29}" for k in KEYS) + " | beyond")
    worst = 0.0
    for label, tokens in PROMPTS.items():
        server_tokens = tokens + profile.prompt_overhead_tokens
        for level in HELD_OUT:
            got = twin.forecast("interval", level, server_tokens, MAX_TOKENS, samples=8)
            real = truth(profile, level, tokens)
            cells = []
            for k in KEYS:
                low, est, high = got.model_values[k]
                err = est / real[k] - 1
                worst = max(worst, abs(err))
                inside = "in" if low <= real[k] <= high else "OUT"
                cells.append(f"{real[k]:>8.3g} {est:>8.3g} {err:>+6.1%} {inside:>3}")
            print(f"  {label:<7}{level:>6} | " + " | ".join(cells) + f" | {got.extrapolation:.1f}x")
            for note in got.notes:
                if note.startswith("near saturation"):
                    print(f"  {'':13}  the forecast says: {note}")
    verdict = "within" if worst <= limit else "OUTSIDE"
    print(f"  (truth, twin, error, truth inside the twin's 90 % band without the unseen "
          f"capacity limit); largest error {worst:.1%}: {verdict} the {limit:.0%} "
          "target")  # fmt: skip
    return worst


COEFS = ("t_w_s", "c_b_s", "c_kv_s", "c_f_s", "alpha0_s", "alpha_in_s", "alpha_jitter_cv")
VERBOSE = False


def describe(twin: Twin, profile: Profile | None = None) -> None:
    """The fitted coefficients and what the probe could not pin down (``--verbose``: every
    member's coefficients next to the truth's)."""
    reps = ", ".join(f"{m.serving.replicas} ({m.weight:.0%})" for m in twin.members)
    print(f"  fit {twin.meta['fit_seconds']} s, {twin.meta['simulations']} simulations; "
          f"replicas {reps}; max_running {twin.serving.max_running}")  # fmt: skip
    if VERBOSE:
        rows = [(f"r={m.serving.replicas} chi2 {m.chi2:.1f}", m.serving) for m in twin.members]
        if profile is not None:
            rows.insert(0, (f"truth r={profile.serving.replicas}", profile.serving))
        print("  " + " " * 18 + "".join(f"{n[:-2] if n.endswith('_s') else n:>11}" for n in COEFS))
        for title, s in rows:
            print(f"  {title:<18}" + "".join(f"{getattr(s, n):>11.3g}" for n in COEFS))
    for name, why in twin.identification.not_identified.items():
        if name not in ("c_a_s", "step_jitter_cv", "chunk_budget_tokens"):
            print(f"  not pinned: {name}: {why}")


def section_a(figures: Path | None) -> float:
    profile = load_profile(DEFAULT_PROFILE)
    twin = calibrate(probe(profile))
    describe(twin, profile)
    worst = held_out(twin, profile, "(a) default profile: probe levels 1, 5, 10 → 30, 50", 0.10)
    if figures is not None:
        from capacity.figures import save_figure
        from capacity.figures.twin import plot_twin

        real = {float(lv): truth(profile, lv, PROMPTS["large"]) for lv in HELD_OUT}
        fig = plot_twin(twin, "interval", PROMPTS["large"] + 35, truth=real,
                        levels=(1, 5, 10, 15, 20, 30, 40, 50))  # fmt: skip
        print(f"  figure: {save_figure(fig, figures / 'twin_default.png')}")
    return worst


def blog_cells(levels: Sequence[int]) -> tuple[list[ProbeCell], list[dict[str, str]]]:
    """Probe cells from the blog's published medians (tps = 1 / TPOT, median TTFT)."""
    rows = list(csv.DictReader(MEDIANS.open()))
    cells = []
    for r in rows:
        level = int(r["level"])
        if level not in levels:
            continue
        cells.append(
            ProbeCell(
                label=f"blog:interval:{level}:{r['prompt_label']}",
                mode="interval",
                level=float(level),
                input_tokens=int(r["input_tokens"]),
                output_tokens=int(r["output_tokens"]),
                n_requests=60 * level,
                observed={
                    "tpot_p50": 1 / float(r["median_tps"]),
                    "ttft_p50": float(r["median_ttft_s"]),
                },
                # Two significant figures, medians of 60·level requests: 3 % either way.
                se={"tpot_p50": 0.03, "ttft_p50": 0.03},
                arrivals_s=tuple(float(b) for b in range(60) for _ in range(level)),
                batches=60,
                compared=60 * level,
            )
        )
    return cells, rows


def section_b() -> float:
    cells, rows = blog_cells((1, 10))
    twin = calibrate(cells)
    describe(twin)
    print("\n(b) the seed blog's published medians: fit on levels 1 and 10 → 30, 50")
    worst = 0.0
    for r in rows:
        level = int(r["level"])
        if level not in HELD_OUT:
            continue
        got = twin.forecast("interval", level, int(r["input_tokens"]), 350, samples=8)
        for key, col in (("tps_p50", "median_tps"), ("ttft_p50", "median_ttft_s")):
            low, est, high = got.model_values[key]
            real = float(r[col])
            err = est / real - 1
            worst = max(worst, abs(err))
            inside = "in" if low <= real <= high else "OUT"
            print(f"  {r['prompt_label']:<6}{level:>4} {key:<9} blog {real:>7.3g}  twin "
                  f"{est:>7.3g} [{low:.3g}, {high:.3g}] {err:>+6.1%} {inside}")  # fmt: skip
        for note in got.notes:
            if note.startswith("near saturation"):
                print(f"  {'':10}  the forecast says: {note}")
    print(
        f"  largest error {worst:.1%}: {'within' if worst <= 0.10 else 'OUTSIDE'} the 10 % target"
    )
    return worst


def other_profiles() -> dict[str, Profile]:
    """Three shapes unlike the default: more replicas, a low running limit, costlier prefill."""
    base = load_profile(DEFAULT_PROFILE)
    s = base.serving
    return {
        "8 replicas": base.with_overrides(
            name="replicas-8", serving=dataclasses.replace(s, replicas=8, c_f_s=s.c_f_s * 2.5)
        ),
        "max_running 6 (queues inside the probe)": base.with_overrides(
            name="running-6", serving=dataclasses.replace(s, max_running=6)
        ),
        "prefill 2x": base.with_overrides(
            name="prefill-2x", serving=dataclasses.replace(s, c_f_s=s.c_f_s * 2, alpha_in_s=4e-5)
        ),
    }


def section_c(which: str = "") -> float:
    worst = 0.0
    for title, profile in other_profiles().items():
        if which and which not in title:
            continue
        twin = calibrate(probe(profile))
        describe(twin, profile)
        worst = max(worst, held_out(twin, profile, f"(c) {title}: levels 1, 5, 10 → 30, 50", 0.10))
    return worst


def noisy(records: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """5 % timing noise on every duration and 2 % of the requests lost (their rows dropped)."""
    rng = np.random.default_rng(seed)
    out = records.sample(frac=0.98, random_state=seed).sort_index().copy()
    start = out["start_s"].to_numpy(float)
    for col in ("first_token_s", "last_token_s"):
        d = out[col].to_numpy(float) - start
        out[col] = start + d * np.exp(rng.normal(0.0, 0.05, len(out)))
    # the longest inter-chunk gap is a duration stamped by the same client: the same noise
    gap = out["max_gap_s"].to_numpy(float)
    out["max_gap_s"] = gap * np.exp(rng.normal(0.0, 0.05, len(out)))
    first, last = out["first_token_s"].to_numpy(float), out["last_token_s"].to_numpy(float)
    out["last_token_s"] = np.maximum(first, last)
    out["end_s"] = out["last_token_s"]
    keep = ["run_id", "provider", "model_id", "prompt_label", "mode", "level", "batch",
            "max_tokens", "start_s", "first_token_s", "last_token_s", "end_s", "max_gap_s",
            "input_tokens",
            "output_tokens", "status"]  # fmt: skip
    return validate_records(out[keep].reset_index(drop=True), source="noisy probe")


def section_d() -> float:
    profile = load_profile(DEFAULT_PROFILE)
    twin = calibrate(noisy(probe(profile)))
    describe(twin)
    worst = held_out(twin, profile, "(d) 5 % timing noise, 2 % lost requests → 30, 50", 0.15)
    print("\n(d) a running limit the probe never reached (max_running 12, probe ≤ 10)")
    hidden = load_profile(DEFAULT_PROFILE)
    hidden = hidden.with_overrides(serving=dataclasses.replace(hidden.serving, max_running=12))
    blind = calibrate(probe(hidden))
    print(f"  not pinned: max_running: {blind.identification.not_identified.get('max_running')}")
    fc = blind.forecast("interval", 50, 6027, samples=4)
    real = truth(hidden, 50, PROMPTS["large"])
    print(
        f"  level 50 large: TTFT truth {real['ttft_p50']:.2f} s, "
        f"twin {fc.values['ttft_p50'][1]:.2f} s"
    )
    for note in fc.notes:
        if note.startswith("unverified"):
            print(f"  the forecast says: {note}")
    print("\n(d) a probe that cannot identify: one prompt (small), levels 1 and 2")
    weak = calibrate(probe(profile, (1, 2), prompts={"small": 8}, batches=30))
    for name, why in weak.identification.not_identified.items():
        print(f"  not pinned: {name}: {why}")
    return worst


def section_e() -> None:
    profile = load_profile(DEFAULT_PROFILE)
    records = probe(profile)
    t0 = time.perf_counter()
    twin = calibrate(records)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    twin.predict(50, 6027)
    predict_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    twin.forecast("interval", 50, 6027, samples=10)
    forecast_s = time.perf_counter() - t0
    print(f"\n(e) speed: calibration of {len(records)} requests in 3 levels × 2 prompts: "
          f"{fit_s:.1f} s (target < 60 s); predict(50, 6027): {predict_s:.2f} s (target < 1 s); "
          f"forecast with a 10-draw band: {forecast_s:.2f} s")  # fmt: skip


def section_live(runs: Sequence[str]) -> float:
    profile = load_profile(DEFAULT_PROFILE)
    records = load_records(runs)
    twin = calibrate(records)
    describe(twin)
    return held_out(twin, profile, f"live probe ({len(records)} records) → 30, 50", 0.10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="a,b,c,d,e", help="sections, e.g. a,b")
    parser.add_argument("--live", nargs="+", metavar="RUN", help="fit these emulator runs")
    parser.add_argument("--figures", type=Path, help="write figures to this folder")
    parser.add_argument(
        "--profile",
        default="",
        help="(c): only the profile whose title "
        "contains this, e.g. '8 replicas', 'max_running', 'prefill'",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="print every member's coefficients (and the truth's)"
    )
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    t0 = time.perf_counter()
    if args.live:
        section_live(args.live)
        return 0
    only = set(args.only.split(","))
    steps = {"a": lambda: section_a(args.figures), "b": section_b,
             "c": lambda: section_c(args.profile),
             "d": section_d, "e": section_e}  # fmt: skip
    for key in "abcde":
        if key in only:
            steps[key]()
            sys.stdout.flush()
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

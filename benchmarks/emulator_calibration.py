"""Does the default emulator profile reproduce the seed blog? Target vs emulated, per level.

Drives the serving model in virtual time exactly as the blog drove Bedrock: interval mode, a
batch of ``level`` requests every 1 s for 60 batches, 350 output tokens, the small (43-token)
and large (6,027-token) prompts. Prints median per-request tokens/s and median TTFT against the
published figures (``data/reference/seed_blog_interval_medians.csv``) and the relative error.

    python benchmarks/emulator_calibration.py                 # the shipped default profile
    python benchmarks/emulator_calibration.py --profile x.json
    python benchmarks/emulator_calibration.py --fit           # search coefficients (minutes)
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from capacity.serving import interval_medians
from emulator import DEFAULT_PROFILE, Profile, load_profile

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ROOT / "data" / "reference" / "seed_blog_interval_medians.csv"
FIT_FIELDS = ("t_w_s", "c_b_s", "c_a_s", "c_kv_s", "c_f_s", "alpha0_s", "alpha_in_s")


def load_targets() -> list[dict[str, float | str]]:
    """The blog's medians, one dict per (prompt, level)."""
    with TARGETS.open() as fh:
        return [
            {k: (v if k == "prompt_label" else float(v)) for k, v in row.items()}
            for row in csv.DictReader(fh)
        ]


def emulate(
    profile: Profile, targets: list[dict[str, float | str]], seed: int
) -> list[tuple[float, float]]:
    """Median tps and TTFT of the emulated run for each target row."""
    return [
        interval_medians(
            profile,
            int(float(t["level"])),
            input_tokens=int(float(t["input_tokens"])),
            max_tokens=int(float(t["output_tokens"])),
            seed=seed,
        )
        for t in targets
    ]


def errors(profile: Profile, targets: list[dict[str, float | str]], seed: int) -> np.ndarray:
    """Relative errors, tps then TTFT, per target row."""
    got = emulate(profile, targets, seed)
    tps = [g[0] / float(t["median_tps"]) - 1 for g, t in zip(got, targets, strict=True)]
    ttft = [g[1] / float(t["median_ttft_s"]) - 1 for g, t in zip(got, targets, strict=True)]
    return np.array(tps + ttft)


def fit(
    profile: Profile,
    targets: list[dict[str, float | str]],
    seed: int,
    budgets: list[int],
    replicas_grid: list[int],
    max_evals: int,
) -> Profile:
    """Nelder–Mead on log-coefficients for each (chunk budget, replicas) of a small grid."""
    best: tuple[float, Profile] | None = None
    for budget in budgets:
        for replicas in replicas_grid:
            base = dataclasses.replace(
                profile.serving, chunk_budget_tokens=budget, replicas=replicas
            )
            x0 = np.log([max(getattr(base, f), 1e-12) for f in FIT_FIELDS])

            def make(x: np.ndarray, base=base) -> Profile:
                values = dict(zip(FIT_FIELDS, np.exp(x), strict=True))
                return profile.with_overrides(serving=dataclasses.replace(base, **values))

            def loss(x: np.ndarray, make=make) -> float:
                e = errors(make(x), targets, seed)
                return float(np.sum(e**2) + 10 * max(0.0, np.max(np.abs(e)) - 0.07) ** 2)

            res = minimize(
                loss, x0, method="Nelder-Mead", options={"maxfev": max_evals, "xatol": 1e-3}
            )
            print(f"budget {budget} replicas {replicas}: loss {res.fun:.5f}", file=sys.stderr)
            if best is None or res.fun < best[0]:
                best = (res.fun, make(res.x))
    assert best is not None
    return best[1]


def report(profile: Profile, targets: list[dict[str, float | str]], seed: int) -> float:
    """Print the comparison table; returns the largest absolute relative error."""
    got = emulate(profile, targets, seed)
    print(
        f"profile {profile.name}: interval mode, 60 batches at 1 s, 350 output tokens, seed {seed}"
    )
    print(f"{'prompt':<7}{'level':>6} | {'tps blog':>9}{'emulated':>9}{'err':>7} | "
          f"{'TTFT blog':>10}{'emulated':>9}{'err':>7}")  # fmt: skip
    worst = 0.0
    for (tps, ttft), t in zip(got, targets, strict=True):
        e1 = tps / float(t["median_tps"]) - 1
        e2 = ttft / float(t["median_ttft_s"]) - 1
        worst = max(worst, abs(e1), abs(e2))
        label, level = str(t["prompt_label"]), int(float(t["level"]))
        blog_tps, blog_ttft = float(t["median_tps"]), float(t["median_ttft_s"])
        print(f"{label:<7}{level:>6} | {blog_tps:>9.0f}{tps:>9.1f}{e1:>+7.1%} | "
              f"{blog_ttft:>10.2f}{ttft:>9.3f}{e2:>+7.1%}")  # fmt: skip
    verdict = "within" if worst <= 0.10 else "OUTSIDE"
    print(f"largest error {worst:.1%}: {verdict} the ±10% target")
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=DEFAULT_PROFILE)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fit", action="store_true", help="search coefficients, print JSON")
    parser.add_argument("--budgets", default="2048,4096,8192", help="chunk budgets to try")
    parser.add_argument("--replicas", default="1,2,3,4", help="replica counts to try")
    parser.add_argument("--max-evals", type=int, default=250, help="evaluations per grid point")
    args = parser.parse_args()
    profile = load_profile(args.profile)
    targets = load_targets()
    t0 = time.perf_counter()
    if args.fit:
        budgets = [int(b) for b in args.budgets.split(",")]
        replicas = [int(r) for r in args.replicas.split(",")]
        profile = fit(profile, targets, args.seed, budgets, replicas, args.max_evals)
        print(json.dumps(dataclasses.asdict(profile.serving), indent=2))
    worst = report(profile, targets, args.seed)
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0 if worst <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())

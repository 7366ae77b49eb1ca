"""Live check of the quota rules: the planner's sustained rate against the running emulator.

The emulator (``fast`` profile, outputs drawn from a lognormal with mean ``--output-mean``
tokens, far below ``max_tokens``, TPM quota ``--tpm``) runs in its own process. A short probe
without a quota measures the request shape (input tokens as the emulator counts them, mean output,
mean latency); ``plan_capacity`` turns the quota into a sustained rate; then two open-loop
(Poisson) sweeps run ``--minutes`` each against the quota'd emulator: at 0.85× the planned rate
(the promise: fewer than 2 % throttled) and at 2× (once the bucket drains, a clear share is
throttled). Prints the plan, the throttle share of each run and, for the overloaded run, the
admitted rate after the first minute next to the planned one.

    python benchmarks/quota_live_check.py            # 3 minutes per run (about 7 minutes)
    python benchmarks/quota_live_check.py --minutes 1 --quota-rule window
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench import Endpoint, SweepConfig, run_sweep
from capacity.planning import Quota, Workload, plan_capacity
from capacity.records import load_records
from capacity.serving import load_profile
from emulator.runner import EmulatorProcess

MODEL = "us.meta.llama3-3-70b-instruct-v1:0"


def profile_file(folder: Path, output_mean: float) -> Path:
    """The ``fast`` profile with lognormal outputs of mean ``output_mean`` tokens."""
    raw = json.loads(json.dumps(_profile_dict()))
    raw["name"] = "fast-short-outputs"
    raw["output"] = {"kind": "lognormal", "mean_tokens": output_mean, "sigma": 0.5}
    path = folder / "profile.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def _profile_dict() -> dict[str, object]:
    p = load_profile("fast")
    return {
        "name": p.name,
        "models": [{"model_id": m.model_id} for m in p.models],
        "prompt_overhead_tokens": p.prompt_overhead_tokens,
        "serving": {
            f: getattr(p.serving, f)
            for f in ("t_w_s", "c_b_s", "c_a_s", "c_kv_s", "c_f_s", "alpha0_s", "alpha_in_s")
        },
    }


def sweep(url: str, out: Path, rate_per_s: float, seconds: float, max_tokens: int) -> Path:
    config = SweepConfig(
        endpoint=Endpoint(endpoint_url=url, model_id=MODEL), prompt="small", mode="rate",
        levels=(rate_per_s,), duration_s=seconds, max_tokens=max_tokens, temperature=0.5,
        out=out, progress=False,
    )  # fmt: skip
    return run_sweep(config)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tpm", type=int, default=60_000)
    ap.add_argument("--output-mean", type=float, default=60.0)
    ap.add_argument("--max-tokens", type=int, default=1000)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--quota-rule", choices=("bucket", "window"), default="bucket")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        profile = profile_file(folder, args.output_mean)
        with EmulatorProcess(profile) as emu:
            probe = load_records(sweep(emu.url, folder / "probe", 5.0, 8.0, args.max_tokens))
        ok = probe[probe.status == "ok"]
        shape = Workload(
            input_tokens=float(ok.input_tokens.mean()),
            output_tokens=float(ok.output_tokens.mean()),
            max_tokens=args.max_tokens,
            latency_s=float(ok.ttlt_s.mean()),
            think_time_s=30,
        )
        plan = plan_capacity(Quota(tpm=args.tpm, rule=args.quota_rule), shape, verify=True)
        print(
            f"probe: {len(ok)} requests, {shape.input_tokens:.1f} input / "
            f"{shape.output_tokens:.1f} output tokens (max_tokens {args.max_tokens}), "
            f"{shape.latency_s:.3f} s mean latency"
        )
        print(f"plan ({args.quota_rule}): {plan.answer()}")
        print(f"  {plan.formulas['requests_per_min_by_constraint.tpm']}")
        assert plan.verification is not None
        print(f"  virtual time: {plan.verification.describe()}")
        extra = ("--tpm", str(args.tpm), "--quota-rule", args.quota_rule)
        for factor in (0.85, 2.0):
            rate = factor * plan.peak_requests_per_min
            with EmulatorProcess(profile, extra_args=extra, seed=1) as emu:
                run = sweep(emu.url, folder / f"x{factor}", rate / 60, 60 * args.minutes, 1000)
            df = load_records(run)
            share = float((df.status == "throttled").mean())
            after = df[df.start_s >= 60.0]
            admitted = (after.status == "ok").sum() / max((after.start_s.max() - 60) / 60, 1e-9)
            print(
                f"{factor:.2f}× the plan ({rate:,.0f} req/min offered, {len(df):,} requests, "
                f"{args.minutes:g} min): {100 * share:.2f} % throttled; after the first minute "
                f"{admitted:,.0f} req/min admitted vs {plan.peak_requests_per_min:,.0f} planned"
            )


if __name__ == "__main__":
    main()

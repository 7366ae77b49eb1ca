"""``llmcap twin``: calibrate a digital twin of the endpoint from a probe, and ask it questions.

``twin fit RUN... -o twin.json`` fits the serving model to measured runs (docs/twin.md), ``twin fit
--published FILE --sweep ID`` to a table of published per-level aggregates;
``twin predict twin.json --mode interval --levels 30,50 --prompt large`` forecasts levels far
beyond the probe, with 90 % intervals and an explicit extrapolation flag.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from capacity.errors import CapacityError
from llmcap.commands._args import add_out, nonneg_int, positive_float, positive_int
from llmcap.errors import UserError

FIT_COLUMNS = {
    "ttft_p50": "TTFT p50", "ttft_p90": "TTFT p90", "ttft_mean": "TTFT mean",
    "tpot_p50": "TPOT p50", "tpot_p90": "TPOT p90", "tpot_mean": "ITL mean",
    "ttlt_p90": "TTLT p90", "ttlt_mean": "e2e mean", "speed_mean": "speed",
    "system_tps": "system", "gap_p50": "max gap",
}  # fmt: skip
"""Fit-quality columns ``twin fit`` prints, where some cell has them."""

PREDICT_COLUMNS = (
    ("tps_p50", "tps p50", "{:.1f}"),
    ("tps_p5", "tps p5", "{:.1f}"),
    ("ttft_p50", "TTFT p50 s", "{:.3f}"),
    ("ttft_p95", "TTFT p95 s", "{:.3f}"),
    ("ttlt_p95", "TTLT p95 s", "{:.2f}"),
    ("output_tps", "output tok/s", "{:.0f}"),
    ("inflight", "in flight", "{:.0f}"),
)


def register(sub: Any) -> None:
    """Add the ``twin`` subcommand (``fit``, ``predict``) to ``sub``."""
    p = sub.add_parser(
        "twin",
        help="calibrate a digital twin from a probe; predict beyond it",
        description="A digital twin: the serving model calibrated to a small probe, "
        "predicting load levels the probe could not reach (docs/twin.md).",
    )
    tsub = p.add_subparsers(dest="twin_command", required=True, parser_class=type(p))
    fit = tsub.add_parser(
        "fit", help="calibrate a twin from measured runs or a table of published aggregates"
    )
    fit.add_argument("paths", nargs="*", metavar="RUN", help="run directory or records file")
    fit.add_argument(
        "--published",
        type=Path,
        metavar="FILE",
        help="calibrate on per-level aggregates instead of runs: a CSV like "
        "data/reference/published_sweeps.csv",
    )
    fit.add_argument("--sweep", help="the sweep id in --published (needed when it has several)")
    fit.add_argument(
        "--max-level",
        type=positive_float,
        default=10.0,
        help="with --published, calibrate on the levels up to this one (default 10)",
    )
    add_out(fit, Path("twin.json"), "where the twin is written")
    fit.add_argument("--replicas", help="replica counts to profile, e.g. 1,2,3,4 (default 1-8)")
    fit.add_argument("--workers", type=positive_int, default=2, help="processes (default 2)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--json", action="store_true", help="print the fit as JSON")
    fit.set_defaults(func=cmd_fit)
    pred = tsub.add_parser("predict", help="forecast levels with intervals")
    pred.add_argument("twin", type=Path, metavar="TWIN_JSON")
    pred.add_argument(
        "--mode", choices=("interval", "sequential", "concurrency", "rate"), default="interval"
    )
    pred.add_argument("--levels", required=True, help="comma-separated, e.g. 30,50")
    pred.add_argument(
        "--prompt",
        default="large",
        help="a probe prompt label (small, large) or input tokens (a number)",
    )
    pred.add_argument(
        "--output-tokens", type=positive_int, help="default: the probe's output length"
    )
    pred.add_argument("--batches", type=positive_int, default=60, help="interval batches (60)")
    pred.add_argument("--duration-s", type=positive_float, default=60.0, help="rate mode (60)")
    pred.add_argument("--tpm", type=positive_int, help="a tokens-per-minute quota (open loop)")
    pred.add_argument("--rpm", type=positive_int, help="a requests-per-minute quota (open loop)")
    pred.add_argument(
        "--samples", type=nonneg_int, default=10, help="coefficient draws for the bands (10)"
    )
    pred.add_argument("--seed", type=int, default=0)
    pred.add_argument("--plot", type=Path, help="write the figure (.png or .svg)")
    pred.add_argument("--json", action="store_true", help="print JSON")
    pred.set_defaults(func=cmd_predict)


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CapacityError(f"{flag} {text!r}: write whole numbers like 1,2,3") from None
    if not values or min(values) < 1:
        raise CapacityError(f"{flag} {text!r}: list whole numbers ≥ 1, e.g. 30,50")
    return values


def cmd_fit(args: argparse.Namespace) -> int:
    """Calibrate, save, print; bad input raises a typed error (one line, exit 2)."""
    from capacity import calibrate, load_records
    from capacity.serving import calibrate_published

    if bool(args.paths) == (args.published is not None):
        raise UserError(
            "twin fit needs either runs or --published FILE, not both and not neither",
            "e.g. `llmcap twin fit runs/<run>` or `llmcap twin fit --published sweeps.csv "
            "--sweep ID`",
        )
    if args.published is None and (args.sweep is not None or args.max_level != 10.0):
        raise UserError("--sweep and --max-level apply to --published", "drop them or add it")
    replicas = _ints(args.replicas, "--replicas") if args.replicas else None
    options: dict[str, Any] = {
        "replicas": replicas, "seed": args.seed, "workers": args.workers,
        "progress": lambda msg: print(msg, file=sys.stderr),
    }  # fmt: skip
    if args.published is not None:
        twin = calibrate_published(args.published, args.sweep, max_level=args.max_level, **options)
    else:
        twin = calibrate(load_records(args.paths), **options)
    twin.save(args.out)
    if args.json:
        doc = twin.to_dict()["twin"] | {"fit_quality": twin.fit_quality(args.seed)}
        print(json.dumps(doc, indent=1, allow_nan=False))
        return 0
    ident = twin.identification
    print(f"Twin written to {args.out} ({twin.meta.get('fit_seconds')} s, "
          f"{twin.meta.get('simulations')} simulations of the probe)")  # fmt: skip
    print("\nCoefficients (estimate, 90 % interval):")
    for name, (low, est, high) in ident.intervals.items():
        flag = "  ← " + ident.not_identified[name] if name in ident.not_identified else ""
        print(f"  {name:<16} {est:>11.4g}   [{low:.4g}, {high:.4g}]{flag}")
    print(f"  {'replicas':<16} {twin.replica_summary()}  (members, by posterior weight)")
    print("\nHeld at their prior or not pinned down by this probe:")
    for name, why in ident.not_identified.items():
        if name not in ident.intervals:
            print(f"  {name}: {why}")
    for line in twin.describe():
        if line.startswith(("capacity limit", "model error", "calibrated on", "model:")):
            print(f"  {line}")
    rows = twin.fit_quality(args.seed)
    shown = [s for s in FIT_COLUMNS if any(s in row for row in rows)]
    print("\nFit quality per level (twin vs measured, relative error):")
    print(f"  {'cell':<44}" + "".join(f"{FIT_COLUMNS[s]:>10}" for s in shown))
    for row in rows:
        cols = [f"{row[s]['error']:>+10.1%}" if s in row else f"{'-':>10}" for s in shown]
        print(f"  {row['cell'][-44:]:<44}{''.join(cols)}")
    return 0


def _input_tokens(twin: Any, prompt: str) -> int:
    try:
        return int(float(prompt))
    except ValueError:
        pass
    sizes = {c.label.rsplit(":", 1)[-1]: c.input_tokens for c in twin.cells}
    if prompt not in sizes:
        known = ", ".join(sorted(sizes)) or "none"
        raise CapacityError(
            f"--prompt {prompt!r}: the probe's prompts are {known}; or pass input tokens (a number)"
        )
    return int(sizes[prompt])


def cmd_predict(args: argparse.Namespace) -> int:
    """Forecast each level; table or JSON; optional figure."""
    from capacity.serving import QuotaConfig, load_twin

    twin = load_twin(args.twin)
    levels = _ints(args.levels, "--levels")
    tokens = _input_tokens(twin, args.prompt)
    quotas = None
    if args.tpm is not None or args.rpm is not None:
        if args.mode in ("concurrency", "sequential"):
            raise UserError(
                f"--tpm/--rpm do not apply to {args.mode} mode",
                "use them with an open-loop mode: interval or rate",
            )
        quotas = QuotaConfig(tpm=args.tpm, rpm=args.rpm)
    forecasts = [
        twin.forecast(
            args.mode,
            level,
            tokens,
            args.output_tokens,
            samples=args.samples,
            batches=args.batches,
            duration_s=args.duration_s,
            quotas=quotas,
            seed=args.seed,
        )
        for level in levels
    ]
    if args.plot is not None:
        from capacity.figures import plot_twin, save_figure

        save_figure(plot_twin(twin, args.mode, tokens, forecasts, seed=args.seed), args.plot)
    if args.json:
        print(json.dumps([f.to_dict() for f in forecasts], indent=1, allow_nan=False))
        return 0
    print(f"Twin {args.twin}: {args.mode} mode, {tokens} input tokens, "
          f"{forecasts[0].output_tokens} output tokens; estimate [90 % interval]")  # fmt: skip
    head = "".join(f"{label:>22}" for _, label, _ in PREDICT_COLUMNS)
    print(f"{'level':>6}{head}  beyond probe")
    for f in forecasts:
        cells = []
        for key, _, form in PREDICT_COLUMNS:
            low, est, high = f.values[key]
            text = (
                "-"
                if math.isnan(est)
                else f"{form.format(est)} [{form.format(low)}-{form.format(high)}]"
            )
            cells.append(f"{text:>22}")
        beyond = (
            f"{f.extrapolation:.1f}× EXTRAPOLATED" if f.extrapolated else f"{f.extrapolation:.1f}×"
        )
        print(f"{f.level:>6g}{''.join(cells)}  {beyond}")
        throttled = f.values["throttled"][1]
        if throttled > 0:
            print(f"{'':>6}  {throttled:.0%} of requests throttled by the quota")
    notes = dict.fromkeys(n for f in forecasts for n in f.notes)
    for note in notes:
        print(f"note: {note}")
    if args.plot is not None:
        print(f"figure: {args.plot}")
    return 0

"""``llmcap fit``: fit throughput and latency curves to records; print them; save the model."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from capacity import fit_capacity, load_records
from capacity.fitting import EXTRAPOLATION_LIMIT, CapacityModel, PromptModel, UslFit
from capacity.planning import MAX_CONCURRENCY, Objective
from llmcap.commands._args import add_objective, add_out, objective_of
from llmcap.commands.summarize import check_not_empty, console, fmt, print_notes


def register(sub: Any) -> None:
    """Add the ``fit`` subcommand to ``sub`` (an argparse subparsers object)."""
    cmd = sub.add_parser(
        "fit",
        help="fit throughput and latency curves per prompt size",
        description="Fit the Universal Scalability Law to per-request and system throughput, "
        "and quantile curves to TTFT and TTLT, against in-flight concurrency; print parameters "
        "with intervals, knees and warnings; save the model as JSON.",
    )
    cmd.add_argument(
        "paths",
        nargs="+",
        metavar="RUN_OR_FILE",
        help="run directory, records.jsonl, records.parquet or CSV",
    )
    add_out(cmd, None, "write the fitted model here (default: model.json in the run directory)")
    cmd.add_argument(
        "--concurrency",
        choices=("measured", "offered"),
        default="measured",
        help="fit against measured in-flight concurrency (default) or the "
        "offered level (closed-loop sweeps only)",
    )
    add_objective(cmd)
    cmd.add_argument("--boot", type=int, default=200, help="bootstrap replicates (default 200)")
    cmd.add_argument("--seed", type=int, default=0, help="seed of subsampling and bootstrap")
    cmd.set_defaults(func=cmd_fit)


def _ci(value: float, ci: tuple[float, float]) -> str:
    if not all(map(math.isfinite, ci)):
        return f"{value:.4g}"
    return f"{value:.4g} [{ci[0]:.3g}, {ci[1]:.3g}]"


def usl_table(model: CapacityModel) -> Table:
    """USL parameters with intervals, fit quality and derived concurrencies."""
    pct = f"{model.prompts[0].decode.level:.0%}"
    table = Table(title=f"USL fits vs {model.concurrency} in-flight concurrency ({pct} intervals)")
    for head in ("Prompt", "Curve", "λ", "σ", "κ", "R²", "dof", "N*", "N(E=0.8)"):
        table.add_column(head, justify="left" if head in ("Prompt", "Curve") else "right")
    for pm in model.prompts:
        fits: tuple[tuple[str, UslFit], ...] = (
            ("median tps per request", pm.decode),
            ("output tok/s per in-flight", pm.throughput),
        )
        for name, f in fits:
            table.add_row(
                pm.prompt_label,
                name,
                _ci(f.lam, f.lam_ci),
                _ci(f.sigma, f.sigma_ci),
                _ci(f.kappa, f.kappa_ci),
                fmt(f.r2, 4),
                str(f.dof),
                fmt(f.peak_concurrency()),
                fmt(f.concurrency_at_efficiency(0.8)),
            )
    return table


def levels_table(pm: PromptModel) -> Table:
    """Measured vs fitted at each level: the check that the curves describe the data."""
    table = Table(
        title=f"{pm.prompt_label!r} ({pm.input_tokens:.0f} input tokens): measured / fitted"
    )
    for head in ("Level", "N", "tps p50", "out tok/s", "TTFT p50", "TTFT p95", "TTLT p95"):
        table.add_column(head, justify="right")
    ttft = {c.q: c for c in pm.ttft}
    ttlt = {c.q: c for c in pm.ttlt}
    for i, (level, n) in enumerate(zip(pm.levels, pm.concurrency, strict=True)):
        cells = [
            fmt(level),
            fmt(n),
            f"{fmt(pm.decode.x[i])} / {fmt(pm.decode.per_request(n))}",
            f"{fmt(pm.throughput.x[i] * n)} / {fmt(pm.throughput.throughput(n))}",
        ]
        for curves, q in ((ttft, 0.5), (ttft, 0.95), (ttlt, 0.95)):
            c = curves.get(q)
            j = c.levels.index(n) if c is not None and n in c.levels else None
            cells.append(
                "–" if c is None or j is None else f"{fmt(c.level_values[j])} / {fmt(c.predict(n))}"
            )
        table.add_row(*cells)
    return table


KNEE_HEADS = ("Prompt", "objective", "measured up to", "peak N*", "80% efficiency", "SLO limit",
              "operate at")  # fmt: skip
"""The knees table's columns (``knees_rows``)."""


def knees_rows(
    model: CapacityModel, goals: Mapping[str, Objective]
) -> tuple[list[tuple[str, ...]], list[str]]:
    """Knees per prompt size (requests in flight) under each prompt's objective (``goals`` by
    prompt label, ``capacity.planning.objective``) as rows of text (``KNEE_HEADS``), and their
    notes. A knee beyond the measured range carries its factor; the operating point is advised
    only inside it. The ``fit`` and ``demo`` commands print them, the app's Evidence page shows
    them."""
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for pm in model.prompts:
        goal = goals[pm.prompt_label]
        k = model.knees(pm.input_tokens, slo=goal.slo)

        def show(n: float | None, pm: PromptModel = pm, advice: bool = False) -> str:
            if n is None:
                return "–"
            if not math.isfinite(n):
                return "no peak"
            if n >= MAX_CONCURRENCY:
                return f"none up to {fmt(MAX_CONCURRENCY)} (the search limit)"
            far = n / pm.n_max
            if far <= EXTRAPOLATION_LIMIT:
                return fmt(n)
            if advice:
                return f"– (the knee is ×{far:.1f} beyond the evidence)"
            return f"{fmt(n)} (×{far:.1f} beyond)"

        rows.append(
            (
                pm.prompt_label,
                "none" if goal.slo is None else goal.slo.describe(),
                fmt(pm.n_max),
                show(k.peak_concurrency),
                show(k.efficient_concurrency),
                show(k.slo_concurrency),
                show(k.recommended_concurrency, advice=True),
            )
        )
        notes += [f"{pm.prompt_label}: {n}" for n in k.notes]
        notes.append(f"{pm.prompt_label}: objective {goal.describe()}")
    return rows, notes


def knees_table(model: CapacityModel, goals: Mapping[str, Objective]) -> tuple[Table, list[str]]:
    """``knees_rows`` as a printable table, and their notes."""
    rows, notes = knees_rows(model, goals)
    table = Table(title="Knees (requests in flight)")
    for head in KNEE_HEADS:
        table.add_column(head, justify="left" if head in ("Prompt", "objective") else "right")
    for row in rows:
        table.add_row(*row)
    return table, notes


def prompt_objectives(
    model: CapacityModel, choose: Callable[[float], Objective]
) -> dict[str, Objective]:
    """Each prompt's objective: ``choose(prompt tokens)`` per fitted prompt size."""
    return {pm.prompt_label: choose(pm.input_tokens) for pm in model.prompts}


def print_warnings(out: Console, model: CapacityModel, extra: list[str]) -> None:
    """Every fit warning and model note, once."""
    lines = list(model.notes)
    for pm in model.prompts:
        lines += [
            f"{pm.prompt_label} {name}: {w}"
            for name, f in (("tps", pm.decode), ("throughput", pm.throughput))
            for w in f.warnings
        ]
        for c in (*pm.ttft, *pm.ttlt, pm.tps_low):
            lines += [f"{pm.prompt_label} {c.metric} p{c.q * 100:g}: {n}" for n in c.notes]
    for line in dict.fromkeys(lines + extra):
        out.print(f"warning: {line}", style="yellow", markup=False, highlight=False)


def default_output(paths: list[str]) -> Path:
    """Where the model goes without ``-o``: ``model.json`` in the (first) run directory, or
    next to the (first) records file."""
    first = Path(paths[0])
    return (first if first.is_dir() else first.parent) / "model.json"


def cmd_fit(args: argparse.Namespace) -> int:
    """Load records, fit, print parameters/knees/warnings, save the model."""
    check_not_empty(args.paths)
    records = load_records(args.paths)
    model = fit_capacity(records, concurrency=args.concurrency, n_boot=args.boot, seed=args.seed)
    goals = prompt_objectives(model, lambda tokens: objective_of(args, model, tokens))
    knees, knee_notes = knees_table(model, goals)
    out = console()
    out.print(usl_table(model))
    for pm in model.prompts:
        out.print(levels_table(pm))
    out.print(knees)
    print_warnings(out, model, knee_notes)
    print_notes(out, records.attrs.get("notes", ()))
    output = args.out or default_output(args.paths)
    model.save(output)
    hint = "" if args.out else " (-o PATH writes elsewhere)"
    out.print(f"wrote {output}{hint}", markup=False, highlight=False)
    return 0

"""``llmcap summarize``: per-level summary tables of request records (like the seed's)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from capacity.errors import CapacityError
from capacity.records import load_records
from capacity.summary import compare_prompts, summarize


def register(sub: Any) -> None:
    """Add the ``summarize`` subcommand to ``sub`` (an argparse subparsers object)."""
    cmd = sub.add_parser(
        "summarize",
        help="summarize request records per prompt and level",
        description="Per-level summary of request records: the seed's summary columns, "
        "latency percentiles, system throughput, RPM/TPM, throttles and in-flight concurrency.",
    )
    cmd.add_argument(
        "paths",
        nargs="+",
        metavar="RUN_OR_FILE",
        help="run directory, records.jsonl, records.parquet or CSV (ours or the seed's columns)",
    )
    cmd.add_argument("--csv", type=Path, metavar="OUT", help="also write every column as CSV")
    cmd.set_defaults(func=cmd_summarize)


def console() -> Console:
    """A console that keeps wide tables readable when output is not a terminal."""
    out = Console()
    return out if out.is_terminal else Console(width=180)


def fmt(value: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant figures (thousands separated), '–' for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    x = float(value)
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def seed_summary_table(summary: pd.DataFrame) -> Table:
    """The seed's summary columns, one row per prompt and level."""
    table = Table(title="Summary per prompt and level (ok requests; tps = 1/TPOT)")
    heads = ["Prompt", "Model", "Level", "ok/thr/err", "Input Tokens", "Avg output Tokens",
             "Temp", "Avg TPS", "Median TPS", "Min TPS", "Max TPS", "Avg Response Time (s)",
             "Avg Concurrent", "Max Concurrent"]  # fmt: skip
    for head in heads:
        table.add_column(head, justify="left" if head in ("Prompt", "Model") else "right")
    for r in summary.itertuples(index=False):
        errors = r.n_error + r.n_timeout + r.n_cancelled
        table.add_row(
            str(r.prompt_label), str(r.model_id), fmt(r.level), f"{r.n_ok}/{r.n_throttled}/{errors}",
            fmt(r.input_tokens_mean, 4), fmt(r.output_tokens_mean, 4), fmt(r.temperature),
            fmt(r.tps_mean), fmt(r.tps_p50), fmt(r.tps_min), fmt(r.tps_max),
            fmt(r.ttlt_mean_s), fmt(r.concurrency_mean), fmt(r.concurrency_max),
        )  # fmt: skip
    return table


def latency_table(summary: pd.DataFrame) -> Table:
    """Latency percentiles, throughput, quota use and failure rates per prompt and level."""
    table = Table(title="Latency percentiles (s, linear interpolation), throughput and quota use")
    heads = ["Prompt", "Level", "TTFT p50", "p95", "p99", "TTLT p50", "p95", "p99", "tps p5",
             "out tok/s", "in tok/s", "RPM", "TPM", "throttled", "errors"]  # fmt: skip
    for head in heads:
        table.add_column(head, justify="left" if head == "Prompt" else "right")
    for r in summary.itertuples(index=False):
        table.add_row(
            str(r.prompt_label), fmt(r.level), fmt(r.ttft_p50_s), fmt(r.ttft_p95_s),
            fmt(r.ttft_p99_s), fmt(r.ttlt_p50_s), fmt(r.ttlt_p95_s), fmt(r.ttlt_p99_s),
            fmt(r.tps_p5), fmt(r.output_tps), fmt(r.input_tps), fmt(r.achieved_rpm),
            fmt(r.achieved_tpm), f"{r.throttle_rate:.1%}", f"{r.error_rate:.1%}",
        )  # fmt: skip
    return table


def comparison_table(comparison: pd.DataFrame) -> Table:
    """The seed's small-vs-large system throughput comparison."""
    small, large = comparison.attrs["prompts"]
    table = Table(title=f"System output throughput: {small} vs {large} prompt (tokens/s)")
    for head in ("Level", f"{small}", f"{large}", "Difference"):
        table.add_column(head, justify="right")
    for r in comparison.itertuples(index=False):
        table.add_row(fmt(r.level), fmt(r.small_output_tps), fmt(r.large_output_tps),
                      f"{r.difference_pct:+.1f}%")  # fmt: skip
    return table


def print_notes(out: Console, notes: tuple[str, ...]) -> None:
    """Print the records' rule notes (every rule that changed or excluded something)."""
    for note in notes:
        out.print(f"note: {note}", style="dim", markup=False, highlight=False)


def cmd_summarize(args: argparse.Namespace) -> int:
    """Load, summarize, print (and optionally write CSV)."""
    try:
        records = load_records(args.paths)
    except CapacityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = summarize(records)
    out = console()
    out.print(seed_summary_table(summary))
    out.print(latency_table(summary))
    comparison = compare_prompts(summary)
    if comparison is not None and not comparison.empty:
        out.print(comparison_table(comparison))
    print_notes(out, records.attrs.get("notes", ()))
    if args.csv:
        try:
            summary.to_csv(args.csv, index=False)
        except OSError as exc:
            print(f"error: cannot write {args.csv}: {exc.strerror}; check the path",
                  file=sys.stderr)  # fmt: skip
            return 2
        out.print(f"wrote {args.csv}", markup=False, highlight=False)
    return 0

"""``llmcap summarize``: per-level summary tables of request records (like the seed's)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from capacity.records import compare_prompts, load_records, summarize
from capacity.serving import ClientLoad, client_load, client_overload
from llmcap.errors import UserError


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


Row = dict[str, Any]
Column = tuple[str, Callable[[Row], str]]


def _num(key: str, digits: int = 3) -> Callable[[Row], str]:
    return lambda r: fmt(r[key], digits)


def _pct(key: str) -> Callable[[Row], str]:
    return lambda r: f"{float(r[key]):.1%}"


def _counts(r: Row) -> str:
    errors = int(r["n_error"]) + int(r["n_timeout"]) + int(r["n_cancelled"])
    return f"{int(r['n_ok'])}/{int(r['n_throttled'])}/{errors}"


SEED_COLUMNS: tuple[Column, ...] = (
    ("Prompt", lambda r: str(r["prompt_label"])),
    ("Model", lambda r: str(r["model_id"])),
    ("Level", _num("level")),
    ("ok/thr/err", _counts),
    ("Input Tokens", _num("input_tokens_mean", 4)),
    ("Avg output Tokens", _num("output_tokens_mean", 4)),
    ("Temp", _num("temperature")),
    ("Avg TPS", _num("tps_mean")),
    ("Median TPS", _num("tps_p50")),
    ("Min TPS", _num("tps_min")),
    ("Max TPS", _num("tps_max")),
    ("Avg Response Time (s)", _num("ttlt_mean_s")),
    ("Avg Concurrent", _num("concurrency_mean")),
    ("Max Concurrent", _num("concurrency_max")),
)
"""The seed's summary columns (plus counts by status)."""

LATENCY_COLUMNS: tuple[Column, ...] = (
    ("Prompt", lambda r: str(r["prompt_label"])),
    ("Level", _num("level")),
    ("TTFT p50", _num("ttft_p50_s")),
    ("p95", _num("ttft_p95_s")),
    ("p99", _num("ttft_p99_s")),
    ("TTLT p50", _num("ttlt_p50_s")),
    ("p95", _num("ttlt_p95_s")),
    ("p99", _num("ttlt_p99_s")),
    ("tps p5", _num("tps_p5")),
    ("out tok/s", _num("output_tps")),
    ("in tok/s", _num("input_tps")),
    ("RPM", _num("achieved_rpm")),
    ("TPM", _num("achieved_tpm")),
    ("throttled", _pct("throttle_rate")),
    ("errors", _pct("error_rate")),
)
"""Latency percentiles, throughput, quota use and failure rates."""


def table_of(title: str, columns: tuple[Column, ...], frame: pd.DataFrame) -> Table:
    """A rich table of ``frame``'s rows through ``columns`` (heading, cell formatter)."""
    table = Table(title=title)
    for head, _ in columns:
        table.add_column(head, justify="left" if head in ("Prompt", "Model") else "right")
    for row in frame.to_dict(orient="records"):
        table.add_row(*(cell({str(k): v for k, v in row.items()}) for _, cell in columns))
    return table


def seed_summary_table(summary: pd.DataFrame) -> Table:
    """The seed's summary columns, one row per prompt and level."""
    title = "Summary per prompt and level (ok requests; tps = 1/TPOT)"
    return table_of(title, SEED_COLUMNS, summary)


def latency_table(summary: pd.DataFrame) -> Table:
    """Latency percentiles, throughput, quota use and failure rates per prompt and level."""
    title = "Latency percentiles (s, linear interpolation), throughput and quota use"
    return table_of(title, LATENCY_COLUMNS, summary)


def comparison_table(comparison: pd.DataFrame) -> Table:
    """The seed's small-vs-large system throughput comparison."""
    small, large = comparison.attrs["prompts"]
    columns: tuple[Column, ...] = (
        ("Level", _num("level")),
        (str(small), _num("small_output_tps")),
        (str(large), _num("large_output_tps")),
        ("Difference", lambda r: f"{float(r['difference_pct']):+.1f}%"),
    )
    table = table_of(
        f"System output throughput: {small} vs {large} prompt (tokens/s)", columns, comparison
    )
    table.min_width = len(str(table.title)) + 4
    return table


def client_table(loads: list[ClientLoad]) -> Table:
    """What the client measured about itself per level, and whether it distorted the level
    (``capacity.serving.ClientLoad.distorted``)."""
    table = Table(title="The client's own load per level (loop lag: the latest its event loop "
                  "ran, per request)")  # fmt: skip
    heads = ("Prompt", "Level", "loop lag p50 ms", "p95 ms", "x inter-token", "client CPU",
             "sends late p95 ms", "verdict")  # fmt: skip
    for head in heads:
        table.add_column(head, justify="left" if head in ("Prompt", "verdict") else "right")
    for load in loads:
        table.add_row(
            load.prompt, f"{load.level:g}", fmt(load.lag_p50_s * 1e3), fmt(load.lag_p95_s * 1e3),
            f"{load.lag_per_token_time:.1f}",
            "–" if math.isnan(load.cpu_share_p50) else f"{load.cpu_share_p50:.0%}",
            fmt(load.lateness_p95_s * 1e3), "DISTORTED" if load.distorted else "ok",
        )  # fmt: skip
    return table


def print_notes(out: Console, notes: tuple[str, ...]) -> None:
    """Print the records' rule notes (every rule that changed or excluded something)."""
    for note in notes:
        out.print(f"note: {note}", style="dim", markup=False, highlight=False)


def empty_runs(paths: list[str]) -> list[Path]:
    """The run directories among ``paths`` that hold no request rows."""
    empty = []
    for p in map(Path, paths):
        jsonl, parquet = p / "records.jsonl", p / "records.parquet"
        if (p / "run.json").is_file() and (
            (jsonl.is_file() and jsonl.stat().st_size == 0)
            or (not jsonl.exists() and not parquet.exists())
        ):
            empty.append(p)
    return empty


def check_not_empty(paths: list[str]) -> None:
    """A run directory without rows is an error that points at its run.json."""
    for run in empty_runs(paths):
        raise UserError(
            f"no requests recorded in {run} (the sweep failed before sending: see "
            f"{run / 'run.json'})",
            "fix what it names and run `llmcap bench` again",
        )


def failures_table(records: pd.DataFrame) -> Table | None:
    """Requests that did not succeed, by status and error code, with the first message."""
    bad = records[records["status"] != "ok"]
    if bad.empty:
        return None
    table = Table(title="Failures by code (first message)")
    for head in ("Prompt", "Status", "Code", "Requests", "First message"):
        table.add_column(head, justify="right" if head == "Requests" else "left")
    keys = ["prompt_label", "status", "error_code"]
    for (label, status, code), group in bad.groupby(keys, dropna=False, sort=True):
        messages = group["error_message"].dropna()
        first = str(messages.iloc[0])[:100] if len(messages) else ""
        code_text = code if isinstance(code, str) else "–"
        table.add_row(str(label), str(status), code_text, str(len(group)), first)
    return table


def cmd_summarize(args: argparse.Namespace) -> int:
    """Load, summarize, print (and optionally write CSV)."""
    check_not_empty(args.paths)
    records = load_records(args.paths)
    if records.empty:
        raise UserError(
            f"no requests recorded in {', '.join(args.paths)}",
            "point at a run directory or records file of a sweep that sent requests",
        )
    summary = summarize(records)
    out = console()
    out.print(seed_summary_table(summary))
    out.print(latency_table(summary))
    failures = failures_table(records)
    if failures is not None:
        out.print(failures)
    comparison = compare_prompts(summary)
    if comparison is not None and not comparison.empty:
        out.print(comparison_table(comparison))
    loads = client_load(records)
    if loads:
        out.print(client_table(loads))
    overload = client_overload(records)
    if overload is not None:
        out.print(
            f"warning: {overload}", style="yellow", markup=False, highlight=False, soft_wrap=True
        )
    print_notes(out, records.attrs.get("notes", ()))
    if args.csv:
        try:
            summary.to_csv(args.csv, index=False)
        except OSError as exc:
            raise UserError(f"cannot write {args.csv}: {exc.strerror}", "check the path") from exc
        out.print(f"wrote {args.csv}", markup=False, highlight=False)
    return 0

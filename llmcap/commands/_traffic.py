"""Real traffic for ``llmcap usage`` (and ``plan``): the arguments that name a log folder,
an S3 prefix, a trace file or a shipped template, and ``run_usage_from_traffic``, which writes
what the CloudWatch path writes — usage.parquet, usage_summary.json, summary.md and its figures —
plus traffic.json and the traffic figures (docs/traffic.md).

``add_traffic_source_args`` adds only the source flags; the commands that take them have the
shared ones (``--model-id``, ``--region``, ``--aws-profile``, ``--endpoint-url``, ``--json``,
``--tpm``, ``--burndown``; ``usage`` also ``-o/--out`` and ``--threshold``).
``add_sizing_args`` adds ``--trace-users`` and ``--throttle-target`` (``plan`` and ``report``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from llmcap.commands._args import positive_float, share
from llmcap.errors import UserError

DEFAULT_S3_REGION = "us-east-1"


def add_traffic_source_args(p: argparse.ArgumentParser) -> None:
    """``--from-logs``, ``--from-trace``, ``--tz``, ``--executor`` and ``--ray-address``."""
    from capacity.usage import TEMPLATES

    g = p.add_argument_group("real traffic (instead of CloudWatch metrics)")
    src = g.add_mutually_exclusive_group()
    src.add_argument(
        "--from-logs",
        metavar="PATH|s3://BUCKET/PREFIX",
        help="Bedrock model invocation logs: the folder (or S3 prefix) holding AWSLogs/…, one "
        "log file, or a CloudWatch Logs export of them",
    )
    src.add_argument(
        "--from-trace",
        metavar="FILE|TEMPLATE",
        help="a request trace (CSV, Parquet or JSON lines: timestamp, input_tokens, "
        "output_tokens, …), an llmcap run directory, or a shipped template: "
        + ", ".join(t.name for t in TEMPLATES),
    )
    g.add_argument(
        "--tz",
        help="IANA time zone of timestamps written without an offset (e.g. UTC); without it "
        "such timestamps are an error",
    )
    g.add_argument(
        "--executor",
        choices=("duckdb", "ray"),
        default="duckdb",
        help="engine of the analysis: duckdb (this machine, default) or ray (Ray Data)",
    )
    g.add_argument("--ray-address", help="Ray cluster for --executor ray (default: a local one)")


def add_sizing_args(g: Any) -> None:
    """``--trace-users`` and ``--throttle-target`` (``--target-users`` is the command's own)."""
    from capacity.serving import DEFAULT_THROTTLE_TARGET

    g.add_argument(
        "--trace-users",
        type=positive_float,
        help="how many users produced the trace; with --target-users it is scaled to the target",
    )
    g.add_argument(
        "--throttle-target",
        type=share,
        default=DEFAULT_THROTTLE_TARGET,
        help="the largest share of requests the recommended quota may throttle "
        f"({DEFAULT_THROTTLE_TARGET:g})",
    )


def traffic_given(args: argparse.Namespace) -> bool:
    """Whether the command line names a traffic source."""
    return getattr(args, "from_logs", None) is not None or (
        getattr(args, "from_trace", None) is not None
    )


def load_traffic(args: argparse.Namespace, *, scale: bool = True) -> Any:
    """The ``RequestTable`` the source flags name, scaled when ``scale`` and both
    ``--target-users`` and ``--trace-users`` are given (a trace needs both or neither then).
    Raises ``CapacityError``/``AccountError`` for a bad source."""
    from capacity.usage import TEMPLATES, load_requests, scale_trace, traffic_template

    logs, trace = getattr(args, "from_logs", None), getattr(args, "from_trace", None)
    model_id = getattr(args, "model_id", None)
    tz = getattr(args, "tz", None)
    if logs is None and trace is None:
        raise UserError("no traffic source", "pass --from-logs PATH|s3://… or --from-trace FILE")
    if logs is not None and str(logs).startswith("s3://"):
        from account import connect
        from account.invocation_logs import S3LogObjects

        region = getattr(args, "region", None) or DEFAULT_S3_REGION
        conn = connect(
            region, getattr(args, "aws_profile", None), getattr(args, "endpoint_url", None)
        )
        table = load_requests(S3LogObjects(str(logs), conn), tz=tz, model_id=model_id)
    elif logs is not None:
        table = load_requests(Path(logs), tz=tz, model_id=model_id)
    elif trace in {t.name for t in TEMPLATES}:
        table = traffic_template(str(trace), model_id=model_id)
    else:
        table = load_requests(Path(str(trace)), tz=tz, default_model_id=model_id)
    if not scale:
        return table
    target, users = getattr(args, "target_users", None), getattr(args, "trace_users", None)
    if (target is None) != (users is None) and trace is not None:
        raise UserError(
            "--target-users and --trace-users go together",
            "give both: how many users produced the trace, and how many to plan for",
        )
    if target is not None and users is not None:
        table = scale_trace(table, trace_users=users, target_users=target)
    return table


def run_usage_from_traffic(args: argparse.Namespace) -> int:
    """Load, analyse and write the usage outputs of every model into ``args.out`` (one folder
    per model when there are several); print the summary (or, with ``--json``, the analysis)."""
    from capacity.usage import (
        analyze_traffic,
        model_slug,
        traffic_figures,
        usage_figures,
        write_usage,
    )

    table = load_traffic(args)
    analysis = analyze_traffic(
        table,
        executor=getattr(args, "executor", "duckdb"),
        region=getattr(args, "region", None),
        quota_tpm=getattr(args, "tpm", None),
        burndown=getattr(args, "burndown", None),
        threshold=getattr(args, "threshold", 0.8),
        ray_address=getattr(args, "ray_address", None),
    )
    out: Path = args.out
    written: list[Path] = []
    texts = []
    for m in analysis.models:
        folder = out if len(analysis.models) == 1 else out / model_slug(m.model_id)
        text = m.summary.markdown() + "\n" + m.markdown()
        written.append(write_usage(folder / "usage.parquet", m.usage, m.summary.meta))
        (folder / "usage_summary.json").write_text(
            json.dumps(m.summary.to_dict(), indent=2, default=str)
        )
        (folder / "summary.md").write_text(text)
        written += usage_figures(m.usage, m.summary, folder)
        written += traffic_figures(m, folder)
        texts.append(text)
    (out / "traffic.json").write_text(json.dumps(analysis.to_dict(), indent=2, default=str))
    if getattr(args, "json", False):
        print(json.dumps(analysis.to_dict(), indent=2, default=str))
        return 0
    from llmcap.commands._account import console

    con = console()
    for text in texts:
        con.print(text, markup=False, highlight=False)
    for line in table.report.lines_for_humans():
        con.print(f"note: {line}", markup=False, highlight=False)
    con.print(
        f"wrote {out / 'traffic.json'}, " + ", ".join(str(p) for p in written),
        markup=False,
        highlight=False,
    )
    return 0

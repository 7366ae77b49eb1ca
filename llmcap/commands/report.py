"""``llmcap report``: from run directories or real traffic to the quota-increase justification
AWS asks for.

Loads the runs, fits them (or reads ``--model``: a fitted model.json or a calibrated twin.json),
plans today's quota and the quota for ``--target-users``, and writes the report as Markdown,
self-contained HTML, PDF and JSON plus the plain-text support-case body
(``quota_request_case.txt``) under ``-o``. The workload defaults to a measured prompt size
(``--prompt``; the largest by default, the cautious choice for TPM); the latency objective is
the default (p95 TTFT at most twice the unloaded value) unless ``--slo-*`` or ``--no-slo``.

With ``--from-logs`` or ``--from-trace`` (runs then optional) the report is built from real
traffic: the TPM asked is the smallest whose replay of the target's requests through the quota
ledger throttles at most ``--throttle-target`` of them; the expected traffic and the historical
usage are measured from the traffic (scaled from ``--trace-users`` to ``--target-users`` when
given, else taken as the target's); the planner's closed form for the measured workload is
shown beside the replay's answer (docs/report.md, "From real traffic").
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from capacity.compare import OPTIONS
from capacity.planning import (
    DEFAULT_HEADROOM,
    DEFAULT_THINK_TIME_S,
    CapacityAnswer,
    Quota,
    Workload,
    count,
    pick_prompt,
)
from capacity.serving import QUOTA_RULES, SCOPES
from llmcap.commands._args import (
    add_aws_profile,
    add_objective,
    add_out,
    nonneg_float,
    objective_of,
    positive_float,
    positive_int,
)
from llmcap.commands._buy import add_given_args, comparison_for_traffic, comparison_for_workload
from llmcap.commands._traffic import (
    add_sizing_args,
    add_traffic_source_args,
    load_traffic,
    traffic_given,
)
from llmcap.errors import UserError

DEFAULT_MODEL_ID = "us.meta.llama3-3-70b-instruct-v1:0"


def register(sub: Any) -> None:
    """Add the ``report`` subcommand to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser(
        "report",
        help="the quota-increase justification (Markdown, HTML, PDF, JSON) from runs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "runs", nargs="*", type=Path,
        help="run directories or record files (optional with --from-logs/--from-trace)",
    )  # fmt: skip
    p.add_argument(
        "--model",
        type=Path,
        help="model.json (`llmcap fit`) or twin.json (`llmcap twin fit`); default: fit the runs",
    )
    p.add_argument("--use-case", required=True, help="what the application does, for whom")
    p.add_argument("--target-users", type=positive_float, required=True)
    p.add_argument("--region", required=True, help="the AWS Region of the quota, e.g. us-east-1")
    p.add_argument("--model-id", help="the id invoked (default: the runs' model id)")
    p.add_argument("--inference-profile-id", help="default: --model-id when it is a profile id")
    p.add_argument("--scope", choices=SCOPES, help="default: from --model-id")
    p.add_argument(
        "--quota-rule", choices=QUOTA_RULES, default="bucket",
        help="how TPM is enforced: 'bucket' (default) or 'window' (docs/architecture.md)",
    )  # fmt: skip
    q = p.add_argument_group("current quotas (applied values)")
    q.add_argument("--tpm", type=positive_float, required=True, help="tokens per minute")
    q.add_argument("--rpm", type=positive_float, help="requests per minute, where enforced")
    q.add_argument("--tpd", type=positive_float, help="tokens per day, where enforced")
    q.add_argument("--tpm-code", help="Service Quotas code, over the shipped table")
    q.add_argument("--rpm-code")
    q.add_argument("--tpd-code")
    w = p.add_argument_group(
        "workload (default: the largest measured prompt size; with traffic: measured)"
    )
    w.add_argument("--prompt", help="measured prompt label to plan for (default: the largest)")
    w.add_argument("--input-tokens", type=positive_float)
    w.add_argument("--output-tokens", type=positive_float)
    w.add_argument(
        "--max-tokens", type=positive_int,
        help="the requests' max_tokens (with traffic: what requests whose log does not say "
        "reserve; default: the model's maximum output)",
    )  # fmt: skip
    w.add_argument("--think-time-s", type=nonneg_float, default=DEFAULT_THINK_TIME_S)
    w.add_argument("--peak-to-average", type=float, default=1.0, help="busiest minute / mean")
    w.add_argument(
        "--headroom", type=nonneg_float, default=DEFAULT_HEADROOM,
        help=f"margin on the request ({DEFAULT_HEADROOM:g}; less where it would buy no users)",
    )  # fmt: skip
    add_objective(p, tps=False)
    w.add_argument(
        "--growth",
        action="append",
        default=[],
        metavar="WHEN=USERS",
        help="a growth projection, e.g. '+6 months=3000' (repeatable; none by default)",
    )
    a = p.add_argument_group("account and operations")
    a.add_argument("--account-id")
    a.add_argument("--organization")
    a.add_argument("--contact")
    a.add_argument("--monitoring", help="monitoring and alarms (default: CloudWatch AWS/Bedrock)")
    a.add_argument(
        "--historical-usage",
        type=Path,
        help="usage.parquet from `llmcap usage`, its summary.md, or capacity.usage's JSON",
    )
    add_traffic_source_args(p)
    t = p.add_argument_group("sizing from traffic (with --from-logs/--from-trace)")
    add_sizing_args(t)
    add_aws_profile(t)
    t.add_argument("--endpoint-url", help="S3 endpoint instead of AWS (a local stand-in)")
    c = p.add_argument_group("the option chosen (llmcap compare)")
    c.add_argument(
        "--option", choices=OPTIONS,
        help="add the section 'The option chosen': what it buys, its cost and why against the "
        "other options of `llmcap compare` for the same inputs (default: none; the report asks "
        "on-demand Standard's quota either way)",
    )  # fmt: skip
    add_given_args(p)
    p.add_argument("--format", default="md,html,pdf,json", help="md,html,pdf,json (all)")
    add_out(p, Path("out/report"), "output directory")
    p.set_defaults(func=cmd_report)


def measured_workload(records: Any, args: argparse.Namespace) -> tuple[str, Workload]:
    """The workload of the report: the measured prompt size (``--prompt``, else the largest),
    with any token count given on the command line taking its place."""
    from capacity.records import prompt_sizes

    size = pick_prompt(prompt_sizes(records), args.prompt)
    output = args.output_tokens or size.output_tokens
    workload = Workload(
        input_tokens=args.input_tokens or size.input_tokens,
        output_tokens=output,
        max_tokens=args.max_tokens or max(size.max_tokens, output),
        think_time_s=args.think_time_s,
        peak_to_average=args.peak_to_average,
    )
    return size.label, workload


def evidence_context(paths: Sequence[Path]) -> str | None:
    """What the runs were measured against, from their run.json: the endpoint's kind, model id
    and Region or host, and the emulator's quota (None when no run says). Only those fields
    are read; a URL loses any user:password part."""
    from urllib.parse import urlsplit

    from capacity.serving import load_profile

    seen: list[str] = []
    for path in paths:
        try:
            doc = json.loads((path / "run.json").read_text(encoding="utf-8"))
            config = doc["config"]
            ep = config["endpoint"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a record file, or a run.json without these fields: nothing to say
        model_id, emulator = ep.get("model_id", "unknown"), config.get("emulator_profile")
        url = ep.get("endpoint_url")
        if emulator:
            tpm = load_profile(emulator).quotas.tpm
            quota = "enforced no quota" if tpm is None else f"enforced {tpm:,} tokens per minute"
            text = (
                f"Measured against llmcap's built-in emulator (serving profile {emulator}, "
                f"model id {model_id}), which {quota}."
            )
        elif url is None and ep.get("region"):
            text = (
                f"Measured on Amazon Bedrock in {ep['region']} (model id {model_id}) under the "
                "account's quota at the time; throttled requests are counted in the evidence."
            )
        else:
            host = urlsplit(str(url)).hostname if url else None
            text = (
                f"Measured on {host or 'an endpoint'} ({ep.get('provider', 'unknown client')}, "
                f"model id {model_id}); its quota, if any, was not recorded."
            )
        if text not in seen:
            seen.append(text)
    return " ".join(seen) or None


def cmd_report(args: argparse.Namespace) -> int:
    """Build and write the report; bad input raises a typed error (one line, exit 2).

    ``--model`` is a model.json or a twin.json (``capacity.load_predictor``)."""
    from account import check_region
    from capacity import build_report, fit_capacity, load_predictor, load_records
    from capacity.report import parse_formats, parse_growth, write_report

    region = check_region(args.region)
    formats = parse_formats(args.format)
    growth = parse_growth(args.growth)
    measured = traffic_given(args)
    if not args.runs and not measured:
        raise UserError(
            "no runs and no traffic", "pass run directories, or --from-logs / --from-trace"
        )
    if args.trace_users is not None and not measured:
        raise UserError("--trace-users without traffic", "add --from-logs or --from-trace")
    loaded = load_predictor(args.model) if args.model else None
    records = load_records(args.runs) if args.runs else None
    model = loaded if loaded is not None or records is None else fit_capacity(records)
    codes = {k: v for k in ("tpm", "rpm", "tpd") if (v := getattr(args, f"{k}_code"))}
    common: dict[str, Any] = dict(
        use_case=args.use_case, region=region, target_users=args.target_users, model=model,
        headroom=args.headroom, inference_profile_id=args.inference_profile_id,
        account_id=args.account_id, organization=args.organization, contact=args.contact,
        quota_codes=codes, records=records, growth=growth, monitoring=args.monitoring,
        evidence_context=None if records is None else evidence_context(args.runs),
    )  # fmt: skip
    if measured:
        report, label = _traffic_report(args, records, model, common), "Traffic"
    else:
        label, workload = measured_workload(records, args)
        model_id = args.model_id or _runs_model_id(records) or DEFAULT_MODEL_ID
        quota = Quota(args.tpm, args.rpm, args.tpd, model_id=model_id, scope=args.scope,
                      rule=args.quota_rule)  # fmt: skip
        goal = objective_of(args, model, workload.prompt_tokens)
        comparison = None
        if args.option is not None:
            comparison = comparison_for_workload(
                args, quota, workload, args.target_users, region, model=model, goal=goal,
                headroom=args.headroom,
            )  # fmt: skip
        report = build_report(
            current=quota,
            workload=workload,
            goal=goal,
            historical_usage=_history(args.historical_usage),
            comparison=comparison,
            option=args.option,
            **common,
        )
        label = f"{label} prompt"
    paths = write_report(report, args.out, formats)
    print(_summary_line(report, label, args.target_users))
    for path in paths:
        print(f"wrote {path}")
    return 0


MEASURED_FLAGS = ("prompt", "input_tokens", "output_tokens", "think_time_s", "peak_to_average",
                  "historical_usage")  # fmt: skip
"""Workload flags the traffic measures itself: refused with --from-logs/--from-trace."""


def _traffic_report(
    args: argparse.Namespace, records: Any, model: Any, common: dict[str, Any]
) -> Any:
    """The report from ``--from-logs``/``--from-trace``: the traffic of the model the quota is
    for (``--model-id``; else the traffic's one model, or for a trace without model ids the
    runs' or the default), measured at the target and sized by replay."""
    from capacity import build_report
    from capacity.report import measure_traffic

    defaults = {"think_time_s": DEFAULT_THINK_TIME_S, "peak_to_average": 1.0}
    given = [
        f"--{f.replace('_', '-')}"
        for f in MEASURED_FLAGS
        if getattr(args, f) is not None and getattr(args, f) != defaults.get(f)
    ]
    if given:
        raise UserError(
            f"{', '.join(given)} with real traffic",
            "drop them: the traffic gives the tokens, the rate and the historical usage",
        )
    fallback = _runs_model_id(records) if records is not None else None
    fallback = fallback or DEFAULT_MODEL_ID
    defaulted = args.model_id is None
    if defaulted and args.from_trace is not None:
        args.model_id = fallback  # the id of the trace's rows that name no model
    table = load_traffic(args, scale=False)
    model_id = args.model_id if not defaulted else _only_model(table.models, fallback, args)
    quota = Quota(args.tpm, args.rpm, args.tpd, model_id=model_id, scope=args.scope,
                  rule=args.quota_rule)  # fmt: skip
    traffic = measure_traffic(
        table, quota, target_users=args.target_users, trace_users=args.trace_users,
        throttle_target=args.throttle_target,
        max_tokens="model default" if args.max_tokens is None else args.max_tokens,
        label=str(args.from_logs or args.from_trace), executor=args.executor,
        ray_address=args.ray_address, region=args.region,
    )  # fmt: skip
    goal = objective_of(args, model, traffic.prompt_tokens)
    comparison = None
    if args.option is not None:
        from capacity.usage import request_arrays

        arrays = request_arrays(traffic.target_table, model_id)
        comparison = comparison_for_traffic(
            args, arrays, model_id, common["region"], traffic.source(), quota, args.target_users
        )
    return build_report(
        current=quota, goal=goal, traffic=traffic, comparison=comparison, option=args.option,
        **common,
    )  # fmt: skip


def _only_model(models: Sequence[str], fallback: str, args: argparse.Namespace) -> str:
    """The traffic's model when it has one (or ``fallback`` among several), else an error."""
    if len(models) == 1:
        return models[0]
    if fallback in models:
        return fallback
    source = args.from_logs or args.from_trace
    raise UserError(
        f"{source}: the traffic holds {len(models)} models ({', '.join(models)})",
        "choose the one the quota is for with --model-id",
    )


def _summary_line(report: Any, label: str, target: float) -> str:
    """The one line printed after the report is written."""
    asks = "; ".join(f"{a.kind.upper()} {a.current or 0:,.0f} → {a.desired:,}" for a in report.asks)
    serves = "carries the traffic of" if report.replay else "serves"
    line = (
        f"{label}: today {count(report.users_today)} users; for {count(target)} users request "
        f"{asks or 'nothing (the quota suffices)'}, which {serves} "
        f"{count(report.users_requested)} users, limited by {report.binding_requested}"
        + (f" — but {report.infeasible_reason}." if report.infeasible_reason else ".")
        + f" Objective: {report.objective}."
    )
    if report.replay:
        d = report.replay
        line += (
            f" TPM sized by replay ({d['source']}); the planner's closed form asks "
            f"{d['closed_form_tpm']:,}."
        )
    return line


def _history(path: Path | None) -> str | dict[str, Any] | None:
    """The historical-usage file: ``usage.parquet`` from ``llmcap usage`` (summarized here),
    JSON (a mapping) or Markdown text."""
    if path is None:
        return None
    if path.suffix.lower() == ".parquet":
        from capacity.usage import read_usage, summarize_usage

        frame, meta = read_usage(path)
        summary: dict[str, Any] = summarize_usage(frame, meta).to_dict()
        return summary
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(
                f"{path}: not JSON ({exc})", "pass usage.parquet, JSON or Markdown"
            ) from None
        if not isinstance(doc, dict):
            raise UserError(f"{path}: not a JSON object of usage measures",
                            "pass usage.parquet from `llmcap usage`")  # fmt: skip
        return doc
    return text


def _runs_model_id(records: Any) -> str | None:
    ids = records["model_id"].dropna().unique() if "model_id" in records else []
    return str(ids[0]) if len(ids) == 1 and str(ids[0]).strip() else None


DEMO_USE_CASE = (
    "llmcap demo: the seed blog's study reproduced on llmcap's built-in emulator (a stand-in "
    "for Llama 3.3 70B on Bedrock). Replace this text with your application: what it does, for "
    "whom, and why the current quota is not enough."
)


def write_demo_reports(
    records: Any,
    model: Any,
    answers: Mapping[str, CapacityAnswer],
    out: Path,
    region: str,
    context: str | None,
) -> list[Path]:
    """``llmcap demo``'s report: one per measured prompt size (its answer, exactly as the demo
    printed it), under ``out/<label>/``, in every format. Returns the PDFs."""
    from capacity import build_report
    from capacity.report import write_report

    pdfs = []
    for label, result in answers.items():
        assert result.target_users is not None
        report = build_report(
            use_case=DEMO_USE_CASE, region=region, current=result.quota,
            workload=result.workload, target_users=result.target_users, model=model,
            result=result, records=records, evidence_context=context,
            title=f"Quota increase request: {result.quota.model_id} in {region} ({label} prompt)",
        )  # fmt: skip
        paths = write_report(report, out / label)
        pdfs += [p for p in paths if p.suffix == ".pdf"]
    return pdfs

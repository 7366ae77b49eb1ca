"""``llmcap report``: from run directories to the quota-increase justification AWS asks for.

Loads the runs, fits them (or reads ``--model``: a fitted model.json or a calibrated twin.json),
plans today's quota and the quota for ``--target-users``, and writes the report as Markdown,
self-contained HTML, PDF and JSON plus the plain-text support-case body
(``quota_request_case.txt``) under ``-o``. The workload defaults to
a measured prompt size (``--prompt``; the largest by default, the cautious choice for TPM).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from capacity.errors import CapacityError
from capacity.planning import CapacityPlan, Quota, QuotaRequest, Slo, Workload
from capacity.serving import SCOPES

DEFAULT_MODEL_ID = "us.meta.llama3-3-70b-instruct-v1:0"


def register(sub: Any) -> None:
    """Add the ``report`` subcommand to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser(
        "report",
        help="the quota-increase justification (Markdown, HTML, PDF, JSON) from runs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", type=Path, help="run directories or record files")
    p.add_argument(
        "--model",
        type=Path,
        help="model.json (`llmcap fit`) or twin.json (`llmcap twin fit`); default: fit the runs",
    )
    p.add_argument("--use-case", required=True, help="what the application does, for whom")
    p.add_argument("--target-users", type=float, required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--model-id", help="the id invoked (default: the runs' model id)")
    p.add_argument("--inference-profile-id", help="default: --model-id when it is a profile id")
    p.add_argument("--scope", choices=SCOPES, help="default: from --model-id")
    q = p.add_argument_group("current quotas (applied values)")
    q.add_argument("--tpm", type=float, required=True, help="tokens per minute")
    q.add_argument("--rpm", type=float, help="requests per minute, where still enforced")
    q.add_argument("--tpd", type=float, help="tokens per day, where enforced")
    q.add_argument("--tpm-code", help="Service Quotas code, over the shipped table")
    q.add_argument("--rpm-code")
    q.add_argument("--tpd-code")
    w = p.add_argument_group("workload (default: the measured prompt size)")
    w.add_argument("--prompt", help="measured prompt label to plan for (default: the largest)")
    w.add_argument("--input-tokens", type=float)
    w.add_argument("--output-tokens", type=float)
    w.add_argument("--max-tokens", type=float)
    w.add_argument("--think-time-s", type=float, default=30.0)
    w.add_argument("--peak-to-average", type=float, default=1.0, help="busiest minute / mean")
    w.add_argument("--headroom", type=float, default=0.2, help="margin on the request (0.2)")
    w.add_argument("--slo-ttft-p95", type=float, help="seconds")
    w.add_argument("--slo-ttlt-p95", type=float, help="seconds")
    w.add_argument(
        "--growth",
        action="append",
        default=[],
        metavar="WHEN=USERS",
        help="a growth projection, e.g. '+6 months=3000' (repeatable)",
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
    p.add_argument("--format", default="md,html,pdf,json", help="md,html,pdf,json")
    p.add_argument("-o", "--out", type=Path, default=Path("out/report"))
    p.set_defaults(func=cmd_report)


def parse_growth(items: list[str]) -> list[tuple[str, float]]:
    """``WHEN=USERS`` items as (label, users); ``ValueError`` naming a bad one."""
    out = []
    for item in items:
        label, sep, users = item.rpartition("=")
        try:
            value = float(users)
        except ValueError:
            value = math.nan
        if not sep or not label.strip() or not math.isfinite(value) or value <= 0:
            raise ValueError(f"--growth {item!r}: expected WHEN=USERS with USERS > 0")
        out.append((label.strip(), value))
    return out


def _prompt_sizes(records: Any, model: Any) -> dict[str, tuple[float, float]]:
    """Measured prompt sizes: label → (input, output tokens), from a fitted model's prompts,
    else (a twin) from the runs' successful requests."""
    if getattr(model, "prompts", None):
        return {pm.prompt_label: (pm.input_tokens, pm.output_tokens) for pm in model.prompts}
    ok = records[records["status"] == "ok"]
    sizes = ok.groupby("prompt_label")[["input_tokens", "output_tokens"]].mean()
    return {str(k): (float(r.input_tokens), float(r.output_tokens)) for k, r in sizes.iterrows()}


def _measured(records: Any, model: Any, label: str | None) -> tuple[str, float, float, float]:
    """(label, input, output, max_tokens) of a measured prompt size."""
    prompts = _prompt_sizes(records, model)
    if not prompts:
        raise ValueError("the runs have no successful request to take a prompt size from")
    if label is None:
        label = max(prompts, key=lambda k: prompts[k][0])
    if label not in prompts:
        raise ValueError(f"--prompt {label!r}: the runs have {', '.join(sorted(prompts))}")
    ok = records[(records["prompt_label"] == label) & (records["status"] == "ok")]
    out = float(ok["output_tokens"].mean()) if len(ok) else math.nan
    out = out if math.isfinite(out) and out > 0 else float(prompts[label][1])
    top = float(records["max_tokens"].max()) if "max_tokens" in records else math.nan
    top = top if math.isfinite(top) and top >= out else out
    return label, float(prompts[label][0]), out, top


def cmd_report(args: argparse.Namespace) -> int:
    """Build and write the report; on bad input print one line naming the problem, return 2.

    ``--model`` is a model.json or a twin.json (``capacity.load_predictor``); a bad file raises
    ``ModelFileError`` (the file and the fix), which ``llmcap.cli.main`` prints as one line."""
    from capacity.fitting import fit_capacity
    from capacity.predictors import load_predictor
    from capacity.records import load_records
    from capacity.report import build_report, parse_formats, write_report

    loaded = load_predictor(args.model) if args.model else None
    try:
        formats = parse_formats(args.format)
        growth = parse_growth(args.growth)
        records = load_records(args.runs)
        model = loaded if loaded is not None else fit_capacity(records)
        label, input_tokens, output_tokens, max_tokens = _measured(records, model, args.prompt)
        model_id = args.model_id or _runs_model_id(records) or DEFAULT_MODEL_ID
        quota = Quota(args.tpm, args.rpm, args.tpd, model_id=model_id, scope=args.scope)
        workload = Workload(
            input_tokens=args.input_tokens or input_tokens,
            output_tokens=args.output_tokens or output_tokens,
            max_tokens=args.max_tokens or max(max_tokens, args.output_tokens or 0.0),
            think_time_s=args.think_time_s,
            peak_to_average=args.peak_to_average,
        )
        targets = (args.slo_ttft_p95, args.slo_ttlt_p95)
        slo = None if all(t is None for t in targets) else Slo(*targets)
        history = _history(args.historical_usage)
        codes = {k: v for k in ("tpm", "rpm", "tpd") if (v := getattr(args, f"{k}_code"))}
        report = build_report(
            use_case=args.use_case, region=args.region, current=quota, workload=workload,
            target_users=args.target_users, model=model, slo=slo, headroom=args.headroom,
            inference_profile_id=args.inference_profile_id, account_id=args.account_id,
            organization=args.organization, contact=args.contact, quota_codes=codes,
            records=records, growth=growth, monitoring=args.monitoring, historical_usage=history,
        )  # fmt: skip
        paths = write_report(report, args.out, formats)
    except (CapacityError, ValueError, KeyError, OSError) as exc:
        print(f"llmcap report: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    asks = "; ".join(f"{a.kind.upper()} {a.current or 0:,.0f} → {a.desired:,}" for a in report.asks)
    print(
        f"{label} prompt: today {math.floor(report.users_today + 1e-9):,} users; for "
        f"{args.target_users:,.0f} users request {asks or 'nothing (the quota suffices)'}"
        + (f" — but {report.infeasible_reason}." if report.infeasible_reason else ".")
    )
    for path in paths:
        print(f"wrote {path}")
    return 0


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
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected a JSON object of usage measures")
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
    quota: Quota,
    cases: Mapping[str, tuple[Workload, Slo | None, CapacityPlan, QuotaRequest]],
    out: Path,
    region: str = "us-east-1",
) -> list[Path]:
    """``llmcap demo``'s report: one per measured prompt size (its workload, SLO, plan and
    request, as the demo answered), under ``out/<label>/``, in every format. Returns the PDFs."""
    from capacity.report import build_report, write_report

    pdfs = []
    for label, (workload, slo, plan, request) in cases.items():
        report = build_report(
            use_case=DEMO_USE_CASE, region=region, current=quota, workload=workload,
            target_users=request.target_users, model=model, slo=slo, plan=plan, request=request,
            headroom=request.headroom, records=records,
            title=f"Quota increase request: {quota.model_id} in {region} ({label} prompt)",
        )  # fmt: skip
        paths = write_report(report, out / label)
        pdfs += [p for p in paths if p.suffix == ".pdf"]
    return pdfs
